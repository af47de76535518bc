//! Crashes of the whole link: SIGKILL at random moments while producers feed a burst of
//! 2,000 events through the spool and the command line at once and the link sends to
//! kandy-sim. Every event reported accepted is in the store exactly once, nothing is
//! half-taken, and every room in Kandy ends as the stored events say in commit order.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Rng, Site, assert_exactly_once, assert_no_secrets, markers, seeded_user, text, wait_for};
use kandy_link::sim::{self, Options, Sim};

const ROOMS: usize = 18;
const KILLS: usize = 20;

/// Event `n`: mostly a check-in of the room's one guest marked `K{n}`, sometimes a
/// check-out of that guest (marked by its id `X{n}`).
fn event(rng: &mut Rng, n: usize) -> (String, String) {
    let room = 1001 + rng.below(ROOMS as u64);
    if rng.below(6) == 0 {
        let mark = format!("X{n}");
        let line =
            format!("{{\"id\":\"{mark}\",\"type\":\"check_out\",\"room\":\"{room}\",\"guest_id\":\"g{room}\"}}\n");
        (line, mark)
    } else {
        let mark = format!("K{n}");
        let line = format!(
            "{{\"type\":\"check_in\",\"room\":\"{room}\",\"guest\":{{\"id\":\"g{room}\",\"first\":\"G\",\"last\":\"{mark}\"}}}}\n"
        );
        (line, mark)
    }
}

fn batch(rng: &mut Rng, next: &mut usize, count: usize) -> (String, Vec<String>) {
    let mut body = String::new();
    let mut marks = Vec::new();
    for _ in 0..count {
        let (line, mark) = event(rng, *next);
        *next += 1;
        body.push_str(&line);
        marks.push(mark);
    }
    (body, marks)
}

/// Each marker's count in the store: check-ins by guest name, check-outs by id.
fn stored(site: &Site) -> HashMap<String, usize> {
    let mut out = markers(site);
    let db = site.store();
    let mut stmt = db.prepare("SELECT id FROM events WHERE id IS NOT NULL").unwrap();
    for id in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        *out.entry(id.unwrap()).or_insert(0) += 1;
    }
    out
}

/// What each room's Kandy user must show: the last stored event for it, by `seq`.
fn expected(site: &Site) -> HashMap<usize, (String, String, String)> {
    let db = site.store();
    let mut stmt = db.prepare("SELECT room, type, raw FROM events ORDER BY seq").unwrap();
    let mut out = HashMap::new();
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })
        .unwrap();
    for row in rows {
        let (room, kind, raw) = row.unwrap();
        let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let i = room.parse::<usize>().unwrap() - 1001;
        let shows = if kind == "check_in" {
            (
                "G".into(),
                v["guest"]["last"].as_str().unwrap().into(),
                "international".into(),
            )
        } else {
            ("Room".into(), String::new(), "internal".into())
        };
        out.insert(i, shows);
    }
    out
}

