//! `{placeholder}` templates: request paths and bodies of `[kandy.api]`, and the names of
//! `[names]`. A placeholder is `{` + lowercase letters or `_` + `}`; every other brace is
//! literal, so JSON bodies such as `{"firstName":{first}}` need no escaping. Pure.

use std::fmt::Write;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'t> {
    Text(&'t str),
    Placeholder(&'t str),
}

fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut text_start = 0;
    let mut pos = 0;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        if name_len > 0 && after.as_bytes().get(name_len) == Some(&b'}') {
            let start = pos + open;
            if start > text_start {
                out.push(Piece::Text(&template[text_start..start]));
            }
            out.push(Piece::Placeholder(&after[..name_len]));
            let consumed = open + 1 + name_len + 1;
            pos += consumed;
            text_start = pos;
            rest = &rest[consumed..];
        } else {
            pos += open + 1;
            rest = &rest[open + 1..];
        }
    }
    if text_start < template.len() {
        out.push(Piece::Text(&template[text_start..]));
    }
    out
}

/// The placeholders a template uses, in order.
pub fn placeholders(template: &str) -> Vec<&str> {
    pieces(template)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Placeholder(name) => Some(name),
            Piece::Text(_) => None,
        })
        .collect()
}

/// The first placeholder not in `allowed`, if any.
pub fn unknown_placeholder<'t>(template: &'t str, allowed: &[&str]) -> Option<&'t str> {
    placeholders(template).into_iter().find(|p| !allowed.contains(p))
}

/// Renders with each placeholder's value passed through `encode`. A placeholder without a
/// value renders as the empty value (callers check placeholders when the file is read).
pub fn render(template: &str, values: &[(&str, &str)], encode: impl Fn(&str, &mut String)) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    for piece in pieces(template) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Placeholder(name) => {
                let value = values.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| *v);
                encode(value, &mut out);
            }
        }
    }
    out
}

/// Values as they are (names shown on the phone).
pub fn plain(value: &str, out: &mut String) {
    out.push_str(value);
}

/// Values as JSON strings, quotes included (request bodies).
pub fn json_string(value: &str, out: &mut String) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Values as one percent-encoded path segment (RFC 3986 unreserved characters kept).
pub fn path_segment(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_braces_are_literal_and_placeholders_become_json_strings() {
        let t = r#"{"firstName":{first},"lastName":{last}}"#;
        assert_eq!(placeholders(t), ["first", "last"]);
        let body = render(t, &[("first", "Jo\"n"), ("last", "Smith")], json_string);
        assert_eq!(body, r#"{"firstName":"Jo\"n","lastName":"Smith"}"#);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["firstName"], "Jo\"n");
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut s = String::new();
        json_string("a\u{1}b\n", &mut s);
        assert_eq!(s, r#""a\u0001b\n""#);
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        let p = render(
            "/groups/{group}/users/{user}/name",
            &[("group", "hotel 42"), ("user", "a/b@c")],
            path_segment,
        );
        assert_eq!(p, "/groups/hotel%2042/users/a%2Fb%40c/name");
    }

    #[test]
    fn unknown_placeholders_are_found_and_odd_braces_kept() {
        assert_eq!(unknown_placeholder("{first} {nmae}", &["first"]), Some("nmae"));
        assert_eq!(unknown_placeholder("{Room} {} {first", &["first"]), None);
        assert_eq!(render("{Room} {first", &[], plain), "{Room} {first");
    }
}
