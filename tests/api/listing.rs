//! The read API: lookups, search, ordering, both pagination styles, guards
//! and the statement count, on a handmade data set with exact expectations.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;

use entity::user;
use roster::{
    domain::{Email, Username},
    services::users::{self, NewUser},
};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, spawn_app, spawn_counted_app};

/// username, first, last, email, phone, staff
type Person = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    bool,
);
const PEOPLE: &[Person] = &[
    (
        "alice",
        "Alice",
        "Liddell",
        "alice@example.com",
        Some("+44 20 7946 0018"),
        false,
    ),
    ("Bob", "Bob", "Builder", "bob@builders.org", None, false),
    ("émile", "Émile", "Zola", "EMILE@example.fr", None, false),
    (
        "percent",
        "Fifty%",
        "Off_Sale",
        "percent@example.com",
        None,
        false,
    ),
    (
        "back.slash",
        "Back\\slash",
        "Liddell",
        "slash@example.com",
        Some("555-0100"),
        false,
    ),
    ("carol", "Carol", "Danvers", "carol@example.com", None, true),
];

struct Fixture {
    app: TestApp,
    ids: Vec<i64>,
    staff_token: String,
    user_token: String,
}

async fn fixture_on(app: TestApp) -> Fixture {
    let engineering = app.create_division("Engineering", None, true).await;
    let platform = app
        .create_division("Platform", Some(engineering.id), true)
        .await;
    let sales = app.create_division("Sales", None, false).await;
    let managers = app.create_group("Manager").await;
    let admins = app.create_group("Admins").await;
    let mut ids = Vec::new();
    for (i, (username, first, last, email, phone, staff)) in PEOPLE.iter().enumerate() {
        let new = NewUser {
            username: Username::parse(username).unwrap(),
            email: Email::parse(email).unwrap(),
            first_name: (*first).to_owned(),
            last_name: (*last).to_owned(),
            phone_number: phone.map(str::to_owned),
            password_hash: None,
            is_active: i != 3,
            is_staff: *staff,
            is_superuser: false,
            division_id: [
                Some(engineering.id),
                Some(platform.id),
                Some(sales.id),
                None,
                Some(platform.id),
                None,
            ][i],
        };
        let user = users::create(app.db(), new).await.unwrap();
        // Distinct join dates, a day apart, oldest first.
        let joined = chrono::DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .to_utc()
            + chrono::Duration::days(i as i64);
        user::Entity::update(user::ActiveModel {
            id: Set(user.id),
            date_joined: Set(joined),
            ..Default::default()
        })
        .exec(app.db())
        .await
        .unwrap();
        ids.push(user.id);
    }
    app.add_member(ids[0], managers.id).await;
    app.add_member(ids[1], managers.id).await;
    app.add_member(ids[1], admins.id).await;
    app.add_member(ids[5], admins.id).await;
    let staff = user::Entity::find_by_id(ids[5])
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    let regular = user::Entity::find_by_id(ids[0])
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    let (staff_token, user_token) = (app.token_for(&staff), app.token_for(&regular));
    Fixture {
        app,
        ids,
        staff_token,
        user_token,
    }
}

async fn fixture() -> Fixture {
    fixture_on(spawn_app().await).await
}

