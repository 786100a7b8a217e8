//! The bearer token of a request, turned into a [`Viewer`].
use axum::http::{HeaderMap, header};

use crate::{
    error::{Error, Result},
    graphql::Viewer,
    services::tokens::{self, INVALID_TOKEN},
    state::AppState,
};

/// No `Authorization` header: anonymous. A header that is not a valid
/// `Bearer` token of an active user: `UNAUTHENTICATED`, never anonymous.
pub async fn viewer(app: &AppState, headers: &HeaderMap) -> Result<Viewer> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Viewer::Anonymous);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or(Error::Unauthenticated(INVALID_TOKEN))?;
    let user = tokens::authenticate(&app.db, &app.tokens, &app.caches.users, token).await?;
    Ok(Viewer::User(user))
}
