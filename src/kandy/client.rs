//! The Kandy client: the four endpoints, the token and its renewal, the verdict on each
//! answer. How one attempt is signed and sent is in `wire`.
//!
//! Token renewal: the token sits in a tokio mutex with a generation that counts logins.
//! A request remembers the generation it sent with; on 401 `invalid_token` it asks for
//! a renewal of that generation, and only the first such request logs in (holding the
//! lock): the others find a newer generation when they get the lock and resend with its
//! token. So a regenerated token costs one login however many requests meet it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, Semaphore};

use super::api::{self, Call};
use super::classify::{self, Answer, Verdict};
use super::error::{KandyError, auth_hint};
use super::packet::PacketSink;
use super::token::{self, TokenKeeper};
use super::user::{self, Page, User};
use crate::config::{self, Config, Secret, SecretSource};
use crate::store::PortalToken;

/// The most pages one listing reads: a portal that never says "last page" stops here.
const MAX_PAGES: u64 = 10_000;

/// What the client needs from the configuration, secrets read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub kandy: config::Kandy,
    /// `scheduling.interval_secs`: the shortest wait for an unavailable portal.
    pub interval: Duration,
    pub password: Option<Secret>,
    pub user_token: Option<Secret>,
    pub hmac: Option<Secret>,
}

impl Settings {
    /// Reads the secrets the configuration names (files and credentials included).
    pub fn from_config(config: &Config) -> Result<Settings, KandyError> {
        let k = &config.kandy;
        let read = |key: &str, source: &SecretSource| {
            source
                .resolve()
                .map(|s| s.filter(|s| !s.is_empty()))
                .map_err(|e| KandyError::Setup(format!("{key}: {e}")))
        };
        Ok(Settings {
            interval: Duration::from_secs(config.scheduling.interval_secs),
            password: read("kandy.password", &k.password)?,
            user_token: read("kandy.user_token", &k.user_token)?,
            hmac: read("kandy.hmac", &k.hmac)?,
            kandy: k.clone(),
        })
    }
}

/// What the rest of the link plugs into the client.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Keeps a token obtained by login (the store), so a restart does not log in again.
    pub tokens: Option<Arc<dyn TokenKeeper>>,
    /// Receives every request and answer, secrets redacted (the debug packet log).
    pub packets: Option<PacketSink>,
}

/// The portal's clock as its last `Date` header showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortalClock {
    pub portal: SystemTime,
    /// This machine's clock when that answer arrived.
    pub local: SystemTime,
}

impl PortalClock {
    /// Seconds this machine is ahead of the portal (negative: behind).
    pub fn offset_secs(&self) -> i64 {
        match self.local.duration_since(self.portal) {
            Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
            Err(behind) => -i64::try_from(behind.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }
}

/// A client of one portal account. Cheap to clone; clones share connections and token.
#[derive(Debug, Clone)]
pub struct Client {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) s: Settings,
    pub(super) hooks: Hooks,
    token: Mutex<TokenState>,
    /// `kandy.max_in_flight` requests on the wire at once.
    pub(super) slots: Semaphore,
    pub(super) clock: std::sync::Mutex<Option<PortalClock>>,
    fingerprint: String,
}

#[derive(Debug)]
struct TokenState {
    token: Option<Secret>,
    /// Counts logins; a renewal asked for an older generation is already done.
    generation: u64,
}

/// An answer, read whole.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body's error code (`error_field`) and `message`, when it is JSON.
    fn error(&self, error_field: &str) -> (Option<String>, Option<String>) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return (None, None);
        };
        let get = |k: &str| v.get(k).and_then(|x| x.as_str()).map(|s| s.chars().take(300).collect());
        (get(error_field), get("message"))
    }
}

