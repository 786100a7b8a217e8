//! Compiles filter inputs into one SQL condition (SeaORM's condition
//! builder): nothing is filtered in Rust after loading.
//!
//! Case-insensitive lookups compare the stored `*_folded` column with the
//! folded value, so they fold Unicode case the same way on every database.
//! LIKE patterns escape `%`, `_` and `\`, so values match literally.
//!
//! Substring lookups on users use an index of trigrams where there is one
//! (migration 19): on PostgreSQL `pg_trgm`'s GIN indexes serve the `LIKE`
//! of a folded column as it is; on SQLite the FTS5 table `users_trigrams`
//! is asked first, for patterns of 3 characters or more, and the `LIKE`
//! then decides. Since case folding maps each character on its own, a
//! value holding `v` holds `fold(v)` in its fold, so the folded column's
//! index also narrows the case-sensitive lookups of the raw column.
use chrono::{SubsecRound, Utc};
use entity::{division, event, group, membership, user};
use sea_orm::{
    ColumnTrait, Condition, EntityName,
    sea_query::{Alias, Expr, ExprTrait, IntoIden, LikeExpr, Query, SimpleExpr},
};

use super::query::{
    AuditEventFilter, DateTimeFilter, DivisionFilter, GroupFilter, IdFilter, StringFilter,
    UserFilter,
};
use super::trigrams::{TRIGRAM, TrigramPlan};
use crate::{
    config::FilterLimits,
    domain::fold,
    error::Error,
    services::{access, parse_id},
};

/// How the database finds users by substring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubstringIndex {
    /// The `LIKE` alone, its pattern a parameter.
    #[default]
    Like,
    /// PostgreSQL: the `LIKE` alone, which the planner serves from
    /// `pg_trgm`'s indexes (or by a scan, where the extension could not be
    /// created), planned for each pattern (`lists`: a custom plan); a
    /// lookup of a raw column also asks its folded twin, which is indexed.
    PostgresTrigrams,
    /// SQLite: `users_trigrams` narrows to the rows holding the rarest
    /// trigrams of the pattern, as `trigrams::plan` chose them, then the
    /// `LIKE` decides.
    SqliteTrigrams,
}

/// An FTS5 query for rows holding every one of `trigrams` in `columns` of
/// `users_trigrams`, each a phrase of its own (quoted: text, not syntax).
fn trigram_match(columns: &[&str], trigrams: &[String]) -> String {
    let phrases: Vec<String> = trigrams
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    format!("{{{}}} : ({})", columns.join(" "), phrases.join(" AND "))
}

/// Users whose `columns` hold the trigrams `plan` chose for `needle` (a
/// folded pattern): a superset of those whose folded columns hold
/// `needle`. None when `plan` chose none for it (too short, or too common:
/// it scans), or off SQLite.
fn trigram_candidates(
    index: SubstringIndex,
    plan: &TrigramPlan,
    columns: &[&str],
    needle: &str,
) -> Option<SimpleExpr> {
    if index != SubstringIndex::SqliteTrigrams || columns.is_empty() {
        return None;
    }
    let trigrams = plan.get(needle).filter(|t| !t.is_empty())?;
    let rows = Query::select()
        .expr(Expr::cust("rowid"))
        .from(Alias::new("users_trigrams"))
        .and_where(Expr::cust_with_values(
            "users_trigrams MATCH ?",
            [trigram_match(columns, trigrams)],
        ))
        .to_owned();
    Some(Expr::col(user::Column::Id).in_subquery(rows))
}

/// The argument name under which bad ids in a filter are reported.
const FILTER: &str = "filter";

/// What one filter may still use, against its limits
/// (`ROSTER_MAX_FILTER_*`, `ROSTER_MAX_IN_VALUES`, `ROSTER_MAX_TEXT_LENGTH`).
/// Checked as it compiles, so an oversized filter is refused before any SQL
/// is built, with a message naming the limit (a filter of 20,000 `or`
/// branches would otherwise be SQL that SQLite refuses to parse).
/// With the index substring lookups may use, and how.
struct Budget {
    limits: FilterLimits,
    nodes: usize,
    in_values: usize,
    index: SubstringIndex,
    plan: TrigramPlan,
}

