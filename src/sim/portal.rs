//! The portal side of the simulator: the endpoints as `[kandy.api]` spells them, every
//! check of kandy-api.md ("What the portal checks"), and the answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::state::Received;
use crate::config::Api;
use crate::kandy::api::Endpoint;
use crate::kandy::sign::{self, Signed};
use crate::kandy::template::{self, json_string};
use crate::kandy::user;

/// The largest body the simulator reads.
const MAX_BODY: usize = 1 << 20;

/// The largest page a list request may ask for.
pub const MAX_PAGE_SIZE: u64 = 500;

#[derive(Debug)]
enum Segment {
    Literal(String),
    Placeholder(String),
}

#[derive(Debug)]
struct Route {
    endpoint: Endpoint,
    method: String,
    segments: Vec<Segment>,
}

/// How this portal spells the contract, prepared once from an `Api`.
#[derive(Debug)]
pub struct Routes {
    routes: Vec<Route>,
    /// Query keys of `{page}` and `{size}`.
    page_key: Option<String>,
    size_key: Option<String>,
    /// JSON pointers of each placeholder in the body templates.
    login: HashMap<String, String>,
    name: HashMap<String, String>,
    permission: HashMap<String, String>,
}

impl Routes {
    pub fn new(api: &Api) -> Routes {
        let route = |endpoint, spec: &str| {
            let (method, path) = spec.split_once(' ').unwrap_or(("GET", spec));
            let segments = path
                .split('/')
                .map(|s| match template::placeholders(s).first() {
                    Some(p) if s == format!("{{{p}}}") => Segment::Placeholder((*p).to_string()),
                    _ => Segment::Literal(s.to_string()),
                })
                .collect();
            Route {
                endpoint,
                method: method.to_string(),
                segments,
            }
        };
        let key_of = |placeholder: &str| {
            api.list_query.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (v == format!("{{{placeholder}}}")).then(|| k.to_string())
            })
        };
        Routes {
            routes: vec![
                route(Endpoint::Login, &api.login),
                route(Endpoint::ListUsers, &api.list_users),
                route(Endpoint::SetName, &api.set_name),
                route(Endpoint::SetCallPermission, &api.set_call_permission),
            ],
            page_key: key_of("page"),
            size_key: key_of("size"),
            login: pointers(&api.login_body, &["user_id", "password"]),
            name: pointers(&api.name_body, &["first", "last"]),
            permission: pointers(&api.call_permission_body, &["permission"]),
        }
    }

    /// The endpoint `method path` is, with its placeholders' (decoded) values.
    fn find(&self, method: &str, path: &str) -> Option<(&Endpoint, HashMap<String, String>)> {
        let parts: Vec<&str> = path.split('/').collect();
        self.routes.iter().find_map(|r| {
            if r.method != method || r.segments.len() != parts.len() {
                return None;
            }
            let mut vars = HashMap::new();
            for (seg, part) in r.segments.iter().zip(&parts) {
                match seg {
                    Segment::Literal(l) if l == part => {}
                    Segment::Literal(_) => return None,
                    Segment::Placeholder(name) => {
                        vars.insert(name.clone(), percent_decode(part));
                    }
                }
            }
            Some((&r.endpoint, vars))
        })
    }
}

/// Where each placeholder lands in a body template, as a JSON pointer.
fn pointers(template: &str, names: &[&str]) -> HashMap<String, String> {
    let marks: Vec<(String, String)> = names.iter().map(|n| (n.to_string(), format!("\u{1}{n}"))).collect();
    let values: Vec<(&str, &str)> = marks.iter().map(|(n, m)| (n.as_str(), m.as_str())).collect();
    let mut out = HashMap::new();
    if let Ok(v) = serde_json::from_str::<Value>(&template::render(template, &values, json_string)) {
        walk(&v, String::new(), &mut out);
    }
    out
}

fn walk(v: &Value, at: String, out: &mut HashMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix('\u{1}') {
                out.insert(name.to_string(), at);
            }
        }
        Value::Object(o) => {
            for (k, v) in o {
                walk(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).and_then(|c| hex(*c)), b.get(i + 2).and_then(|c| hex(*c)))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer before it becomes an HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Option<Value>,
    /// An error code and message, sent as `{"<error_field>": code, "message": message}`.
    error: Option<(String, String)>,
    retry_after: Option<String>,
}

fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    Reply {
        status,
        body: None,
        error: Some((code.to_string(), message.into())),
        retry_after: None,
    }
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body: Some(body),
        error: None,
        retry_after: None,
    }
}

