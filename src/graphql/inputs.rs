//! Filter, ordering and paging inputs of the contract.
use async_graphql::{Enum, ID, InputObject};

use super::{
    scalars::DateTime,
    types::{AuditEventType, DivisionType, Permission},
};
use crate::services::reads;

/// Every operator given must hold (AND). `i*` lookups ignore case (full
/// Unicode case folding); `%`, `_` and `\` match themselves.
#[derive(InputObject, Default, Clone, Debug)]
pub struct StringFilter {
    /// Exactly this text, case included.
    pub exact: Option<String>,
    /// This text, in any case.
    pub iexact: Option<String>,
    /// Contains this text, case included.
    pub contains: Option<String>,
    /// Contains this text, in any case.
    pub icontains: Option<String>,
    /// Starts with this text, case included.
    pub startswith: Option<String>,
    /// Starts with this text, in any case.
    pub istartswith: Option<String>,
    /// Ends with this text, case included.
    pub endswith: Option<String>,
    /// Ends with this text, in any case.
    pub iendswith: Option<String>,
    /// Exactly one of these texts, case included.
    #[graphql(name = "in")]
    pub in_: Option<Vec<String>>,
    /// true: the value is unset (only `phoneNumber` can be); false: set.
    pub is_null: Option<bool>,
    /// After this text in the order lists sort by: the case-folded text,
    /// compared byte by byte. A NULL value matches no comparison.
    pub gt: Option<String>,
    /// This text or after it, as `gt` compares.
    pub gte: Option<String>,
    /// Before this text, as `gt` compares.
    pub lt: Option<String>,
    /// This text or before it, as `gt` compares.
    pub lte: Option<String>,
}

/// Every operator given must hold (AND).
#[derive(InputObject, Default, Clone, Debug)]
pub struct IdFilter {
    /// This id.
    pub exact: Option<ID>,
    /// One of these ids.
    #[graphql(name = "in")]
    pub in_: Option<Vec<ID>>,
    /// Ids above this one.
    pub gt: Option<ID>,
    /// This id or above.
    pub gte: Option<ID>,
    /// Ids below this one.
    pub lt: Option<ID>,
    /// This id or below.
    pub lte: Option<ID>,
    /// true: no id (a user without a division, a MAIN division's parent);
    /// false: one.
    pub is_null: Option<bool>,
}

/// Every operator given must hold (AND).
#[derive(InputObject, Default, Clone, Debug)]
pub struct DateTimeFilter {
    /// At this second.
    pub exact: Option<DateTime>,
    /// After this time.
    pub gt: Option<DateTime>,
    /// At this time or after.
    pub gte: Option<DateTime>,
    /// Before this time.
    pub lt: Option<DateTime>,
    /// At this time or before.
    pub lte: Option<DateTime>,
    /// true: never set (a user who never logged in); false: set.
    pub is_null: Option<bool>,
}

/// Conditions on users; all given must hold.
#[derive(InputObject, Default, Clone, Debug)]
pub struct UserFilter {
    /// The user's id.
    pub id: Option<IdFilter>,
    /// The username.
    pub username: Option<StringFilter>,
    /// The first name ("" when unset).
    pub first_name: Option<StringFilter>,
    /// The last name ("" when unset).
    pub last_name: Option<StringFilter>,
    /// Whether the account is active.
    pub is_active: Option<bool>,
    /// When the account was created.
    pub date_joined: Option<DateTimeFilter>,
    /// The user's division (`isNull: true`: none).
    pub division_id: Option<IdFilter>,
    /// The type of the user's division.
    pub division_type: Option<DivisionType>,
    /// Member of a matching group.
    pub group_id: Option<IdFilter>,
    /// Staff only (holders of VIEW_USER_DETAILS).
    pub email: Option<StringFilter>,
    /// Staff only (holders of VIEW_USER_DETAILS).
    pub phone_number: Option<StringFilter>,
    /// Staff only (holders of VIEW_USER_DETAILS).
    pub last_login: Option<DateTimeFilter>,
    /// The id an external system gave the user (`isNull: false`: the
    /// synced users). Staff only (holders of VIEW_USER_DETAILS).
    pub remote_id: Option<StringFilter>,
    /// Staff only (holders of VIEW_USER_DETAILS).
    pub is_staff: Option<bool>,
    /// Staff only (holders of VIEW_USER_DETAILS).
    pub is_superuser: Option<bool>,
    /// Holds this permission: active, and staff or in a group that carries
    /// it. Holders of VIEW_USER_DETAILS only.
    pub permission: Option<Permission>,
    /// Every one of these holds.
    pub and: Option<Vec<UserFilter>>,
    /// At least one of these holds (`[]`: none does).
    pub or: Option<Vec<UserFilter>>,
    /// This does not hold.
    pub not: Option<Box<UserFilter>>,
}