impl Budget {
    fn new(limits: FilterLimits, index: SubstringIndex) -> Self {
        Self {
            limits,
            nodes: 0,
            in_values: 0,
            index,
            plan: TrigramPlan::new(),
        }
    }

    /// One more filter object, `depth` levels of `and`/`or`/`not` down.
    fn node(&mut self, depth: usize) -> Result<(), Error> {
        self.nodes += 1;
        let FilterLimits {
            max_nodes,
            max_depth,
            ..
        } = self.limits;
        if depth > max_depth {
            return Err(Error::bad_input(
                FILTER,
                format!("Filters may nest and/or/not at most {max_depth} deep."),
            ));
        }
        if self.nodes > max_nodes {
            return Err(Error::bad_input(
                FILTER,
                format!("A filter may hold at most {max_nodes} filter objects."),
            ));
        }
        Ok(())
    }

    fn in_list(&mut self, len: usize) -> Result<(), Error> {
        self.in_values += len;
        let max = self.limits.max_in_values;
        if self.in_values > max {
            return Err(Error::bad_input(
                FILTER,
                format!("The in lists of a filter may hold at most {max} values in all."),
            ));
        }
        Ok(())
    }

    fn text<'a>(&self, value: &'a str) -> Result<&'a str, Error> {
        bounded_text(value, FILTER, self.limits.max_text_length)
    }
}

/// `value`, unless it is longer than `max` characters; too long is
/// `BAD_USER_INPUT` on `argument`.
fn bounded_text<'a>(value: &'a str, argument: &str, max: usize) -> Result<&'a str, Error> {
    // A byte count first: no need to count the characters of short text.
    if value.len() > max && value.chars().count() > max {
        return Err(Error::bad_input(
            argument,
            format!("Text in a {argument} may be at most {max} characters long."),
        ));
    }
    // No stored text holds one, and PostgreSQL refuses it in any text.
    if value.contains('\0') {
        return Err(Error::bad_input(
            argument,
            format!("Text in a {argument} may not hold the NUL character."),
        ));
    }
    Ok(value)
}

fn never() -> Condition {
    Condition::all().add(Expr::val(1).eq(0))
}

