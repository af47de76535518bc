//! `kandy-sim`: the Kandy portal simulator of kandy-api.md (see `kandy_link::sim`). At
//! start it prints the `[kandy]` block a link needs to talk to it; it runs until
//! interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kandy_link::config::{Api, HmacMode};
use kandy_link::sim;

#[derive(Debug, Parser)]
#[command(
    name = "kandy-sim",
    version,
    about = "A Kandy portal on this machine, for labs, tests and benchmarks"
)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8788")]
    listen: SocketAddr,
    /// How many users the group starts with (mailboxes 1001, 1002, ...).
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// The account's X-User-ID.
    #[arg(long, default_value = "duvoice")]
    user_id: String,
    /// The account's password.
    #[arg(long, default_value = "sim-password")]
    password: String,
    /// The group (X-Group-ID).
    #[arg(long, default_value = "hotel-42")]
    group_id: String,
    /// The account's HMAC key; "" to check no signature.
    #[arg(long, default_value = "sim-hmac-key")]
    hmac: String,
    /// "sign" or "static".
    #[arg(long, default_value = "sign", value_parser = ["sign", "static"])]
    hmac_mode: String,
    /// Require a fresh X-Nonce on every request.
    #[arg(long)]
    nonce: bool,
    /// Wait this long before every answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Where the API lives under the host ("" for the root).
    #[arg(long, default_value = "/api/v1")]
    base_path: String,
    /// A TOML file with `[kandy.api]` keys (login, list_users, ... ) at its top level:
    /// the simulator then spells the contract that way.
    #[arg(long, value_name = "FILE")]
    api: Option<PathBuf>,
    /// The call permissions the group defines, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "internal,local,national,international")]
    permissions: Vec<String>,
    /// Moves the portal's clock by this many seconds (to try clock skew).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    clock_offset_secs: i64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kandy-sim: {e}");
            ExitCode::from(2)
        }
    }
}

fn options(args: Args) -> Result<sim::Options, String> {
    let base = args.base_path.trim_end_matches('/').to_string();
    if !base.is_empty() && !base.starts_with('/') {
        return Err(format!("--base-path `{}` must start with /", args.base_path));
    }
    let api = match &args.api {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            toml::from_str::<Api>(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Api::default(),
    };
    Ok(sim::Options {
        listen: args.listen,
        users: args.users,
        user_id: args.user_id,
        password: args.password,
        group_id: args.group_id,
        hmac: args.hmac,
        hmac_mode: if args.hmac_mode == "static" {
            HmacMode::Static
        } else {
            HmacMode::Sign
        },
        use_nonce: args.nonce,
        base_path: base,
        api,
        permissions: args.permissions,
        latency: Duration::from_millis(args.latency_ms),
        clock_offset_secs: args.clock_offset_secs,
        ..sim::Options::default()
    })
}

fn run(args: Args) -> Result<(), String> {
    let options = options(args)?;
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).try_init();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let listen = options.listen;
        let users = options.users;
        let sim = sim::start(options)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        println!("# kandy-link settings for this simulator:");
        println!("{}", sim.link_toml());
        eprintln!(
            "kandy-sim: serving {users} users on {}; control API at http://{}/_sim/ (received, stats, fail, latency, down, up, token, users); Ctrl-C stops",
            sim.base_url(),
            sim.addr()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        sim.stop().await;
        Ok(())
    })
}
