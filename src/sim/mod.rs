//! `kandy-sim`: a Kandy portal on this machine, serving the contract of kandy-api.md
//! (or another spelling of it, given an `Api`) and enforcing every check the real portal
//! makes. For labs without a portal account, for tests and for benchmarks.
//!
//! - `state`: the users, token, nonces, injected faults and the request log.
//! - `portal`: the endpoints and the checks.
//! - `control`: the `/_sim/...` HTTP API; the `Sim` handle does the same from Rust.
//!
//! `start` binds (`127.0.0.1:0` by default) and returns a handle; dropping the handle
//! stops the server.

mod control;
mod portal;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use state::{Down, Fault, Received, Stats, UserEdit, seed};

use crate::config::{Api, HmacMode};
use crate::kandy::User;

/// How the simulated portal and its account are set up.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// How many users `seed` puts in the group.
    pub users: usize,
    pub user_id: String,
    pub password: String,
    pub group_id: String,
    /// The account's HMAC key; empty: the portal checks no signature.
    pub hmac: String,
    pub hmac_mode: HmacMode,
    pub use_nonce: bool,
    /// Where the API lives under the host, e.g. `/api/v1`; empty for the root.
    pub base_path: String,
    pub api: Api,
    /// The call permissions the group defines; any other is 422.
    pub permissions: Vec<String>,
    pub latency: Duration,
    pub max_skew_secs: u64,
    /// Moves the portal's clock (its `Date` and its skew check) away from this machine's.
    pub clock_offset_secs: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            users: 50,
            user_id: "duvoice".into(),
            password: "sim-password".into(),
            group_id: "hotel-42".into(),
            hmac: "sim-hmac-key".into(),
            hmac_mode: HmacMode::Sign,
            use_nonce: false,
            base_path: "/api/v1".into(),
            api: Api::default(),
            permissions: ["internal", "local", "national", "international"]
                .map(String::from)
                .to_vec(),
            latency: Duration::ZERO,
            max_skew_secs: 300,
            clock_offset_secs: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    Up,
    Refusing,
    Stopped,
}

/// What the server's handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    options: Options,
    routes: portal::Routes,
    state: Mutex<state::State>,
    power: watch::Sender<Power>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, state::State> {
        // A handler that panicked leaves consistent data: keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> SystemTime {
        portal::portal_now(self.options.clock_offset_secs)
    }

    fn unavailable(&self, retry_after: Option<String>) {
        let mut st = self.lock();
        st.unavailable = true;
        st.unavailable_retry_after = retry_after;
    }

    fn refuse(&self) {
        self.power.send_replace(Power::Refusing);
    }

    fn come_back(&self) {
        self.lock().unavailable = false;
        self.power.send_if_modified(|p| {
            let changed = *p == Power::Refusing;
            if changed {
                *p = Power::Up;
            }
            changed
        });
    }

    fn put_user(&self, user: User) {
        let mut st = self.lock();
        match st.user_mut(&user.user_id) {
            Some(u) => *u = user,
            None => st.users.push(user),
        }
    }

    fn remove_user(&self, user_id: &str) -> bool {
        let mut st = self.lock();
        let before = st.users.len();
        st.users.retain(|u| u.user_id != user_id);
        st.users.len() != before
    }
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Sim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

/// Binds `options.listen` and serves until the handle is dropped.
pub async fn start(options: Options) -> std::io::Result<Sim> {
    let listener = TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let token = format!("simtok-{}", crate::kandy::sign::new_nonce());
    let (power, _) = watch::channel(Power::Up);
    let shared = Arc::new(Shared {
        routes: portal::Routes::new(&options.api),
        state: Mutex::new(state::State::new(seed(options.users), token)),
        power,
        options,
    });
    shared.lock().latency = shared.options.latency;
    let app = control::routes().fallback(portal::handle).with_state(shared.clone());
    let task = tokio::spawn(serve(listener, addr, app, shared.power.subscribe()));
    Ok(Sim {
        addr,
        shared,
        task: Some(task),
    })
}

