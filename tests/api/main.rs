//! roster's integration tests: one binary, the real HTTP server in-process
//! on a loopback port, a fresh database per test (a temporary SQLite file, or
//! a fresh PostgreSQL schema when ROSTER_TEST_DATABASE_URL is set).
mod account_attacks;
mod accounts;
mod admin;
mod attacks;
mod audit;
mod browser;
mod caching;
mod cli;
mod data_model;
mod deadlines;
mod faults;
mod helpers;
mod hostile;
mod listing;
mod load;
mod observability;
mod permissions;
mod persisted;
mod processes;
mod properties;
mod reads;
mod receiver;
mod remote_ids;
mod schema;
mod substrings;
mod transport;
mod webhooks;
