//! The Kandy client against `kandy-sim` on 127.0.0.1: the "Done when" of issue 3.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kandy_link::config::{Api, Config, HmacMode};
use kandy_link::kandy::classify::Verdict;
use kandy_link::kandy::packet::{Packet, PacketSink};
use kandy_link::kandy::sign::{self, Signed};
use kandy_link::kandy::{Client, Hooks, KandyError};
use kandy_link::sim::{self, Down, Fault, Options, Received, Sim};
use kandy_link::store::Store;

async fn simulator(options: Options) -> Sim {
    sim::start(options).await.unwrap()
}

fn config(sim: &Sim, extra: &str) -> Config {
    let text = format!("{}{extra}", sim.link_toml());
    Config::parse(Path::new("/nonexistent/kandy-link.toml"), &text).unwrap()
}

fn client(sim: &Sim) -> Client {
    Client::from_config(&config(sim, ""), Hooks::default()).unwrap()
}

fn nonces_on() -> Options {
    Options {
        use_nonce: true,
        ..Options::default()
    }
}

/// Whether the portal could verify `r`'s signature with the account's key.
fn verifies(sim: &Sim, r: &Received) -> bool {
    let h = |n: &str| r.header(n).unwrap_or("");
    let signed = Signed {
        method: &r.method,
        path_and_query: &r.path,
        user_id: h("x-user-id"),
        group_id: h("x-group-id"),
        timestamp: h("x-timestamp"),
        nonce: h("x-nonce"),
        body: r.body.as_bytes(),
    };
    sign::verify(HmacMode::Sign, &sim.options().hmac, &signed, h("x-hmac"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A request made by hand, signed with the simulator's key unless told otherwise.
struct Hand<'a> {
    sim: &'a Sim,
    method: &'a str,
    path: String,
    body: &'a str,
    timestamp: u64,
    nonce: String,
    token: String,
    group: String,
    hmac: Option<String>,
}

impl<'a> Hand<'a> {
    fn new(sim: &'a Sim, method: &'a str, path: &str, body: &'a str) -> Self {
        Hand {
            sim,
            method,
            path: format!("{}{path}", sim.options().base_path),
            body,
            timestamp: unix_now(),
            nonce: sign::new_nonce(),
            token: sim.token(),
            group: sim.options().group_id.clone(),
            hmac: None,
        }
    }

    async fn send(&self) -> (u16, serde_json::Value) {
        let o = self.sim.options();
        let ts = self.timestamp.to_string();
        let signed = Signed {
            method: self.method,
            path_and_query: &self.path,
            user_id: &o.user_id,
            group_id: &self.group,
            timestamp: &ts,
            nonce: &self.nonce,
            body: self.body.as_bytes(),
        };
        let hmac = self.hmac.clone().unwrap_or_else(|| sign::hmac_hex(&o.hmac, &signed));
        let url = format!("http://{}{}", self.sim.addr(), self.path);
        let r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .request(self.method.parse().unwrap(), url)
            .header("X-User-ID", &o.user_id)
            .header("X-Group-ID", &self.group)
            .header("X-User-Token", &self.token)
            .header("X-Timestamp", ts)
            .header("X-Nonce", &self.nonce)
            .header("X-HMAC", hmac)
            .header("Content-Type", "application/json")
            .body(self.body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }
}

#[tokio::test]
async fn a_request_with_every_header_right_is_accepted() {
    let sim = simulator(nonces_on()).await;
    let client = client(&sim);
    let user = client.set_name("1001", "John", "Smith").await.unwrap().unwrap();
    assert_eq!(
        (user.first_name.as_deref(), user.last_name.as_deref()),
        (Some("John"), Some("Smith"))
    );
    assert_eq!(sim.user("1001").unwrap().first_name.as_deref(), Some("John"));

    let received = sim.received();
    let [login, put] = received.as_slice() else {
        panic!("expected a login and the update, got {received:#?}")
    };
    assert_eq!(
        (login.method.as_str(), login.path.as_str()),
        ("POST", "/api/v1/auth/login")
    );
    assert_eq!(login.header("x-user-token"), None, "a login is sent without a token");
    assert_eq!(login.status, 200);

    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/api/v1/groups/hotel-42/users/1001/name")
    );
    assert_eq!(put.status, 200);
    assert_eq!(put.body, r#"{"firstName":"John","lastName":"Smith"}"#);
    assert_eq!(put.header("x-user-id"), Some("duvoice"));
    assert_eq!(put.header("x-group-id"), Some("hotel-42"));
    assert_eq!(put.header("x-user-token"), Some(sim.token().as_str()));
    let ts: u64 = put.header("x-timestamp").unwrap().parse().unwrap();
    assert!(ts.abs_diff(unix_now()) < 5);
    let nonce = put.header("x-nonce").unwrap();
    assert!(nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(verifies(&sim, put));
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(put.header("accept"), Some("application/json"));

    // A request without a body carries no Content-Type.
    client.list_users_page(1, 200).await.unwrap();
    let list = sim.received().pop().unwrap();
    assert_eq!(list.path, "/api/v1/groups/hotel-42/users?page=1&pageSize=200");
    assert_eq!(list.header("content-type"), None);
    assert_eq!(list.status, 200);
}

#[tokio::test]
async fn a_wrong_signature_a_reused_nonce_or_an_old_timestamp_is_refused_with_the_specs_error() {
    let sim = simulator(nonces_on()).await;
    let body = r#"{"firstName":"John","lastName":"Smith"}"#;
    let path = "/groups/hotel-42/users/1001/name";
    let error = |v: &serde_json::Value| v["error"].as_str().unwrap_or_default().to_string();

    let good = Hand::new(&sim, "PUT", path, body);
    let (status, _) = good.send().await;
    assert_eq!(status, 200);

    let (status, v) = good.send().await;
    assert_eq!((status, error(&v).as_str()), (401, "nonce_reused"));

    let bad = Hand {
        hmac: Some("0".repeat(64)),
        ..Hand::new(&sim, "PUT", path, body)
    };
    let (status, v) = bad.send().await;
    assert_eq!((status, error(&v).as_str()), (401, "bad_signature"));

    let old = Hand {
        timestamp: unix_now() - 301,
        ..Hand::new(&sim, "PUT", path, body)
    };
    let (status, v) = old.send().await;
    assert_eq!((status, error(&v).as_str()), (401, "clock_skew"));

    // And the other checks of the spec.
    let superseded = Hand::new(&sim, "PUT", path, body);
    sim.regenerate_token();
    let (status, v) = superseded.send().await;
    assert_eq!((status, error(&v).as_str()), (401, "invalid_token"));

    let other_group = Hand {
        group: "hotel-43".into(),
        ..Hand::new(&sim, "PUT", path, body)
    };
    let (status, v) = other_group.send().await;
    assert_eq!((status, error(&v).as_str()), (403, "forbidden"));

    let unknown = Hand::new(
        &sim,
        "PUT",
        "/groups/hotel-42/users/1001/call-permission",
        r#"{"callPermission":"galactic"}"#,
    );
    let (status, v) = unknown.send().await;
    assert_eq!((status, error(&v).as_str()), (422, "unknown_call_permission"));

    // The client reads a refused signature as an authentication failure.
    let wrong_key = Client::from_config(&config(&sim, "").with_hmac("not-the-key"), Hooks::default()).unwrap();
    let err = wrong_key.set_name("1001", "A", "B").await.unwrap_err();
    assert_eq!(err.verdict(), Verdict::AuthFailed, "{err}");
    assert!(err.to_string().contains("kandy.hmac"), "{err}");
}

trait WithHmac {
    fn with_hmac(self, key: &str) -> Config;
}

impl WithHmac for Config {
    fn with_hmac(mut self, key: &str) -> Config {
        self.kandy.hmac = kandy_link::config::SecretSource::Inline(kandy_link::config::Secret::new(key));
        self
    }
}

#[tokio::test]
async fn two_attempts_of_the_same_update_carry_different_nonces_and_both_verify() {
    let sim = simulator(nonces_on()).await;
    let client = client(&sim);
    client.login().await.unwrap();
    sim.fail_next(1, 502, None);
    let first = client.set_call_permission("1001", "international").await.unwrap_err();
    assert_eq!(first.verdict(), Verdict::Failed, "{first}");
    client.set_call_permission("1001", "international").await.unwrap();

    let attempts: Vec<Received> = sim
        .received()
        .into_iter()
        .filter(|r| r.path.ends_with("/call-permission"))
        .collect();
    assert_eq!(attempts.iter().map(|r| r.status).collect::<Vec<_>>(), [502, 204]);
    assert_eq!(attempts[0].body, attempts[1].body);
    assert_ne!(attempts[0].header("x-nonce"), attempts[1].header("x-nonce"));
    assert!(attempts.iter().all(|r| verifies(&sim, r)));
    assert_eq!(
        sim.user("1001").unwrap().call_permission.as_deref(),
        Some("international")
    );
}

#[tokio::test]
async fn a_regenerated_token_met_by_eight_concurrent_requests_costs_exactly_one_login() {
    let sim = simulator(nonces_on()).await;
    let client = client(&sim);
    client.list_users_page(1, 1).await.unwrap();
    assert_eq!(sim.stats().logins, 1);

    sim.regenerate_token();
    let ids: Vec<String> = sim.users().into_iter().take(8).map(|u| u.user_id).collect();
    let tasks: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (c, id) = (client.clone(), id.clone());
            tokio::spawn(async move { c.set_name(&id, "Guest", &format!("No{i}")).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(sim.stats().logins, 2, "one login after the regeneration");
    let refused = sim.received().iter().filter(|r| r.status == 401).count();
    assert!(refused >= 1, "the old token met the portal");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(sim.user(id).unwrap().last_name.unwrap(), format!("No{i}"));
    }
}

#[tokio::test]
async fn answers_are_classified_403_auth_failed_404_stale_429_unavailable_for_its_retry_after() {
    let sim = simulator(Options::default()).await;
    let client = client(&sim);
    client.login().await.unwrap();

    sim.fail_next(1, 403, None);
    let e = client.set_name("1001", "A", "B").await.unwrap_err();
    assert_eq!(e.verdict(), Verdict::AuthFailed, "{e}");
    assert!(matches!(e, KandyError::AuthFailed { .. }));

    let e = client.set_name("no-such-user", "A", "B").await.unwrap_err();
    assert_eq!(e.verdict(), Verdict::Stale, "{e}");

    sim.fail_next(1, 429, Some("120"));
    let e = client.set_name("1001", "A", "B").await.unwrap_err();
    assert_eq!(
        e.verdict(),
        Verdict::Unavailable {
            wait: Duration::from_secs(120)
        },
        "{e}"
    );
    assert!(e.to_string().contains("trying again in 120s"), "{e}");

    // A portal that refuses connections is unavailable for one interval, and comes back.
    sim.go_down(Down::Refuse);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = client.set_name("1001", "A", "B").await.unwrap_err();
    assert_eq!(
        e.verdict(),
        Verdict::Unavailable {
            wait: Duration::from_secs(60)
        },
        "{e}"
    );
    sim.come_back();
    let mut back = false;
    for _ in 0..50 {
        if client.set_name("1001", "A", "B").await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "the portal came back");

    sim.go_down(Down::Unavailable);
    let e = client.set_name("1001", "A", "B").await.unwrap_err();
    assert!(matches!(e.verdict(), Verdict::Unavailable { .. }), "{e}");
    sim.come_back();
    client.set_name("1001", "A", "B").await.unwrap();
}

#[tokio::test]
async fn a_listing_of_1050_users_comes_back_whole_over_pages() {
    let sim = simulator(Options {
        users: 1050,
        ..Options::default()
    })
    .await;
    let users = client(&sim).list_users().await.unwrap();
    assert_eq!(users, sim.users());
    let pages: Vec<String> = sim
        .received()
        .into_iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path)
        .collect();
    assert_eq!(pages.len(), 6);
    assert_eq!(pages[5], "/api/v1/groups/hotel-42/users?page=6&pageSize=200");
}

#[tokio::test]
async fn a_portal_with_other_paths_and_field_names_works_through_kandy_api_alone() {
    let api = Api {
        login: "POST /session".into(),
        list_users: "GET /v2/tenants/{group}/extensions".into(),
        list_query: "p={page}&n={size}".into(),
        set_name: "PATCH /v2/tenants/{group}/extensions/{user}".into(),
        set_call_permission: "POST /v2/tenants/{group}/extensions/{user}/cos".into(),
        name_body: r#"{"display":{"given":{first},"family":{last}}}"#.into(),
        call_permission_body: r#"{"cos":{permission}}"#.into(),
        login_body: r#"{"credentials":{"login":{user_id},"secret":{password}}}"#.into(),
        token_field: "accessToken".into(),
        users_field: "items".into(),
        user_id_field: "id".into(),
        number_field: "did".into(),
        extension_field: "ext".into(),
        first_name_field: "given".into(),
        last_name_field: "family".into(),
        call_permission_field: "cos".into(),
        total_pages_field: "pages".into(),
        error_field: "code".into(),
        page_size: 50,
    };
    let sim = simulator(Options {
        users: 120,
        api,
        base_path: String::new(),
        group_id: "tenant 7".into(),
        use_nonce: true,
        ..Options::default()
    })
    .await;
    // The link's configuration is the block the simulator prints, [kandy.api] included.
    assert!(sim.link_toml().contains("[kandy.api]"));
    let client = client(&sim);

    let users = client.list_users().await.unwrap();
    assert_eq!(users, sim.users());
    assert_eq!(users[1].user_id, "1002@hotel");
    client.set_name("1002@hotel", "Zoë", "Öz").await.unwrap();
    client.set_call_permission("1002@hotel", "local").await.unwrap();
    let u = sim.user("1002@hotel").unwrap();
    assert_eq!(
        (
            u.first_name.as_deref(),
            u.last_name.as_deref(),
            u.call_permission.as_deref()
        ),
        (Some("Zoë"), Some("Öz"), Some("local"))
    );
    let e = client.set_call_permission("1002@hotel", "galactic").await.unwrap_err();
    match &e {
        KandyError::Permanent { status, error, .. } => {
            assert_eq!((*status, error.as_deref()), (422, Some("unknown_call_permission")));
        }
        other => panic!("expected a permanent failure, got {other}"),
    }
    sim.regenerate_token();
    client.set_name("1001", "A", "B").await.unwrap();
    assert_eq!(sim.stats().logins, 2);

    let paths: Vec<String> = sim.received().into_iter().map(|r| r.path).collect();
    assert!(paths.contains(&"/session".to_string()));
    assert!(paths.contains(&"/v2/tenants/tenant%207/extensions?p=3&n=50".to_string()));
    assert!(paths.contains(&"/v2/tenants/tenant%207/extensions/1002%40hotel/cos".to_string()));
}

#[tokio::test]
async fn a_token_obtained_by_login_is_kept_in_the_store_across_restarts() {
    let sim = simulator(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = || Hooks {
        tokens: Some(Arc::new(Mutex::new(Store::open(&dir.path().join("s.db")).unwrap()))),
        packets: None,
    };
    let config = config(&sim, "");
    Client::from_config(&config, hooks())
        .unwrap()
        .list_users_page(1, 1)
        .await
        .unwrap();
    assert_eq!(sim.stats().logins, 1);
    // A restart: a new client on the same store sends the kept token, no login.
    Client::from_config(&config, hooks())
        .unwrap()
        .list_users_page(1, 1)
        .await
        .unwrap();
    assert_eq!(sim.stats().logins, 1);
}

#[tokio::test]
async fn the_packet_log_sees_every_request_and_answer_and_no_secret() {
    let sim = simulator(nonces_on()).await;
    let packets: Arc<Mutex<Vec<Packet>>> = Arc::default();
    let seen = packets.clone();
    let hooks = Hooks {
        tokens: None,
        packets: Some(PacketSink::new(move |p| seen.lock().unwrap().push(p.clone()))),
    };
    let client = Client::from_config(&config(&sim, ""), hooks).unwrap();
    client.set_name("1001", "John", "Smith").await.unwrap();
    let packets = packets.lock().unwrap();
    assert_eq!(packets.len(), 4, "login and update, each a request and an answer");
    let all: String = packets.iter().map(|p| p.text.as_str()).collect();
    let received = sim.received();
    for secret in [
        sim.options().password.as_str(),
        sim.options().hmac.as_str(),
        sim.token().as_str(),
        received[1].header("x-hmac").unwrap(),
    ] {
        assert!(!all.contains(secret), "a secret reached the packet log:\n{all}");
    }
    assert!(all.contains("x-user-token: ********"));
    assert!(all.contains(r#""password":"********""#));
    assert!(all.contains(r#"{"token":"********"}"#));
    assert!(all.contains(r#"{"firstName":"John","lastName":"Smith"}"#));
}

#[tokio::test]
async fn a_second_invalid_token_right_after_a_login_is_an_auth_failure_not_another_login() {
    let sim = simulator(Options::default()).await;
    let client = client(&sim);
    client.login().await.unwrap();
    // The portal refuses set-name with invalid_token twice: before and after the login.
    sim.fail(Fault {
        count: 2,
        status: 401,
        retry_after: None,
        error: Some("invalid_token".into()),
        path_contains: Some("/name".into()),
    });
    let e = client.set_name("1001", "A", "B").await.unwrap_err();
    assert_eq!(e.verdict(), Verdict::AuthFailed, "{e}");
    assert!(e.to_string().contains("just issued"), "{e}");
    assert_eq!(
        sim.stats().logins,
        2,
        "the first invalid_token logged in once, the second did not"
    );
}

#[tokio::test]
async fn without_a_password_an_invalid_token_is_an_auth_failure() {
    let sim = simulator(Options::default()).await;
    let text = sim.link_toml().replace(
        "password = \"sim-password\"",
        &format!("user_token = \"{}\"", sim.token()),
    );
    let config = Config::parse(Path::new("/nonexistent/kandy-link.toml"), &text).unwrap();
    let client = Client::from_config(&config, Hooks::default()).unwrap();
    client.set_name("1001", "A", "B").await.unwrap();
    sim.regenerate_token();
    let e = client.set_name("1001", "A", "B").await.unwrap_err();
    assert_eq!(e.verdict(), Verdict::AuthFailed, "{e}");
    assert!(e.to_string().contains("kandy.user_token"), "{e}");
    assert_eq!(sim.stats().logins, 0);
}

#[tokio::test]
async fn a_ca_file_without_certificates_is_a_setup_error_naming_the_key() {
    let sim = simulator(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let mut config = config(&sim, "");
    config.kandy.ca_file = Some(ca);
    let e = Client::from_config(&config, Hooks::default()).unwrap_err();
    assert!(matches!(e, KandyError::Setup(_)), "{e}");
    assert!(e.to_string().contains("kandy.ca_file"), "{e}");
}
