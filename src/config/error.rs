//! Configuration errors that name the file, line, column and key, and the lookup of a
//! key's position in the TOML text.

use std::fmt;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// What is wrong with a configuration file, in words a technician can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The dotted key, such as `kandy.timeout_secs`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ": line {line}")?;
            if let Some(column) = self.column {
                write!(f, ", column {column}")?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, ": `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The parsed document, kept to find where a key stands when a later check fails.
#[derive(Debug)]
pub struct Located<'a> {
    pub file: PathBuf,
    pub text: &'a str,
    pub doc: Option<Spanned<DeTable<'a>>>,
}

impl<'a> Located<'a> {
    pub fn parse(file: PathBuf, text: &'a str) -> Result<Self, ConfigError> {
        match DeTable::parse(text) {
            Ok(doc) => Ok(Located {
                file,
                text,
                doc: Some(doc),
            }),
            Err(e) => {
                let located = Located { file, text, doc: None };
                Err(located.error_at(e.span().map(|s| s.start), None, e.message().to_string()))
            }
        }
    }

    /// An error at a byte offset, with the key found there when none is given.
    pub fn error_at(&self, offset: Option<usize>, key: Option<String>, message: String) -> ConfigError {
        let (line, column) = match offset {
            Some(o) => {
                let (l, c) = line_column(self.text, o);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        let key = key.or_else(|| offset.and_then(|o| self.key_at(o)));
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            key,
            message,
        }
    }

    /// An error about `key` (dotted), placed at its value when the file has it, else at
    /// the table that should hold it.
    pub fn error_for(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let mut offset = self.offset_of(key);
        let mut prefix = key;
        while offset.is_none()
            && let Some((parent, _)) = prefix.rsplit_once('.')
        {
            offset = self.offset_of(parent);
            prefix = parent;
        }
        self.error_at(offset, Some(key.to_string()), message.into())
    }

    /// Turns a deserialization error into one that names the key.
    pub fn deserialize_error(&self, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map(|s| s.start);
        let message = e.message().trim().replace("expected u64", "expected a whole number");
        let mut err = self.error_at(offset, None, message.clone());
        // "missing field `x`" points at the table that lacks it: name the key itself.
        if let Some(field) = backquoted_after(&message, "missing field ") {
            err.key = Some(match err.key.take() {
                Some(table) if !table.is_empty() => format!("{table}.{field}"),
                _ => field,
            });
        }
        // "unknown field `x`" points at the key itself; key_at gave its full path.
        if err.key.as_deref().is_some_and(is_secret_key) {
            // serde quotes the value it could not take: a secret must not reach an error.
            err.message = "must be a string in quotes (the value is not shown: it is a secret)".into();
        }
        err
    }

    /// The byte offset of a dotted key's value (or of the table, for a table). A part
    /// may end in `[i]` for an element of a list.
    pub fn offset_of(&self, dotted: &str) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut table = doc.get_ref();
        let mut offset = None;
        let parts: Vec<&str> = dotted.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let (name, index) = match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
                Some((name, index)) => (name, index.parse::<usize>().ok()),
                None => (*part, None),
            };
            let (key, mut value) = table.get_key_value(name)?;
            if let Some(index) = index {
                value = value.get_ref().get(index)?;
            }
            offset = Some(if value.span().start < value.span().end {
                value.span().start
            } else {
                key.span().start
            });
            if i + 1 < parts.len() {
                table = value.get_ref().as_table()?;
            }
        }
        offset
    }

    /// The dotted path of the innermost key whose key or value covers `offset`.
    pub fn key_at(&self, offset: usize) -> Option<String> {
        let doc = self.doc.as_ref()?;
        let mut path = Vec::new();
        walk(doc.get_ref(), offset, &mut path);
        (!path.is_empty()).then(|| path.join("."))
    }
}

fn walk(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) {
    for (key, value) in table.iter() {
        let in_key = key.span().contains(&offset);
        let in_value = value.span().contains(&offset) || value.span().end == offset;
        if let DeValue::Table(inner) = value.get_ref() {
            let mut sub = Vec::new();
            walk(inner, offset, &mut sub);
            if !sub.is_empty() || in_key || in_value {
                path.push(key.get_ref().to_string());
                path.extend(sub);
                return;
            }
        } else if in_key || in_value {
            path.push(key.get_ref().to_string());
            return;
        }
    }
}

/// The keys whose values are secrets.
fn is_secret_key(key: &str) -> bool {
    matches!(key, "kandy.password" | "kandy.user_token" | "kandy.hmac")
}

fn backquoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    let rest = rest.strip_prefix('`')?;
    Some(rest[..rest.find('`')?].to_string())
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let text = "a = 1\n[kandy]\nb = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, text.find('b').unwrap()), (3, 1));
        assert_eq!(line_column(text, text.find('2').unwrap()), (3, 5));
    }

    #[test]
    fn keys_are_found_by_position_and_by_name() {
        let text = "[kandy]\nuser_id = \"x\"\ntimeout_secs = 0\n[rooms.mailboxes]\n\"101A\" = \"1101\"\n";
        let l = Located::parse(PathBuf::from("k.toml"), text).unwrap();
        let at = text.find('0').unwrap();
        assert_eq!(l.key_at(at).as_deref(), Some("kandy.timeout_secs"));
        assert_eq!(l.offset_of("kandy.timeout_secs"), Some(at));
        let e = l.error_for("kandy.timeout_secs", "must be between 1 and 3600");
        assert_eq!(
            e.to_string(),
            "k.toml: line 3, column 16: `kandy.timeout_secs`: must be between 1 and 3600"
        );
        assert_eq!(
            l.key_at(text.find("1101").unwrap()).as_deref(),
            Some("rooms.mailboxes.101A")
        );
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_quoted() {
        for text in [
            "[kandy]\npassword = 12345678\n",
            "[kandy]\nhmac = 12345678\n",
            "[kandy]\nuser_token = 12345678\n",
        ] {
            let l = Located::parse(PathBuf::from("k.toml"), text).unwrap();
            let e = toml::from_str::<super::super::raw::RawConfig>(text).unwrap_err();
            let shown = l.deserialize_error(&e).to_string();
            assert!(!shown.contains("12345678"), "{shown}");
            assert!(shown.contains("line 2"), "{shown}");
        }
        let e = Located::parse(PathBuf::from("k.toml"), "[kandy]\npassword = hunter2\n").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let e = Located::parse(PathBuf::from("k.toml"), "[kandy]\nuser_id = \n").unwrap_err();
        assert_eq!(e.line, Some(2));
    }
}
