//! Both pagination styles over any entity: offset pages (`offset`/`limit`)
//! and keyset cursor pages (`first`/`after`, `last`/`before`). A cursor holds
//! the sort key of its row, so a cursor page is a range scan that costs the
//! same wherever it starts, and an insert does not shift the next page.
//!
//! Ordering always ends with the id, in the direction of the last key. NULLs
//! sort as the highest values (last ascending, first descending) on every
//! database: PostgreSQL's own order, so its btree indexes serve every
//! ordering; keys that cannot be NULL get no NULLS clause at all.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sea_orm::{
    Condition, ConnectionTrait, EntityTrait, FromQueryResult, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select, Value,
    sea_query::{DynIden, Expr, ExprTrait, NullOrdering, SimpleExpr},
};
use serde_json::Value as Json;

use crate::error::{Error, FieldErrors};

/// The type of a sort key's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Int,
    Text,
    Time,
}

/// One value of a row's sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    Int(i64),
    Text(String),
    Time(DateTime<Utc>),
    Null,
}

impl KeyValue {
    fn to_json(&self) -> Json {
        match self {
            KeyValue::Int(n) => Json::from(*n),
            KeyValue::Text(s) => Json::from(s.as_str()),
            KeyValue::Time(t) => Json::from(t.timestamp()),
            KeyValue::Null => Json::Null,
        }
    }

    fn from_json(value: &Json, kind: KeyKind, nullable: bool) -> Option<Self> {
        match (value, kind) {
            (Json::Null, _) if nullable => Some(KeyValue::Null),
            (Json::Number(n), KeyKind::Int) => n.as_i64().map(KeyValue::Int),
            (Json::String(s), KeyKind::Text) => Some(KeyValue::Text(s.clone())),
            (Json::Number(n), KeyKind::Time) => n
                .as_i64()
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .map(KeyValue::Time),
            _ => None,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            KeyValue::Int(n) => Value::from(*n),
            KeyValue::Text(s) => Value::from(s.clone()),
            KeyValue::Time(t) => Value::from(*t),
            KeyValue::Null => Value::from(None::<i64>),
        }
    }
}

/// One key of an ordering.
#[derive(Clone)]
pub struct SortKey {
    /// The name in the ordering's signature, e.g. "USERNAME".
    pub name: &'static str,
    pub column: DynIden,
    pub kind: KeyKind,
    pub nullable: bool,
    pub descending: bool,
}

impl SortKey {
    fn expr(&self) -> Expr {
        Expr::col(self.column.clone())
    }

    /// Rows after `value` in this key's direction (NULL is the highest value).
    fn after(&self, value: &KeyValue) -> Condition {
        self.beyond(value, !self.descending)
    }

    /// Rows before `value` in this key's direction.
    fn before(&self, value: &KeyValue) -> Condition {
        self.beyond(value, self.descending)
    }

    /// Rows above `value` (`upward`) or below it, NULL being the highest.
    /// Keys that cannot be NULL get a plain comparison, which an index
    /// serves as a range scan.
    fn beyond(&self, value: &KeyValue, upward: bool) -> Condition {
        let col = self.expr();
        match (upward, value) {
            (true, KeyValue::Null) => Condition::all().add(Expr::val(1).eq(0)),
            (true, v) if self.nullable => Condition::any()
                .add(col.clone().gt(v.to_value()))
                .add(col.is_null()),
            (true, v) => Condition::all().add(col.gt(v.to_value())),
            (false, KeyValue::Null) => Condition::all().add(col.is_not_null()),
            (false, v) => Condition::all().add(col.lt(v.to_value())),
        }
    }

    fn equal(&self, value: &KeyValue) -> SimpleExpr {
        match value {
            KeyValue::Null => self.expr().is_null(),
            v => self.expr().eq(v.to_value()),
        }
    }
}

