//! The sync loop. It keeps every room's sync state in memory (bounded by the hotel's
//! rooms; the store stays the queue of events), learns of new events through an index on
//! the rooms' last event, sends one request per room at a time and at most
//! `kandy.max_in_flight` at once, and records outcomes in batches: requests are
//! idempotent, so an outcome lost in a crash only means one resend.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::link::Link;
use super::plan::{Field, FieldSync, Status, name_value, split_name};
use super::writer::Writer;
use crate::config::Config;
use crate::directory::{Directory, Resolution, User};
use crate::kandy::classify::Verdict;
use crate::kandy::{Client, Hooks, KandyError};
use crate::names;
use crate::store::{Store, StoreError, SyncRow, now};

/// How long outcomes may wait in memory before they are written.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Tells the loop to stop.
pub type Stop = watch::Receiver<bool>;

/// Brings a new, valid configuration.
pub type Reload = watch::Receiver<Arc<Config>>;

/// One room as the loop knows it.
#[derive(Debug, Default)]
pub(super) struct Entry {
    pub(super) row: SyncRow,
    /// When Kandy last answered 2xx for each field (Unix ms; 0: not in this run).
    pub(super) confirmed_at: [i64; 2],
    /// A drift repair was sent; a refresh that still reads another value means the portal
    /// alters what it is sent.
    pub(super) repaired: [bool; 2],
    not_before: [Option<Instant>; 2],
    /// The user that answered 404: the same one again after a refresh means failed.
    pub(super) stale_user: Option<String>,
    dry_sent: [Option<String>; 2],
}

impl Entry {
    pub(super) fn field(&self, f: Field) -> &FieldSync {
        match f {
            Field::Permission => &self.row.permission,
            Field::Name => &self.row.name,
        }
    }

    pub(super) fn field_mut(&mut self, f: Field) -> &mut FieldSync {
        match f {
            Field::Permission => &mut self.row.permission,
            Field::Name => &mut self.row.name,
        }
    }

    /// Fresh attempts for deferred fields (a new event, a refresh, `retry`).
    pub(super) fn undefer(&mut self) {
        for f in Field::ALL {
            let s = self.field_mut(f);
            s.deferred = false;
            s.attempts = 0;
        }
        self.not_before = [None, None];
    }
}

pub(super) fn ix(f: Field) -> usize {
    match f {
        Field::Permission => 0,
        Field::Name => 1,
    }
}

/// What Kandy should hold for a room: the permission and the name as one value.
pub(super) fn wanted(config: &Config, row: &SyncRow) -> [Option<String>; 2] {
    let mailbox = mailbox(config, &row.room);
    let shown = names::render(&config.names, &row.room, mailbox, &row.state);
    [row.state.permission.clone(), Some(name_value(&shown))]
}

pub(super) fn mailbox<'a>(config: &'a Config, room: &'a str) -> &'a str {
    config.rooms.mailboxes.get(room).map_or(room, String::as_str)
}

/// What a finished task reports.
#[derive(Debug)]
pub(super) enum Done {
    Update {
        room: String,
        field: Field,
        value: String,
        user: String,
        result: Result<Option<User>, KandyError>,
    },
    Probe(Result<(), KandyError>),
    Refresh {
        started_ms: i64,
        result: Result<Vec<User>, KandyError>,
    },
}

/// The sync loop and all it knows.
#[derive(Debug)]
pub struct Engine {
    pub(super) config: Arc<Config>,
    pub(super) client: Client,
    /// What every client gets: the token keeper, the packet log.
    hooks: Hooks,
    pub(super) store: Store,
    pub(super) directory: Option<Directory>,
    pub(super) rooms: HashMap<String, Entry>,
    ready: VecDeque<String>,
    queued: HashSet<String>,
    timers: BinaryHeap<Reverse<(Instant, String)>>,
    in_flight: HashSet<String>,
    pub(super) link: Link,
    last_seq: i64,
    pub(super) unsaved: HashSet<String>,
    last_flush: Instant,
    writer: Writer,
    pub(super) refreshing: bool,
    pub(super) next_refresh: Instant,
    probing: bool,
    /// Rooms whose user answered 404, waiting for the refresh that follows.
    pub(super) after_refresh: Vec<String>,
    pub(super) done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
}

