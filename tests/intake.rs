//! Events in through `enqueue`, the helpers and the spool, as a technician would check
//! them: `rooms --json`, `status --json`, the spool folders.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{EXAMPLES, Site, names, text, wait_for};
use serde_json::Value;

fn room<'a>(rooms: &'a Value, name: &str) -> &'a Value {
    rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room"] == name)
        .unwrap_or_else(|| panic!("no room {name} in {rooms}"))
}

#[test]
fn the_spec_examples_leave_both_rooms_vacant_and_internal_and_a_resend_adds_nothing() {
    let site = Site::new();
    let out = site.run(&["enqueue", "-"], EXAMPLES);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "5 accepted, 0 duplicate, 0 rejected"
    );

    let rooms = site.json(&["rooms", "--json"]);
    for r in ["101", "205"] {
        let v = room(&rooms, r);
        assert_eq!(v["occupied"], false, "{v}");
        assert_eq!(v["wanted"]["call_permission"], "internal", "{v}");
        assert_eq!(v["wanted"]["first_name"], "Room", "{v}");
        assert_eq!(v["guests"], serde_json::json!([]), "{v}");
    }

    // The same five, each with an id, fed twice: the second time adds nothing.
    let with_ids: String = EXAMPLES
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["id"] = Value::String(format!("again-{i}"));
            format!("{v}\n")
        })
        .collect();
    let first = site.run(&["enqueue", "-"], &with_ids);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let before = (
        site.json(&["rooms", "--json"]),
        site.status()["events"]["accepted"].clone(),
    );
    let again = site.run(&["enqueue", "-"], &with_ids);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "0 accepted, 5 duplicate, 0 rejected"
    );
    let after = (
        site.json(&["rooms", "--json"]),
        site.status()["events"]["accepted"].clone(),
    );
    assert_eq!(before, after);
    let rows: i64 = site
        .store()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 10);
}

#[test]
fn enqueue_reports_each_bad_event_and_exits_1() {
    let site = Site::new();
    let input = "{\"type\":\"check_out\",\"room\":\"1\"}\n{\"type\":\"check_in\",\"room\":\"2\",\"guest\":{\"first\":\"A\"}}\nnot json\n";
    let out = site.run(&["enqueue", "-"], input);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1 accepted, 0 duplicate, 2 rejected"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2: rejected: field `guest.last`: is required"),
        "{stderr}"
    );
    assert!(stderr.contains("line 3: rejected: is not valid JSON"), "{stderr}");
    assert_eq!(site.status()["events"]["rejected"], 2);
}

