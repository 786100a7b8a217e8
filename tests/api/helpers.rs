//! `spawn_app()` and friends.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use entity::{division, group, membership, user};
use roster::{
    config::Config,
    domain::{Email, Username},
    services::{self, users::NewUser},
    state::AppState,
};
use sea_orm::{ActiveModelTrait, ConnectionTrait, Database, DatabaseConnection, Set};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A password that passes the policy, shared by the users tests create.
pub const PASSWORD: &str = "Vq7#pL2m!xZ-roster";

/// One running roster over its own database.
pub struct TestApp {
    pub address: SocketAddr,
    pub url: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub database_url: String,
    _dir: Option<TempDir>,
}

/// A response: status, headers and the JSON body.
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts roster with the default configuration, changed by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let (database_url, dir) = fresh_database().await;
    spawn_app_on(database_url, dir, configure).await
}

pub async fn spawn_app_on(
    database_url: String,
    dir: Option<TempDir>,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config::with_database(database_url.clone());
    configure(&mut config);
    let db = roster::startup::connect(&database_url)
        .await
        .expect("database");
    spawn_app_over(db, config, database_url, dir).await
}

/// Starts roster, changed by `configure`, with a counter of the SQL
/// statements it runs.
pub async fn spawn_counted_app(configure: impl FnOnce(&mut Config)) -> (TestApp, Arc<AtomicUsize>) {
    let (database_url, dir) = fresh_database().await;
    let mut db = roster::startup::connect(&database_url).await.unwrap();
    let counter = Arc::new(AtomicUsize::new(0));
    let seen = counter.clone();
    db.set_metric_callback(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    let mut config = Config::with_database(database_url.clone());
    // The webhook worker's polls would be counted too.
    config.webhooks.concurrency = 0;
    configure(&mut config);
    let app = spawn_app_over(db, config, database_url, dir).await;
    (app, counter)
}

/// Starts roster over a connection the test made (to hook a statement
/// counter into it, say).
pub async fn spawn_app_over(
    db: DatabaseConnection,
    config: Config,
    database_url: String,
    dir: Option<TempDir>,
) -> TestApp {
    let state = roster::startup::state_on(db, config)
        .await
        .expect("app state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = state.clone();
    tokio::spawn(
        async move { roster::startup::serve_on(listener, app, std::future::pending()).await },
    );
    TestApp {
        address,
        url: format!("http://{address}"),
        client: reqwest::Client::new(),
        state,
        database_url,
        _dir: dir,
    }
}

/// A database no other test uses: a temporary SQLite file, or a new schema
/// of the PostgreSQL database named by ROSTER_TEST_DATABASE_URL.
pub async fn fresh_database() -> (String, Option<TempDir>) {
    match std::env::var("ROSTER_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => (fresh_postgres_schema(&base).await, None),
        _ => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("roster.db").display()
            );
            (url, Some(dir))
        }
    }
}

async fn fresh_postgres_schema(base: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = format!(
        "t_{now}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let admin = Database::connect(base)
        .await
        .expect("connect to ROSTER_TEST_DATABASE_URL");
    drop_stale_schemas(&admin, now).await;
    admin
        .execute_unprepared(&format!("CREATE SCHEMA \"{name}\""))
        .await
        .unwrap();
    admin.close().await.ok();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{name}")
}

/// Schemas of test runs more than an hour old; this run's stay until then.
async fn drop_stale_schemas(admin: &DatabaseConnection, now: u64) {
    let rows = admin
        .query_all_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'",
        ))
        .await
        .unwrap_or_default();
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "nspname") else {
            continue;
        };
        let created = name.split('_').nth(1).and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|t| t + 3600 < now) {
            let _ = admin
                .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await;
        }
    }
}

impl TestApp {
    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    /// POSTs a GraphQL document, with a bearer token when given.
    pub async fn gql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Reply {
        self.post_json(token, &json!({ "query": query, "variables": variables }))
            .await
    }

    pub async fn gql(&self, query: &str, variables: Value) -> Reply {
        self.gql_as(None, query, variables).await
    }

