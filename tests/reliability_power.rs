//! Power loss and a full disk, as far as they can be shown here. Durable commits (WAL,
//! `synchronous=FULL`, read back on every connection) are tested in `src/store/tests.rs`.
//! Here a file-size limit (`RLIMIT_FSIZE`, SIGXFSZ ignored, so writes fail with EFBIG as
//! on a full disk) makes the store's writes fail under the running daemon: intake stops
//! with a clear error instead of going on, and a restart takes in everything, once.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Site, markers, text, wait_for};

/// `kandy-link ARGS` with writes beyond `bytes` failing (as root, a read-only folder
/// would not stop writes; the limit does).
fn limited(site: &Site, bytes: u64, args: &[&str]) -> Command {
    let mut c = Command::new("prlimit");
    c.arg(format!("--fsize={bytes}"))
        .args(["--", "sh", "-c", "trap '' XFSZ; exec \"$0\" \"$@\"", BIN, "--config"])
        .arg(&site.config)
        .args(args);
    c
}

fn state_bytes(site: &Site) -> u64 {
    common::names(&site.path("state"))
        .iter()
        .map(|n| std::fs::metadata(site.path("state").join(n)).unwrap().len())
        .max()
        .unwrap()
}

/// `count` check-ins (with guest ids: no warnings fill standard error) marked `TAG-n`.
fn events(tag: &str, count: usize) -> (String, Vec<String>) {
    let mut body = String::new();
    let mut marks = Vec::new();
    for n in 0..count {
        let mark = format!("{tag}-{n}-{}", "x".repeat(40));
        let room = 100 + n % 40;
        body.push_str(&format!(
            "{{\"type\":\"check_in\",\"room\":\"{room}\",\"guest\":{{\"id\":\"g{room}\",\"last\":\"{mark}\"}}}}\n"
        ));
        marks.push(mark);
    }
    (body, marks)
}

#[test]
fn a_full_disk_stops_intake_with_a_clear_error_and_a_restart_loses_nothing() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("prlimit is not installed; skipped");
        return;
    }
    let site = Site::new();
    assert!(site.daemon().stop().success(), "{}", site.daemon_log());
    let limit = state_bytes(&site) + 120_000;

    // The command line under the limit: an error, and nothing of it in the store.
    let (body, cli_marks) = events("Cli", 2000);
    let input = site.path("cli.jsonl");
    std::fs::write(&input, &body).unwrap();
    let out = limited(&site, limit, &["enqueue", input.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the store") && stderr.contains("disk I/O error"),
        "{}",
        text(&out)
    );
    assert!(markers(&site).is_empty(), "a failed enqueue stored something");

    // The daemon under the limit, producers writing on.
    let log = std::fs::File::create(site.path("daemon.stderr")).unwrap();
    let mut daemon = limited(&site, limit, &["run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(20), || site.status()["daemon"]["running"] == true);
    let mut files = Vec::new();
    for k in 0..30 {
        let (body, marks) = events(&format!("F{k}"), 100);
        let name = format!("f{k:02}.jsonl");
        site.drop_file(&name, body.as_bytes());
        files.push((name, marks));
        std::thread::sleep(Duration::from_millis(30));
    }
    let start = Instant::now();
    let status = loop {
        if let Some(s) = daemon.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the daemon went on with a full disk"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{status:?}");
    let log = site.daemon_log();
    assert!(log.contains("the store") && log.contains("disk I/O error"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let before = markers(&site);
    let waiting = site.waiting();
    assert!(!waiting.is_empty(), "the limit was never reached");
    for (name, marks) in &files {
        let stored: Vec<usize> = marks.iter().map(|m| before.get(m).copied().unwrap_or(0)).collect();
        if waiting.contains(name) {
            assert!(
                stored.iter().all(|c| *c == 0) || stored.iter().all(|c| *c == 1),
                "{name}: {stored:?}"
            );
        } else {
            assert!(stored.iter().all(|c| *c == 1), "{name} is gone: {stored:?}");
        }
    }

    // systemd restarts it, the disk has room again: everything comes in, once.
    let daemon = site.daemon();
    wait_for(Duration::from_secs(60), || site.waiting().is_empty());
    assert!(daemon.stop().success(), "{}", site.daemon_log());
    let after = markers(&site);
    for (name, marks) in &files {
        for m in marks {
            assert_eq!(after.get(m), Some(&1), "{name}: {m}");
        }
    }
    assert!(cli_marks.iter().all(|m| !after.contains_key(m)));
    eprintln!(
        "full disk: {} of {} files taken before intake stopped; all {} events in after the restart",
        files.len() - waiting.len(),
        files.len(),
        files.len() * 100
    );
}
