//! The portal token obtained by login, kept so that a restart does not log in again
//! (kandy-api.md, "Log in").

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, now};
use crate::config::Secret;

const TOKEN: &str = "portal_token";
const REPLACES: &str = "portal_token_replaces";

/// A token obtained by login, and a fingerprint of the configured token (and account) it
/// replaced: when the configuration's token changes, the configured one wins again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalToken {
    pub token: Secret,
    pub replaces: String,
}

impl Store {
    /// The stored portal token, if a login stored one.
    pub fn portal_token(&self) -> Result<Option<PortalToken>, StoreError> {
        let token = self.kv(TOKEN)?;
        let replaces = self.kv(REPLACES)?;
        Ok(token.map(|t| PortalToken {
            token: Secret::new(t),
            replaces: replaces.unwrap_or_default(),
        }))
    }

    /// Keeps `token` (both rows in one transaction).
    pub fn set_portal_token(&mut self, token: &PortalToken) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        for (key, value) in [(TOKEN, token.token.expose()), (REPLACES, token.replaces.as_str())] {
            tx.execute(
                "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![key, value, now()],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    pub(super) fn kv(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_kept_across_opens_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.portal_token().unwrap(), None);
        let first = PortalToken {
            token: Secret::new("tok-1"),
            replaces: "abc".into(),
        };
        store.set_portal_token(&first).unwrap();
        drop(store);
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.portal_token().unwrap(), Some(first));
        let second = PortalToken {
            token: Secret::new("tok-2"),
            replaces: "def".into(),
        };
        store.set_portal_token(&second).unwrap();
        assert_eq!(store.portal_token().unwrap(), Some(second));
    }
}
