//! The four endpoints of kandy-api.md as `[kandy.api]` spells them: method, path (path
//! segments percent-encoded), query, and the body rendered once from its template. Pure.

use crate::config::{Api, MASK, Secret};
use crate::kandy::template::{self, json_string, path_segment};

/// Which endpoint a call is; decides how its answer is read and classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Login,
    ListUsers,
    SetName,
    SetCallPermission,
    /// A GET of the base URL without a token: does the connection work at all.
    Reach,
}

/// One request, ready to sign and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub endpoint: Endpoint,
    pub method: String,
    /// Relative to `kandy.api_base_url`, query included.
    pub path: String,
    /// Compact JSON, sent exactly as rendered.
    pub body: Option<String>,
    /// The body as the packet log shows it: the login's password replaced by `********`.
    pub shown_body: Option<String>,
}

impl Call {
    /// Whether the path names one user: a 404 then means the cache is stale.
    pub fn user_path(&self) -> bool {
        matches!(self.endpoint, Endpoint::SetName | Endpoint::SetCallPermission)
    }

    /// `METHOD /path`, for messages (no secret is ever in a path).
    pub fn request_line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Splits `"PUT /groups/{group}/..."` (checked when the file was read).
fn split(spec: &str) -> (&str, &str) {
    spec.split_once(' ').unwrap_or(("GET", spec))
}

fn call(endpoint: Endpoint, spec: &str, values: &[(&str, &str)], body: Option<String>) -> Call {
    let (method, path) = split(spec);
    Call {
        endpoint,
        method: method.to_string(),
        path: template::render(path, values, path_segment),
        shown_body: body.clone(),
        body,
    }
}

pub fn login(api: &Api, user_id: &str, password: &Secret) -> Call {
    let body = |password: &str| {
        template::render(
            &api.login_body,
            &[("user_id", user_id), ("password", password)],
            json_string,
        )
    };
    let mut c = call(Endpoint::Login, &api.login, &[], Some(body(password.expose())));
    c.shown_body = Some(body(MASK));
    c
}

pub fn list_users(api: &Api, group: &str, page: u64, size: u64) -> Call {
    let (page, size) = (page.to_string(), size.to_string());
    let mut c = call(Endpoint::ListUsers, &api.list_users, &[("group", group)], None);
    let query = template::render(&api.list_query, &[("page", &page), ("size", &size)], path_segment);
    if !query.is_empty() {
        c.path.push('?');
        c.path.push_str(&query);
    }
    c
}

pub fn set_name(api: &Api, group: &str, user: &str, first: &str, last: &str) -> Call {
    let body = template::render(&api.name_body, &[("first", first), ("last", last)], json_string);
    call(
        Endpoint::SetName,
        &api.set_name,
        &[("group", group), ("user", user)],
        Some(body),
    )
}

pub fn set_call_permission(api: &Api, group: &str, user: &str, permission: &str) -> Call {
    let body = template::render(&api.call_permission_body, &[("permission", permission)], json_string);
    call(
        Endpoint::SetCallPermission,
        &api.set_call_permission,
        &[("group", group), ("user", user)],
        Some(body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_contract() {
        let api = Api::default();
        let c = set_name(&api, "hotel-42", "1001", "John", "Smith");
        assert_eq!(c.request_line(), "PUT /groups/hotel-42/users/1001/name");
        assert_eq!(c.body.as_deref(), Some(r#"{"firstName":"John","lastName":"Smith"}"#));
        assert!(c.user_path());
        let c = list_users(&api, "hotel-42", 1, 200);
        assert_eq!(c.request_line(), "GET /groups/hotel-42/users?page=1&pageSize=200");
        assert_eq!(c.body, None);
        assert!(!c.user_path());
        let c = set_call_permission(&api, "hotel-42", "1001", "international");
        assert_eq!(c.path, "/groups/hotel-42/users/1001/call-permission");
        assert_eq!(c.body.as_deref(), Some(r#"{"callPermission":"international"}"#));
    }

    #[test]
    fn path_segments_are_percent_encoded_and_bodies_escaped() {
        let api = Api::default();
        let c = set_name(&api, "hotel 42", "1002@hotel", "Zoë \"Z\"", "");
        assert_eq!(c.path, "/groups/hotel%2042/users/1002%40hotel/name");
        assert_eq!(c.body.as_deref(), Some(r#"{"firstName":"Zoë \"Z\"","lastName":""}"#));
    }

    #[test]
    fn the_login_shows_no_password() {
        let c = login(&Api::default(), "duvoice", &Secret::new("pa\"ss"));
        assert_eq!(c.request_line(), "POST /auth/login");
        assert_eq!(c.body.as_deref(), Some(r#"{"userId":"duvoice","password":"pa\"ss"}"#));
        assert_eq!(
            c.shown_body.as_deref(),
            Some(r#"{"userId":"duvoice","password":"********"}"#)
        );
    }

    #[test]
    fn another_portal_spelling() {
        let api = Api {
            list_users: "GET /v2/tenants/{group}/extensions".into(),
            list_query: "offsetPage={page}".into(),
            set_name: "PATCH /v2/tenants/{group}/extensions/{user}".into(),
            name_body: r#"{"display":{"given":{first},"family":{last}}}"#.into(),
            ..Api::default()
        };
        assert_eq!(
            list_users(&api, "g", 3, 200).request_line(),
            "GET /v2/tenants/g/extensions?offsetPage=3"
        );
        let c = set_name(&api, "g", "u", "A", "B");
        assert_eq!(c.request_line(), "PATCH /v2/tenants/g/extensions/u");
        assert_eq!(c.body.as_deref(), Some(r#"{"display":{"given":"A","family":"B"}}"#));
    }
}
