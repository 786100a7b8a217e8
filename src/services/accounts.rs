//! Registration, login, token refresh, logout and password changes.
//!
//! Every one of them that hashes a password, or could be used to guess a
//! token, first spends from the client's budget (`client_budget`); the
//! hashing itself waits for one of a bounded set of threads
//! (`password_hash::Hasher`).
use entity::user;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use serde_json::json;

use super::{
    access::Access,
    client_budget,
    events::{self, Actor, Target},
    login_limit::{self, LoginLimit, Subject},
    password_hash::Verified,
    refresh_tokens::{self, Rotated, Rotation},
    tokens::INVALID_TOKEN,
    users::{self, NewUser},
};
use crate::{
    checkpoints, clock,
    domain::{EventType, Permission, fold, password::PersonalInfo},
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
/// Everything that can be checked is checked before the password is
/// hashed, so a refused registration costs no hash (one that breaks a field
/// rule costs not even the client's budget).
#[tracing::instrument(level = "debug", skip_all, fields(username = %registration.username))]
pub async fn register(
    state: &AppState,
    viewer: &Access,
    registration: Registration,
    client: &str,
) -> Result<user::Model> {
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
    let _share = state.hasher.share(client)?;
    // Spent before the uniqueness check too: that answer says whether an
    // email is registered, and must not be had at database speed.
    client_budget::spend(&state.db, state.config.client_budget, client).await?;
    let taken = users::taken_fields(&state.db, Some(&username), Some(&email), None).await?;
    if !taken.is_empty() {
        return Err(Error::Conflict(taken));
    }
    let password_hash = state.hasher.hash(registration.password).await?;
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
    // `users::create` checks both keys again: a racing insert is a CONFLICT.
    events::create_user(&state.db, new, |user| Actor::themself(user, viewer)).await
}

/// The user a login identifier names: a username first, else an email.
async fn find_by_identifier(
    db: &impl ConnectionTrait,
    folded: &str,
) -> Result<Option<user::Model>> {
    let candidates = users::with_username_or_email(db, folded, folded).await?;
    let by_username = candidates.iter().position(|u| u.username_folded == folded);
    Ok(match by_username {
        Some(index) => candidates.into_iter().nth(index),
        None => candidates.into_iter().next(),
    })
}

/// Logs in by username or email. Every failure is the same
/// `UNAUTHENTICATED` after the same work (a hash is always verified).
#[tracing::instrument(level = "debug", skip(state, password))]
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
    let _share = state.hasher.share(client)?;
    client_budget::spend(&state.db, state.config.client_budget, client).await?;
    let folded = fold(identifier);
    let user = find_by_identifier(&state.db, &folded).await?;
    let subject = user
        .as_ref()
        .map_or(Subject::Unknown(&folded), |user| Subject::User(user.id));
    let attempt = login_limit::begin(&state.db, state.login_limit(), &subject, client).await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let verified = match state.hasher.verify(password.clone(), stored).await {
        Ok(verified) => verified,
        Err(error) => {
            // Busy: no password was checked, so no failure to count.
            attempt.discard(&state.db).await?;
            return Err(error);
        }
    };
    let user = match (user, verified) {
        (Some(user), Verified::Yes | Verified::YesButOutdated) if user.is_active => user,
        _ => {
            attempt.failed(&state.db).await?;
            return Err(Error::Unauthenticated(BAD_CREDENTIALS));
        }
    };
    state.checkpoints.pass(checkpoints::LOGIN_VERIFIED).await;
    let rehash = match verified {
        Verified::YesButOutdated => state.hasher.hash(password).await.ok(),
        _ => None,
    };
    match open_session(state, user, rehash).await? {
        Some(session) => {
            attempt.succeeded(&state.db).await?;
            Ok(session)
        }
        None => {
            // The password changed, or the user was deactivated, while it
            // was checked: that is no failure of this client's.
            attempt.discard(&state.db).await?;
            Err(Error::Unauthenticated(BAD_CREDENTIALS))
        }
    }
}