/// The error code a fault of `status` answers with, when none was given.
fn fault_code(status: u16) -> &'static str {
    match status {
        401 => "invalid_token",
        403 => "forbidden",
        404 => "not_found",
        408 => "request_timeout",
        422 => "unprocessable",
        429 => "rate_limited",
        500 => "internal_error",
        502 => "bad_gateway",
        503 => "unavailable",
        504 => "gateway_timeout",
        _ => "error",
    }
}

/// Every request outside `/_sim`: wait the latency, answer, log.
pub async fn handle(State(sim): State<Arc<Shared>>, request: Request) -> Response {
    let latency = sim.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let method = parts.method.as_str().to_string();
    let (bytes, reply) = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            let reply = answer(&sim, &method, &path, &parts.headers, &bytes);
            (bytes, reply)
        }
        Err(_) => (Default::default(), error(413, "too_large", "the body is too large")),
    };
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    sim.lock().record(Received {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        status: reply.status,
    });
    response(&sim, reply)
}

fn response(sim: &Shared, reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match reply.error {
        Some((code, message)) => {
            let mut o = serde_json::Map::new();
            o.insert(sim.options.api.error_field.clone(), Value::String(code));
            o.insert("message".into(), Value::String(message));
            Some(Value::Object(o))
        }
        None => reply.body,
    };
    let mut r = match body {
        Some(v) => (status, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response(),
        None => (status, Body::empty()).into_response(),
    };
    let date = httpdate::fmt_http_date(sim.now());
    if let Ok(v) = HeaderValue::from_str(&date) {
        r.headers_mut().insert(header::DATE, v);
    }
    if let Some(v) = reply.retry_after.and_then(|ra| HeaderValue::from_str(&ra).ok()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn answer(sim: &Shared, method: &str, path_and_query: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
    let o = &sim.options;
    let mut st = sim.lock();
    st.requests += 1;
    if st.unavailable {
        let mut r = error(503, "unavailable", "the portal is down for maintenance");
        r.retry_after = st.unavailable_retry_after.clone();
        return r;
    }
    if let Some(f) = st.take_fault(path_and_query) {
        let code = f.error.as_deref().unwrap_or(fault_code(f.status)).to_string();
        let mut r = error(f.status, &code, "injected by kandy-sim");
        r.retry_after = f.retry_after;
        return r;
    }
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let Some((endpoint, vars)) = path
        .strip_prefix(o.base_path.as_str())
        .and_then(|rest| sim.routes.find(method, rest))
    else {
        return error(404, "not_found", format!("no endpoint {method} {path}"));
    };
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");

    // X-Timestamp within the allowed skew of the portal's clock.
    let now = sim
        .now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let skew_ok = h("x-timestamp")
        .parse::<u64>()
        .is_ok_and(|ts| ts.abs_diff(now) <= o.max_skew_secs);
    if !skew_ok {
        return error(
            401,
            "clock_skew",
            "X-Timestamp is missing or too far from the portal's clock",
        );
    }
    // A nonce not seen in the last ten minutes.
    let nonce = h("x-nonce");
    let at = Instant::now();
    if o.use_nonce {
        if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return error(401, "bad_nonce", "X-Nonce must be 32 hex characters");
        }
        if st.nonce_seen(nonce, at) {
            return error(401, "nonce_reused", "this X-Nonce was used in the last 10 minutes");
        }
    }
    // The signature, when the account has a key.
    if !o.hmac.is_empty() {
        let signed = Signed {
            method,
            path_and_query,
            user_id: h("x-user-id"),
            group_id: h("x-group-id"),
            timestamp: h("x-timestamp"),
            nonce,
            body,
        };
        if !sign::verify(o.hmac_mode, &o.hmac, &signed, h("x-hmac")) {
            return error(401, "bad_signature", "X-HMAC does not match the request");
        }
    }
    if o.use_nonce {
        st.remember_nonce(nonce, at);
    }
    if *endpoint == Endpoint::Login {
        return login(sim, &mut st, body);
    }
    if h("x-user-id") != o.user_id || h("x-user-token") != st.token {
        return error(401, "invalid_token", "X-User-Token is missing, wrong or superseded");
    }
    if let Some(group) = vars.get("group")
        && (group != h("x-group-id") || *group != o.group_id)
    {
        return error(403, "forbidden", "this account may not use this group");
    }
    let api = &o.api;
    let user_id = vars.get("user").cloned().unwrap_or_default();
    match endpoint {
        Endpoint::ListUsers => list(sim, &st, query),
        Endpoint::SetName => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let field = |name: &str| {
                let ptr = sim.routes.name.get(name)?;
                v.pointer(ptr)?.as_str().map(str::to_string)
            };
            let (Some(first), Some(last)) = (field("first"), field("last")) else {
                return error(400, "bad_request", "the body must give the first and the last name");
            };
            let Some(u) = st.user_mut(&user_id) else {
                return error(404, "not_found", format!("no user {user_id}"));
            };
            u.first_name = Some(first);
            u.last_name = Some(last);
            ok(user::to_json(api, u))
        }
        Endpoint::SetCallPermission => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let permission = sim
                .routes
                .permission
                .get("permission")
                .and_then(|ptr| v.pointer(ptr))
                .and_then(Value::as_str)
                .map(str::to_string);
            let Some(permission) = permission else {
                return error(400, "bad_request", "the body must give the call permission");
            };
            if !o.permissions.contains(&permission) {
                return error(
                    422,
                    "unknown_call_permission",
                    format!("the group defines no call permission `{permission}`"),
                );
            }
            let Some(u) = st.user_mut(&user_id) else {
                return error(404, "not_found", format!("no user {user_id}"));
            };
            u.call_permission = Some(permission);
            Reply {
                status: 204,
                body: None,
                error: None,
                retry_after: None,
            }
        }
        Endpoint::Login | Endpoint::Reach => error(404, "not_found", "no such endpoint"),
    }
}

