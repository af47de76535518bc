//! `kandy-link status` and `kandy-link rooms`, in the JSON shapes of operations.md and
//! as text for a technician. Fields that need the portal are null until the link talks
//! to one.

use serde::Serialize;

use crate::config::Config;
use crate::event::Guest;
use crate::names;
use crate::store::{Counters, LinkRow, SyncRow};
use crate::sync::plan::{self, Status as FieldStatus};

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub state: &'static str,
    pub reason: Option<String>,
    pub dry_run: bool,
    pub daemon: DaemonStatus,
    pub cache: CacheStatus,
    pub events: Counters,
    pub rooms: RoomCounts,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    pub running: bool,
    pub pid: Option<i64>,
    pub heartbeat_age_secs: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CacheStatus {
    pub users: Option<u64>,
    pub age_secs: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RoomCounts {
    pub known: usize,
    pub occupied: usize,
    pub vacant: usize,
    pub pending: usize,
    pub deferred: Option<usize>,
    pub failed: Option<usize>,
    pub unresolved: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub room: String,
    pub kind: String,
    pub error: String,
}

/// One room as `rooms --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RoomView {
    pub room: String,
    pub mailbox: String,
    pub user_id: Option<String>,
    pub occupied: bool,
    pub guests: Vec<Guest>,
    pub wanted: Fields,
    pub confirmed: Fields,
    pub name_status: &'static str,
    pub permission_status: &'static str,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub candidates: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Fields {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub call_permission: Option<String>,
}

/// What `status` knows about the daemon: whether it holds the store's lock, and its row.
#[derive(Debug, Clone, Copy)]
pub struct Daemon {
    pub running: bool,
    pub pid: Option<i64>,
    pub heartbeat_at: Option<i64>,
}

/// Everything `status` reads, gathered by the caller.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub daemon: Daemon,
    pub link: Option<LinkRow>,
    /// Users in the cache and when it was read.
    pub cache: Option<(i64, i64)>,
    pub events: Counters,
    pub rooms: &'a [SyncRow],
    pub now: i64,
}

pub fn status(config: &Config, facts: &Facts<'_>) -> Status {
    let views: Vec<RoomView> = facts.rooms.iter().map(|r| room_view(config, r)).collect();
    let mut counts = RoomCounts {
        known: views.len(),
        ..RoomCounts::default()
    };
    let mut problems = Vec::new();
    let (mut deferred, mut failed, mut unresolved) = (0, 0, 0);
    for v in &views {
        if v.occupied {
            counts.occupied += 1;
        }
        let statuses = [v.permission_status, v.name_status];
        let has = |s: &str| statuses.contains(&s);
        if has("pending") {
            counts.pending += 1;
        }
        let kind = if has("unresolved") {
            unresolved += 1;
            "unresolved"
        } else if has("failed") {
            failed += 1;
            "failed"
        } else if has("deferred") {
            deferred += 1;
            "deferred"
        } else {
            continue;
        };
        let error = v
            .last_error
            .clone()
            .unwrap_or_else(|| format!("room {} is {kind}", v.room));
        problems.push(Problem {
            room: v.room.clone(),
            kind: kind.to_string(),
            error,
        });
    }
    counts.vacant = counts.known - counts.occupied;
    counts.deferred = Some(deferred);
    counts.failed = Some(failed);
    counts.unresolved = Some(unresolved);

    let d = facts.daemon;
    let (state, reason) = if !d.running {
        ("stopped", Some("the daemon is not running".to_string()))
    } else {
        match facts.link.as_ref().filter(|l| l.state != "ok") {
            Some(l) if l.state == "auth-failed" => ("auth-failed", l.reason.clone()),
            Some(l) => ("degraded", l.reason.clone()),
            None if !problems.is_empty() => ("degraded", Some(format!("{} rooms need attention", problems.len()))),
            None => ("ok", None),
        }
    };
    Status {
        state,
        reason,
        dry_run: config.kandy.dry_run,
        daemon: DaemonStatus {
            running: d.running,
            pid: if d.running { d.pid } else { None },
            heartbeat_age_secs: d.heartbeat_at.map(|t| (facts.now - t).max(0)),
        },
        cache: CacheStatus {
            users: facts.cache.map(|(n, _)| n.max(0) as u64),
            age_secs: facts.cache.map(|(_, at)| (facts.now - at).max(0)),
        },
        events: facts.events,
        rooms: counts,
        problems,
    }
}