fn escape_like(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `column LIKE pattern`, `\\` escaping.
fn like(column: impl IntoIden, pattern: String) -> SimpleExpr {
    Expr::col(column).like(LikeExpr::new(pattern).escape('\\'))
}

/// A text column, its folded twin, whether it may be NULL, and the name
/// of the folded twin in `users_trigrams` when it is there.
pub struct TextColumn<C> {
    pub raw: C,
    pub folded: C,
    pub nullable: bool,
    pub trigrams: Option<&'static str>,
}

/// `StringFilter` on a text column.
fn string_condition<C: ColumnTrait + IntoIden + Copy>(
    column: &TextColumn<C>,
    filter: &StringFilter,
    budget: &mut Budget,
    depth: usize,
) -> Result<Condition, Error> {
    budget.node(depth)?;
    let values = [
        &filter.exact,
        &filter.iexact,
        &filter.contains,
        &filter.icontains,
        &filter.startswith,
        &filter.istartswith,
        &filter.endswith,
        &filter.iendswith,
        &filter.gt,
        &filter.gte,
        &filter.lt,
        &filter.lte,
    ];
    for value in values.into_iter().flatten() {
        budget.text(value)?;
    }
    if let Some(values) = &filter.in_ {
        budget.in_list(values.len())?;
        for value in values {
            budget.text(value)?;
        }
    }
    let mut all = Condition::all();
    let (raw, folded) = (column.raw, column.folded);
    for (needle, of_raw) in [
        (&filter.contains, true),
        (&filter.icontains, false),
        (&filter.startswith, true),
        (&filter.istartswith, false),
        (&filter.endswith, true),
        (&filter.iendswith, false),
    ] {
        if let Some(needle) = needle {
            let needle = fold(needle);
            all = all.add(substring_index(column, &needle, of_raw, budget));
        }
    }
    if let Some(v) = &filter.exact {
        all = all.add(Expr::col(raw).eq(v.as_str()));
    }
    if let Some(v) = &filter.iexact {
        all = all.add(Expr::col(folded).eq(fold(v)));
    }
    if let Some(v) = &filter.contains {
        all = all.add(like(raw, format!("%{}%", escape_like(v))));
    }
    if let Some(v) = &filter.icontains {
        all = all.add(like(folded, format!("%{}%", escape_like(&fold(v)))));
    }
    if let Some(v) = &filter.startswith {
        all = all.add(like(raw, format!("{}%", escape_like(v))));
    }
    if let Some(v) = &filter.istartswith {
        all = all.add(like(folded, format!("{}%", escape_like(&fold(v)))));
    }
    if let Some(v) = &filter.endswith {
        all = all.add(like(raw, format!("%{}", escape_like(v))));
    }
    if let Some(v) = &filter.iendswith {
        all = all.add(like(folded, format!("%{}", escape_like(&fold(v)))));
    }
    if let Some(values) = &filter.in_ {
        all = all.add(Expr::col(raw).is_in(values.iter().map(String::as_str)));
    }
    // As lists order: the folded text, byte by byte on both databases.
    if let Some(v) = &filter.gt {
        all = all.add(Expr::col(folded).gt(fold(v)));
    }
    if let Some(v) = &filter.gte {
        all = all.add(Expr::col(folded).gte(fold(v)));
    }
    if let Some(v) = &filter.lt {
        all = all.add(Expr::col(folded).lt(fold(v)));
    }
    if let Some(v) = &filter.lte {
        all = all.add(Expr::col(folded).lte(fold(v)));
    }
    if let Some(is_null) = filter.is_null {
        all = match (is_null, column.nullable) {
            (true, true) => all.add(Expr::col(raw).is_null()),
            (false, true) => all.add(Expr::col(raw).is_not_null()),
            (true, false) => never(),
            (false, false) => all,
        };
    }
    Ok(all)
}

/// What narrows a substring lookup of `needle` (folded) on `column` (`of_raw`:
/// a lookup of the raw column) by its index: on SQLite, the rows
/// `users_trigrams` finds; on PostgreSQL, for a lookup of the raw column,
/// the `LIKE` of its folded twin, which `pg_trgm`'s index serves. Nothing
/// (true) where neither applies.
fn substring_index<C: ColumnTrait + IntoIden + Copy>(
    column: &TextColumn<C>,
    needle: &str,
    of_raw: bool,
    budget: &Budget,
) -> Condition {
    let Some(name) = column.trigrams else {
        return Condition::all();
    };
    let index = budget.index;
    // Not for a column that may be NULL: under a `not`, `NOT (id IN (…)
    // AND NULL LIKE …)` is true where `NOT (NULL LIKE …)` is not.
    let candidates = match column.nullable {
        true => None,
        false => trigram_candidates(index, &budget.plan, &[name], needle),
    };
    if let Some(candidates) = candidates {
        return Condition::all().add(candidates);
    }
    let twins = column.raw.into_iden().to_string() != column.folded.into_iden().to_string();
    if index == SubstringIndex::PostgresTrigrams
        && of_raw
        && twins
        && needle.chars().nth(TRIGRAM - 1).is_some()
    {
        let pattern = format!("%{}%", escape_like(needle));
        return Condition::all().add(like(column.folded, pattern));
    }
    Condition::all()
}

/// `IdFilter` on an id column.
fn id_condition(
    column: impl IntoIden + Copy,
    nullable: bool,
    filter: &IdFilter,
    budget: &mut Budget,
    depth: usize,
) -> Result<Condition, Error> {
    budget.node(depth)?;
    if let Some(values) = &filter.in_ {
        budget.in_list(values.len())?;
    }
    let id = |value: &String| parse_id(value, FILTER);
    let mut all = Condition::all();
    if let Some(v) = &filter.exact {
        all = all.add(Expr::col(column).eq(id(v)?));
    }
    if let Some(values) = &filter.in_ {
        let ids = values.iter().map(id).collect::<Result<Vec<_>, _>>()?;
        all = all.add(Expr::col(column).is_in(ids));
    }
    if let Some(v) = &filter.gt {
        all = all.add(Expr::col(column).gt(id(v)?));
    }
    if let Some(v) = &filter.gte {
        all = all.add(Expr::col(column).gte(id(v)?));
    }
    if let Some(v) = &filter.lt {
        all = all.add(Expr::col(column).lt(id(v)?));
    }
    if let Some(v) = &filter.lte {
        all = all.add(Expr::col(column).lte(id(v)?));
    }
    if let Some(is_null) = filter.is_null {
        all = match (is_null, nullable) {
            (true, true) => all.add(Expr::col(column).is_null()),
            (false, true) => all.add(Expr::col(column).is_not_null()),
            (true, false) => never(),
            (false, false) => all,
        };
    }
    Ok(all)
}

/// `DateTimeFilter` on a timestamp column. Stored instants are whole
/// seconds, so a bound with a fraction is moved to the equivalent whole one.
fn datetime_condition(
    column: impl IntoIden + Copy,
    nullable: bool,
    filter: &DateTimeFilter,
    budget: &mut Budget,
    depth: usize,
) -> Result<Condition, Error> {
    budget.node(depth)?;
    let split = |t: &chrono::DateTime<Utc>| (t.trunc_subsecs(0), t.timestamp_subsec_nanos() != 0);
    let mut all = Condition::all();
    if let Some(t) = &filter.exact {
        let (whole, fraction) = split(t);
        all = if fraction {
            never()
        } else {
            all.add(Expr::col(column).eq(whole))
        };
    }
    if let Some(t) = &filter.gt {
        all = all.add(Expr::col(column).gt(split(t).0));
    }
    if let Some(t) = &filter.gte {
        let (whole, fraction) = split(t);
        all = all.add(if fraction {
            Expr::col(column).gt(whole)
        } else {
            Expr::col(column).gte(whole)
        });
    }
    if let Some(t) = &filter.lt {
        let (whole, fraction) = split(t);
        all = all.add(if fraction {
            Expr::col(column).lte(whole)
        } else {
            Expr::col(column).lt(whole)
        });
    }
    if let Some(t) = &filter.lte {
        all = all.add(Expr::col(column).lte(split(t).0));
    }
    if let Some(is_null) = filter.is_null {
        all = match (is_null, nullable) {
            (true, true) => all.add(Expr::col(column).is_null()),
            (false, true) => all.add(Expr::col(column).is_not_null()),
            (true, false) => never(),
            (false, false) => all,
        };
    }
    Ok(all)
}

fn division_type_value(value: division::DivisionType) -> &'static str {
    match value {
        division::DivisionType::Main => "MAIN",
        division::DivisionType::Sub => "SUB",
    }
}

