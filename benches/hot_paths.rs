//! Micro-benchmarks of the pure functions on every request's path, so that
//! a regression shows without a database: `cargo bench --bench hot_paths`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use roster::{
    config::{Config, Secret},
    graphql::{
        analysis::{self, IntrospectionSizes, Limits, RequestBudget},
        hot_paths::{decodes, email_cursor, email_order, parse_user_filter, user_filter_sql},
        parsed_documents::ParsedDocuments,
    },
    services::tokens::TokenKeys,
};
use sea_orm::DbBackend;
use serde_json::json;

fn filter_compilation(c: &mut Criterion) {
    // Q1's filter, and one with every kind of lookup and nesting.
    let q1 = json!({ "isActive": true, "email": { "icontains": "7" } });
    let busy = json!({
        "or": [
            { "username": { "istartswith": "ann" } },
            { "and": [
                { "lastName": { "iexact": "Smith" } },
                { "dateJoined": { "gte": "2026-01-01T00:00:00Z", "lt": "2026-07-01T00:00:00Z" } }
            ] }
        ],
        "not": { "id": { "in": ["1", "2", "3"] } },
        "groupId": { "exact": "4" },
        "divisionType": "SUB"
    });
    for (name, json) in [("q1", q1), ("nested", busy)] {
        c.bench_function(&format!("filter: parse + compile + SQL ({name})"), |b| {
            b.iter(|| {
                let filter = parse_user_filter(black_box(json.clone())).unwrap();
                user_filter_sql(&filter, DbBackend::Postgres).unwrap()
            })
        });
    }
}

fn cursors(c: &mut Criterion) {
    let order = email_order();
    c.bench_function("cursor: encode", |b| {
        b.iter(|| email_cursor(&order, black_box("ann.smith42@example.com"), 123_456))
    });
    let cursor = email_cursor(&order, "ann.smith42@example.com", 123_456);
    c.bench_function("cursor: decode", |b| {
        b.iter(|| assert!(decodes(&order, black_box(&cursor))))
    });
}

fn jwt_verify(c: &mut Criterion) {
    let keys = TokenKeys::new(&Secret::new(
        "a-benchmark-secret-of-at-least-32-bytes".to_owned(),
    ));
    let now = chrono::Utc::now();
    let user = entity::user::Model {
        id: 42,
        username: "ann".into(),
        username_folded: "ann".into(),
        email: "ann@example.com".into(),
        email_folded: "ann@example.com".into(),
        first_name: String::new(),
        first_name_folded: String::new(),
        last_name: String::new(),
        last_name_folded: String::new(),
        phone_number: None,
        password_hash: None,
        is_active: true,
        is_staff: true,
        is_superuser: false,
        date_joined: now,
        last_login: None,
        division_id: None,
        token_version: 0,
        remote_id: None,
        remote_id_folded: None,
    };
    let token = keys.issue(&user, Duration::from_secs(900)).unwrap();
    c.bench_function("jwt: verify", |b| {
        b.iter(|| keys.verify(black_box(&token)).unwrap())
    });
    c.bench_function("jwt: check, token seen before", |b| {
        b.iter(|| keys.check(black_box(&token)).unwrap())
    });
}

fn documents(c: &mut Criterion) {
    let q1 = r#"{ users(filter: {isActive: true, email: {icontains: "7"}}, orderBy: [{field: ID}], first: 50) { totalCount nodes { id username email division { name } groups { name } } } }"#;
    c.bench_function("document: parse (Q1)", |b| {
        b.iter(|| async_graphql::parser::parse_query(black_box(q1)).unwrap())
    });
    let kept = ParsedDocuments::default();
    c.bench_function("document: kept (Q1)", |b| {
        b.iter(|| kept.prepare(&async_graphql::Request::new(black_box(q1))))
    });
    // The checks every request's document goes through before it runs.
    let limits = Limits::new(
        &Config::with_database("sqlite::memory:"),
        IntrospectionSizes::default(),
    );
    let variables = async_graphql::Variables::default();
    for (name, text) in [("Q1", q1), ("Q3", "{ __typename }")] {
        let document = async_graphql::parser::parse_query(text).unwrap();
        c.bench_function(
            &format!("document: text + limits + pruning ({name})"),
            |b| {
                b.iter(|| {
                    analysis::check_text(black_box(text)).unwrap();
                    let mut budget = RequestBudget::default();
                    limits
                        .check(black_box(&document), None, &variables, &mut budget)
                        .unwrap()
                })
            },
        );
    }
}

criterion_group!(benches, filter_compilation, cursors, jwt_verify, documents);
criterion_main!(benches);
