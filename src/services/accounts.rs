//! Registration, login, token refresh, logout and password changes.
use entity::user;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, Set, TransactionSession, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};

use super::{
    login_limit::{self, LoginLimit},
    password_hash::{self, Verified},
    refresh_tokens::{self, Rotation},
    users::{self, NewUser},
};
use crate::{
    clock,
    domain::{fold, password::PersonalInfo},
    error::{Error, FieldErrors, Result},
    state::AppState,
};

pub const BAD_CREDENTIALS: &str = "Invalid username or password.";
pub const WRONG_CURRENT_PASSWORD: &str = "Your current password is incorrect.";

/// What `register` receives.
#[derive(Debug, Clone)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// A logged-in session: tokens and the user they speak for.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub user: user::Model,
}

/// Creates an active, non-staff user, reporting every problem at once.
#[tracing::instrument(skip_all, fields(username = %registration.username))]
pub async fn register(state: &AppState, registration: Registration) -> Result<user::Model> {
    if !state.config.open_registration {
        return Err(Error::Forbidden("Registration is closed.".into()));
    }
    let mut errors = FieldErrors::new();
    let identity = users::parse_identity(
        &registration.username,
        &registration.email,
        registration.first_name.as_deref(),
        registration.last_name.as_deref(),
        Some(&registration.password),
        state.password_policy(),
        &mut errors,
    );
    let (Some(username), Some(email)) = (identity.username, identity.email) else {
        return Err(Error::BadUserInput(errors));
    };
    errors.into_result()?;
    // `users::create` reports taken usernames and emails (both at once).
    let password_hash = password_hash::hash(registration.password).await?;
    let new = NewUser {
        username,
        email,
        first_name: identity.first_name,
        last_name: identity.last_name,
        phone_number: None,
        password_hash: Some(password_hash),
        is_active: true,
        is_staff: false,
        is_superuser: false,
        division_id: None,
    };
    users::create(&state.db, new).await
}

/// The user a login identifier names: a username first, else an email.
async fn find_by_identifier(
    db: &impl ConnectionTrait,
    folded: &str,
) -> Result<Option<user::Model>> {
    let candidates = user::Entity::find()
        .filter(
            Condition::any()
                .add(user::Column::UsernameFolded.eq(folded))
                .add(user::Column::EmailFolded.eq(folded)),
        )
        .all(db)
        .await?;
    let by_username = candidates.iter().position(|u| u.username_folded == folded);
    Ok(match by_username {
        Some(index) => candidates.into_iter().nth(index),
        None => candidates.into_iter().next(),
    })
}

/// Logs in by username or email. Every failure is the same
/// `UNAUTHENTICATED` after the same work (a hash is always verified).
#[tracing::instrument(skip(state, password))]
pub async fn login(
    state: &AppState,
    identifier: &str,
    password: String,
    client: &str,
) -> Result<Session> {
    // No username or email is longer than an email may be: a longer one
    // matches no account, and is not worth a row of the login limit.
    let identifier = identifier.trim();
    let longest = crate::domain::email::MAX_LENGTH;
    if identifier.len() > 4 * longest || identifier.chars().count() > longest {
        return Err(Error::Unauthenticated(BAD_CREDENTIALS));
    }
    let folded = fold(identifier);
    let limit = LoginLimit {
        max_failures: state.config.login_max_failures,
        window: state.config.login_window,
    };
    let attempt = login_limit::begin(&state.db, limit, &folded, client).await?;
    let user = find_by_identifier(&state.db, &folded).await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let verified = password_hash::verify(password.clone(), stored).await?;
    let user = match (user, verified) {
        (Some(user), Verified::Yes | Verified::YesButOutdated) if user.is_active => user,
        _ => {
            attempt.failed();
            return Err(Error::Unauthenticated(BAD_CREDENTIALS));
        }
    };
    attempt.succeeded(&state.db).await?;
    let mut row = user.into_active_model();
    row.last_login = Set(Some(clock::now()));
    if verified == Verified::YesButOutdated {
        row.password_hash = Set(Some(password_hash::hash(password).await?));
    }
    let user = row.update(&state.db).await?;
    let refresh_token =
        refresh_tokens::issue(&state.db, user.id, None, state.config.refresh_token_ttl).await?;
    session(state, user, refresh_token)
}