/// A filter's `and`, `or` and `not`.
type Nested<'a, F> = (&'a Option<Vec<F>>, &'a Option<Vec<F>>, &'a Option<Box<F>>);

/// The conditions of `and`, `or` and `not`, common to every filter; the
/// filters they hold are one level deeper than `depth`.
fn combine<F>(
    mut all: Condition,
    (and, or, not): Nested<'_, F>,
    budget: &mut Budget,
    depth: usize,
    compile: impl Fn(&F, &mut Budget, usize) -> Result<Condition, Error>,
) -> Result<Condition, Error> {
    let depth = depth + 1;
    for filter in and.iter().flatten() {
        all = all.add(compile(filter, budget, depth)?);
    }
    if let Some(filters) = or {
        let mut any = Condition::any();
        for filter in filters {
            any = any.add(compile(filter, budget, depth)?);
        }
        // `or: []` matches nothing, as an empty disjunction does.
        all = all.add(if filters.is_empty() { never() } else { any });
    }
    if let Some(filter) = not {
        all = all.add(compile(filter, budget, depth)?.not());
    }
    Ok(all)
}

pub const USERNAME: TextColumn<user::Column> = TextColumn {
    raw: user::Column::Username,
    folded: user::Column::UsernameFolded,
    nullable: false,
    trigrams: Some("username_folded"),
};
pub const FIRST_NAME: TextColumn<user::Column> = TextColumn {
    raw: user::Column::FirstName,
    folded: user::Column::FirstNameFolded,
    nullable: false,
    trigrams: Some("first_name_folded"),
};
pub const LAST_NAME: TextColumn<user::Column> = TextColumn {
    raw: user::Column::LastName,
    folded: user::Column::LastNameFolded,
    nullable: false,
    trigrams: Some("last_name_folded"),
};
pub const EMAIL: TextColumn<user::Column> = TextColumn {
    raw: user::Column::Email,
    folded: user::Column::EmailFolded,
    nullable: false,
    trigrams: Some("email_folded"),
};
pub const REMOTE_ID: TextColumn<user::Column> = TextColumn {
    raw: user::Column::RemoteId,
    folded: user::Column::RemoteIdFolded,
    nullable: true,
    trigrams: Some("remote_id_folded"),
};
/// Phone numbers hold no letters to fold, so the raw column serves both.
pub const PHONE_NUMBER: TextColumn<user::Column> = TextColumn {
    raw: user::Column::PhoneNumber,
    folded: user::Column::PhoneNumber,
    nullable: true,
    trigrams: Some("phone_number"),
};

