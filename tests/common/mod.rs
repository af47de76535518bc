//! What the integration tests share: a hotel site in a temporary folder (config, store,
//! spool) and the real `kandy-link` binary run against it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_kandy-link");

/// The five examples of pms-events.md, as written there.
pub const EXAMPLES: &str = r#"{"id": "opera-778812", "type": "check_in", "room": "101", "guest": {"id": "778812", "first": "John", "last": "Smith", "title": "Mr"}}
{"type": "guest_change", "room": "101", "guest": {"id": "778812", "first": "Jon", "last": "Smith"}}
{"type": "call_permission", "room": "101", "level": "2"}
{"type": "room_move", "from": "101", "room": "205"}
{"type": "check_out", "room": "205"}
"#;

pub struct Site {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Site {
    pub fn new() -> Site {
        Site::with("")
    }

    /// A site whose config has `extra` appended (whole sections). Its portal is a closed
    /// port on this machine: the link finds it unreachable at once.
    pub fn with(extra: &str) -> Site {
        let kandy = "[kandy]\napi_base_url = \"http://127.0.0.1:9/api/v1\"\nallow_insecure_http = true\nuser_id = \"duvoice\"\ngroup_id = \"hotel-42\"\npassword = \"pw\"\n";
        Site::with_kandy(kandy, extra)
    }

    /// A site talking to `sim`, with `extra` sections.
    pub fn for_sim(sim: &kandy_link::sim::Sim, extra: &str) -> Site {
        Site::with_kandy(&sim.link_toml(), extra)
    }

    fn with_kandy(kandy: &str, extra: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("kandy-link.toml");
        let text = format!(
            "{kandy}\n[queue]\nstate_dir = \"state\"\nspool_dir = \"spool\"\n\n[logging]\ndir = \"log\"\n{extra}"
        );
        std::fs::write(&config, text).unwrap();
        Site { dir, config }
    }

    /// Replaces the configuration file (for a reload).
    pub fn rewrite_config(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn incoming(&self) -> PathBuf {
        self.path("spool/incoming")
    }

    pub fn rejected(&self) -> PathBuf {
        self.path("spool/rejected")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(&self.config).args(args);
        c
    }

    /// Runs a command with `stdin` as its input.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A command may stop reading early (input over queue.max_file_bytes).
        if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child.wait_with_output().unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args, "");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)))
    }

    pub fn status(&self) -> Value {
        self.json(&["status", "--json"])
    }

    /// Starts `kandy-link run` and waits until it holds the store (`status` says running).
    pub fn daemon(&self) -> Daemon {
        self.daemon_with(&[])
    }

    pub fn daemon_with(&self, env: &[(&str, &str)]) -> Daemon {
        let log = std::fs::File::create(self.path("daemon.stderr")).unwrap();
        let mut c = self.cmd(&["run"]);
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().unwrap();
        let mut d = Daemon { child };
        wait_for(Duration::from_secs(20), || {
            assert!(
                d.child.try_wait().unwrap().is_none(),
                "the daemon exited at start: {}",
                self.daemon_log()
            );
            self.incoming().is_dir() && self.status()["daemon"]["running"] == true
        });
        d
    }

    /// Writes `incoming/NAME` the way a producer must: a temporary name, then a rename.
    pub fn drop_file(&self, name: &str, content: &[u8]) {
        let tmp = self.incoming().join(format!(".{name}.tmp"));
        std::fs::create_dir_all(self.incoming()).unwrap();
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, self.incoming().join(name)).unwrap();
    }

    /// Names in `incoming/` that a producer has finished.
    pub fn waiting(&self) -> Vec<String> {
        names(&self.incoming())
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect()
    }

    /// What the last daemon started here wrote to standard error.
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.stderr")).unwrap_or_default()
    }

    pub fn store(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path("state/kandy-link.db")).unwrap()
    }
}

pub struct Daemon {
    pub child: Child,
}