/// The ordering's signature, kept in cursors so that a cursor of another
/// ordering is refused instead of misread.
fn signature(keys: &[SortKey]) -> String {
    keys.iter()
        .map(|k| format!("{}:{}", k.name, if k.descending { "D" } else { "A" }))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn encode_cursor(keys: &[SortKey], values: &[KeyValue]) -> String {
    let body = serde_json::json!({ "o": signature(keys), "k": values.iter().map(KeyValue::to_json).collect::<Vec<_>>() });
    URL_SAFE_NO_PAD.encode(body.to_string())
}

pub fn decode_cursor(
    keys: &[SortKey],
    cursor: &str,
    argument: &str,
) -> Result<Vec<KeyValue>, Error> {
    let invalid = || Error::bad_input(argument, "Not a valid cursor for this list and ordering.");
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| invalid())?;
    let body: Json = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if body["o"].as_str() != Some(signature(keys).as_str()) {
        return Err(invalid());
    }
    let values = body["k"].as_array().ok_or_else(invalid)?;
    if values.len() != keys.len() {
        return Err(invalid());
    }
    keys.iter()
        .zip(values)
        .map(|(key, value)| KeyValue::from_json(value, key.kind, key.nullable).ok_or_else(invalid))
        .collect()
}

/// The paging arguments as the client gave them.
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    pub offset: Option<i32>,
    pub limit: Option<i32>,
}

impl PageArgs {
    /// The paging arguments of a list field, as the client gave them.
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        offset: Option<i32>,
        limit: Option<i32>,
    ) -> Self {
        Self {
            first,
            after,
            last,
            before,
            offset,
            limit,
        }
    }
}

/// Page size when no page argument is given.
pub const DEFAULT_PAGE_SIZE: u64 = 20;

enum Mode {
    Forward(Option<Vec<KeyValue>>),
    Backward(Option<Vec<KeyValue>>),
    Offset(u64),
}

struct PageRequest {
    mode: Mode,
    size: u64,
}

fn page_size(value: Option<i32>, argument: &str, max: u32) -> Result<Option<u64>, Error> {
    match value {
        None => Ok(None),
        Some(n) if n < 0 => Err(Error::bad_input(argument, "Must not be negative.")),
        Some(n) if n as u64 > u64::from(max) => Err(Error::bad_input(
            argument,
            format!("Must be at most {max}."),
        )),
        Some(n) => Ok(Some(n as u64)),
    }
}

fn resolve(args: &PageArgs, keys: &[SortKey], max: u32) -> Result<PageRequest, Error> {
    let given = [
        ("first", args.first.is_some()),
        ("after", args.after.is_some()),
        ("last", args.last.is_some()),
        ("before", args.before.is_some()),
        ("offset", args.offset.is_some()),
        ("limit", args.limit.is_some()),
    ];
    // Each argument of a mix is reported under its own name: only those
    // the client gave.
    let mixed = |names: &[&str], message: &str| {
        let mut fields = FieldErrors::new();
        for (name, present) in given {
            if present && names.contains(&name) {
                fields.add(name, message);
            }
        }
        Error::BadUserInput(fields)
    };
    let forward = args.first.is_some() || args.after.is_some();
    let backward = args.last.is_some() || args.before.is_some();
    let offset_style = args.offset.is_some() || args.limit.is_some();
    if (forward || backward) && offset_style {
        return Err(mixed(
            &["first", "after", "last", "before", "offset", "limit"],
            "Use either first/after and last/before, or offset/limit, not both.",
        ));
    }
    if forward && backward {
        return Err(mixed(
            &["first", "after", "last", "before"],
            "Use either first/after or last/before, not both.",
        ));
    }
    let first = page_size(args.first, "first", max)?;
    let last = page_size(args.last, "last", max)?;
    let limit = page_size(args.limit, "limit", max)?;
    if let Some(offset) = args.offset
        && offset < 0
    {
        return Err(Error::bad_input("offset", "Must not be negative."));
    }
    let decode = |cursor: &Option<String>, argument| {
        cursor
            .as_deref()
            .map(|c| decode_cursor(keys, c, argument))
            .transpose()
    };
    Ok(if backward {
        PageRequest {
            mode: Mode::Backward(decode(&args.before, "before")?),
            size: last.unwrap_or(DEFAULT_PAGE_SIZE),
        }
    } else if offset_style {
        PageRequest {
            mode: Mode::Offset(args.offset.map_or(0, |o| o as u64)),
            size: limit.unwrap_or(DEFAULT_PAGE_SIZE),
        }
    } else {
        PageRequest {
            mode: Mode::Forward(decode(&args.after, "after")?),
            size: first.unwrap_or(DEFAULT_PAGE_SIZE),
        }
    })
}

