//! `cargo bench`: the performance table of issue 7. Each line runs against a baseline
//! measured in the same run (these machines are shared and noisy) and prints the ratio.
//! Set `KANDY_BENCH_ONLY=burst|intake|cache` to run one line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod burst;
mod cache;
mod intake;

/// A request as the bare baselines send it: every header of kandy-api.md, signed with
/// the simulator's key, without going through kandy-link's client.
pub fn bare_request(
    http: &reqwest::Client,
    o: &kandy_link::sim::Options,
    token: &str,
    method: reqwest::Method,
    url: &str,
    path_and_query: &str,
    body: &'static str,
) -> reqwest::RequestBuilder {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let signed = kandy_link::kandy::sign::Signed {
        method: method.as_str(),
        path_and_query,
        user_id: &o.user_id,
        group_id: &o.group_id,
        timestamp: &timestamp,
        nonce: "",
        body: body.as_bytes(),
    };
    let hmac = kandy_link::kandy::sign::x_hmac(kandy_link::config::HmacMode::Sign, &o.hmac, &signed);
    let mut request = http
        .request(method, url)
        .header("x-user-id", &o.user_id)
        .header("x-group-id", &o.group_id)
        .header("x-user-token", token)
        .header("x-timestamp", timestamp)
        .header("x-hmac", hmac)
        .header("accept", "application/json");
    if !body.is_empty() {
        request = request.header("content-type", "application/json").body(body);
    }
    request
}

/// One line of the table.
#[derive(Debug)]
pub struct Row {
    pub name: String,
    pub baseline: String,
    pub measured: String,
    pub ratio: f64,
    pub target: &'static str,
    pub ok: bool,
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let only = std::env::var("KANDY_BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let dir = tempfile::tempdir_in(std::env::var_os("KANDY_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    if wanted("burst") {
        rows.extend(runtime.block_on(burst::run(dir.path())));
    }
    if wanted("intake") {
        rows.push(intake::run(dir.path()));
    }
    if wanted("cache") {
        rows.extend(runtime.block_on(cache::run()));
    }
    println!("\n| benchmark | baseline | measured | ratio | target | |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.2} | {} | {} |",
            r.name,
            r.baseline,
            r.measured,
            r.ratio,
            r.target,
            if r.ok { "ok" } else { "MISSED" }
        );
    }
}
