//! `kandy-sim`'s control API under `/_sim/`, as a lab script would use it, with the
//! client seeing the effect of each control.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use kandy_link::config::Config;
use kandy_link::kandy::classify::Verdict;
use kandy_link::kandy::{Client, Hooks};
use kandy_link::sim::{self, Options, Sim};
use serde_json::{Value, json};

struct Lab {
    sim: Sim,
    http: reqwest::Client,
    client: Client,
}

impl Lab {
    async fn new() -> Lab {
        let sim = sim::start(Options::default()).await.unwrap();
        let config = Config::parse(Path::new("/nonexistent/k.toml"), &sim.link_toml()).unwrap();
        let client = Client::from_config(&config, Hooks::default()).unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Lab { sim, http, client }
    }

    async fn control(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("http://{}/_sim/{path}", self.sim.addr());
        let mut r = self.http.request(method.parse().unwrap(), url);
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b.to_string());
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn faults_latency_and_outages_are_set_over_http() {
    let lab = Lab::new().await;
    lab.client.login().await.unwrap();

    let (status, _) = lab
        .control(
            "POST",
            "fail",
            Some(json!({"count": 1, "status": 503, "retry_after": "90"})),
        )
        .await;
    assert_eq!(status, 204);
    let e = lab.client.set_name("1001", "A", "B").await.unwrap_err();
    assert_eq!(
        e.verdict(),
        Verdict::Unavailable {
            wait: Duration::from_secs(90)
        }
    );
    lab.client.set_name("1001", "A", "B").await.unwrap();

    lab.control("POST", "latency", Some(json!({"ms": 150}))).await;
    let started = Instant::now();
    lab.client.set_name("1001", "A", "B").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    lab.control("POST", "latency", Some(json!({"ms": 0}))).await;

    lab.control("POST", "down", Some(json!({"mode": "unavailable"}))).await;
    let e = lab.client.set_name("1001", "A", "B").await.unwrap_err();
    assert!(matches!(e.verdict(), Verdict::Unavailable { .. }), "{e}");
    lab.control("POST", "up", None).await;
    lab.client.set_name("1001", "A", "B").await.unwrap();

    // Refusing connections takes the control API down too, so it needs a duration.
    let (status, _) = lab.control("POST", "down", Some(json!({"mode": "refuse"}))).await;
    assert_eq!(status, 400);
    let (status, _) = lab
        .control("POST", "down", Some(json!({"mode": "refuse", "secs": 1})))
        .await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = lab.client.set_name("1001", "A", "B").await.unwrap_err();
    assert!(matches!(e.verdict(), Verdict::Unavailable { .. }), "{e}");
    // It comes back by itself after the second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.client.set_name("1001", "A", "B").await.is_err() {
        assert!(Instant::now() < deadline, "the portal did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn tokens_users_and_the_request_log_are_controlled_over_http() {
    let lab = Lab::new().await;
    lab.client.list_users_page(1, 1).await.unwrap();

    let old = lab.sim.token();
    let (_, v) = lab.control("POST", "token", None).await;
    assert_ne!(v["token"].as_str().unwrap(), old);
    lab.client.list_users_page(1, 1).await.unwrap();
    let (_, stats) = lab.control("GET", "stats", None).await;
    assert_eq!(stats["logins"], 2);

    // An administrator edits a user; the next listing shows it.
    let (status, v) = lab
        .control("PATCH", "users/1001", Some(json!({"first_name": "Edited"})))
        .await;
    assert_eq!((status, v["first_name"].as_str()), (200, Some("Edited")));
    let users = lab.client.list_users().await.unwrap();
    assert_eq!(users[0].first_name.as_deref(), Some("Edited"));

    // Removing a user makes the link's cache stale.
    let (status, _) = lab.control("DELETE", "users/1001", None).await;
    assert_eq!(status, 204);
    let e = lab.client.set_name("1001", "A", "B").await.unwrap_err();
    assert_eq!(e.verdict(), Verdict::Stale);
    let (status, _) = lab
        .control("PUT", "users/2001", Some(json!({"user_id": "", "extension": "2001", "number": null, "first_name": null, "last_name": null, "call_permission": null})))
        .await;
    assert_eq!(status, 204);
    lab.client.set_name("2001", "New", "Room").await.unwrap();

    let (_, log) = lab.control("GET", "received", None).await;
    let log = log.as_array().unwrap();
    let last = log.last().unwrap();
    assert_eq!(last["path"], "/api/v1/groups/hotel-42/users/2001/name");
    assert_eq!(last["status"], 200);
    lab.control("DELETE", "received", None).await;
    let (_, log) = lab.control("GET", "received", None).await;
    assert_eq!(log, json!([]));
}