const USERS: &str = "query($filter: UserFilter, $search: String, $orderBy: [UserOrder!], $first: Int, $after: String, $last: Int, $before: String, $offset: Int, $limit: Int) {
  users(filter: $filter, search: $search, orderBy: $orderBy, first: $first, after: $after, last: $last, before: $before, offset: $offset, limit: $limit) {
    edges { cursor node { username } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}";

impl Fixture {
    async fn users(&self, token: &str, variables: Value) -> Reply {
        self.app.gql_as(Some(token), USERS, variables).await
    }

    /// The usernames a staff query returns, in order.
    async fn names(&self, variables: Value) -> Vec<String> {
        let reply = self.users(&self.staff_token, variables.clone()).await;
        assert_eq!(
            reply.body.get("errors"),
            None,
            "{variables}: {}",
            reply.body
        );
        names_of(&reply)
    }
}

fn names_of(reply: &Reply) -> Vec<String> {
    reply.body["data"]["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["username"].as_str().unwrap().to_owned())
        .collect()
}

fn filter(f: Value) -> Value {
    json!({ "filter": f })
}

#[tokio::test]
async fn every_string_lookup_matches_exactly_the_expected_users() {
    let fx = fixture().await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({ "username": { "exact": "Bob" } }), vec!["Bob"]),
        (json!({ "username": { "exact": "bob" } }), vec![]),
        (json!({ "username": { "iexact": "BOB" } }), vec!["Bob"]),
        (
            json!({ "lastName": { "contains": "dell" } }),
            vec!["alice", "back.slash"],
        ),
        (json!({ "lastName": { "contains": "DELL" } }), vec![]),
        (
            json!({ "lastName": { "icontains": "DELL" } }),
            vec!["alice", "back.slash"],
        ),
        (
            json!({ "firstName": { "startswith": "B" } }),
            vec!["Bob", "back.slash"],
        ),
        (json!({ "firstName": { "startswith": "b" } }), vec![]),
        (
            json!({ "firstName": { "istartswith": "b" } }),
            vec!["Bob", "back.slash"],
        ),
        (
            json!({ "email": { "endswith": ".com" } }),
            vec!["alice", "percent", "back.slash", "carol"],
        ),
        (json!({ "email": { "endswith": ".FR" } }), vec![]),
        (json!({ "email": { "iendswith": ".FR" } }), vec!["émile"]),
        (
            json!({ "username": { "in": ["alice", "carol", "nobody"] } }),
            vec!["alice", "carol"],
        ),
        (
            json!({ "phoneNumber": { "isNull": true } }),
            vec!["Bob", "émile", "percent", "carol"],
        ),
        (
            json!({ "phoneNumber": { "isNull": false } }),
            vec!["alice", "back.slash"],
        ),
        (
            json!({ "phoneNumber": { "contains": "0100" } }),
            vec!["back.slash"],
        ),
        (json!({ "username": { "isNull": true } }), vec![]),
        (
            json!({ "username": { "istartswith": "a", "iendswith": "E" } }),
            vec!["alice"],
        ),
    ];
    for (f, expected) in cases {
        assert_eq!(fx.names(filter(f.clone())).await, expected, "{f}");
    }
}

#[tokio::test]
async fn string_comparisons_order_folded_text_as_lists_do() {
    let fx = fixture().await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({ "username": { "gte": "B", "lt": "c" } }),
            vec!["Bob", "back.slash"],
        ),
        (json!({ "username": { "lte": "ALICE" } }), vec!["alice"]),
        (json!({ "username": { "lt": "alice" } }), vec![]),
        // "é" sorts after every ASCII letter, byte by byte.
        (json!({ "username": { "gt": "percent" } }), vec!["émile"]),
        (
            json!({ "username": { "gte": "percent" } }),
            vec!["émile", "percent"],
        ),
        (
            json!({ "not": { "username": { "lt": "c" } } }),
            vec!["émile", "percent", "carol"],
        ),
        // A NULL phone number matches no comparison; the others compare
        // byte by byte ("+" before the digits), on PostgreSQL too.
        (
            json!({ "phoneNumber": { "gte": "" } }),
            vec!["alice", "back.slash"],
        ),
        (json!({ "phoneNumber": { "lt": "1" } }), vec!["alice"]),
    ];
    for (f, expected) in cases {
        assert_eq!(fx.names(filter(f.clone())).await, expected, "{f}");
    }
}

