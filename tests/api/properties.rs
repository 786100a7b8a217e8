//! Property tests: random filters, orderings and pages give what a reference
//! written in Rust computes over the same rows; random malformed input never
//! gives a 5xx or INTERNAL_SERVER_ERROR.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;

use chrono::{DateTime, Duration, Utc};
use entity::user;
use proptest::{
    prelude::*,
    test_runner::{Config, TestRunner},
};
use roster::{
    domain::{Email, Username, fold},
    services::users::{self, NewUser},
};
use sea_orm::{EntityTrait, Set};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const FIRST: &[&str] = &[
    "Ann", "anna", "Émile", "ÉMILE", "Bo", "50%", "a_b", "Zoë", "", "Straße",
];
const LAST: &[&str] = &[
    "Smith",
    "smith",
    "Öz",
    "O'Neil",
    "x\\y",
    "Smithers",
    "",
    "Say \"hi\"",
];
/// Values that filters look for: cases, Unicode, wildcards, empties, and
/// (3 characters or more, which the trigram indexes serve) folds that
/// grow (ß is ss), quotes, and parts of emails.
const NEEDLES: &[&str] = &[
    "a", "A", "an", "émile", "É", "%", "_", "\\", "smith", "S", "z", "", "ë", "0", "SSE", "aße",
    "MITH", "\"hi", "y \"", "a%b", "x_y", "émi", "ÉMI", "ple.c", "@ex", "mail1", "il2@",
];

struct World {
    app: TestApp,
    token: String,
    users: Vec<user::Model>,
}

async fn world() -> World {
    let app = spawn_app().await;
    let base: DateTime<Utc> = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    for i in 0..30usize {
        let new = NewUser {
            username: Username::parse(&format!("{}{i}", ["u", "U", "é", "Ü"][i % 4])).unwrap(),
            email: Email::parse(&format!(
                "{}{i}@{}",
                ["mail", "MAIL", "x_y", "a%b"][i % 4],
                ["example.com", "Example.org"][i % 2]
            ))
            .unwrap(),
            first_name: FIRST[i % FIRST.len()].to_owned(),
            last_name: LAST[(i * 7) % LAST.len()].to_owned(),
            phone_number: (i % 3 == 0).then(|| format!("+1 555 {i:04}")),
            password_hash: None,
            is_active: i % 5 != 0,
            is_staff: i == 0 || i % 11 == 0,
            is_superuser: false,
            division_id: None,
        };
        let created = users::create(app.db(), new).await.unwrap();
        // Few distinct join dates and some last logins, for ties and NULLs.
        let joined = base + Duration::days((i % 4) as i64);
        let last_login = (i % 2 == 0).then(|| base + Duration::hours((i % 5) as i64));
        user::Entity::update(user::ActiveModel {
            id: Set(created.id),
            date_joined: Set(joined),
            last_login: Set(last_login),
            ..Default::default()
        })
        .exec(app.db())
        .await
        .unwrap();
    }
    let users = user::Entity::find().all(app.db()).await.unwrap();
    let staff = users
        .iter()
        .find(|u| u.is_staff && u.is_active)
        .unwrap()
        .clone();
    let token = app.token_for(&staff);
    World { app, token, users }
}

/// A filter as the API takes it, and the same as a predicate over rows.
#[derive(Debug, Clone)]
enum Filter {
    Text {
        field: &'static str,
        op: &'static str,
        value: String,
    },
    In {
        field: &'static str,
        values: Vec<String>,
    },
    Bool {
        field: &'static str,
        value: bool,
    },
    PhoneIsNull(bool),
    LastLoginIsNull(bool),
    Joined {
        op: &'static str,
        days: i64,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

fn text_of<'a>(u: &'a user::Model, field: &str) -> &'a str {
    match field {
        "username" => &u.username,
        "firstName" => &u.first_name,
        "lastName" => &u.last_name,
        _ => &u.email,
    }
}

