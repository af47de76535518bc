//! `kandy-link run`: one daemon per store (a lock file beside it), the intake task, and
//! a clean stop on SIGTERM or SIGINT.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::Watcher;

use crate::config::Config;
use crate::intake::spool::Spool;
use crate::store::{Rules, Store, StoreError, create_private_dir};

/// How often the spool is looked at even without a notification (shares where inotify is
/// blind), and how often the heartbeat is written.
const POLL: Duration = Duration::from_secs(1);
const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("another kandy-link run (pid {pid}) is using the store in {dir}; stop it first")]
    AlreadyRunning { pid: String, dir: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(String),
}

/// The lock that makes a daemon the only one on its store. Held while the value lives.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

fn lock_path(state_dir: &Path) -> PathBuf {
    state_dir.join("kandy-link.lock")
}

impl Lock {
    pub fn take(state_dir: &Path) -> Result<Lock, DaemonError> {
        create_private_dir(state_dir)
            .map_err(|e| DaemonError::Io(format!("cannot create {}: {e}", state_dir.display())))?;
        let path = lock_path(state_dir);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| DaemonError::Io(format!("cannot open {}: {e}", path.display())))?;
        if file.try_lock().is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(DaemonError::AlreadyRunning {
                pid: pid.trim().to_string(),
                dir: state_dir.to_path_buf(),
            });
        }
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(Lock { _file: file })
    }
}

/// The pid of the daemon holding the store's lock, if one does.
pub fn running(state_dir: &Path) -> Option<i64> {
    let mut file = File::open(lock_path(state_dir)).ok()?;
    if file.try_lock_shared().is_ok() {
        return None;
    }
    let mut pid = String::new();
    file.read_to_string(&mut pid).ok()?;
    pid.trim().parse().ok()
}

/// What the intake task is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Files,
    Stop,
}

/// Runs the daemon until `stop` (a receiver of `Wake::Stop`) says so.
pub fn run(config: &Config, wake_tx: mpsc::Sender<Wake>, wake: mpsc::Receiver<Wake>) -> Result<(), DaemonError> {
    let _lock = Lock::take(&config.queue.state_dir)?;
    let mut store = Store::open(&config.store_path())?;
    let mut spool = Spool::open(&config.queue.spool_dir, config.queue.max_file_bytes)?;
    spool.recover(&mut store)?;
    let pid = std::process::id();
    store.heartbeat(pid, true)?;

    let watch_tx = wake_tx.clone();
    let mut watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        let _ = watch_tx.send(Wake::Files);
    })
    .map_err(|e| DaemonError::Io(format!("cannot watch {}: {e}", spool.incoming.display())))?;
    watcher
        .watch(&spool.incoming, notify::RecursiveMode::NonRecursive)
        .map_err(|e| DaemonError::Io(format!("cannot watch {}: {e}", spool.incoming.display())))?;
    tracing::info!(pid, store = %store.path().display(), spool = %config.queue.spool_dir.display(), "kandy-link started; taking events in");

    let configured: Vec<String> = config.rooms.mailboxes.keys().cloned().collect();
    let rules = Rules {
        permissions: &config.call_permissions,
        configured_rooms: &configured,
    };
    let mut last_beat = Instant::now();
    loop {
        let pass = spool.pass(&mut store, rules)?;
        if last_beat.elapsed() >= HEARTBEAT {
            store.heartbeat(pid, false)?;
            last_beat = Instant::now();
        }
        if pass.more {
            if wake.try_recv() == Ok(Wake::Stop) {
                break;
            }
            continue;
        }
        match wake.recv_timeout(POLL) {
            Ok(Wake::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Ok(Wake::Files) | Err(mpsc::RecvTimeoutError::Timeout) => {
                // Drain a burst of notifications into one pass.
                while let Ok(w) = wake.try_recv() {
                    if w == Wake::Stop {
                        return stop(&store, pid);
                    }
                }
            }
        }
    }
    stop(&store, pid)
}

fn stop(store: &Store, pid: u32) -> Result<(), DaemonError> {
    store.stopped(pid)?;
    tracing::info!(pid, "kandy-link stopped");
    Ok(())
}
