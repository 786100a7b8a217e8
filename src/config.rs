//! Configuration: every `ROSTER_*` setting as a flag with an environment
//! fallback (the flag wins), parsed once at start and validated into
//! [`Config`]. A bad value stops the program with one line naming the setting.
use std::{fmt, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use clap::{Args, builder::BoolishValueParser};

use crate::{
    domain::{RetrySchedule, retry_schedule::DEFAULT_RETRY_SCHEDULE},
    http::{
        client_address::{ForwardedHeader, TrustedProxies},
        persisted_queries::{DocumentPolicy, TrustedDocuments},
    },
    services::{client_budget::ClientBudget, password_hash::HashLimits},
};

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://roster.db?mode=rwc";
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: u64 = 15 * 60;
pub const DEFAULT_REFRESH_TOKEN_TTL_SECS: u64 = 30 * 24 * 60 * 60;
pub const DEFAULT_LOGIN_MAX_FAILURES: u32 = 5;
pub const DEFAULT_LOGIN_WINDOW_SECS: u64 = 15 * 60;
pub const DEFAULT_MAX_PAGE_SIZE: u32 = 100;
pub const DEFAULT_MAX_DEPTH: usize = 12;
pub const DEFAULT_MAX_COMPLEXITY: usize = 10_000;
pub const DEFAULT_PASSWORD_MIN_LENGTH: usize = 8;
pub const DEFAULT_REFRESH_REUSE_GRACE_SECS: u64 = 10;
pub const DEFAULT_CACHE_SECS: u64 = 1;
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_CACHE_MAX_MIB: usize = 32;
pub const DEFAULT_SQLITE_PAGE_CACHE_KIB: u32 = 512;
pub const DEFAULT_MAX_ROOT_FIELDS: u64 = 64;
pub const DEFAULT_MAX_ALIASES: u64 = 128;
pub const DEFAULT_MAX_DIRECTIVES: u64 = 128;
pub const DEFAULT_MAX_FRAGMENTS: usize = 128;
pub const DEFAULT_MAX_SELECTIONS: u64 = 10_000;
pub const DEFAULT_SCAN_COST: u64 = 250;
pub const DEFAULT_MAX_INPUT_VALUES: u64 = 200_000;
pub const DEFAULT_MAX_INPUT_OBJECTS: usize = 500;
pub const DEFAULT_MAX_FILTER_NODES: usize = 100;
pub const DEFAULT_MAX_FILTER_DEPTH: usize = 10;
pub const DEFAULT_MAX_IN_VALUES: usize = 1_000;
pub const DEFAULT_MAX_TEXT_LENGTH: usize = 256;
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 5;
pub const DEFAULT_BODY_READ_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_MAX_CONNECTIONS: u32 = 2_048;
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: u32 = 256;
pub const DEFAULT_PASSWORD_HASH_QUEUE: usize = 32;
pub const DEFAULT_PASSWORD_HASH_WAIT_MS: u64 = 2_000;
pub const DEFAULT_PASSWORD_HASH_PER_CLIENT: usize = 4;
pub const DEFAULT_LOGIN_ACCOUNT_MAX_FAILURES: u32 = 100;
pub const DEFAULT_LOGIN_KNOWN_CLIENT_DAYS: u64 = 30;
pub const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 365;
pub const DEFAULT_CLIENT_BUDGET_BURST: u32 = 30;
pub const DEFAULT_WEBHOOK_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_WEBHOOK_CONCURRENCY: u32 = 16;
pub const DEFAULT_WEBHOOK_POLL_MS: u64 = 1_000;
pub const DEFAULT_WEBHOOK_MAX_ENDPOINTS: u64 = 20;
pub const DEFAULT_WEBHOOK_REPLAY_LIMIT: u64 = 10_000;
pub const DEFAULT_WEBHOOK_MAX_RESPONSE_BYTES: u32 = 64 * 1024;
pub const DEFAULT_CLIENT_BUDGET_PER_MINUTE: u32 = 30;
pub const DEFAULT_PERSISTED_QUERIES_MAX_MIB: usize = 8;
pub const DEFAULT_PERSISTED_QUERY_MAX_KIB: usize = 32;
pub const DEFAULT_METRICS_MAX_OPERATION_NAMES: usize = 200;
/// The shortest JWT secret accepted, in bytes (HS256 wants a 256-bit key).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// A value that must never be printed: its `Debug` says only that it is there.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where the database is.
#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://FILE?mode=rwc` or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "ROSTER_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        value_name = "URL",
        value_parser = parse_database_url,
        hide_env_values = true
    )]
    pub database_url: String,
}

fn parse_database_url(value: &str) -> Result<String, String> {
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if known.iter().any(|prefix| value.starts_with(prefix)) {
        Ok(value.to_owned())
    } else {
        Err("expected a sqlite: or postgres:// URL".to_owned())
    }
}

