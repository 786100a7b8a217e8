//! The bearer token of a request, turned into its [`Access`].
use axum::http::{HeaderMap, header};

use crate::{
    error::{Error, Result},
    services::{
        access::Access,
        tokens::{self, INVALID_TOKEN},
    },
    state::AppState,
};

/// No `Authorization` header: anonymous. A header that is not a valid
/// `Bearer` token of an active user: `UNAUTHENTICATED`, never anonymous.
pub async fn viewer(app: &AppState, headers: &HeaderMap) -> Result<Access> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Access::anonymous());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or(Error::Unauthenticated(INVALID_TOKEN))?;
    let account = tokens::authenticate(&app.db, &app.tokens, &app.caches.users, token).await?;
    Ok(Access::of(account))
}