fn session(state: &AppState, user: user::Model, refresh_token: String) -> Result<Session> {
    let ttl = state.config.access_token_ttl;
    Ok(Session {
        access_token: state.tokens.issue(&user, ttl)?,
        refresh_token,
        expires_in: ttl.as_secs(),
        user,
    })
}

/// The identifier under which failed refreshes of a client are counted. No
/// valid username or email holds a space; a login typed to match would only
/// share this client's own counter.
const REFRESH_GUESSES: &str = "refresh token guesses";

/// Exchanges a refresh token for a new pair. Unknown tokens count against
/// the client like failed logins, so refresh tokens cannot be guessed at
/// speed either.
pub async fn refresh(state: &AppState, token: &str, client: &str) -> Result<Session> {
    let config = &state.config;
    let limit = LoginLimit {
        max_failures: config.login_max_failures,
        window: config.login_window,
    };
    let attempt = login_limit::begin(&state.db, limit, REFRESH_GUESSES, client).await?;
    let rotation = refresh_tokens::rotate(
        &state.db,
        token,
        config.refresh_token_ttl,
        config.refresh_reuse_grace,
    )
    .await?;
    let rotated = match rotation {
        Rotation::Done(rotated) => rotated,
        Rotation::Unknown => {
            attempt.failed();
            return Err(Error::Unauthenticated(refresh_tokens::INVALID));
        }
        Rotation::Refused => {
            attempt.discard(&state.db).await?;
            return Err(Error::Unauthenticated(refresh_tokens::INVALID));
        }
    };
    attempt.discard(&state.db).await?;
    match user::Entity::find_by_id(rotated.user_id)
        .one(&state.db)
        .await?
    {
        Some(user) if user.is_active => session(state, user, rotated.token),
        _ => Err(Error::Unauthenticated(refresh_tokens::INVALID)),
    }
}

/// Revokes the given refresh token; unknown or already revoked tokens are
/// fine, so that logging out twice is harmless.
pub async fn logout(state: &AppState, token: &str) -> Result<()> {
    refresh_tokens::revoke(&state.db, token).await
}

/// Stores a new password hash, and makes every token issued before it
/// useless: access tokens by the version bump, refresh tokens by revocation.
async fn replace_password(db: &impl TransactionTrait, user_id: i64, hash: String) -> Result<()> {
    let txn = db.begin().await?;
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .col_expr(
            user::Column::TokenVersion,
            Expr::col(user::Column::TokenVersion).add(1),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(&txn)
        .await?;
    refresh_tokens::revoke_all_of_user(&txn, user_id).await?;
    txn.commit().await?;
    Ok(())
}

fn personal_info(user: &user::Model) -> PersonalInfo<'_> {
    PersonalInfo {
        username: &user.username,
        email: &user.email,
        first_name: &user.first_name,
        last_name: &user.last_name,
    }
}

/// The viewer changes their own password.
#[tracing::instrument(skip_all, fields(user_id = viewer.id))]
pub async fn change_password(
    state: &AppState,
    viewer: &user::Model,
    current: String,
    new: String,
) -> Result<()> {
    let mut errors = FieldErrors::new();
    let verified = password_hash::verify(current, viewer.password_hash.clone()).await?;
    if verified == Verified::No {
        errors.add("currentPassword", WRONG_CURRENT_PASSWORD);
    }
    errors.extend(
        "newPassword",
        state.password_policy().check(&new, personal_info(viewer)),
    );
    errors.into_result()?;
    let hash = password_hash::hash(new).await?;
    replace_password(&state.db, viewer.id, hash).await
}

/// Staff set another user's password; only superusers a superuser's.
#[tracing::instrument(skip(state, viewer, password), fields(viewer_id = viewer.id))]
pub async fn set_user_password(
    state: &AppState,
    viewer: &user::Model,
    user_id: i64,
    password: String,
) -> Result<()> {
    let target = user::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound("No user with that id.".into()))?;
    if target.is_superuser && !viewer.is_superuser {
        return Err(Error::Forbidden(
            "Only a superuser may set a superuser's password.".into(),
        ));
    }
    let problems = state
        .password_policy()
        .check(&password, personal_info(&target));
    if !problems.is_empty() {
        let mut errors = FieldErrors::new();
        errors.extend("password", problems);
        return Err(Error::BadUserInput(errors));
    }
    let hash = password_hash::hash(password).await?;
    replace_password(&state.db, target.id, hash).await
}
