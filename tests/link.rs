//! The link against `kandy-sim`, driving the real daemon: what Kandy ends up holding,
//! what it received, and what status says.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{EXAMPLES, Site, text, wait_for};
use kandy_link::kandy::User;
use kandy_link::sim::{self, Down, Options, Received, Sim, UserEdit};
use serde_json::Value;

/// Resends every second, two resends: tests see retries and deferral quickly.
const FAST: &str = "[scheduling]\ninterval_secs = 1\nretries = 2\n";

async fn sim(users: usize) -> Sim {
    sim::start(Options {
        users,
        ..Options::default()
    })
    .await
    .unwrap()
}

fn rooms(site: &Site) -> Vec<Value> {
    site.json(&["rooms", "--json"]).as_array().unwrap().clone()
}

fn room(site: &Site, name: &str) -> Value {
    rooms(site)
        .into_iter()
        .find(|r| r["room"] == name)
        .unwrap_or_else(|| panic!("no room {name}"))
}

/// Waits until the daemon has read the extension cache from the portal.
fn cache_read(site: &Site) {
    wait_for(Duration::from_secs(10), || {
        site.status()["cache"]["users"].as_u64().is_some_and(|n| n > 0)
    });
}

/// Waits until no field of any room is pending.
fn settled(site: &Site, limit: Duration) {
    wait_for(limit, || {
        rooms(site)
            .iter()
            .all(|r| r["name_status"] != "pending" && r["permission_status"] != "pending")
    });
}

fn enqueue(site: &Site, events: &str) {
    let out = site.run(&["enqueue", "-"], events);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

fn user(sim: &Sim, id: &str) -> User {
    sim.user(id).unwrap_or_else(|| panic!("no user {id}"))
}

fn shows(sim: &Sim, id: &str) -> (String, String, String) {
    let u = user(sim, id);
    (
        u.first_name.unwrap_or_default(),
        u.last_name.unwrap_or_default(),
        u.call_permission.unwrap_or_default(),
    )
}

fn puts_for(received: &[Received], user_path: &str) -> Vec<Received> {
    received
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains(&format!("/users/{user_path}/")))
        .cloned()
        .collect()
}

