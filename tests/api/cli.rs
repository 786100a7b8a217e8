//! The `roster` binary as a new user would try it.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use entity::user;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::helpers::{PASSWORD, fresh_database};

fn roster(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    command.args(args).env_remove("ROSTER_LOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("ROSTER_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied()).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr)
        .trim_end()
        .to_owned()
}

/// A failing exit whose one error line (after any progress logs) contains
/// `needle`; no panic, no backtrace.
fn assert_one_line_error(output: &Output, needle: &str) {
    let text = stderr(output);
    assert!(!output.status.success(), "{text}");
    let errors: Vec<&str> = text.lines().filter(|l| !l.contains(" INFO ")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(errors[0].starts_with("error:"), "{text}");
    assert!(errors[0].contains(needle), "{text}");
    assert!(
        !text.contains("panicked") && !text.contains("backtrace"),
        "{text}"
    );
}

#[test]
fn an_unknown_flag_is_one_line() {
    let output = roster(&["serve", "--frobnicate"], &[]);
    assert_one_line_error(&output, "--frobnicate");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_malformed_database_url_is_one_line_naming_the_setting() {
    let output = roster(&["migrate", "--database-url", "mysql://nope"], &[]);
    assert_one_line_error(&output, "--database-url");
    let output = roster(&["migrate"], &[("ROSTER_DATABASE_URL", "not a url")]);
    assert_one_line_error(&output, "ROSTER_DATABASE_URL");
}

#[test]
fn an_unreachable_database_is_one_line() {
    let output = roster(
        &[
            "migrate",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
        ],
        &[],
    );
    assert_one_line_error(&output, "cannot connect to the database");
}

#[test]
fn a_short_jwt_secret_is_one_line_that_does_not_echo_it() {
    let output = roster(
        &["serve", "--bind", "127.0.0.1:0"],
        &[("ROSTER_JWT_SECRET", "tooshort-secret")],
    );
    assert_one_line_error(&output, "ROSTER_JWT_SECRET");
    assert!(!stderr(&output).contains("tooshort-secret"));
}

#[test]
fn a_bad_number_is_one_line_naming_the_setting() {
    let output = roster(&["serve"], &[("ROSTER_MAX_PAGE_SIZE", "lots")]);
    assert_one_line_error(&output, "ROSTER_MAX_PAGE_SIZE");
    let output = roster(&["serve"], &[("ROSTER_MAX_FILTER_DEPTH", "15")]);
    assert_one_line_error(&output, "ROSTER_MAX_FILTER_DEPTH");
    let output = roster(&["serve"], &[("ROSTER_MAX_CONNECTIONS", "0")]);
    assert_one_line_error(&output, "ROSTER_MAX_CONNECTIONS");
    let output = roster(&["serve"], &[("ROSTER_LOG", "info,=[")]);
    assert_one_line_error(&output, "ROSTER_LOG");
}

#[test]
fn a_bad_trusted_documents_manifest_is_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let output = roster(
        &["serve"],
        &[("ROSTER_TRUSTED_DOCUMENTS", missing.to_str().unwrap())],
    );
    assert_one_line_error(
        &output,
        "ROSTER_TRUSTED_DOCUMENTS (--trusted-documents): cannot read",
    );
    let broken = dir.path().join("broken.json");
    let manifest = r#"{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [
        {"id": "1", "name": "Me", "type": "query", "body": "query Me {\n  me { id\n}"}]}"#;
    std::fs::write(&broken, manifest).unwrap();
    let output = roster(
        &["serve", "--trusted-documents", broken.to_str().unwrap()],
        &[],
    );
    assert_one_line_error(&output, "operation \"1\" (Me): the body does not parse");
    let output = roster(&["serve"], &[("ROSTER_TRUSTED_DOCUMENTS_ONLY", "true")]);
    assert_one_line_error(&output, "ROSTER_TRUSTED_DOCUMENTS_ONLY");
    let output = roster(
        &["serve"],
        &[("ROSTER_TRUSTED_DOCUMENTS_STAFF_BYPASS", "true")],
    );
    assert_one_line_error(&output, "ROSTER_TRUSTED_DOCUMENTS_STAFF_BYPASS");
}

#[tokio::test]
async fn a_port_in_use_is_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (database_url, _dir) = fresh_database().await;
    let output = tokio::task::spawn_blocking(move || {
        roster(
            &["serve", "--bind", &address, "--database-url", &database_url],
            &[],
        )
    })
    .await
    .unwrap();
    assert_one_line_error(&output, "cannot listen on");
}

