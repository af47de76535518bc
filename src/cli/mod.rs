//! The command line (operations.md, "Commands"): arguments are parsed here, each command
//! calls into the library, and `main` turns the outcome into an exit status. The
//! commands that act on the link (`retry`, `resync`, `cache`) are in `link`.

mod link;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::config::{self, Config, ConfigError};
use crate::daemon::{self, DaemonError};
use crate::event;
use crate::intake::{self, Line, Taken};
use crate::logging::{self, LogControl};
use crate::report;
use crate::service;
use crate::store::{self, Rules, Store, StoreError};

#[derive(Debug, Parser)]
#[command(
    name = "kandy-link",
    version,
    about = "Connects a hotel's PMS to Ribbon's Kandy cloud PBX"
)]
pub struct Args {
    /// The configuration file.
    #[arg(long, global = true, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: take events in, push rooms to Kandy.
    Run,
    /// The whole pipeline against a simulated portal, with nothing configured.
    Demo,
    /// Validate the configuration and print the effective settings (secrets masked).
    CheckConfig {
        /// Also talk to the portal: connection and TLS, login, one page of users, clock.
        #[arg(long)]
        online: bool,
    },
    /// Put events (one JSON object, or JSON lines) from FILE or standard input in the queue.
    Enqueue {
        /// A file of events, or - for standard input.
        #[arg(default_value = "-")]
        file: String,
    },
    /// A guest checks in.
    CheckIn {
        room: String,
        #[arg(long)]
        last: String,
        #[arg(long)]
        first: Option<String>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long = "guest-id")]
        guest_id: Option<String>,
        /// A class-of-service code ("0" to "9") or a Kandy call permission name.
        #[arg(long)]
        permission: Option<String>,
    },
    /// A guest (or, without --guest-id, every guest) checks out.
    CheckOut {
        room: String,
        #[arg(long = "guest-id")]
        guest_id: Option<String>,
    },
    /// The guests of room FROM move to room TO.
    Move { from: String, to: String },
    /// Set a room's call permission (a code "0" to "9" or a name).
    Permission { room: String, level: String },
    /// Is the daemon running, event counts, rooms needing attention.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Each room's guests and wanted state.
    Rooms {
        room: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Try deferred and failed fields again now.
    Retry(link::Targets),
    /// Push the wanted state again, even where Kandy confirmed it.
    Resync(link::Targets),
    /// The extension cache of Kandy users.
    Cache {
        #[command(subcommand)]
        action: link::CacheAction,
    },
}

/// Why a command failed, and so its exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Kandy(#[from] crate::kandy::KandyError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(String),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Usage(_) => 2,
            CliError::Store(StoreError::Refused { .. })
            | CliError::Daemon(DaemonError::Store(StoreError::Refused { .. })) => 2,
            _ => 1,
        }
    }
}

