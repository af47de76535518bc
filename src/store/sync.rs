//! What the sync loop keeps: each room's Kandy user and per-field sync state, the
//! extension cache, the link's state, and the requests commands leave for the daemon.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, now, sqlite};
use crate::directory::User;
use crate::room::RoomState;
use crate::sync::plan::FieldSync;

/// A room with everything the sync loop needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRow {
    pub room: String,
    pub state: RoomState,
    /// The sequence number of the last event that changed the room.
    pub last_seq: i64,
    pub user_id: Option<String>,
    pub unresolved: Option<String>,
    pub candidates: Vec<String>,
    pub permission: FieldSync,
    pub name: FieldSync,
}

/// A request a command left for the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: i64,
    /// `retry`, `resync` or `refresh`.
    pub kind: String,
    /// Empty: every room.
    pub rooms: Vec<String>,
}

/// The link's state as the daemon last wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkRow {
    /// `ok`, `degraded` or `auth-failed`.
    pub state: String,
    pub reason: Option<String>,
    pub since: i64,
}

const SYNC_COLUMNS: &str = "room, guests, permission, COALESCE(last_seq, 0), user_id, unresolved, candidates,
    perm_confirmed, perm_attempts, perm_deferred, perm_failed, perm_error, perm_force,
    name_confirmed, name_attempts, name_deferred, name_failed, name_error, name_force";

fn field(row: &Row<'_>, at: usize) -> rusqlite::Result<FieldSync> {
    Ok(FieldSync {
        confirmed: row.get(at)?,
        attempts: row.get(at + 1)?,
        deferred: row.get(at + 2)?,
        failed: row.get(at + 3)?,
        last_error: row.get(at + 4)?,
        force: row.get(at + 5)?,
    })
}

fn sync_row(row: &Row<'_>) -> rusqlite::Result<SyncRow> {
    let guests: String = row.get(1)?;
    let candidates: Option<String> = row.get(6)?;
    Ok(SyncRow {
        room: row.get(0)?,
        state: RoomState {
            guests: serde_json::from_str(&guests).unwrap_or_default(),
            permission: row.get(2)?,
        },
        last_seq: row.get(3)?,
        user_id: row.get(4)?,
        unresolved: row.get(5)?,
        candidates: candidates
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default(),
        permission: field(row, 7)?,
        name: field(row, 13)?,
    })
}

