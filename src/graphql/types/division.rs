use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object};
use entity::division;

use crate::graphql::{loaders::loaders, scalars::DateTime};

/// Whether a division is top-level or sits under a MAIN division.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DivisionType {
    Main,
    Sub,
}

impl From<division::DivisionType> for DivisionType {
    fn from(value: division::DivisionType) -> Self {
        match value {
            division::DivisionType::Main => DivisionType::Main,
            division::DivisionType::Sub => DivisionType::Sub,
        }
    }
}

/// An organisational unit. Users of an inactive division cannot be activated.
pub struct Division(pub Arc<division::Model>);

#[Object]
impl Division {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique without regard to case.
    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn division_type(&self) -> DivisionType {
        self.0.division_type.into()
    }

    async fn is_active(&self) -> bool {
        self.0.is_active
    }

    /// The MAIN division a SUB division belongs to; null for MAIN divisions.
    async fn parent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Division>> {
        let Some(id) = self.0.parent_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)?
            .division_by_id
            .load_one(id)
            .await?
            .map(Division))
    }

    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}
