//! Fault injection for the crash tests: `KANDY_LINK_FAULT=NAME` makes the process abort
//! (as `kill -9` would) when it reaches the point called NAME. Unset, it costs one
//! cached lookup. The points are named where they are placed.

use std::sync::OnceLock;

/// Aborts the process if `KANDY_LINK_FAULT` names this point.
pub fn point(name: &str) {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    let wanted = FAULT.get_or_init(|| std::env::var("KANDY_LINK_FAULT").ok());
    if wanted.as_deref() == Some(name) {
        eprintln!("kandy-link: fault point {name} reached; aborting");
        std::process::abort();
    }
}
