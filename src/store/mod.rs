//! The durable store: one SQLite file in WAL mode with `synchronous=FULL`, the only
//! module that speaks SQL. An event is accepted once its transaction has committed.
//!
//! Every connection sets and reads back its pragmas (they are not kept in the file) and
//! refuses to go on when SQLite did not take them: a store that cannot promise
//! durability must not say "accepted".

mod intake;
mod migrate;
mod purge;
mod read;
mod sync;
mod token;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use intake::{Intake, Outcome, Rules};
pub use read::{Counters, DaemonRow};
pub use sync::{LinkRow, Request, SyncRow};
pub use token::PortalToken;

/// How long a command waits for another writer (the daemon's batch) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("the store {path}: {what}")]
    Refused { path: PathBuf, what: String },
    #[error("{0}")]
    Io(String),
}

/// An open store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (and creates, with its folder) the store at `path`, and brings its schema
    /// up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            check_owner(path, dir)?;
            create_private_dir(dir)
                .map_err(|e| StoreError::Io(format!("cannot create the state folder {}: {e}", dir.display())))?;
        }
        // Created private before SQLite opens it: SQLite gives the -wal and -shm files
        // the main file's mode, and all three hold guest names.
        private_file(path).map_err(|e| StoreError::Io(format!("cannot create the store {}: {e}", path.display())))?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| sqlite(path, e))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.set_pragmas()?;
        migrate::migrate(&mut store.conn).map_err(|e| sqlite(path, e))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn set_pragmas(&mut self) -> Result<(), StoreError> {
        let c = &self.conn;
        c.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.err(e))?;
        // Switching to WAL needs a lock of the whole file: only ask when it is not WAL yet
        // (the mode is kept in the file), so that opening beside a busy daemon never waits.
        let mut mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        // Several processes may create a new store at once; SQLite answers the switch
        // "busy" at once rather than waiting, so wait here.
        let start = std::time::Instant::now();
        while !mode.eq_ignore_ascii_case("wal") {
            match c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)) {
                Ok(m) => mode = m,
                Err(e) if is_busy(&e) && start.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(self.err(e)),
            }
            if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("delete") {
                break;
            }
        }
        // A hotel's store is a few MiB and the daemon keeps several connections: a
        // small page cache each keeps the daemon small (the OS caches the file anyway).
        c.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-512;")
            .map_err(|e| self.err(e))?;
        let sync: i64 = c
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        durable(&self.path, &mode, sync)
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        sqlite(&self.path, e)
    }

    /// Starts a write transaction that takes events in (see `Intake`).
    pub fn intake(&mut self) -> Result<Intake<'_>, StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sqlite(&path, e))?;
        Ok(Intake::new(tx, path))
    }
}

/// Refuses a connection whose pragmas, as read back, do not promise durable commits.
fn durable(path: &Path, mode: &str, sync: i64) -> Result<(), StoreError> {
    if !mode.eq_ignore_ascii_case("wal") || sync != 2 {
        return Err(StoreError::Refused {
            path: path.to_path_buf(),
            what: format!(
                "SQLite runs with journal_mode={mode} and synchronous={sync}, not WAL and FULL (2); refusing to take events in without durable commits"
            ),
        });
    }
    Ok(())
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (mode 0750) when it is missing.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o750).create(dir)
}

/// Creates `path` empty with mode 0640 when missing, and takes away what other users may
/// do with it when it exists (a store made by an older kandy-link).
pub fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o640)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o007 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o770))?;
    }
    Ok(())
}

/// The effective user id of this process.
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Refuses to open a store that another user owns: the files SQLite creates beside it
/// (`-wal`, `-shm`) would belong to us, and the service could no longer open its store.
fn check_owner(path: &Path, dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;
    let Some(me) = effective_uid() else { return Ok(()) };
    let existing = if path.exists() { path } else { dir };
    let Ok(meta) = std::fs::metadata(existing) else {
        return Ok(());
    };
    if meta.uid() != me {
        return Err(StoreError::Refused {
            path: path.to_path_buf(),
            what: format!(
                "{} belongs to user id {}, and this command runs as user id {me}; run it as the service's user (sudo -u kandy-link kandy-link ...)",
                existing.display(),
                meta.uid()
            ),
        });
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests;
