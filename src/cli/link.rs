//! `retry`, `resync` and `cache`: requests a running daemon takes up within a second,
//! and the extension cache as the store holds it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args as ClapArgs, Subcommand};

use super::CliError;
use crate::config::Config;
use crate::daemon;
use crate::directory::{Directory, Resolution};
use crate::kandy::{Client, Hooks};
use crate::store::{self, Store};

/// Which rooms a request is for.
#[derive(Debug, ClapArgs)]
pub struct Targets {
    /// Rooms to act on.
    rooms: Vec<String>,
    /// Every room.
    #[arg(long, conflicts_with = "rooms")]
    all: bool,
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Read every user of the group from the portal now.
    Refresh,
    /// The users in the cache.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Which Kandy user a mailbox is, and why.
    Lookup { mailbox: String },
}

/// How long a command waits for the daemon to take its request.
const TAKE_UP: Duration = Duration::from_secs(5);

/// `retry` and `resync`: leaves the request in the store for the daemon.
pub fn request(config: &Config, kind: &str, targets: &Targets) -> Result<u8, CliError> {
    if targets.rooms.is_empty() && !targets.all {
        return Err(CliError::Usage(format!("name the rooms to {kind}, or give --all")));
    }
    let store = Store::open(&config.store_path())?;
    if !targets.rooms.is_empty() {
        let known: Vec<String> = store.sync_rows(None)?.into_iter().map(|r| r.room).collect();
        let unknown: Vec<&String> = targets.rooms.iter().filter(|r| !known.contains(r)).collect();
        if !unknown.is_empty() {
            let list: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
            return Err(CliError::Usage(format!("unknown rooms: {}", list.join(", "))));
        }
    }
    let id = store.add_request(kind, &targets.rooms)?;
    let what = if targets.all {
        "every room".to_string()
    } else {
        format!("{} rooms", targets.rooms.len())
    };
    if wait_taken(config, &store, id)? {
        println!("The daemon took the {kind} request for {what}.");
    } else {
        println!("No daemon is running: the {kind} request for {what} waits in the store for the next start.");
    }
    Ok(0)
}

/// Waits until a running daemon has taken request `id`; false when none runs.
fn wait_taken(config: &Config, store: &Store, id: i64) -> Result<bool, CliError> {
    let start = Instant::now();
    while daemon::running(&config.queue.state_dir).is_some() {
        if !store.request_waiting(id)? {
            return Ok(true);
        }
        if start.elapsed() > TAKE_UP {
            return Err(CliError::Io(
                "the daemon runs but did not take the request within 5 s; see its log".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(false)
}

pub fn cache(config: &Config, action: CacheAction) -> Result<u8, CliError> {
    let mut store = Store::open(&config.store_path())?;
    match action {
        CacheAction::Refresh => refresh(config, &mut store),
        CacheAction::Show { json } => {
            let (users, at) = store.directory()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users).unwrap_or_default());
                return Ok(0);
            }
            match at {
                Some(at) => println!("{} users, read {}s ago", users.len(), (store::now() - at).max(0)),
                None => println!("The cache is empty: no refresh has succeeded yet."),
            }
            println!(
                "{:<24} {:<16} {:<10} {:<28} PERMISSION",
                "USER", "NUMBER", "EXTENSION", "NAME"
            );
            for u in &users {
                let name = format!(
                    "{} {}",
                    u.first_name.as_deref().unwrap_or(""),
                    u.last_name.as_deref().unwrap_or("")
                );
                println!(
                    "{:<24} {:<16} {:<10} {:<28} {}",
                    u.user_id,
                    u.number.as_deref().unwrap_or("-"),
                    u.extension.as_deref().unwrap_or("-"),
                    name.trim(),
                    u.call_permission.as_deref().unwrap_or("-")
                );
            }
            Ok(0)
        }
        CacheAction::Lookup { mailbox } => {
            let (users, at) = store.directory()?;
            if at.is_none() {
                println!("The cache is empty: no refresh has succeeded yet.");
                return Ok(1);
            }
            match Directory::new(users).resolve(&mailbox) {
                Resolution::Found(user) => {
                    println!("mailbox {mailbox} is Kandy user {user}");
                    Ok(0)
                }
                Resolution::Unresolved { reason, candidates } => {
                    println!("{reason}");
                    for c in candidates {
                        println!("  candidate: {c}");
                    }
                    Ok(1)
                }
            }
        }
    }
}

/// Through the daemon when it runs (it owns the link); else here, with the secrets.
fn refresh(config: &Config, store: &mut Store) -> Result<u8, CliError> {
    let before = store.directory_meta()?;
    if daemon::running(&config.queue.state_dir).is_some() {
        let id = store.add_request("refresh", &[])?;
        wait_taken(config, store, id)?;
        let limit = Instant::now() + Duration::from_secs(config.kandy.timeout_secs * 3 + 5);
        while Instant::now() < limit {
            let now = store.directory_meta()?;
            if now != before
                && let Some((users, _)) = now
            {
                println!("The daemon refreshed the cache: {users} users.");
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!("The daemon took the request but the refresh has not finished; see its log.");
        return Ok(1);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("cannot start the runtime: {e}")))?;
    // The login token is kept in the store, as the daemon keeps it.
    let tokens = Arc::new(Mutex::new(Store::open(&config.store_path())?));
    let client = Client::from_config(
        config,
        Hooks {
            tokens: Some(tokens),
            packets: None,
        },
    )?;
    let users = runtime.block_on(client.list_users())?;
    store.save_directory(&users, store::now())?;
    println!("Cache refreshed: {} users.", users.len());
    Ok(0)
}