/// The server's tunables. Used by `serve`, and by the commands that share
/// its rules (such as the password policy of `create-superuser`).
#[derive(Args, Debug, Clone)]
pub struct Settings {
    /// Secret for signing access tokens, at least 32 bytes. When unset, a
    /// random one is generated once and kept in the database.
    #[arg(
        long,
        env = "ROSTER_JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "ROSTER_ACCESS_TOKEN_TTL_SECS", default_value_t = DEFAULT_ACCESS_TOKEN_TTL_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400 * 366), value_name = "SECS")]
    pub access_token_ttl_secs: u64,
    /// Lifetime of refresh tokens, in seconds.
    #[arg(long, env = "ROSTER_REFRESH_TOKEN_TTL_SECS", default_value_t = DEFAULT_REFRESH_TOKEN_TTL_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400 * 3660), value_name = "SECS")]
    pub refresh_token_ttl_secs: u64,
    /// Failed logins for one username from one client before logins are refused.
    #[arg(long, env = "ROSTER_LOGIN_MAX_FAILURES", default_value_t = DEFAULT_LOGIN_MAX_FAILURES,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N")]
    pub login_max_failures: u32,
    /// Failed logins for one account from all clients before logins to it
    /// are refused (a guess spread over many networks).
    #[arg(long, env = "ROSTER_LOGIN_ACCOUNT_MAX_FAILURES", default_value_t = DEFAULT_LOGIN_ACCOUNT_MAX_FAILURES,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N")]
    pub login_account_max_failures: u32,
    /// Days a client network that logged in to an account stays exempt from
    /// that account's ceiling (so a spread guess cannot lock the owner out
    /// where the owner logs in); 0: never exempt.
    #[arg(long, env = "ROSTER_LOGIN_KNOWN_CLIENT_DAYS", default_value_t = DEFAULT_LOGIN_KNOWN_CLIENT_DAYS,
          value_parser = clap::value_parser!(u64).range(0..=3_660), value_name = "DAYS")]
    pub login_known_client_days: u64,
    /// Days the audit log keeps an event; 0 keeps every event.
    #[arg(long, env = "ROSTER_AUDIT_RETENTION_DAYS", default_value_t = DEFAULT_AUDIT_RETENTION_DAYS,
          value_parser = clap::value_parser!(u64).range(0..=36_600), value_name = "DAYS")]
    pub audit_retention_days: u64,
    /// Requests that hash a password or present a refresh token
    /// (`register`, `login`, `refreshToken`, `changePassword`) one client
    /// network may make at once.
    #[arg(long, env = "ROSTER_CLIENT_BUDGET_BURST", default_value_t = DEFAULT_CLIENT_BUDGET_BURST,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N")]
    pub client_budget_burst: u32,
    /// How many such requests per minute a client network's budget refills by.
    #[arg(long, env = "ROSTER_CLIENT_BUDGET_PER_MINUTE", default_value_t = DEFAULT_CLIENT_BUDGET_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..=60_000), value_name = "N")]
    pub client_budget_per_minute: u32,
    /// Seconds a webhook endpoint has to answer a delivery (connecting
    /// included); later is a failed attempt.
    #[arg(long, env = "ROSTER_WEBHOOK_TIMEOUT_SECS", default_value_t = DEFAULT_WEBHOOK_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=300), value_name = "SECS")]
    pub webhook_timeout_secs: u64,
    /// The waits before each retry of a failed delivery (ms, s, m, h); when
    /// they run out the delivery has failed.
    #[arg(long, env = "ROSTER_WEBHOOK_RETRY_SCHEDULE", default_value = DEFAULT_RETRY_SCHEDULE,
          value_parser = RetrySchedule::parse, value_name = "WAITS")]
    pub webhook_retry_schedule: RetrySchedule,
    /// Whether webhooks may target loopback, private and link-local
    /// addresses (tests, or receivers on one's own network).
    #[arg(long, env = "ROSTER_WEBHOOK_ALLOW_PRIVATE_TARGETS", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL")]
    pub webhook_allow_private_targets: bool,
    /// Deliveries this process sends at once; 0: it sends none (another
    /// process on the database does).
    #[arg(long, env = "ROSTER_WEBHOOK_CONCURRENCY", default_value_t = DEFAULT_WEBHOOK_CONCURRENCY,
          value_parser = clap::value_parser!(u32).range(0..=256), value_name = "N")]
    pub webhook_concurrency: u32,
    /// How often, in milliseconds, the delivery worker looks for due
    /// deliveries it was not told of (retries, other processes' events).
    #[arg(long, env = "ROSTER_WEBHOOK_POLL_MS", default_value_t = DEFAULT_WEBHOOK_POLL_MS,
          value_parser = clap::value_parser!(u64).range(10..=60_000), value_name = "MS")]
    pub webhook_poll_ms: u64,
    /// Webhook endpoints that may exist at once (each event is queued for
    /// each of them).
    #[arg(long, env = "ROSTER_WEBHOOK_MAX_ENDPOINTS", default_value_t = DEFAULT_WEBHOOK_MAX_ENDPOINTS,
          value_parser = clap::value_parser!(u64).range(0..=1_000), value_name = "N")]
    pub webhook_max_endpoints: u64,
    /// Events one `replayWebhookEvents` queues at most.
    #[arg(long, env = "ROSTER_WEBHOOK_REPLAY_LIMIT", default_value_t = DEFAULT_WEBHOOK_REPLAY_LIMIT,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000), value_name = "N")]
    pub webhook_replay_limit: u64,
    /// Bytes of an endpoint's answer read at most (the rest is ignored).
    #[arg(long, env = "ROSTER_WEBHOOK_MAX_RESPONSE_BYTES", default_value_t = DEFAULT_WEBHOOK_MAX_RESPONSE_BYTES,
          value_parser = clap::value_parser!(u32).range(0..=1_048_576), value_name = "BYTES")]
    pub webhook_max_response_bytes: u32,
    /// Password hashes computed at once (each takes 19 MiB); the number of
    /// cores when unset.
    #[arg(long, env = "ROSTER_PASSWORD_HASH_CONCURRENCY",
          value_parser = clap::value_parser!(u32).range(1..=1_024), value_name = "N")]
    pub password_hash_concurrency: Option<u32>,
    /// Requests that may wait for a hashing thread; more are refused at once.
    #[arg(long, env = "ROSTER_PASSWORD_HASH_QUEUE", default_value_t = DEFAULT_PASSWORD_HASH_QUEUE,
          value_parser = clap::value_parser!(usize), value_name = "N")]
    pub password_hash_queue: usize,
    /// Longest a request waits for a hashing thread, in milliseconds.
    #[arg(long, env = "ROSTER_PASSWORD_HASH_WAIT_MS", default_value_t = DEFAULT_PASSWORD_HASH_WAIT_MS,
          value_parser = clap::value_parser!(u64).range(1..=60_000), value_name = "MS")]
    pub password_hash_wait_ms: u64,
    /// Requests of one client network that may wait for or hold a hashing
    /// thread; more are refused at once (`RATE_LIMITED`).
    #[arg(long, env = "ROSTER_PASSWORD_HASH_PER_CLIENT", default_value_t = DEFAULT_PASSWORD_HASH_PER_CLIENT,
          value_parser = parse_positive_usize, value_name = "N")]
    pub password_hash_per_client: usize,
    /// Proxies whose X-Forwarded-For (or Forwarded) header names the client,
    /// comma separated (`10.0.0.0/8,2001:db8::1`); none when unset.
    #[arg(long, env = "ROSTER_TRUSTED_PROXIES", value_delimiter = ',', value_name = "NETWORKS",
          value_parser = crate::http::client_address::parse_network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header trusted proxies name the client in.
    #[arg(
        long,
        env = "ROSTER_TRUSTED_PROXY_HEADER",
        value_enum,
        default_value = "x-forwarded-for",
        value_name = "HEADER"
    )]
    pub trusted_proxy_header: ForwardedHeader,
    /// The window, in seconds, in which failed logins are counted.
    #[arg(long, env = "ROSTER_LOGIN_WINDOW_SECS", default_value_t = DEFAULT_LOGIN_WINDOW_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400 * 366), value_name = "SECS")]
    pub login_window_secs: u64,
    /// Whether anyone may `register`.
    #[arg(long, env = "ROSTER_OPEN_REGISTRATION", default_value = "true",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL")]
    pub open_registration: bool,
    /// Origins allowed by CORS, comma separated (`*` for any); none when unset.
    #[arg(long, env = "ROSTER_CORS_ORIGINS", value_delimiter = ',', value_name = "ORIGINS",
          value_parser = parse_cors_origin)]
    pub cors_origins: Vec<String>,
    /// Largest page size of a list.
    #[arg(long, env = "ROSTER_MAX_PAGE_SIZE", default_value_t = DEFAULT_MAX_PAGE_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=10_000), value_name = "N")]
    pub max_page_size: u32,
    /// Deepest query accepted.
    #[arg(long, env = "ROSTER_MAX_DEPTH", default_value_t = DEFAULT_MAX_DEPTH,
          value_parser = parse_positive_usize, value_name = "N")]
    pub max_depth: usize,
    /// Most complex query accepted.
    #[arg(long, env = "ROSTER_MAX_COMPLEXITY", default_value_t = DEFAULT_MAX_COMPLEXITY,
          value_parser = parse_positive_usize, value_name = "N")]
    pub max_complexity: usize,
    /// Most fields (aliases included) at the root of one operation.
    #[arg(long, env = "ROSTER_MAX_ROOT_FIELDS", default_value_t = DEFAULT_MAX_ROOT_FIELDS,
          value_parser = clap::value_parser!(u64).range(1..=100_000), value_name = "N")]
    pub max_root_fields: u64,
    /// Most aliased fields in one document, as its fragments expand.
    #[arg(long, env = "ROSTER_MAX_ALIASES", default_value_t = DEFAULT_MAX_ALIASES,
          value_parser = clap::value_parser!(u64).range(1..=100_000), value_name = "N")]
    pub max_aliases: u64,
    /// Most directives in one document, as its fragments expand.
    #[arg(long, env = "ROSTER_MAX_DIRECTIVES", default_value_t = DEFAULT_MAX_DIRECTIVES,
          value_parser = clap::value_parser!(u64).range(1..=100_000), value_name = "N")]
    pub max_directives: u64,
    /// Most fragment definitions in one document.
    #[arg(long, env = "ROSTER_MAX_FRAGMENTS", default_value_t = DEFAULT_MAX_FRAGMENTS,
          value_parser = parse_positive_usize, value_name = "N")]
    pub max_fragments: usize,
    /// Most selections (fields, spreads, inline fragments) a document may
    /// expand to, free ones (`__typename`) included.
    #[arg(long, env = "ROSTER_MAX_SELECTIONS", default_value_t = DEFAULT_MAX_SELECTIONS,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000), value_name = "N")]
    pub max_selections: u64,
    /// What reading every row that might match adds to a query's
    /// complexity, once per list: a `totalCount`, a `search`, a `filter`.
    #[arg(long, env = "ROSTER_SCAN_COST", default_value_t = DEFAULT_SCAN_COST,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000), value_name = "N")]
    pub scan_cost: u64,
    /// Most values in the arguments of one request, counted as fragments
    /// expand and rows multiply.
    #[arg(long, env = "ROSTER_MAX_INPUT_VALUES", default_value_t = DEFAULT_MAX_INPUT_VALUES,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000), value_name = "N")]
    pub max_input_values: u64,
    /// Most objects in the input values (arguments and variables) of one
    /// request.
    #[arg(long, env = "ROSTER_MAX_INPUT_OBJECTS", default_value_t = DEFAULT_MAX_INPUT_OBJECTS,
          value_parser = parse_positive_usize, value_name = "N")]
    pub max_input_objects: usize,
    /// Most filter objects (nested filters and field lookups) in one filter.
    #[arg(long, env = "ROSTER_MAX_FILTER_NODES", default_value_t = DEFAULT_MAX_FILTER_NODES,
          value_parser = parse_positive_usize, value_name = "N")]
    pub max_filter_nodes: usize,
    /// Deepest nesting of and/or/not in one filter (at most 14: input values
    /// nest at most 32 deep, and each level takes two).
    #[arg(long, env = "ROSTER_MAX_FILTER_DEPTH", default_value_t = DEFAULT_MAX_FILTER_DEPTH as u64,
          value_parser = clap::value_parser!(u64).range(1..=14), value_name = "N")]
    pub max_filter_depth: u64,
    /// Most values in all the `in` lists of one filter together (at most
    /// 30,000: SQLite binds at most 32,766 values in one statement).
    #[arg(long, env = "ROSTER_MAX_IN_VALUES", default_value_t = DEFAULT_MAX_IN_VALUES as u64,
          value_parser = clap::value_parser!(u64).range(1..=30_000), value_name = "N")]
    pub max_in_values: u64,
    /// Longest text of a filter value or a `search`, in characters.
    #[arg(long, env = "ROSTER_MAX_TEXT_LENGTH", default_value_t = DEFAULT_MAX_TEXT_LENGTH,
          value_parser = parse_positive_usize, value_name = "N")]
    pub max_text_length: usize,
    /// Shortest password accepted.
    #[arg(long, env = "ROSTER_PASSWORD_MIN_LENGTH", default_value_t = DEFAULT_PASSWORD_MIN_LENGTH,
          value_parser = parse_password_min_length, value_name = "N")]
    pub password_min_length: usize,
    /// Seconds after a rotation in which reusing the old refresh token is only
    /// refused, not treated as theft; 0 turns the grace off.
    #[arg(long, env = "ROSTER_REFRESH_REUSE_GRACE_SECS", default_value_t = DEFAULT_REFRESH_REUSE_GRACE_SECS,
          value_parser = clap::value_parser!(u64).range(0..=3_600), value_name = "SECS")]
    pub refresh_reuse_grace_secs: u64,
    /// Seconds a process may reuse what it read of users (the user behind a
    /// token, a list's totalCount) without asking the database again; 0 asks
    /// every time. Changes made through this process (and, on PostgreSQL,
    /// through any) are seen at once regardless.
    #[arg(long, env = "ROSTER_CACHE_SECS", default_value_t = DEFAULT_CACHE_SECS,
          value_parser = clap::value_parser!(u64).range(0..=60), value_name = "SECS")]
    pub cache_secs: u64,
    /// Most memory the read caches may hold, in MiB (a fifth each for
    /// users, counts, divisions, the groups of users, and groups).
    #[arg(long, env = "ROSTER_CACHE_MAX_MIB", default_value_t = DEFAULT_CACHE_MAX_MIB,
          value_parser = clap::value_parser!(usize), value_name = "MIB")]
    pub cache_max_mib: usize,
    /// Most database connections the server keeps open (default 4 on
    /// SQLite, 16 on PostgreSQL).
    #[arg(long, env = "ROSTER_POOL_SIZE",
          value_parser = clap::value_parser!(u32).range(1..=1_000), value_name = "N")]
    pub pool_size: Option<u32>,
    /// SQLite only: most memory each connection keeps of the database's
    /// pages, in KiB (the operating system's file cache keeps them too).
    #[arg(long, env = "ROSTER_SQLITE_PAGE_CACHE_KIB", default_value_t = DEFAULT_SQLITE_PAGE_CACHE_KIB,
          value_parser = clap::value_parser!(u32).range(64..=1_048_576), value_name = "KIB")]
    pub sqlite_page_cache_kib: u32,
    /// Deadline of one HTTP request, in seconds.
    #[arg(long, env = "ROSTER_REQUEST_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3_600), value_name = "SECS")]
    pub request_timeout_secs: u64,
    /// Seconds a client has to send a request's headers, counted from when
    /// the connection is ready for a request.
    #[arg(long, env = "ROSTER_HEADER_READ_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3_600), value_name = "SECS")]
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may stay open with no byte sent either way
    /// before it is closed (idle keep-alive connections).
    #[arg(long, env = "ROSTER_IDLE_TIMEOUT_SECS", default_value_t = DEFAULT_IDLE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3_600), value_name = "SECS")]
    pub idle_timeout_secs: u64,
    /// Longest pause, in seconds, while a request body is read.
    #[arg(long, env = "ROSTER_BODY_READ_TIMEOUT_SECS", default_value_t = DEFAULT_BODY_READ_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3_600), value_name = "SECS")]
    pub body_read_timeout_secs: u64,
    /// Most client connections open at once; more wait to be accepted.
    #[arg(long, env = "ROSTER_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N")]
    pub max_connections: u32,
    /// Most connections open at once from one client (an IPv4 address or an
    /// IPv6 /64); more are closed at once. Behind a proxy every client is
    /// the proxy: raise it to `ROSTER_MAX_CONNECTIONS`.
    #[arg(long, env = "ROSTER_MAX_CONNECTIONS_PER_CLIENT", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N")]
    pub max_connections_per_client: u32,
    /// Whether the schema can be introspected.
    #[arg(long, env = "ROSTER_INTROSPECTION", default_value = "true",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL")]
    pub introspection: bool,
    /// Whether clients may send a document once with its SHA-256 and then
    /// by the hash alone (Apollo's automatic persisted queries).
    #[arg(long, env = "ROSTER_PERSISTED_QUERIES", default_value = "true",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL")]
    pub persisted_queries: bool,
    /// Most memory the documents kept by hash may take, in MiB; when it is
    /// full it empties, and clients send their documents again.
    #[arg(long, env = "ROSTER_PERSISTED_QUERIES_MAX_MIB", default_value_t = DEFAULT_PERSISTED_QUERIES_MAX_MIB,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_024), value_name = "MIB")]
    pub persisted_queries_max_mib: usize,
    /// Longest document kept by its hash, in KiB: a longer one runs when
    /// sent whole, but is not kept.
    #[arg(long, env = "ROSTER_PERSISTED_QUERY_MAX_KIB", default_value_t = DEFAULT_PERSISTED_QUERY_MAX_KIB,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_024), value_name = "KIB")]
    pub persisted_query_max_kib: usize,
    /// A manifest of trusted documents, as Apollo's
    /// `generate-persisted-query-manifest` writes it: its operations may be
    /// sent by id.
    #[arg(long, env = "ROSTER_TRUSTED_DOCUMENTS", value_name = "PATH")]
    pub trusted_documents: Option<PathBuf>,
    /// Only the manifest's documents run (sent by id, or whole).
    #[arg(long, env = "ROSTER_TRUSTED_DOCUMENTS_ONLY", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL")]
    pub trusted_documents_only: bool,
    /// With ROSTER_TRUSTED_DOCUMENTS_ONLY: staff may still send any document.
    #[arg(long, env = "ROSTER_TRUSTED_DOCUMENTS_STAFF_BYPASS", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL")]
    pub trusted_documents_staff_bypass: bool,
    /// Serve Prometheus metrics at `/metrics` on the main listener.
    #[arg(long, env = "ROSTER_METRICS", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL")]
    pub metrics: bool,
    /// Serve Prometheus metrics at `/metrics` on this address instead (or
    /// as well, with ROSTER_METRICS): a port that is not public.
    #[arg(long, env = "ROSTER_METRICS_BIND", value_parser = parse_bind, value_name = "ADDR")]
    pub metrics_bind: Option<SocketAddr>,
    /// Most operation names counted under their own label; later ones are
    /// counted as "(other)".
    #[arg(long, env = "ROSTER_METRICS_MAX_OPERATION_NAMES", default_value_t = DEFAULT_METRICS_MAX_OPERATION_NAMES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000), value_name = "N")]
    pub metrics_max_operation_names: usize,
}

