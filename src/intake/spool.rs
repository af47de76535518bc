//! The spool directory (pms-events.md, "Ways in"): producers write `incoming/NAME.tmp`
//! (or `.NAME`) and rename it to `NAME.json` or `NAME.jsonl`; the daemon takes files in
//! byte-wise name order, many files per transaction (group commit), and only after the
//! commit removes each file or moves it to `rejected/` with a `NAME.error` report.
//!
//! A file's name, digest and report are committed with its events. A file still present
//! after a crash between that commit and its removal is recognised by name and digest and
//! finished (removed, or moved with its stored report), never taken in twice. The record
//! is dropped in the next transaction once the removal is durable.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::{Line, Taken, json_lines, take_lines, whole};
use crate::store::{Rules, Store, StoreError, create_private_dir};

/// Files taken in one transaction at most; bounds memory and a batch's latency.
const BATCH_FILES: usize = 256;
/// Bytes read for one transaction at most (a file larger than this is a batch alone).
const BATCH_BYTES: u64 = 8 << 20;

/// The spool's two folders.
#[derive(Debug, Clone)]
pub struct Spool {
    pub incoming: PathBuf,
    pub rejected: PathBuf,
    max_file_bytes: u64,
    /// Records of files removed in the last batch, dropped with the next commit.
    done: Vec<String>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub files: usize,
    pub accepted: usize,
    pub rejected_files: usize,
    /// More files are waiting than one batch took.
    pub more: bool,
}

/// How a file is to be handled, decided before the transaction.
#[derive(Debug)]
enum Plan {
    /// Not a file to open: rejected as it is, with the reason.
    Unopened {
        reason: String,
    },
    /// Taken in by an earlier run that died before removing it.
    Finish {
        report: Option<String>,
    },
    Take {
        digest: String,
        lines: Vec<Line>,
    },
}

#[derive(Debug)]
struct Entry {
    name: String,
    plan: Plan,
}

impl Spool {
    /// The spool under `dir`, its folders created when missing.
    pub fn open(dir: &Path, max_file_bytes: u64) -> Result<Spool, StoreError> {
        let spool = Spool {
            incoming: dir.join("incoming"),
            rejected: dir.join("rejected"),
            max_file_bytes,
            done: Vec::new(),
        };
        for d in [&spool.incoming, &spool.rejected] {
            create_private_dir(d)
                .map_err(|e| StoreError::Io(format!("cannot create the spool folder {}: {e}", d.display())))?;
        }
        Ok(spool)
    }

