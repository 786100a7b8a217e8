//! Filter, ordering and paging inputs of the contract.
use async_graphql::{Enum, ID, InputObject};

use super::{scalars::DateTime, types::DivisionType};

/// Every operator given must hold (AND). `i*` lookups ignore case (full
/// Unicode case folding); `%`, `_` and `\` match themselves.
#[derive(InputObject, Default, Clone, Debug)]
pub struct StringFilter {
    pub exact: Option<String>,
    pub iexact: Option<String>,
    pub contains: Option<String>,
    pub icontains: Option<String>,
    pub startswith: Option<String>,
    pub istartswith: Option<String>,
    pub endswith: Option<String>,
    pub iendswith: Option<String>,
    #[graphql(name = "in")]
    pub in_: Option<Vec<String>>,
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
    pub exact: Option<ID>,
    #[graphql(name = "in")]
    pub in_: Option<Vec<ID>>,
    pub gt: Option<ID>,
    pub gte: Option<ID>,
    pub lt: Option<ID>,
    pub lte: Option<ID>,
    pub is_null: Option<bool>,
}

/// Every operator given must hold (AND).
#[derive(InputObject, Default, Clone, Debug)]
pub struct DateTimeFilter {
    pub exact: Option<DateTime>,
    pub gt: Option<DateTime>,
    pub gte: Option<DateTime>,
    pub lt: Option<DateTime>,
    pub lte: Option<DateTime>,
    pub is_null: Option<bool>,
}

/// Conditions on users; all given must hold.
#[derive(InputObject, Default, Clone, Debug)]
pub struct UserFilter {
    pub id: Option<IdFilter>,
    pub username: Option<StringFilter>,
    pub first_name: Option<StringFilter>,
    pub last_name: Option<StringFilter>,
    pub is_active: Option<bool>,
    pub date_joined: Option<DateTimeFilter>,
    pub division_id: Option<IdFilter>,
    pub division_type: Option<DivisionType>,
    /// Member of a matching group.
    pub group_id: Option<IdFilter>,
    /// Staff only.
    pub email: Option<StringFilter>,
    /// Staff only.
    pub phone_number: Option<StringFilter>,
    /// Staff only.
    pub last_login: Option<DateTimeFilter>,
    /// Staff only.
    pub is_staff: Option<bool>,
    /// Staff only.
    pub is_superuser: Option<bool>,
    pub and: Option<Vec<UserFilter>>,
    pub or: Option<Vec<UserFilter>>,
    pub not: Option<Box<UserFilter>>,
}

/// Conditions on groups; all given must hold.
#[derive(InputObject, Default, Clone, Debug)]
pub struct GroupFilter {
    pub id: Option<IdFilter>,
    pub name: Option<StringFilter>,
    pub and: Option<Vec<GroupFilter>>,
    pub or: Option<Vec<GroupFilter>>,
    pub not: Option<Box<GroupFilter>>,
}

/// Conditions on divisions; all given must hold.
#[derive(InputObject, Default, Clone, Debug)]
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
    pub field: UserOrderField,
    #[graphql(default_with = "Some(SortDirection::Asc)")]
    pub direction: Option<SortDirection>,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum GroupOrderField {
    Id,
    Name,
}

#[derive(InputObject, Clone, Copy, Debug)]
pub struct GroupOrder {
    pub field: GroupOrderField,
    #[graphql(default_with = "Some(SortDirection::Asc)")]
    pub direction: Option<SortDirection>,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DivisionOrderField {
    Id,
    Name,
    CreatedAt,
}

#[derive(InputObject, Clone, Copy, Debug)]
pub struct DivisionOrder {
    pub field: DivisionOrderField,
    #[graphql(default_with = "Some(SortDirection::Asc)")]
    pub direction: Option<SortDirection>,
}