#[test]
fn export_schema_prints_the_sdl() {
    let output = roster(&["export-schema"], &[]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        roster::graphql::sdl()
    );
}

#[tokio::test]
async fn create_superuser_stores_an_argon2id_hash_and_refuses_the_same_name_in_any_case() {
    let (database_url, _dir) = fresh_database().await;
    let url = database_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        roster(
            &[
                "create-superuser",
                "--username",
                "Root",
                "--email",
                "root@example.com",
                "--database-url",
                &url,
            ],
            &[("ROSTER_SUPERUSER_PASSWORD", PASSWORD)],
        )
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));

    let db = roster::startup::connect(&database_url).await.unwrap();
    let root = user::Entity::find()
        .filter(user::Column::Username.eq("Root"))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert!((root.is_staff, root.is_superuser, root.is_active) == (true, true, true));
    let hash = root.password_hash.clone().unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    let verified = roster::services::password_hash::Hasher::new(
        roster::services::password_hash::HashLimits::one_at_a_time(),
    )
    .verify(PASSWORD.into(), Some(hash))
    .await
    .unwrap();
    assert_eq!(verified, roster::services::password_hash::Verified::Yes);

    let url = database_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        roster(
            &[
                "create-superuser",
                "--username",
                "rOOT",
                "--email",
                "other@example.com",
                "--database-url",
                &url,
            ],
            &[("ROSTER_SUPERUSER_PASSWORD", PASSWORD)],
        )
    })
    .await
    .unwrap();
    assert_one_line_error(&output, "A user with that username already exists.");
}

#[tokio::test]
async fn create_superuser_refuses_a_weak_password() {
    let (database_url, _dir) = fresh_database().await;
    let output = tokio::task::spawn_blocking(move || {
        roster(
            &[
                "create-superuser",
                "--username",
                "root",
                "--email",
                "root@example.com",
                "--database-url",
                &database_url,
            ],
            &[("ROSTER_SUPERUSER_PASSWORD", "password")],
        )
    })
    .await
    .unwrap();
    assert_one_line_error(&output, "password: This password is too common.");
}

#[test]
fn create_superuser_without_a_password_or_terminal_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let output = roster(
        &[
            "create-superuser",
            "--username",
            "root",
            "--email",
            "root@example.com",
            "--database-url",
            &url,
        ],
        &[],
    );
    assert_one_line_error(&output, "ROSTER_SUPERUSER_PASSWORD");
}

#[tokio::test]
async fn demo_data_is_deterministic_realistic_and_refuses_a_filled_database() {
    let mut usernames = Vec::new();
    for _ in 0..2 {
        let (database_url, _dir) = fresh_database().await;
        let url = database_url.clone();
        let output = tokio::task::spawn_blocking(move || {
            roster(
                &[
                    "demo-data",
                    "--users",
                    "300",
                    "--seed",
                    "7",
                    "--database-url",
                    &url,
                ],
                &[],
            )
        })
        .await
        .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let db = roster::startup::connect(&database_url).await.unwrap();
        let users = user::Entity::find().all(&db).await.unwrap();
        assert_eq!(users.len(), 300);
        assert!(users.iter().any(|u| !u.is_active) && users.iter().any(|u| u.is_active));
        assert!(users.iter().filter(|u| u.is_staff).count() >= 1);
        let admin = users.iter().find(|u| u.username == "admin").unwrap();
        assert!(admin.is_superuser && admin.is_active);
        let hash = admin.password_hash.clone().unwrap();
        assert_eq!(
            roster::services::password_hash::Hasher::new(
                roster::services::password_hash::HashLimits::one_at_a_time()
            )
            .verify("roster-demo-password".into(), Some(hash))
            .await
            .unwrap(),
            roster::services::password_hash::Verified::Yes
        );
        let inactive_divisions = entity::division::Entity::find()
            .filter(entity::division::Column::IsActive.eq(false))
            .all(&db)
            .await
            .unwrap();
        assert!(!inactive_divisions.is_empty());
        let memberships = entity::membership::Entity::find().all(&db).await.unwrap();
        assert!(
            memberships.len() > 100 && memberships.len() < 900,
            "{}",
            memberships.len()
        );
        usernames.push(users.into_iter().map(|u| u.username).collect::<Vec<_>>());

        // A second run on the now filled database is refused.
        let output = tokio::task::spawn_blocking(move || {
            roster(
                &["demo-data", "--users", "5", "--database-url", &database_url],
                &[],
            )
        })
        .await
        .unwrap();
        assert_one_line_error(&output, "already has users");
    }
    assert_eq!(
        usernames[0], usernames[1],
        "the same seed gives the same data"
    );
}
