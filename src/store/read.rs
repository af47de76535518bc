//! What the commands read from the store, and the daemon's own row.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, now};

/// Event counts since the store was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub accepted: i64,
    pub duplicate: i64,
    pub rejected: i64,
}

/// The daemon's row: who runs, and when it last showed it is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonRow {
    pub pid: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub stopped_at: Option<i64>,
}

impl Store {
    pub fn counters(&self) -> Result<Counters, StoreError> {
        let mut c = Counters::default();
        let mut stmt = self
            .conn
            .prepare("SELECT name, value FROM counters")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (name, value) = row.map_err(|e| self.err(e))?;
            match name.as_str() {
                "accepted" => c.accepted = value,
                "duplicate" => c.duplicate = value,
                "rejected" => c.rejected = value,
                _ => {}
            }
        }
        Ok(c)
    }

    /// The digest and report recorded for a spool file taken in but maybe not yet removed.
    pub fn spool_record(&self, name: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.conn
            .query_row("SELECT digest, report FROM spool_files WHERE name = ?1", [name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every recorded spool file name.
    pub fn spool_records(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM spool_files")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Marks the daemon started (pid) or alive.
    pub fn heartbeat(&self, pid: u32, starting: bool) -> Result<(), StoreError> {
        let t = now();
        let sql = if starting {
            "INSERT INTO daemon (id, pid, started_at, heartbeat_at, stopped_at) VALUES (1, ?1, ?2, ?2, NULL)
             ON CONFLICT(id) DO UPDATE SET pid = ?1, started_at = ?2, heartbeat_at = ?2, stopped_at = NULL"
        } else {
            "UPDATE daemon SET heartbeat_at = ?2 WHERE pid = ?1"
        };
        self.conn.execute(sql, params![pid, t]).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks the daemon stopped cleanly.
    pub fn stopped(&self, pid: u32) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE daemon SET stopped_at = ?2 WHERE pid = ?1", params![pid, now()])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn daemon(&self) -> Result<Option<DaemonRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT pid, started_at, heartbeat_at, stopped_at FROM daemon WHERE id = 1",
                [],
                |r| {
                    Ok(DaemonRow {
                        pid: r.get(0)?,
                        started_at: r.get(1)?,
                        heartbeat_at: r.get(2)?,
                        stopped_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
