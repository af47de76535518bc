//! `kandy-link run`: one daemon per store (a lock file beside it), the intake thread and
//! the sync loop, and a clean stop.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use notify::Watcher;
use tokio::sync::{Notify, watch};

use crate::intake::spool::Spool;
use crate::kandy::{Client, Hooks, KandyError};
use crate::store::{Rules, Store, StoreError, create_private_dir};
use crate::sync::{Engine, Reload};

/// How often the spool is looked at even without a notification (shares where inotify is
/// blind), and how often the heartbeat is written.
const POLL: Duration = Duration::from_secs(1);
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How often events and rejected files older than `queue.keep_days` are removed (and at
/// start).
const PURGE: Duration = Duration::from_secs(3600);
/// How long `run` waits for the store's lock before it decides another daemon holds it.
const LOCK_PATIENCE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("another kandy-link run (pid {pid}) is using the store in {dir}; stop it first")]
    AlreadyRunning { pid: String, dir: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kandy(#[from] KandyError),
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
            .mode(0o640)
            .open(&path)
            .map_err(|e| DaemonError::Io(format!("cannot open {}: {e}", path.display())))?;
        // `status` takes a shared lock for an instant to see whether a daemon runs: try
        // for a moment before calling the store taken.
        let start = Instant::now();
        while file.try_lock().is_err() {
            if start.elapsed() < LOCK_PATIENCE {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
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

/// Runs the daemon until `stop` changes: intake on a thread of its own (its commits
/// wait for the disk), the sync loop as a task.
pub async fn run(reload: Reload, mut stop: watch::Receiver<bool>) -> Result<(), DaemonError> {
    let config = reload.borrow().clone();
    let _lock = Lock::take(&config.queue.state_dir)?;
    let mut store = Store::open(&config.store_path())?;
    let mut spool = Spool::open(&config.queue.spool_dir, config.queue.max_file_bytes)?;
    spool.recover(&mut store)?;
    let pid = std::process::id();
    store.heartbeat(pid, true)?;

    let tokens = Arc::new(std::sync::Mutex::new(Store::open(&config.store_path())?));
    let hooks = Hooks {
        tokens: Some(tokens),
        packets: Some(crate::logging::packet_sink()),
    };
    let client = Client::from_config(&config, hooks.clone())?;
    let engine = Engine::new(
        config.clone(),
        client,
        hooks,
        Store::open(&config.store_path())?,
        Store::open(&config.store_path())?,
    )?;

    let (wake_tx, wake) = mpsc::channel();
    let watch_tx = wake_tx.clone();
    let mut watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        let _ = watch_tx.send(Wake::Files);
    })
    .map_err(|e| DaemonError::Io(format!("cannot watch {}: {e}", spool.incoming.display())))?;
    watcher
        .watch(&spool.incoming, notify::RecursiveMode::NonRecursive)
        .map_err(|e| DaemonError::Io(format!("cannot watch {}: {e}", spool.incoming.display())))?;
    tracing::info!(pid, store = %store.path().display(), spool = %config.queue.spool_dir.display(), "kandy-link started; taking events in");

    let committed = Arc::new(Notify::new());
    let (intake_done, mut intake_result) = tokio::sync::oneshot::channel();
    let intake_config = reload.clone();
    let intake_committed = committed.clone();
    let intake = std::thread::spawn(move || {
        let result = intake_loop(&intake_config, &mut store, &mut spool, &wake, &intake_committed, pid);
        let _ = intake_done.send(result);
        store
    });
    let (engine_stop_tx, engine_stop) = watch::channel(false);
    let fias = crate::intake::fias::spawn(&config, &reload, &committed, engine_stop_tx.subscribe())?;
    let mut engine = tokio::spawn(engine.run(engine_stop, committed, reload));
    // The store is open and intake runs: systemd may call the service started.
    crate::service::ready();

    let mut failure = None;
    tokio::select! {
        _ = stop.changed() => {}
        r = &mut intake_result => failure = r.ok().and_then(Result::err),
        r = &mut engine => failure = Some(match r {
            Ok(Ok(())) => DaemonError::Io("the sync loop ended unexpectedly".into()),
            Ok(Err(e)) => e.into(),
            Err(e) => DaemonError::Io(format!("the sync loop failed: {e}")),
        }),
    }
    let _ = wake_tx.send(Wake::Stop);
    let _ = engine_stop_tx.send(true);
    drop(watcher);
    if let Some(fias) = fias {
        let _ = fias.await;
    }
    if (!engine.is_finished() || failure.is_none())
        && let Ok(Err(e)) = engine.await
    {
        failure.get_or_insert(e.into());
    }
    let store = tokio::task::spawn_blocking(move || intake.join())
        .await
        .ok()
        .and_then(Result::ok);
    if let Ok(Err(e)) = intake_result.try_recv() {
        failure.get_or_insert(e);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(store) = store {
        store.stopped(pid)?;
    }
    tracing::info!(pid, "kandy-link stopped");
    Ok(())
}

/// Removes applied events and rejected files older than `keep_days` (they hold guest names).
fn purge(store: &mut Store, spool: &Spool, keep_days: u64) -> Result<(), DaemonError> {
    let keep = Duration::from_secs(keep_days.saturating_mul(86_400));
    let before = std::time::SystemTime::now()
        .checked_sub(keep)
        .unwrap_or(std::time::UNIX_EPOCH);
    let secs = before
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let events = store.purge_events(secs)?;
    let files = spool.purge_rejected(before)?;
    if events + files > 0 {
        tracing::info!(
            events,
            files,
            keep_days,
            "Removed events and rejected files older than queue.keep_days"
        );
    }
    Ok(())
}

/// Takes spool files in until told to stop; wakes the sync loop after each commit.
fn intake_loop(
    config: &Reload,
    store: &mut Store,
    spool: &mut Spool,
    wake: &mpsc::Receiver<Wake>,
    committed: &Notify,
    pid: u32,
) -> Result<(), DaemonError> {
    let mut last_beat = Instant::now();
    let mut last_purge: Option<Instant> = None;
    loop {
        // The settings of the moment: a reload changes permissions and rooms.
        let config = config.borrow().clone();
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE) {
            purge(store, spool, config.queue.keep_days)?;
            last_purge = Some(Instant::now());
        }
        let configured: Vec<String> = config.rooms.mailboxes.keys().cloned().collect();
        let rules = Rules {
            permissions: &config.call_permissions,
            configured_rooms: &configured,
        };
        let pass = spool.pass(store, rules)?;
        if pass.accepted > 0 {
            committed.notify_one();
        }
        if last_beat.elapsed() >= HEARTBEAT {
            store.heartbeat(pid, false)?;
            last_beat = Instant::now();
        }
        if pass.more {
            if wake.try_recv() == Ok(Wake::Stop) {
                return Ok(());
            }
            continue;
        }
        match wake.recv_timeout(POLL) {
            Ok(Wake::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            Ok(Wake::Files) | Err(mpsc::RecvTimeoutError::Timeout) => {
                // Drain a burst of notifications into one pass.
                while let Ok(w) = wake.try_recv() {
                    if w == Wake::Stop {
                        return Ok(());
                    }
                }
            }
        }
    }
}