/// Records the login and issues its tokens, if the user is still active
/// and still has the `token_version` under which the password was checked:
/// a conditional update and the refresh token's insert in one transaction.
/// A password change or deactivation that commits first makes the update
/// match nothing; one that commits after revokes the refresh token issued
/// here, and its version bump voids the access token.
async fn open_session(
    state: &AppState,
    user: user::Model,
    rehash: Option<String>,
) -> Result<Option<Session>> {
    let now = clock::now();
    let txn = state.db.begin().await?;
    let mut update =
        user::Entity::update_many().col_expr(user::Column::LastLogin, Expr::value(now));
    if let Some(hash) = rehash {
        update = update.col_expr(user::Column::PasswordHash, Expr::value(hash));
    }
    let updated = update
        .filter(user::Column::Id.eq(user.id))
        .filter(user::Column::TokenVersion.eq(user.token_version))
        .filter(user::Column::IsActive.eq(true))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(None);
    }
    let refresh_token =
        refresh_tokens::issue(&txn, &user, None, state.config.refresh_token_ttl).await?;
    txn.commit().await?;
    let user = user::Model {
        last_login: Some(now),
        ..user
    };
    session(state, user, refresh_token).map(Some)
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

/// Exchanges a refresh token for a new pair. Unknown tokens count against
/// the client like failed logins, so refresh tokens cannot be guessed at
/// speed either.
pub async fn refresh(state: &AppState, token: &str, client: &str) -> Result<Session> {
    let config = &state.config;
    client_budget::spend(&state.db, state.config.client_budget, client).await?;
    let limit = LoginLimit {
        account_max_failures: None,
        ..state.login_limit()
    };
    let attempt = login_limit::begin(&state.db, limit, &Subject::RefreshGuesses, client).await?;
    let rotation = refresh_tokens::rotate(
        &state.db,
        &state.checkpoints,
        token,
        config.refresh_token_ttl,
        config.refresh_reuse_grace,
    )
    .await?;
    match rotation {
        Rotation::Done(rotated) => {
            attempt.discard(&state.db).await?;
            let Rotated { user, token } = *rotated;
            session(state, user, token)
        }
        Rotation::Unknown => {
            attempt.failed(&state.db).await?;
            Err(Error::Unauthenticated(refresh_tokens::INVALID))
        }
        Rotation::Refused => {
            attempt.discard(&state.db).await?;
            Err(Error::Unauthenticated(refresh_tokens::INVALID))
        }
    }
}

/// Revokes the given refresh token; unknown or already revoked tokens are
/// fine, so that logging out twice is harmless.
pub async fn logout(state: &AppState, token: &str) -> Result<()> {
    refresh_tokens::revoke(&state.db, token).await
}

/// The row a password change was checked against: it is replaced only if
/// it is still that row.
struct Unchanged<'a> {
    token_version: i64,
    password_hash: &'a str,
}

/// Stores a new password hash, and makes every token issued before it
/// useless: access tokens by the version bump, refresh tokens by revocation.
/// With `unchanged`, only if the user's version and hash are still those;
/// false when they are not.
async fn replace_password(
    db: &DatabaseConnection,
    user_id: i64,
    hash: String,
    unchanged: Option<Unchanged<'_>>,
    recorded_as: (&Actor, EventType),
) -> Result<bool> {
    let txn = db.begin().await?;
    let replaced = write_password(&txn, user_id, hash, unchanged, recorded_as).await?;
    if replaced {
        txn.commit().await?;
    }
    Ok(replaced)
}

/// [`replace_password`], inside the caller's transaction.
async fn write_password(
    txn: &impl ConnectionTrait,
    user_id: i64,
    hash: String,
    unchanged: Option<Unchanged<'_>>,
    (actor, kind): (&Actor, EventType),
) -> Result<bool> {
    let mut update = user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .col_expr(
            user::Column::TokenVersion,
            Expr::col(user::Column::TokenVersion).add(1),
        )
        .filter(user::Column::Id.eq(user_id));
    if let Some(unchanged) = unchanged {
        update = update
            .filter(user::Column::TokenVersion.eq(unchanged.token_version))
            .filter(user::Column::PasswordHash.eq(unchanged.password_hash))
            .filter(user::Column::IsActive.eq(true));
    }
    if update.exec(txn).await?.rows_affected != 1 {
        return Ok(false);
    }
    refresh_tokens::revoke_all_of_user(txn, user_id).await?;
    login_limit::forget_known_clients(txn, user_id).await?;
    let payload = json!({ "userId": user_id.to_string() });
    events::record(txn, actor, kind, Target::user(user_id), payload).await?;
    Ok(true)
}

