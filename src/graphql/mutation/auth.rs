use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use crate::{
    graphql::{ClientAddr, guards::access, parse_id, state, types::User},
    services::accounts::{self, Registration, Session},
};

/// A new account.
#[derive(InputObject)]
pub struct RegisterInput {
    /// 1–150 letters, digits and @ . + - _; unique without regard to case.
    pub username: String,
    /// A valid address of at most 254 characters; unique without regard to case.
    pub email: String,
    /// At least 8 characters (configurable), at most 1024; not common, not
    /// all digits, not like the username, email or names.
    pub password: String,
    /// At most 150 characters; "" when absent.
    pub first_name: Option<String>,
    /// At most 150 characters; "" when absent.
    pub last_name: Option<String>,
}

/// Credentials.
#[derive(InputObject)]
pub struct LoginInput {
    /// The username or the email address, in any case.
    pub username: String,
    /// The account's password.
    pub password: String,
}

/// Tokens for a logged-in user.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// A JWT, sent as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// Opaque and single use: `refreshToken` exchanges it for a new pair.
    pub refresh_token: String,
    /// Always "Bearer".
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The logged-in user; its guarded fields are readable here.
    pub user: User,
}

impl From<Session> for AuthPayload {
    fn from(session: Session) -> Self {
        Self {
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            token_type: "Bearer".into(),
            expires_in: i64::try_from(session.expires_in).unwrap_or(i64::MAX),
            user: User::as_viewer(session.user),
        }
    }
}

/// The client's network (its IPv4 address or IPv6 /64), for the attempt
/// limits and the budget.
fn client(ctx: &Context<'_>) -> String {
    ctx.data_opt::<ClientAddr>()
        .map_or_else(|| "unknown".to_owned(), ClientAddr::network_key)
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an active, non-staff account. FORBIDDEN when registration is closed.
    async fn register(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new account.")] input: RegisterInput,
    ) -> async_graphql::Result<User> {
        let registration = Registration {
            username: input.username,
            email: input.email,
            password: input.password,
            first_name: input.first_name,
            last_name: input.last_name,
        };
        let user = accounts::register(state(ctx)?, access(ctx), registration, &client(ctx)).await?;
        Ok(User::as_viewer(user))
    }

    /// Logs in by username or email. Failures are UNAUTHENTICATED; too many
    /// of them are RATE_LIMITED.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The credentials.")] input: LoginInput,
    ) -> async_graphql::Result<AuthPayload> {
        let session =
            accounts::login(state(ctx)?, &input.username, input.password, &client(ctx)).await?;
        Ok(session.into())
    }

    /// Exchanges a refresh token for a new pair; the old token is retired.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token a login or refresh returned; it is retired.")]
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let session = accounts::refresh(state(ctx)?, &refresh_token, &client(ctx)).await?;
        Ok(session.into())
    }

    /// Revokes the refresh token given. Always true, so it is safe to repeat.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token to revoke.")] refresh_token: String,
    ) -> async_graphql::Result<bool> {
        accounts::logout(state(ctx)?, &refresh_token).await?;
        Ok(true)
    }

    /// Changes the viewer's own password. Every token issued before stops
    /// working: the client logs in again with the new password.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The password now.")] current_password: String,
        #[graphql(desc = "The new password, held to the password rules.")] new_password: String,
    ) -> async_graphql::Result<bool> {
        accounts::change_password(
            state(ctx)?,
            access(ctx),
            current_password,
            new_password,
            &client(ctx),
        )
        .await?;
        Ok(true)
    }

    /// MANAGE_USERS sets a user's password (only superusers a superuser's); the
    /// user's tokens are revoked.
    async fn set_user_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user whose password is set.")] id: ID,
        #[graphql(desc = "The new password, held to the password rules.")] password: String,
    ) -> async_graphql::Result<bool> {
        let viewer = access(ctx);
        let id = parse_id(&id, "id")?;
        accounts::set_user_password(state(ctx)?, viewer, id, password).await?;
        Ok(true)
    }
}
