//! What an event of the audit log says happened.
use std::fmt;

/// The kinds of event. Their names (`user.created`) are what the database
/// stores and webhooks will send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    UserCreated,
    UserUpdated,
    UserActivated,
    UserDeactivated,
    UserDeleted,
    UserPasswordChanged,
    UserPasswordSet,
    UserAddedToGroup,
    UserRemovedFromGroup,
    UserSyncRequested,
    UserRemoteIdSynced,
    GroupCreated,
    GroupRenamed,
    GroupDeleted,
    GroupPermissionsSet,
    DivisionCreated,
    DivisionUpdated,
    DivisionActivated,
    DivisionDeactivated,
    LoginLocked,
    RefreshTokenReused,
    WebhookCreated,
    WebhookUpdated,
    WebhookDeleted,
    WebhookSecretRotated,
    WebhookEventsReplayed,
}

impl EventType {
    pub const ALL: [EventType; 26] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserActivated,
        EventType::UserDeactivated,
        EventType::UserDeleted,
        EventType::UserPasswordChanged,
        EventType::UserPasswordSet,
        EventType::UserAddedToGroup,
        EventType::UserRemovedFromGroup,
        EventType::UserSyncRequested,
        EventType::UserRemoteIdSynced,
        EventType::GroupCreated,
        EventType::GroupRenamed,
        EventType::GroupDeleted,
        EventType::GroupPermissionsSet,
        EventType::DivisionCreated,
        EventType::DivisionUpdated,
        EventType::DivisionActivated,
        EventType::DivisionDeactivated,
        EventType::LoginLocked,
        EventType::RefreshTokenReused,
        EventType::WebhookCreated,
        EventType::WebhookUpdated,
        EventType::WebhookDeleted,
        EventType::WebhookSecretRotated,
        EventType::WebhookEventsReplayed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserActivated => "user.activated",
            EventType::UserDeactivated => "user.deactivated",
            EventType::UserDeleted => "user.deleted",
            EventType::UserPasswordChanged => "user.password_changed",
            EventType::UserPasswordSet => "user.password_set",
            EventType::UserAddedToGroup => "user.added_to_group",
            EventType::UserRemovedFromGroup => "user.removed_from_group",
            EventType::UserSyncRequested => "user.sync_requested",
            EventType::UserRemoteIdSynced => "user.remote_id_synced",
            EventType::GroupCreated => "group.created",
            EventType::GroupRenamed => "group.renamed",
            EventType::GroupDeleted => "group.deleted",
            EventType::GroupPermissionsSet => "group.permissions_set",
            EventType::DivisionCreated => "division.created",
            EventType::DivisionUpdated => "division.updated",
            EventType::DivisionActivated => "division.activated",
            EventType::DivisionDeactivated => "division.deactivated",
            EventType::LoginLocked => "security.login_locked",
            EventType::RefreshTokenReused => "security.refresh_token_reused",
            EventType::WebhookCreated => "webhook.created",
            EventType::WebhookUpdated => "webhook.updated",
            EventType::WebhookDeleted => "webhook.deleted",
            EventType::WebhookSecretRotated => "webhook.secret_rotated",
            EventType::WebhookEventsReplayed => "webhook.events_replayed",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::EventType;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for t in EventType::ALL {
            assert_eq!(EventType::from_name(t.name()), Some(t));
        }
        let mut names: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
    }
}