fn personal_info(user: &user::Model) -> PersonalInfo<'_> {
    PersonalInfo {
        username: &user.username,
        email: &user.email,
        first_name: &user.first_name,
        last_name: &user.last_name,
    }
}

/// The viewer changes their own password. The current password is checked
/// against the user's row as the database has it now (never a cached
/// copy), and the new one is stored only if that row has not changed since
/// (an optimistic check, so no lock is held while hashing).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn change_password(
    state: &AppState,
    access: &Access,
    current: String,
    new: String,
    client: &str,
) -> Result<()> {
    let viewer = access.user()?;
    let fresh = user::Entity::find_by_id(viewer.id)
        .one(&state.db)
        .await?
        .filter(|user| user.is_active && user.token_version == viewer.token_version)
        .ok_or(Error::Unauthenticated(INVALID_TOKEN))?;
    let _share = state.hasher.share(client)?;
    client_budget::spend(&state.db, state.config.client_budget, client).await?;
    // A stolen access token must not buy unlimited guesses at the password:
    // wrong current passwords are limited as failed logins are.
    let subject = Subject::PasswordChange(fresh.id);
    let attempt = login_limit::begin(&state.db, state.login_limit(), &subject, client).await?;
    let verified = match state
        .hasher
        .verify(current, fresh.password_hash.clone())
        .await
    {
        Ok(verified) => verified,
        Err(error) => {
            attempt.discard(&state.db).await?;
            return Err(error);
        }
    };
    let mut errors = FieldErrors::new();
    if verified == Verified::No {
        attempt.failed(&state.db).await?;
        errors.add("currentPassword", WRONG_CURRENT_PASSWORD);
    } else {
        attempt.discard(&state.db).await?;
    }
    errors.extend(
        "newPassword",
        state.password_policy().check(&new, personal_info(&fresh)),
    );
    errors.into_result()?;
    let hash = state.hasher.hash(new).await?;
    let unchanged = Unchanged {
        token_version: fresh.token_version,
        password_hash: fresh.password_hash.as_deref().unwrap_or_default(),
    };
    let actor = Actor::themself(&fresh, access);
    let recorded_as = (&actor, EventType::UserPasswordChanged);
    match replace_password(&state.db, fresh.id, hash, Some(unchanged), recorded_as).await? {
        true => Ok(()),
        // Changed meanwhile, by this user elsewhere or by staff: this
        // session has ended.
        false => Err(Error::Unauthenticated(INVALID_TOKEN)),
    }
}

/// `MANAGE_USERS` sets the password of a user the viewer may manage; only
/// superusers a superuser's.
#[tracing::instrument(level = "debug", skip(state, viewer, password))]
pub async fn set_user_password(
    state: &AppState,
    viewer: &Access,
    user_id: i64,
    password: String,
) -> Result<()> {
    viewer.require(Permission::ManageUsers)?;
    let target = user::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound("No user with that id.".into()))?;
    viewer.may_manage_user(&state.db, &target).await?;
    let problems = state
        .password_policy()
        .check(&password, personal_info(&target));
    if !problems.is_empty() {
        let mut errors = FieldErrors::new();
        errors.extend("password", problems);
        return Err(Error::BadUserInput(errors));
    }
    let hash = state.hasher.hash(password).await?;
    // Checked again where the password is written: the target may have
    // gained permissions while the password was hashed.
    let txn = super::begin_write(&state.db).await?;
    let target = user::Entity::find_by_id(user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::NotFound("No user with that id.".into()))?;
    viewer.may_manage_user(&txn, &target).await?;
    let recorded_as = (&Actor::of(viewer), EventType::UserPasswordSet);
    if !write_password(&txn, target.id, hash, None, recorded_as).await? {
        return Err(Error::NotFound("No user with that id.".into()));
    }
    txn.commit().await?;
    Ok(())
}
