//! Crashes while taking events in: every event reported accepted (a spool file gone from
//! `incoming/`, an `enqueue` that printed its count) is in the store exactly once, and a
//! file committed but not yet removed when the process died is not taken in again.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Rng, Site, assert_exactly_once, markers, wait_for};

/// Ten check-ins marked `PREFIX{n}`; every other one has an id.
fn events(prefix: &str, first: usize) -> (String, Vec<String>) {
    let mut body = String::new();
    let mut marks = Vec::new();
    for n in first..first + 10 {
        let mark = format!("{prefix}{n}");
        let id = if n % 2 == 0 {
            format!("\"id\":\"{mark}\",")
        } else {
            String::new()
        };
        body.push_str(&format!(
            "{{{id}\"type\":\"check_in\",\"room\":\"{}\",\"guest\":{{\"id\":\"{n}\",\"last\":\"{mark}\"}}}}\n",
            n % 40
        ));
        marks.push(mark);
    }
    (body, marks)
}

#[test]
fn a_file_committed_but_not_removed_before_a_crash_is_not_taken_twice() {
    let site = Site::new();
    let (good, good_marks) = events("G", 0);
    let (mixed, mixed_marks) = events("M", 10);
    let mixed = format!("{mixed}{{\"type\":\"nonsense\"}}\n");
    std::fs::create_dir_all(site.incoming()).unwrap();
    site.drop_file("a.jsonl", good.as_bytes());
    site.drop_file("b.jsonl", mixed.as_bytes());

    let crashed = site.daemon_with(&[("KANDY_LINK_FAULT", "after-spool-commit")]);
    let status = { crashed }.child.wait().unwrap();
    assert!(!status.success(), "the fault point should have aborted the daemon");
    assert_eq!(
        site.waiting(),
        ["a.jsonl", "b.jsonl"],
        "the files were committed but not removed"
    );
    let before = markers(&site);
    assert!(
        good_marks.iter().chain(&mixed_marks).all(|m| before.get(m) == Some(&1)),
        "{before:?}"
    );

    let daemon = site.daemon();
    wait_for(Duration::from_secs(20), || site.waiting().is_empty());
    assert_eq!(
        markers(&site),
        before,
        "nothing is taken in twice, events without ids included"
    );
    let status = site.status();
    assert_eq!(status["events"]["accepted"], 20, "{status}");
    assert_eq!(status["events"]["rejected"], 1, "{status}");
    let report = std::fs::read_to_string(site.rejected().join("b.jsonl.error")).unwrap();
    assert!(report.contains("line 11: rejected: field `type`"), "{report}");
    // The records are dropped once the files are gone, so the same name and bytes may
    // come again later and are then new events.
    site.drop_file("a.jsonl", good.as_bytes());
    wait_for(Duration::from_secs(20), || site.waiting().is_empty());
    let after = markers(&site);
    assert_eq!(
        after.get("G1"),
        Some(&2),
        "an id-less event sent again later is a new event"
    );
    assert_eq!(after.get("G0"), Some(&1), "an event with an id is still taken once");
    drop(daemon);
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let mut rng = Rng::seeded();
    let site = Site::new();
    std::fs::create_dir_all(site.incoming()).unwrap();
    let mut files: Vec<(String, Vec<String>)> = Vec::new();
    let mut reported: Vec<Vec<String>> = Vec::new();
    let mut unreported: Vec<Vec<String>> = Vec::new();
    let mut next = 0;
    let kills = 20;
    for round in 0..kills {
        let daemon = site.daemon();
        // Producers keep writing while the daemon runs: spool files and enqueue runs.
        let mut runs = Vec::new();
        for k in 0..10 {
            let (body, marks) = events("S", next);
            next += 10;
            let name = format!("r{round:02}-{k:02}.jsonl");
            site.drop_file(&name, body.as_bytes());
            files.push((name, marks));
            if k % 5 == 0 {
                let (body, marks) = events("C", next);
                next += 10;
                runs.push(site.enqueue_maybe_killed(&format!("cli-{round}-{k}.jsonl"), &body, marks, &mut rng, 2));
            }
            std::thread::sleep(Duration::from_millis(rng.below(15)));
        }
        std::thread::sleep(Duration::from_millis(rng.below(120)));
        daemon.kill();
        for run in runs {
            match run.reported() {
                (true, marks) => reported.push(marks),
                (false, marks) => unreported.push(marks),
            }
        }
        // Whatever is gone from incoming/ was reported taken: its events must be stored.
        let now = markers(&site);
        let waiting = site.waiting();
        for (name, marks) in &files {
            if !waiting.contains(name) {
                for m in marks {
                    assert_eq!(
                        now.get(m),
                        Some(&1),
                        "round {round}: {name} is gone but {m} is stored {:?} times",
                        now.get(m)
                    );
                }
            }
        }
    }
    // A last run drains what is left.
    let daemon = site.daemon();
    wait_for(Duration::from_secs(60), || site.waiting().is_empty());
    assert!(daemon.stop().success(), "{}", site.daemon_log());

    let stored = markers(&site);
    let rows = assert_exactly_once(&site, &stored, &files, &reported, &unreported);
    eprintln!(
        "{kills} kills survived; {} spool events, {} enqueue runs reported, {} killed; {rows} events stored",
        files.iter().map(|(_, m)| m.len()).sum::<usize>(),
        reported.len(),
        unreported.len()
    );
}
