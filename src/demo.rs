//! `kandy-link demo`: the whole pipeline on this machine with nothing configured. A
//! simulated portal on a loopback port, the daemon against it with its state in a
//! temporary folder, four events, and what Kandy received and holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::daemon;
use crate::intake;
use crate::report;
use crate::sim::{self, Options, Sim};
use crate::store::{Rules, Store};
use crate::sync::plan::Status;

/// Rooms of the demo hotel and the Kandy users their mailboxes find.
const MAILBOXES: &str = "[rooms.mailboxes]\n\"101\" = \"1001\"\n\"205\" = \"1005\"\n";

const STEPS: [(&str, &str); 4] = [
    (
        "John Smith checks in to room 101",
        r#"{"id":"demo-1","type":"check_in","room":"101","guest":{"id":"778812","first":"John","last":"Smith","title":"Mr"}}"#,
    ),
    (
        "the PMS corrects his first name to Jon",
        r#"{"id":"demo-2","type":"guest_change","room":"101","guest":{"id":"778812","first":"Jon","last":"Smith"}}"#,
    ),
    (
        "he moves to room 205",
        r#"{"id":"demo-3","type":"room_move","from":"101","room":"205"}"#,
    ),
    (
        "he checks out of room 205",
        r#"{"id":"demo-4","type":"check_out","room":"205"}"#,
    ),
];

/// The Kandy users at the end, as the events say they must be: (user, first, last, permission).
const EXPECTED: [(&str, &str, &str, &str); 2] =
    [("1001", "Room", "", "internal"), ("1005@hotel", "Room", "", "internal")];

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Failed(String),
}

fn failed(what: impl std::fmt::Display) -> DemoError {
    DemoError::Failed(what.to_string())
}

/// Runs the demo; true when Kandy holds what the events say.
pub fn run() -> Result<bool, DemoError> {
    let dir = std::env::temp_dir().join(format!("kandy-link-demo-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(failed)?;
    let result = runtime.block_on(demo(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn demo(dir: &Path) -> Result<bool, DemoError> {
    let sim = sim::start(Options {
        users: 8,
        ..Options::default()
    })
    .await
    .map_err(failed)?;
    println!("kandy-sim: a Kandy portal with 8 users at {}", sim.base_url());
    let config = write_config(dir, &sim)?;
    println!("kandy-link: state, spool and settings in {}\n", dir.display());

    let (reload_tx, reload) = tokio::sync::watch::channel(Arc::new(config.clone()));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(daemon::run(reload, stop));

    let mut store = Store::open(&config.store_path()).map_err(failed)?;
    let configured: Vec<String> = config.rooms.mailboxes.keys().cloned().collect();
    let rules = Rules {
        permissions: &config.call_permissions,
        configured_rooms: &configured,
    };
    for (what, event) in STEPS {
        if daemon.is_finished() {
            break;
        }
        println!("event: {what}");
        let lines = intake::json_lines(event.as_bytes());
        let taken = intake::enqueue(&mut store, lines, "demo", rules).map_err(failed)?;
        if taken.accepted() != 1 {
            return Err(failed(format!("the event was not accepted: {}", taken.per_line())));
        }
        wait_in_sync(&store, &config, &daemon).await?;
    }
    if daemon.is_finished() {
        // The daemon stopped on its own: say why.
        daemon.await.map_err(failed)?.map_err(failed)?;
        return Err(failed("the daemon stopped"));
    }

    println!("\nWhat Kandy received:");
    for r in sim.received().iter().filter(|r| r.method != "GET") {
        let body = if r.path.ends_with("/login") {
            "{...password...}"
        } else {
            r.body.as_str()
        };
        println!("  {} {} {body} -> {}", r.method, r.path, r.status);
    }
    let rows = store.sync_rows(None).map_err(failed)?;
    let views: Vec<report::RoomView> = rows.iter().map(|r| report::room_view(&config, r)).collect();
    println!("\nEach room's state:\n{}", report::rooms_table(&views));

    let _ = stop_tx.send(true);
    daemon.await.map_err(failed)?.map_err(failed)?;
    drop(reload_tx);
    Ok(check(&sim))
}

fn write_config(dir: &Path, sim: &Sim) -> Result<Config, DemoError> {
    crate::store::create_private_dir(dir).map_err(failed)?;
    let path: PathBuf = dir.join("kandy-link.toml");
    let text = format!(
        "{}\n[queue]\nstate_dir = \"state\"\nspool_dir = \"spool\"\n\n[logging]\ndir = \"log\"\n\n[scheduling]\ninterval_secs = 1\n\n{MAILBOXES}",
        sim.link_toml()
    );
    std::fs::write(&path, text).map_err(failed)?;
    Config::load(&path).map_err(failed)
}

/// Waits until every resolved room is in sync (the link pushed what the events say).
async fn wait_in_sync<T>(store: &Store, config: &Config, daemon: &tokio::task::JoinHandle<T>) -> Result<(), DemoError> {
    let start = Instant::now();
    while !daemon.is_finished() {
        let rows = store.sync_rows(None).map_err(failed)?;
        let pending = rows.iter().any(|r| {
            let v = report::room_view(config, r);
            [v.name_status, v.permission_status]
                .iter()
                .any(|s| *s != Status::InSync.as_str())
        });
        if !pending {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(20) {
            return Err(failed("Kandy did not confirm the rooms within 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Compares what the simulated portal holds with what the events say.
fn check(sim: &Sim) -> bool {
    let mut ok = true;
    println!("What Kandy holds now:");
    for (user, first, last, permission) in EXPECTED {
        let Some(u) = sim.user(user) else {
            println!("  {user}: missing");
            ok = false;
            continue;
        };
        let got = (
            u.first_name.unwrap_or_default(),
            u.last_name.unwrap_or_default(),
            u.call_permission.unwrap_or_default(),
        );
        let right = got == (first.to_string(), last.to_string(), permission.to_string());
        ok &= right;
        println!(
            "  {user}: name \"{}\", permission {} {}",
            format!("{} {}", got.0, got.1).trim(),
            got.2,
            if right { "(as the events say)" } else { "(WRONG)" }
        );
    }
    println!("{}", if ok { "\nDemo passed." } else { "\nDemo FAILED." });
    ok
}
