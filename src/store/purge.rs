//! Privacy (pms-events.md, "Bad input"): applied events hold guest names and are kept
//! `queue.keep_days` days, no longer. Room state lives in `rooms`, so an old event can
//! simply be deleted; an `id` older than that may then be taken in again as new.

use super::{Store, StoreError};

impl Store {
    /// Deletes the events accepted before `before` (seconds since the epoch); returns how
    /// many went.
    pub fn purge_events(&mut self, before: i64) -> Result<usize, StoreError> {
        self.conn
            .execute("DELETE FROM events WHERE accepted_at < ?1", [before])
            .map_err(|e| self.err(e))
    }
}
