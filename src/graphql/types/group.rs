use async_graphql::{Context, ID, Object};
use entity::group;

use crate::graphql::loaders::loaders;

/// A named set of users, such as "Manager".
pub struct Group(pub group::Model);

impl From<group::Model> for Group {
    fn from(model: group::Model) -> Self {
        Group(model)
    }
}

#[Object]
impl Group {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique without regard to case.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// How many users belong to the group.
    async fn member_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(loaders(ctx)?
            .member_count_by_group
            .load_one(self.0.id)
            .await?
            .unwrap_or(0))
    }
}