/// Conditions on groups; all given must hold.
#[derive(InputObject, Default, Clone, Debug)]
pub struct GroupFilter {
    /// The group's id.
    pub id: Option<IdFilter>,
    /// The group's name.
    pub name: Option<StringFilter>,
    /// Every one of these holds.
    pub and: Option<Vec<GroupFilter>>,
    /// At least one of these holds (`[]`: none does).
    pub or: Option<Vec<GroupFilter>>,
    /// This does not hold.
    pub not: Option<Box<GroupFilter>>,
}

/// Conditions on divisions; all given must hold.
#[derive(InputObject, Default, Clone, Debug)]
pub struct DivisionFilter {
    /// The division's id.
    pub id: Option<IdFilter>,
    /// The division's name.
    pub name: Option<StringFilter>,
    /// MAIN or SUB.
    pub division_type: Option<DivisionType>,
    /// Whether the division is active.
    pub is_active: Option<bool>,
    /// The MAIN division a SUB division belongs to (`isNull: true`: MAIN
    /// divisions).
    pub parent_id: Option<IdFilter>,
    /// Every one of these holds.
    pub and: Option<Vec<DivisionFilter>>,
    /// At least one of these holds (`[]`: none does).
    pub or: Option<Vec<DivisionFilter>>,
    /// This does not hold.
    pub not: Option<Box<DivisionFilter>>,
}

/// Conditions on audit events; all given must hold.
#[derive(InputObject, Default, Clone, Debug)]
pub struct AuditEventFilter {
    /// Any of these types.
    #[graphql(name = "type")]
    pub event_type: Option<Vec<AuditEventType>>,
    /// The user who acted (`isNull: true`: the command line or anonymous).
    pub actor_id: Option<IdFilter>,
    /// The user the event is about.
    pub target_user_id: Option<IdFilter>,
    /// The group the event is about.
    pub target_group_id: Option<IdFilter>,
    /// The division the event is about.
    pub target_division_id: Option<IdFilter>,
    /// When it happened.
    pub occurred_at: Option<DateTimeFilter>,
    /// Every one of these holds.
    pub and: Option<Vec<AuditEventFilter>>,
    /// At least one of these holds (`[]`: none does).
    pub or: Option<Vec<AuditEventFilter>>,
    /// This does not hold.
    pub not: Option<Box<AuditEventFilter>>,
}

/// Which way an ordering runs.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum SortDirection {
    #[default]
    Asc,
    Desc,
}

/// Orderable user fields. `EMAIL` and `LAST_LOGIN` are for staff only.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserOrderField {
    Id,
    Username,
    FirstName,
    LastName,
    DateJoined,
    Email,
    LastLogin,
}

/// One ordering key. Text orders ignore case.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct UserOrder {
    /// The field to order by.
    pub field: UserOrderField,
    /// Ascending by default.
    #[graphql(default_with = "Some(SortDirection::Asc)")]
    pub direction: Option<SortDirection>,
}

/// Orderable group fields.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum GroupOrderField {
    Id,
    Name,
}

/// One ordering key. Names order without regard to case.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct GroupOrder {
    /// The field to order by.
    pub field: GroupOrderField,
    /// Ascending by default.
    #[graphql(default_with = "Some(SortDirection::Asc)")]
    pub direction: Option<SortDirection>,
}

/// Orderable division fields.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DivisionOrderField {
    Id,
    Name,
    CreatedAt,
}

/// One ordering key. Names order without regard to case.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct DivisionOrder {
    /// The field to order by.
    pub field: DivisionOrderField,
    /// Ascending by default.
    #[graphql(default_with = "Some(SortDirection::Asc)")]
    pub direction: Option<SortDirection>,
}

// Into the read services' plain queries.

fn boxed<T, U: From<T>>(value: Option<Box<T>>) -> Option<Box<U>> {
    value.map(|inner| Box::new(U::from(*inner)))
}

fn each<T, U: From<T>>(values: Option<Vec<T>>) -> Option<Vec<U>> {
    values.map(|values| values.into_iter().map(U::from).collect())
}

impl From<StringFilter> for reads::StringFilter {
    fn from(f: StringFilter) -> Self {
        Self {
            exact: f.exact,
            iexact: f.iexact,
            contains: f.contains,
            icontains: f.icontains,
            startswith: f.startswith,
            istartswith: f.istartswith,
            endswith: f.endswith,
            iendswith: f.iendswith,
            in_: f.in_,
            is_null: f.is_null,
            gt: f.gt,
            gte: f.gte,
            lt: f.lt,
            lte: f.lte,
        }
    }
}