/// Whether the filter touches a field only holders of `VIEW_USER_DETAILS`
/// may filter on.
pub fn uses_guarded_fields(filter: &UserFilter) -> bool {
    filter.email.is_some()
        || filter.phone_number.is_some()
        || filter.last_login.is_some()
        || filter.remote_id.is_some()
        || filter.is_staff.is_some()
        || filter.is_superuser.is_some()
        || filter.permission.is_some()
        || filter.and.iter().flatten().any(uses_guarded_fields)
        || filter.or.iter().flatten().any(uses_guarded_fields)
        || filter.not.as_deref().is_some_and(uses_guarded_fields)
}

/// The condition of a user filter, or `BAD_USER_INPUT` under `filter` when
/// it passes a limit or holds a bad id; substring lookups use `index` as
/// `plan` says.
pub fn user_condition(
    filter: &UserFilter,
    limits: FilterLimits,
    index: SubstringIndex,
    plan: &TrigramPlan,
) -> Result<Condition, Error> {
    let mut budget = Budget::new(limits, index);
    budget.plan = plan.clone();
    user_condition_within(filter, &mut budget, 0)
}

fn user_condition_within(
    filter: &UserFilter,
    budget: &mut Budget,
    depth: usize,
) -> Result<Condition, Error> {
    budget.node(depth)?;
    let mut all = Condition::all();
    if let Some(f) = &filter.id {
        all = all.add(id_condition(user::Column::Id, false, f, budget, depth)?);
    }
    for (column, f) in [
        (&USERNAME, &filter.username),
        (&FIRST_NAME, &filter.first_name),
        (&LAST_NAME, &filter.last_name),
        (&EMAIL, &filter.email),
        (&PHONE_NUMBER, &filter.phone_number),
        (&REMOTE_ID, &filter.remote_id),
    ] {
        if let Some(f) = f {
            all = all.add(string_condition(column, f, budget, depth)?);
        }
    }
    for (column, value) in [
        (user::Column::IsActive, filter.is_active),
        (user::Column::IsStaff, filter.is_staff),
        (user::Column::IsSuperuser, filter.is_superuser),
    ] {
        if let Some(value) = value {
            all = all.add(Expr::col(column).eq(value));
        }
    }
    if let Some(f) = &filter.date_joined {
        let column = user::Column::DateJoined;
        all = all.add(datetime_condition(column, false, f, budget, depth)?);
    }
    if let Some(f) = &filter.last_login {
        let column = user::Column::LastLogin;
        all = all.add(datetime_condition(column, true, f, budget, depth)?);
    }
    if let Some(f) = &filter.division_id {
        let column = user::Column::DivisionId;
        all = all.add(id_condition(column, true, f, budget, depth)?);
    }
    if let Some(kind) = filter.division_type {
        let divisions = Query::select()
            .column(division::Column::Id)
            .from(division::Entity.table_ref())
            .and_where(Expr::col(division::Column::DivisionType).eq(division_type_value(kind)))
            .to_owned();
        all = all.add(Expr::col(user::Column::DivisionId).in_subquery(divisions));
    }
    if let Some(f) = &filter.group_id {
        all = all.add(group_membership_condition(f, budget, depth)?);
    }
    if let Some(permission) = filter.permission {
        all = all.add(access::holders(permission));
    }
    let nested = (&filter.and, &filter.or, &filter.not);
    combine(all, nested, budget, depth, user_condition_within)
}

