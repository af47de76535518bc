//! The schema and its migrations, numbered by SQLite's `user_version`.

use rusqlite::Connection;

/// Each entry moves the schema from version `index` to `index + 1`. Never edit one that
/// has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: events, room state, the spool's taken-file records, counters, the daemon row.
    "CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT UNIQUE,
        source TEXT NOT NULL,
        type TEXT NOT NULL,
        room TEXT,
        body TEXT NOT NULL,
        raw TEXT NOT NULL,
        accepted_at INTEGER NOT NULL
    );
    CREATE INDEX events_accepted_at ON events(accepted_at);
    CREATE TABLE rooms (
        room TEXT PRIMARY KEY,
        guests TEXT NOT NULL,
        permission TEXT,
        last_seq INTEGER,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE spool_files (
        name TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        report TEXT
    );
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TABLE daemon (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pid INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL,
        stopped_at INTEGER
    );",
    // 2: small facts the link keeps between runs (the portal token obtained by login).
    "CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );",
    // 3: the extension cache, each room's Kandy user and per-field sync state, and the
    // requests commands leave for the daemon (retry, resync, cache refresh).
    "CREATE TABLE directory_users (
        user_id TEXT PRIMARY KEY,
        number TEXT,
        extension TEXT,
        first_name TEXT,
        last_name TEXT,
        call_permission TEXT
    );
    CREATE TABLE directory_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        refreshed_at INTEGER NOT NULL,
        users INTEGER NOT NULL
    );
    ALTER TABLE rooms ADD COLUMN user_id TEXT;
    ALTER TABLE rooms ADD COLUMN unresolved TEXT;
    ALTER TABLE rooms ADD COLUMN candidates TEXT;
    ALTER TABLE rooms ADD COLUMN perm_confirmed TEXT;
    ALTER TABLE rooms ADD COLUMN perm_attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rooms ADD COLUMN perm_deferred INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rooms ADD COLUMN perm_failed TEXT;
    ALTER TABLE rooms ADD COLUMN perm_error TEXT;
    ALTER TABLE rooms ADD COLUMN perm_force INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rooms ADD COLUMN name_confirmed TEXT;
    ALTER TABLE rooms ADD COLUMN name_attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rooms ADD COLUMN name_deferred INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rooms ADD COLUMN name_failed TEXT;
    ALTER TABLE rooms ADD COLUMN name_error TEXT;
    ALTER TABLE rooms ADD COLUMN name_force INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX rooms_last_seq ON rooms(last_seq);
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        rooms TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );",
];

pub const VERSION: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "schema version {version} is newer than this kandy-link knows ({VERSION}); run the newer kandy-link"
            )),
        ));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()
}
