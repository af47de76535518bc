//! Taking events in: one write transaction that applies events in order, writing each
//! one and the room state it leads to together, so the two can never disagree.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rusqlite::{OptionalExtension, Transaction, params};

use super::{StoreError, now, sqlite};
use crate::config::CallPermissions;
use crate::event::{Event, Rejection};
use crate::room::{self, Policy, RoomState};

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored with this sequence number (once the transaction commits).
    Accepted {
        seq: i64,
    },
    /// Its id was accepted before; `differs` when the content is not the same.
    Duplicate {
        id: String,
        differs: bool,
    },
    Rejected(Rejection),
}

/// The settings taking an event in depends on.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub permissions: &'a CallPermissions,
    /// Rooms known from the configuration (`[rooms.mailboxes]`), for `sync`.
    pub configured_rooms: &'a [String],
}

/// A write transaction of the store. Nothing in it is accepted until `commit` returns.
#[derive(Debug)]
pub struct Intake<'a> {
    tx: Transaction<'a>,
    path: PathBuf,
    accepted: i64,
    duplicate: i64,
    rejected: i64,
}

impl<'a> Intake<'a> {
    pub(super) fn new(tx: Transaction<'a>, path: PathBuf) -> Self {
        Intake {
            tx,
            path,
            accepted: 0,
            duplicate: 0,
            rejected: 0,
        }
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        sqlite(&self.path, e)
    }

    /// Takes one event: `parsed` is what validation made of `raw`. A rejection (here or
    /// by the room rules) is counted and nothing of the event is written.
    pub fn take(
        &mut self,
        raw: &str,
        parsed: Result<Event, Rejection>,
        source: &str,
        rules: Rules<'_>,
    ) -> Result<Outcome, StoreError> {
        let event = match parsed {
            Ok(e) => e,
            Err(r) => return Ok(self.reject(r)),
        };
        let body = event.canonical();
        if let Some(id) = &event.id {
            let before: Option<String> = self
                .tx
                .query_row("SELECT body FROM events WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(before) = before {
                self.duplicate += 1;
                return Ok(Outcome::Duplicate {
                    id: id.clone(),
                    differs: before != body,
                });
            }
        }
        let current = self.load_rooms(&event, rules)?;
        let applied = match room::apply(
            &event,
            &current,
            Policy {
                permissions: rules.permissions,
            },
        ) {
            Ok(a) => a,
            Err(r) => return Ok(self.reject(r)),
        };
        let at = now();
        self.tx
            .execute(
                "INSERT INTO events (id, source, type, room, body, raw, accepted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![event.id, source, event.type_name(), event.room(), body, raw, at],
            )
            .map_err(|e| self.err(e))?;
        let seq = self.tx.last_insert_rowid();
        for note in &applied.notes {
            tracing::warn!(event_seq = seq, event_id = event.id.as_deref(), "{note}");
        }
        let mut upsert = self
            .tx
            .prepare_cached(
                "INSERT INTO rooms (room, guests, permission, last_seq, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(room) DO UPDATE SET guests = excluded.guests, permission = excluded.permission,
                 last_seq = excluded.last_seq, updated_at = excluded.updated_at",
            )
            .map_err(|e| sqlite(&self.path, e))?;
        let named = match &event.kind {
            crate::event::Kind::Sync { .. } => Vec::new(),
            _ => room::rooms_needed(&event),
        };
        for (name, state) in &applied.rooms {
            // A room the event names is written even when unchanged: its new last event
            // tells the sync loop that an event touched it (deferred fields retry).
            if current.get(name) != Some(state) || named.contains(&name.as_str()) {
                let guests = serde_json::to_string(&state.guests).unwrap_or_else(|_| "[]".into());
                upsert
                    .execute(params![name, guests, state.permission, seq, at])
                    .map_err(|e| sqlite(&self.path, e))?;
            }
        }
        drop(upsert);
        self.accepted += 1;
        Ok(Outcome::Accepted { seq })
    }

    fn reject(&mut self, r: Rejection) -> Outcome {
        self.rejected += 1;
        Outcome::Rejected(r)
    }

    /// Counts a rejection that never reached `take` (a file refused unopened).
    pub fn count_rejected(&mut self, n: i64) {
        self.rejected += n;
    }

    /// The current state of the rooms `event` needs; for `sync`, every known room.
    fn load_rooms(&self, event: &Event, rules: Rules<'_>) -> Result<BTreeMap<String, RoomState>, StoreError> {
        let mut out = BTreeMap::new();
        let mut load = |sql: &str, param: Option<&str>| -> rusqlite::Result<()> {
            let mut stmt = self.tx.prepare_cached(sql)?;
            let mut rows = match param {
                Some(p) => stmt.query([p])?,
                None => stmt.query([])?,
            };
            while let Some(row) = rows.next()? {
                let room: String = row.get(0)?;
                let guests: String = row.get(1)?;
                let guests = serde_json::from_str(&guests).unwrap_or_default();
                out.insert(
                    room,
                    RoomState {
                        guests,
                        permission: row.get(2)?,
                    },
                );
            }
            Ok(())
        };
        if matches!(event.kind, crate::event::Kind::Sync { .. }) {
            load("SELECT room, guests, permission FROM rooms", None).map_err(|e| self.err(e))?;
            for room in rules.configured_rooms {
                out.entry(room.clone()).or_default();
            }
        } else {
            for room in room::rooms_needed(event) {
                load("SELECT room, guests, permission FROM rooms WHERE room = ?1", Some(room))
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(out)
    }

    /// Records that a spool file was taken in, with the `.error` report it is to get when
    /// it goes to `rejected/`, so that a crash before its removal cannot take it in twice.
    pub fn record_file(&mut self, name: &str, digest: &str, report: Option<&str>) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT OR REPLACE INTO spool_files (name, digest, report) VALUES (?1, ?2, ?3)",
                params![name, digest, report],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Drops the records of files that are gone from `incoming/`.
    pub fn forget_files(&mut self, names: &[String]) -> Result<(), StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM spool_files WHERE name = ?1")
            .map_err(|e| sqlite(&self.path, e))?;
        for name in names {
            stmt.execute([name]).map_err(|e| sqlite(&self.path, e))?;
        }
        Ok(())
    }

    /// Commits: from here on every `Accepted` event is durable.
    pub fn commit(self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let bump = |name: &str, by: i64| -> rusqlite::Result<()> {
            if by > 0 {
                self.tx.execute(
                    "INSERT INTO counters (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                    params![name, by],
                )?;
            }
            Ok(())
        };
        bump("accepted", self.accepted)
            .and_then(|()| bump("duplicate", self.duplicate))
            .and_then(|()| bump("rejected", self.rejected))
            .map_err(|e| sqlite(&path, e))?;
        self.tx.commit().map_err(|e| sqlite(&path, e))
    }
}
