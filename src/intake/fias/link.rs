//! The FIAS TCP session (fias.md, "Link start"): the LS/LD/LR/LA handshake in either
//! direction, link alives, the resync request, and records committed as they come.
//!
//! FIAS acknowledges no single record, so the session commits the events of everything
//! one read brought before it reads again: a record that arrived and was parsed is never
//! lost, and the resync asked for at every link start covers whatever was in flight when
//! a connection dropped. In client mode a dropped connection is made again with back-off
//! (1 s doubling to 60 s); in server mode a new connection from the PMS replaces the old.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use encoding_rs::Encoding;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::frame::{self, Deframer, Piece};
use super::records::{Link, Meaning, Translator};
use crate::config::FiasMode;
use crate::event::Rejection;
use crate::intake::{self, Line};
use crate::store::{Rules, Store};
use crate::sync::Reload;

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The records and fields this link asks the PMS for (fias.md, step 2).
const LINK_RECORDS: &[&str] = &[
    "LR|RIGI|FLRNG#GSGNGFGTGLGVCSDATI|",
    "LR|RIGO|FLRNG#GSDATI|",
    "LR|RIGC|FLRNG#GSGNGFGTGLGVCSRODATI|",
    "LR|RIRE|FLRNCSDATI|",
    "LR|RIDS|FLDATI|",
    "LR|RIDE|FLDATI|",
];

/// What the FIAS task needs from the daemon.
#[derive(Debug)]
pub struct Fias {
    reload: Reload,
    store: Arc<Mutex<Store>>,
    committed: Arc<Notify>,
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    Stopped,
    Closed(String),
    Replaced(TcpStream, SocketAddr),
}

/// Runs the link of `[fias]` until `stop` changes (or its sender goes). `mode` and
/// `address` are read once; the other settings at every connection.
pub async fn run(reload: Reload, store: Store, committed: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let settings = reload.borrow().fias.clone();
    let fias = Fias {
        reload,
        store: Arc::new(Mutex::new(store)),
        committed,
    };
    match settings.mode {
        FiasMode::Off => {}
        FiasMode::Client => fias.client(settings.address, &mut stop).await,
        FiasMode::Server => fias.server(settings.address, &mut stop).await,
    }
}