/// Users who belong to a group matching `filter` (`isNull: true`: to none).
fn group_membership_condition(
    filter: &IdFilter,
    budget: &mut Budget,
    depth: usize,
) -> Result<Condition, Error> {
    let members = |condition: Condition| {
        Query::select()
            .column(membership::Column::UserId)
            .from(membership::Entity.table_ref())
            .cond_where(condition)
            .to_owned()
    };
    let mut all = Condition::all();
    let without_null = IdFilter {
        is_null: None,
        ..filter.clone()
    };
    let has_bounds = without_null.exact.is_some()
        || without_null.in_.is_some()
        || without_null.gt.is_some()
        || without_null.gte.is_some()
        || without_null.lt.is_some()
        || without_null.lte.is_some();
    if has_bounds {
        let column = membership::Column::GroupId;
        let groups = id_condition(column, false, &without_null, budget, depth)?;
        all = all.add(Expr::col(user::Column::Id).in_subquery(members(groups)));
    }
    match filter.is_null {
        Some(true) => {
            all = all.add(Expr::col(user::Column::Id).not_in_subquery(members(Condition::all())))
        }
        Some(false) => {
            all = all.add(Expr::col(user::Column::Id).in_subquery(members(Condition::all())))
        }
        None => {}
    }
    Ok(all)
}

/// The case-insensitive `search` over username, names and, for staff,
/// email; a term longer than the text limit is `BAD_USER_INPUT`.
pub fn user_search(
    term: &str,
    include_email: bool,
    limits: FilterLimits,
    index: SubstringIndex,
    plan: &TrigramPlan,
) -> Result<Condition, Error> {
    let term = bounded_text(term, "search", limits.max_text_length)?;
    let needle = fold(term);
    let pattern = format!("%{}%", escape_like(&needle));
    let mut columns = vec![&USERNAME, &FIRST_NAME, &LAST_NAME];
    if include_email {
        columns.push(&EMAIL);
    }
    let names: Vec<&str> = columns.iter().filter_map(|c| c.trigrams).collect();
    let mut any = Condition::any();
    for column in columns {
        any = any.add(like(column.folded, pattern.clone()));
    }
    Ok(match trigram_candidates(index, plan, &names, &needle) {
        Some(candidates) => Condition::all().add(candidates).add(any),
        None => any,
    })
}

// Groups and divisions are few (hundreds, not millions): no trigrams.
const GROUP_NAME: TextColumn<group::Column> = TextColumn {
    raw: group::Column::Name,
    folded: group::Column::NameFolded,
    nullable: false,
    trigrams: None,
};
const DIVISION_NAME: TextColumn<division::Column> = TextColumn {
    raw: division::Column::Name,
    folded: division::Column::NameFolded,
    nullable: false,
    trigrams: None,
};

/// The condition of a group filter (see [`user_condition`]).
pub fn group_condition(
    filter: &GroupFilter,
    limits: FilterLimits,
    index: SubstringIndex,
) -> Result<Condition, Error> {
    group_condition_within(filter, &mut Budget::new(limits, index), 0)
}

fn group_condition_within(
    filter: &GroupFilter,
    budget: &mut Budget,
    depth: usize,
) -> Result<Condition, Error> {
    budget.node(depth)?;
    let mut all = Condition::all();
    if let Some(f) = &filter.id {
        all = all.add(id_condition(group::Column::Id, false, f, budget, depth)?);
    }
    if let Some(f) = &filter.name {
        all = all.add(string_condition(&GROUP_NAME, f, budget, depth)?);
    }
    let nested = (&filter.and, &filter.or, &filter.not);
    combine(all, nested, budget, depth, group_condition_within)
}

