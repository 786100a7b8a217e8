//! The read services asked directly, without HTTP or GraphQL: lists with
//! plain query types, their pages and counts, and the access rules they
//! apply (issue 14).
#![allow(clippy::unwrap_used)]

use roster::{
    domain::{Permission, Permissions},
    error::Error,
    services::{
        access::{self, Access},
        reads::{
            DivisionFilter, GroupFilter, GroupQuery, IdFilter, ListQuery, Order, Reader,
            StringFilter, UserFilter, UserOrderField, UserQuery, UserScope, pagination::PageArgs,
        },
    },
};

use crate::helpers::{TestApp, spawn_app};

async fn access_of(app: &TestApp, id: i64) -> Access {
    Access::of(access::load_account(app.db(), id).await.unwrap().unwrap())
}

fn reader(app: &TestApp) -> Reader {
    Reader::new(app.db(), None, &app.state.config)
}

fn usernames(listed: &roster::services::reads::Listed<entity::user::Model>) -> Vec<&str> {
    listed
        .page
        .rows
        .iter()
        .map(|(_, u)| u.username.as_str())
        .collect()
}

#[tokio::test]
async fn users_list_filter_order_page_and_count_without_http() {
    let app = spawn_app().await;
    let viewer = app.create_user("viewer", false, false).await;
    for name in ["Carol", "alice", "Bob", "dave"] {
        app.create_user(name, false, false).await;
    }
    let access = access_of(&app, viewer.id).await;
    let by_name = vec![Order {
        field: UserOrderField::Username,
        descending: false,
    }];
    let not_viewer = UserFilter {
        username: Some(StringFilter {
            iexact: Some("VIEWER".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let query = |after: Option<String>| UserQuery {
        filter: Some(UserFilter {
            not: Some(Box::new(not_viewer.clone())),
            ..Default::default()
        }),
        order: by_name.clone(),
        page: PageArgs {
            first: Some(3),
            after,
            ..Default::default()
        },
        with_total: true,
        ..Default::default()
    };
    let first = reader(&app).users(&access, query(None)).await.unwrap();
    assert_eq!(usernames(&first), ["alice", "Bob", "Carol"]);
    assert_eq!(first.total, Some(4));
    assert!(first.page.has_next_page);
    let cursor = first.page.rows.last().map(|(c, _)| c.clone());
    let second = reader(&app).users(&access, query(cursor)).await.unwrap();
    assert_eq!(usernames(&second), ["dave"]);
    assert!(!second.page.has_next_page);
    assert!(second.page.has_previous_page);
    // No count unless asked for.
    let uncounted = UserQuery {
        with_total: false,
        ..query(None)
    };
    let listed = reader(&app).users(&access, uncounted).await.unwrap();
    assert_eq!(listed.total, None);
}

#[tokio::test]
async fn the_read_services_apply_the_access_rules() {
    let app = spawn_app().await;
    let plain = app.create_user("plain", false, false).await;
    let viewer = app.create_user("viewer", false, false).await;
    let group = app.create_group("Viewers").await;
    let views: Permissions = [Permission::ViewUserDetails].into_iter().collect();
    access::set_carried(app.db(), group.id, views)
        .await
        .unwrap();
    app.add_member(viewer.id, group.id).await;
    let (plain, viewer) = (
        access_of(&app, plain.id).await,
        access_of(&app, viewer.id).await,
    );
    let by_email = UserQuery {
        filter: Some(UserFilter {
            email: Some(StringFilter {
                icontains: Some("viewer@".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        with_total: true,
        ..Default::default()
    };
    let refused = reader(&app).users(&plain, by_email.clone()).await;
    assert!(
        matches!(&refused, Err(Error::Forbidden(m)) if m.contains("VIEW_USER_DETAILS")),
        "{:?}",
        refused.err()
    );
    let found = reader(&app).users(&viewer, by_email).await.unwrap();
    assert_eq!(found.total, Some(1));
    // The search reads email only for holders.
    let search = UserQuery {
        search: Some("example.com".into()),
        with_total: true,
        ..Default::default()
    };
    let seen = reader(&app).users(&plain, search.clone()).await.unwrap();
    assert_eq!(seen.total, Some(0));
    let seen = reader(&app).users(&viewer, search).await.unwrap();
    assert_eq!(seen.total, Some(2));
    // A group's members need VIEW_USER_DETAILS; anonymous gets nothing.
    let members = UserQuery {
        scope: UserScope::Group(group.id),
        with_total: true,
        ..Default::default()
    };
    let refused = reader(&app).users(&plain, members.clone()).await;
    assert!(matches!(refused, Err(Error::Forbidden(_))));
    let listed = reader(&app).users(&viewer, members.clone()).await.unwrap();
    assert_eq!(listed.total, Some(1));
    let anonymous = reader(&app).users(&Access::anonymous(), members).await;
    assert!(matches!(anonymous, Err(Error::Unauthenticated(_))));
}

#[tokio::test]
async fn groups_and_divisions_list_with_plain_filters_and_refuse_bad_ids() {
    let app = spawn_app().await;
    let viewer = app.create_user("viewer", false, false).await;
    let access = access_of(&app, viewer.id).await;
    for name in ["Sales", "Support", "Finance"] {
        app.create_group(name).await;
    }
    let hq = app.create_division("Headquarters", None, true).await;
    app.create_division("North", Some(hq.id), true).await;
    let query: GroupQuery = ListQuery {
        filter: Some(GroupFilter {
            name: Some(StringFilter {
                istartswith: Some("s".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        order: vec![Order {
            field: roster::services::reads::GroupOrderField::Name,
            descending: true,
        }],
        page: PageArgs::default(),
        with_total: true,
    };
    let groups = reader(&app).groups(&access, query).await.unwrap();
    let names: Vec<&str> = groups
        .page
        .rows
        .iter()
        .map(|(_, g)| g.name.as_str())
        .collect();
    assert_eq!(names, ["Support", "Sales"]);
    assert_eq!(groups.total, Some(2));
    let subs = ListQuery {
        filter: Some(DivisionFilter {
            parent_id: Some(IdFilter {
                exact: Some(hq.id.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        order: Vec::new(),
        page: PageArgs::default(),
        with_total: false,
    };
    let divisions = reader(&app).divisions(&access, subs).await.unwrap();
    let names: Vec<&str> = divisions
        .page
        .rows
        .iter()
        .map(|(_, d)| d.name.as_str())
        .collect();
    assert_eq!(names, ["North"]);
    let bad = ListQuery {
        filter: Some(DivisionFilter {
            id: Some(IdFilter {
                exact: Some("x".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        order: Vec::new(),
        page: PageArgs::default(),
        with_total: false,
    };
    match reader(&app).divisions(&access, bad).await {
        Err(Error::BadUserInput(fields)) => {
            let (field, messages) = fields.iter().next().unwrap();
            assert_eq!(
                (field.as_str(), messages[0].as_str()),
                ("filter", "Not a valid id.")
            );
        }
        other => panic!("{:?}", other.err()),
    }
}
