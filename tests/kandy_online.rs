//! `kandy-link check-config --online` against `kandy-sim` on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use kandy_link::config::Config;
use kandy_link::kandy::online::{self, Outcome};
use kandy_link::sim::{self, Options, Sim};

fn config(text: &str) -> Config {
    Config::parse(Path::new("/nonexistent/kandy-link.toml"), text).unwrap()
}

fn outcomes(steps: &[online::Step]) -> Vec<(&str, &str)> {
    steps
        .iter()
        .map(|s| {
            let word = match s.outcome {
                Outcome::Passed(_) => "ok",
                Outcome::Failed(_) => "failed",
                Outcome::Skipped(_) => "skipped",
            };
            (s.name, word)
        })
        .collect()
}

async fn simulator(options: Options) -> Sim {
    sim::start(options).await.unwrap()
}

#[tokio::test]
async fn every_step_passes_against_a_good_portal() {
    let sim = simulator(Options::default()).await;
    let steps = online::check(&config(&sim.link_toml())).await;
    assert_eq!(
        outcomes(&steps),
        [("connection", "ok"), ("login", "ok"), ("users", "ok"), ("clock", "ok")]
    );
    let Outcome::Passed(users) = &steps[2].outcome else {
        unreachable!()
    };
    assert_eq!(users, "page 1 of 1 lists 50 users");
}

#[tokio::test]
async fn a_wrong_password_fails_the_login_step_and_says_what_to_check() {
    let sim = simulator(Options::default()).await;
    let text = sim.link_toml().replace("sim-password", "hunter2-x");
    let steps = online::check(&config(&text)).await;
    assert_eq!(
        outcomes(&steps),
        [
            ("connection", "ok"),
            ("login", "failed"),
            ("users", "skipped"),
            ("clock", "ok")
        ]
    );
    let Outcome::Failed(why) = &steps[1].outcome else {
        unreachable!()
    };
    assert!(
        why.contains("bad_credentials") && why.contains("kandy.password"),
        "{why}"
    );
    assert!(!why.contains("hunter2-x"), "the password is not shown: {why}");
}

#[tokio::test]
async fn a_clock_off_by_more_than_300_s_is_the_step_that_fails() {
    let sim = simulator(Options {
        clock_offset_secs: -1000,
        ..Options::default()
    })
    .await;
    let steps = online::check(&config(&sim.link_toml())).await;
    assert_eq!(
        outcomes(&steps),
        [
            ("connection", "ok"),
            ("login", "failed"),
            ("users", "skipped"),
            ("clock", "failed")
        ]
    );
    let Outcome::Failed(login) = &steps[1].outcome else {
        unreachable!()
    };
    assert!(login.contains("clock is wrong"), "{login}");
    let Outcome::Failed(clock) = &steps[3].outcome else {
        unreachable!()
    };
    assert!(
        clock.contains("1000 s ahead of") || clock.contains("999 s ahead of"),
        "{clock}"
    );
}

#[tokio::test]
async fn no_portal_listening_fails_the_connection_step() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "[kandy]\napi_base_url = \"http://127.0.0.1:{port}\"\nallow_insecure_http = true\nuser_id = \"u\"\npassword = \"p\"\ngroup_id = \"g\"\n"
    );
    let steps = online::check(&config(&text)).await;
    assert_eq!(
        outcomes(&steps),
        [
            ("connection", "failed"),
            ("login", "skipped"),
            ("users", "skipped"),
            ("clock", "skipped")
        ]
    );
    let Outcome::Failed(why) = &steps[0].outcome else {
        unreachable!()
    };
    assert!(why.contains("kandy.api_base_url"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_exits_0_when_all_pass_and_1_when_a_step_fails() {
    let sim = simulator(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&good, sim.link_toml()).unwrap();
    std::fs::write(&bad, sim.link_toml().replace("sim-password", "hunter2-x")).unwrap();
    let run = |file: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_kandy-link"))
                // Proxies from the environment are ignored (kandy.proxy only): this one
                // would swallow every request.
                .env("HTTP_PROXY", "http://127.0.0.1:9")
                .env("http_proxy", "http://127.0.0.1:9")
                .env("ALL_PROXY", "http://127.0.0.1:9")
                .args(["check-config", "--online", "--config"])
                .arg(file)
                .output()
                .unwrap()
        })
    };
    let out = run(good).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("  login       ok"), "{stdout}");
    let out = run(bad).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("  login       FAILED"), "{stdout}");
}