#[tokio::test]
async fn case_insensitive_lookups_fold_unicode() {
    let fx = fixture().await;
    assert_eq!(
        fx.names(filter(json!({ "username": { "iexact": "ÉMILE" } })))
            .await,
        vec!["émile"]
    );
    assert_eq!(
        fx.names(filter(json!({ "firstName": { "icontains": "ÉMI" } })))
            .await,
        vec!["émile"]
    );
    assert_eq!(
        fx.names(filter(json!({ "firstName": { "iexact": "emile" } })))
            .await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn wildcards_in_values_match_literally() {
    let fx = fixture().await;
    assert_eq!(
        fx.names(filter(json!({ "firstName": { "contains": "%" } })))
            .await,
        vec!["percent"]
    );
    assert_eq!(
        fx.names(filter(json!({ "lastName": { "contains": "_" } })))
            .await,
        vec!["percent"]
    );
    assert_eq!(
        fx.names(filter(json!({ "firstName": { "icontains": "k\\s" } })))
            .await,
        vec!["back.slash"]
    );
    assert_eq!(
        fx.names(filter(json!({ "firstName": { "startswith": "%" } })))
            .await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn and_or_not_nest() {
    let fx = fixture().await;
    let f = json!({ "or": [
        { "lastName": { "exact": "Liddell" }, "not": { "username": { "exact": "alice" } } },
        { "and": [ { "isActive": false }, { "firstName": { "contains": "%" } } ] }
    ] });
    assert_eq!(fx.names(filter(f)).await, vec!["percent", "back.slash"]);
    assert_eq!(
        fx.names(filter(json!({ "or": [] }))).await,
        Vec::<String>::new()
    );
    assert_eq!(
        fx.names(filter(json!({ "not": { "isActive": true } })))
            .await,
        vec!["percent"]
    );
}

#[tokio::test]
async fn id_date_division_and_group_filters() {
    let fx = fixture().await;
    let id = |i: usize| fx.ids[i].to_string();
    assert_eq!(
        fx.names(filter(json!({ "id": { "in": [id(0), id(2)] } })))
            .await,
        vec!["alice", "émile"]
    );
    assert_eq!(
        fx.names(filter(json!({ "id": { "gt": id(3) } }))).await,
        vec!["back.slash", "carol"]
    );
    assert_eq!(
        fx.names(filter(json!({ "id": { "gte": id(1), "lt": id(3) } })))
            .await,
        vec!["Bob", "émile"]
    );
    assert_eq!(
        fx.names(filter(
            json!({ "dateJoined": { "gte": "2026-01-05T12:00:00Z" } })
        ))
        .await,
        vec!["back.slash", "carol"]
    );
    assert_eq!(
        fx.names(filter(
            json!({ "dateJoined": { "gt": "2026-01-05T11:59:59.5Z" } })
        ))
        .await,
        vec!["back.slash", "carol"]
    );
    assert_eq!(
        fx.names(filter(
            json!({ "dateJoined": { "lt": "2026-01-02T12:00:00Z" } })
        ))
        .await,
        vec!["alice"]
    );
    assert_eq!(
        fx.names(filter(
            json!({ "dateJoined": { "exact": "2026-01-03T12:00:00Z" } })
        ))
        .await,
        vec!["émile"]
    );
    assert_eq!(
        fx.names(filter(json!({ "divisionId": { "isNull": true } })))
            .await,
        vec!["percent", "carol"]
    );
    assert_eq!(
        fx.names(filter(json!({ "divisionType": "SUB" }))).await,
        vec!["Bob", "back.slash"]
    );
    assert_eq!(
        fx.names(filter(json!({ "divisionType": "MAIN" }))).await,
        vec!["alice", "émile"]
    );
    assert_eq!(
        fx.names(filter(json!({ "groupId": { "isNull": true } })))
            .await,
        vec!["émile", "percent", "back.slash"]
    );
    assert_eq!(
        fx.names(filter(json!({ "isStaff": true }))).await,
        vec!["carol"]
    );
    let groups = fx
        .app
        .gql_as(
            Some(&fx.staff_token),
            "{ groups(orderBy: [{field: NAME}]) { nodes { id name memberCount } } }",
            Value::Null,
        )
        .await;
    let admins = groups.body["data"]["groups"]["nodes"][0]["id"].clone();
    assert_eq!(
        groups.body["data"]["groups"]["nodes"][0]["name"],
        json!("Admins")
    );
    assert_eq!(
        fx.names(filter(json!({ "groupId": { "exact": admins } })))
            .await,
        vec!["Bob", "carol"]
    );
    let reply = fx
        .users(&fx.staff_token, filter(json!({ "id": { "exact": "abc" } })))
        .await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"],
        json!({ "filter": ["Not a valid id."] })
    );
}

#[tokio::test]
async fn search_covers_names_and_for_staff_email() {
    let fx = fixture().await;
    assert_eq!(
        fx.names(json!({ "search": "LIDD" })).await,
        vec!["alice", "back.slash"]
    );
    assert_eq!(fx.names(json!({ "search": "builders" })).await, vec!["Bob"]);
    let reply = fx
        .users(&fx.user_token, json!({ "search": "builders" }))
        .await;
    assert_eq!(names_of(&reply), Vec::<String>::new());
}

#[tokio::test]
async fn orderings_end_with_id_in_the_last_direction() {
    let fx = fixture().await;
    let order = |o: Value| json!({ "orderBy": o });
    assert_eq!(
        fx.names(order(json!([{ "field": "USERNAME" }]))).await,
        vec!["alice", "back.slash", "Bob", "carol", "percent", "émile"]
    );
    assert_eq!(
        fx.names(order(
            json!([{ "field": "LAST_NAME", "direction": "DESC" }])
        ))
        .await,
        vec!["émile", "percent", "back.slash", "alice", "carol", "Bob"]
    );
    assert_eq!(
        fx.names(order(
            json!([{ "field": "LAST_NAME" }, { "field": "FIRST_NAME", "direction": "DESC" }])
        ))
        .await,
        vec!["Bob", "carol", "back.slash", "alice", "percent", "émile"]
    );
    assert_eq!(
        fx.names(order(
            json!([{ "field": "DATE_JOINED", "direction": "DESC" }])
        ))
        .await,
        vec!["carol", "back.slash", "percent", "émile", "Bob", "alice"]
    );
    assert_eq!(
        fx.names(order(json!([{ "field": "EMAIL" }]))).await,
        vec!["alice", "Bob", "carol", "émile", "percent", "back.slash"]
    );
    assert_eq!(
        fx.names(json!({})).await,
        vec!["alice", "Bob", "émile", "percent", "back.slash", "carol"]
    );
}

#[tokio::test]
async fn offset_pages() {
    let fx = fixture().await;
    let reply = fx
        .users(&fx.staff_token, json!({ "offset": 2, "limit": 2 }))
        .await;
    assert_eq!(names_of(&reply), vec!["émile", "percent"]);
    let info = &reply.body["data"]["users"]["pageInfo"];
    assert_eq!(
        (info["hasNextPage"].clone(), info["hasPreviousPage"].clone()),
        (json!(true), json!(true))
    );
    let reply = fx
        .users(&fx.staff_token, json!({ "offset": 4, "limit": 5 }))
        .await;
    assert_eq!(names_of(&reply), vec!["back.slash", "carol"]);
    assert_eq!(
        reply.body["data"]["users"]["pageInfo"]["hasNextPage"],
        json!(false)
    );
}

#[tokio::test]
async fn cursor_pages_walk_the_whole_list_both_ways_and_survive_inserts() {
    let fx = fixture().await;
    let order = json!([{ "field": "LAST_NAME" }]);
    let all = fx.names(json!({ "orderBy": order, "first": 100 })).await;
    // Forward, two at a time.
    let (mut seen, mut after) = (Vec::new(), Value::Null);
    loop {
        let reply = fx
            .users(
                &fx.staff_token,
                json!({ "orderBy": order, "first": 2, "after": after }),
            )
            .await;
        seen.extend(names_of(&reply));
        let info = &reply.body["data"]["users"]["pageInfo"];
        assert_eq!(info["hasPreviousPage"], json!(!after.is_null()));
        if info["hasNextPage"] == json!(false) {
            break;
        }
        after = info["endCursor"].clone();
    }
    assert_eq!(seen, all);
    // Backward, two at a time.
    let (mut seen, mut before) = (Vec::new(), Value::Null);
    loop {
        let reply = fx
            .users(
                &fx.staff_token,
                json!({ "orderBy": order, "last": 2, "before": before }),
            )
            .await;
        let mut page = names_of(&reply);
        page.extend(seen);
        seen = page;
        let info = &reply.body["data"]["users"]["pageInfo"];
        if info["hasPreviousPage"] == json!(false) {
            break;
        }
        before = info["startCursor"].clone();
    }
    assert_eq!(seen, all);
    // An insert before the cursor does not shift the next page.
    let reply = fx.users(&fx.staff_token, json!({ "first": 3 })).await;
    let cursor = reply.body["data"]["users"]["pageInfo"]["endCursor"].clone();
    fx.app.create_user("aaron", false, false).await;
    let next = fx
        .users(&fx.staff_token, json!({ "first": 3, "after": cursor }))
        .await;
    assert_eq!(names_of(&next), vec!["percent", "back.slash", "carol"]);
}

#[tokio::test]
async fn cursors_work_on_nullable_keys() {
    let fx = fixture().await;
    let alice = fx.ids[0];
    user::Entity::update(user::ActiveModel {
        id: Set(alice),
        last_login: Set(Some(roster::clock::now())),
        ..Default::default()
    })
    .exec(fx.app.db())
    .await
    .unwrap();
    for direction in ["ASC", "DESC"] {
        let order = json!([{ "field": "LAST_LOGIN", "direction": direction }]);
        let all = fx.names(json!({ "orderBy": order, "first": 100 })).await;
        let mut seen = Vec::new();
        let mut after = Value::Null;
        for _ in 0..10 {
            let reply = fx
                .users(
                    &fx.staff_token,
                    json!({ "orderBy": order, "first": 1, "after": after }),
                )
                .await;
            seen.extend(names_of(&reply));
            after = reply.body["data"]["users"]["pageInfo"]["endCursor"].clone();
            if reply.body["data"]["users"]["pageInfo"]["hasNextPage"] == json!(false) {
                break;
            }
        }
        assert_eq!(seen, all, "{direction}");
        // NULL is the highest value: alice, the only one who logged in, comes first ascending.
        assert_eq!(
            all.first().map(String::as_str) == Some("alice"),
            direction == "ASC",
            "{all:?}"
        );
    }
}

#[tokio::test]
async fn total_count_counts_every_match_not_the_page() {
    let fx = fixture().await;
    let query =
        "query($f: UserFilter) { users(filter: $f, first: 1) { totalCount nodes { username } } }";
    let reply = fx
        .app
        .gql_as(Some(&fx.staff_token), query, json!({ "f": null }))
        .await;
    assert_eq!(reply.body["data"]["users"]["totalCount"], json!(6));
    let reply = fx
        .app
        .gql_as(
            Some(&fx.staff_token),
            query,
            json!({ "f": { "lastName": { "exact": "Liddell" } } }),
        )
        .await;
    assert_eq!(reply.body["data"]["users"]["totalCount"], json!(2));
}

/// A page that reaches the last match, counted from the first, is its own
/// count: no second statement. Every other page is counted.
#[tokio::test]
async fn total_count_comes_from_a_page_that_holds_every_match() {
    let (app, counter) = spawn_counted_app(|config| config.cache = std::time::Duration::ZERO).await;
    let fx = fixture_on(app).await;
    let query = "query($f: UserFilter, $first: Int, $after: String, $last: Int, $offset: Int, $limit: Int) {
      users(filter: $f, first: $first, after: $after, last: $last, offset: $offset, limit: $limit) {
        totalCount nodes { username } pageInfo { endCursor } } }";
    let liddell = json!({ "lastName": { "exact": "Liddell" } });
    let first_two = fx
        .app
        .gql_as(Some(&fx.staff_token), query, json!({ "first": 2 }))
        .await;
    let after = first_two.body["data"]["users"]["pageInfo"]["endCursor"].clone();
    // (variables, totalCount, rows, statements: the token check, the page
    // and, when the page cannot tell, the count)
    let cases = [
        (json!({ "first": 10 }), 6, 6, 2),
        (json!({ "first": 6 }), 6, 6, 2),
        (json!({ "first": 5 }), 6, 5, 3),
        (json!({ "last": 10 }), 6, 6, 2),
        (json!({ "last": 3 }), 6, 3, 3),
        (json!({ "f": liddell, "first": 10 }), 2, 2, 2),
        (json!({ "f": liddell, "first": 1 }), 2, 1, 3),
        (json!({ "offset": 0, "limit": 6 }), 6, 6, 2),
        (json!({ "offset": 4, "limit": 5 }), 6, 2, 2),
        (json!({ "offset": 2, "limit": 2 }), 6, 2, 3),
        // Past the end, an empty page only says "at most 6".
        (json!({ "offset": 6, "limit": 5 }), 6, 0, 3),
        (json!({ "offset": 9, "limit": 5 }), 6, 0, 3),
        // After a cursor, what came before is not on the page.
        (json!({ "first": 10, "after": after }), 6, 4, 3),
        (json!({ "first": 0 }), 6, 0, 2),
    ];
    for (variables, total, rows, statements) in cases {
        counter.store(0, Ordering::SeqCst);
        let reply = fx
            .app
            .gql_as(Some(&fx.staff_token), query, variables.clone())
            .await;
        let users = &reply.body["data"]["users"];
        assert_eq!(
            users["totalCount"],
            json!(total),
            "{variables}: {}",
            reply.body
        );
        assert_eq!(
            users["nodes"].as_array().map(Vec::len),
            Some(rows),
            "{variables}"
        );
        assert_eq!(counter.load(Ordering::SeqCst), statements, "{variables}");
    }
}

#[tokio::test]
async fn page_limits_and_malformed_cursors_are_bad_input() {
    let fx = fixture().await;
    let cases = [
        (json!({ "first": 101 }), "first"),
        (json!({ "first": -1 }), "first"),
        (json!({ "limit": 101 }), "limit"),
        (json!({ "offset": -1 }), "offset"),
        (json!({ "first": 2, "offset": 1 }), "offset"),
        (json!({ "first": 2, "last": 2 }), "last"),
        (json!({ "after": "not-a-cursor" }), "after"),
        (json!({ "before": "eyJvIjoiSUQ6QSJ9" }), "before"),
    ];
    for (variables, field) in cases {
        let reply = fx.users(&fx.staff_token, variables.clone()).await;
        assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"], "{variables}");
        assert!(
            reply.body["errors"][0]["extensions"]["fields"][field].is_array(),
            "{variables}: {}",
            reply.body
        );
    }
    // A cursor of another ordering is refused, not misread.
    let reply = fx.users(&fx.staff_token, json!({ "first": 1 })).await;
    let cursor = reply.body["data"]["users"]["pageInfo"]["endCursor"].clone();
    let reply = fx
        .users(
            &fx.staff_token,
            json!({ "after": cursor, "orderBy": [{ "field": "USERNAME" }] }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    // No page argument: the first 20; 100 is allowed.
    let reply = fx.users(&fx.staff_token, json!({ "first": 100 })).await;
    assert_eq!(names_of(&reply).len(), 6);
}

#[tokio::test]
async fn guarded_fields_are_for_the_user_themself_and_staff() {
    let fx = fixture().await;
    let query = "query($id: ID!) { user(id: $id) { username email phoneNumber lastLogin isStaff isSuperuser } }";
    let bob = fx.ids[1].to_string();
    let alice = fx.ids[0].to_string();
    // Another user: null and FORBIDDEN at each guarded field, the rest intact.
    let reply = fx
        .app
        .gql_as(Some(&fx.user_token), query, json!({ "id": bob }))
        .await;
    assert_eq!(
        reply.body["data"],
        json!({ "user": { "username": "Bob", "email": null, "phoneNumber": null, "lastLogin": null, "isStaff": null, "isSuperuser": null } })
    );
    let paths: Vec<Value> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].clone())
        .collect();
    assert_eq!(
        paths,
        vec![
            json!(["user", "email"]),
            json!(["user", "phoneNumber"]),
            json!(["user", "lastLogin"]),
            json!(["user", "isStaff"]),
            json!(["user", "isSuperuser"])
        ]
    );
    assert_eq!(reply.codes(), vec!["FORBIDDEN"; 5]);
    // Themself and staff: readable.
    let reply = fx
        .app
        .gql_as(Some(&fx.user_token), query, json!({ "id": alice }))
        .await;
    assert_eq!(
        reply.body["data"]["user"]["email"],
        json!("alice@example.com")
    );
    assert_eq!(reply.body.get("errors"), None);
    let reply = fx
        .app
        .gql_as(Some(&fx.staff_token), query, json!({ "id": bob }))
        .await;
    assert_eq!(
        reply.body["data"]["user"]["email"],
        json!("bob@builders.org")
    );
    assert_eq!(reply.body.get("errors"), None);
}

#[tokio::test]
async fn non_staff_cannot_filter_or_order_by_guarded_fields() {
    let fx = fixture().await;
    for variables in [
        filter(json!({ "email": { "icontains": "example" } })),
        filter(json!({ "not": { "isStaff": true } })),
        filter(json!({ "or": [{ "lastLogin": { "isNull": true } }] })),
        filter(json!({ "phoneNumber": { "isNull": false } })),
        filter(json!({ "isSuperuser": false })),
        json!({ "orderBy": [{ "field": "EMAIL" }] }),
        json!({ "orderBy": [{ "field": "LAST_LOGIN" }] }),
    ] {
        let reply = fx.users(&fx.user_token, variables.clone()).await;
        assert_eq!(reply.codes(), vec!["FORBIDDEN"], "{variables}");
        assert_eq!(reply.body["data"], Value::Null, "{variables}");
    }
    assert_eq!(
        names_of(
            &fx.users(
                &fx.user_token,
                filter(json!({ "username": { "exact": "Bob" } }))
            )
            .await
        ),
        vec!["Bob"]
    );
}

#[tokio::test]
async fn anonymous_callers_get_unauthenticated_from_every_query_but_me() {
    let fx = fixture().await;
    let id = fx.ids[0];
    for query in [
        format!("{{ user(id: \"{id}\") {{ id }} }}"),
        "{ users { totalCount } }".to_owned(),
        "{ group(id: \"1\") { id } }".to_owned(),
        "{ groups { totalCount } }".to_owned(),
        "{ division(id: \"1\") { id } }".to_owned(),
        "{ divisions { totalCount } }".to_owned(),
    ] {
        let reply = fx.app.gql(&query, Value::Null).await;
        assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"], "{query}");
    }
}

/// Before the id is even read: a malformed one tells an anonymous caller
/// nothing either.
#[tokio::test]
async fn anonymous_callers_get_unauthenticated_even_for_malformed_ids() {
    let fx = fixture().await;
    for field in ["user", "group", "division"] {
        for id in ["abc", "0", "-1"] {
            let query = format!("{{ {field}(id: \"{id}\") {{ id }} }}");
            let reply = fx.app.gql(&query, Value::Null).await;
            assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"], "{query}");
        }
    }
}

#[tokio::test]
async fn unknown_ids_are_null_with_not_found() {
    let fx = fixture().await;
    for (query, field) in [
        ("{ user(id: \"999999\") { id } }", "user"),
        ("{ group(id: \"999999\") { id } }", "group"),
        ("{ division(id: \"999999\") { id } }", "division"),
    ] {
        let reply = fx
            .app
            .gql_as(Some(&fx.user_token), query, Value::Null)
            .await;
        assert_eq!(reply.body["data"], json!({ field: null }));
        assert_eq!(reply.codes(), vec!["NOT_FOUND"]);
    }
}

#[tokio::test]
async fn groups_and_divisions_list_with_their_nested_fields() {
    let fx = fixture().await;
    let reply = fx
        .app
        .gql_as(
            Some(&fx.user_token),
            "{ divisions(filter: {divisionType: SUB}) { totalCount nodes { name parent { name } isActive } } groups(filter: {name: {iexact: \"manager\"}}) { nodes { name memberCount } } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": {
            "divisions": { "totalCount": 1, "nodes": [{ "name": "Platform", "parent": { "name": "Engineering" }, "isActive": true }] },
            "groups": { "nodes": [{ "name": "Manager", "memberCount": 2 }] }
        } })
    );
    let reply = fx.app.gql_as(Some(&fx.user_token), "{ divisions(filter: {isActive: false}, orderBy: [{field: NAME, direction: DESC}]) { nodes { name } } }", Value::Null).await;
    assert_eq!(
        reply.body["data"]["divisions"]["nodes"],
        json!([{ "name": "Sales" }])
    );
}