fn check_in(room: &str, id: &str, first: &str, last: &str) -> String {
    format!(
        "{{\"type\":\"check_in\",\"room\":\"{room}\",\"guest\":{{\"id\":\"{id}\",\"first\":\"{first}\",\"last\":\"{last}\"}}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_examples_end_in_the_right_kandy_state_step_by_step() {
    let sim = sim(6).await;
    let site = Site::for_sim(
        &sim,
        &format!("{FAST}[rooms.mailboxes]\n\"101\" = \"1001\"\n\"205\" = \"1005\"\n"),
    );
    let daemon = site.daemon();
    type Shows<'a> = (&'a str, (&'a str, &'a str, &'a str));
    let expect: [&[Shows<'_>]; 5] = [
        &[("1001", ("John", "Smith", "international"))],
        &[("1001", ("Jon", "Smith", "international"))],
        &[("1001", ("Jon", "Smith", "national"))],
        &[
            ("1001", ("Room", "", "internal")),
            ("1005@hotel", ("Jon", "Smith", "national")),
        ],
        &[("1005@hotel", ("Room", "", "internal"))],
    ];
    for (event, want) in EXAMPLES.lines().zip(expect) {
        enqueue(&site, event);
        for (id, (first, last, permission)) in want {
            wait_for(Duration::from_secs(10), || {
                shows(&sim, id) == (first.to_string(), last.to_string(), permission.to_string())
            });
        }
    }
    settled(&site, Duration::from_secs(10));
    assert_eq!(site.status()["state"], "ok", "{}", site.status());
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_matching_rule_works_and_bad_mailboxes_hold_up_no_one() {
    let sim = sim(6).await;
    for id in ["amb-a", "amb-b"] {
        sim.put_user(User {
            user_id: id.into(),
            number: None,
            extension: Some("8888".into()),
            first_name: None,
            last_name: None,
            call_permission: None,
        });
    }
    let site = Site::for_sim(&sim, FAST);
    let daemon = site.daemon();
    let mut events = String::new();
    for (room, last) in [
        ("1001", "ById"),
        ("1002", "ByAt"),
        ("1003", "ByExt"),
        ("1006", "ByNumber"),
        ("7777", "Missing"),
        ("8888", "Ambiguous"),
    ] {
        events.push_str(&check_in(room, room, "G", last));
    }
    enqueue(&site, &events);
    settled(&site, Duration::from_secs(10));
    for (id, last) in [
        ("1001", "ById"),
        ("1002@hotel", "ByAt"),
        ("usr-00003", "ByExt"),
        ("usr-00006", "ByNumber"),
    ] {
        assert_eq!(
            shows(&sim, id),
            ("G".into(), last.into(), "international".into()),
            "user {id}"
        );
    }
    let missing = room(&site, "7777");
    assert_eq!(missing["name_status"], "unresolved");
    assert_eq!(missing["last_error"], "no Kandy user for mailbox 7777");
    let ambiguous = room(&site, "8888");
    assert_eq!(
        ambiguous["candidates"],
        serde_json::json!(["amb-a", "amb-b"]),
        "{ambiguous}"
    );
    let status = site.status();
    assert_eq!(status["rooms"]["unresolved"], 2, "{status}");
    let problems: Vec<&str> = status["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["room"].as_str().unwrap())
        .collect();
    assert_eq!(problems, ["7777", "8888"]);

    // A user added in the portal resolves its room at the next refresh.
    sim.put_user(User {
        user_id: "7777".into(),
        number: None,
        extension: None,
        first_name: None,
        last_name: None,
        call_permission: None,
    });
    let out = site.run(&["cache", "refresh"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for(Duration::from_secs(10), || shows(&sim, "7777").1 == "Missing");
    let lookup = site.run(&["cache", "lookup", "8888"], "");
    assert_eq!(lookup.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&lookup.stdout).contains("candidate: amb-b"),
        "{}",
        text(&lookup)
    );
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_failures_then_success_and_all_attempts_failing_ends_deferred() {
    let sim = sim(6).await;
    let site = Site::for_sim(&sim, FAST);
    let daemon = site.daemon();
    cache_read(&site);
    sim.clear_received();
    sim.fail_next(2, 500, None);
    enqueue(&site, &check_in("1001", "1", "Ann", "Lee"));
    wait_for(Duration::from_secs(15), || {
        shows(&sim, "1001") == ("Ann".into(), "Lee".into(), "international".into())
    });
    let statuses: Vec<u16> = puts_for(&sim.received(), "1001").iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 2, "{statuses:?}");
    settled(&site, Duration::from_secs(5));
    assert_eq!(room(&site, "1001")["attempts"], 0);

    // retries = 2: three attempts per field, then deferred; nothing is dropped.
    sim.fail_next(6, 502, None);
    enqueue(&site, &check_in("1004", "4", "Bo", "Ek"));
    wait_for(Duration::from_secs(20), || {
        let r = room(&site, "1004");
        r["permission_status"] == "deferred" && r["name_status"] == "deferred"
    });
    let r = room(&site, "1004");
    assert_eq!(r["attempts"], 3, "{r}");
    assert!(r["last_error"].as_str().unwrap().contains("502"), "{r}");
    let status = site.status();
    assert_eq!(status["state"], "degraded", "{status}");
    assert_eq!(status["rooms"]["deferred"], 1);
    assert_eq!(site.run(&["status"], "").status.code(), Some(1));
    // `retry` gives the deferred fields fresh attempts.
    let out = site.run(&["retry", "1004"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for(Duration::from_secs(10), || {
        shows(&sim, "1004") == ("Bo".into(), "Ek".into(), "international".into())
    });
    // Outcomes reach the store in batches, a fraction of a second later.
    wait_for(Duration::from_secs(5), || site.status()["state"] == "ok");
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_down_for_ten_intervals_costs_no_attempts_and_sending_resumes_within_one() {
    let sim = sim(6).await;
    // Two-second intervals: a loaded machine's scheduling delays stay well inside one.
    let site = Site::for_sim(&sim, "[scheduling]\ninterval_secs = 2\nretries = 2\n");
    let daemon = site.daemon();
    cache_read(&site);
    sim.go_down(Down::Refuse);
    let events: String = ["1001", "1002", "1003"]
        .iter()
        .map(|r| check_in(r, r, "Down", "Time"))
        .collect();
    enqueue(&site, &events);
    wait_for(Duration::from_secs(5), || site.status()["state"] == "degraded");
    std::thread::sleep(Duration::from_secs(20));
    for r in rooms(&site) {
        assert_eq!(r["attempts"], 0, "{r}");
        assert_eq!(r["permission_status"], "pending", "{r}");
    }
    let status = site.status();
    assert!(status["reason"].as_str().unwrap().contains("unreachable"), "{status}");
    sim.clear_received();
    let back = Instant::now();
    sim.come_back();
    // The probe every interval (2 s) finds the portal back, and the first probe that
    // reaches it resumes sending: it is the first request the portal sees, updates follow.
    wait_for(Duration::from_secs(10), || {
        sim.received().iter().any(|r| r.method == "PUT" && r.status < 300)
    });
    let resumed = back.elapsed();
    let seen = sim.received();
    assert!(
        seen[0].method == "GET" && seen[0].path.contains("pageSize=1") && seen[0].status == 200,
        "{:?}",
        seen[0]
    );
    assert_eq!(seen[1].method, "PUT", "{:?}", seen[1]);
    assert!(
        resumed < Duration::from_secs(2 + 3),
        "sending resumed {resumed:?} after the portal came back"
    );
    wait_for(Duration::from_secs(10), || {
        sim.received().iter().any(|r| r.method == "PUT" && r.status < 300)
    });
    let resumed = back.elapsed();
    assert!(
        resumed < Duration::from_millis(2000 + 1500),
        "sending resumed {resumed:?} after the portal came back at {:?}\n{}",
        std::time::SystemTime::now() - resumed,
        site.daemon_log()
    );
    wait_for(Duration::from_secs(10), || {
        ["1001", "1002@hotel", "usr-00003"]
            .iter()
            .all(|u| shows(&sim, u).1 == "Time")
    });
    settled(&site, Duration::from_secs(5));
    assert_eq!(site.status()["state"], "ok");
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regenerated_token_costs_one_login_and_a_check_out_cuts_calls_first() {
    let sim = sim(6).await;
    let site = Site::for_sim(&sim, FAST);
    let daemon = site.daemon();
    enqueue(&site, &check_in("1001", "1", "Ann", "Lee"));
    wait_for(Duration::from_secs(10), || shows(&sim, "1001").1 == "Lee");
    let logins = sim.stats().logins;
    sim.regenerate_token();
    sim.clear_received();
    enqueue(&site, "{\"type\":\"check_out\",\"room\":\"1001\"}\n");
    wait_for(Duration::from_secs(10), || {
        shows(&sim, "1001") == ("Room".into(), String::new(), "internal".into())
    });
    assert_eq!(sim.stats().logins, logins + 1);
    let puts: Vec<String> = puts_for(&sim.received(), "1001")
        .iter()
        .filter(|r| r.status < 300)
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert!(
        puts[0].ends_with("/call-permission") && puts[1].ends_with("/name"),
        "{puts:?}"
    );
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_pauses_the_link_and_a_reload_with_the_right_one_lets_everything_through() {
    let sim = sim(6).await;
    let good = sim.link_toml();
    let bad = good.replace("password = \"sim-password\"", "user_token = \"not-the-token\"");
    assert_ne!(good, bad);
    let site = Site::for_sim(&sim, FAST);
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.rewrite_config(&config.replace(&good, &bad));
    let daemon = site.daemon();
    enqueue(&site, &check_in("1001", "1", "Ann", "Lee"));
    wait_for(Duration::from_secs(10), || site.status()["state"] == "auth-failed");
    let status = site.status();
    assert!(
        status["reason"].as_str().unwrap().contains("invalid_token")
            || status["reason"].as_str().unwrap().contains("token"),
        "{status}"
    );
    assert_eq!(status["events"]["accepted"], 1);
    assert_eq!(room(&site, "1001")["permission_status"], "pending");

    site.rewrite_config(&config);
    common::signal(daemon.child.id(), "HUP");
    wait_for(Duration::from_secs(10), || {
        shows(&sim, "1001") == ("Ann".into(), "Lee".into(), "international".into())
    });
    wait_for(Duration::from_secs(5), || site.status()["state"] == "ok");
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_edited_in_the_portal_is_put_back_at_the_next_refresh() {
    let sim = sim(6).await;
    let site = Site::for_sim(&sim, FAST);
    let daemon = site.daemon();
    enqueue(&site, &check_in("1001", "1", "Ann", "Lee"));
    wait_for(Duration::from_secs(10), || shows(&sim, "1001").1 == "Lee");
    settled(&site, Duration::from_secs(5));
    sim.edit_user(
        "1001",
        &UserEdit {
            first_name: Some("Someone".into()),
            last_name: Some("Else".into()),
            ..UserEdit::default()
        },
    );
    let out = site.run(&["cache", "refresh"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for(Duration::from_secs(10), || shows(&sim, "1001").1 == "Lee");
    wait_for(Duration::from_secs(5), || site.daemon_log().contains("Drift"));
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_events_for_one_room_take_a_handful_of_requests() {
    let sim = sim(6).await;
    sim.set_latency(Duration::from_millis(50));
    let site = Site::for_sim(&sim, FAST);
    let daemon = site.daemon();
    cache_read(&site);
    sim.clear_received();
    for batch in 0..10 {
        let mut events = check_in("1001", "1", "First", "0");
        for n in 1..10 {
            let change = format!(
                "{{\"type\":\"guest_change\",\"room\":\"1001\",\"guest\":{{\"id\":\"1\",\"first\":\"Name\",\"last\":\"{}\"}}}}\n",
                batch * 10 + n
            );
            events.push_str(&change);
        }
        enqueue(&site, &events);
    }
    wait_for(Duration::from_secs(15), || {
        shows(&sim, "1001") == ("Name".into(), "99".into(), "international".into())
    });
    settled(&site, Duration::from_secs(5));
    let puts = puts_for(&sim.received(), "1001");
    assert!(puts.len() <= 6, "100 events took {} requests", puts.len());
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_a_burst_and_a_restart_end_with_every_room_right() {
    let sim = sim(60).await;
    sim.set_latency(Duration::from_millis(20));
    let site = Site::for_sim(&sim, FAST);
    let daemon = site.daemon();
    cache_read(&site);
    let events: String = (1001..1061)
        .map(|r| check_in(&r.to_string(), &r.to_string(), "Burst", &format!("G{r}")))
        .collect();
    enqueue(&site, &events);
    wait_for(Duration::from_secs(10), || {
        sim.received().iter().filter(|r| r.method == "PUT").count() >= 20
    });
    daemon.kill();
    let daemon = site.daemon();
    settled(&site, Duration::from_secs(30));
    let users = sim.users();
    for r in rooms(&site) {
        let id = r["user_id"].as_str().unwrap();
        let u = users.iter().find(|u| u.user_id == id).unwrap();
        let want = format!("G{}", r["room"].as_str().unwrap());
        assert_eq!(u.last_name.as_deref(), Some(want.as_str()), "{r}");
        assert_eq!(u.call_permission.as_deref(), Some("international"), "{r}");
    }
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_rooms_dry_run_and_resync() {
    let sim = sim(6).await;
    let site = Site::for_sim(&sim, &format!("{FAST}[rooms]\nignore = [\"1002\"]\n"));
    let config = std::fs::read_to_string(&site.config).unwrap();
    site.rewrite_config(&config.replace("use_nonce = false", "use_nonce = false\ndry_run = true"));
    let daemon = site.daemon();
    enqueue(
        &site,
        &format!(
            "{}{}",
            check_in("1001", "1", "Dry", "Run"),
            check_in("1002", "2", "Front", "Desk")
        ),
    );
    wait_for(Duration::from_secs(10), || {
        site.daemon_log().contains("Dry run: would send")
    });
    assert!(site.status()["dry_run"].as_bool().unwrap());
    assert!(
        sim.received().iter().all(|r| r.method != "PUT"),
        "a dry run sends no update"
    );
    assert_eq!(room(&site, "1002")["name_status"], "ignored");
    drop(daemon);

    site.rewrite_config(&config);
    let daemon = site.daemon();
    settled(&site, Duration::from_secs(10));
    assert_eq!(shows(&sim, "1001").1, "Run");
    assert!(
        puts_for(&sim.received(), "1002%40hotel").is_empty(),
        "an ignored room is never pushed"
    );
    sim.clear_received();
    let out = site.run(&["resync", "--all"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for(Duration::from_secs(10), || puts_for(&sim.received(), "1001").len() == 2);
    assert!(puts_for(&sim.received(), "1002%40hotel").is_empty());
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_portal_is_probed_once_an_interval_not_hammered() {
    let sim = sim(6).await;
    let site = Site::for_sim(&sim, FAST);
    let daemon = site.daemon();
    cache_read(&site);
    sim.go_down(Down::Unavailable);
    enqueue(&site, &check_in("1001", "1", "Busy", "Portal"));
    wait_for(Duration::from_secs(5), || site.status()["state"] == "degraded");
    sim.clear_received();
    std::thread::sleep(Duration::from_secs(5));
    let probes = sim
        .received()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("pageSize=1"))
        .count();
    // interval_secs = 1: about five probes in five seconds, and nothing else.
    assert!((3..=7).contains(&probes), "{probes} probes in 5 s");
    assert!(
        sim.received().iter().all(|r| r.method == "GET"),
        "no update is sent while the portal is busy"
    );
    sim.come_back();
    wait_for(Duration::from_secs(10), || shows(&sim, "1001").1 == "Portal");
    drop(daemon);
}
