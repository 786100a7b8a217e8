//! What the database itself guarantees.
#![allow(clippy::unwrap_used)]

use entity::{division, membership, setting, user};
use migration::{Migrator, MigratorTrait};
use roster::{Error, services::users::conflict_from};
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};

use crate::helpers::{spawn_app, spawn_app_on};

fn raw_user(username: &str, email: &str) -> user::ActiveModel {
    user::ActiveModel {
        username: Set(username.to_owned()),
        username_folded: Set(roster::domain::fold(username)),
        email: Set(email.to_owned()),
        email_folded: Set(roster::domain::fold(email)),
        first_name: Set(String::new()),
        first_name_folded: Set(String::new()),
        last_name: Set(String::new()),
        last_name_folded: Set(String::new()),
        phone_number: Set(None),
        password_hash: Set(None),
        is_active: Set(true),
        is_staff: Set(false),
        is_superuser: Set(false),
        date_joined: Set(roster::clock::now()),
        last_login: Set(None),
        division_id: Set(None),
        token_version: Set(0),
        ..Default::default()
    }
}

#[tokio::test]
async fn migrating_again_changes_nothing() {
    let app = spawn_app().await;
    assert!(
        Migrator::get_pending_migrations(app.db())
            .await
            .unwrap()
            .is_empty()
    );
    Migrator::up(app.db(), None).await.unwrap();
    let applied = Migrator::get_applied_migrations(app.db()).await.unwrap();
    assert_eq!(applied.len(), Migrator::migrations().len());
}

#[tokio::test]
async fn the_database_refuses_usernames_and_emails_that_differ_only_in_case() {
    let app = spawn_app().await;
    raw_user("Émile", "emile@example.com")
        .insert(app.db())
        .await
        .unwrap();
    let error = raw_user("éMILE", "other@example.com")
        .insert(app.db())
        .await
        .unwrap_err();
    assert!(
        matches!(conflict_from(error), Error::Conflict(f) if f.iter().map(|(k, _)| k.as_str()).eq(["username"]))
    );
    let error = raw_user("other", "EMILE@Example.COM")
        .insert(app.db())
        .await
        .unwrap_err();
    assert!(
        matches!(conflict_from(error), Error::Conflict(f) if f.iter().map(|(k, _)| k.as_str()).eq(["email"]))
    );
    assert_eq!(user::Entity::find().count(app.db()).await.unwrap(), 1);
}

#[tokio::test]
async fn a_division_with_users_cannot_be_deleted() {
    let app = spawn_app().await;
    let engineering = app.create_division("Engineering", None, true).await;
    let mut alice = raw_user("alice", "alice@example.com");
    alice.division_id = Set(Some(engineering.id));
    alice.insert(app.db()).await.unwrap();
    assert!(
        division::Entity::delete_by_id(engineering.id)
            .exec(app.db())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_database_enforces_the_main_sub_parent_shape() {
    let app = spawn_app().await;
    let main = app.create_division("Engineering", None, true).await;
    let sub_without_parent = division::ActiveModel {
        name: Set("Orphan".into()),
        name_folded: Set("orphan".into()),
        division_type: Set(division::DivisionType::Sub),
        parent_id: Set(None),
        is_active: Set(true),
        created_at: Set(roster::clock::now()),
        ..Default::default()
    };
    assert!(sub_without_parent.insert(app.db()).await.is_err());
    let main_with_parent = division::ActiveModel {
        name: Set("Nested".into()),
        name_folded: Set("nested".into()),
        division_type: Set(division::DivisionType::Main),
        parent_id: Set(Some(main.id)),
        is_active: Set(true),
        created_at: Set(roster::clock::now()),
        ..Default::default()
    };
    assert!(main_with_parent.insert(app.db()).await.is_err());
}

#[tokio::test]
async fn deleting_a_user_removes_its_memberships() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", false, false).await;
    let group = app.create_group("Manager").await;
    app.add_member(alice.id, group.id).await;
    user::Entity::delete_by_id(alice.id)
        .exec(app.db())
        .await
        .unwrap();
    assert_eq!(membership::Entity::find().count(app.db()).await.unwrap(), 0);
}

#[tokio::test]
async fn the_generated_jwt_secret_is_kept_and_shared() {
    let first = spawn_app().await;
    let alice = first.create_user("alice", false, false).await;
    let token = first.token_for(&alice);
    let stored = setting::Entity::find_by_id("jwt_secret")
        .one(first.db())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.value.len() >= 64, "48 random bytes, base64");
    // A second process on the same database uses the same secret.
    let second = spawn_app_on(first.database_url.clone(), None, |_| {}).await;
    assert_eq!(
        second.state.tokens.verify(&token).unwrap().sub,
        alice.id.to_string()
    );
}

#[tokio::test]
async fn a_configured_jwt_secret_wins_and_is_not_stored() {
    let secret = "x".repeat(40);
    let app = crate::helpers::spawn_app_with(|c| {
        c.jwt_secret = Some(roster::config::Secret::new(secret.clone()))
    })
    .await;
    assert!(
        setting::Entity::find_by_id("jwt_secret")
            .one(app.db())
            .await
            .unwrap()
            .is_none()
    );
    let alice = app.create_user("alice", false, false).await;
    let token = app.token_for(&alice);
    let other = roster::services::tokens::TokenKeys::new(&roster::config::Secret::new(secret));
    assert!(other.verify(&token).is_ok());
}
