//! `kandy-link check-config --online`: talks to the portal in four steps (connection and
//! TLS, login, one page of users, this machine's clock against the portal's `Date`),
//! reports each on its own line, and explains the one that failed.
//!
//! The login step logs in for real: a running daemon's token is replaced, and the daemon
//! logs in again at its next request.

use std::fmt::Write as _;

use super::client::Client;
use super::client::Hooks;
use super::error::KandyError;
use crate::config::Config;

/// How far the portal lets this machine's clock be off (kandy-api.md).
pub const MAX_SKEW_SECS: u64 = 300;

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed(String),
    Failed(String),
    Skipped(String),
}

/// One step and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    pub outcome: Outcome,
}

/// Runs the steps and prints them; the exit status is 0 when none failed, else 1.
pub fn run(config: &Config) -> u8 {
    let steps = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(check(config)),
        Err(e) => vec![Step {
            name: "connection",
            outcome: Outcome::Failed(format!("cannot start the runtime: {e}")),
        }],
    };
    print!("{}", report(&config.kandy.api_base_url, &steps));
    if steps.iter().any(|s| matches!(s.outcome, Outcome::Failed(_))) {
        1
    } else {
        0
    }
}

/// The steps, in order; a step that cannot run without an earlier one is skipped.
pub async fn check(config: &Config) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut step = |name, outcome| steps.push(Step { name, outcome });
    let client = match Client::from_config(config, Hooks::default()) {
        Ok(c) => c,
        Err(e) => {
            step("connection", Outcome::Failed(e.to_string()));
            return steps;
        }
    };
    let url = &config.kandy.api_base_url;
    match client.reach().await {
        Ok(status) => {
            let how = if url.starts_with("https://") {
                "over TLS"
            } else {
                "over plain HTTP"
            };
            step(
                "connection",
                Outcome::Passed(format!("{url} answered {how} (HTTP {status})")),
            );
        }
        Err(e) => {
            step("connection", Outcome::Failed(explain_connection(&e)));
            for name in ["login", "users", "clock"] {
                step(name, Outcome::Skipped("needs a connection".into()));
            }
            return steps;
        }
    }

    let mut logged_in = true;
    if config.kandy.password.is_set() {
        match client.login().await {
            Ok(()) => step("login", Outcome::Passed("logged in; the portal issued a token".into())),
            Err(e) => {
                logged_in = false;
                step("login", Outcome::Failed(e.to_string()));
            }
        }
    } else {
        step(
            "login",
            Outcome::Skipped("no kandy.password: kandy.user_token is used as it is".into()),
        );
    }

    if logged_in {
        let size = config.kandy.api.page_size;
        match client.list_users_page(1, size).await {
            Ok(page) => {
                let of = page.total_pages.map(|t| format!(" of {t}")).unwrap_or_default();
                step(
                    "users",
                    Outcome::Passed(format!("page 1{of} lists {} users", page.users.len())),
                );
            }
            Err(e) => step("users", Outcome::Failed(e.to_string())),
        }
    } else {
        step("users", Outcome::Skipped("needs a login".into()));
    }

    match client.portal_clock() {
        Some(clock) => {
            let offset = clock.offset_secs();
            let side = if offset >= 0 { "ahead of" } else { "behind" };
            let text = format!(
                "this machine's clock is {} s {side} the portal's Date (the portal allows {MAX_SKEW_SECS} s)",
                offset.unsigned_abs()
            );
            if offset.unsigned_abs() > MAX_SKEW_SECS {
                step(
                    "clock",
                    Outcome::Failed(format!("{text}: set this machine's clock (NTP)")),
                );
            } else {
                step("clock", Outcome::Passed(text));
            }
        }
        None => step(
            "clock",
            Outcome::Skipped("the portal sent no Date header to compare with".into()),
        ),
    }
    steps
}

/// A failed connection, with what to check.
fn explain_connection(e: &KandyError) -> String {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let hint = if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        "the portal's TLS certificate is not trusted: if it comes from a private CA, set kandy.ca_file to that CA's PEM file"
    } else if lower.contains("refused") {
        "nothing listens there: check kandy.api_base_url (host and port) and any firewall"
    } else if lower.contains("dns") || lower.contains("resolve") || lower.contains("lookup") {
        "the portal's host name does not resolve: check kandy.api_base_url and this machine's DNS"
    } else if lower.contains("no answer within") {
        "check the network path to the portal, and kandy.proxy if the hotel needs one"
    } else {
        "check kandy.api_base_url, kandy.proxy and the network path to the portal"
    };
    format!("{text}; {hint}")
}

/// The report, one line per step.
pub fn report(url: &str, steps: &[Step]) -> String {
    let mut out = format!("online check of {url}\n");
    for s in steps {
        let (word, text) = match &s.outcome {
            Outcome::Passed(t) => ("ok", t),
            Outcome::Failed(t) => ("FAILED", t),
            Outcome::Skipped(t) => ("skipped", t),
        };
        let _ = writeln!(out, "  {:<11} {word:<8} {text}", s.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_on_its_own_line() {
        let steps = [
            Step {
                name: "connection",
                outcome: Outcome::Passed("answered".into()),
            },
            Step {
                name: "login",
                outcome: Outcome::Failed("bad credentials".into()),
            },
        ];
        let r = report("https://p", &steps);
        assert_eq!(
            r,
            "online check of https://p\n  connection  ok       answered\n  login       FAILED   bad credentials\n"
        );
    }
}