impl Filter {
    fn to_json(&self) -> Value {
        match self {
            Filter::Text { field, op, value } => json!({ *field: { *op: value } }),
            Filter::In { field, values } => json!({ *field: { "in": values } }),
            Filter::Bool { field, value } => json!({ *field: value }),
            Filter::PhoneIsNull(v) => json!({ "phoneNumber": { "isNull": v } }),
            Filter::LastLoginIsNull(v) => json!({ "lastLogin": { "isNull": v } }),
            Filter::Joined { op, days } => {
                let at =
                    DateTime::from_timestamp(1_750_000_000, 0).unwrap() + Duration::days(*days);
                json!({ "dateJoined": { *op: at.to_rfc3339() } })
            }
            Filter::And(all) => {
                json!({ "and": all.iter().map(Filter::to_json).collect::<Vec<_>>() })
            }
            Filter::Or(any) => json!({ "or": any.iter().map(Filter::to_json).collect::<Vec<_>>() }),
            Filter::Not(f) => json!({ "not": f.to_json() }),
        }
    }

    fn matches(&self, u: &user::Model) -> bool {
        match self {
            Filter::Text { field, op, value } => {
                let raw = text_of(u, field);
                let (folded, needle) = (fold(raw), fold(value));
                match *op {
                    "exact" => raw == value,
                    "iexact" => folded == needle,
                    "contains" => raw.contains(value.as_str()),
                    "icontains" => folded.contains(&needle),
                    "startswith" => raw.starts_with(value.as_str()),
                    "istartswith" => folded.starts_with(&needle),
                    "endswith" => raw.ends_with(value.as_str()),
                    "gt" => folded > needle,
                    "gte" => folded >= needle,
                    "lt" => folded < needle,
                    "lte" => folded <= needle,
                    _ => folded.ends_with(&needle),
                }
            }
            Filter::In { field, values } => values.iter().any(|v| v == text_of(u, field)),
            Filter::Bool { field, value } => {
                (if *field == "isActive" {
                    u.is_active
                } else {
                    u.is_staff
                }) == *value
            }
            Filter::PhoneIsNull(v) => u.phone_number.is_none() == *v,
            Filter::LastLoginIsNull(v) => u.last_login.is_none() == *v,
            Filter::Joined { op, days } => {
                let at =
                    DateTime::from_timestamp(1_750_000_000, 0).unwrap() + Duration::days(*days);
                match *op {
                    "gt" => u.date_joined > at,
                    "gte" => u.date_joined >= at,
                    "lt" => u.date_joined < at,
                    "lte" => u.date_joined <= at,
                    _ => u.date_joined == at,
                }
            }
            Filter::And(all) => all.iter().all(|f| f.matches(u)),
            Filter::Or(any) => !any.is_empty() && any.iter().any(|f| f.matches(u)),
            Filter::Not(f) => !f.matches(u),
        }
    }
}

