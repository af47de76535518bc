//! Benchmark 4: a refresh of 10,000 users over pages, through the client, against a bare
//! reqwest loop fetching and parsing the same pages, measured in the same run.

use std::time::{Duration, Instant};

use kandy_link::config::Config;
use kandy_link::kandy::{Client, Hooks};
use kandy_link::sim::{self, Options};

use super::Row;

const USERS: usize = 10_000;
const ROUNDS: usize = 5;

pub async fn run() -> Vec<Row> {
    let sim = sim::start(Options {
        users: USERS,
        ..Options::default()
    })
    .await
    .unwrap();
    let path = std::env::temp_dir().join(format!("kandy-bench-cache-{}.toml", std::process::id()));
    std::fs::write(&path, sim.link_toml()).unwrap();
    let config = Config::load(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let client = Client::from_config(&config, Hooks::default()).unwrap();
    client.login().await.unwrap();
    let page_size = config.kandy.api.page_size;

    let mut ours = Duration::MAX;
    let mut bare = Duration::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let users = client.list_users().await.unwrap();
        ours = ours.min(start.elapsed());
        assert_eq!(users.len(), USERS);
        bare = bare.min(bare_listing(&sim, page_size).await);
    }
    let ratio = bare.as_secs_f64() / ours.as_secs_f64();
    vec![Row {
        name: format!("4. cache: refresh of {USERS} users, pages of {page_size} (best of {ROUNDS})"),
        baseline: format!(
            "bare reqwest GET + JSON parse of the same pages: {:.0} ms",
            bare.as_secs_f64() * 1000.0
        ),
        measured: format!("{:.0} ms", ours.as_secs_f64() * 1000.0),
        ratio,
        target: "(report)",
        ok: true,
    }]
}

async fn bare_listing(sim: &sim::Sim, size: u64) -> Duration {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let o = sim.options().clone();
    let token = sim.token();
    let pages = (USERS as u64).div_ceil(size);
    let start = Instant::now();
    let mut total = 0;
    for page in 1..=pages {
        let path = format!(
            "{}/groups/{}/users?page={page}&pageSize={size}",
            o.base_path, o.group_id
        );
        let url = format!("http://{}{path}", sim.addr());
        let body = super::bare_request(&http, &o, &token, reqwest::Method::GET, &url, &path, "")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        total += v["users"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(total, USERS);
    start.elapsed()
}