impl Daemon {
    /// SIGKILL, as a crash or `kill -9` would.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        signal(self.child.id(), "TERM");
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(r) => r
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "condition not met within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A small deterministic random source (xorshift), seeded and printed by each test.
pub struct Rng(pub u64);

impl Rng {
    pub fn seeded() -> Rng {
        let seed = std::env::var("KANDY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("random seed {seed} (set KANDY_TEST_SEED to repeat)");
        Rng(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

impl Site {
    /// The configuration file's text.
    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap()
    }

    /// Saves a new configuration the way an editor does: a temporary file renamed over
    /// the old one (the daemon watches the folder for exactly this).
    pub fn save_config(&self, text: &str) {
        let tmp = self.config.with_extension("toml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }

    /// The names in the log folder.
    pub fn log_files(&self) -> Vec<String> {
        names(&self.path("log"))
    }

    /// Every log file's text, oldest name first.
    pub fn log_text(&self) -> String {
        self.log_files()
            .iter()
            .map(|n| std::fs::read_to_string(self.path("log").join(n)).unwrap_or_default())
            .collect()
    }

    /// Waits until the log files hold `needle` at least `count` times.
    pub fn wait_log(&self, needle: &str, count: usize, limit: Duration) {
        let start = Instant::now();
        while self.log_text().matches(needle).count() < count {
            assert!(
                start.elapsed() < limit,
                "{needle:?} not {count} times in the log within {limit:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// How many times each marker (a guest's last name) is in the store's events.
pub fn markers(site: &Site) -> std::collections::HashMap<String, usize> {
    let db = site.store();
    let mut stmt = db.prepare("SELECT raw FROM events").unwrap();
    let mut out = std::collections::HashMap::new();
    for raw in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        let v: Value = serde_json::from_str(&raw.unwrap()).unwrap();
        if let Some(last) = v["guest"]["last"].as_str() {
            *out.entry(last.to_string()).or_insert(0) += 1;
        }
    }
    out
}

/// The Kandy user `kandy_link::sim::seed` gives mailbox `1001 + i`.
pub fn seeded_user(i: usize) -> String {
    let mailbox = 1001 + i;
    match i % 6 {
        0 | 3 => mailbox.to_string(),
        1 | 4 => format!("{mailbox}@hotel"),
        _ => format!("usr-{:05}", i + 1),
    }
}

/// Fails when a secret is in any log file, the daemon's standard error, `status` or
/// `rooms` output (text and JSON), or `extra` (error messages a test collected).
pub fn assert_no_secrets(site: &Site, secrets: &[String], extra: &str) {
    let mut seen = format!("{}{}{extra}", site.log_text(), site.daemon_log());
    for args in [&["status"][..], &["status", "--json"], &["rooms"], &["rooms", "--json"]] {
        let out = site.run(args, "");
        seen.push_str(&text(&out));
    }
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !seen.contains(secret.as_str()),
            "a secret ({} chars) is shown",
            secret.len()
        );
    }
}

/// An `enqueue` of ten events marked `marks`, which a crash test may kill at any moment.
pub struct Enqueue {
    pub child: Child,
    pub marks: Vec<String>,
}

impl Site {
    /// Starts `enqueue` of `body` (ten events) and, one time in `kill_one_in`, kills it
    /// somewhere between its start and its exit.
    pub fn enqueue_maybe_killed(
        &self,
        name: &str,
        body: &str,
        marks: Vec<String>,
        rng: &mut Rng,
        kill_one_in: u64,
    ) -> Enqueue {
        let path = self.path(name);
        std::fs::write(&path, body).unwrap();
        let mut child = self
            .cmd(&["enqueue", path.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if rng.below(kill_one_in) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(12)));
            let _ = child.kill();
        }
        Enqueue { child, marks }
    }
}

impl Enqueue {
    /// Waits for the run; true when it reported its ten events accepted.
    pub fn reported(self) -> (bool, Vec<String>) {
        let out = self.child.wait_with_output().unwrap();
        if out.status.success() {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "10 accepted, 0 duplicate, 0 rejected",
                "{}",
                text(&out)
            );
        }
        (out.status.success(), self.marks)
    }
}

/// The verdict of a crash test: every spool event and every event an `enqueue` reported
/// accepted is stored exactly once, a killed `enqueue` is all or nothing, and the
/// accepted counter agrees with the events stored. `stored` is `markers(site)`; returns
/// the number of events stored.
pub fn assert_exactly_once(
    site: &Site,
    stored: &std::collections::HashMap<String, usize>,
    spool: &[(String, Vec<String>)],
    reported: &[Vec<String>],
    unreported: &[Vec<String>],
) -> i64 {
    for m in spool.iter().flat_map(|(_, marks)| marks) {
        assert_eq!(stored.get(m), Some(&1), "spool event {m}");
    }
    for m in reported.iter().flatten() {
        assert_eq!(stored.get(m), Some(&1), "reported event {m}");
    }
    for marks in unreported {
        let counts: Vec<usize> = marks.iter().map(|m| stored.get(m).copied().unwrap_or(0)).collect();
        assert!(
            counts.iter().all(|c| *c == counts[0]) && counts[0] <= 1,
            "a killed enqueue is all or nothing: {counts:?}"
        );
    }
    let rows: i64 = site
        .store()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        site.status()["events"]["accepted"],
        rows,
        "the counter agrees with the stored events"
    );
    rows
}