impl Engine {
    /// Loads the rooms and the last good extension cache from `store`.
    /// `store` serves the loop's reads; `writer` records outcomes on a thread of its own.
    pub fn new(
        config: Arc<Config>,
        client: Client,
        hooks: Hooks,
        store: Store,
        writer: Store,
    ) -> Result<Engine, StoreError> {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (users, refreshed) = store.directory()?;
        let mut engine = Engine {
            config,
            client,
            hooks,
            directory: refreshed.map(|_| Directory::new(users)),
            store,
            rooms: HashMap::new(),
            ready: VecDeque::new(),
            queued: HashSet::new(),
            timers: BinaryHeap::new(),
            in_flight: HashSet::new(),
            link: Link::Up,
            last_seq: 0,
            unsaved: HashSet::new(),
            last_flush: Instant::now(),
            writer: Writer::start(writer),
            refreshing: false,
            next_refresh: Instant::now(),
            probing: false,
            after_refresh: Vec::new(),
            done_tx,
            done_rx,
        };
        engine.store.set_link(&engine.link.row(now()))?;
        let rows = engine.store.sync_rows(None)?;
        engine.take_rows(rows, false);
        Ok(engine)
    }

    /// Runs until `stop` changes. `wake` is notified when intake commits events; a new
    /// configuration on `reload` applies at once.
    pub async fn run(mut self, mut stop: Stop, wake: Arc<Notify>, mut reload: Reload) -> Result<(), StoreError> {
        tracing::info!(
            rooms = self.rooms.len(),
            cached_users = self.directory.as_ref().map_or(0, Directory::len),
            dry_run = self.config.kandy.dry_run,
            "Sync loop started"
        );
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Pinged from this loop, not from a timer of its own: a loop that is stuck stops
        // the pings and systemd restarts the service.
        let mut watchdog = crate::service::Watchdog::new();
        loop {
            crate::fault::stall("stall-sync-loop");
            watchdog.ping_if_due();
            self.fire_timers();
            self.dispatch();
            self.flush_if_due()?;
            let deadline = self.next_deadline();
            tokio::select! {
                Some(done) = self.done_rx.recv() => self.finish(done)?,
                _ = tick.tick() => self.ingest()?,
                () = wake.notified() => self.ingest()?,
                () = tokio::time::sleep_until(deadline) => {}
                Some(e) = self.writer.failed.recv() => return Err(e),
                () = watchdog.due() => {}
                Ok(()) = reload.changed() => {
                    let config = reload.borrow_and_update().clone();
                    self.reconfigure(config)?;
                }
                _ = stop.changed() => break,
            }
        }
        // In-flight requests may finish; what does not is sent again at the next start.
        let limit = Instant::now() + Duration::from_secs(self.config.kandy.timeout_secs.min(10));
        while !self.in_flight.is_empty() {
            tokio::select! {
                Some(done) = self.done_rx.recv() => self.finish(done)?,
                () = tokio::time::sleep_until(limit) => break,
            }
        }
        self.flush()?;
        self.writer.finish().await?;
        tracing::info!("Sync loop stopped");
        Ok(())
    }

    /// Applies a reloaded configuration: a new client (credentials, endpoints, debug), new
    /// names and permissions for every room; a link paused for its credentials tries again.
    fn reconfigure(&mut self, config: Arc<Config>) -> Result<(), StoreError> {
        match Client::from_config(&config, self.hooks.clone()) {
            Ok(client) => self.client = client,
            Err(e) => {
                tracing::error!("Reloaded settings not applied to the portal connection: {e}");
                return Ok(());
            }
        }
        self.config = config;
        tracing::info!("Settings reloaded");
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        for room in &rooms {
            self.resolve(room);
            if let Some(entry) = self.rooms.get_mut(room) {
                entry.dry_sent = [None, None];
            }
            self.make_ready(room);
        }
        if matches!(self.link, Link::AuthFailed { .. }) {
            self.set_link(Link::Up)?;
        }
        Ok(())
    }

    /// Takes rows from the store: new rooms, and rooms changed by new events.
    fn take_rows(&mut self, rows: Vec<SyncRow>, from_events: bool) {
        for row in rows {
            self.last_seq = self.last_seq.max(row.last_seq);
            let room = row.room.clone();
            match self.rooms.get_mut(&room) {
                Some(entry) => {
                    entry.row.state = row.state;
                    entry.row.last_seq = row.last_seq;
                    // A new event gives deferred fields fresh attempts.
                    entry.undefer();
                    entry.dry_sent = [None, None];
                }
                None => {
                    let mut entry = Entry {
                        row,
                        ..Entry::default()
                    };
                    if from_events {
                        entry.undefer();
                    }
                    self.rooms.insert(room.clone(), entry);
                }
            }
            self.resolve(&room);
            self.make_ready(&room);
        }
    }

