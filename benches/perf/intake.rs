//! Benchmark 3, intake: events per second through the spool, durable (WAL,
//! `synchronous=FULL`), against a bare loop of single-row SQLite commits with the same
//! settings, measured in the same run.

use std::time::Instant;

use kandy_link::config::CallPermissions;
use kandy_link::intake::spool::Spool;
use kandy_link::store::{Rules, Store};

const FILES: usize = 1_000;
const PER_FILE: usize = 10;
const BARE_COMMITS: usize = 2_000;

fn spool_rate(dir: &std::path::Path) -> f64 {
    let mut store = Store::open(&dir.join("state/kandy-link.db")).unwrap();
    let mut spool = Spool::open(&dir.join("spool"), 1 << 20).unwrap();
    for f in 0..FILES {
        let mut body = String::new();
        for e in 0..PER_FILE {
            let n = f * PER_FILE + e;
            body.push_str(&format!(
                "{{\"id\":\"b-{n}\",\"type\":\"check_in\",\"room\":\"{}\",\"guest\":{{\"id\":\"{n}\",\"first\":\"Ann\",\"last\":\"Guest{n}\"}}}}\n",
                100 + n % 1000
            ));
        }
        std::fs::write(spool.incoming.join(format!("f{f:05}.jsonl")), body).unwrap();
    }
    let permissions = CallPermissions::default();
    let rules = Rules {
        permissions: &permissions,
        configured_rooms: &[],
    };
    let start = Instant::now();
    let mut accepted = 0;
    loop {
        let pass = spool.pass(&mut store, rules).unwrap();
        accepted += pass.accepted;
        if pass.files == 0 {
            break;
        }
    }
    assert_eq!(accepted, FILES * PER_FILE);
    accepted as f64 / start.elapsed().as_secs_f64()
}

fn bare_rate(dir: &std::path::Path) -> f64 {
    let conn = rusqlite::Connection::open(dir.join("bare.db")).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).unwrap();
    conn.execute_batch("PRAGMA synchronous=FULL; CREATE TABLE events (seq INTEGER PRIMARY KEY, raw TEXT NOT NULL);")
        .unwrap();
    assert_eq!(mode, "wal");
    let raw = r#"{"type":"check_in","room":"101","guest":{"id":"1","first":"Ann","last":"Guest"}}"#;
    let start = Instant::now();
    for _ in 0..BARE_COMMITS {
        conn.execute("INSERT INTO events (raw) VALUES (?1)", [raw]).unwrap();
    }
    BARE_COMMITS as f64 / start.elapsed().as_secs_f64()
}

/// (baseline events/s, spool events/s).
pub fn run(dir: &std::path::Path) -> super::Row {
    let bare = bare_rate(dir);
    let spool = spool_rate(dir);
    super::Row {
        name: format!("3. intake: {} events as {FILES} spool files, durable", FILES * PER_FILE),
        baseline: format!("bare single-row commits: {bare:.0} events/s"),
        measured: format!("{spool:.0} events/s"),
        ratio: spool / bare,
        target: ">= 5.0",
        ok: spool / bare >= 5.0,
    }
}
