//! The Kandy log files (operations.md, "Logs"): which file a moment belongs to
//! (`PREFIX.YYYY-MM-DD.log`, `PREFIX.YYYY-MM-DD-HH.log` or `PREFIX.log`, periods in UTC),
//! which files `max_files` lets go, and the writer that moves from one file to the next.
//!
//! Written by hand rather than with tracing-appender's rolling appender: that one keeps
//! one file too few after a restart within a period, orders files by their creation
//! time rather than by the period in their name, and takes any file that merely starts
//! with the prefix as its own. Here only names of exactly our shapes are ever removed.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use time::{Duration, OffsetDateTime, Time};

use crate::config::Rotation;

/// What names the files and how many are kept; a reload may change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    pub prefix: String,
    pub rotation: Rotation,
    pub max_files: u64,
}

/// The file that records made at `now` go to.
pub fn file_name(naming: &Naming, now: OffsetDateTime) -> String {
    let t = now.to_offset(time::UtcOffset::UTC);
    let (y, m, d, h) = (t.year(), u8::from(t.month()), t.day(), t.hour());
    match naming.rotation {
        Rotation::Never => format!("{}.log", naming.prefix),
        Rotation::Daily => format!("{}.{y:04}-{m:02}-{d:02}.log", naming.prefix),
        Rotation::Hourly => format!("{}.{y:04}-{m:02}-{d:02}-{h:02}.log", naming.prefix),
    }
}

/// The period that holds `now`, as [start, end); `None` for a file that never rolls.
fn period(rotation: Rotation, now: OffsetDateTime) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let t = now.to_offset(time::UtcOffset::UTC);
    let start = match rotation {
        Rotation::Never => return None,
        Rotation::Daily => t.replace_time(Time::MIDNIGHT),
        Rotation::Hourly => t.replace_time(Time::from_hms(t.hour(), 0, 0).unwrap_or(Time::MIDNIGHT)),
    };
    let length = match rotation {
        Rotation::Hourly => Duration::HOUR,
        _ => Duration::DAY,
    };
    Some((start, start + length))
}

/// A file's period as (year, month, day, hour), which orders files by age.
type Period = (u32, u32, u32, u32);

/// The period a file of ours stands for; `None` for a name that is not one of ours.
/// `PREFIX.log` orders before every dated file.
fn period_of(prefix: &str, name: &str) -> Option<Period> {
    let middle = name.strip_prefix(prefix)?.strip_suffix(".log")?;
    if middle.is_empty() {
        return Some((0, 0, 0, 0));
    }
    let date = middle.strip_prefix('.')?;
    let parts: Vec<&str> = date.split('-').collect();
    let widths: &[usize] = match parts.len() {
        3 => &[4, 2, 2],
        4 => &[4, 2, 2, 2],
        _ => return None,
    };
    let mut n = [0u32; 4];
    for (i, (part, width)) in parts.iter().zip(widths).enumerate() {
        if part.len() != *width || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n[i] = part.parse().ok()?;
    }
    Some((n[0], n[1], n[2], n[3]))
}

/// The files among `names` to remove so that at most `max_files` of ours remain, the
/// current one included and kept whatever its date; the oldest periods go first.
pub fn to_prune(prefix: &str, names: &[String], current: &str, max_files: u64) -> Vec<String> {
    let mut ours: Vec<(Period, &String)> = names
        .iter()
        .filter(|n| n.as_str() != current)
        .filter_map(|n| period_of(prefix, n).map(|p| (p, n)))
        .collect();
    // Newest first; the name breaks ties so that the outcome never depends on order.
    ours.sort_by(|a, b| b.cmp(a));
    let keep = usize::try_from(max_files.saturating_sub(1)).unwrap_or(usize::MAX);
    ours.into_iter().skip(keep).map(|(_, n)| n.clone()).collect()
}

/// Removes what `to_prune` names in `dir`. A file that cannot be removed is said so on
/// standard error: the log itself is where it would go, and that is what is in trouble.
fn prune(dir: &Path, naming: &Naming, current: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    for name in to_prune(&naming.prefix, &names, current, naming.max_files) {
        if let Err(e) = std::fs::remove_file(dir.join(&name)) {
            eprintln!("kandy-link: cannot remove the old log file {name}: {e}");
        }
    }
}

/// The open file and the period it covers.
#[derive(Debug)]
struct Open {
    naming: Naming,
    name: String,
    file: File,
    period: Option<(OffsetDateTime, OffsetDateTime)>,
}

/// Appends records to the file of the moment, rolling over when the period ends or the
/// naming changes (a reload), and pruning at each new file.
#[derive(Debug)]
pub struct RollingFile {
    dir: PathBuf,
    naming: Arc<Mutex<Naming>>,
    open: Option<Open>,
}

impl RollingFile {
    /// Creates the folder (0750: the logs hold guest names) and opens the first file, so
    /// that a folder the service cannot write stops it at start rather than in silence.
    pub fn open(dir: &Path, naming: Arc<Mutex<Naming>>) -> io::Result<RollingFile> {
        crate::store::create_private_dir(dir)?;
        let mut f = RollingFile {
            dir: dir.to_path_buf(),
            naming,
            open: None,
        };
        f.file_at(OffsetDateTime::now_utc())?;
        Ok(f)
    }

    /// The name of the file written now.
    pub fn current(&self) -> Option<&str> {
        self.open.as_ref().map(|o| o.name.as_str())
    }

