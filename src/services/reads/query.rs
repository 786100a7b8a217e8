//! What a list read asks for, in plain Rust: the GraphQL layer converts its
//! inputs into these, and a test or a script can build them directly.
use chrono::{DateTime, Utc};
use entity::division::DivisionType;

use super::pagination::PageArgs;
use crate::domain::{EventType, Permission};

/// Text lookups; every one given must hold. `i*` lookups and the
/// comparisons use the full Unicode case fold.
#[derive(Debug, Clone, Default)]
pub struct StringFilter {
    pub exact: Option<String>,
    pub iexact: Option<String>,
    pub contains: Option<String>,
    pub icontains: Option<String>,
    pub startswith: Option<String>,
    pub istartswith: Option<String>,
    pub endswith: Option<String>,
    pub iendswith: Option<String>,
    pub in_: Option<Vec<String>>,
    pub is_null: Option<bool>,
    pub gt: Option<String>,
    pub gte: Option<String>,
    pub lt: Option<String>,
    pub lte: Option<String>,
}

/// Id lookups, the ids as the client gave them (a bad one is
/// `BAD_USER_INPUT` under `filter`).
#[derive(Debug, Clone, Default)]
pub struct IdFilter {
    pub exact: Option<String>,
    pub in_: Option<Vec<String>>,
    pub gt: Option<String>,
    pub gte: Option<String>,
    pub lt: Option<String>,
    pub lte: Option<String>,
    pub is_null: Option<bool>,
}

/// Time lookups.
#[derive(Debug, Clone, Default)]
pub struct DateTimeFilter {
    pub exact: Option<DateTime<Utc>>,
    pub gt: Option<DateTime<Utc>>,
    pub gte: Option<DateTime<Utc>>,
    pub lt: Option<DateTime<Utc>>,
    pub lte: Option<DateTime<Utc>>,
    pub is_null: Option<bool>,
}

/// Conditions on users; all given must hold.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub id: Option<IdFilter>,
    pub username: Option<StringFilter>,
    pub first_name: Option<StringFilter>,
    pub last_name: Option<StringFilter>,
    pub is_active: Option<bool>,
    pub date_joined: Option<DateTimeFilter>,
    pub division_id: Option<IdFilter>,
    pub division_type: Option<DivisionType>,
    pub group_id: Option<IdFilter>,
    pub email: Option<StringFilter>,
    pub phone_number: Option<StringFilter>,
    pub last_login: Option<DateTimeFilter>,
    pub remote_id: Option<StringFilter>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
    pub permission: Option<Permission>,
    pub and: Option<Vec<UserFilter>>,
    pub or: Option<Vec<UserFilter>>,
    pub not: Option<Box<UserFilter>>,
}

/// Conditions on groups; all given must hold.
#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    pub id: Option<IdFilter>,
    pub name: Option<StringFilter>,
    pub and: Option<Vec<GroupFilter>>,
    pub or: Option<Vec<GroupFilter>>,
    pub not: Option<Box<GroupFilter>>,
}

/// Conditions on divisions; all given must hold.
#[derive(Debug, Clone, Default)]
pub struct DivisionFilter {
    pub id: Option<IdFilter>,
    pub name: Option<StringFilter>,
    pub division_type: Option<DivisionType>,
    pub is_active: Option<bool>,
    pub parent_id: Option<IdFilter>,
    pub and: Option<Vec<DivisionFilter>>,
    pub or: Option<Vec<DivisionFilter>>,
    pub not: Option<Box<DivisionFilter>>,
}

/// Conditions on audit events; all given must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditEventFilter {
    /// Any of these types.
    pub event_type: Option<Vec<EventType>>,
    pub actor_id: Option<IdFilter>,
    pub target_user_id: Option<IdFilter>,
    pub target_group_id: Option<IdFilter>,
    pub target_division_id: Option<IdFilter>,
    pub occurred_at: Option<DateTimeFilter>,
    pub and: Option<Vec<AuditEventFilter>>,
    pub or: Option<Vec<AuditEventFilter>>,
    pub not: Option<Box<AuditEventFilter>>,
}

/// A page of the audit log, newest first unless `oldest_first`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only the events about this user (`User.auditEvents`).
    pub user: Option<i64>,
    pub filter: Option<AuditEventFilter>,
    pub oldest_first: bool,
    pub page: PageArgs,
    pub with_total: bool,
}

/// One key of an ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order<F> {
    pub field: F,
    pub descending: bool,
}

/// Orderable user fields; `Email` and `LastLogin` need `VIEW_USER_DETAILS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOrderField {
    Id,
    Username,
    FirstName,
    LastName,
    DateJoined,
    Email,
    LastLogin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupOrderField {
    Id,
    Name,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DivisionOrderField {
    Id,
    Name,
    CreatedAt,
}

/// Which users a list starts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserScope {
    #[default]
    Everyone,
    /// The members of a group (`Group.users`).
    Group(i64),
    /// The users of a division (`Division.users`).
    Division(i64),
}

/// A list of users: `Query.users`, `Group.users`, `Division.users`.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub scope: UserScope,
    pub filter: Option<UserFilter>,
    pub search: Option<String>,
    pub order: Vec<Order<UserOrderField>>,
    pub page: PageArgs,
    /// Whether to count every match (`totalCount`).
    pub with_total: bool,
}

/// A list of groups or divisions.
#[derive(Debug, Clone)]
pub struct ListQuery<F, O> {
    pub filter: Option<F>,
    pub order: Vec<Order<O>>,
    pub page: PageArgs,
    pub with_total: bool,
}

pub type GroupQuery = ListQuery<GroupFilter, GroupOrderField>;
pub type DivisionQuery = ListQuery<DivisionFilter, DivisionOrderField>;