    /// Drops records of files that are no longer in `incoming/` (removed before a crash).
    pub fn recover(&mut self, store: &mut Store) -> Result<(), StoreError> {
        let gone: Vec<String> = store
            .spool_records()?
            .into_iter()
            .filter(|n| fs::symlink_metadata(self.incoming.join(n)).is_err())
            .collect();
        if !gone.is_empty() {
            let mut tx = store.intake()?;
            tx.forget_files(&gone)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Takes in the files now in `incoming/`, up to one batch.
    pub fn pass(&mut self, store: &mut Store, rules: Rules<'_>) -> Result<Pass, StoreError> {
        let (names, odd) = self.list()?;
        if !odd.is_empty() {
            self.reject_odd_names(store, odd)?;
        }
        if names.is_empty() {
            return self.flush(store).map(|()| Pass::default());
        }
        let mut entries = Vec::with_capacity(names.len().min(BATCH_FILES));
        let mut bytes = 0;
        for name in &names {
            let (plan, size) = self.plan(store, name)?;
            entries.push(Entry {
                name: name.clone(),
                plan,
            });
            bytes += size;
            if bytes >= BATCH_BYTES || entries.len() == BATCH_FILES {
                break;
            }
        }
        let more = entries.len() < names.len();

        let mut tx = store.intake()?;
        tx.forget_files(&self.done)?;
        let mut outcomes: Vec<(String, Option<String>, usize)> = Vec::with_capacity(entries.len());
        for entry in entries {
            let name = entry.name;
            let (report, accepted) = match entry.plan {
                Plan::Finish { report } => (report, 0),
                Plan::Unopened { reason } => {
                    tx.count_rejected(1);
                    let report = format!("{name}: not taken in: {reason}\n");
                    tx.record_file(&name, "", Some(&report))?;
                    tracing::warn!(file = %name, "Spool entry rejected unopened: {reason}");
                    (Some(report), 0)
                }
                Plan::Take { digest, lines } => {
                    let taken = take_lines(&mut tx, lines, &format!("spool:{name}"), rules)?;
                    let report = (taken.rejected() > 0).then(|| report(&name, &taken));
                    tx.record_file(&name, &digest, report.as_deref())?;
                    (report, taken.accepted())
                }
            };
            outcomes.push((name, report, accepted));
        }
        crate::fault::point("before-spool-commit");
        tx.commit()?;
        crate::fault::point("after-spool-commit");
        self.done.clear();

        let mut pass = Pass {
            more,
            ..Pass::default()
        };
        for (name, report, accepted) in outcomes {
            pass.files += 1;
            pass.accepted += accepted;
            match report {
                None => {
                    remove(&self.incoming.join(&name))?;
                    tracing::info!(file = %name, events = accepted, "Spool file taken in");
                }
                Some(report) => {
                    let to = self.reject(&name, &report)?;
                    pass.rejected_files += 1;
                    tracing::warn!(file = %name, moved_to = %to.display(), events = accepted, "Spool file moved to rejected/");
                }
            }
            self.done.push(name);
        }
        sync_dir(&self.incoming)?;
        if pass.rejected_files > 0 {
            sync_dir(&self.rejected)?;
        }
        if !pass.more {
            self.flush(store)?;
        }
        Ok(pass)
    }

    /// Commits the dropping of records of removed files.
    fn flush(&mut self, store: &mut Store) -> Result<(), StoreError> {
        if self.done.is_empty() {
            return Ok(());
        }
        let mut tx = store.intake()?;
        tx.forget_files(&self.done)?;
        tx.commit()?;
        self.done.clear();
        Ok(())
    }

    /// The names ready in `incoming/`, in byte-wise order, and the names that are not
    /// UTF-8 (which no producer of ours writes).
    fn list(&self) -> Result<(Vec<String>, Vec<OsString>), StoreError> {
        let read = fs::read_dir(&self.incoming).map_err(|e| io(&self.incoming, e))?;
        let mut names: Vec<OsString> = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| io(&self.incoming, e))?;
            let name = entry.file_name();
            let bytes = name.as_bytes();
            if bytes.starts_with(b".") || bytes.ends_with(b".tmp") {
                continue; // still being written
            }
            names.push(name);
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let (good, odd): (Vec<OsString>, Vec<OsString>) = names.into_iter().partition(|n| n.to_str().is_some());
        Ok((good.into_iter().filter_map(|n| n.into_string().ok()).collect(), odd))
    }

    /// Moves entries whose names are not UTF-8 to `rejected/` under a readable name.
    fn reject_odd_names(&self, store: &mut Store, odd: Vec<OsString>) -> Result<(), StoreError> {
        let mut tx = store.intake()?;
        tx.count_rejected(odd.len() as i64);
        tx.commit()?;
        for name in odd {
            let shown = name.to_string_lossy().replace(char::REPLACEMENT_CHARACTER, "_");
            let report = format!(
                "{}: not taken in: its name is not valid UTF-8\n",
                name.to_string_lossy().escape_debug()
            );
            let target = self.free_name(&shown, &report)?;
            let error = error_path(&target);
            write_synced(&error, report.as_bytes()).map_err(|e| io(&error, e))?;
            fs::rename(self.incoming.join(&name), &target).map_err(|e| io(&target, e))?;
            tracing::warn!(moved_to = %target.display(), "Spool entry with a name that is not UTF-8 moved to rejected/");
        }
        sync_dir(&self.rejected)?;
        sync_dir(&self.incoming)
    }

    fn plan(&self, store: &Store, name: &str) -> Result<(Plan, u64), StoreError> {
        let path = self.incoming.join(name);
        let record = store.spool_record(name)?;
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                return Ok((
                    Plan::Unopened {
                        reason: format!("cannot be read: {e}"),
                    },
                    0,
                ));
            }
        };
        let kind = meta.file_type();
        let unopened = if kind.is_symlink() {
            Some("it is a symbolic link; producers must write regular files".to_string())
        } else if kind.is_dir() {
            Some("it is a folder".to_string())
        } else if kind.is_fifo() || kind.is_socket() || kind.is_block_device() || kind.is_char_device() {
            Some("it is not a regular file (a FIFO, socket or device)".to_string())
        } else if !(name.ends_with(".json") || name.ends_with(".jsonl")) {
            Some("its name ends neither in .json nor in .jsonl".to_string())
        } else if meta.len() > self.max_file_bytes {
            Some(format!(
                "it is {} bytes, more than queue.max_file_bytes ({})",
                meta.len(),
                self.max_file_bytes
            ))
        } else {
            None
        };
        if let Some(reason) = unopened {
            if let Some((digest, report)) = record
                && digest.is_empty()
            {
                return Ok((Plan::Finish { report }, 0));
            }
            return Ok((Plan::Unopened { reason }, 0));
        }
        let bytes = match read_limited(&path, self.max_file_bytes) {
            Ok(b) => b,
            Err(e) => {
                return Ok((
                    Plan::Unopened {
                        reason: format!("cannot be read: {e}"),
                    },
                    0,
                ));
            }
        };
        let digest = hex(&Sha256::digest(&bytes));
        if let Some((recorded, report)) = record
            && recorded == digest
        {
            tracing::info!(file = %name, "Spool file was taken in before a restart; finishing it");
            return Ok((Plan::Finish { report }, 0));
        }
        let size = bytes.len() as u64;
        let lines = if name.ends_with(".jsonl") {
            json_lines(&bytes)
        } else {
            whole(&bytes)
        };
        Ok((Plan::Take { digest, lines }, size))
    }

    /// Moves `incoming/NAME` to `rejected/` beside its report; returns where it went.
    fn reject(&self, name: &str, report: &str) -> Result<PathBuf, StoreError> {
        let target = self.free_name(name, report)?;
        let error = error_path(&target);
        let tmp = self.rejected.join(format!(
            ".{}.tmp",
            error.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        ));
        write_synced(&tmp, report.as_bytes()).map_err(|e| io(&tmp, e))?;
        fs::rename(&tmp, &error).map_err(|e| io(&error, e))?;
        fs::rename(self.incoming.join(name), &target).map_err(|e| io(&target, e))?;
        Ok(target)
    }

    /// `rejected/NAME`, or `NAME.1`, `NAME.2` … when taken. A report left by an
    /// interrupted earlier move of the same file is reused.
    fn free_name(&self, name: &str, report: &str) -> Result<PathBuf, StoreError> {
        for n in 0u32.. {
            let candidate = if n == 0 {
                self.rejected.join(name)
            } else {
                self.rejected.join(format!("{name}.{n}"))
            };
            let error = error_path(&candidate);
            if fs::symlink_metadata(&candidate).is_ok() {
                continue;
            }
            match fs::read(&error) {
                Err(_) => return Ok(candidate),
                Ok(existing) if existing == report.as_bytes() => return Ok(candidate),
                Ok(_) => continue,
            }
        }
        unreachable!("u32 names run out")
    }
}