fn parse_positive_usize(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1".to_owned()),
    }
}

fn parse_password_min_length(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=crate::domain::password::MAX_LENGTH).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from 1 to {}",
            crate::domain::password::MAX_LENGTH
        )),
    }
}

fn parse_cors_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    let valid = value == "*"
        || ((value.starts_with("http://") || value.starts_with("https://"))
            && !value.ends_with('/')
            && axum::http::HeaderValue::from_str(value).is_ok());
    if valid {
        Ok(value.to_owned())
    } else {
        Err("expected `*` or origins like https://app.example.com (no path)".to_owned())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_token_ttl_secs: DEFAULT_ACCESS_TOKEN_TTL_SECS,
            refresh_token_ttl_secs: DEFAULT_REFRESH_TOKEN_TTL_SECS,
            login_max_failures: DEFAULT_LOGIN_MAX_FAILURES,
            login_window_secs: DEFAULT_LOGIN_WINDOW_SECS,
            login_account_max_failures: DEFAULT_LOGIN_ACCOUNT_MAX_FAILURES,
            login_known_client_days: DEFAULT_LOGIN_KNOWN_CLIENT_DAYS,
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            client_budget_burst: DEFAULT_CLIENT_BUDGET_BURST,
            client_budget_per_minute: DEFAULT_CLIENT_BUDGET_PER_MINUTE,
            webhook_timeout_secs: DEFAULT_WEBHOOK_TIMEOUT_SECS,
            webhook_retry_schedule: RetrySchedule::default(),
            webhook_allow_private_targets: false,
            webhook_concurrency: DEFAULT_WEBHOOK_CONCURRENCY,
            webhook_poll_ms: DEFAULT_WEBHOOK_POLL_MS,
            webhook_max_endpoints: DEFAULT_WEBHOOK_MAX_ENDPOINTS,
            webhook_replay_limit: DEFAULT_WEBHOOK_REPLAY_LIMIT,
            webhook_max_response_bytes: DEFAULT_WEBHOOK_MAX_RESPONSE_BYTES,
            password_hash_concurrency: None,
            password_hash_queue: DEFAULT_PASSWORD_HASH_QUEUE,
            password_hash_wait_ms: DEFAULT_PASSWORD_HASH_WAIT_MS,
            password_hash_per_client: DEFAULT_PASSWORD_HASH_PER_CLIENT,
            trusted_proxies: Vec::new(),
            trusted_proxy_header: ForwardedHeader::XForwardedFor,
            open_registration: true,
            cors_origins: Vec::new(),
            max_page_size: DEFAULT_MAX_PAGE_SIZE,
            max_depth: DEFAULT_MAX_DEPTH,
            max_complexity: DEFAULT_MAX_COMPLEXITY,
            max_root_fields: DEFAULT_MAX_ROOT_FIELDS,
            max_aliases: DEFAULT_MAX_ALIASES,
            max_directives: DEFAULT_MAX_DIRECTIVES,
            max_fragments: DEFAULT_MAX_FRAGMENTS,
            max_selections: DEFAULT_MAX_SELECTIONS,
            scan_cost: DEFAULT_SCAN_COST,
            max_input_values: DEFAULT_MAX_INPUT_VALUES,
            max_input_objects: DEFAULT_MAX_INPUT_OBJECTS,
            max_filter_nodes: DEFAULT_MAX_FILTER_NODES,
            max_filter_depth: DEFAULT_MAX_FILTER_DEPTH as u64,
            max_in_values: DEFAULT_MAX_IN_VALUES as u64,
            max_text_length: DEFAULT_MAX_TEXT_LENGTH,
            password_min_length: DEFAULT_PASSWORD_MIN_LENGTH,
            refresh_reuse_grace_secs: DEFAULT_REFRESH_REUSE_GRACE_SECS,
            cache_secs: DEFAULT_CACHE_SECS,
            cache_max_mib: DEFAULT_CACHE_MAX_MIB,
            pool_size: None,
            sqlite_page_cache_kib: DEFAULT_SQLITE_PAGE_CACHE_KIB,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            header_read_timeout_secs: DEFAULT_HEADER_READ_TIMEOUT_SECS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            body_read_timeout_secs: DEFAULT_BODY_READ_TIMEOUT_SECS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            introspection: true,
            persisted_queries: true,
            persisted_queries_max_mib: DEFAULT_PERSISTED_QUERIES_MAX_MIB,
            persisted_query_max_kib: DEFAULT_PERSISTED_QUERY_MAX_KIB,
            trusted_documents: None,
            trusted_documents_only: false,
            trusted_documents_staff_bypass: false,
            metrics: false,
            metrics_bind: None,
            metrics_max_operation_names: DEFAULT_METRICS_MAX_OPERATION_NAMES,
        }
    }
}