/// Runs the command line; the exit status is 0 on success, 1 when the command found a
/// problem, 2 on bad usage or configuration.
pub fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("kandy-link: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: Args) -> Result<u8, CliError> {
    if let Command::Demo = args.command {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::WARN)
            .with_target(false)
            .try_init();
        return match crate::demo::run() {
            Ok(true) => Ok(0),
            Ok(false) => Ok(1),
            Err(e) => Err(CliError::Io(format!("the demo failed: {e}"))),
        };
    }
    let config = Config::load(&args.config)?;
    if let Command::Run = args.command {
        few_malloc_arenas();
        // Kept until the daemon has stopped: dropping it flushes the log files.
        let (logs, _flush) = logging::for_daemon(&config).map_err(CliError::Io)?;
        return run_daemon(&config, logs);
    }
    logging::for_command(&config);
    match args.command {
        Command::Run => unreachable!("handled before the other commands"),
        Command::Demo => unreachable!("handled before the configuration is read"),
        Command::CheckConfig { online } => {
            check_secrets(&config)?;
            print!("{}", config.effective());
            eprintln!("kandy-link: {} is valid", config.file.display());
            if online {
                return Ok(crate::kandy::online::run(&config));
            }
            Ok(0)
        }
        Command::Enqueue { file } => {
            let max = config.queue.max_file_bytes;
            let (bytes, source) = read_input(&file, max)?;
            if bytes.len() as u64 > max {
                // Bad input like any other: counted, named, nothing of it taken in.
                let mut store = Store::open(&config.store_path())?;
                let mut tx = store.intake()?;
                tx.count_rejected(1);
                tx.commit()?;
                eprintln!(
                    "{source}: rejected: it is more than queue.max_file_bytes ({max} bytes); nothing of it was taken in"
                );
                println!("0 accepted, 0 duplicate, 1 rejected");
                return Ok(1);
            }
            let taken = enqueue(&config, intake::object_or_lines(&bytes), &source)?;
            Ok(print_taken(&taken))
        }
        Command::CheckIn {
            room,
            last,
            first,
            title,
            guest_id,
            permission,
        } => {
            let mut guest = json!({ "last": last });
            for (k, v) in [("first", first), ("title", title), ("id", guest_id)] {
                if let Some(v) = v {
                    guest[k] = json!(v);
                }
            }
            let mut e = json!({ "type": "check_in", "room": room, "guest": guest });
            if let Some(p) = permission {
                e["call_permission"] = json!(p);
            }
            helper(&config, e, "check-in")
        }
        Command::CheckOut { room, guest_id } => {
            let mut e = json!({ "type": "check_out", "room": room });
            if let Some(g) = guest_id {
                e["guest_id"] = json!(g);
            }
            helper(&config, e, "check-out")
        }
        Command::Move { from, to } => helper(
            &config,
            json!({ "type": "room_move", "from": from, "room": to }),
            "move",
        ),
        Command::Permission { room, level } => helper(
            &config,
            json!({ "type": "call_permission", "room": room, "level": level }),
            "permission",
        ),
        Command::Status { json } => {
            let status = status(&config)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
            } else {
                println!("{}", report::one_line(&status));
            }
            Ok(if status.state == "ok" { 0 } else { 1 })
        }
        Command::Retry(targets) => link::request(&config, "retry", &targets),
        Command::Resync(targets) => link::request(&config, "resync", &targets),
        Command::Cache { action } => link::cache(&config, action),
        Command::Rooms { room, json } => {
            let store = Store::open(&config.store_path())?;
            let mut rows = store.sync_rows(None)?;
            if let Some(r) = &room {
                rows.retain(|row| &row.room == r);
            }
            if let Some(r) = &room
                && rows.is_empty()
            {
                return Err(CliError::Usage(format!("room {r} is not known")));
            }
            let views: Vec<report::RoomView> = rows.iter().map(|r| report::room_view(&config, r)).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&views).unwrap_or_default());
            } else {
                print!("{}", report::rooms_table(&views));
            }
            Ok(0)
        }
    }
}

/// Reads each secret that comes from a file, so that a missing credential shows now. A
/// bare credential name outside systemd (no `$CREDENTIALS_DIRECTORY`) that is not beside
/// the file either is only noted: the service will find it where systemd puts it.
fn check_secrets(config: &Config) -> Result<(), CliError> {
    let k = &config.kandy;
    let under_systemd = std::env::var_os("CREDENTIALS_DIRECTORY").is_some();
    for (key, source) in [
        ("kandy.password_file", &k.password),
        ("kandy.user_token_file", &k.user_token),
        ("kandy.hmac_file", &k.hmac),
    ] {
        if let config::SecretSource::Credential { name, beside } = source
            && !under_systemd
            && !beside.join(name).exists()
        {
            eprintln!(
                "kandy-link: note: `{key}` names the credential `{name}`, looked up in $CREDENTIALS_DIRECTORY (set by systemd's LoadCredential=) or beside the file; neither is here, so it was not checked"
            );
            continue;
        }
        if let Err(e) = source.resolve() {
            return Err(config.error(key, e).into());
        }
    }
    Ok(())
}

/// The input of `enqueue`, read up to one byte more than `max` (an endless or huge input
/// is refused, not read into memory whole).
fn read_input(file: &str, max: u64) -> Result<(Vec<u8>, String), CliError> {
    let mut bytes = Vec::new();
    if file == "-" {
        std::io::stdin()
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| CliError::Io(format!("cannot read standard input: {e}")))?;
        Ok((bytes, "enqueue:-".into()))
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
            .map_err(|e| CliError::Io(format!("cannot read {file}: {e}")))?;
        Ok((bytes, format!("enqueue:{file}")))
    }
}

fn enqueue(config: &Config, lines: Vec<Line>, source: &str) -> Result<Taken, CliError> {
    let mut store = Store::open(&config.store_path())?;
    let configured: Vec<String> = config.rooms.mailboxes.keys().cloned().collect();
    let rules = Rules {
        permissions: &config.call_permissions,
        configured_rooms: &configured,
    };
    Ok(intake::enqueue(&mut store, lines, source, rules)?)
}

/// Prints the outcome of an enqueue; the exit status is 1 when any event was rejected.
fn print_taken(taken: &Taken) -> u8 {
    for (n, o) in &taken.lines {
        if let store::Outcome::Rejected(r) = o {
            eprintln!("line {n}: rejected: {r}");
        }
    }
    println!("{}", taken.summary());
    if taken.rejected() > 0 { 1 } else { 0 }
}