impl Store {
    /// Every room, or with `since` only those changed by an event after that sequence
    /// number (an index lookup, not a scan).
    pub fn sync_rows(&self, since: Option<i64>) -> Result<Vec<SyncRow>, StoreError> {
        let sql = match since {
            Some(_) => format!("SELECT {SYNC_COLUMNS} FROM rooms WHERE last_seq > ?1 ORDER BY room"),
            None => format!("SELECT {SYNC_COLUMNS} FROM rooms WHERE ?1 IS NULL ORDER BY room"),
        };
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map([since], sync_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Writes the sync state of `rows` (not their room state, which only intake writes),
    /// in one transaction.
    pub fn save_sync(&mut self, rows: &[SyncRow]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| sqlite(&path, e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE rooms SET user_id = ?2, unresolved = ?3, candidates = ?4,
                     perm_confirmed = ?5, perm_attempts = ?6, perm_deferred = ?7, perm_failed = ?8, perm_error = ?9, perm_force = ?10,
                     name_confirmed = ?11, name_attempts = ?12, name_deferred = ?13, name_failed = ?14, name_error = ?15, name_force = ?16
                     WHERE room = ?1",
                )
                .map_err(|e| sqlite(&path, e))?;
            for r in rows {
                let candidates =
                    (!r.candidates.is_empty()).then(|| serde_json::to_string(&r.candidates).unwrap_or_default());
                let (p, n) = (&r.permission, &r.name);
                stmt.execute(params![
                    r.room,
                    r.user_id,
                    r.unresolved,
                    candidates,
                    p.confirmed,
                    p.attempts,
                    p.deferred,
                    p.failed,
                    p.last_error,
                    p.force,
                    n.confirmed,
                    n.attempts,
                    n.deferred,
                    n.failed,
                    n.last_error,
                    n.force,
                ])
                .map_err(|e| sqlite(&path, e))?;
            }
        }
        tx.commit().map_err(|e| sqlite(&path, e))
    }

    /// The extension cache as last saved, and when it was read from the portal.
    pub fn directory(&self) -> Result<(Vec<User>, Option<i64>), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT user_id, number, extension, first_name, last_name, call_permission FROM directory_users ORDER BY user_id")
            .map_err(|e| self.err(e))?;
        let users = stmt
            .query_map([], |r| {
                Ok(User {
                    user_id: r.get(0)?,
                    number: r.get(1)?,
                    extension: r.get(2)?,
                    first_name: r.get(3)?,
                    last_name: r.get(4)?,
                    call_permission: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        let at = self
            .conn
            .query_row("SELECT refreshed_at FROM directory_meta WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok((users, at))
    }

    /// Replaces the whole cache with `users`, read at `at`.
    pub fn save_directory(&mut self, users: &[User], at: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| sqlite(&path, e))?;
        tx.execute("DELETE FROM directory_users", [])
            .map_err(|e| sqlite(&path, e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO directory_users (user_id, number, extension, first_name, last_name, call_permission)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(|e| sqlite(&path, e))?;
            for u in users {
                stmt.execute(params![
                    u.user_id,
                    u.number,
                    u.extension,
                    u.first_name,
                    u.last_name,
                    u.call_permission
                ])
                .map_err(|e| sqlite(&path, e))?;
            }
        }
        tx.execute(
            "INSERT INTO directory_meta (id, refreshed_at, users) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET refreshed_at = ?1, users = ?2",
            params![at, users.len() as i64],
        )
        .map_err(|e| sqlite(&path, e))?;
        tx.commit().map_err(|e| sqlite(&path, e))
    }

    /// The size and time of the last saved cache, without reading it.
    pub fn directory_meta(&self) -> Result<Option<(i64, i64)>, StoreError> {
        self.conn
            .query_row("SELECT users, refreshed_at FROM directory_meta WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Leaves a request for the daemon (`retry`, `resync`, `refresh`).
    pub fn add_request(&self, kind: &str, rooms: &[String]) -> Result<i64, StoreError> {
        let rooms = serde_json::to_string(rooms).unwrap_or_else(|_| "[]".into());
        self.conn
            .execute(
                "INSERT INTO requests (kind, rooms, created_at) VALUES (?1, ?2, ?3)",
                params![kind, rooms, now()],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Takes (and removes) the requests waiting for the daemon, oldest first.
    pub fn take_requests(&mut self) -> Result<Vec<Request>, StoreError> {
        // Asked every second: a plain read first, so that an empty table never waits for
        // the write lock (a commit may hold it).
        let waiting: i64 = self
            .conn
            .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if waiting == 0 {
            return Ok(Vec::new());
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sqlite(&path, e))?;
        let requests = {
            let mut stmt = tx
                .prepare_cached("SELECT id, kind, rooms FROM requests ORDER BY id")
                .map_err(|e| sqlite(&path, e))?;
            stmt.query_map([], |r| {
                let rooms: String = r.get(2)?;
                Ok(Request {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    rooms: serde_json::from_str(&rooms).unwrap_or_default(),
                })
            })
            .map_err(|e| sqlite(&path, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| sqlite(&path, e))?
        };
        if !requests.is_empty() {
            tx.execute("DELETE FROM requests", []).map_err(|e| sqlite(&path, e))?;
            tx.commit().map_err(|e| sqlite(&path, e))?;
        }
        Ok(requests)
    }

    /// Whether the request `id` is still waiting.
    pub fn request_waiting(&self, id: i64) -> Result<bool, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM requests WHERE id = ?1", [id], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    pub fn set_link(&self, link: &LinkRow) -> Result<(), StoreError> {
        self.set_fact("link", &serde_json::to_string(link).unwrap_or_default())
    }

    pub fn link(&self) -> Result<Option<LinkRow>, StoreError> {
        Ok(self.kv("link")?.and_then(|v| serde_json::from_str(&v).ok()))
    }

    fn set_fact(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET value = ?2, updated_at = ?3",
                params![key, value, now()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
