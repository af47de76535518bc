//! What the simulated portal holds: its users, the current token, the nonces it has
//! seen, the faults it was told to inject, and the log of what it received.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::kandy::User;

/// How long a nonce may not be used again.
pub const NONCE_WINDOW: Duration = Duration::from_secs(600);

/// The request log keeps this many entries (a benchmark must not grow it without end).
pub const MAX_RECEIVED: usize = 20_000;

/// One request as the simulator received it, and the status it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    pub method: String,
    /// Path and query as on the request line.
    pub path: String,
    /// Names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
}

impl Received {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The next `count` portal requests are answered with `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub count: u32,
    pub status: u16,
    #[serde(default)]
    pub retry_after: Option<String>,
    /// The error code in the body; a fitting one for the status when not given.
    #[serde(default)]
    pub error: Option<String>,
    /// Only requests whose path (and query) contains this are failed.
    #[serde(default)]
    pub path_contains: Option<String>,
}

/// How the portal is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Down {
    /// Connections are refused (the listener is closed; open connections are closed).
    Refuse,
    /// Every portal request is answered 503 (the control API keeps working).
    Unavailable,
}

/// An edit a portal administrator makes; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEdit {
    pub number: Option<String>,
    pub extension: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub call_permission: Option<String>,
}

impl UserEdit {
    pub fn apply(&self, u: &mut User) {
        let set = |field: &mut Option<String>, value: &Option<String>| {
            if let Some(v) = value {
                *field = Some(v.clone());
            }
        };
        set(&mut u.number, &self.number);
        set(&mut u.extension, &self.extension);
        set(&mut u.first_name, &self.first_name);
        set(&mut u.last_name, &self.last_name);
        set(&mut u.call_permission, &self.call_permission);
    }
}

/// Counters a test or a lab reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub requests: u64,
    pub logins: u64,
    pub users: usize,
    /// How many tokens were issued (logins and regenerations).
    pub tokens_issued: u64,
}

#[derive(Debug)]
pub struct State {
    pub users: Vec<User>,
    pub token: String,
    pub tokens_issued: u64,
    pub logins: u64,
    pub requests: u64,
    nonces: HashMap<String, Instant>,
    pub fault: Option<Fault>,
    pub latency: Duration,
    /// Down with 503: the `Retry-After` to send, if any.
    pub unavailable: bool,
    pub unavailable_retry_after: Option<String>,
    pub received: VecDeque<Received>,
}

impl State {
    pub fn new(users: Vec<User>, token: String) -> State {
        State {
            users,
            token,
            tokens_issued: 1,
            logins: 0,
            requests: 0,
            nonces: HashMap::new(),
            fault: None,
            latency: Duration::ZERO,
            unavailable: false,
            unavailable_retry_after: None,
            received: VecDeque::new(),
        }
    }

    /// Issues a new token; every earlier one is superseded.
    pub fn new_token(&mut self) -> String {
        self.tokens_issued += 1;
        self.token = format!("simtok-{}", crate::kandy::sign::new_nonce());
        self.token.clone()
    }

    pub fn user_mut(&mut self, user_id: &str) -> Option<&mut User> {
        self.users.iter_mut().find(|u| u.user_id == user_id)
    }

    pub fn nonce_seen(&self, nonce: &str, now: Instant) -> bool {
        self.nonces
            .get(nonce)
            .is_some_and(|at| now.duration_since(*at) < NONCE_WINDOW)
    }

    pub fn remember_nonce(&mut self, nonce: &str, now: Instant) {
        if self.nonces.len() >= 1024 && self.nonces.len().is_power_of_two() {
            self.nonces.retain(|_, at| now.duration_since(*at) < NONCE_WINDOW);
        }
        self.nonces.insert(nonce.to_string(), now);
    }

    /// Takes one request of the current fault, if it applies to `path`.
    pub fn take_fault(&mut self, path: &str) -> Option<Fault> {
        let f = self.fault.as_mut()?;
        if f.path_contains.as_deref().is_some_and(|p| !path.contains(p)) {
            return None;
        }
        let one = f.clone();
        f.count = f.count.saturating_sub(1);
        if f.count == 0 {
            self.fault = None;
        }
        (one.count > 0).then_some(one)
    }

    pub fn record(&mut self, r: Received) {
        if self.received.len() >= MAX_RECEIVED {
            self.received.pop_front();
        }
        self.received.push_back(r);
    }

    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.requests,
            logins: self.logins,
            users: self.users.len(),
            tokens_issued: self.tokens_issued,
        }
    }
}

/// The N users a simulated group starts with. Mailboxes are 1001, 1002, ... and each
/// way of matching a mailbox (link-behaviour.md) is covered in turn:
/// - `userId` equal to the mailbox (`1001`);
/// - `userId` with a domain (`1002@hotel`);
/// - an opaque `userId` found by its extension (`usr-00003`, extension `1003`), or by
///   its number alone (`usr-00006`, number `1006`, no extension).
///
/// Some fields are missing, as a real portal's may be.
pub fn seed(n: usize) -> Vec<User> {
    (0..n)
        .map(|i| {
            let mailbox = (1001 + i).to_string();
            let room = |perm: &str| User {
                user_id: mailbox.clone(),
                number: Some(format!("+1312555{mailbox:0>4}")),
                extension: Some(mailbox.clone()),
                first_name: Some("Room".into()),
                last_name: Some(String::new()),
                call_permission: Some(perm.into()),
            };
            match i % 6 {
                0 | 3 => room("internal"),
                1 | 4 => User {
                    user_id: format!("{mailbox}@hotel"),
                    number: None,
                    last_name: None,
                    ..room("internal")
                },
                2 => User {
                    user_id: format!("usr-{:05}", i + 1),
                    ..room("internal")
                },
                _ => User {
                    user_id: format!("usr-{:05}", i + 1),
                    number: Some(mailbox.clone()),
                    extension: None,
                    call_permission: None,
                    ..room("internal")
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_covers_the_three_ways_of_matching() {
        let users = seed(6);
        assert_eq!(users[0].user_id, "1001");
        assert_eq!(users[1].user_id, "1002@hotel");
        assert_eq!(users[1].number, None);
        assert_eq!(users[2].user_id, "usr-00003");
        assert_eq!(users[2].extension.as_deref(), Some("1003"));
        assert_eq!(users[5].user_id, "usr-00006");
        assert_eq!(users[5].number.as_deref(), Some("1006"));
        assert_eq!(users[5].extension, None);
    }

    #[test]
    fn a_fault_lasts_its_count() {
        let mut s = State::new(Vec::new(), "t".into());
        s.fault = Some(Fault {
            count: 2,
            status: 503,
            retry_after: None,
            error: None,
            path_contains: Some("/name".into()),
        });
        assert!(s.take_fault("/users?page=1").is_none());
        assert!(s.take_fault("/users/1/name").is_some());
        assert!(s.take_fault("/users/2/name").is_some());
        assert!(s.take_fault("/users/3/name").is_none());
    }

    #[test]
    fn a_nonce_is_refused_for_ten_minutes() {
        let mut s = State::new(Vec::new(), "t".into());
        let t0 = Instant::now();
        s.remember_nonce("n", t0);
        assert!(s.nonce_seen("n", t0 + Duration::from_secs(599)));
        assert!(!s.nonce_seen("n", t0 + Duration::from_secs(600)));
        assert!(!s.nonce_seen("m", t0));
    }
}