/// Sleeps for `delay`; false when told to stop meanwhile.
async fn pause(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = stop.changed() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

impl Fias {
    async fn client(&self, address: SocketAddr, stop: &mut watch::Receiver<bool>) {
        let mut delay = BACKOFF_START;
        loop {
            let attempt = tokio::select! {
                _ = stop.changed() => return,
                r = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)) => r,
            };
            match attempt {
                Ok(Ok(stream)) => {
                    tracing::info!(pms = %address, "Connected to the PMS's FIAS interface");
                    let (end, was_up) = self.session(stream, address, FiasMode::Client, None, stop).await;
                    let why = match end {
                        End::Stopped => return,
                        End::Closed(why) => why,
                        End::Replaced(..) => "replaced".into(),
                    };
                    if was_up {
                        // A link that was up starts again at the shortest delay.
                        delay = BACKOFF_START;
                        tracing::warn!(pms = %address, "FIAS link down: {why}; connecting again in {}s", delay.as_secs());
                    } else {
                        tracing::warn!(pms = %address, "FIAS link not started: {why}; connecting again in {}s", delay.as_secs());
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(pms = %address, "Cannot connect to the PMS's FIAS interface: {e}; trying again in {}s", delay.as_secs());
                }
                Err(_) => tracing::warn!(
                    pms = %address,
                    "Connecting to the PMS's FIAS interface took over {}s; trying again in {}s",
                    CONNECT_TIMEOUT.as_secs(),
                    delay.as_secs()
                ),
            }
            if !pause(delay, stop).await {
                return;
            }
            delay = (delay * 2).min(BACKOFF_MAX);
        }
    }

    async fn server(&self, address: SocketAddr, stop: &mut watch::Receiver<bool>) {
        let mut delay = BACKOFF_START;
        let listener = loop {
            match TcpListener::bind(address).await {
                Ok(l) => break l,
                Err(e) => {
                    tracing::error!(address = %address, "Cannot listen for the PMS's FIAS connection: {e}; trying again in {}s", delay.as_secs());
                    if !pause(delay, stop).await {
                        return;
                    }
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        };
        let local = listener
            .local_addr()
            .map_or_else(|_| address.to_string(), |a| a.to_string());
        tracing::info!(address = %local, "Waiting for the PMS to connect (FIAS)");
        let mut next = None;
        loop {
            let (stream, peer) = match next.take() {
                Some(c) => c,
                None => tokio::select! {
                    _ = stop.changed() => return,
                    r = listener.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!("Accepting the PMS's FIAS connection failed: {e}");
                            if !pause(Duration::from_millis(200), stop).await {
                                return;
                            }
                            continue;
                        }
                    },
                },
            };
            tracing::info!(pms = %peer, "The PMS connected (FIAS)");
            match self
                .session(stream, peer, FiasMode::Server, Some(&listener), stop)
                .await
                .0
            {
                End::Stopped => return,
                End::Replaced(stream, peer) => {
                    tracing::warn!(pms = %peer, "A new FIAS connection from the PMS replaces the current one");
                    next = Some((stream, peer));
                }
                End::Closed(why) => tracing::warn!("FIAS link down: {why}; waiting for the PMS to connect again"),
            }
        }
    }

    /// One connection, from its first byte to its end; also says whether the link came up.
    async fn session(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        mode: FiasMode,
        listener: Option<&TcpListener>,
        stop: &mut watch::Receiver<bool>,
    ) -> (End, bool) {
        let _ = stream.set_nodelay(true);
        let config = self.reload.borrow().fias.clone();
        let alive = Duration::from_secs(config.link_alive_secs);
        let (mut reader, writer) = stream.into_split();
        let mut s = Session {
            peer,
            encoding: config.encoding(),
            resync_on_connect: config.resync_on_connect,
            state: State::Connected,
            sent_ls: false,
            deframer: Deframer::default(),
            translator: Translator::default(),
            resync_raw: Vec::new(),
            number: 0,
            writer,
            write_limit: alive * 2,
        };
        let mut was_up = false;
        let end = 'session: {
            if mode == FiasMode::Client
                && let Err(e) = s.send(&[format!("LS|{}", stamp())]).await
            {
                break 'session End::Closed(e);
            }
            s.sent_ls = mode == FiasMode::Client;
            let mut ticker = tokio::time::interval_at(Instant::now() + alive, alive);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut heard = Instant::now();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let accept = async {
                    match listener {
                        Some(l) => l.accept().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = stop.changed() => {
                        let _ = s.send(&[format!("LE|{}", stamp())]).await;
                        break 'session End::Stopped;
                    }
                    r = reader.read(&mut buf) => match r {
                        Ok(0) => break 'session End::Closed("the PMS closed the connection".into()),
                        Err(e) => break 'session End::Closed(format!("reading from the PMS failed: {e}")),
                        Ok(n) => {
                            heard = Instant::now();
                            let step = s.take(&buf[..n], self).await;
                            was_up |= s.state == State::Up;
                            if let Some(why) = step {
                                break 'session End::Closed(why);
                            }
                        }
                    },
                    _ = ticker.tick() => {
                        if s.state == State::Up
                            && let Err(e) = s.send(&[format!("LA|{}", stamp())]).await
                        {
                            break 'session End::Closed(e);
                        }
                    }
                    () = tokio::time::sleep_until(heard + alive * 2) => {
                        break 'session End::Closed(format!("nothing from the PMS for {}s", (alive * 2).as_secs()));
                    }
                    r = accept => if let Ok((stream, peer)) = r {
                        break 'session End::Replaced(stream, peer);
                    },
                }
            }
        };
        if s.translator.link_lost() {
            tracing::warn!(pms = %peer, "The FIAS link was lost during a database resync; the partial resync is discarded");
        }
        (end, was_up)
    }

    /// Commits `lines` in one transaction and wakes the sync loop when any was accepted.
    async fn commit(&self, lines: Vec<Line>) -> Result<(), String> {
        let store = self.store.clone();
        let reload = self.reload.clone();
        let taken = tokio::task::spawn_blocking(move || {
            // The settings of the moment: a reload changes permissions and rooms.
            let config = reload.borrow().clone();
            let configured: Vec<String> = config.rooms.mailboxes.keys().cloned().collect();
            let rules = Rules {
                permissions: &config.call_permissions,
                configured_rooms: &configured,
            };
            let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
            intake::enqueue(&mut store, lines, "fias", rules)
        })
        .await
        .map_err(|e| format!("taking records in failed: {e}"))?
        .map_err(|e| {
            format!("the records could not be stored ({e}); the resync at the next link start will cover them")
        })?;
        if taken.accepted() > 0 {
            self.committed.notify_one();
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the PMS's LS.
    Connected,
    /// LD, LR and LA sent; waiting for the PMS's LA.
    Described,
    Up,
}

#[derive(Debug)]
struct Session {
    peer: SocketAddr,
    encoding: &'static Encoding,
    resync_on_connect: bool,
    state: State,
    sent_ls: bool,
    deframer: Deframer,
    translator: Translator,
    /// The raw records of the resync in progress, stored with its `sync` event.
    resync_raw: Vec<String>,
    /// Records received on this connection, for the source of their events.
    number: usize,
    writer: OwnedWriteHalf,
    write_limit: Duration,
}

/// `DA...|TI...|` for now, in UTC: a multi-threaded process cannot learn its local
/// offset soundly, and the PMS only logs these.
fn stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    frame::stamp(time::PrimitiveDateTime::new(now.date(), now.time()))
}