impl Client {
    /// Sets up connections (roots, `ca_file`, proxy, timeouts) and the starting token.
    pub fn new(settings: Settings, hooks: Hooks) -> Result<Client, KandyError> {
        let http = super::wire::http_client(&settings.kandy)?;
        let k = &settings.kandy;
        let fingerprint = token::fingerprint(&k.api_base_url, &k.user_id, settings.user_token.as_ref());
        let stored = match &hooks.tokens {
            Some(keeper) => keeper.load().unwrap_or_else(|e| {
                tracing::warn!("cannot read the stored portal token ({e}); logging in again if needed");
                None
            }),
            None => None,
        };
        let start = token::initial(settings.user_token.as_ref(), stored, &fingerprint);
        let slots = Semaphore::new(usize::try_from(k.max_in_flight).unwrap_or(1).max(1));
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                token: Mutex::new(TokenState {
                    token: start,
                    generation: 0,
                }),
                slots,
                clock: std::sync::Mutex::new(None),
                fingerprint,
                hooks,
                s: settings,
            }),
        })
    }

    /// Reads the configuration's secrets and sets up a client.
    pub fn from_config(config: &Config, hooks: Hooks) -> Result<Client, KandyError> {
        Client::new(Settings::from_config(config)?, hooks)
    }

    /// The portal's clock at its last answer that carried a `Date`.
    pub fn portal_clock(&self) -> Option<PortalClock> {
        self.inner.clock.lock().ok().and_then(|c| *c)
    }

    /// Logs in now (with `kandy.password`), replacing the current token.
    pub async fn login(&self) -> Result<(), KandyError> {
        let mut state = self.inner.token.lock().await;
        self.login_locked(&mut state).await
    }

    /// One page of users (pages count from 1).
    pub async fn list_users_page(&self, page: u64, size: u64) -> Result<Page, KandyError> {
        let s = &self.inner.s;
        let call = api::list_users(&s.kandy.api, &s.kandy.group_id, page, size);
        let reply = self.call(&call).await?;
        let page = user::parse_page(&s.kandy.api, &reply.body).map_err(|reason| KandyError::Failed {
            request: call.request_line(),
            reason,
        })?;
        if page.skipped > 0 {
            tracing::warn!(
                skipped = page.skipped,
                "the portal listed users without a user id ({}); they are left out",
                s.kandy.api.user_id_field
            );
        }
        Ok(page)
    }

    /// Every user of the group, all pages of `kandy.api.page_size`. Without a total page
    /// count in the answers, a short page is the last.
    pub async fn list_users(&self) -> Result<Vec<User>, KandyError> {
        let size = self.inner.s.kandy.api.page_size;
        let mut users = Vec::new();
        for number in 1..=MAX_PAGES {
            let page = self.list_users_page(number, size).await?;
            let read = (page.users.len() + page.skipped) as u64;
            users.extend(page.users);
            let more = match page.total_pages {
                Some(total) => number < total,
                None => read >= size,
            };
            if !more {
                break;
            }
        }
        Ok(users)
    }

    /// Sets a user's first and last name; the updated user when the portal returns it.
    pub async fn set_name(&self, user_id: &str, first: &str, last: &str) -> Result<Option<User>, KandyError> {
        let s = &self.inner.s;
        let call = api::set_name(&s.kandy.api, &s.kandy.group_id, user_id, first, last);
        self.update(&call).await
    }

    /// Sets a user's call permission; the updated user when the portal returns it.
    pub async fn set_call_permission(&self, user_id: &str, permission: &str) -> Result<Option<User>, KandyError> {
        let s = &self.inner.s;
        let call = api::set_call_permission(&s.kandy.api, &s.kandy.group_id, user_id, permission);
        self.update(&call).await
    }

    /// A GET of `kandy.api_base_url` itself, without a token: any HTTP answer shows that
    /// the connection (and TLS) works. Returns the status.
    pub async fn reach(&self) -> Result<u16, KandyError> {
        let call = Call {
            endpoint: api::Endpoint::Reach,
            method: "GET".into(),
            path: "/".into(),
            body: None,
            shown_body: None,
        };
        Ok(self.attempt(&call, None).await?.status)
    }

    async fn update(&self, call: &Call) -> Result<Option<User>, KandyError> {
        let reply = self.call(call).await?;
        let parsed = serde_json::from_slice(&reply.body).ok();
        Ok(parsed.and_then(|v| user::parse_user(&self.inner.s.kandy.api, &v)))
    }

    /// Sends `call`, renewing the token once when the portal asks for it.
    async fn call(&self, call: &Call) -> Result<Reply, KandyError> {
        let mut renewed = false;
        loop {
            let (token, generation, fresh) = self.current_token().await?;
            renewed |= fresh;
            let reply = self.attempt(call, token.as_ref()).await?;
            match self.verdict(call, &reply) {
                Verdict::Done => return Ok(reply),
                Verdict::RenewToken if self.inner.s.password.is_some() && !renewed => {
                    self.renew(generation).await?;
                    renewed = true;
                }
                verdict => return Err(self.error(call, &reply, verdict, renewed)),
            }
        }
    }

    /// The token to send, logging in first when there is none; and whether this call
    /// logged in.
    async fn current_token(&self) -> Result<(Option<Secret>, u64, bool), KandyError> {
        let mut state = self.inner.token.lock().await;
        let mut fresh = false;
        if state.token.is_none() && self.inner.s.password.is_some() {
            self.login_locked(&mut state).await?;
            fresh = true;
        }
        Ok((state.token.clone(), state.generation, fresh))
    }

    /// Logs in unless a login after `seen` already renewed the token.
    async fn renew(&self, seen: u64) -> Result<(), KandyError> {
        let mut state = self.inner.token.lock().await;
        if state.generation != seen {
            return Ok(());
        }
        self.login_locked(&mut state).await
    }

    async fn login_locked(&self, state: &mut TokenState) -> Result<(), KandyError> {
        let s = &self.inner.s;
        let Some(password) = &s.password else {
            return Err(KandyError::AuthFailed {
                request: "the login".into(),
                reason: "kandy.password is not set, so the link cannot log in to renew the token".into(),
            });
        };
        let call = api::login(&s.kandy.api, &s.kandy.user_id, password);
        let reply = self.attempt(&call, None).await?;
        match self.verdict(&call, &reply) {
            Verdict::Done => {}
            // A login is never answered by another login.
            Verdict::RenewToken => return Err(self.error(&call, &reply, Verdict::AuthFailed, true)),
            verdict => return Err(self.error(&call, &reply, verdict, true)),
        }
        let field = &s.kandy.api.token_field;
        let token = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v.get(field).and_then(|t| t.as_str()).map(str::to_string))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| KandyError::Failed {
                request: call.request_line(),
                reason: format!("the login answer has no `{field}` (kandy.api.token_field)"),
            })?;
        let token = Secret::new(token);
        state.token = Some(token.clone());
        state.generation += 1;
        tracing::info!("logged in to the Kandy portal and obtained a new token");
        // A short SQLite write under the token lock: logins are rare, and every waiting
        // request needs this one's result anyway.
        if let Some(keeper) = &self.inner.hooks.tokens {
            let kept = PortalToken {
                token,
                replaces: self.inner.fingerprint.clone(),
            };
            if let Err(e) = keeper.save(&kept) {
                tracing::warn!("cannot keep the new portal token in the store ({e}); the next start logs in again");
            }
        }
        Ok(())
    }

    fn verdict(&self, call: &Call, reply: &Reply) -> Verdict {
        let s = &self.inner.s;
        let (error, _) = reply.error(&s.kandy.api.error_field);
        let answer = Answer {
            status: reply.status,
            error: error.as_deref(),
            retry_after: reply.header("retry-after"),
            user_path: call.user_path(),
        };
        classify::classify(&answer, s.interval, SystemTime::now())
    }

    /// The error for an answer that is not a success.
    fn error(&self, call: &Call, reply: &Reply, verdict: Verdict, after_login: bool) -> KandyError {
        let request = call.request_line();
        let status = reply.status;
        let (code, message) = reply.error(&self.inner.s.kandy.api.error_field);
        let mut reason = status.to_string();
        if let Some(c) = &code {
            reason = format!("{reason} {c}");
        }
        if let Some(m) = &message {
            // A portal could echo what it was sent; no secret goes into an error.
            let s = &self.inner.s;
            let secrets: Vec<&str> = [&s.password, &s.user_token, &s.hmac]
                .into_iter()
                .flatten()
                .map(Secret::expose)
                .collect();
            reason = format!("{reason}: {}", super::packet::scrub(m.clone(), &secrets));
        }
        match verdict {
            Verdict::RenewToken if after_login => KandyError::AuthFailed {
                request,
                reason: format!(
                    "{reason}; the portal refused the token it had just issued: check kandy.user_id and kandy.password"
                ),
            },
            Verdict::RenewToken | Verdict::AuthFailed => KandyError::AuthFailed {
                request,
                reason: format!("{reason}; {}", auth_hint(status, code.as_deref())),
            },
            Verdict::ClockSkew => KandyError::ClockSkew {
                request,
                portal_date: reply.header("date").map(str::to_string),
            },
            Verdict::Unavailable { wait } => KandyError::Unavailable { request, reason, wait },
            Verdict::Stale => KandyError::Stale { request },
            Verdict::Failed | Verdict::Done => KandyError::Failed { request, reason },
            Verdict::Permanent => KandyError::Permanent {
                request,
                status,
                error: code,
                reason,
            },
        }
    }
}
