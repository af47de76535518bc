//! Privacy: events and rejected files older than `queue.keep_days` are removed (at start,
//! then hourly), room state stays; and what the daemon creates is closed to other users.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use common::{Site, text, wait_for};

const DAY: u64 = 86_400;

fn check_in(room: &str, last: &str) -> String {
    format!("{{\"type\":\"check_in\",\"room\":\"{room}\",\"guest\":{{\"id\":\"{room}\",\"last\":\"{last}\"}}}}\n")
}

fn backdate(path: &std::path::Path, days: u64) {
    let f = std::fs::File::options().append(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(days * DAY))
        .unwrap();
}

fn events(site: &Site) -> Vec<String> {
    let db = site.store();
    let mut stmt = db.prepare("SELECT room FROM events ORDER BY seq").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn events_and_rejected_files_older_than_keep_days_are_removed_and_rooms_stay() {
    let site = Site::new();
    site.rewrite_config(&site.config_text().replace("[queue]\n", "[queue]\nkeep_days = 2\n"));
    let daemon = site.daemon();
    for (room, last) in [("101", "Old"), ("102", "Older"), ("103", "New")] {
        let out = site.run(&["enqueue", "-"], &check_in(room, last));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    site.drop_file("old.json", b"{\"type\":\"nonsense\"}");
    wait_for(Duration::from_secs(20), || {
        site.rejected().join("old.json.error").exists()
    });
    site.drop_file("new.json", b"not json");
    wait_for(Duration::from_secs(20), || {
        site.rejected().join("new.json.error").exists()
    });
    assert!(daemon.stop().success(), "{}", site.daemon_log());

    // Three days ago, for two events and one rejected file with its report.
    site.store()
        .execute(
            "UPDATE events SET accepted_at = accepted_at - ?1 WHERE room IN ('101', '102')",
            [3 * DAY as i64],
        )
        .unwrap();
    backdate(&site.rejected().join("old.json"), 3);
    backdate(&site.rejected().join("old.json.error"), 3);
    // A producer's old file rejected today is dated by its report: it stays.
    backdate(&site.rejected().join("new.json"), 30);

    let daemon = site.daemon();
    wait_for(Duration::from_secs(20), || events(&site) == ["103"]);
    assert_eq!(
        common::names(&site.rejected()),
        ["new.json", "new.json.error"],
        "the old rejected file went with its report"
    );
    let rooms = site.json(&["rooms", "--json"]);
    for room in ["101", "102", "103"] {
        let r = rooms.as_array().unwrap().iter().find(|r| r["room"] == room);
        assert!(
            r.is_some_and(|r| r.to_string().contains('"')),
            "room {room} kept: {rooms}"
        );
    }
    assert!(
        rooms.to_string().contains("Older"),
        "room state outlives its events: {rooms}"
    );
    assert_eq!(site.status()["events"]["accepted"], 3, "the counters are kept");
    assert!(daemon.stop().success(), "{}", site.daemon_log());
}

#[test]
fn files_the_daemon_creates_are_not_readable_by_other_users() {
    let site = Site::new();
    let daemon = site.daemon();
    let out = site.run(&["enqueue", "-"], &check_in("101", "Private"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    site.drop_file("bad.json", b"{}");
    wait_for(Duration::from_secs(20), || {
        site.rejected().join("bad.json.error").exists()
    });
    let mut checked = Vec::new();
    for dir in ["state", "log", "spool/rejected"] {
        for name in common::names(&site.path(dir)) {
            if name == "bad.json" {
                continue; // the producer's own file, moved: its mode is the producer's
            }
            let path = site.path(dir).join(&name);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o007, 0, "{} has mode {mode:o}", path.display());
            checked.push(format!("{dir}/{name}"));
        }
    }
    for dir in ["state", "spool", "spool/incoming", "spool/rejected", "log"] {
        let mode = std::fs::metadata(site.path(dir)).unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "{dir} has mode {mode:o}");
    }
    for must in [
        "state/kandy-link.db",
        "state/kandy-link.db-wal",
        "state/kandy-link.db-shm",
    ] {
        assert!(checked.iter().any(|c| c == must), "{must} not checked: {checked:?}");
    }
    assert!(checked.iter().any(|c| c.starts_with("log/")), "{checked:?}");
    drop(daemon);
}
