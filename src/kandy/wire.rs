//! One attempt on the wire: the HTTP client's setup, the headers of kandy-api.md, the
//! signature over exactly the bytes sent, and `exchange`, the one place every request
//! and answer passes through (the packet log's hook).

use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use super::api::{Call, Endpoint};
use super::client::{Client, PortalClock, Reply};
use super::error::KandyError;
use super::packet;
use super::sign::{self, Signed};
use crate::config::{self, Secret};

/// Builds the pooled HTTP client: rustls with the system's roots plus `kandy.ca_file`,
/// https only unless `allow_insecure_http`, `kandy.proxy` or no proxy at all (the
/// environment's are ignored), no redirects (a redirect would resend signed headers to
/// another place), `kandy.timeout_secs` from connect to last byte.
pub(super) fn http_client(k: &config::Kandy) -> Result<reqwest::Client, KandyError> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(k.timeout_secs))
        .https_only(!k.allow_insecure_http)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(usize::try_from(k.max_in_flight).unwrap_or(4))
        .user_agent(concat!("kandy-link/", env!("CARGO_PKG_VERSION")));
    b = match &k.proxy {
        Some(proxy) => b.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(|_| {
            KandyError::Setup("kandy.proxy is not a proxy URL such as http://proxy.example.net:3128".into())
        })?),
        None => b.no_proxy(),
    };
    if let Some(ca) = &k.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| KandyError::Setup(format!("kandy.ca_file: cannot read {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| KandyError::Setup(format!("kandy.ca_file: {} is not PEM certificates: {e}", ca.display())))?;
        if certs.is_empty() {
            return Err(KandyError::Setup(format!(
                "kandy.ca_file: {} holds no PEM certificate",
                ca.display()
            )));
        }
        b = b.tls_certs_merge(certs);
    }
    b.build()
        .map_err(|e| KandyError::Setup(format!("the HTTP client cannot start: {}", chain(&e))))
}

impl Client {
    /// Signs and sends `call` once, with `token` unless it is a login. A nonce and a
    /// timestamp are drawn for this attempt alone.
    pub(super) async fn attempt(&self, call: &Call, token: Option<&Secret>) -> Result<Reply, KandyError> {
        let s = &self.inner.s;
        let k = &s.kandy;
        let url = Url::parse(&format!("{}{}", k.api_base_url, call.path))
            .map_err(|e| KandyError::Setup(format!("{}{} is not a valid URL: {e}", k.api_base_url, call.path)))?;
        // What goes on the request line, and so what is signed.
        let mut path_and_query = url.path().to_string();
        if let Some(q) = url.query() {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        let timestamp = unix_now().to_string();
        let nonce = if k.use_nonce { sign::new_nonce() } else { String::new() };
        let body = call.body.as_deref().unwrap_or("");

        let mut headers: Vec<(&'static str, String)> =
            vec![("x-user-id", k.user_id.clone()), ("x-group-id", k.group_id.clone())];
        if let Some(t) = token.filter(|_| call.endpoint != Endpoint::Login) {
            headers.push(("x-user-token", t.expose().to_string()));
        }
        headers.push(("x-timestamp", timestamp.clone()));
        if k.use_nonce {
            headers.push(("x-nonce", nonce.clone()));
        }
        if let Some(key) = &s.hmac {
            let signed = Signed {
                method: &call.method,
                path_and_query: &path_and_query,
                user_id: &k.user_id,
                group_id: &k.group_id,
                timestamp: &timestamp,
                nonce: &nonce,
                body: body.as_bytes(),
            };
            headers.push(("x-hmac", sign::x_hmac(k.hmac_mode, key.expose(), &signed)));
        }
        if call.body.is_some() {
            headers.push(("content-type", "application/json".into()));
        }
        headers.push(("accept", "application/json".into()));
        self.exchange(call, url, &headers, token).await
    }

    /// Sends one request and reads its answer whole. Every request and answer of the
    /// client passes here, rendered for the packet log with its secrets redacted.
    async fn exchange(
        &self,
        call: &Call,
        url: Url,
        headers: &[(&'static str, String)],
        token: Option<&Secret>,
    ) -> Result<Reply, KandyError> {
        let i = &self.inner;
        let method = Method::from_bytes(call.method.as_bytes())
            .map_err(|_| KandyError::Setup(format!("`{}` is not an HTTP method", call.method)))?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let mut v = HeaderValue::from_str(value).map_err(|_| {
                KandyError::Setup(format!(
                    "the {name} header cannot carry the configured value: use printable ASCII"
                ))
            })?;
            v.set_sensitive(matches!(*name, "x-user-token" | "x-hmac"));
            map.insert(HeaderName::from_static(name), v);
        }
        let secrets: Vec<&str> = [&i.s.password, &i.s.user_token, &i.s.hmac]
            .into_iter()
            .flatten()
            .chain(token)
            .map(Secret::expose)
            .collect();
        let sink = i.hooks.packets.as_ref();
        if let Some(sink) = sink {
            let shown = headers.iter().map(|(n, v)| (*n, v.as_str()));
            sink.send(&packet::request(
                method.as_str(),
                url.as_str(),
                shown,
                call.shown_body.as_deref(),
                &secrets,
            ));
        }

        let _slot = i.slots.acquire().await;
        let started = Instant::now();
        let mut request = i.http.request(method, url).headers(map);
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let result = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(Reply { status, headers, body })
        }
        .await;
        let elapsed = started.elapsed();

        match result {
            Ok(reply) => {
                self.note_clock(&reply);
                if let Some(sink) = sink {
                    let shown = reply
                        .headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("(binary)")));
                    let login_field = (call.endpoint == Endpoint::Login).then_some(i.s.kandy.api.token_field.as_str());
                    sink.send(&packet::answer(
                        reply.status,
                        elapsed,
                        shown,
                        &reply.body,
                        login_field,
                        &secrets,
                    ));
                }
                Ok(reply)
            }
            Err(e) => {
                let reason = describe(&e, i.s.kandy.timeout_secs);
                if let Some(sink) = sink {
                    sink.send(&packet::no_answer(elapsed, &reason, &secrets));
                }
                // classify::unreachable: probe again after the interval.
                Err(KandyError::Unavailable {
                    request: call.request_line(),
                    reason,
                    wait: i.s.interval,
                })
            }
        }
    }

    fn note_clock(&self, reply: &Reply) {
        let portal = reply
            .headers
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(|d| httpdate::parse_http_date(d).ok());
        if let (Some(portal), Ok(mut clock)) = (portal, self.inner.clock.lock()) {
            *clock = Some(PortalClock {
                portal,
                local: SystemTime::now(),
            });
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A transport failure in words: timeout, or the chain of causes (without the URL's
/// text at the top, which the caller already names).
fn describe(e: &reqwest::Error, timeout_secs: u64) -> String {
    if e.is_timeout() {
        return format!("no answer within kandy.timeout_secs = {timeout_secs} s");
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    };
    format!("{what}: {}", chain(e))
}

/// The causes of an error, innermost last, repeated texts dropped.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}