impl From<IdFilter> for reads::IdFilter {
    fn from(f: IdFilter) -> Self {
        let text = |id: Option<ID>| id.map(|id| id.0);
        Self {
            exact: text(f.exact),
            in_: f.in_.map(|ids| ids.into_iter().map(|id| id.0).collect()),
            gt: text(f.gt),
            gte: text(f.gte),
            lt: text(f.lt),
            lte: text(f.lte),
            is_null: f.is_null,
        }
    }
}

impl From<DateTimeFilter> for reads::DateTimeFilter {
    fn from(f: DateTimeFilter) -> Self {
        let time = |t: Option<DateTime>| t.map(|t| t.0);
        Self {
            exact: time(f.exact),
            gt: time(f.gt),
            gte: time(f.gte),
            lt: time(f.lt),
            lte: time(f.lte),
            is_null: f.is_null,
        }
    }
}

impl From<UserFilter> for reads::UserFilter {
    fn from(f: UserFilter) -> Self {
        Self {
            id: f.id.map(Into::into),
            username: f.username.map(Into::into),
            first_name: f.first_name.map(Into::into),
            last_name: f.last_name.map(Into::into),
            is_active: f.is_active,
            date_joined: f.date_joined.map(Into::into),
            division_id: f.division_id.map(Into::into),
            division_type: f.division_type.map(Into::into),
            group_id: f.group_id.map(Into::into),
            email: f.email.map(Into::into),
            phone_number: f.phone_number.map(Into::into),
            last_login: f.last_login.map(Into::into),
            remote_id: f.remote_id.map(Into::into),
            is_staff: f.is_staff,
            is_superuser: f.is_superuser,
            permission: f.permission.map(Into::into),
            and: each(f.and),
            or: each(f.or),
            not: boxed(f.not),
        }
    }
}

impl From<GroupFilter> for reads::GroupFilter {
    fn from(f: GroupFilter) -> Self {
        Self {
            id: f.id.map(Into::into),
            name: f.name.map(Into::into),
            and: each(f.and),
            or: each(f.or),
            not: boxed(f.not),
        }
    }
}

impl From<DivisionFilter> for reads::DivisionFilter {
    fn from(f: DivisionFilter) -> Self {
        Self {
            id: f.id.map(Into::into),
            name: f.name.map(Into::into),
            division_type: f.division_type.map(Into::into),
            is_active: f.is_active,
            parent_id: f.parent_id.map(Into::into),
            and: each(f.and),
            or: each(f.or),
            not: boxed(f.not),
        }
    }
}

impl From<AuditEventFilter> for reads::AuditEventFilter {
    fn from(f: AuditEventFilter) -> Self {
        Self {
            event_type: f
                .event_type
                .map(|types| types.into_iter().map(Into::into).collect()),
            actor_id: f.actor_id.map(Into::into),
            target_user_id: f.target_user_id.map(Into::into),
            target_group_id: f.target_group_id.map(Into::into),
            target_division_id: f.target_division_id.map(Into::into),
            occurred_at: f.occurred_at.map(Into::into),
            and: each(f.and),
            or: each(f.or),
            not: boxed(f.not),
        }
    }
}

fn descending(direction: Option<SortDirection>) -> bool {
    direction == Some(SortDirection::Desc)
}

impl From<UserOrder> for reads::Order<reads::UserOrderField> {
    fn from(o: UserOrder) -> Self {
        use reads::UserOrderField as F;
        let field = match o.field {
            UserOrderField::Id => F::Id,
            UserOrderField::Username => F::Username,
            UserOrderField::FirstName => F::FirstName,
            UserOrderField::LastName => F::LastName,
            UserOrderField::DateJoined => F::DateJoined,
            UserOrderField::Email => F::Email,
            UserOrderField::LastLogin => F::LastLogin,
        };
        Self {
            field,
            descending: descending(o.direction),
        }
    }
}

impl From<GroupOrder> for reads::Order<reads::GroupOrderField> {
    fn from(o: GroupOrder) -> Self {
        let field = match o.field {
            GroupOrderField::Id => reads::GroupOrderField::Id,
            GroupOrderField::Name => reads::GroupOrderField::Name,
        };
        Self {
            field,
            descending: descending(o.direction),
        }
    }
}

impl From<DivisionOrder> for reads::Order<reads::DivisionOrderField> {
    fn from(o: DivisionOrder) -> Self {
        let field = match o.field {
            DivisionOrderField::Id => reads::DivisionOrderField::Id,
            DivisionOrderField::Name => reads::DivisionOrderField::Name,
            DivisionOrderField::CreatedAt => reads::DivisionOrderField::CreatedAt,
        };
        Self {
            field,
            descending: descending(o.direction),
        }
    }
}