/// What one filter may hold (see `graphql::filters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterLimits {
    /// Filter objects: the filter, each nested filter, each field lookup.
    pub max_nodes: usize,
    /// Levels of and/or/not.
    pub max_depth: usize,
    /// Values in all `in` lists together.
    pub max_in_values: usize,
    /// Characters of one text value or `search`.
    pub max_text_length: usize,
}

impl Default for FilterLimits {
    fn default() -> Self {
        Self {
            max_nodes: DEFAULT_MAX_FILTER_NODES,
            max_depth: DEFAULT_MAX_FILTER_DEPTH,
            max_in_values: DEFAULT_MAX_IN_VALUES,
            max_text_length: DEFAULT_MAX_TEXT_LENGTH,
        }
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub jwt_secret: Option<Secret>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub login_max_failures: u32,
    pub login_window: Duration,
    pub login_account_max_failures: u32,
    pub login_known_client: Duration,
    /// How long the audit log keeps an event; none: for ever.
    pub audit_retention: Option<Duration>,
    pub client_budget: ClientBudget,
    pub webhooks: WebhookSettings,
    pub hash_limits: HashLimits,
    pub trusted_proxies: TrustedProxies,
    pub open_registration: bool,
    pub cors_origins: Vec<String>,
    pub max_page_size: u32,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_root_fields: u64,
    pub max_aliases: u64,
    pub max_directives: u64,
    pub max_fragments: usize,
    pub max_selections: u64,
    pub scan_cost: u64,
    pub max_input_values: u64,
    pub max_input_objects: usize,
    pub filter_limits: FilterLimits,
    pub password_min_length: usize,
    pub refresh_reuse_grace: Duration,
    pub cache: Duration,
    pub cache_max_bytes: usize,
    pub pool_size: Option<u32>,
    pub sqlite_page_cache_kib: u32,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: u32,
    pub max_connections_per_client: u32,
    pub introspection: bool,
    pub documents: DocumentPolicy,
    pub metrics: MetricsSettings,
}

/// Where Prometheus metrics are served.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// At `/metrics` on the main listener.
    pub on_main: bool,
    /// At `/metrics` on a listener of their own.
    pub bind: Option<SocketAddr>,
    pub max_operation_names: usize,
}