    fn file_at(&mut self, now: OffsetDateTime) -> io::Result<&mut File> {
        let naming = self.naming.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let fresh = self
            .open
            .as_ref()
            .is_some_and(|o| o.naming == naming && o.period.is_none_or(|(start, end)| start <= now && now < end));
        if !fresh {
            let name = file_name(&naming, now);
            let file = open_append(&self.dir.join(&name))?;
            prune(&self.dir, &naming, &name);
            self.open = Some(Open {
                period: period(naming.rotation, now),
                naming,
                name,
                file,
            });
        }
        match &mut self.open {
            Some(o) => Ok(&mut o.file),
            None => Err(io::Error::other("no log file is open")),
        }
    }

    /// Writes one record as if at `now` (the tests choose the moment).
    pub fn write_at(&mut self, now: OffsetDateTime, buf: &[u8]) -> io::Result<()> {
        self.file_at(now)?.write_all(buf)
    }
}

impl Write for RollingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_at(OffsetDateTime::now_utc(), buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.open {
            Some(o) => o.file.flush(),
            None => Ok(()),
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn naming(rotation: Rotation, max_files: u64) -> Naming {
        Naming {
            prefix: "Kandy".into(),
            rotation,
            max_files,
        }
    }

    #[test]
    fn each_rotation_names_its_file_by_the_utc_period() {
        // 00:30 in Paris is still the day before in UTC: periods follow UTC.
        let at = datetime!(2026-03-01 00:30 +01:00);
        let cases = [
            (Rotation::Daily, "Kandy.2026-02-28.log"),
            (Rotation::Hourly, "Kandy.2026-02-28-23.log"),
            (Rotation::Never, "Kandy.log"),
        ];
        for (rotation, want) in cases {
            assert_eq!(file_name(&naming(rotation, 14), at), want, "{rotation:?}");
        }
        let at = datetime!(2026-12-31 09:05:59 UTC);
        assert_eq!(file_name(&naming(Rotation::Hourly, 1), at), "Kandy.2026-12-31-09.log");
    }

    #[test]
    fn periods_end_at_the_next_utc_hour_or_midnight() {
        let at = datetime!(2026-03-01 13:45 UTC);
        assert_eq!(
            period(Rotation::Hourly, at),
            Some((datetime!(2026-03-01 13:00 UTC), datetime!(2026-03-01 14:00 UTC)))
        );
        assert_eq!(
            period(Rotation::Daily, at),
            Some((datetime!(2026-03-01 00:00 UTC), datetime!(2026-03-02 00:00 UTC)))
        );
        assert_eq!(period(Rotation::Never, at), None);
    }

    #[test]
    fn pruning_keeps_the_newest_and_the_current_and_touches_nothing_else() {
        let names: Vec<String> = [
            "Kandy.2026-01-01.log",
            "Kandy.2026-01-03.log",
            "Kandy.2026-01-02.log",
            "Kandy.2026-01-02-05.log",
            "Kandy.log",
            "Kandy.2026-01-04.log",
            // Not ours: another prefix, a compressed copy, a stray date shape.
            "Kandy-old.2020-01-01.log",
            "KandyX.2020-01-01.log",
            "Kandy.2020-01-01.log.gz",
            "Kandy.2020-1-01.log",
            "notes.txt",
        ]
        .map(String::from)
        .to_vec();
        let mut gone = to_prune("Kandy", &names, "Kandy.2026-01-04.log", 3);
        gone.sort();
        assert_eq!(gone, ["Kandy.2026-01-01.log", "Kandy.2026-01-02.log", "Kandy.log"]);
        // One file kept: only the current one.
        assert_eq!(to_prune("Kandy", &names, "Kandy.2026-01-04.log", 1).len(), 5);
        // Enough room: nothing goes.
        assert!(to_prune("Kandy", &names, "Kandy.2026-01-04.log", 14).is_empty());
    }

    #[test]
    fn the_writer_rolls_at_the_period_end_and_keeps_max_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        for old in ["Kandy.2026-01-01.log", "Kandy.2026-01-02.log", "other.log"] {
            std::fs::write(dir.path().join(old), "old\n").expect("write");
        }
        let naming = Arc::new(Mutex::new(naming(Rotation::Daily, 3)));
        let mut f = RollingFile {
            dir: dir.path().to_path_buf(),
            naming: naming.clone(),
            open: None,
        };
        f.write_at(datetime!(2026-01-03 23:59:59 UTC), b"one\n").expect("write");
        f.write_at(datetime!(2026-01-04 00:00:00 UTC), b"two\n").expect("write");
        let mut names = names(dir.path());
        assert_eq!(
            names,
            [
                "Kandy.2026-01-02.log",
                "Kandy.2026-01-03.log",
                "Kandy.2026-01-04.log",
                "other.log"
            ]
        );
        let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).expect("read");
        assert_eq!(read("Kandy.2026-01-03.log"), "one\n");
        assert_eq!(read("Kandy.2026-01-04.log"), "two\n");

        // A reload to hourly files takes effect at the next record.
        naming.lock().expect("lock").rotation = Rotation::Hourly;
        f.write_at(datetime!(2026-01-04 07:10 UTC), b"three\n").expect("write");
        assert_eq!(f.current(), Some("Kandy.2026-01-04-07.log"));
        names = self::names(dir.path());
        assert!(!names.contains(&"Kandy.2026-01-02.log".to_string()), "{names:?}");
        assert_eq!(names.len(), 4, "{names:?}");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}
