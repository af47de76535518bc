//! Logging (operations.md, "Logs"): the daemon writes the Kandy log files in
//! `logging.dir` and standard error (journald under systemd, the terminal or the
//! container's log otherwise); plain commands write standard error only, never the files.
//!
//! One line per record: local time with its offset (RFC 3339), level, message,
//! key=value fields. The files are written by a background thread fed in lossless mode:
//! a burst makes the loggers wait rather than lose lines, and the guard that `for_daemon`
//! returns flushes what is queued when it is dropped at exit.
//!
//! A reload changes the level, the file naming and retention, and the debug packet log
//! (`apply`); `logging.dir` needs a restart.
//!
//! - [`file`]: the file names, retention, and the writer that rolls over.

pub mod file;

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::{Layer, Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, reload};

use crate::config::{self, Config};
use crate::kandy::packet::{Direction, Packet, PacketSink};
use file::{Naming, RollingFile};

/// The target of the packet log's records: let through at debug whatever the level, so
/// that `enable_debug` alone decides whether they are written.
const PACKET_TARGET: &str = "kandy_link::packet";

/// Whether the packet log is on: set from the configuration of the moment, read by the
/// sink at every packet, so a reload switches it without touching the Kandy client.
static PACKETS: AtomicBool = AtomicBool::new(false);

/// Changes the logging of a running daemon: see `apply`.
#[derive(Debug, Clone)]
pub struct LogControl {
    filter: reload::Handle<Targets, Registry>,
    naming: Arc<Mutex<Naming>>,
}

impl LogControl {
    /// Applies the `[logging]` settings of a reloaded file (all but `dir`).
    pub fn apply(&self, logging: &config::Logging) {
        if let Err(e) = self.filter.modify(|f| *f = targets(logging.level)) {
            tracing::warn!("The new log level was not applied: {e}");
        }
        *self.naming.lock().unwrap_or_else(PoisonError::into_inner) = naming(logging);
        PACKETS.store(logging.enable_debug, Ordering::Relaxed);
    }
}

/// Flushes the log files when dropped: keep it until the process ends.
#[derive(Debug)]
pub struct Flush {
    _guard: WorkerGuard,
}

/// The daemon's logging: the files and standard error. Fails when the log folder cannot
/// be created or written.
pub fn for_daemon(config: &Config) -> Result<(LogControl, Flush), String> {
    let l = &config.logging;
    let shared = Arc::new(Mutex::new(naming(l)));
    let files = RollingFile::open(&l.dir, shared.clone())
        .map_err(|e| format!("cannot write log files in {}: {e}", l.dir.display()))?;
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("kandy-link-log")
        .finish(files);
    let (filter, handle) = reload::Layer::new(targets(l.level));
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false)
        .with_timer(LocalTime);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr_layer())
        .with(file_layer)
        .try_init();
    PACKETS.store(l.enable_debug, Ordering::Relaxed);
    let control = LogControl {
        filter: handle,
        naming: shared,
    };
    Ok((control, Flush { _guard: guard }))
}

/// A plain command's logging: standard error only, at `logging.level`.
pub fn for_command(config: &Config) {
    let _ = tracing_subscriber::registry()
        .with(targets(config.logging.level))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false)
                .with_timer(LocalTime),
        )
        .try_init();
}

type Base = Layered<reload::Layer<Targets, Registry>, Registry>;

/// Standard error: without the time under systemd, whose journal stamps every line.
fn stderr_layer() -> Box<dyn Layer<Base> + Send + Sync> {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(!journald && std::io::stderr().is_terminal())
        .with_target(false);
    if journald {
        layer.without_time().boxed()
    } else {
        layer.with_timer(LocalTime).boxed()
    }
}

/// The filter for `level`. The link's own records follow it; other crates' stop at info
/// (their debug output is about sockets and buffers, not about the link).
fn targets(level: config::Level) -> Targets {
    let level = match level {
        config::Level::Error => LevelFilter::ERROR,
        config::Level::Warn => LevelFilter::WARN,
        config::Level::Info => LevelFilter::INFO,
        config::Level::Debug => LevelFilter::DEBUG,
        config::Level::Trace => LevelFilter::TRACE,
    };
    Targets::new()
        .with_default(level.min(LevelFilter::INFO))
        .with_target("kandy_link", level)
        .with_target(PACKET_TARGET, LevelFilter::DEBUG)
}

fn naming(l: &config::Logging) -> Naming {
    Naming {
        prefix: l.prefix.clone(),
        rotation: l.rotation,
        max_files: l.max_files,
    }
}

/// The debug packet log: every request and answer, already rendered with its secrets
/// masked (`kandy::packet`), as one record while `logging.enable_debug` is on. The text's
/// line breaks are escaped so that a record stays one line.
pub fn packet_sink() -> PacketSink {
    PacketSink::new(log_packet)
}

fn log_packet(p: &Packet) {
    if !PACKETS.load(Ordering::Relaxed) {
        return;
    }
    let packet = p.text.trim_end();
    match p.direction {
        Direction::Request => tracing::debug!(target: PACKET_TARGET, packet, "Request to Kandy"),
        Direction::Answer => tracing::debug!(target: PACKET_TARGET, packet, "Answer from Kandy"),
    }
}

/// Local time with its offset, to the millisecond: `2026-03-01T14:05:09.123+01:00`.
/// chrono reads the zone itself (no libc call that is unsound once threads run) and so
/// follows a change to or from summer time while the daemon runs.
#[derive(Debug, Clone, Copy)]
struct LocalTime;

impl FormatTime for LocalTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let now = chrono::Local::now();
        write!(w, "{}", now.to_rfc3339_opts(chrono::SecondsFormat::Millis, false))
    }
}