#[tokio::test]
async fn group_and_division_members_are_for_staff_only() {
    let fx = fixture().await;
    let query = "{ groups(orderBy: [{field: NAME}]) { nodes { name users(orderBy: [{field: USERNAME}]) { totalCount nodes { username } } } } }";
    let reply = fx
        .app
        .gql_as(Some(&fx.staff_token), query, Value::Null)
        .await;
    assert_eq!(
        reply.body["data"]["groups"]["nodes"],
        json!([
            { "name": "Admins", "users": { "totalCount": 2, "nodes": [{ "username": "Bob" }, { "username": "carol" }] } },
            { "name": "Manager", "users": { "totalCount": 2, "nodes": [{ "username": "alice" }, { "username": "Bob" }] } }
        ])
    );
    let reply = fx
        .app
        .gql_as(Some(&fx.user_token), query, Value::Null)
        .await;
    assert!(
        reply.codes().iter().all(|c| c == "FORBIDDEN") && !reply.codes().is_empty(),
        "{}",
        reply.body
    );
    let query = "{ divisions(filter: {name: {exact: \"Platform\"}}) { nodes { users { nodes { username } } } } }";
    let reply = fx
        .app
        .gql_as(Some(&fx.staff_token), query, Value::Null)
        .await;
    assert_eq!(
        reply.body["data"]["divisions"]["nodes"][0]["users"]["nodes"],
        json!([{ "username": "Bob" }, { "username": "back.slash" }])
    );
}