fn leaf() -> impl Strategy<Value = Filter> {
    let fields = prop::sample::select(vec!["username", "firstName", "lastName", "email"]);
    let ops = prop::sample::select(vec![
        "exact",
        "iexact",
        "contains",
        "icontains",
        "startswith",
        "istartswith",
        "endswith",
        "iendswith",
        "gt",
        "gte",
        "lt",
        "lte",
    ]);
    let needle = prop::sample::select(NEEDLES.to_vec()).prop_map(str::to_owned);
    let existing = prop::sample::select([FIRST, LAST].concat()).prop_map(str::to_owned);
    prop_oneof![
        (fields.clone(), ops, prop_oneof![needle, existing.clone()])
            .prop_map(|(field, op, value)| Filter::Text { field, op, value }),
        (fields, prop::collection::vec(existing, 0..3))
            .prop_map(|(field, values)| Filter::In { field, values }),
        (
            prop::sample::select(vec!["isActive", "isStaff"]),
            any::<bool>()
        )
            .prop_map(|(field, value)| Filter::Bool { field, value }),
        any::<bool>().prop_map(Filter::PhoneIsNull),
        any::<bool>().prop_map(Filter::LastLoginIsNull),
        (
            prop::sample::select(vec!["gt", "gte", "lt", "lte", "exact"]),
            0i64..4
        )
            .prop_map(|(op, days)| Filter::Joined { op, days }),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

#[derive(Debug, Clone, Copy)]
struct Order {
    field: &'static str,
    descending: bool,
}

/// The sort key of a row for one ordering field: folded text, or a time
/// with NULL as the highest value.
fn key(u: &user::Model, field: &str) -> (u8, String, Option<DateTime<Utc>>, i64) {
    match field {
        "USERNAME" => (0, u.username_folded.clone(), None, 0),
        "FIRST_NAME" => (0, u.first_name_folded.clone(), None, 0),
        "LAST_NAME" => (0, u.last_name_folded.clone(), None, 0),
        "EMAIL" => (0, u.email_folded.clone(), None, 0),
        "DATE_JOINED" => (0, String::new(), Some(u.date_joined), 0),
        "LAST_LOGIN" => (
            u8::from(u.last_login.is_none()),
            String::new(),
            u.last_login,
            0,
        ),
        _ => (0, String::new(), None, u.id),
    }
}

/// Whether `search` finds `u` for a viewer who sees emails.
fn found(u: &user::Model, search: &str) -> bool {
    let needle = fold(search);
    [&u.username, &u.first_name, &u.last_name, &u.email]
        .iter()
        .any(|text| fold(text).contains(&needle))
}

fn reference(
    world: &World,
    filter: &Option<Filter>,
    search: &Option<String>,
    order: &[Order],
) -> Vec<String> {
    let mut rows: Vec<&user::Model> = world
        .users
        .iter()
        .filter(|u| filter.as_ref().is_none_or(|f| f.matches(u)))
        .filter(|u| search.as_deref().is_none_or(|term| found(u, term)))
        .collect();
    let id_descending = order.last().is_some_and(|o| o.descending);
    rows.sort_by(|a, b| {
        for o in order {
            let ordering = key(a, o.field).cmp(&key(b, o.field));
            let ordering = if o.descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        let by_id = a.id.cmp(&b.id);
        if id_descending {
            by_id.reverse()
        } else {
            by_id
        }
    });
    rows.into_iter().map(|u| u.username.clone()).collect()
}

fn order() -> impl Strategy<Value = Vec<Order>> {
    let field = prop::sample::select(vec![
        "ID",
        "USERNAME",
        "FIRST_NAME",
        "LAST_NAME",
        "EMAIL",
        "DATE_JOINED",
        "LAST_LOGIN",
    ]);
    prop::collection::vec(
        (field, any::<bool>()).prop_map(|(field, descending)| Order { field, descending }),
        0..3,
    )
}

const QUERY: &str = "query($f: UserFilter, $s: String, $o: [UserOrder!], $first: Int, $after: String, $last: Int, $before: String, $offset: Int, $limit: Int) {
  users(filter: $f, search: $s, orderBy: $o, first: $first, after: $after, last: $last, before: $before, offset: $offset, limit: $limit) {
    totalCount nodes { username } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";

fn names(body: &Value) -> Vec<String> {
    body["data"]["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["username"].as_str().unwrap().to_owned())
        .collect()
}

async fn check(
    world: &World,
    (filter, search): (Option<Filter>, Option<String>),
    order: Vec<Order>,
    size: i64,
    offset: i64,
) {
    let expected = reference(world, &filter, &search, &order);
    let f = filter.as_ref().map_or(Value::Null, Filter::to_json);
    let o: Vec<Value> = order
        .iter()
        .map(
            |o| json!({ "field": o.field, "direction": if o.descending { "DESC" } else { "ASC" } }),
        )
        .collect();
    let ask = |extra: Value| {
        let mut variables = json!({ "f": f, "s": search, "o": o });
        variables
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        world.app.gql_as(Some(&world.token), QUERY, variables)
    };
    // Forward through every page.
    let (mut seen, mut after) = (Vec::new(), Value::Null);
    loop {
        let reply = ask(json!({ "first": size, "after": after })).await;
        assert_eq!(reply.body.get("errors"), None, "{f} {o:?}: {}", reply.body);
        assert_eq!(
            reply.body["data"]["users"]["totalCount"],
            json!(expected.len()),
            "{f}"
        );
        seen.extend(names(&reply.body));
        let info = &reply.body["data"]["users"]["pageInfo"];
        if info["hasNextPage"] != json!(true) {
            break;
        }
        after = info["endCursor"].clone();
    }
    assert_eq!(seen, expected, "forward, filter {f}, order {o:?}");
    // Backward through every page.
    let (mut seen, mut before) = (Vec::new(), Value::Null);
    loop {
        let reply = ask(json!({ "last": size, "before": before })).await;
        let mut page = names(&reply.body);
        page.extend(seen);
        seen = page;
        let info = &reply.body["data"]["users"]["pageInfo"];
        if info["hasPreviousPage"] != json!(true) {
            break;
        }
        before = info["startCursor"].clone();
    }
    assert_eq!(seen, expected, "backward, filter {f}, order {o:?}");
    // One offset page.
    let reply = ask(json!({ "offset": offset, "limit": size })).await;
    let window: Vec<String> = expected
        .iter()
        .skip(offset as usize)
        .take(size as usize)
        .cloned()
        .collect();
    assert_eq!(
        names(&reply.body),
        window,
        "offset {offset} limit {size}, filter {f}, order {o:?}"
    );
}

#[test]
fn random_filters_orderings_and_pages_match_a_reference() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let world = runtime.block_on(world());
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let search = prop::sample::select(NEEDLES.to_vec()).prop_map(str::to_owned);
    let strategy = (
        (
            prop::option::weighted(0.85, filter()),
            prop::option::weighted(0.3, search),
        ),
        order(),
        1i64..8,
        0i64..32,
    );
    runner
        .run(&strategy, |(filter, order, size, offset)| {
            runtime.block_on(check(&world, filter, order, size, offset));
            Ok(())
        })
        .unwrap();
}

/// Anything a client could send: never a 5xx, never INTERNAL_SERVER_ERROR.
#[test]
fn malformed_input_never_breaks_the_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let world = runtime.block_on(world());
    let fragments = prop::sample::select(vec![
        "{",
        "}",
        "(",
        ")",
        "users",
        "me",
        "id",
        "filter:",
        "first:",
        "-1",
        "99999999999",
        "\"",
        "\\u0000",
        "after:",
        "\"!!\"",
        "mutation",
        "login",
        "query",
        "$x",
        "...",
        "@skip",
        "#",
        "null",
        "[",
        "]",
        "orderBy:",
        "É",
        "__schema",
    ]);
    let document = prop::collection::vec(fragments, 0..16).prop_map(|parts| parts.join(" "));
    let text = ".{0,40}";
    // A header carries visible ASCII only; the HTTP client refuses the rest.
    let header_text = "[ -~]{0,40}";
    let strategy = (document, text, header_text, text, any::<bool>());
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(document, cursor, token, raw_body, batch)| {
            runtime.block_on(async {
                let app = &world.app;
                let url = format!("{}/graphql", app.url);
                let mut attempts = vec![
                    app.client.post(&url).json(&json!({ "query": document })),
                    app.client.post(&url).json(&json!({ "query": "query($a: String) { users(after: $a) { totalCount } }", "variables": { "a": cursor } })).bearer_auth(&world.token),
                    app.client.post(&url).json(&json!({ "query": "{ me { id } }" })).header("authorization", format!("Bearer {token}")),
                    app.client.post(&url).header("content-type", "application/json").body(raw_body.clone()),
                    app.client.get(&url).query(&[("query", document.as_str()), ("variables", raw_body.as_str())]),
                ];
                if batch {
                    attempts.push(app.client.post(&url).json(&json!([{ "query": document }, { "query": "{ me { id } }", "variables": raw_body }])));
                }
                for attempt in attempts {
                    let response = attempt.send().await.unwrap();
                    let status = response.status().as_u16();
                    let body = response.text().await.unwrap();
                    assert!(status < 500, "{status}: {body}");
                    assert!(!body.contains("INTERNAL_SERVER_ERROR"), "{body}");
                }
            });
            Ok(())
        })
        .unwrap();
}