fn login(sim: &Shared, st: &mut super::state::State, body: &[u8]) -> Reply {
    let o = &sim.options;
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |name: &str| {
        let ptr = sim.routes.login.get(name)?;
        v.pointer(ptr)?.as_str()
    };
    if field("user_id") != Some(o.user_id.as_str()) || field("password") != Some(o.password.as_str()) {
        return error(401, "bad_credentials", "wrong user id or password");
    }
    st.logins += 1;
    let token = st.new_token();
    let mut answer = serde_json::Map::new();
    answer.insert(o.api.token_field.clone(), Value::String(token));
    ok(Value::Object(answer))
}

fn list(sim: &Shared, st: &super::state::State, query: &str) -> Reply {
    let o = &sim.options;
    let params: HashMap<String, String> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    let number = |key: &Option<String>, default: u64| match key {
        Some(k) => params.get(k).and_then(|v| v.parse::<u64>().ok()),
        None => Some(default),
    };
    let (Some(page), Some(size)) = (
        number(&sim.routes.page_key, 1),
        number(&sim.routes.size_key, o.api.page_size),
    ) else {
        return error(400, "bad_request", "page and page size must be numbers");
    };
    if page == 0 || size == 0 || size > MAX_PAGE_SIZE {
        return error(
            400,
            "bad_request",
            format!("pages count from 1 and hold 1 to {MAX_PAGE_SIZE} users"),
        );
    }
    let total = st.users.len().div_ceil(usize::try_from(size).unwrap_or(1)).max(1);
    let start = usize::try_from((page - 1) * size).unwrap_or(usize::MAX);
    let users: Vec<Value> = st
        .users
        .iter()
        .skip(start)
        .take(usize::try_from(size).unwrap_or(0))
        .map(|u| user::to_json(&o.api, u))
        .collect();
    let mut answer = serde_json::Map::new();
    answer.insert("page".into(), json!(page));
    answer.insert("pageSize".into(), json!(size));
    answer.insert(o.api.total_pages_field.clone(), json!(total));
    answer.insert(o.api.users_field.clone(), Value::Array(users));
    ok(Value::Object(answer))
}

/// The portal's clock: this machine's, moved by `clock_offset_secs`.
pub fn portal_now(offset_secs: i64) -> SystemTime {
    let now = SystemTime::now();
    let by = Duration::from_secs(offset_secs.unsigned_abs());
    if offset_secs >= 0 { now + by } else { now - by }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_api_table() {
        let r = Routes::new(&Api::default());
        let (e, vars) = r.find("PUT", "/groups/hotel-42/users/1002%40hotel/name").unwrap();
        assert_eq!(*e, Endpoint::SetName);
        assert_eq!(vars["user"], "1002@hotel");
        assert!(r.find("GET", "/groups/hotel-42/users/1001/name").is_none());
        assert_eq!(r.page_key.as_deref(), Some("page"));
        assert_eq!(r.size_key.as_deref(), Some("pageSize"));
        assert_eq!(r.login["password"], "/password");
        assert_eq!(r.name["last"], "/lastName");
    }

    #[test]
    fn body_fields_are_found_however_deep() {
        let p = pointers(r#"{"display":{"given":{first},"a/b":[{last}]}}"#, &["first", "last"]);
        assert_eq!(p["first"], "/display/given");
        assert_eq!(p["last"], "/display/a~1b/0");
    }
}
