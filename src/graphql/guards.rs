//! Access rules that repeat, written once.
use async_graphql::{Context, ErrorExtensions, Guard};

use super::Viewer;
use crate::error::Error;

pub fn viewer<'a>(ctx: &Context<'a>) -> &'a Viewer {
    ctx.data_opt::<Viewer>().unwrap_or(&Viewer::Anonymous)
}

/// Readable by the user themself and by staff only.
pub struct SelfOrStaff {
    owner: i64,
}

impl SelfOrStaff {
    pub fn new(owner: i64) -> Self {
        Self { owner }
    }
}

impl Guard for SelfOrStaff {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if viewer(ctx).is_self_or_staff(self.owner) {
            Ok(())
        } else {
            Err(
                Error::Forbidden("Only the user themself and staff may read this field.".into())
                    .extend(),
            )
        }
    }
}
