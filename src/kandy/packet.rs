//! The packet log's hook: every request and answer of the client passes through
//! `Client::exchange`, which hands each one, rendered here with its secrets redacted, to
//! the `PacketSink` when one is set (the debug log of `logging.enable_debug`).
//!
//! Redacted: the `X-User-Token` and `X-HMAC` headers, the password (the login body is
//! rendered a second time with `********` in its place), the token of a login answer,
//! and, as a last net, any text equal to a secret the client holds.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::config::MASK;

/// Headers whose value is a secret.
const SECRET_HEADERS: &[&str] = &["x-user-token", "x-hmac"];

/// Secrets shorter than this are not searched for in free text: masking every "a" of a
/// log line would hide everything and protect nothing a real key needs protecting from.
const MIN_SCRUB_LEN: usize = 4;

/// Which way a packet went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Answer,
}

/// One request or answer, rendered for the log with every secret replaced by `********`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub direction: Direction,
    pub text: String,
}

/// Where packets go: a function the logging module will install.
#[derive(Clone)]
pub struct PacketSink(Arc<dyn Fn(&Packet) + Send + Sync>);

impl PacketSink {
    pub fn new(f: impl Fn(&Packet) + Send + Sync + 'static) -> Self {
        PacketSink(Arc::new(f))
    }

    pub fn send(&self, p: &Packet) {
        (self.0)(p);
    }
}

impl fmt::Debug for PacketSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PacketSink")
    }
}

/// A request: the request line, its headers, and the body as it may be shown.
pub fn request<'a>(
    method: &str,
    url: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    shown_body: Option<&str>,
    secrets: &[&str],
) -> Packet {
    let mut text = format!("> {method} {url}\n");
    push_headers(&mut text, headers);
    if let Some(body) = shown_body {
        text.push_str(body);
        text.push('\n');
    }
    Packet {
        direction: Direction::Request,
        text: scrub(text, secrets),
    }
}

/// An answer: status, time taken, headers, and the body, with `token_field` masked when
/// this answers a login.
pub fn answer<'a>(
    status: u16,
    elapsed: Duration,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &[u8],
    login_token_field: Option<&str>,
    secrets: &[&str],
) -> Packet {
    let mut text = format!("< {status} ({} ms)\n", elapsed.as_millis());
    push_headers(&mut text, headers);
    let body = String::from_utf8_lossy(body);
    match login_token_field {
        Some(field) => text.push_str(&mask_field(&body, field)),
        None => text.push_str(&body),
    }
    if !body.is_empty() {
        text.push('\n');
    }
    Packet {
        direction: Direction::Answer,
        text: scrub(text, secrets),
    }
}

/// No answer came: the connection failed or timed out.
pub fn no_answer(elapsed: Duration, reason: &str, secrets: &[&str]) -> Packet {
    Packet {
        direction: Direction::Answer,
        text: scrub(format!("< no answer ({} ms): {reason}\n", elapsed.as_millis()), secrets),
    }
}

fn push_headers<'a>(text: &mut String, headers: impl IntoIterator<Item = (&'a str, &'a str)>) {
    for (name, value) in headers {
        let shown = if SECRET_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s)) {
            MASK
        } else {
            value
        };
        text.push_str(name);
        text.push_str(": ");
        text.push_str(shown);
        text.push('\n');
    }
}

/// The login answer with its token masked. A body that is not a JSON object is masked
/// whole: it may hold the token in a shape we cannot see into.
fn mask_field(body: &str, field: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(mut o)) => {
            if let Some(v) = o.get_mut(field) {
                *v = Value::String(MASK.into());
            }
            Value::Object(o).to_string()
        }
        _ if body.is_empty() => String::new(),
        _ => MASK.to_string(),
    }
}

/// `text` with every secret of `secrets` (of at least `MIN_SCRUB_LEN` bytes) masked.
pub fn scrub(mut text: String, secrets: &[&str]) -> String {
    for s in secrets.iter().filter(|s| s.len() >= MIN_SCRUB_LEN) {
        if text.contains(s) {
            text = text.replace(s, MASK);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_shows_neither_token_nor_signature_nor_password() {
        let headers = [
            ("x-user-id", "duvoice"),
            ("X-User-Token", "tok-abcdef"),
            ("x-hmac", "490fc4c3c02d"),
            ("x-timestamp", "1767225600"),
        ];
        let p = request(
            "POST",
            "https://portal.example.net/api/v1/auth/login",
            headers,
            Some(r#"{"userId":"duvoice","password":"********"}"#),
            &["hunter22", "tok-abcdef"],
        );
        assert_eq!(p.direction, Direction::Request);
        assert!(
            p.text
                .starts_with("> POST https://portal.example.net/api/v1/auth/login\n")
        );
        assert!(p.text.contains("x-user-id: duvoice\n"));
        assert!(p.text.contains("X-User-Token: ********\n"));
        assert!(p.text.contains("x-hmac: ********\n"));
        assert!(!p.text.contains("tok-abcdef") && !p.text.contains("490fc4"));
    }

    #[test]
    fn a_login_answer_shows_no_token() {
        let p = answer(
            200,
            Duration::from_millis(12),
            [("content-type", "application/json")],
            br#"{"token":"tok-new-123","expires":3600}"#,
            Some("token"),
            &[],
        );
        assert!(p.text.starts_with("< 200 (12 ms)\n"));
        assert!(p.text.contains(r#""token":"********""#), "{}", p.text);
        assert!(p.text.contains(r#""expires":3600"#));
        assert!(!p.text.contains("tok-new-123"));
        // A login answer we cannot read is hidden whole.
        let p = answer(200, Duration::ZERO, [], b"token=tok-new-123", Some("token"), &[]);
        assert!(!p.text.contains("tok-new-123"));
    }

    #[test]
    fn any_secret_echoed_anywhere_is_masked() {
        let p = answer(
            400,
            Duration::ZERO,
            [],
            br#"{"error":"bad_request","message":"password hunter22 too short"}"#,
            None,
            &["hunter22", "bad"],
        );
        assert!(p.text.contains("password ******** too short"));
        // Too short to search for without garbling the text.
        assert!(p.text.contains("bad_request"));
        let p = no_answer(Duration::ZERO, "connection refused", &["hunter22"]);
        assert!(p.text.contains("no answer"));
    }
}