impl Spool {
    /// Removes what `rejected/` holds from before `before` (it holds guest names): a file
    /// goes with its `.error`, dated by the report, which was written when it was moved.
    pub fn purge_rejected(&self, before: SystemTime) -> Result<usize, StoreError> {
        let read = fs::read_dir(&self.rejected).map_err(|e| io(&self.rejected, e))?;
        let names: Vec<OsString> = read.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
        let old = |name: &OsString| {
            fs::symlink_metadata(self.rejected.join(name))
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < before)
        };
        let mut removed = 0;
        for name in &names {
            let bytes = name.as_bytes();
            let doomed = if let Some(stem) = bytes.strip_suffix(b".error") {
                // A file is dated by its report; its own date is the producer's.
                old(name) && {
                    remove_entry(&self.rejected.join(std::ffi::OsStr::from_bytes(stem)))?;
                    true
                }
            } else {
                let mut report = name.clone();
                report.push(".error");
                !names.contains(&report) && old(name)
            };
            if doomed {
                remove_entry(&self.rejected.join(name))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.rejected)?;
        }
        Ok(removed)
    }
}

/// Removes a file, link or folder; one already gone is fine.
fn remove_entry(path: &Path) -> Result<(), StoreError> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => return Ok(()),
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path, e)),
        _ => Ok(()),
    }
}

fn error_path(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".error");
    PathBuf::from(s)
}

/// The `.error` text of a file with bad events.
fn report(name: &str, taken: &Taken) -> String {
    format!(
        "{name}: {} of {} events accepted, {} rejected.\nThe accepted events are in the store: fix the rejected lines and drop only those in again.\n{}",
        taken.accepted() + taken.duplicate(),
        taken.lines.len(),
        taken.rejected(),
        taken.per_line()
    )
}

fn read_limited(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    // O_NONBLOCK: a FIFO swapped in after the check must not hang the daemon.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "it is more than queue.max_file_bytes ({max})"
        )));
    }
    Ok(bytes)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn remove(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path, e)),
    }
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e))
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
