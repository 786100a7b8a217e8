use async_graphql::Enum;

use crate::domain;

/// What a user may do beyond their own account. Groups carry permissions
/// and their active members hold them; staff hold every one.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::Permission")]
pub enum Permission {
    /// Read every user's email, phone number, last login, flags and
    /// permissions; filter, order and search on them; list `Group.users`
    /// and `Division.users`.
    ViewUserDetails,
    /// Create, update, activate, deactivate and delete users and set their
    /// passwords, for users who hold no permission you lack.
    ManageUsers,
    /// Add users to groups and remove them, for groups whose permissions
    /// you hold.
    ManageGroupMembers,
    /// Create, rename and delete groups and set their permissions, for
    /// groups whose permissions you hold.
    ManageGroups,
    /// Create, update, activate and deactivate divisions.
    ManageDivisions,
    /// Read the audit log (`auditEvents`, `User.auditEvents`).
    ViewAuditLog,
}

/// The permissions of a set, in the schema's order.
pub fn listed(set: domain::Permissions) -> Vec<Permission> {
    set.iter().map(Permission::from).collect()
}
