//! The file as written: serde structs with the defaults of config.md and no other rule.
//! `super::validate` turns them into a `Config`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub kandy: RawKandy,
    #[serde(default)]
    pub scheduling: Scheduling,
    #[serde(default)]
    pub logging: RawLogging,
    #[serde(default)]
    pub queue: RawQueue,
    #[serde(default)]
    pub names: Names,
    #[serde(default)]
    pub call_permissions: CallPermissions,
    #[serde(default)]
    pub rooms: Rooms,
    #[serde(default)]
    pub fias: RawFias,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKandy {
    pub api_base_url: String,
    pub user_id: String,
    pub password: Option<String>,
    pub password_file: Option<String>,
    pub user_token: Option<String>,
    pub user_token_file: Option<String>,
    pub group_id: String,
    pub hmac: Option<String>,
    pub hmac_file: Option<String>,
    #[serde(default)]
    pub hmac_mode: HmacMode,
    #[serde(default)]
    pub use_nonce: bool,
    #[serde(default = "d_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "d_in_flight")]
    pub max_in_flight: u64,
    #[serde(default)]
    pub allow_insecure_http: bool,
    #[serde(default)]
    pub ca_file: String,
    #[serde(default)]
    pub proxy: String,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub api: Api,
}

fn d_timeout() -> u64 {
    30
}
fn d_in_flight() -> u64 {
    4
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacMode {
    #[default]
    Sign,
    Static,
}

/// `[kandy.api]`: how this portal spells the contract of kandy-api.md.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    pub login: String,
    pub list_users: String,
    pub list_query: String,
    pub set_name: String,
    pub set_call_permission: String,
    pub name_body: String,
    pub call_permission_body: String,
    pub login_body: String,
    pub token_field: String,
    pub users_field: String,
    pub user_id_field: String,
    pub number_field: String,
    pub extension_field: String,
    pub first_name_field: String,
    pub last_name_field: String,
    pub call_permission_field: String,
    pub total_pages_field: String,
    pub error_field: String,
    pub page_size: u64,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            login: "POST /auth/login".into(),
            list_users: "GET /groups/{group}/users".into(),
            list_query: "page={page}&pageSize={size}".into(),
            set_name: "PUT /groups/{group}/users/{user}/name".into(),
            set_call_permission: "PUT /groups/{group}/users/{user}/call-permission".into(),
            name_body: r#"{"firstName":{first},"lastName":{last}}"#.into(),
            call_permission_body: r#"{"callPermission":{permission}}"#.into(),
            login_body: r#"{"userId":{user_id},"password":{password}}"#.into(),
            token_field: "token".into(),
            users_field: "users".into(),
            user_id_field: "userId".into(),
            number_field: "number".into(),
            extension_field: "extension".into(),
            first_name_field: "firstName".into(),
            last_name_field: "lastName".into(),
            call_permission_field: "callPermission".into(),
            total_pages_field: "totalPages".into(),
            error_field: "error".into(),
            page_size: 200,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scheduling {
    pub retries: u64,
    pub interval_secs: u64,
    pub refresh_cache_mins: u64,
    pub repair_drift: bool,
}

impl Default for Scheduling {
    fn default() -> Self {
        Scheduling {
            retries: 3,
            interval_secs: 60,
            refresh_cache_mins: 60,
            repair_drift: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLogging {
    pub dir: String,
    pub prefix: String,
    pub rotation: Rotation,
    pub max_files: u64,
    pub level: Level,
    pub enable_debug: bool,
}

impl Default for RawLogging {
    fn default() -> Self {
        RawLogging {
            dir: "/var/log/kandy-link".into(),
            prefix: "Kandy".into(),
            rotation: Rotation::Daily,
            max_files: 14,
            level: Level::Info,
            enable_debug: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    Hourly,
    Daily,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawQueue {
    pub state_dir: String,
    pub spool_dir: String,
    pub max_file_bytes: u64,
    pub keep_days: u64,
}

impl Default for RawQueue {
    fn default() -> Self {
        RawQueue {
            state_dir: "/var/lib/kandy-link".into(),
            spool_dir: "/var/spool/kandy-link".into(),
            max_file_bytes: 1_048_576,
            keep_days: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Names {
    pub occupied_first: String,
    pub occupied_last: String,
    pub vacant_first: String,
    pub vacant_last: String,
    pub max_len: u64,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            occupied_first: "{first}".into(),
            occupied_last: "{last}".into(),
            vacant_first: "Room".into(),
            vacant_last: String::new(),
            max_len: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallPermissions {
    pub on_check_in: String,
    pub on_check_out: String,
    pub allowed: Vec<String>,
    pub codes: BTreeMap<String, String>,
}

impl Default for CallPermissions {
    fn default() -> Self {
        let codes = [
            ("0", "internal"),
            ("1", "local"),
            ("2", "national"),
            ("3", "international"),
        ];
        CallPermissions {
            on_check_in: "international".into(),
            on_check_out: "internal".into(),
            allowed: Vec::new(),
            codes: codes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rooms {
    pub ignore: Vec<String>,
    pub mailboxes: BTreeMap<String, String>,
}

/// `[fias]`: the direct FIAS link to the PMS (fias.md). Off unless asked for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFias {
    pub mode: FiasMode,
    pub address: String,
    pub encoding: String,
    pub link_alive_secs: u64,
    pub resync_on_connect: bool,
}

impl Default for RawFias {
    fn default() -> Self {
        RawFias {
            mode: FiasMode::Off,
            address: "0.0.0.0:5010".into(),
            encoding: "utf-8".into(),
            link_alive_secs: 60,
            resync_on_connect: true,
        }
    }
}

/// Who opens the TCP connection: nobody, the PMS (we listen), or we (the PMS listens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FiasMode {
    #[default]
    Off,
    Server,
    Client,
}