/// The statement count of one `users` request does not grow with the page.
#[tokio::test]
async fn users_with_division_and_groups_runs_the_same_few_statements_for_any_page_size() {
    // Every statement of each request, none saved by the caches.
    let (app, counter) = spawn_counted_app(|config| config.cache = std::time::Duration::ZERO).await;
    let fx = fixture_on(app).await;
    for i in 0..110 {
        let new = NewUser {
            username: Username::parse(&format!("bulk{i}")).unwrap(),
            email: Email::parse(&format!("bulk{i}@example.com")).unwrap(),
            first_name: String::new(),
            last_name: String::new(),
            phone_number: None,
            password_hash: None,
            is_active: true,
            is_staff: false,
            is_superuser: false,
            division_id: None,
        };
        users::create(fx.app.db(), new).await.unwrap();
    }
    let query = "query($n: Int) { users(first: $n) { totalCount nodes { username division { name parent { name } } groups { name memberCount } } } }";
    let mut counts = Vec::new();
    for n in [5, 100] {
        counter.store(0, Ordering::SeqCst);
        let reply = fx
            .app
            .gql_as(Some(&fx.staff_token), query, json!({ "n": n }))
            .await;
        assert_eq!(
            reply.body["data"]["users"]["nodes"]
                .as_array()
                .map(Vec::len),
            Some(n),
            "{}",
            reply.body
        );
        counts.push(counter.load(Ordering::SeqCst));
    }
    assert_eq!(counts[0], counts[1], "{counts:?}");
    // token check, count, page, divisions, parents, groups, member counts
    assert!(counts[0] <= 7, "{counts:?}");
    // Without totalCount and nested lookups: token check and page only.
    counter.store(0, Ordering::SeqCst);
    fx.app
        .gql_as(
            Some(&fx.staff_token),
            "{ users(first: 100) { nodes { username } } }",
            Value::Null,
        )
        .await;
    assert_eq!(counter.load(Ordering::SeqCst), 2);
    // The query: division and groups of each user, with the count.
    counter.store(0, Ordering::SeqCst);
    fx.app.gql_as(Some(&fx.staff_token), "{ users(first: 100) { totalCount nodes { username division { name } groups { name } } } }", Value::Null).await;
    assert_eq!(counter.load(Ordering::SeqCst), 5);
}

