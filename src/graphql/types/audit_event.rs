use async_graphql::{Enum, ID, Json, Object};
use entity::event;

use crate::{domain, graphql::scalars::DateTime};

/// What an audit event records.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::EventType")]
pub enum AuditEventType {
    /// `user.created`: by `createUser`, `upsertUser`, `register` or the
    /// command line; payload `{user, groupIds}`.
    UserCreated,
    /// `user.updated`: payload `{changes: {field: {before, after}}}`.
    UserUpdated,
    /// `user.activated`: payload `{user}`.
    UserActivated,
    /// `user.deactivated`: payload `{user}`; the user's sessions end.
    UserDeactivated,
    /// `user.deleted`: payload `{user}` as it was.
    UserDeleted,
    /// `user.password_changed`: the user changed their own password.
    UserPasswordChanged,
    /// `user.password_set`: `setUserPassword`.
    UserPasswordSet,
    /// `user.added_to_group`: payload `{userId, groupId}`.
    UserAddedToGroup,
    /// `user.removed_from_group`: payload `{userId, groupId}`.
    UserRemovedFromGroup,
    /// `user.sync_requested`: `requestUserSync`, so that webhook endpoints
    /// send the user to the external system again; payload `{user}`.
    UserSyncRequested,
    /// `user.remote_id_synced`: an endpoint answered a `user.created` or
    /// `user.sync_requested` delivery with `{"remoteId": ...}`; payload
    /// `{remoteId: {before, after}, webhookId}`, actor `webhook <id>`.
    UserRemoteIdSynced,
    /// `group.created`: payload `{group}`.
    GroupCreated,
    /// `group.renamed`: payload `{name: {before, after}}`.
    GroupRenamed,
    /// `group.deleted`: payload `{group}` with the permissions it carried.
    GroupDeleted,
    /// `group.permissions_set`: payload `{permissions: {before, after}}`.
    GroupPermissionsSet,
    /// `division.created`: payload `{division}`.
    DivisionCreated,
    /// `division.updated`: payload `{changes}`.
    DivisionUpdated,
    /// `division.activated`: payload `{division}`.
    DivisionActivated,
    /// `division.deactivated`: payload `{division}`.
    DivisionDeactivated,
    /// `security.login_locked`: the failed attempt that filled a limit of
    /// failed logins (or password-change or refresh-token guesses); the
    /// next is refused. Once per lock; payload `{counted, client}`.
    LoginLocked,
    /// `security.refresh_token_reused`: a retired refresh token came back
    /// after its grace period; its whole family was revoked.
    RefreshTokenReused,
    /// `webhook.created`: payload `{webhook}`: its id, the origin of its
    /// URL (not the path or query), event types, description and whether
    /// it is active; never its secret.
    WebhookCreated,
    /// `webhook.updated`: payload `{before, after}`; by actor `roster`
    /// when the endpoint answered 410 Gone.
    WebhookUpdated,
    /// `webhook.deleted`: payload `{webhook}` as it was.
    WebhookDeleted,
    /// `webhook.secret_rotated`: payload `{webhook}`.
    WebhookSecretRotated,
    /// `webhook.events_replayed`: `replayWebhookEvents`; payload
    /// `{webhook, since, queued}`.
    WebhookEventsReplayed,
}

/// One change roster made, recorded in the transaction that made it.
#[derive(Clone)]
pub struct AuditEvent(pub event::Model);

fn id(value: Option<i64>) -> Option<ID> {
    value.map(|v| ID(v.to_string()))
}

#[Object]
impl AuditEvent {
    /// Orders the log by when the event was written (on PostgreSQL a
    /// transaction that commits later may hold a lower id).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What happened.
    #[graphql(name = "type")]
    async fn event_type(&self) -> Option<AuditEventType> {
        domain::EventType::from_name(&self.0.event_type).map(Into::into)
    }

    /// When it happened.
    async fn occurred_at(&self) -> DateTime {
        self.0.occurred_at.into()
    }

    /// The user who did it; null for the command line and for anonymous
    /// callers.
    async fn actor_id(&self) -> Option<ID> {
        id(self.0.actor_id)
    }

    /// The actor's username at the time, or "command line".
    async fn actor_name(&self) -> Option<&str> {
        self.0.actor_name.as_deref()
    }

    /// The client's address, when the change came over HTTP.
    async fn client(&self) -> Option<&str> {
        self.0.client.as_deref()
    }

    /// The user it is about, if any.
    async fn target_user_id(&self) -> Option<ID> {
        id(self.0.target_user_id)
    }

    /// The group it is about, if any.
    async fn target_group_id(&self) -> Option<ID> {
        id(self.0.target_group_id)
    }

    /// The division it is about, if any.
    async fn target_division_id(&self) -> Option<ID> {
        id(self.0.target_division_id)
    }

    /// What changed, as JSON (see the event's type); never a password,
    /// hash or token.
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.payload).unwrap_or_default())
    }
}
