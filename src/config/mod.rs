//! The configuration file: reading, defaults, range checks and errors that name the
//! file, line, column and key (config.md).
//!
//! Reading is two steps: `raw` holds the file as written, with serde's defaults;
//! `validate` checks every rule and resolves paths against the file's folder.

mod error;
mod raw;
mod secret;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use error::ConfigError;
pub use raw::{Api, CallPermissions, FiasMode, HmacMode, Level, Names, Rooms, Rotation, Scheduling};
pub use secret::{MASK, Secret, SecretSource};

/// Where the file is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/kandy-link/kandy-link.toml";

/// A valid configuration, ready to use.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    #[serde(skip)]
    pub file: PathBuf,
    pub kandy: Kandy,
    pub scheduling: Scheduling,
    pub logging: Logging,
    pub queue: Queue,
    pub names: Names,
    pub call_permissions: CallPermissions,
    pub rooms: Rooms,
    pub fias: Fias,
}

#[derive(Debug, Clone, Serialize)]
pub struct Kandy {
    /// Without a trailing `/`.
    pub api_base_url: String,
    pub user_id: String,
    pub password: SecretSource,
    pub user_token: SecretSource,
    pub group_id: String,
    pub hmac: SecretSource,
    pub hmac_mode: HmacMode,
    pub use_nonce: bool,
    pub timeout_secs: u64,
    pub max_in_flight: u64,
    pub allow_insecure_http: bool,
    pub ca_file: Option<PathBuf>,
    pub proxy: Option<String>,
    pub dry_run: bool,
    pub api: Api,
}

#[derive(Debug, Clone, Serialize)]
pub struct Logging {
    pub dir: PathBuf,
    pub prefix: String,
    pub rotation: Rotation,
    pub max_files: u64,
    pub level: Level,
    pub enable_debug: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    pub state_dir: PathBuf,
    pub spool_dir: PathBuf,
    pub max_file_bytes: u64,
    pub keep_days: u64,
}

/// `[fias]`, checked: the address parses and the character set is one FIAS framing can
/// carry (ASCII-compatible, so STX, ETX and `|` keep their meaning).
#[derive(Debug, Clone, Serialize)]
pub struct Fias {
    pub mode: FiasMode,
    pub address: SocketAddr,
    /// The label as written (`windows-1252`, `utf-8`, ...); `encoding()` resolves it.
    pub encoding: String,
    pub link_alive_secs: u64,
    pub resync_on_connect: bool,
}

impl Fias {
    /// The character set the PMS sends and is sent in.
    pub fn encoding(&self) -> &'static encoding_rs::Encoding {
        encoding_rs::Encoding::for_label(self.encoding.as_bytes()).unwrap_or(encoding_rs::UTF_8)
    }
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            key: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Validates `text` as if read from `path` (relative paths start at its folder).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let located = error::Located::parse(path.to_path_buf(), text)?;
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| located.deserialize_error(&e))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        validate::validate(raw, &located, dir)
    }

    /// The settings as TOML, secrets shown as `********`.
    pub fn effective(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot show the settings: {e}\n"))
    }

    /// The SQLite store file.
    pub fn store_path(&self) -> PathBuf {
        self.queue.state_dir.join("kandy-link.db")
    }

    /// An error about `key` that has no place in the file (a secret file that is missing).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: None,
            column: None,
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests;