impl Session {
    async fn send(&mut self, records: &[String]) -> Result<(), String> {
        let mut bytes = Vec::new();
        for r in records {
            tracing::debug!(pms = %self.peer, record = %r, "FIAS record sent");
            bytes.extend(frame::frame(r, self.encoding));
        }
        match tokio::time::timeout(self.write_limit, self.writer.write_all(&bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("writing to the PMS failed: {e}")),
            Err(_) => Err("the PMS has not read what the link sent".into()),
        }
    }

    /// Takes the bytes of one read: commits their events, then answers. Returns why the
    /// link is to end, if it is.
    async fn take(&mut self, bytes: &[u8], fias: &Fias) -> Option<String> {
        let mut lines = Vec::new();
        let mut replies = Vec::new();
        let mut end = None;
        for piece in self.deframer.push(bytes) {
            let record = match piece {
                Piece::Record(r) => r,
                Piece::Stray(b, why) => {
                    tracing::warn!(pms = %self.peer, raw = %frame::escape(&b, self.encoding), "Ignored {why}");
                    continue;
                }
            };
            self.number += 1;
            let raw = frame::escape(&record, self.encoding);
            let parsed = match frame::parse(&record, self.encoding) {
                Ok(p) => p,
                Err(why) => {
                    tracing::warn!(pms = %self.peer, raw = %raw, "Malformed FIAS record skipped: {why}");
                    lines.push(self.line(
                        raw,
                        Err(Rejection::new("(record)", format!("malformed FIAS record: {why}"))),
                    ));
                    continue;
                }
            };
            tracing::debug!(pms = %self.peer, raw = %raw, "FIAS record received");
            match self.translator.take(&parsed) {
                Meaning::Link(Link::Start) => {
                    self.translator.link_lost();
                    self.start(&mut replies);
                }
                Meaning::Link(Link::Alive) => {
                    if self.state == State::Described {
                        self.state = State::Up;
                        tracing::info!(pms = %self.peer, "FIAS link up");
                        if self.resync_on_connect {
                            replies.push(format!("DR|{}", stamp()));
                        }
                    }
                }
                Meaning::Link(Link::End) => {
                    end = Some("the PMS ended the link (LE)".to_string());
                }
                Meaning::Link(Link::Description) => {}
                Meaning::Held => {
                    if parsed.kind == "DS" {
                        self.resync_raw.clear();
                        tracing::info!(pms = %self.peer, "FIAS database resync started");
                    }
                    self.resync_raw.push(raw);
                }
                Meaning::Events(events) => {
                    let raw = if parsed.kind == "DE" {
                        self.resync_raw.push(raw);
                        tracing::info!(pms = %self.peer, records = self.resync_raw.len(), "FIAS database resync received");
                        std::mem::take(&mut self.resync_raw).join("\n")
                    } else {
                        raw
                    };
                    for e in events {
                        if let Err(r) = &e {
                            tracing::warn!(pms = %self.peer, raw = %raw, "FIAS record skipped: {r}");
                        }
                        lines.push(self.line(raw.clone(), e));
                    }
                }
                Meaning::Ignored(why) => {
                    tracing::debug!(pms = %self.peer, raw = %raw, "FIAS record ignored: {why}");
                }
            }
        }
        if !lines.is_empty()
            && let Err(e) = fias.commit(lines).await
        {
            return Some(e);
        }
        if !replies.is_empty()
            && let Err(e) = self.send(&replies).await
        {
            return Some(e);
        }
        end
    }

    /// The PMS's LS: answer it (unless it answers ours), describe this interface, and
    /// send the LA that the PMS's LA completes.
    fn start(&mut self, replies: &mut Vec<String>) {
        if !self.sent_ls || self.state != State::Connected {
            replies.push(format!("LS|{}", stamp()));
        }
        replies.push(format!("LD|{}V#{}|IFPB|", stamp(), env!("CARGO_PKG_VERSION")));
        replies.extend(LINK_RECORDS.iter().map(|r| r.to_string()));
        replies.push(format!("LA|{}", stamp()));
        if self.state == State::Up {
            tracing::info!(pms = %self.peer, "The PMS started the FIAS link again");
        }
        self.state = State::Described;
    }

    fn line(&self, raw: String, parsed: Result<crate::event::Event, Rejection>) -> Line {
        Line {
            number: self.number,
            raw,
            parsed,
        }
    }
}
