//! The published schema.
#![allow(clippy::unwrap_used)]

#[test]
fn schema_graphql_is_what_export_schema_prints() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == roster::graphql::sdl(),
        "schema.graphql is stale: run `cargo run -- export-schema > schema.graphql`"
    );
}