async fn read_user(fx: &Fixture, i: usize) -> Value {
    let query = "query($id: ID!) { user(id: $id) { username division { name } groups { name } } }";
    let variables = json!({ "id": fx.ids[i].to_string() });
    let reply = fx.app.gql_as(Some(&fx.staff_token), query, variables).await;
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
    reply.body["data"].clone()
}

/// `user(id)` reads the user with their division and groups in one
/// statement when nothing has them cached, and nothing at all when the
/// caches have them.
#[tokio::test]
async fn a_user_with_division_and_groups_is_read_in_one_statement() {
    let bob = json!({ "user": {
        "username": "Bob",
        "division": { "name": "Platform" },
        "groups": [{ "name": "Admins" }, { "name": "Manager" }],
    } });
    let percent = json!({ "user": { "username": "percent", "division": null, "groups": [] } });
    // Without caches: the token check, then the user with the rest.
    let (app, counter) = spawn_counted_app(|config| config.cache = std::time::Duration::ZERO).await;
    let fx = fixture_on(app).await;
    for (i, expected) in [(1, &bob), (3, &percent)] {
        counter.store(0, Ordering::SeqCst);
        assert_eq!(&read_user(&fx, i).await, expected);
        assert_eq!(counter.load(Ordering::SeqCst), 2);
    }
    // With caches: the user with the rest, then nothing.
    let (app, counter) =
        spawn_counted_app(|config| config.cache = std::time::Duration::from_secs(600)).await;
    let fx = fixture_on(app).await;
    fx.app.settle().await;
    read_user(&fx, 5).await;
    for expected in [1, 0] {
        counter.store(0, Ordering::SeqCst);
        assert_eq!(read_user(&fx, 1).await, bob);
        assert_eq!(counter.load(Ordering::SeqCst), expected);
    }
    // Once the groups cache holds groups, a user's statement reads their
    // groups' ids, and only a group not seen yet is read on its own,
    // permissions and all. (The helpers below forget every cache.)
    let auditors = fx.app.create_group("Auditors").await;
    entity::group_permission::ActiveModel {
        group_id: Set(auditors.id),
        permission: Set("VIEW_USER_DETAILS".to_owned()),
    }
    .insert(fx.app.db())
    .await
    .unwrap();
    fx.app.add_member(fx.ids[0], auditors.id).await;
    // On PostgreSQL the notices of these writes empty the caches when they
    // arrive: let them arrive before counting on a hit.
    fx.app.settle().await;
    counter.store(0, Ordering::SeqCst);
    assert_eq!(read_user(&fx, 1).await, bob);
    // The staff token's check, then Bob with his groups whole.
    assert_eq!(counter.load(Ordering::SeqCst), 2);
    counter.store(0, Ordering::SeqCst);
    let alice = json!({ "user": {
        "username": "alice",
        "division": { "name": "Engineering" },
        "groups": [{ "name": "Auditors" }, { "name": "Manager" }],
    } });
    assert_eq!(read_user(&fx, 0).await, alice);
    // Alice with her groups' ids, then Auditors (Manager came with Bob).
    assert_eq!(counter.load(Ordering::SeqCst), 2);
    // What her groups carry came with them: her token, checked against the
    // user just read, may see Bob's email.
    let query = "query($id: ID!) { user(id: $id) { email } }";
    let variables = json!({ "id": fx.ids[1].to_string() });
    counter.store(0, Ordering::SeqCst);
    let reply = fx.app.gql_as(Some(&fx.user_token), query, variables).await;
    assert_eq!(
        reply.body,
        json!({ "data": { "user": { "email": PEOPLE[1].3 } } })
    );
    assert_eq!(counter.load(Ordering::SeqCst), 0);
}
