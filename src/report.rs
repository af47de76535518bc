//! `kandy-link status` and `kandy-link rooms`, in the JSON shapes of operations.md and
//! as text for a technician. Fields that need the portal are null until the link talks
//! to one.

use serde::Serialize;

use crate::config::Config;
use crate::event::Guest;
use crate::names;
use crate::store::{Counters, RoomRow};

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

pub fn status(config: &Config, daemon: Daemon, events: Counters, rooms: &[RoomRow], now: i64) -> Status {
    let views: Vec<RoomView> = rooms.iter().map(|r| room_view(config, r)).collect();
    let occupied = views.iter().filter(|v| v.occupied).count();
    let pending = views
        .iter()
        .filter(|v| v.name_status == "pending" || v.permission_status == "pending")
        .count();
    let state = if daemon.running { "ok" } else { "stopped" };
    Status {
        state,
        reason: (!daemon.running).then(|| "the daemon is not running".to_string()),
        dry_run: config.kandy.dry_run,
        daemon: DaemonStatus {
            running: daemon.running,
            pid: if daemon.running { daemon.pid } else { None },
            heartbeat_age_secs: daemon.heartbeat_at.map(|t| (now - t).max(0)),
        },
        cache: CacheStatus::default(),
        events,
        rooms: RoomCounts {
            known: views.len(),
            occupied,
            vacant: views.len() - occupied,
            pending,
            ..RoomCounts::default()
        },
        problems: Vec::new(),
    }
}

pub fn room_view(config: &Config, row: &RoomRow) -> RoomView {
    let mailbox = config
        .rooms
        .mailboxes
        .get(&row.room)
        .cloned()
        .unwrap_or_else(|| row.room.clone());
    let shown = names::render(&config.names, &row.room, &mailbox, &row.state);
    let ignored = config.rooms.ignore.contains(&row.room);
    let status = |wanted: bool| match (ignored, wanted) {
        (true, _) => "ignored",
        (false, true) => "pending",
        (false, false) => "in-sync",
    };
    RoomView {
        room: row.room.clone(),
        mailbox,
        user_id: None,
        occupied: row.state.occupied(),
        guests: row.state.guests.clone(),
        name_status: status(true),
        permission_status: status(row.state.permission.is_some()),
        wanted: Fields {
            first_name: Some(shown.first),
            last_name: Some(shown.last),
            call_permission: row.state.permission.clone(),
        },
        confirmed: Fields::default(),
        attempts: 0,
        last_error: None,
        candidates: Vec::new(),
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