/// Serves while up; while refusing, the listener is closed (connections are refused)
/// and bound again on the same address when the portal comes back.
async fn serve(first: TcpListener, addr: SocketAddr, app: axum::Router, mut power: watch::Receiver<Power>) {
    let mut listener = Some(first);
    loop {
        let l = match listener.take() {
            Some(l) => l,
            None => match TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("kandy-sim cannot listen on {addr} again: {e}");
                    return;
                }
            },
        };
        let mut rx = power.clone();
        let stop = async move {
            let _ = rx.wait_for(|p| *p != Power::Up).await;
        };
        if let Err(e) = axum::serve(l, app.clone()).with_graceful_shutdown(stop).await {
            tracing::error!("kandy-sim stopped serving: {e}");
            return;
        }
        let back = power.wait_for(|p| *p != Power::Refusing).await.map(|p| *p);
        if !matches!(back, Ok(Power::Up)) {
            return;
        }
    }
}

impl Sim {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `kandy.api_base_url` for this simulator.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.options.base_path)
    }

    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// The `[kandy]` block a link needs to talk to this simulator (with `[kandy.api]`
    /// when the simulator spells the contract differently).
    pub fn link_toml(&self) -> String {
        let o = &self.shared.options;
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut t = format!(
            "[kandy]\napi_base_url = {}\nallow_insecure_http = true\nuser_id = {}\npassword = {}\ngroup_id = {}\n",
            q(&self.base_url()),
            q(&o.user_id),
            q(&o.password),
            q(&o.group_id),
        );
        if !o.hmac.is_empty() {
            t.push_str(&format!("hmac = {}\n", q(&o.hmac)));
        }
        if o.hmac_mode == HmacMode::Static {
            t.push_str("hmac_mode = \"static\"\n");
        }
        t.push_str(&format!("use_nonce = {}\n", o.use_nonce));
        if o.api != Api::default() {
            t.push_str("\n[kandy.api]\n");
            t.push_str(&toml::to_string(&o.api).unwrap_or_default());
        }
        t
    }

    /// Fails the next `count` portal requests with `status` (and `Retry-After`).
    pub fn fail_next(&self, count: u32, status: u16, retry_after: Option<&str>) {
        self.fail(Fault {
            count,
            status,
            retry_after: retry_after.map(str::to_string),
            error: None,
            path_contains: None,
        });
    }

    /// Injects a fault in full: error code, and only on some paths.
    pub fn fail(&self, fault: Fault) {
        self.shared.lock().fault = Some(fault);
    }

    /// Waits this long before every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Goes down: refuses connections, or answers every portal request 503.
    pub fn go_down(&self, how: Down) {
        match how {
            Down::Refuse => self.shared.refuse(),
            Down::Unavailable => self.shared.unavailable(None),
        }
    }

    pub fn come_back(&self) {
        self.shared.come_back();
    }

    /// Issues a new token, as a password change in the portal does; returns it.
    pub fn regenerate_token(&self) -> String {
        self.shared.lock().new_token()
    }

    /// The current token.
    pub fn token(&self) -> String {
        self.shared.lock().token.clone()
    }

    /// Edits a user as a portal administrator would; false when there is no such user.
    pub fn edit_user(&self, user_id: &str, edit: &UserEdit) -> bool {
        let mut st = self.shared.lock();
        st.user_mut(user_id).map(|u| edit.apply(u)).is_some()
    }

    /// Adds a user, or replaces the one with the same id.
    pub fn put_user(&self, user: User) {
        self.shared.put_user(user);
    }

    pub fn remove_user(&self, user_id: &str) -> bool {
        self.shared.remove_user(user_id)
    }

    pub fn user(&self, user_id: &str) -> Option<User> {
        self.shared.lock().user_mut(user_id).map(|u| u.clone())
    }

    pub fn users(&self) -> Vec<User> {
        self.shared.lock().users.clone()
    }

    /// The portal requests received (the last 20,000), oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.iter().cloned().collect()
    }

    pub fn clear_received(&self) {
        self.shared.lock().received.clear();
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().stats()
    }

    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        self.shared.power.send_replace(Power::Stopped);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shared.power.send_replace(Power::Stopped);
    }
}
