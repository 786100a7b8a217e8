//! Access rules that repeat, written once.
use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, Guard};
use entity::user;

use super::{Viewer, types::User};
use crate::error::Error;

pub fn viewer<'a>(ctx: &Context<'a>) -> &'a Viewer {
    ctx.data_opt::<Viewer>().unwrap_or(&Viewer::Anonymous)
}

/// The signed-in user, or `UNAUTHENTICATED`.
pub fn require_user<'a>(ctx: &Context<'a>) -> Result<&'a Arc<user::Model>, Error> {
    match viewer(ctx) {
        Viewer::User(user) => Ok(user),
        Viewer::Anonymous => Err(Error::Unauthenticated(AUTHENTICATION_REQUIRED)),
    }
}

/// A signed-in staff user: `UNAUTHENTICATED` when anonymous, else `FORBIDDEN`.
pub fn require_staff<'a>(ctx: &Context<'a>) -> Result<&'a Arc<user::Model>, Error> {
    let user = require_user(ctx)?;
    if user.is_staff || user.is_superuser {
        Ok(user)
    } else {
        Err(Error::Forbidden("Only staff may do this.".into()))
    }
}

pub const AUTHENTICATION_REQUIRED: &str = "Authentication required.";

/// Readable by the user themself and by staff only.
pub struct SelfOrStaff {
    owner: i64,
    as_viewer: bool,
}

impl SelfOrStaff {
    pub fn of(user: &User) -> Self {
        Self {
            owner: user.model.id,
            as_viewer: user.as_viewer,
        }
    }
}

impl Guard for SelfOrStaff {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if self.as_viewer || viewer(ctx).is_self_or_staff(self.owner) {
            Ok(())
        } else {
            Err(
                Error::Forbidden("Only the user themself and staff may read this field.".into())
                    .extend(),
            )
        }
    }
}