fn helper(config: &Config, event: serde_json::Value, name: &str) -> Result<u8, CliError> {
    let raw = event.to_string();
    let line = Line {
        number: 1,
        parsed: event::from_value(&event),
        raw,
    };
    let taken = enqueue(config, vec![line], &format!("cli:{name}"))?;
    for (_, o) in &taken.lines {
        if let store::Outcome::Rejected(r) = o {
            eprintln!("kandy-link: {name} rejected: {r}");
            return Ok(1);
        }
    }
    println!("{}", taken.summary());
    Ok(0)
}

fn status(config: &Config) -> Result<report::Status, CliError> {
    let store = Store::open(&config.store_path())?;
    let row = store.daemon()?;
    let pid = daemon::running(&config.queue.state_dir);
    let d = report::Daemon {
        running: pid.is_some(),
        pid,
        heartbeat_at: row.map(|r| r.heartbeat_at),
    };
    let rooms = store.sync_rows(None)?;
    let facts = report::Facts {
        daemon: d,
        link: store.link()?,
        cache: store.directory_meta()?,
        events: store.counters()?,
        rooms: &rooms,
        now: store::now(),
    };
    Ok(report::status(config, &facts))
}

/// How often systemd's STATUS= line is brought up to date.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// `kandy-link run`: the daemon, with the service around it (service.rs): signals, reload
/// on SIGHUP or when the file changes, and what systemd is told.
/// glibc gives each thread that allocates under contention an arena of its own (up to
/// eight per core), and freed memory stays in them: over a day of bursts the daemon's
/// resident memory creeps up by a third. Two arenas are plenty for its few threads. The
/// setting is read only when a process starts, so `run` starts itself again with it,
/// under the same pid (systemd's notify and watchdog are unaffected).
fn few_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    const TUNABLE: &str = "glibc.malloc.arena_max=2";
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if !cfg!(target_env = "gnu") || current.contains("glibc.malloc.arena_max") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let tunables = if current.is_empty() {
        TUNABLE.to_string()
    } else {
        format!("{current}:{TUNABLE}")
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", tunables)
        .exec();
    // Only reached when the exec failed: run as we are.
    tracing::debug!("could not restart with fewer malloc arenas: {error}");
}

fn run_daemon(config: &Config, logs: LogControl) -> Result<u8, CliError> {
    service::enable();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("cannot start the runtime: {e}")))?;
    let (reload_tx, reload) = tokio::sync::watch::channel(Arc::new(config.clone()));
    let mut reloader = service::Reloader::new(&config.file, reload_tx, Some(logs));
    let path = config.file.clone();
    runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        // Handlers first: a signal that arrives once the store is locked is never lost.
        let handler =
            |kind: SignalKind, name: &str| signal(kind).map_err(|e| CliError::Io(format!("cannot handle {name}: {e}")));
        let mut term = handler(SignalKind::terminate(), "SIGTERM")?;
        let mut int = handler(SignalKind::interrupt(), "SIGINT")?;
        let mut hup = handler(SignalKind::hangup(), "SIGHUP")?;
        let (changed_tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
        // Without the watch, SIGHUP still reloads: say so and go on.
        let _watcher = service::watch_config(&path, changed_tx)
            .map_err(|e| tracing::warn!(file = %path.display(), "Changes to the configuration file are not watched; reload with SIGHUP: {e}"))
            .ok();
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let mut task = tokio::spawn(daemon::run(reload, stop));
        let mut settle: Option<tokio::time::Instant> = None;
        let mut status_tick = tokio::time::interval(STATUS_EVERY);
        let mut status_task: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let settled = async {
                match settle {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                done = &mut task => {
                    service::stopping();
                    let done = done.map_err(|e| CliError::Io(format!("the daemon failed: {e}")))
                        .and_then(|r| r.map_err(CliError::from));
                    // Said in the Kandy log too, where the technician looks first.
                    if let Err(e) = &done {
                        tracing::error!("This kandy-link run ends: {e}");
                    }
                    return done.map(|()| 0);
                }
                _ = term.recv() => stop_daemon(&stop_tx, "SIGTERM"),
                _ = int.recv() => stop_daemon(&stop_tx, "SIGINT"),
                _ = hup.recv() => reloader.reload("SIGHUP received"),
                Some(()) = changed.recv() => settle = Some(tokio::time::Instant::now() + service::SETTLE),
                () = settled => {
                    settle = None;
                    reloader.file_changed();
                }
                _ = status_tick.tick() => {
                    if service::is_ready() && status_task.as_ref().is_none_or(|t| t.is_finished()) {
                        let config = reloader.current();
                        status_task = Some(tokio::task::spawn_blocking(move || {
                            if let Ok(s) = status(&config) {
                                service::status(&report::one_line(&s));
                            }
                        }));
                    }
                }
            }
        }
    })
}

fn stop_daemon(stop: &tokio::sync::watch::Sender<bool>, signal: &str) {
    tracing::info!("{signal} received; stopping");
    service::stopping();
    let _ = stop.send(true);
}