fn shows(sim: &Sim, i: usize) -> (String, String, String) {
    let u = sim.user(&seeded_user(i)).unwrap();
    (
        u.first_name.unwrap_or_default(),
        u.last_name.unwrap_or_default(),
        u.call_permission.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_twenty_times_during_a_burst_loses_nothing_and_every_room_converges() {
    let mut rng = Rng::seeded();
    let sim = sim::start(Options {
        users: ROOMS,
        latency: Duration::from_millis(15),
        ..Options::default()
    })
    .await
    .unwrap();
    let site = Site::for_sim(
        &sim,
        "enable_debug = true\nlevel = \"trace\"\n[scheduling]\ninterval_secs = 1\nretries = 2\n",
    );
    std::fs::create_dir_all(site.incoming()).unwrap();
    let mut tokens = vec![];
    let mut files: Vec<(String, Vec<String>)> = Vec::new();
    let (mut reported, mut unreported) = (Vec::new(), Vec::new());
    let mut next = 0;
    for round in 0..KILLS {
        let daemon = site.daemon();
        let mut runs = Vec::new();
        for k in 0..10 {
            let (body, marks) = batch(&mut rng, &mut next, 8);
            let name = format!("r{round:02}-{k:02}.jsonl");
            site.drop_file(&name, body.as_bytes());
            files.push((name, marks));
            if k % 5 == 0 {
                let (body, marks) = batch(&mut rng, &mut next, 10);
                runs.push(site.enqueue_maybe_killed(&format!("cli-{round}-{k}.jsonl"), &body, marks, &mut rng, 3));
            }
            std::thread::sleep(Duration::from_millis(rng.below(20)));
        }
        // Anywhere from mid-intake to mid-sending.
        std::thread::sleep(Duration::from_millis(rng.below(1200)));
        daemon.kill();
        tokens.push(sim.token());
        for run in runs {
            match run.reported() {
                (true, marks) => reported.push(marks),
                (false, marks) => unreported.push(marks),
            }
        }
        let now = stored(&site);
        let waiting = site.waiting();
        for (name, marks) in files.iter().filter(|(n, _)| !waiting.contains(n)) {
            for m in marks {
                assert_eq!(
                    now.get(m),
                    Some(&1),
                    "round {round}: {name} is gone, {m} stored {:?} times",
                    now.get(m)
                );
            }
        }
    }
    assert_eq!(next, 2000, "events produced");

    let daemon = site.daemon();
    wait_for(Duration::from_secs(60), || site.waiting().is_empty());
    let start = Instant::now();
    let want = expected(&site);
    let mut last = HashMap::new();
    while start.elapsed() < Duration::from_secs(90) {
        last = (0..ROOMS)
            .filter(|i| want.contains_key(i))
            .map(|i| (i, shows(&sim, i)))
            .collect();
        if want.iter().all(|(i, w)| last.get(i) == Some(w)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (i, w) in &want {
        assert_eq!(
            last.get(i),
            Some(w),
            "room {} in Kandy\n{}",
            1001 + i,
            site.daemon_log()
        );
    }
    let converged = start.elapsed();
    assert!(daemon.stop().success(), "{}", site.daemon_log());

    let counts = stored(&site);
    let rows = assert_exactly_once(&site, &counts, &files, &reported, &unreported);
    assert_eq!(
        counts.values().sum::<usize>() as i64,
        rows,
        "no stored event without a marker"
    );
    tokens.push(sim.token());
    let o = sim.options();
    let mut secrets = vec![o.password.clone(), o.hmac.clone()];
    secrets.extend(tokens);
    assert_no_secrets(&site, &secrets, "");
    eprintln!(
        "{KILLS} kills survived; {next} events produced, {rows} stored and checked; {} enqueue runs reported, {} killed; {} rooms right in Kandy {converged:?} after the last restart drained the spool",
        reported.len(),
        unreported.len(),
        want.len()
    );
}

/// Five check-ins marked `TAG-n`, room 101..105.
fn five(tag: &str) -> (String, Vec<String>) {
    let mut body = String::new();
    let mut marks = Vec::new();
    for n in 0..5 {
        let mark = format!("{tag}-{n}");
        body.push_str(&format!(
            "{{\"type\":\"check_in\",\"room\":\"10{n}\",\"guest\":{{\"last\":\"{mark}\"}}}}\n"
        ));
        marks.push(mark);
    }
    (body, marks)
}

/// The crash the random kills rarely hit: just before the commit. Nothing is reported
/// taken (the files stay, `enqueue` fails), nothing is stored, and after a restart every
/// event is in once.
#[test]
fn a_crash_just_before_the_commit_reports_nothing_and_loses_nothing() {
    let site = Site::new();
    std::fs::create_dir_all(site.incoming()).unwrap();
    let mut all = Vec::new();
    for k in 0..3 {
        let (body, marks) = five(&format!("S{k}"));
        site.drop_file(&format!("s{k}.jsonl"), body.as_bytes());
        all.extend(marks);
    }
    let crashed = site.daemon_with(&[("KANDY_LINK_FAULT", "before-spool-commit")]);
    let status = { crashed }.child.wait().unwrap();
    assert!(!status.success(), "the fault point should have aborted the daemon");
    assert_eq!(
        site.waiting(),
        ["s0.jsonl", "s1.jsonl", "s2.jsonl"],
        "no file is removed before its commit"
    );
    assert!(markers(&site).is_empty(), "nothing was committed");

    let (body, marks) = five("C");
    let out = site
        .cmd(&["enqueue", "-"])
        .env("KANDY_LINK_FAULT", "before-enqueue-commit")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(body.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("accepted"),
        "{}",
        text(&out)
    );
    assert!(markers(&site).is_empty(), "nothing was committed");
    let again = site.run(&["enqueue", "-"], &body);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    all.extend(marks);

    let daemon = site.daemon();
    wait_for(Duration::from_secs(20), || site.waiting().is_empty());
    assert!(daemon.stop().success(), "{}", site.daemon_log());
    let stored = markers(&site);
    for m in &all {
        assert_eq!(stored.get(m), Some(&1), "{m}: {stored:?}");
    }
    assert_eq!(stored.len(), all.len(), "{stored:?}");
}