/// Rows strictly after (or before) `values` in the ordering `keys`.
fn keyset(keys: &[SortKey], values: &[KeyValue], forward: bool) -> Condition {
    let mut any = Condition::any();
    for (i, key) in keys.iter().enumerate() {
        let mut branch = Condition::all();
        for (prior, value) in keys[..i].iter().zip(values) {
            branch = branch.add(prior.equal(value));
        }
        branch = branch.add(if forward {
            key.after(&values[i])
        } else {
            key.before(&values[i])
        });
        any = any.add(branch);
    }
    any
}

/// One page of rows, with their cursors.
pub struct Page<M> {
    pub rows: Vec<(String, M)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
    /// How many rows the select matches, when this page shows it: the page
    /// reached the last match and every match before it is known (the
    /// first page, or an offset page that is not past the end).
    pub known_total: Option<i64>,
}

/// Fetches one page of `select` (already filtered) in the order `keys`
/// (which must end with the id). `key_of` reads a row's sort key.
pub async fn fetch_page<E, M>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    keys: &[SortKey],
    args: &PageArgs,
    max_page_size: u32,
    key_of: impl Fn(&M) -> Vec<KeyValue>,
) -> Result<Page<M>, Error>
where
    E: EntityTrait<Model = M>,
    M: FromQueryResult + Sized + Send + Sync,
{
    let request = resolve(args, keys, max_page_size)?;
    let reverse = matches!(request.mode, Mode::Backward(_));
    let mut query = select;
    for key in keys {
        let descending = key.descending != reverse;
        let order = if descending { Order::Desc } else { Order::Asc };
        query = if key.nullable {
            let nulls = if descending {
                NullOrdering::First
            } else {
                NullOrdering::Last
            };
            query.order_by_with_nulls(key.expr(), order, nulls)
        } else {
            query.order_by(key.expr(), order)
        };
    }
    let mut skipped = 0;
    match &request.mode {
        Mode::Forward(Some(after)) => query = query.filter(keyset(keys, after, true)),
        Mode::Backward(Some(before)) => query = query.filter(keyset(keys, before, false)),
        Mode::Offset(offset) => {
            skipped = *offset;
            query = query.offset(*offset);
        }
        Mode::Forward(None) | Mode::Backward(None) => {}
    }
    if request.size == 0 {
        return Ok(Page {
            rows: Vec::new(),
            has_next_page: false,
            has_previous_page: false,
            known_total: None,
        });
    }
    let mut rows = query.limit(request.size + 1).all(db).await?;
    let more = rows.len() as u64 > request.size;
    rows.truncate(request.size as usize);
    if reverse {
        rows.reverse();
    }
    let (has_next_page, has_previous_page) = match &request.mode {
        Mode::Forward(after) => (more, after.is_some()),
        Mode::Backward(before) => (before.is_some(), more),
        Mode::Offset(_) => (more, skipped > 0),
    };
    let seen = skipped + rows.len() as u64;
    let known_total = match &request.mode {
        _ if more => None,
        Mode::Forward(None) | Mode::Backward(None) => Some(seen),
        // Past the end, an empty page says only that there are at most
        // `offset` matches.
        Mode::Offset(offset) if *offset == 0 || !rows.is_empty() => Some(seen),
        _ => None,
    }
    .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let rows = rows
        .into_iter()
        .map(|row| (encode_cursor(keys, &key_of(&row)), row))
        .collect();
    Ok(Page {
        rows,
        has_next_page,
        has_previous_page,
        known_total,
    })
}

/// How many rows `select` matches.
pub async fn count<E>(db: &impl ConnectionTrait, select: Select<E>) -> Result<i64, Error>
where
    E: EntityTrait,
    E::Model: Sync,
{
    let total = select.count(db).await?;
    Ok(i64::try_from(total).unwrap_or(i64::MAX))
}
