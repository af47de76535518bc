//! Fault injection for the crash tests: `KANDY_LINK_FAULT=NAME` makes the process abort
//! (as `kill -9` would) when it reaches the point called NAME. Unset, it costs one
//! cached lookup. The points are named where they are placed.
//!
//! A stall point (`stall`) instead blocks the thread that reaches it, for good, as a
//! loop stuck in a system call would: the watchdog test shows systemd hears no more
//! pings. `KANDY_LINK_FAULT=NAME@SECS` lets the point pass for SECS seconds first.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn wanted() -> Option<&'static str> {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    FAULT.get_or_init(|| std::env::var("KANDY_LINK_FAULT").ok()).as_deref()
}

/// Aborts the process if `KANDY_LINK_FAULT` names this point.
pub fn point(name: &str) {
    if wanted() == Some(name) {
        eprintln!("kandy-link: fault point {name} reached; aborting");
        std::process::abort();
    }
}

/// Blocks the calling thread forever if `KANDY_LINK_FAULT` names this stall point,
/// at once or, with `@SECS`, once that long has passed since the point was first reached.
pub fn stall(name: &str) {
    let Some(fault) = wanted() else { return };
    let (fault_name, after) = match fault.split_once('@') {
        Some((n, secs)) => (n, secs.parse().map(Duration::from_secs).unwrap_or_default()),
        None => (fault, Duration::ZERO),
    };
    if fault_name != name {
        return;
    }
    static FIRST: OnceLock<Instant> = OnceLock::new();
    if FIRST.get_or_init(Instant::now).elapsed() < after {
        return;
    }
    eprintln!("kandy-link: stall point {name} reached; this thread stops here");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