pub fn room_view(config: &Config, row: &SyncRow) -> RoomView {
    let mailbox = config
        .rooms
        .mailboxes
        .get(&row.room)
        .cloned()
        .unwrap_or_else(|| row.room.clone());
    let shown = names::render(&config.names, &row.room, &mailbox, &row.state);
    let wanted_name = plan::name_value(&shown);
    let ignored = config.rooms.ignore.contains(&row.room);
    let status = |f: &plan::FieldSync, wanted: Option<&str>| {
        if ignored {
            FieldStatus::Ignored
        } else if row.user_id.is_none() && row.unresolved.is_some() {
            FieldStatus::Unresolved
        } else {
            f.status(wanted)
        }
        .as_str()
    };
    let confirmed_name = row.name.confirmed.as_deref().map(plan::split_name);
    let last_error = [&row.permission, &row.name]
        .iter()
        .find_map(|f| f.last_error.clone())
        .or_else(|| row.unresolved.clone().filter(|_| row.user_id.is_none()));
    RoomView {
        room: row.room.clone(),
        mailbox,
        user_id: row.user_id.clone(),
        occupied: row.state.occupied(),
        guests: row.state.guests.clone(),
        name_status: status(&row.name, Some(&wanted_name)),
        permission_status: status(&row.permission, row.state.permission.as_deref()),
        wanted: Fields {
            first_name: Some(shown.first),
            last_name: Some(shown.last),
            call_permission: row.state.permission.clone(),
        },
        confirmed: Fields {
            first_name: confirmed_name.map(|(f, _)| f.to_string()),
            last_name: confirmed_name.map(|(_, l)| l.to_string()),
            call_permission: row.permission.confirmed.clone(),
        },
        attempts: row.permission.attempts.max(row.name.attempts),
        last_error,
        candidates: row.candidates.clone(),
    }
}

/// The one-line status (also systemd's STATUS= later).
pub fn one_line(s: &Status) -> String {
    let daemon = match (s.daemon.running, s.daemon.pid) {
        (true, Some(pid)) => format!("daemon running (pid {pid})"),
        _ => "daemon not running".to_string(),
    };
    format!(
        "{}: {daemon}; events {} accepted, {} duplicate, {} rejected; rooms {} known, {} occupied, {} pending",
        s.state,
        s.events.accepted,
        s.events.duplicate,
        s.events.rejected,
        s.rooms.known,
        s.rooms.occupied,
        s.rooms.pending
    )
}

/// `rooms` as a table.
pub fn rooms_table(views: &[RoomView]) -> String {
    let mut out = format!(
        "{:<16} {:<16} {:<9} {:<32} {:<16} {}\n",
        "ROOM", "MAILBOX", "STATE", "NAME", "PERMISSION", "STATUS"
    );
    for v in views {
        let name = format!(
            "{} {}",
            v.wanted.first_name.as_deref().unwrap_or(""),
            v.wanted.last_name.as_deref().unwrap_or("")
        );
        out.push_str(&format!(
            "{:<16} {:<16} {:<9} {:<32} {:<16} name {}, permission {}\n",
            v.room,
            v.mailbox,
            if v.occupied { "occupied" } else { "vacant" },
            name.trim(),
            v.wanted.call_permission.as_deref().unwrap_or("(unchanged)"),
            v.name_status,
            v.permission_status
        ));
    }
    out
}