/// The condition of an audit event filter (see [`user_condition`]).
pub fn audit_condition(
    filter: &AuditEventFilter,
    limits: FilterLimits,
) -> Result<Condition, Error> {
    audit_condition_within(filter, &mut Budget::new(limits, SubstringIndex::Like), 0)
}

fn audit_condition_within(
    filter: &AuditEventFilter,
    budget: &mut Budget,
    depth: usize,
) -> Result<Condition, Error> {
    use event::Column as C;
    budget.node(depth)?;
    let mut all = Condition::all();
    if let Some(types) = &filter.event_type {
        budget.in_list(types.len())?;
        all = all.add(Expr::col(C::EventType).is_in(types.iter().map(|t| t.name())));
    }
    for (column, f) in [
        (C::ActorId, &filter.actor_id),
        (C::TargetUserId, &filter.target_user_id),
        (C::TargetGroupId, &filter.target_group_id),
        (C::TargetDivisionId, &filter.target_division_id),
    ] {
        if let Some(f) = f {
            all = all.add(id_condition(column, true, f, budget, depth)?);
        }
    }
    if let Some(f) = &filter.occurred_at {
        all = all.add(datetime_condition(C::OccurredAt, false, f, budget, depth)?);
    }
    let nested = (&filter.and, &filter.or, &filter.not);
    combine(all, nested, budget, depth, audit_condition_within)
}

/// The condition of a division filter (see [`user_condition`]).
pub fn division_condition(
    filter: &DivisionFilter,
    limits: FilterLimits,
    index: SubstringIndex,
) -> Result<Condition, Error> {
    division_condition_within(filter, &mut Budget::new(limits, index), 0)
}

fn division_condition_within(
    filter: &DivisionFilter,
    budget: &mut Budget,
    depth: usize,
) -> Result<Condition, Error> {
    budget.node(depth)?;
    let mut all = Condition::all();
    if let Some(f) = &filter.id {
        all = all.add(id_condition(division::Column::Id, false, f, budget, depth)?);
    }
    if let Some(f) = &filter.name {
        all = all.add(string_condition(&DIVISION_NAME, f, budget, depth)?);
    }
    if let Some(kind) = filter.division_type {
        all = all.add(Expr::col(division::Column::DivisionType).eq(division_type_value(kind)));
    }
    if let Some(active) = filter.is_active {
        all = all.add(Expr::col(division::Column::IsActive).eq(active));
    }
    if let Some(f) = &filter.parent_id {
        let column = division::Column::ParentId;
        all = all.add(id_condition(column, true, f, budget, depth)?);
    }
    let nested = (&filter.and, &filter.or, &filter.not);
    combine(all, nested, budget, depth, division_condition_within)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(escape_like(r"50%_off\now"), r"50\%\_off\\now");
    }

    #[test]
    fn a_trigram_match_is_phrases_of_text() {
        let trigrams = ["a\"b".to_owned(), "*) ".to_owned()];
        assert_eq!(
            trigram_match(&["email_folded", "username_folded"], &trigrams),
            r#"{email_folded username_folded} : ("a""b" AND "*) ")"#
        );
    }

    #[test]
    fn only_planned_patterns_ask_the_trigram_table() {
        let index = SubstringIndex::SqliteTrigrams;
        let plan = TrigramPlan::from([("abcd".to_owned(), vec!["bcd".to_owned()])]);
        let columns = &["email_folded"];
        assert!(trigram_candidates(index, &plan, columns, "abcd").is_some());
        assert!(trigram_candidates(index, &plan, columns, "abce").is_none());
        assert!(trigram_candidates(index, &plan, &[], "abcd").is_none());
        let postgres = SubstringIndex::PostgresTrigrams;
        assert!(trigram_candidates(postgres, &plan, columns, "abcd").is_none());
    }
}