    /// Sends every (token, document, variables) at once, each on its own
    /// task; the replies come back in the order given.
    pub async fn gql_concurrently(
        &self,
        requests: Vec<(Option<String>, String, Value)>,
    ) -> Vec<Reply> {
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|(token, query, variables)| self.spawn_gql(token, query, variables))
            .collect();
        let mut replies = Vec::new();
        for task in tasks {
            replies.push(task.await.unwrap());
        }
        replies
    }

    /// POSTs a GraphQL document on a task of its own, to run while the
    /// test does more.
    pub fn spawn_gql(
        &self,
        token: Option<String>,
        query: impl Into<String>,
        variables: Value,
    ) -> tokio::task::JoinHandle<Reply> {
        let (client, url) = (self.client.clone(), format!("{}/graphql", self.url));
        let query = query.into();
        tokio::spawn(async move {
            let mut request = client
                .post(url)
                .json(&json!({ "query": query, "variables": variables }));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            Reply::from(request.send().await.unwrap()).await
        })
    }

    /// POSTs a GraphQL document as if through a proxy, which says the
    /// client is `client` in `X-Forwarded-For` (heeded only when the test's
    /// configuration trusts 127.0.0.1).
    pub async fn gql_from(&self, client: &str, query: &str, variables: Value) -> Reply {
        let request = self
            .client
            .post(format!("{}/graphql", self.url))
            .header("x-forwarded-for", client)
            .json(&json!({ "query": query, "variables": variables }));
        Reply::from(request.send().await.unwrap()).await
    }

    pub async fn post_json(&self, token: Option<&str>, body: &Value) -> Reply {
        let mut request = self.client.post(format!("{}/graphql", self.url)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    /// Creates a user directly in the database.
    pub async fn create_user(&self, username: &str, staff: bool, superuser: bool) -> user::Model {
        let password_hash = self.state.hasher.hash(PASSWORD.to_owned()).await.unwrap();
        let new = NewUser {
            username: Username::parse(username).unwrap(),
            email: Email::parse(&format!("{username}@example.com")).unwrap(),
            first_name: String::new(),
            last_name: String::new(),
            phone_number: None,
            password_hash: Some(password_hash),
            is_active: true,
            is_staff: staff,
            is_superuser: superuser,
            division_id: None,
        };
        let user = services::users::create(self.db(), new).await.unwrap();
        self.forget_reads();
        user
    }

    /// What a mutation through the API does once it ends; the helpers that
    /// write behind the API's back do it too, so that a test sees their rows
    /// at once on SQLite as well (PostgreSQL's notices would tell it soon).
    pub fn forget_reads(&self) {
        self.state.caches.forget_all();
    }

    /// Waits until the server's caches are on (on PostgreSQL, once it
    /// listens for changes).
    pub async fn caches_on(&self) {
        for _ in 0..500 {
            if self.state.caches.users.is_enabled() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the caches never came on");
    }

    /// Lets PostgreSQL's notices of the setup's writes arrive (each makes
    /// the caches forget everything) before a test counts on a cache hit.
    pub async fn settle(&self) {
        self.caches_on().await;
        if self.db().get_database_backend() == sea_orm::DbBackend::Postgres {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }

    /// A valid access token for `user`.
    pub fn token_for(&self, user: &user::Model) -> String {
        self.state
            .tokens
            .issue(user, self.state.config.access_token_ttl)
            .unwrap()
    }

    pub async fn create_division(
        &self,
        name: &str,
        parent: Option<i64>,
        active: bool,
    ) -> division::Model {
        let division = division::ActiveModel {
            name: Set(name.to_owned()),
            name_folded: Set(roster::domain::fold(name)),
            division_type: Set(if parent.is_some() {
                division::DivisionType::Sub
            } else {
                division::DivisionType::Main
            }),
            parent_id: Set(parent),
            is_active: Set(active),
            created_at: Set(roster::clock::now()),
            ..Default::default()
        }
        .insert(self.db())
        .await
        .unwrap();
        self.forget_reads();
        division
    }

    pub async fn create_group(&self, name: &str) -> group::Model {
        let group = group::ActiveModel {
            name: Set(name.to_owned()),
            name_folded: Set(roster::domain::fold(name)),
            ..Default::default()
        }
        .insert(self.db())
        .await
        .unwrap();
        self.forget_reads();
        group
    }

    pub async fn add_member(&self, user_id: i64, group_id: i64) {
        membership::ActiveModel {
            user_id: Set(user_id),
            group_id: Set(group_id),
        }
        .insert(self.db())
        .await
        .unwrap();
        self.forget_reads();
    }
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// The `extensions.code` of every error, in order.
    pub fn codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        e["extensions"]["code"]
                            .as_str()
                            .unwrap_or("<none>")
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}