    /// New events since the last look, and requests left by commands.
    fn ingest(&mut self) -> Result<(), StoreError> {
        let rows = self.store.sync_rows(Some(self.last_seq))?;
        if !rows.is_empty() {
            self.take_rows(rows, true);
        }
        for request in self.store.take_requests()? {
            let rooms: Vec<String> = if request.rooms.is_empty() {
                self.rooms.keys().cloned().collect()
            } else {
                request.rooms.clone()
            };
            match request.kind.as_str() {
                "refresh" => {
                    tracing::info!("Cache refresh asked for");
                    self.start_refresh();
                }
                kind => {
                    tracing::info!(kind, rooms = rooms.len(), "{kind} asked for");
                    for room in &rooms {
                        let Some(entry) = self.rooms.get_mut(room) else {
                            continue;
                        };
                        entry.undefer();
                        for f in Field::ALL {
                            let s = entry.field_mut(f);
                            s.failed = None;
                            if kind == "resync" {
                                s.force = true;
                            }
                        }
                        self.unsaved.insert(room.clone());
                        self.make_ready(room);
                    }
                }
            }
        }
        Ok(())
    }

    /// Resolves a room's Kandy user from the cache; logs a change.
    pub(super) fn resolve(&mut self, room: &str) {
        let Some(directory) = &self.directory else { return };
        let mailbox = mailbox(&self.config, room).to_string();
        let Some(entry) = self.rooms.get_mut(room) else { return };
        let row = &mut entry.row;
        let before = (row.user_id.clone(), row.unresolved.clone());
        match directory.resolve(&mailbox) {
            Resolution::Found(user) => {
                row.user_id = Some(user);
                row.unresolved = None;
                row.candidates.clear();
            }
            Resolution::Unresolved { reason, candidates } => {
                row.user_id = None;
                row.unresolved = Some(reason);
                row.candidates = candidates;
            }
        }
        if row.user_id != before.0
            && let Some(user) = row.user_id.as_deref().and_then(|u| directory.get(u))
        {
            // A new user for the room: what the cache read of it is what Kandy holds.
            row.permission.confirmed = user.call_permission.clone();
            row.name.confirmed = Some(name_value(&names::ShownName {
                first: user.first_name.clone().unwrap_or_default(),
                last: user.last_name.clone().unwrap_or_default(),
            }));
            entry.confirmed_at = [0, 0];
            entry.repaired = [false, false];
            entry.stale_user = None;
            // What failed for the old user says nothing of the new one.
            entry.undefer();
            for f in Field::ALL {
                let s = entry.field_mut(f);
                s.failed = None;
                s.last_error = None;
            }
        }
        let row = &entry.row;
        if (row.user_id.clone(), row.unresolved.clone()) != before {
            match (&row.user_id, &row.unresolved) {
                (Some(user), _) => {
                    tracing::info!(room, mailbox = %mailbox, user = %user, "Room resolved to its Kandy user")
                }
                (None, Some(reason)) => {
                    tracing::warn!(room, mailbox = %mailbox, candidates = ?row.candidates, "Room unresolved: {reason}")
                }
                (None, None) => {}
            }
            self.unsaved.insert(room.to_string());
        }
    }

