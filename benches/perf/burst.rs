//! Benchmarks 1, 2 and 5: a burst of 2,000 check-outs through the real daemon against
//! kandy-sim holding 10,000 users, with `max_in_flight = 8`.
//!
//! 1. At 20 ms latency, against the bound requests x latency / max_in_flight.
//! 2. At 0 ms latency, against a bare reqwest client sending the same signed requests at
//!    the same concurrency.
//! 5. The daemon's peak RSS (VmHWM) during all of it, against the 40 MiB target.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kandy_link::directory::{Directory, Resolution};
use kandy_link::sim::{self, Options, Sim};

use super::Row;

const ROOMS: usize = 2_000;
const USERS: usize = 10_000;
const IN_FLIGHT: usize = 8;
const LATENCY: Duration = Duration::from_millis(20);

#[derive(Debug)]
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn run(dir: &Path) -> Vec<Row> {
    let sim = sim::start(Options {
        users: USERS,
        ..Options::default()
    })
    .await
    .unwrap();
    let site = dir.join("burst");
    std::fs::create_dir_all(site.join("spool/incoming")).unwrap();
    let config = site.join("kandy-link.toml");
    std::fs::write(
        &config,
        format!(
            "{}max_in_flight = {IN_FLIGHT}\n\n[queue]\nstate_dir = \"state\"\nspool_dir = \"spool\"\n\n[scheduling]\ninterval_secs = 1\n\n[logging]\nlevel = \"warn\"\ndir = \"log\"\n",
            sim.link_toml()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(site.join("daemon.log")).unwrap();
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_kandy-link"))
            .arg("--config")
            .arg(&config)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let pid = daemon.0.id();
    let rooms: Vec<String> = (1001..1001 + ROOMS).map(|r| r.to_string()).collect();
    let directory = Directory::new(sim::seed(USERS));
    let users: Vec<String> = rooms
        .iter()
        .map(|r| match directory.resolve(r) {
            Resolution::Found(u) => u,
            Resolution::Unresolved { reason, .. } => panic!("{reason}"),
        })
        .collect();

    // The bare client writes to users no room uses: it must not change what the link
    // believes Kandy holds.
    let others: Vec<String> = (5001..5001 + ROOMS)
        .map(|m| match directory.resolve(&m.to_string()) {
            Resolution::Found(u) => u,
            Resolution::Unresolved { reason, .. } => panic!("{reason}"),
        })
        .collect();

    // Set-up, not measured: every room occupied and confirmed.
    burst(&sim, &site, &rooms, &users, true).await;
    // 2: the link at 0 ms against the bare client.
    let bare = bare_client(&sim, &others).await;
    let (link0, _) = burst(&sim, &site, &rooms, &users, false).await;
    burst(&sim, &site, &rooms, &users, true).await;
    // 1: the link at 20 ms against the bound.
    sim.set_latency(LATENCY);
    let (link20, requests) = burst(&sim, &site, &rooms, &users, false).await;
    let peak = peak_rss_kib(pid);
    drop(daemon);
    let _ = log_problems(&site);

    let bound = LATENCY.as_secs_f64() * requests as f64 / IN_FLIGHT as f64;
    let burst_ratio = bound / link20.as_secs_f64();
    let overhead_ratio = bare.as_secs_f64() / link0.as_secs_f64();
    let peak_mib = peak as f64 / 1024.0;
    vec![
        Row {
            name: format!(
                "1. burst: {ROOMS} check-outs ({requests} requests), 20 ms latency, max_in_flight {IN_FLIGHT}"
            ),
            baseline: format!("bound requests x latency / max_in_flight: {bound:.2} s"),
            measured: format!("{:.2} s", link20.as_secs_f64()),
            ratio: burst_ratio,
            target: ">= 0.90",
            ok: burst_ratio >= 0.90,
        },
        Row {
            name: "2. overhead: the same burst at 0 ms latency".to_string(),
            baseline: format!(
                "bare reqwest, same signed requests, {IN_FLIGHT} at once: {:.2} s",
                bare.as_secs_f64()
            ),
            measured: format!("{:.2} s", link0.as_secs_f64()),
            ratio: overhead_ratio,
            target: ">= 0.80",
            ok: overhead_ratio >= 0.80,
        },
        Row {
            name: format!("5. memory: daemon peak RSS in 1 and 2, {USERS}-user cache"),
            baseline: "target 40 MiB".into(),
            measured: format!("{peak_mib:.1} MiB"),
            ratio: peak_mib / 40.0,
            target: "< 1.00",
            ok: peak_mib < 40.0,
        },
    ]
}

/// Drops one spool file of check-ins (or check-outs) for every room and waits until the
/// portal holds them all. Returns the time from the drop and the updates received.
async fn burst(sim: &Sim, site: &Path, rooms: &[String], users: &[String], check_in: bool) -> (Duration, usize) {
    let mut body = String::new();
    for room in rooms {
        if check_in {
            body.push_str(&format!(
                "{{\"type\":\"check_in\",\"room\":\"{room}\",\"guest\":{{\"id\":\"{room}\",\"first\":\"Guest\",\"last\":\"G{room}\"}}}}\n"
            ));
        } else {
            body.push_str(&format!("{{\"type\":\"check_out\",\"room\":\"{room}\"}}\n"));
        }
    }
    sim.clear_received();
    let before = sim.stats().requests;
    let name = format!("burst-{}.jsonl", unique());
    let tmp: PathBuf = site.join("spool/incoming").join(format!(".{name}.tmp"));
    std::fs::write(&tmp, body).unwrap();
    let start = Instant::now();
    std::fs::rename(&tmp, site.join("spool/incoming").join(&name)).unwrap();
    let want: Vec<(String, String)> = rooms
        .iter()
        .map(|r| {
            if check_in {
                (format!("G{r}"), "international".to_string())
            } else {
                (String::new(), "internal".to_string())
            }
        })
        .collect();
    loop {
        // Cheap polling (a counter) until enough requests came, then the real check.
        if sim.stats().requests - before >= 2 * rooms.len() as u64 {
            let now: HashMap<String, (String, String)> = sim
                .users()
                .into_iter()
                .map(|u| {
                    (
                        u.user_id,
                        (u.last_name.unwrap_or_default(), u.call_permission.unwrap_or_default()),
                    )
                })
                .collect();
            if users.iter().zip(&want).all(|(u, w)| now.get(u) == Some(w)) {
                break;
            }
            if start.elapsed() > Duration::from_secs(120) {
                let log = std::fs::read_to_string(site.join("daemon.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                let missing = users.iter().zip(&want).filter(|(u, w)| now.get(*u) != Some(w)).count();
                panic!(
                    "the burst did not finish: {missing} users differ; the daemon's log ends:\n{}",
                    tail.join("\n")
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    let requests = sim.received().iter().filter(|r| r.method == "PUT").count();
    (elapsed, requests)
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The baseline of 2: the same 2 x ROOMS signed PUTs (permission, then name) from a
/// bare reqwest client, IN_FLIGHT at once.
async fn bare_client(sim: &Sim, users: &[String]) -> Duration {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()
        .unwrap();
    let o = sim.options().clone();
    let token = sim.token();
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let base = sim.base_url();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(users.len() * 2);
    for user in users {
        let segment = user.replace('@', "%40");
        for (suffix, body) in [
            ("call-permission", r#"{"callPermission":"internal"}"#),
            ("name", r#"{"firstName":"Room","lastName":""}"#),
        ] {
            let path = format!("{}/groups/{}/users/{segment}/{suffix}", o.base_path, o.group_id);
            let url = format!("{base}/groups/{}/users/{segment}/{suffix}", o.group_id);
            let (http, token, o, slots) = (http.clone(), token.clone(), o.clone(), slots.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire().await.unwrap();
                let answer = super::bare_request(&http, &o, &token, reqwest::Method::PUT, &url, &path, body)
                    .send()
                    .await
                    .unwrap();
                assert!(answer.status().is_success(), "{}", answer.status());
                let _ = answer.bytes().await;
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

/// The process's peak resident set (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Warnings the daemon logged, shown so that a slow run can be explained.
fn log_problems(site: &Path) -> std::io::Result<()> {
    let log = std::fs::read_to_string(site.join("daemon.log"))?;
    for line in log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .take(10)
    {
        eprintln!("daemon: {line}");
    }
    Ok(())
}
