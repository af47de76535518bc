//! The link as a whole: sending, paused because the portal is unavailable (probed every
//! interval), or paused because the portal refused the credentials.

use tokio::time::Instant;

use crate::store::LinkRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Up,
    /// Unreachable, timing out or busy: probe at `probe_at`.
    Unavailable {
        reason: String,
        probe_at: Instant,
    },
    /// Credentials, rights or the clock: wait for a reload or a successful refresh.
    AuthFailed {
        reason: String,
    },
}

impl Link {
    pub fn sending(&self) -> bool {
        matches!(self, Link::Up)
    }

    /// The row `status` reads.
    pub fn row(&self, since: i64) -> LinkRow {
        let (state, reason) = match self {
            Link::Up => ("ok", None),
            Link::Unavailable { reason, .. } => ("degraded", Some(reason.clone())),
            Link::AuthFailed { reason } => ("auth-failed", Some(reason.clone())),
        };
        LinkRow {
            state: state.to_string(),
            reason,
            since,
        }
    }

    /// Whether two states are the same for status (a new probe time is not a change).
    pub fn same_kind(&self, other: &Link) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}
