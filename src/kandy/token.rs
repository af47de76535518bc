//! Which token the client starts with, and where a token obtained by login is kept.
//!
//! A login's token is stored with a fingerprint of the account and of the configured
//! `user_token` it replaced. At the next start the stored token is used while that
//! fingerprint still matches; when `kandy.user_token` (or the account) changed in the
//! configuration, the configured one wins (kandy-api.md, "Log in").

use std::fmt;
use std::sync::Mutex;

use crate::config::Secret;
use crate::kandy::sign::sha256_hex;
use crate::store::{PortalToken, Store};

/// Keeps the token a login obtained. Errors are text for a warning: losing the token only
/// costs one login at the next start.
pub trait TokenKeeper: Send + Sync + fmt::Debug {
    fn load(&self) -> Result<Option<PortalToken>, String>;
    fn save(&self, token: &PortalToken) -> Result<(), String>;
}

impl TokenKeeper for Mutex<Store> {
    fn load(&self) -> Result<Option<PortalToken>, String> {
        let store = self.lock().map_err(|_| "the store's lock is poisoned".to_string())?;
        store.portal_token().map_err(|e| e.to_string())
    }

    fn save(&self, token: &PortalToken) -> Result<(), String> {
        let mut store = self.lock().map_err(|_| "the store's lock is poisoned".to_string())?;
        store.set_portal_token(token).map_err(|e| e.to_string())
    }
}

/// Names the account and the configured token, without revealing the token.
pub fn fingerprint(api_base_url: &str, user_id: &str, configured: Option<&Secret>) -> String {
    let token = configured.map_or("", Secret::expose);
    sha256_hex(format!("{api_base_url}\n{user_id}\n{token}").as_bytes())
}

/// The token to start with: the stored one while it replaces the configured one (same
/// fingerprint), else the configured one; `None` means log in first.
pub fn initial(configured: Option<&Secret>, stored: Option<PortalToken>, fingerprint: &str) -> Option<Secret> {
    match stored {
        Some(s) if s.replaces == fingerprint && !s.token.is_empty() => Some(s.token),
        _ => configured.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(token: &str, configured: Option<&Secret>) -> PortalToken {
        PortalToken {
            token: Secret::new(token),
            replaces: fingerprint("https://p", "u", configured),
        }
    }

    #[test]
    fn a_stored_token_wins_until_the_configured_one_changes() {
        let a = Secret::new("configured-a");
        let b = Secret::new("configured-b");
        let fp = |c: Option<&Secret>| fingerprint("https://p", "u", c);
        // Nothing stored: the configured token, or a login.
        assert_eq!(initial(Some(&a), None, &fp(Some(&a))), Some(a.clone()));
        assert_eq!(initial(None, None, &fp(None)), None);
        // A login replaced token A: the stored token.
        let s = stored("from-login", Some(&a));
        assert_eq!(
            initial(Some(&a), Some(s.clone()), &fp(Some(&a))).unwrap().expose(),
            "from-login"
        );
        // The configuration now says B: B wins.
        assert_eq!(initial(Some(&b), Some(s.clone()), &fp(Some(&b))), Some(b));
        // The configured token was removed: log in again rather than trust the old login.
        assert_eq!(initial(None, Some(s), &fp(None)), None);
        // Password only, a login stored a token: use it.
        let s = stored("from-login", None);
        assert_eq!(initial(None, Some(s), &fp(None)).unwrap().expose(), "from-login");
    }

    #[test]
    fn another_account_does_not_reuse_the_token() {
        assert_ne!(fingerprint("https://p", "u", None), fingerprint("https://p", "v", None));
        assert_ne!(fingerprint("https://p", "u", None), fingerprint("https://q", "u", None));
    }

    #[test]
    fn the_store_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let keeper = Mutex::new(Store::open(&dir.path().join("s.db")).unwrap());
        assert_eq!(keeper.load().unwrap(), None);
        let s = stored("t", None);
        keeper.save(&s).unwrap();
        assert_eq!(keeper.load().unwrap(), Some(s));
    }
}
