//! Living with the daemon (operations.md, "Logs" and "Service"), driving the real binary:
//! the Kandy log files and their rotation, the debug packet log switched by editing the
//! file, a reload that fails, and systemd's side of sd_notify and the watchdog.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Site, signal, text, wait_for};
use kandy_link::sim::{self, Options, Sim};

const LONG: Duration = Duration::from_secs(20);

async fn sim() -> Sim {
    sim::start(Options {
        users: 6,
        ..Options::default()
    })
    .await
    .unwrap()
}

fn enqueue(site: &Site, events: &str) {
    let out = site.run(&["enqueue", "-"], events);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

fn check_in(room: &str, first: &str, last: &str) -> String {
    format!("{{\"type\":\"check_in\",\"room\":\"{room}\",\"guest\":{{\"first\":\"{first}\",\"last\":\"{last}\"}}}}\n")
}

fn guest_change(room: &str, first: &str, last: &str) -> String {
    format!(
        "{{\"type\":\"guest_change\",\"room\":\"{room}\",\"guest\":{{\"first\":\"{first}\",\"last\":\"{last}\"}}}}\n"
    )
}

/// The first name and last name Kandy shows for user `id`.
fn shown(sim: &Sim, id: &str) -> (String, String) {
    let u = sim.user(id).unwrap();
    (u.first_name.unwrap_or_default(), u.last_name.unwrap_or_default())
}

fn wait_shown(sim: &Sim, id: &str, first: &str, last: &str) {
    wait_for(LONG, || shown(sim, id) == (first.to_string(), last.to_string()));
}

fn packet_lines(site: &Site) -> usize {
    site.log_text()
        .lines()
        .filter(|l| l.contains("Request to Kandy") || l.contains("Answer from Kandy"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_packet_log_follows_the_file_without_a_restart_and_shows_no_secret() {
    let sim = sim().await;
    let site = Site::for_sim(&sim, "enable_debug = false\n");
    let daemon = site.daemon();
    enqueue(&site, &check_in("1001", "John", "Smith"));
    wait_shown(&sim, "1001", "John", "Smith");
    let first_token = sim.token();
    assert_eq!(packet_lines(&site), 0, "{}", site.log_text());

    // On, by editing the file: no signal, no restart.
    site.save_config(
        &site
            .config_text()
            .replace("enable_debug = false", "enable_debug = true"),
    );
    site.wait_log("Settings reloaded", 1, LONG);
    // A new token makes the link log in again: the login is in the packet log too.
    let second_token = sim.regenerate_token();
    enqueue(&site, &guest_change("1001", "Jon", "Smith"));
    wait_shown(&sim, "1001", "Jon", "Smith");
    site.wait_log("Answer from Kandy", 3, LONG);
    let log = site.log_text();
    let packets: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Request to Kandy") || l.contains("Answer from Kandy"))
        .collect();
    let all = packets.join("\n");
    assert!(all.contains("> PUT http://127.0.0.1:"), "{all}");
    assert!(all.contains("/users/1001/name"), "{all}");
    assert!(all.contains("< 401 ("), "the token the portal refused: {all}");
    assert!(all.contains("/auth/login"), "{all}");
    assert!(all.contains("< 200 ("), "{all}");
    assert!(all.contains("x-user-token: ********"), "{all}");
    assert!(all.contains("\\\"password\\\":\\\"********\\\""), "{all}");
    // Each record on one line: local time with its offset, level, message, fields.
    for line in &packets {
        assert!(line.contains(" DEBUG "), "{line}");
        assert!(line.contains("packet=\"> ") || line.contains("packet=\"< "), "{line}");
    }

    // Off again: the packets stop.
    site.save_config(
        &site
            .config_text()
            .replace("enable_debug = true", "enable_debug = false"),
    );
    site.wait_log("Settings reloaded", 2, LONG);
    let before = packet_lines(&site);
    enqueue(&site, &guest_change("1001", "Jonathan", "Smith"));
    wait_shown(&sim, "1001", "Jonathan", "Smith");
    site.wait_log("Kandy confirmed the update", 4, LONG);
    assert_eq!(packet_lines(&site), before, "{}", site.log_text());

    assert!(daemon.stop().success(), "{}", site.daemon_log());
    let third_token = sim.token();
    let everything = format!("{}{}", site.log_text(), site.daemon_log());
    let o = sim.options();
    for secret in [
        o.password.as_str(),
        o.hmac.as_str(),
        &first_token,
        &second_token,
        &third_token,
    ] {
        assert!(!everything.contains(secret), "a secret is in the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_file_keeps_the_old_settings_and_names_the_line_and_key() {
    let sim = sim().await;
    let site = Site::for_sim(&sim, "");
    let mut daemon = site.daemon();
    let good = site.config_text();
    // Two changes: one that would show if it were applied, one that is out of range.
    let broken = format!("{good}\n[names]\noccupied_first = \"Guest {{first}}\"\n\n[scheduling]\ninterval_secs = 0\n");
    let line = broken.lines().position(|l| l == "interval_secs = 0").unwrap() + 1;
    site.rewrite_config(&broken);
    signal(daemon.child.id(), "HUP");
    site.wait_log("SIGHUP received", 1, LONG);
    wait_for(LONG, || {
        let log = site.log_text();
        let after = &log[log.find("SIGHUP received").unwrap()..];
        after.lines().any(|l| {
            l.contains(" ERROR The configuration was not reloaded; the old settings stay")
                && l.contains(&format!("line {line},"))
                && l.contains("`scheduling.interval_secs`")
        })
    });

    // Still running, and on the old names. (Commands read the broken file and refuse:
    // the event comes through the spool.)
    site.drop_file("in.json", check_in("1001", "John", "Smith").as_bytes());
    wait_shown(&sim, "1001", "John", "Smith");
    assert!(daemon.child.try_wait().unwrap().is_none());
    assert!(!site.log_text().contains("Settings reloaded"), "{}", site.log_text());
    assert!(daemon.stop().success(), "{}", site.daemon_log());
}

#[test]
fn log_files_are_named_by_rotation_and_old_ones_pruned() {
    let site = Site::with("max_files = 3\n");
    std::fs::create_dir_all(site.path("log")).unwrap();
    for day in 1..=5 {
        std::fs::write(site.path(&format!("log/Kandy.2020-01-0{day}.log")), "old\n").unwrap();
    }
    std::fs::write(site.path("log/notes.txt"), "mine\n").unwrap();
    let today = || {
        let t = time::OffsetDateTime::now_utc();
        (format!("Kandy.{}.log", t.date()), t)
    };
    let (before, _) = today();
    let daemon = site.daemon();
    site.wait_log("kandy-link started", 1, LONG);
    let (after, _) = today();
    let files = site.log_files();
    // Today's file (the day may turn during the test), the two newest old ones, and a
    // file that is not a log file of ours.
    let current = if files.contains(&before) { before } else { after };
    assert_eq!(
        files,
        [
            "Kandy.2020-01-04.log".to_string(),
            "Kandy.2020-01-05.log".to_string(),
            current.clone(),
            "notes.txt".to_string(),
        ],
        "{files:?}"
    );
    let current_text = std::fs::read_to_string(site.path("log").join(&current)).unwrap();
    let line = current_text.lines().next().unwrap().to_string();
    // 2026-03-01T14:05:09.123+01:00  INFO kandy-link started; taking events in pid=...
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert!(
        time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).is_ok(),
        "{line}"
    );
    assert!(rest.trim_start().starts_with("INFO kandy-link started"), "{line}");
    assert!(rest.contains(" pid="), "{line}");

    // Hourly files, then one file that never rolls, each applied by a reload.
    let hourly = site
        .config_text()
        .replace("max_files = 3", "max_files = 3\nrotation = \"hourly\"");
    site.save_config(&hourly);
    wait_for(LONG, || {
        site.log_files()
            .iter()
            .any(|n| n.len() == "Kandy.2026-01-01-00.log".len() && n.starts_with("Kandy.2"))
    });
    let never = hourly.replace("rotation = \"hourly\"", "rotation = \"never\"\nprefix = \"Hotel\"");
    site.save_config(&never);
    wait_for(LONG, || site.log_files().contains(&"Hotel.log".to_string()));
    // The hourly file made one more: the oldest went. The new prefix counts its own.
    let kandy = site.log_files().iter().filter(|n| n.starts_with("Kandy.")).count();
    assert_eq!(kandy, 3, "{:?}", site.log_files());
    assert!(daemon.stop().success(), "{}", site.daemon_log());
    assert!(
        std::fs::read_to_string(site.path("log/Hotel.log"))
            .unwrap()
            .contains("kandy-link stopped")
    );
    assert_eq!(std::fs::read_to_string(site.path("log/notes.txt")).unwrap(), "mine\n");
}

/// systemd's end of `$NOTIFY_SOCKET`: every message with the moment it came.
struct Notify {
    path: std::path::PathBuf,
    got: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Notify {
    fn bind(site: &Site) -> Notify {
        let path = site.path("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push((Instant::now(), msg));
            }
        });
        Notify { path, got }
    }

    fn messages(&self) -> Vec<(Instant, String)> {
        self.got.lock().unwrap().clone()
    }

    /// When messages holding `line` came.
    fn times(&self, line: &str) -> Vec<Instant> {
        self.messages()
            .into_iter()
            .filter(|(_, m)| m.lines().any(|l| l == line))
            .map(|(t, _)| t)
            .collect()
    }

    fn wait(&self, limit: Duration, cond: impl Fn(&[(Instant, String)]) -> bool) {
        let start = Instant::now();
        while !cond(&self.messages()) {
            assert!(
                start.elapsed() < limit,
                "not heard within {limit:?}: {:?}",
                self.messages()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn env<'a>(&'a self, watchdog_usec: &'a str) -> [(&'a str, &'a str); 2] {
        [
            ("NOTIFY_SOCKET", self.path.to_str().unwrap()),
            ("WATCHDOG_USEC", watchdog_usec),
        ]
    }
}

fn has(messages: &[(Instant, String)], line: &str) -> bool {
    messages.iter().any(|(_, m)| m.lines().any(|l| l == line))
}

#[test]
fn systemd_hears_ready_status_watchdog_reload_and_stop() {
    let site = Site::new();
    let notify = Notify::bind(&site);
    // WatchdogSec=4: a ping every 2 s, and never 4 s without one.
    let daemon = site.daemon_with(&notify.env("4000000"));
    notify.wait(LONG, |m| has(m, "READY=1"));
    notify.wait(LONG, |m| m.iter().any(|(_, m)| m.starts_with("STATUS=")));
    let status = notify
        .messages()
        .into_iter()
        .find_map(|(_, m)| m.strip_prefix("STATUS=").map(str::to_string))
        .unwrap();
    assert!(status.contains("daemon running (pid "), "{status}");

    let watch_from = Instant::now();
    std::thread::sleep(Duration::from_secs(9));
    let pings: Vec<Instant> = notify
        .times("WATCHDOG=1")
        .into_iter()
        .filter(|t| *t >= watch_from)
        .collect();
    assert!(
        (3..=9).contains(&pings.len()),
        "a ping about every 2 s, got {}",
        pings.len()
    );
    let mut marks = vec![watch_from];
    marks.extend(&pings);
    marks.push(Instant::now());
    let longest = marks.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(longest < Duration::from_secs(4), "{longest:?} without a ping");

    let heard = notify.messages().len();
    signal(daemon.child.id(), "HUP");
    notify.wait(LONG, |m| {
        let after = &m[heard..];
        let reloading = after
            .iter()
            .position(|(_, m)| m.lines().any(|l| l == "RELOADING=1") && m.contains("MONOTONIC_USEC="));
        reloading.is_some_and(|i| has(&after[i + 1..], "READY=1"))
    });

    assert!(daemon.stop().success(), "{}", site.daemon_log());
    notify.wait(LONG, |m| has(m, "STOPPING=1"));
}

#[test]
fn a_stalled_sync_loop_stops_the_watchdog_pings() {
    let site = Site::new();
    let notify = Notify::bind(&site);
    let mut env = notify.env("1000000").to_vec();
    // The sync loop runs 3 s, then blocks as a loop stuck in a call would.
    env.push(("KANDY_LINK_FAULT", "stall-sync-loop@3"));
    let mut daemon = site.daemon_with(&env);
    notify.wait(LONG, |m| has(m, "READY=1"));
    notify.wait(LONG, |m| has(m, "WATCHDOG=1"));
    wait_for(LONG, || {
        site.daemon_log().contains("stall point stall-sync-loop reached")
    });
    // A ping sent just before the stall may still be on its way: count from a second on.
    std::thread::sleep(Duration::from_secs(1));
    let pings = notify.times("WATCHDOG=1").len();
    std::thread::sleep(Duration::from_secs(4));
    let later = notify.times("WATCHDOG=1").len();
    assert_eq!(later, pings, "{} pings after the loop stalled", later - pings);
    // The process lives on: only systemd's watchdog would end it.
    assert!(daemon.child.try_wait().unwrap().is_none());
    daemon.kill();
}
