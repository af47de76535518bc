//! Hostile input through the spool and `enqueue`: arbitrary bytes, arbitrary JSON and
//! event-shaped nonsense (property-based), then the awkward cases by hand: very large
//! files, deep nesting, invalid UTF-8, NUL bytes, symlinks, FIFOs, folders and odd names.
//! The daemon never panics or stops, never half-applies an event, and every rejection
//! names its rule.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::Cell;
use std::time::Duration;

use common::{Daemon, Site, text, wait_for};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

/// Stored events, and the accepted, duplicate and rejected counters.
fn counts(site: &Site) -> (i64, i64, i64, i64) {
    let rows: i64 = site
        .store()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    let s = site.status();
    let n = |k: &str| s["events"][k].as_i64().unwrap();
    (rows, n("accepted"), n("duplicate"), n("rejected"))
}

fn alive(site: &Site, daemon: &mut Daemon) {
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon stopped: {}",
        site.daemon_log()
    );
    assert!(!site.daemon_log().contains("panicked"), "{}", site.daemon_log());
}

/// Every `rejected:` in a report or on standard error is followed by a rule.
fn names_rules(report: &str) {
    for (i, part) in report.split("rejected: ").enumerate().skip(1) {
        let rule = part.lines().next().unwrap_or("");
        assert!(rule.trim().len() >= 8, "rejection {i} names no rule: {report}");
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        prop::sample::select(vec![
            "101",
            "1001",
            "",
            "check_in",
            "2",
            "international",
            "a/b",
            "x\u{0}y"
        ])
        .prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "type",
            "room",
            "guest",
            "id",
            "first",
            "last",
            "title",
            "from",
            "level",
            "guest_id",
            "call_permission"
        ])
        .prop_map(String::from),
        any::<String>(),
    ];
    leaf().prop_recursive(4, 40, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Shaped like an event: a known type, then fields from the events' vocabulary.
fn event_like() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec![
        "check_in",
        "check_out",
        "guest_change",
        "room_move",
        "call_permission",
        "sync",
        "nonsense",
    ]);
    (kind, json(), json(), json(), json()).prop_map(|(kind, room, guest, from, level)| {
        let mut v = serde_json::json!({ "type": kind });
        for (k, x) in [("room", room), ("guest", guest), ("from", from), ("level", level)] {
            if !x.is_null() {
                v[k] = x;
            }
        }
        v
    })
}

/// One input: its bytes, and whether it goes as `.jsonl` (else `.json`).
fn input() -> impl Strategy<Value = (Vec<u8>, bool)> {
    let lines = prop::collection::vec(prop_oneof![json(), event_like()], 1..5)
        .prop_map(|vs| vs.iter().map(|v| format!("{v}\n")).collect::<String>().into_bytes());
    (
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            json().prop_map(|v| v.to_string().into_bytes()),
            event_like().prop_map(|v| v.to_string().into_bytes()),
            lines,
        ],
        any::<bool>(),
    )
}

#[test]
fn arbitrary_bytes_and_json_never_panic_nor_half_apply() {
    let site = Site::new();
    let daemon = std::cell::RefCell::new(site.daemon());
    let case = Cell::new(0);
    let mut runner = TestRunner::new(Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&input(), |(bytes, jsonl)| {
            let n = case.get();
            case.set(n + 1);
            let name = format!("p{n:04}.{}", if jsonl { "jsonl" } else { "json" });
            // Through the spool.
            let before = counts(&site);
            site.drop_file(&name, &bytes);
            wait_for(Duration::from_secs(20), || !site.incoming().join(&name).exists());
            let after = counts(&site);
            let (rows, acc, dup, rej) = (
                after.0 - before.0,
                after.1 - before.1,
                after.2 - before.2,
                after.3 - before.3,
            );
            assert_eq!(rows, acc, "every event counted accepted is stored, no other");
            let error = site.rejected().join(format!("{name}.error"));
            if rej == 0 {
                assert!(!error.exists(), "{name} accepted whole yet rejected");
                // Taken whole: its events (none, for an empty or blank file) are in.
                let blank = bytes
                    .split(|b| *b == b'\n')
                    .all(|l| l.iter().all(u8::is_ascii_whitespace));
                assert!(acc + dup >= 1 || blank, "{name} left no trace");
            } else {
                let report = std::fs::read_to_string(&error).unwrap();
                names_rules(&report);
                assert!(
                    report.contains(&format!("{} of ", acc + dup)) || report.contains("not taken in"),
                    "{report}"
                );
            }
            // Through `enqueue`.
            let path = site.path("input");
            std::fs::write(&path, &bytes).unwrap();
            let before = counts(&site);
            let out = site.cmd(&["enqueue", path.to_str().unwrap()]).output().unwrap();
            let after = counts(&site);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "{}", text(&out));
            assert_eq!(after.0 - before.0, after.1 - before.1, "{}", text(&out));
            let summary = format!(
                "{} accepted, {} duplicate, {} rejected",
                after.1 - before.1,
                after.2 - before.2,
                after.3 - before.3
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), summary, "{}", text(&out));
            assert_eq!(
                out.status.code(),
                Some(if after.3 > before.3 { 1 } else { 0 }),
                "{}",
                text(&out)
            );
            names_rules(&stderr);
            alive(&site, &mut daemon.borrow_mut());
            Ok(())
        })
        .unwrap();
    eprintln!("{} hostile inputs through the spool and enqueue", case.get());
    drop(daemon);
}

