use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The user columns substring lookups compare (`contains`, `icontains`,
/// `startswith`, `endswith` and their folds, and `search`): the folded
/// twins, and the phone number, which has no letters to fold.
pub const COLUMNS: [&str; 6] = [
    "username_folded",
    "first_name_folded",
    "last_name_folded",
    "email_folded",
    "remote_id_folded",
    "phone_number",
];

/// PostgreSQL: `pg_trgm`'s GIN index on each column, which `LIKE '%…%'`
/// uses for patterns of 3 characters or more. The extension is trusted (a
/// database owner may create it); where it cannot be created the
/// migration goes on without the indexes and roster says so at start
/// (`startup::check_substring_indexes`), searching by scans as before. The
/// lock keeps two schemas migrating at once from racing to create it. Runs
/// again at each start while the indexes are missing.
pub fn postgres_up() -> String {
    let indexes: String = COLUMNS
        .iter()
        .map(|column| {
            format!(
                "EXECUTE format('CREATE INDEX IF NOT EXISTS users_{column}_trgm_idx \
                 ON users USING gin ({column} %I.gin_trgm_ops)', trgm_schema);\n"
            )
        })
        .collect();
    format!(
        r#"
DO $$
DECLARE trgm_schema text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('roster: create extension pg_trgm'));
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION pg_trgm WITH SCHEMA public;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'roster: pg_trgm cannot be created (%); substring searches will scan', SQLERRM;
        END;
    END IF;
    SELECT extnamespace::regnamespace::text INTO trgm_schema
        FROM pg_extension WHERE extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
{indexes}    END IF;
END $$;
"#
    )
}

/// SQLite: an FTS5 index of trigrams over the same columns, kept in step
/// with `users` by triggers (an external-content table: it stores the
/// trigrams, not the text). Case-sensitive, since the columns it indexes
/// are folded already; `filters` asks it for patterns of 3 characters or
/// more and keeps the `LIKE` that decides. `users_trigrams_vocab` says how
/// many rows hold each trigram (`reads::trigrams` asks it which trigrams
/// of a pattern are rare enough to be worth reading).
fn sqlite_up() -> String {
    let columns = COLUMNS.join(", ");
    let new: Vec<String> = COLUMNS.iter().map(|c| format!("new.{c}")).collect();
    let old: Vec<String> = COLUMNS.iter().map(|c| format!("old.{c}")).collect();
    let (new, old) = (new.join(", "), old.join(", "));
    let changed: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("old.{c} IS NOT new.{c}"))
        .collect();
    let changed = changed.join(" OR ");
    format!(
        r#"
CREATE VIRTUAL TABLE users_trigrams USING fts5(
    {columns},
    content = 'users', content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1'
);
INSERT INTO users_trigrams (users_trigrams) VALUES ('rebuild');
CREATE VIRTUAL TABLE users_trigrams_vocab USING fts5vocab(users_trigrams, 'row');
CREATE TRIGGER users_trigrams_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_trigrams (rowid, {columns}) VALUES (new.id, {new});
END;
CREATE TRIGGER users_trigrams_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_trigrams (users_trigrams, rowid, {columns})
        VALUES ('delete', old.id, {old});
END;
CREATE TRIGGER users_trigrams_update AFTER UPDATE ON users WHEN {changed} BEGIN
    INSERT INTO users_trigrams (users_trigrams, rowid, {columns})
        VALUES ('delete', old.id, {old});
    INSERT INTO users_trigrams (rowid, {columns}) VALUES (new.id, {new});
END;
"#
    )
}

const SQLITE_DOWN: &str = r#"
DROP TRIGGER IF EXISTS users_trigrams_update;
DROP TRIGGER IF EXISTS users_trigrams_delete;
DROP TRIGGER IF EXISTS users_trigrams_insert;
DROP TABLE IF EXISTS users_trigrams_vocab;
DROP TABLE IF EXISTS users_trigrams;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DbBackend::Postgres => postgres_up(),
            _ => sqlite_up(),
        };
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DbBackend::Postgres => COLUMNS
                .iter()
                .map(|column| format!("DROP INDEX IF EXISTS users_{column}_trgm_idx;"))
                .collect(),
            _ => SQLITE_DOWN.to_owned(),
        };
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }
}