#[test]
fn the_helpers_check_in_move_and_check_out() {
    let site = Site::new();
    let ok = |args: &[&str]| {
        let out = site.run(args, "");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    };
    ok(&[
        "check-in",
        "301",
        "--last",
        "Smith",
        "--first",
        "Ann",
        "--guest-id",
        "g1",
        "--permission",
        "1",
    ]);
    ok(&["check-in", "301", "--last", "Jones", "--guest-id", "g2"]);
    let rooms = site.json(&["rooms", "301", "--json"]);
    let r = room(&rooms, "301");
    assert_eq!(r["guests"].as_array().unwrap().len(), 2);
    assert_eq!(r["wanted"]["first_name"], "Ann");
    assert_eq!(r["wanted"]["call_permission"], "local");
    ok(&["move", "301", "302"]);
    ok(&["permission", "302", "national"]);
    ok(&["check-out", "302", "--guest-id", "g1"]);
    let rooms = site.json(&["rooms", "--json"]);
    assert_eq!(room(&rooms, "301")["occupied"], false);
    let moved = room(&rooms, "302");
    assert_eq!(moved["wanted"]["last_name"], "Jones", "{moved}");
    assert_eq!(moved["wanted"]["call_permission"], "national");

    let out = site.run(&["permission", "302", "7"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("code `7` has no mapping"),
        "{}",
        text(&out)
    );
    let out = site.run(&["rooms", "999"], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn the_daemon_takes_a_thousand_events_in_a_hundred_files_and_rejects_bad_lines() {
    let site = Site::new();
    let daemon = site.daemon();
    for f in 0..100 {
        let mut body = String::new();
        for e in 0..10 {
            let n = f * 10 + e;
            body.push_str(&format!(
                "{{\"id\":\"ev-{n}\",\"type\":\"check_in\",\"room\":\"{}\",\"guest\":{{\"id\":\"{n}\",\"last\":\"Guest{n}\"}}}}\n",
                100 + n % 50
            ));
        }
        site.drop_file(&format!("batch-{f:03}.jsonl"), body.as_bytes());
    }
    let bad = "{\"type\":\"check_out\",\"room\":\"100\",\"guest_id\":\"0\"}\n{\"type\":\"check_in\",\"room\":\"100\"}\n\n{\"type\":\"call_permission\",\"room\":\"101\",\"level\":\"9\"}\r\n{\"type\":\"check_out\",\"room\":\"101\",\"guest_id\":\"1\"}\n";
    site.drop_file("zz-bad.jsonl", bad.as_bytes());
    wait_for(Duration::from_secs(30), || site.waiting().is_empty());

    let status = site.status();
    assert_eq!(status["events"]["accepted"], 1002, "{status}");
    assert_eq!(status["events"]["rejected"], 2, "{status}");
    // No portal answers this site: the link is degraded, intake goes on.
    assert_eq!(status["state"], "degraded", "{status}");
    assert_eq!(status["daemon"]["running"], true);
    assert_eq!(status["rooms"]["known"], 50);
    assert!(site.waiting().is_empty());
    assert_eq!(names(&site.rejected()), ["zz-bad.jsonl", "zz-bad.jsonl.error"]);
    let report = std::fs::read_to_string(site.rejected().join("zz-bad.jsonl.error")).unwrap();
    assert!(report.contains("2 of 4 events accepted, 2 rejected"), "{report}");
    assert!(report.contains("line 1: accepted"), "{report}");
    assert!(
        report.contains("line 2: rejected: field `guest`: is required"),
        "{report}"
    );
    assert!(
        report.contains("line 4: rejected: field `level`: class-of-service code `9` has no mapping"),
        "{report}"
    );
    assert!(report.contains("line 5: accepted"), "{report}");
    // The good lines were applied: guest 0 left room 100, guest 1 left room 101.
    let rooms = site.json(&["rooms", "--json"]);
    let guests = |r: &str| {
        room(&rooms, r)["guests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(!guests("100").contains(&"0".to_string()) && guests("100").contains(&"50".to_string()));
    assert!(!guests("101").contains(&"1".to_string()));

    // A second daemon on the same store refuses, naming the first one's pid.
    let out = site.run(&["run"], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("(pid {})", daemon.child.id())),
        "{}",
        text(&out)
    );

    assert!(daemon.stop().success());
    let status = site.status();
    assert_eq!(status["state"], "stopped");
    assert_eq!(status["daemon"]["running"], false);
}

#[test]
fn anything_but_a_json_file_goes_to_rejected_unopened() {
    let site = Site::new();
    let daemon = site.daemon();
    let inc = site.incoming();
    std::fs::create_dir(inc.join("a-folder")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", inc.join("b-link.json")).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(inc.join("c-fifo.jsonl"))
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(inc.join("d-notes.txt"), "hello").unwrap();
    site.drop_file("e-big.json", &vec![b' '; 2 * 1024 * 1024]);
    site.drop_file("f-one.json", b"{\n  \"type\": \"check_out\",\n  \"room\": \"7\"\n}\n");
    // Twice the same name: the second copy gets a suffix.
    site.drop_file("g-bad.json", b"[]");
    wait_for(Duration::from_secs(20), || site.waiting().is_empty());
    site.drop_file("g-bad.json", b"[]");
    std::fs::write(inc.join("still-writing.tmp"), "{").unwrap();
    wait_for(Duration::from_secs(20), || site.waiting() == ["still-writing.tmp"]);

    let rejected = names(&site.rejected());
    for (name, why) in [
        ("a-folder", "it is a folder"),
        ("b-link.json", "symbolic link"),
        ("c-fifo.jsonl", "not a regular file"),
        ("d-notes.txt", "neither in .json nor in .jsonl"),
        ("e-big.json", "more than queue.max_file_bytes (1048576)"),
        ("g-bad.json", "must be a JSON object"),
        ("g-bad.json.1", "must be a JSON object"),
    ] {
        assert!(rejected.contains(&name.to_string()), "{name} not in {rejected:?}");
        let report = std::fs::read_to_string(site.rejected().join(format!("{name}.error"))).unwrap();
        assert!(report.contains(why), "{name}: {report}");
    }
    assert_eq!(site.status()["events"]["accepted"], 1);
    assert_eq!(site.status()["events"]["rejected"], 7);
    drop(daemon);
}
