//! A Kandy user as the list endpoint gives it, read with the field names of
//! `[kandy.api]`. Tolerant: every field but the user id may be missing or null, and a
//! number where a string is expected is taken as its decimal text. Pure.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Api;

/// One user of the group: what the extension cache keeps and matches mailboxes against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub number: Option<String>,
    pub extension: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub call_permission: Option<String>,
}

/// One page of the user list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub users: Vec<User>,
    /// `total_pages_field`, when the portal sent it.
    pub total_pages: Option<u64>,
    /// Entries without a user id, left out.
    pub skipped: usize,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads one user; `None` when it has no user id.
pub fn parse_user(api: &Api, v: &Value) -> Option<User> {
    let o = v.as_object()?;
    let user_id = text(o.get(&api.user_id_field)).filter(|id| !id.is_empty())?;
    Some(User {
        user_id,
        number: text(o.get(&api.number_field)),
        extension: text(o.get(&api.extension_field)),
        first_name: text(o.get(&api.first_name_field)),
        last_name: text(o.get(&api.last_name_field)),
        call_permission: text(o.get(&api.call_permission_field)),
    })
}

/// Reads a list answer. The error says which `[kandy.api]` field did not fit.
pub fn parse_page(api: &Api, body: &[u8]) -> Result<Page, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the user list is not JSON ({e})"))?;
    let list = match &v {
        Value::Array(list) => list,
        Value::Object(o) => match o.get(&api.users_field) {
            Some(Value::Array(list)) => list,
            Some(Value::Null) | None => {
                return Err(format!(
                    "the user list has no `{}` array (kandy.api.users_field)",
                    api.users_field
                ));
            }
            Some(_) => return Err(format!("`{}` in the user list is not an array", api.users_field)),
        },
        _ => return Err("the user list is neither an object nor an array".into()),
    };
    let users: Vec<User> = list.iter().filter_map(|u| parse_user(api, u)).collect();
    let total_pages = v.get(&api.total_pages_field).and_then(|t| match t {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    Ok(Page {
        skipped: list.len() - users.len(),
        users,
        total_pages,
    })
}

/// A user as the portal shows it, with `[kandy.api]`'s field names (the simulator's answers).
pub fn to_json(api: &Api, u: &User) -> Value {
    let mut o = Map::new();
    o.insert(api.user_id_field.clone(), Value::String(u.user_id.clone()));
    for (field, value) in [
        (&api.number_field, &u.number),
        (&api.extension_field, &u.extension),
        (&api.first_name_field, &u.first_name),
        (&api.last_name_field, &u.last_name),
        (&api.call_permission_field, &u.call_permission),
    ] {
        o.insert(field.clone(), value.clone().map_or(Value::Null, Value::String));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_null_fields_are_none_and_only_the_user_id_is_required() {
        let api = Api::default();
        let body = br#"{"users":[
            {"userId":"1001","number":"+13125551001","extension":"1001","firstName":"Room","lastName":"","callPermission":"internal"},
            {"userId":"1002@hotel","number":null},
            {"userId":4711,"extension":1003},
            {"number":"+1"},
            {"userId":null}
        ],"page":1,"pageSize":200,"totalPages":7}"#;
        let page = parse_page(&api, body).unwrap();
        assert_eq!(page.total_pages, Some(7));
        assert_eq!(page.skipped, 2);
        assert_eq!(page.users.len(), 3);
        assert_eq!(page.users[0].last_name.as_deref(), Some(""));
        assert_eq!(page.users[1].user_id, "1002@hotel");
        assert_eq!(page.users[1].number, None);
        assert_eq!(page.users[2].user_id, "4711");
        assert_eq!(page.users[2].extension.as_deref(), Some("1003"));
    }

    #[test]
    fn other_field_names_come_from_the_api_table() {
        let api = Api {
            users_field: "items".into(),
            user_id_field: "id".into(),
            extension_field: "ext".into(),
            total_pages_field: "pages".into(),
            ..Api::default()
        };
        let page = parse_page(&api, br#"{"items":[{"id":"a","ext":"101"}],"pages":"2"}"#).unwrap();
        assert_eq!(page.users[0].extension.as_deref(), Some("101"));
        assert_eq!(page.total_pages, Some(2));
        let back = parse_user(&api, &to_json(&api, &page.users[0])).unwrap();
        assert_eq!(back, page.users[0]);
    }

    #[test]
    fn a_list_without_its_array_names_the_setting() {
        let err = parse_page(&Api::default(), br#"{"data":[]}"#).unwrap_err();
        assert!(err.contains("kandy.api.users_field"), "{err}");
        assert!(parse_page(&Api::default(), b"<html>").is_err());
    }
}
