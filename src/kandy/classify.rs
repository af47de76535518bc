//! What an answer of the portal means: the rows of kandy-api.md's table "How the client
//! treats answers". Pure: the caller passes the clock for `Retry-After` dates.

use std::time::{Duration, SystemTime};

/// The longest the link waits on a `Retry-After` before probing again.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

/// What the portal answered, as far as the verdict depends on it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    /// The body's `error_field`, when the body is JSON and has one.
    pub error: Option<&'a str>,
    /// The `Retry-After` header as sent.
    pub retry_after: Option<&'a str>,
    /// Whether the request's path names one user (set name, set call permission).
    pub user_path: bool,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: record the value as confirmed.
    Done,
    /// 401 `invalid_token`: log in once (shared), then resend at once.
    RenewToken,
    /// 401 `clock_skew`: this machine's clock is wrong; pause as for auth failed.
    ClockSkew,
    /// Other 401, 403: credentials or rights wrong; pause all sending.
    AuthFailed,
    /// Connection error, timeout, 429, 503: pause all sending, probe after `wait`.
    Unavailable { wait: Duration },
    /// 404 on a user path: the extension cache is stale.
    Stale,
    /// 408, 425, 500, 502, 504, other 5xx: resend this field later.
    Failed,
    /// Other 4xx (and anything else unexpected): this update is wrong; no resend.
    Permanent,
}

/// The verdict on an answer. `interval` is `scheduling.interval_secs`, the shortest wait
/// of an unavailable portal; `now` dates a `Retry-After` given as an HTTP date.
pub fn classify(answer: &Answer<'_>, interval: Duration, now: SystemTime) -> Verdict {
    match answer.status {
        200..=299 => Verdict::Done,
        401 => match answer.error {
            Some("invalid_token") => Verdict::RenewToken,
            Some("clock_skew") => Verdict::ClockSkew,
            _ => Verdict::AuthFailed,
        },
        403 => Verdict::AuthFailed,
        429 | 503 => Verdict::Unavailable {
            wait: unavailable_wait(interval, answer.retry_after, now),
        },
        404 if answer.user_path => Verdict::Stale,
        408 | 425 | 500..=599 => Verdict::Failed,
        _ => Verdict::Permanent,
    }
}

/// A connection error or a timeout: the portal as a whole is unreachable.
pub fn unreachable(interval: Duration) -> Verdict {
    Verdict::Unavailable { wait: interval }
}

/// `interval`, or the `Retry-After` when that is longer, capped at one hour.
pub fn unavailable_wait(interval: Duration, retry_after: Option<&str>, now: SystemTime) -> Duration {
    let asked = retry_after.and_then(|v| parse_retry_after(v, now)).unwrap_or_default();
    interval.max(asked.min(MAX_WAIT))
}

/// `Retry-After` in either of its forms (RFC 9110 §10.2.3): delay-seconds, or an HTTP
/// date (a date already past is a delay of zero). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600) // 2026-01-01T00:00:00Z
    }

    fn answer(status: u16, error: Option<&str>, retry_after: Option<&str>, user_path: bool) -> Verdict {
        let a = Answer {
            status,
            error,
            retry_after,
            user_path,
        };
        classify(&a, MIN, now())
    }

    fn wait(secs: u64) -> Verdict {
        Verdict::Unavailable {
            wait: Duration::from_secs(secs),
        }
    }

    /// Status, error code, `Retry-After`, user path, and the verdict.
    type Case = (u16, Option<&'static str>, Option<&'static str>, bool, Verdict);

    #[test]
    fn every_row_of_the_table() {
        use Verdict::*;
        let cases: &[Case] = &[
            // 2xx
            (200, None, None, true, Done),
            (204, None, None, true, Done),
            // 401 invalid_token, clock_skew, the other 401s, 403
            (401, Some("invalid_token"), None, true, RenewToken),
            (401, Some("clock_skew"), None, false, ClockSkew),
            (401, Some("bad_signature"), None, true, AuthFailed),
            (401, Some("nonce_reused"), None, true, AuthFailed),
            (401, Some("bad_credentials"), None, false, AuthFailed),
            (401, None, None, false, AuthFailed),
            (403, Some("forbidden"), None, true, AuthFailed),
            // 429 and 503: the interval, or a longer Retry-After, at most an hour
            (429, None, None, false, wait(60)),
            (429, Some("rate_limited"), Some("120"), true, wait(120)),
            (503, None, Some("5"), false, wait(60)),
            (503, None, Some("86400"), false, wait(3600)),
            (503, None, Some("Thu, 01 Jan 2026 00:02:00 GMT"), false, wait(120)),
            (429, None, Some("Wed, 31 Dec 2025 23:00:00 GMT"), false, wait(60)),
            (503, None, Some("soon"), false, wait(60)),
            // 404 on a user path is a stale cache; elsewhere the request is wrong
            (404, Some("not_found"), None, true, Stale),
            (404, None, None, false, Permanent),
            // this request failed
            (408, None, None, true, Failed),
            (425, None, None, true, Failed),
            (500, None, None, true, Failed),
            (502, None, None, true, Failed),
            (504, None, None, true, Failed),
            (507, None, None, true, Failed),
            // other 4xx, and the unexpected
            (400, Some("bad_request"), None, true, Permanent),
            (409, None, None, true, Permanent),
            (422, Some("unknown_call_permission"), None, true, Permanent),
            (302, None, None, true, Permanent),
        ];
        for (status, error, retry_after, user_path, want) in cases {
            assert_eq!(
                answer(*status, *error, *retry_after, *user_path),
                *want,
                "status {status} error {error:?} retry-after {retry_after:?}"
            );
        }
    }

    #[test]
    fn a_connection_error_or_timeout_is_an_unavailable_portal() {
        assert_eq!(unreachable(MIN), wait(60));
    }

    #[test]
    fn retry_after_in_both_forms() {
        assert_eq!(parse_retry_after("120", now()), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 01:00:00 GMT", now()),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 23:59:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now()), None);
        assert_eq!(parse_retry_after("", now()), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", now()),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn an_interval_longer_than_an_hour_is_kept() {
        let long = Duration::from_secs(7200);
        assert_eq!(unavailable_wait(long, Some("10"), now()), long);
    }
}