impl MetricsSettings {
    pub fn enabled(&self) -> bool {
        self.on_main || self.bind.is_some()
    }
}

impl Config {
    /// Checks what clap cannot check one value at a time. The message names
    /// the setting and never echoes a secret.
    pub fn new(database: DatabaseArgs, mut settings: Settings) -> Result<Self, String> {
        let jwt_secret = match settings.jwt_secret.take() {
            Some(secret) if secret.len() < MIN_JWT_SECRET_BYTES => {
                return Err(format!(
                    "ROSTER_JWT_SECRET (--jwt-secret) must be at least {MIN_JWT_SECRET_BYTES} bytes long"
                ));
            }
            other => other.map(Secret::new),
        };
        let trusted = match &settings.trusted_documents {
            Some(path) => Some(Arc::new(TrustedDocuments::load(path).map_err(|e| {
                format!("ROSTER_TRUSTED_DOCUMENTS (--trusted-documents): {e}")
            })?)),
            None if settings.trusted_documents_only => {
                return Err(
                    "ROSTER_TRUSTED_DOCUMENTS_ONLY (--trusted-documents-only) needs \
                     a manifest in ROSTER_TRUSTED_DOCUMENTS (--trusted-documents)"
                        .to_owned(),
                );
            }
            None => None,
        };
        if settings.trusted_documents_staff_bypass && !settings.trusted_documents_only {
            return Err(
                "ROSTER_TRUSTED_DOCUMENTS_STAFF_BYPASS (--trusted-documents-staff-bypass) \
                 only has a meaning with ROSTER_TRUSTED_DOCUMENTS_ONLY (--trusted-documents-only)"
                    .to_owned(),
            );
        }
        let mut config = Self::assemble(database, settings, jwt_secret);
        config.documents.trusted = trusted;
        Ok(config)
    }