    pub(super) fn make_ready(&mut self, room: &str) {
        if self.queued.insert(room.to_string()) {
            self.ready.push_back(room.to_string());
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, room))) = self.timers.pop() {
                self.make_ready(&room);
            }
        }
        if let Link::Unavailable { probe_at, .. } = &self.link
            && *probe_at <= now
            && !self.probing
        {
            self.probe();
        }
        if now >= self.next_refresh {
            self.start_refresh();
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut at = self.next_refresh.min(self.last_flush + FLUSH_EVERY);
        if let Some(Reverse((t, _))) = self.timers.peek() {
            at = at.min(*t);
        }
        if let Link::Unavailable { probe_at, .. } = &self.link {
            at = at.min(*probe_at);
        }
        at.max(Instant::now() + Duration::from_millis(1))
    }

    /// Starts requests while the link sends and slots are free.
    fn dispatch(&mut self) {
        let max = usize::try_from(self.config.kandy.max_in_flight).unwrap_or(1);
        while self.link.sending() && self.in_flight.len() < max {
            let Some(room) = self.ready.pop_front() else { break };
            self.queued.remove(&room);
            if !self.in_flight.contains(&room) {
                self.start(&room);
            }
        }
    }

    /// Sends the room's next pending field, permission first, or sets a timer for it.
    fn start(&mut self, room: &str) {
        if self.config.rooms.ignore.iter().any(|r| r == room) {
            return;
        }
        let Some(entry) = self.rooms.get(room) else { return };
        let Some(user) = entry.row.user_id.clone() else { return };
        let wanted = wanted(&self.config, &entry.row);
        let now = Instant::now();
        let mut wait: Option<Instant> = None;
        let mut dry = Vec::new();
        let mut next = None;
        for field in Field::ALL {
            let value = &wanted[ix(field)];
            if entry.field(field).status(value.as_deref()) != Status::Pending {
                continue;
            }
            let Some(value) = value.clone() else { continue };
            if let Some(t) = entry.not_before[ix(field)]
                && t > now
            {
                wait = Some(wait.map_or(t, |w| w.min(t)));
                continue;
            }
            if self.config.kandy.dry_run {
                dry.push((field, value));
                continue;
            }
            next = Some((field, value));
            break;
        }
        for (field, value) in dry {
            self.dry_run(room, field, &user, value);
        }
        if let Some((field, value)) = next {
            self.send(room.to_string(), field, user, value);
        } else if let Some(t) = wait {
            self.timers.push(Reverse((t, room.to_string())));
        }
    }

    fn dry_run(&mut self, room: &str, field: Field, user: &str, value: String) {
        let Some(entry) = self.rooms.get_mut(room) else { return };
        if entry.dry_sent[ix(field)].as_ref() == Some(&value) {
            return;
        }
        tracing::info!(room, user, field = field.as_str(), value = %shown(field, &value), "Dry run: would send this update");
        entry.dry_sent[ix(field)] = Some(value);
    }

    fn send(&mut self, room: String, field: Field, user: String, value: String) {
        self.in_flight.insert(room.clone());
        let client = self.client.clone();
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let result = match field {
                Field::Permission => client.set_call_permission(&user, &value).await,
                Field::Name => {
                    let (first, last) = split_name(&value);
                    client.set_name(&user, first, last).await
                }
            };
            let _ = tx.send(Done::Update {
                room,
                field,
                value,
                user,
                result,
            });
        });
    }

    fn probe(&mut self) {
        self.probing = true;
        let client = self.client.clone();
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let result = client.list_users_page(1, 1).await.map(|_| ());
            let _ = tx.send(Done::Probe(result));
        });
    }

    fn finish(&mut self, done: Done) -> Result<(), StoreError> {
        match done {
            Done::Update {
                room,
                field,
                value,
                user,
                result,
            } => self.finish_update(room, field, value, user, result)?,
            Done::Probe(result) => {
                self.probing = false;
                match result {
                    Ok(()) => {
                        tracing::info!("The Kandy portal answers again; sending resumes");
                        self.set_link(Link::Up)?;
                    }
                    Err(e) => match e.verdict() {
                        Verdict::Unavailable { .. } | Verdict::AuthFailed | Verdict::ClockSkew => self.pause(&e)?,
                        // Any other answer (a 500, say) is the portal answering: resume,
                        // and let each room's request meet its own verdict.
                        _ => {
                            tracing::info!("The Kandy portal answers again ({e}); sending resumes");
                            self.set_link(Link::Up)?;
                        }
                    },
                }
            }
            Done::Refresh { started_ms, result } => self.refreshed(started_ms, result)?,
        }
        Ok(())
    }

    fn finish_update(
        &mut self,
        room: String,
        field: Field,
        value: String,
        user: String,
        result: Result<Option<User>, KandyError>,
    ) -> Result<(), StoreError> {
        self.in_flight.remove(&room);
        self.unsaved.insert(room.clone());
        let retries = self.config.scheduling.retries;
        let interval = Duration::from_secs(self.config.scheduling.interval_secs);
        let Some(entry) = self.rooms.get_mut(&room) else {
            return Ok(());
        };
        let error = match result {
            Ok(_) => {
                let s = entry.field_mut(field);
                s.confirmed = Some(value.clone());
                s.attempts = 0;
                s.deferred = false;
                s.force = false;
                s.last_error = None;
                entry.confirmed_at[ix(field)] = now_ms();
                entry.stale_user = None;
                tracing::info!(room, user, field = field.as_str(), value = %shown(field, &value), "Kandy confirmed the update");
                self.make_ready(&room);
                return Ok(());
            }
            Err(e) => e,
        };
        match error.verdict() {
            Verdict::Unavailable { .. } | Verdict::AuthFailed | Verdict::ClockSkew => {
                // The portal as a whole: no attempt is spent, the room waits for the link.
                self.make_ready(&room);
                self.pause(&error)?;
            }
            Verdict::Stale => {
                if entry.stale_user.as_deref() == Some(user.as_str()) {
                    let s = entry.field_mut(field);
                    s.failed = Some(value);
                    s.last_error = Some(format!("Kandy user {user} answered 404 again after a cache refresh"));
                    tracing::warn!(
                        room,
                        user,
                        field = field.as_str(),
                        "Update failed: the user answers 404 even after a cache refresh"
                    );
                    self.make_ready(&room);
                } else {
                    tracing::info!(room, user, "Kandy user not found (404); refreshing the extension cache");
                    entry.stale_user = Some(user);
                    self.after_refresh.push(room);
                    self.start_refresh();
                }
            }
            Verdict::Permanent => {
                let s = entry.field_mut(field);
                s.failed = Some(value);
                s.last_error = Some(error.to_string());
                tracing::warn!(
                    room,
                    user,
                    field = field.as_str(),
                    "Update refused; not sent again until the room changes: {error}"
                );
                self.make_ready(&room);
            }
            Verdict::Failed | Verdict::RenewToken | Verdict::Done => {
                let s = entry.field_mut(field);
                s.attempts += 1;
                s.last_error = Some(error.to_string());
                let attempts = s.attempts;
                if u64::from(attempts) > retries {
                    s.deferred = true;
                    tracing::warn!(
                        room,
                        user,
                        field = field.as_str(),
                        attempts,
                        "Update deferred after its last attempt: {error}"
                    );
                } else {
                    tracing::info!(
                        room,
                        user,
                        field = field.as_str(),
                        attempt = attempts,
                        "Update failed; sending again in {}s: {error}",
                        interval.as_secs()
                    );
                    entry.not_before[ix(field)] = Some(Instant::now() + interval);
                }
                self.make_ready(&room);
            }
        }
        Ok(())
    }

    /// Pauses all sending for a failure of the portal as a whole.
    pub(super) fn pause(&mut self, error: &KandyError) -> Result<(), StoreError> {
        let link = match error.verdict() {
            Verdict::Unavailable { wait } => {
                let mut probe_at = Instant::now() + wait;
                // More requests failing in the same outage must not keep pushing a
                // planned probe back; only a longer Retry-After moves it. A failed probe
                // (its time has passed) plans the next one.
                if let Link::Unavailable { probe_at: planned, .. } = &self.link
                    && *planned > Instant::now()
                    && wait <= Duration::from_secs(self.config.scheduling.interval_secs)
                {
                    probe_at = *planned;
                }
                Link::Unavailable {
                    reason: error.to_string(),
                    probe_at,
                }
            }
            Verdict::AuthFailed | Verdict::ClockSkew => Link::AuthFailed {
                reason: error.to_string(),
            },
            _ => return Ok(()),
        };
        self.set_link(link)
    }

    pub(super) fn set_link(&mut self, link: Link) -> Result<(), StoreError> {
        let changed = !self.link.same_kind(&link) || self.link.row(0) != link.row(0);
        if changed {
            match &link {
                Link::Up => {
                    // Everything that waited for the link goes again.
                    let rooms: Vec<String> = self.rooms.keys().cloned().collect();
                    for room in rooms {
                        self.make_ready(&room);
                    }
                }
                Link::Unavailable { reason, .. } => tracing::warn!("Sending paused: {reason}"),
                Link::AuthFailed { reason } => {
                    tracing::error!("Sending paused until the credentials are fixed: {reason}")
                }
            }
            let row = link.row(now());
            self.link = link;
            // The requests leave before the status row's durable write: on a busy disk an
            // fsync can take seconds, and sending resumes within one interval.
            self.dispatch();
            return self.store.set_link(&row);
        }
        self.link = link;
        Ok(())
    }

    fn flush_if_due(&mut self) -> Result<(), StoreError> {
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the sync state of the rooms that changed to the writer.
    pub(super) fn flush(&mut self) -> Result<(), StoreError> {
        self.last_flush = Instant::now();
        if self.unsaved.is_empty() {
            return Ok(());
        }
        let rows: Vec<SyncRow> = self
            .unsaved
            .drain()
            .filter_map(|room| self.rooms.get(&room).map(|e| e.row.clone()))
            .collect();
        self.writer.send(rows);
        Ok(())
    }
}

/// Unix time in milliseconds.
pub(super) fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc()
        .unix_timestamp_nanos()
        .div_euclid(1_000_000) as i64
}

/// A value as a technician reads it in the log.
pub(super) fn shown(field: Field, value: &str) -> String {
    match field {
        Field::Permission => value.to_string(),
        Field::Name => {
            let (first, last) = split_name(value);
            format!("{first} {last}").trim().to_string()
        }
    }
}
