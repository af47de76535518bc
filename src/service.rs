//! Living under systemd (operations.md, "Service"): the sd_notify messages (READY=1,
//! STATUS=, WATCHDOG=1, RELOADING=1 with MONOTONIC_USEC, STOPPING=1), the watch on the
//! configuration file's folder, and the reload they and SIGHUP lead to.
//!
//! Notifications go out only once `enable` is called (by `kandy-link run`), so the demo,
//! which runs the daemon inside another command, never speaks for a service it is not.
//! Without `$NOTIFY_SOCKET` every notification costs nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify::{EventKind, Watcher};
use sd_notify::NotifyState;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::Config;
use crate::logging::LogControl;

/// Set by `enable`: the watchdog's ping interval (half of `WatchdogSec=`), if any.
static ENABLED: OnceLock<Option<Duration>> = OnceLock::new();
/// READY=1 was sent: status lines may follow.
static READY: AtomicBool = AtomicBool::new(false);

/// How long the configuration file must stay quiet before it is read: an editor's save
/// is several events (a temporary file, a rename, a chmod).
pub const SETTLE: Duration = Duration::from_millis(500);

/// Makes this process the service: notifications go to `$NOTIFY_SOCKET` from now on,
/// and the sync loop pings the watchdog when `$WATCHDOG_USEC` asks for one.
pub fn enable() {
    ENABLED.get_or_init(|| sd_notify::watchdog_enabled().map(|d| d / 2));
}

fn send(states: &[NotifyState<'_>]) {
    if ENABLED.get().is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("Cannot notify systemd: {e}");
    }
}

/// READY=1: the store is open and intake runs.
pub fn ready() {
    send(&[NotifyState::Ready]);
    READY.store(true, Ordering::Relaxed);
}

/// Whether READY=1 was sent, so that a status line describes a running daemon.
pub fn is_ready() -> bool {
    READY.load(Ordering::Relaxed) && ENABLED.get().is_some()
}

/// STATUS=: the one-line status that `systemctl status` shows.
pub fn status(line: &str) {
    // A line break would end the message's field early.
    let line = line.replace('\n', " ");
    send(&[NotifyState::Status(&line)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// The watchdog, pinged by the sync loop itself: a loop that is stuck stops the pings,
/// and systemd restarts the service.
#[derive(Debug)]
pub struct Watchdog {
    every: Option<Duration>,
    next: Instant,
}

impl Watchdog {
    /// Off unless `enable` found `$WATCHDOG_USEC`.
    pub fn new() -> Watchdog {
        Watchdog {
            every: ENABLED.get().copied().flatten(),
            next: Instant::now(),
        }
    }

    /// Sends WATCHDOG=1 when its time has come.
    pub fn ping_if_due(&mut self) {
        let Some(every) = self.every else { return };
        let now = Instant::now();
        if now >= self.next {
            send(&[NotifyState::Watchdog]);
            self.next = now + every;
        }
    }

    /// Resolves when the next ping is due; never when the watchdog is off.
    pub async fn due(&self) {
        match self.every {
            Some(_) => tokio::time::sleep_until(self.next).await,
            None => std::future::pending().await,
        }
    }
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog::new()
    }
}

/// Watches the folder of the configuration file, not the file: editors save by writing a
/// new file and renaming it over the old one, which a watch on the file would lose.
/// Every event that touches the file's name sends `()` on `changed`, and so does one on
/// `..data`: a Kubernetes ConfigMap or Secret volume changes every file at once by
/// swapping that symbolic link. Other files in the folder (another instance's) are not
/// this daemon's business.
pub fn watch_config(path: &Path, changed: mpsc::UnboundedSender<()>) -> notify::Result<notify::RecommendedWatcher> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path.file_name().map(ToOwned::to_owned);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        // Reading the file (ours included) is no change.
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        let ours = |p: &PathBuf| p.file_name() == name.as_deref() || p.file_name() == Some("..data".as_ref());
        if event.paths.iter().any(ours) {
            let _ = changed.send(());
        }
    })?;
    watcher.watch(&folder, notify::RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Reads the configuration file again and hands a valid one to the daemon.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    tx: watch::Sender<Arc<Config>>,
    logs: Option<LogControl>,
    /// The file's bytes at the last reading: a change event that leaves them as they
    /// were (a `touch`, an editor's backup) reloads nothing.
    seen: Option<Vec<u8>>,
}

impl Reloader {
    pub fn new(path: &Path, tx: watch::Sender<Arc<Config>>, logs: Option<LogControl>) -> Reloader {
        Reloader {
            path: path.to_path_buf(),
            tx,
            logs,
            seen: std::fs::read(path).ok(),
        }
    }

    /// The settings in force.
    pub fn current(&self) -> Arc<Config> {
        self.tx.borrow().clone()
    }

    /// The file changed on disk: reload if its content did.
    pub fn file_changed(&mut self) {
        let now = std::fs::read(&self.path).ok();
        if now.is_some() && now == self.seen {
            return;
        }
        self.reload("The configuration file changed");
    }

    /// Reads the file again: a valid one applies at once (all but `queue.*` and
    /// `logging.dir`, which need a restart); an invalid one is logged with its line and
    /// key and the old settings stay. systemd hears RELOADING=1 before and READY=1 after.
    pub fn reload(&mut self, why: &str) {
        match NotifyState::monotonic_usec_now() {
            Ok(usec) => send(&[NotifyState::Reloading, usec]),
            Err(_) => send(&[NotifyState::Reloading]),
        }
        tracing::info!(file = %self.path.display(), "{why}; reading the configuration again");
        self.seen = std::fs::read(&self.path).ok();
        match Config::load(&self.path) {
            Ok(new) => {
                let old = self.current();
                if new.queue.state_dir != old.queue.state_dir
                    || new.queue.spool_dir != old.queue.spool_dir
                    || new.queue.max_file_bytes != old.queue.max_file_bytes
                    || new.queue.keep_days != old.queue.keep_days
                    || new.logging.dir != old.logging.dir
                {
                    tracing::warn!("queue.* and logging.dir changed: they take effect at the next restart");
                }
                if let Some(logs) = &self.logs {
                    logs.apply(&new.logging);
                }
                self.tx.send_replace(Arc::new(new));
            }
            Err(e) => tracing::error!("The configuration was not reloaded; the old settings stay: {e}"),
        }
        send(&[NotifyState::Ready]);
    }
}