fn check_in(room: &str, last: &str) -> String {
    format!("{{\"type\":\"check_in\",\"room\":\"{room}\",\"guest\":{{\"last\":\"{last}\"}}}}\n")
}

fn report(site: &Site, name: &str) -> String {
    std::fs::read_to_string(site.rejected().join(format!("{name}.error"))).unwrap_or_else(|e| {
        panic!(
            "no report for {name}: {e}; rejected/ holds {:?}",
            common::names(&site.rejected())
        )
    })
}

#[test]
fn awkward_entries_in_incoming_are_rejected_with_their_reason_and_good_ones_taken() {
    use std::os::unix::ffi::OsStrExt;
    let site = Site::new();
    let mut daemon = site.daemon();
    let inc = site.incoming();
    std::fs::write(site.path("outside.json"), check_in("101", "Outside")).unwrap();
    std::os::unix::fs::symlink(site.path("outside.json"), inc.join("link.json")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(inc.join("pipe.json"))
        .status()
        .unwrap();
    assert!(fifo.success());
    std::fs::create_dir(inc.join("folder.json")).unwrap();
    std::fs::write(inc.join("notes.txt"), "hello").unwrap();
    let mut big = vec![b' '; 2 << 20];
    big.extend_from_slice(check_in("101", "Big").as_bytes());
    site.drop_file("big.json", &big);
    site.drop_file("deep.json", "[".repeat(100_000).as_bytes());
    let nested = format!("{}{}", "{\"a\":".repeat(300), "}".repeat(300));
    let deep_field =
        format!("{{\"type\":\"check_in\",\"room\":\"102\",\"guest\":{{\"last\":\"Deep\",\"x\":{nested}}}}}\n");
    site.drop_file(
        "deep-field.jsonl",
        format!("{}{deep_field}", check_in("102", "BeforeDeep")).as_bytes(),
    );
    let mut utf8 = check_in("103", "GoodUtf8").into_bytes();
    utf8.extend_from_slice(b"{\"type\":\"check_in\",\"room\":\"103\",\"guest\":{\"last\":\"\xff\xfe\"}}\n");
    site.drop_file("utf8.jsonl", &utf8);
    site.drop_file(
        "nul.jsonl",
        b"{\"type\":\"check_in\",\"room\":\"104\",\"guest\":{\"last\":\"a\0b\"}}\n\0\0\0\n",
    );
    let odd = [
        "a b.json",
        "\u{fc}n\u{ef} \u{1f600}.json",
        "new\nline.json",
        "-dash.json",
        "semi;$(x)`y`.json",
    ];
    for (i, name) in odd.iter().enumerate() {
        site.drop_file(name, check_in("105", &format!("Odd{i}")).as_bytes());
    }
    let bad_name = std::ffi::OsStr::from_bytes(b"bad\xff.json");
    std::fs::write(inc.join(bad_name), check_in("106", "BadName")).unwrap();

    wait_for(Duration::from_secs(30), || site.waiting().is_empty());
    // A good file after the FIFO and the rest: the daemon did not hang on any of them.
    site.drop_file("zz-after.json", check_in("107", "After").as_bytes());
    wait_for(Duration::from_secs(30), || site.waiting().is_empty());
    alive(&site, &mut daemon);

    for (name, why) in [
        ("link.json", "symbolic link"),
        ("pipe.json", "FIFO"),
        ("folder.json", "folder"),
        ("notes.txt", "neither in .json nor in .jsonl"),
        ("big.json", "queue.max_file_bytes"),
        ("deep.json", "recursion limit"),
        ("deep-field.jsonl", "recursion limit"),
        ("utf8.jsonl", "UTF-8"),
        ("nul.jsonl", "rejected: "),
        ("bad_.json", "not valid UTF-8"),
    ] {
        let r = report(&site, name);
        assert!(r.contains(why), "{name}: {r}");
        names_rules(&r);
    }
    let stored = common::markers(&site);
    for m in [
        "BeforeDeep",
        "GoodUtf8",
        "Odd0",
        "Odd1",
        "Odd2",
        "Odd3",
        "Odd4",
        "After",
    ] {
        assert_eq!(stored.get(m), Some(&1), "{m}: {stored:?}");
    }
    for m in ["Outside", "Big", "Deep", "BadName"] {
        assert_eq!(stored.get(m), None, "{m} must not be taken in: {stored:?}");
    }
    assert_eq!(
        std::fs::read_to_string(site.path("outside.json")).unwrap(),
        check_in("101", "Outside")
    );

    // The command line: the same rules, the exit status and standard error.
    for (input, why) in [
        ("[".repeat(100_000), "recursion limit"),
        (" ".repeat(2 << 20), "queue.max_file_bytes"),
        (deep_field.clone(), "recursion limit"),
        ("\u{0}\n".to_string(), "not valid JSON"),
    ] {
        let before = counts(&site);
        let out = site.run(&["enqueue", "-"], &input);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{}", text(&out));
        names_rules(&stderr);
        let after = counts(&site);
        assert_eq!(
            (after.0, after.1, after.3),
            (before.0, before.1, before.3 + 1),
            "{}",
            text(&out)
        );
    }
    alive(&site, &mut daemon);
    drop(daemon);
}
