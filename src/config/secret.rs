//! Secrets: a type that never prints its value, and where a secret comes from.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A password, token or key. `Debug`, `Display` and `Serialize` all show `********`,
/// so a secret cannot reach a log, a status line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

pub const MASK: &str = "********";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

/// Where a secret comes from. Files are read only by the commands that need the secret
/// (`run`, `check-config`, `cache refresh`), so `enqueue` and `status` work for users who
/// cannot read the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    None,
    Inline(Secret),
    /// A bare name: `$CREDENTIALS_DIRECTORY/NAME` when that is set, else beside the file.
    Credential {
        name: String,
        beside: PathBuf,
    },
    Path(PathBuf),
}

impl Serialize for SecretSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SecretSource::None => s.serialize_str(""),
            SecretSource::Inline(_) => s.serialize_str(MASK),
            SecretSource::Credential { name, .. } => s.serialize_str(&format!("{MASK} (credential {name})")),
            SecretSource::Path(p) => s.serialize_str(&format!("{MASK} (file {})", p.display())),
        }
    }
}

impl SecretSource {
    /// `value` and `file` as written under `key` / `key_file`; `dir` is the config's folder.
    pub fn from_parts(value: Option<String>, file: Option<String>, dir: &Path) -> Self {
        match (value, file) {
            (Some(v), _) if !v.is_empty() => SecretSource::Inline(Secret::new(v)),
            (_, Some(f)) if !f.is_empty() => {
                if f.contains('/') {
                    SecretSource::Path(dir.join(f))
                } else {
                    SecretSource::Credential {
                        name: f,
                        beside: dir.to_path_buf(),
                    }
                }
            }
            _ => SecretSource::None,
        }
    }

    pub fn is_set(&self) -> bool {
        !matches!(self, SecretSource::None)
    }

    /// The file a secret is read from, if it comes from one.
    pub fn path(&self, credentials_dir: Option<&Path>) -> Option<PathBuf> {
        match self {
            SecretSource::Credential { name, beside } => Some(credentials_dir.unwrap_or(beside).join(name)),
            SecretSource::Path(p) => Some(p.clone()),
            _ => None,
        }
    }

    /// Reads the secret. A file's trailing newline is dropped (editors add one).
    /// The error names the file, never the content.
    pub fn resolve(&self) -> Result<Option<Secret>, String> {
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        match self {
            SecretSource::None => Ok(None),
            SecretSource::Inline(s) => Ok(Some(s.clone())),
            _ => {
                let path = self.path(credentials.as_deref()).unwrap_or_default();
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value);
                if value.is_empty() {
                    return Err(format!("{} is empty", path.display()));
                }
                Ok(Some(Secret::new(value)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), MASK);
        assert_eq!(format!("{s:?}"), MASK);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{MASK}\""));
        let src = SecretSource::Inline(s);
        assert!(!format!("{src:?}").contains("hunter2"));
    }

    #[test]
    fn a_bare_name_is_a_credential_and_a_path_is_a_path() {
        let dir = Path::new("/etc/kandy-link");
        let bare = SecretSource::from_parts(None, Some("kandy-password".into()), dir);
        assert_eq!(bare.path(None).unwrap(), Path::new("/etc/kandy-link/kandy-password"));
        assert_eq!(
            bare.path(Some(Path::new("/run/credentials/x"))).unwrap(),
            Path::new("/run/credentials/x/kandy-password")
        );
        let rel = SecretSource::from_parts(None, Some("secrets/pw".into()), dir);
        assert_eq!(rel.path(None).unwrap(), Path::new("/etc/kandy-link/secrets/pw"));
    }

    #[test]
    fn a_file_secret_loses_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let src = SecretSource::Path(dir.path().join("pw"));
        assert_eq!(src.resolve().unwrap().unwrap().expose(), "s3cret");
        let missing = SecretSource::Path(dir.path().join("nope"));
        assert!(missing.resolve().unwrap_err().contains("nope"));
    }
}
