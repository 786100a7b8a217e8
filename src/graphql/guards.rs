//! The request's [`Access`], and the field guard that asks it.
use async_graphql::{Context, ErrorExtensions, Guard};

use super::types::User;
use crate::{error::Error, services::access::Access};

static ANONYMOUS: Access = Access::anonymous();

/// Who is asking, as the HTTP layer put it into the request's data.
pub fn access<'a>(ctx: &Context<'a>) -> &'a Access {
    ctx.data_opt::<Access>().unwrap_or(&ANONYMOUS)
}

/// A user's guarded field: readable by the user themself and by holders of
/// `VIEW_USER_DETAILS` (staff hold it).
pub struct UserDetails {
    owner: i64,
    as_viewer: bool,
}

impl UserDetails {
    pub fn of(user: &User) -> Self {
        Self {
            owner: user.model.id,
            as_viewer: user.as_viewer,
        }
    }
}

impl Guard for UserDetails {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if self.as_viewer || access(ctx).may_view_details_of(self.owner) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "Only the user themself and holders of VIEW_USER_DETAILS may read this field."
                    .into(),
            )
            .extend())
        }
    }
}
