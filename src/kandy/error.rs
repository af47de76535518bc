//! Why a request to the portal did not succeed, in words a hotel technician can act on.
//! Each variant is one row of kandy-api.md's answer table (`verdict` gives it back), so
//! the sync loop decides from the variant and the log shows the message.
//!
//! No variant holds a secret: reasons are built from status codes, the portal's error
//! code and message, and the request line (method and path, which carry no secret).

use std::time::Duration;

use super::classify::Verdict;

#[derive(Debug, thiserror::Error)]
pub enum KandyError {
    /// The client cannot be set up from the configuration (CA file, proxy, a secret file).
    #[error("cannot prepare the connection to the Kandy portal: {0}")]
    Setup(String),

    /// Other 401, 403, bad credentials, a token refused right after a login.
    #[error("the Kandy portal refused {request}: {reason}")]
    AuthFailed { request: String, reason: String },

    /// 401 `clock_skew`.
    #[error(
        "the Kandy portal refused {request} because this machine's clock is wrong (the portal's Date: {}); set the clock (NTP)",
        portal_date.as_deref().unwrap_or("not sent")
    )]
    ClockSkew {
        request: String,
        portal_date: Option<String>,
    },

    /// Connection error, timeout, 429, 503: the portal as a whole; probe again after `wait`.
    #[error("the Kandy portal is unreachable or busy ({reason}); trying again in {}s", wait.as_secs())]
    Unavailable {
        request: String,
        reason: String,
        wait: Duration,
    },

    /// 404 on a user path: the user is gone or was renamed; the cache is stale.
    #[error("the Kandy portal has no such user for {request} (404): the extension cache is out of date")]
    Stale { request: String },

    /// 408, 425, 5xx, or a 2xx answer that cannot be read: resend this request later.
    #[error("{request} failed: {reason}; it will be sent again")]
    Failed { request: String, reason: String },

    /// Other 4xx: this update is wrong and is not resent.
    #[error("the Kandy portal refused {request}: {reason}")]
    Permanent {
        request: String,
        status: u16,
        error: Option<String>,
        reason: String,
    },
}

impl KandyError {
    /// The row of the answer table this error is.
    pub fn verdict(&self) -> Verdict {
        match self {
            KandyError::Setup(_) | KandyError::AuthFailed { .. } => Verdict::AuthFailed,
            KandyError::ClockSkew { .. } => Verdict::ClockSkew,
            KandyError::Unavailable { wait, .. } => Verdict::Unavailable { wait: *wait },
            KandyError::Stale { .. } => Verdict::Stale,
            KandyError::Failed { .. } => Verdict::Failed,
            KandyError::Permanent { .. } => Verdict::Permanent,
        }
    }
}

/// What to check for each error code of an authentication failure.
pub fn auth_hint(status: u16, error: Option<&str>) -> &'static str {
    match (status, error) {
        (401, Some("bad_signature")) => "the X-HMAC signature is wrong: check kandy.hmac and kandy.hmac_mode",
        (401, Some("nonce_reused")) => {
            "the portal saw this nonce before: check that only one kandy-link uses this account"
        }
        (401, Some("bad_credentials")) => "the login was refused: check kandy.user_id and kandy.password",
        (401, Some("invalid_token")) => {
            "the token is not valid: set kandy.password so the link can log in, or put the current token in kandy.user_token"
        }
        (403, _) => {
            "this account may not change this group: check kandy.group_id and the account's rights in the portal"
        }
        _ => "check kandy.user_id, kandy.password or kandy.user_token, kandy.hmac and kandy.group_id",
    }
}