    /// The defaults, over the given database.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        let database = DatabaseArgs {
            database_url: database_url.into(),
        };
        Self::assemble(database, Settings::default(), None)
    }

    fn assemble(database: DatabaseArgs, settings: Settings, jwt_secret: Option<Secret>) -> Self {
        Self {
            database_url: database.database_url,
            jwt_secret,
            access_token_ttl: Duration::from_secs(settings.access_token_ttl_secs),
            refresh_token_ttl: Duration::from_secs(settings.refresh_token_ttl_secs),
            login_max_failures: settings.login_max_failures,
            login_window: Duration::from_secs(settings.login_window_secs),
            login_account_max_failures: settings.login_account_max_failures,
            login_known_client: Duration::from_secs(settings.login_known_client_days * 86_400),
            audit_retention: (settings.audit_retention_days > 0)
                .then(|| Duration::from_secs(settings.audit_retention_days * 86_400)),
            client_budget: ClientBudget {
                burst: settings.client_budget_burst,
                per_minute: settings.client_budget_per_minute,
            },
            webhooks: WebhookSettings {
                timeout: Duration::from_secs(settings.webhook_timeout_secs),
                schedule: settings.webhook_retry_schedule,
                allow_private_targets: settings.webhook_allow_private_targets,
                concurrency: settings.webhook_concurrency as usize,
                poll: Duration::from_millis(settings.webhook_poll_ms),
                max_endpoints: settings.webhook_max_endpoints,
                replay_limit: settings.webhook_replay_limit,
                max_response_bytes: settings.webhook_max_response_bytes as usize,
            },
            hash_limits: HashLimits {
                concurrency: settings.password_hash_concurrency.map_or_else(
                    || std::thread::available_parallelism().map_or(1, usize::from),
                    |n| n as usize,
                ),
                queue: settings.password_hash_queue,
                wait: Duration::from_millis(settings.password_hash_wait_ms),
                per_client: settings.password_hash_per_client,
            },
            trusted_proxies: TrustedProxies {
                networks: settings.trusted_proxies,
                header: settings.trusted_proxy_header,
            },
            open_registration: settings.open_registration,
            cors_origins: settings.cors_origins,
            max_page_size: settings.max_page_size,
            max_depth: settings.max_depth,
            max_complexity: settings.max_complexity,
            max_root_fields: settings.max_root_fields,
            max_aliases: settings.max_aliases,
            max_directives: settings.max_directives,
            max_fragments: settings.max_fragments,
            max_selections: settings.max_selections,
            scan_cost: settings.scan_cost,
            max_input_values: settings.max_input_values,
            max_input_objects: settings.max_input_objects,
            filter_limits: FilterLimits {
                max_nodes: settings.max_filter_nodes,
                max_depth: settings.max_filter_depth as usize,
                max_in_values: settings.max_in_values as usize,
                max_text_length: settings.max_text_length,
            },
            password_min_length: settings.password_min_length,
            refresh_reuse_grace: Duration::from_secs(settings.refresh_reuse_grace_secs),
            cache: Duration::from_secs(settings.cache_secs),
            cache_max_bytes: settings.cache_max_mib.saturating_mul(1024 * 1024),
            pool_size: settings.pool_size,
            sqlite_page_cache_kib: settings.sqlite_page_cache_kib,
            request_timeout: Duration::from_secs(settings.request_timeout_secs),
            header_read_timeout: Duration::from_secs(settings.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(settings.idle_timeout_secs),
            body_read_timeout: Duration::from_secs(settings.body_read_timeout_secs),
            max_connections: settings.max_connections,
            max_connections_per_client: settings.max_connections_per_client,
            introspection: settings.introspection,
            documents: DocumentPolicy {
                automatic: settings.persisted_queries,
                automatic_max_bytes: settings
                    .persisted_queries_max_mib
                    .saturating_mul(1024 * 1024),
                max_kept_document_bytes: settings.persisted_query_max_kib.saturating_mul(1024),
                trusted: None,
                trusted_only: settings.trusted_documents_only,
                staff_bypass: settings.trusted_documents_staff_bypass,
            },
            metrics: MetricsSettings {
                on_main: settings.metrics,
                bind: settings.metrics_bind,
                max_operation_names: settings.metrics_max_operation_names,
            },
        }
    }
}

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub timeout: Duration,
    pub schedule: RetrySchedule,
    pub allow_private_targets: bool,
    pub concurrency: usize,
    pub poll: Duration,
    pub max_endpoints: u64,
    pub replay_limit: u64,
    pub max_response_bytes: usize,
}

/// Parses `ROSTER_BIND`/`--bind`.
pub fn parse_bind(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| "expected an address like 127.0.0.1:8080 or [::1]:8080".to_owned())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn clap_defaults_are_the_default_settings() {
        let parsed = Cli::try_parse_from(["roster"]).map(|cli| cli.settings);
        assert_eq!(
            parsed.map(|s| format!("{s:?}")).ok(),
            Some(format!("{:?}", Settings::default()))
        );
    }
}
