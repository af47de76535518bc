//! Every rule of config.md that serde does not check: ranges, URLs, templates, names.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, Located};
use super::raw::{Api, CallPermissions, HmacMode, Names, RawConfig, RawFias, Rooms};
use super::{Config, Fias, Kandy, Logging, Queue, SecretSource};
use crate::event;
use crate::kandy::template;

/// The placeholders a `[names]` template may use.
pub const NAME_PLACEHOLDERS: &[&str] = &["first", "last", "title", "room", "mailbox", "vip", "language"];

struct Checker<'a, 'b> {
    located: &'a Located<'b>,
}

impl Checker<'_, '_> {
    fn fail(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.located.error_for(key, message)
    }

    fn range(&self, key: &str, value: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(self.fail(key, format!("must be between {min} and {max} (found {value})")))
        }
    }

    fn non_empty(&self, key: &str, value: &str) -> Result<(), ConfigError> {
        if value.trim().is_empty() {
            return Err(self.fail(key, "is required and must not be empty"));
        }
        Ok(())
    }

    fn template(&self, key: &str, value: &str, allowed: &[&str]) -> Result<(), ConfigError> {
        if let Some(bad) = template::unknown_placeholder(value, allowed) {
            let list: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
            return Err(self.fail(
                key,
                format!("unknown placeholder {{{bad}}}; allowed: {}", list.join(", ")),
            ));
        }
        Ok(())
    }

    fn permission_name(&self, key: &str, value: &str, allowed: &[String]) -> Result<(), ConfigError> {
        if let Err(rule) = event::check_permission_name(value) {
            return Err(self.fail(key, format!("`{value}` {rule}")));
        }
        if !allowed.is_empty() && !allowed.iter().any(|a| a == value) {
            return Err(self.fail(key, format!("`{value}` is not in call_permissions.allowed")));
        }
        Ok(())
    }
}

pub fn validate(raw: RawConfig, located: &Located<'_>, dir: &Path) -> Result<Config, ConfigError> {
    let c = Checker { located };
    let kandy = kandy(&c, raw.kandy, dir)?;

    let s = &raw.scheduling;
    c.range("scheduling.retries", s.retries, 0, 100)?;
    c.range("scheduling.interval_secs", s.interval_secs, 1, 86_400)?;
    c.range("scheduling.refresh_cache_mins", s.refresh_cache_mins, 1, 10_080)?;

    let l = raw.logging;
    c.non_empty("logging.dir", &l.dir)?;
    c.non_empty("logging.prefix", &l.prefix)?;
    if l.prefix.contains('/') || l.prefix.chars().any(char::is_control) {
        return Err(c.fail(
            "logging.prefix",
            "must be a file name prefix, without `/` or control characters",
        ));
    }
    c.range("logging.max_files", l.max_files, 1, 10_000)?;
    let logging = Logging {
        dir: resolve(dir, &l.dir),
        prefix: l.prefix,
        rotation: l.rotation,
        max_files: l.max_files,
        level: l.level,
        enable_debug: l.enable_debug,
    };

    let q = raw.queue;
    c.non_empty("queue.state_dir", &q.state_dir)?;
    c.non_empty("queue.spool_dir", &q.spool_dir)?;
    c.range("queue.max_file_bytes", q.max_file_bytes, 1024, 1 << 30)?;
    c.range("queue.keep_days", q.keep_days, 1, 3650)?;
    let queue = Queue {
        state_dir: resolve(dir, &q.state_dir),
        spool_dir: resolve(dir, &q.spool_dir),
        max_file_bytes: q.max_file_bytes,
        keep_days: q.keep_days,
    };

    names(&c, &raw.names)?;
    call_permissions(&c, &raw.call_permissions)?;
    rooms(&c, &raw.rooms)?;
    let fias = fias(&c, raw.fias)?;

    Ok(Config {
        file: located.file.clone(),
        kandy,
        scheduling: raw.scheduling,
        logging,
        queue,
        names: raw.names,
        call_permissions: raw.call_permissions,
        rooms: raw.rooms,
        fias,
    })
}

fn resolve(dir: &Path, value: &str) -> PathBuf {
    dir.join(value)
}

fn kandy(c: &Checker<'_, '_>, k: super::raw::RawKandy, dir: &Path) -> Result<Kandy, ConfigError> {
    let url = k.api_base_url.trim_end_matches('/').to_string();
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        if !k.allow_insecure_http {
            return Err(c.fail(
                "kandy.api_base_url",
                "must start with https:// (set kandy.allow_insecure_http = true only for a lab portal)",
            ));
        }
        rest
    } else {
        return Err(c.fail("kandy.api_base_url", "must start with https://"));
    };
    if rest.is_empty() || rest.starts_with('/') || url.contains(['?', '#']) || url.chars().any(char::is_whitespace) {
        return Err(c.fail(
            "kandy.api_base_url",
            "must be a URL such as https://portal.example.net/api/v1 (a host, an optional base path, no query)",
        ));
    }
    c.non_empty("kandy.user_id", &k.user_id)?;
    c.non_empty("kandy.group_id", &k.group_id)?;

    let secret = |name: &str, value: Option<String>, file: Option<String>| {
        let both = value.as_deref().is_some_and(|v| !v.is_empty()) && file.as_deref().is_some_and(|f| !f.is_empty());
        if both {
            return Err(c.fail(
                &format!("kandy.{name}_file"),
                format!("set kandy.{name} or kandy.{name}_file, not both"),
            ));
        }
        Ok(SecretSource::from_parts(value, file, dir))
    };
    let password = secret("password", k.password, k.password_file)?;
    let user_token = secret("user_token", k.user_token, k.user_token_file)?;
    let hmac = secret("hmac", k.hmac, k.hmac_file)?;
    if !password.is_set() && !user_token.is_set() {
        return Err(c.fail(
            "kandy.user_token",
            "set kandy.user_token or kandy.password (or their _file forms)",
        ));
    }
    if k.hmac_mode == HmacMode::Static && !hmac.is_set() {
        return Err(c.fail(
            "kandy.hmac_mode",
            "\"static\" sends kandy.hmac as it is, so kandy.hmac must be set",
        ));
    }
    c.range("kandy.timeout_secs", k.timeout_secs, 1, 600)?;
    c.range("kandy.max_in_flight", k.max_in_flight, 1, 64)?;
    let ca_file = if k.ca_file.is_empty() {
        None
    } else {
        let path = resolve(dir, &k.ca_file);
        if !path.is_file() {
            return Err(c.fail("kandy.ca_file", format!("{} is not a readable file", path.display())));
        }
        Some(path)
    };
    let proxy = if k.proxy.is_empty() {
        None
    } else if k.proxy.starts_with("http://") || k.proxy.starts_with("https://") {
        Some(k.proxy)
    } else {
        return Err(c.fail("kandy.proxy", "must be a URL starting with http:// or https://"));
    };
    api(c, &k.api)?;
    Ok(Kandy {
        api_base_url: url,
        user_id: k.user_id,
        password,
        user_token,
        group_id: k.group_id,
        hmac,
        hmac_mode: k.hmac_mode,
        use_nonce: k.use_nonce,
        timeout_secs: k.timeout_secs,
        max_in_flight: k.max_in_flight,
        allow_insecure_http: k.allow_insecure_http,
        ca_file,
        proxy,
        dry_run: k.dry_run,
        api: k.api,
    })
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

fn api(c: &Checker<'_, '_>, a: &Api) -> Result<(), ConfigError> {
    let endpoints: [(&str, &str, &[&str]); 4] = [
        ("login", &a.login, &[]),
        ("list_users", &a.list_users, &["group"]),
        ("set_name", &a.set_name, &["group", "user"]),
        ("set_call_permission", &a.set_call_permission, &["group", "user"]),
    ];
    for (name, value, allowed) in endpoints {
        let key = format!("kandy.api.{name}");
        let Some((method, path)) = value.split_once(' ') else {
            return Err(c.fail(
                &key,
                "must be a method and a path, such as \"PUT /groups/{group}/users/{user}/name\"",
            ));
        };
        if !METHODS.contains(&method) {
            return Err(c.fail(&key, format!("method `{method}` must be one of {}", METHODS.join(", "))));
        }
        if !path.starts_with('/') || path.contains([' ', '?', '#']) {
            return Err(c.fail(
                &key,
                "the path must start with `/` and hold no space, query or fragment",
            ));
        }
        c.template(&key, path, allowed)?;
    }
    c.template("kandy.api.list_query", &a.list_query, &["page", "size"])?;
    if !template::placeholders(&a.list_query).contains(&"page") {
        return Err(c.fail("kandy.api.list_query", "must contain {page}"));
    }
    let bodies: [(&str, &str, &[&str]); 3] = [
        ("name_body", &a.name_body, &["first", "last"]),
        ("call_permission_body", &a.call_permission_body, &["permission"]),
        ("login_body", &a.login_body, &["user_id", "password"]),
    ];
    for (name, value, allowed) in bodies {
        let key = format!("kandy.api.{name}");
        c.template(&key, value, allowed)?;
        // Sample values with the characters that break naive rendering.
        let samples: Vec<(&str, &str)> = allowed.iter().map(|p| (*p, "Ann \"Q\" \\ Öz")).collect();
        let body = template::render(value, &samples, template::json_string);
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&body) {
            return Err(c.fail(&key, format!("does not render to valid JSON ({e}): {body}")));
        }
    }
    let fields = [
        ("token_field", &a.token_field),
        ("users_field", &a.users_field),
        ("user_id_field", &a.user_id_field),
        ("number_field", &a.number_field),
        ("extension_field", &a.extension_field),
        ("first_name_field", &a.first_name_field),
        ("last_name_field", &a.last_name_field),
        ("call_permission_field", &a.call_permission_field),
        ("total_pages_field", &a.total_pages_field),
        ("error_field", &a.error_field),
    ];
    for (name, value) in fields {
        c.non_empty(&format!("kandy.api.{name}"), value)?;
    }
    c.range("kandy.api.page_size", a.page_size, 1, 500)?;
    Ok(())
}

fn names(c: &Checker<'_, '_>, n: &Names) -> Result<(), ConfigError> {
    for (key, value) in [
        ("names.occupied_first", &n.occupied_first),
        ("names.occupied_last", &n.occupied_last),
        ("names.vacant_first", &n.vacant_first),
        ("names.vacant_last", &n.vacant_last),
    ] {
        c.template(key, value, NAME_PLACEHOLDERS)?;
    }
    c.range("names.max_len", n.max_len, 1, 255)?;
    Ok(())
}

fn call_permissions(c: &Checker<'_, '_>, p: &CallPermissions) -> Result<(), ConfigError> {
    for (i, name) in p.allowed.iter().enumerate() {
        if let Err(rule) = event::check_permission_name(name) {
            return Err(c.fail(&format!("call_permissions.allowed[{i}]"), format!("`{name}` {rule}")));
        }
    }
    for (key, value) in [
        ("call_permissions.on_check_in", &p.on_check_in),
        ("call_permissions.on_check_out", &p.on_check_out),
    ] {
        if !value.is_empty() {
            c.permission_name(key, value, &p.allowed)?;
        }
    }
    for (code, name) in &p.codes {
        let key = format!("call_permissions.codes.{code}");
        if !(code.len() == 1 && code.as_bytes()[0].is_ascii_digit()) {
            return Err(c.fail(
                &key,
                format!("`{code}` is not a class-of-service code (\"0\" to \"9\")"),
            ));
        }
        c.permission_name(&key, name, &p.allowed)?;
    }
    Ok(())
}

fn rooms(c: &Checker<'_, '_>, r: &Rooms) -> Result<(), ConfigError> {
    for (i, room) in r.ignore.iter().enumerate() {
        if let Err(rule) = event::check_room(room) {
            return Err(c.fail(&format!("rooms.ignore[{i}]"), format!("`{room}` {rule}")));
        }
    }
    for (room, mailbox) in &r.mailboxes {
        let key = format!("rooms.mailboxes.{room}");
        if let Err(rule) = event::check_room(room) {
            return Err(c.fail(&key, format!("room `{room}` {rule}")));
        }
        if mailbox.is_empty() || mailbox.chars().count() > 128 || mailbox.chars().any(char::is_control) {
            return Err(c.fail(&key, "the mailbox must be 1 to 128 printable characters"));
        }
    }
    Ok(())
}

fn fias(c: &Checker<'_, '_>, f: RawFias) -> Result<Fias, ConfigError> {
    let address = f.address.trim().parse().map_err(|_| {
        c.fail(
            "fias.address",
            format!(
                "`{}` is not an address and port such as \"0.0.0.0:5010\" or \"192.0.2.10:5010\"",
                f.address
            ),
        )
    })?;
    match encoding_rs::Encoding::for_label(f.encoding.trim().as_bytes()) {
        Some(e) if e.is_ascii_compatible() => {}
        Some(_) => {
            return Err(c.fail(
                "fias.encoding",
                format!("`{}` cannot carry FIAS framing; use an ASCII-based character set such as \"utf-8\" or \"windows-1252\"", f.encoding),
            ));
        }
        None => {
            return Err(c.fail(
                "fias.encoding",
                format!(
                    "`{}` is not a character set name such as \"utf-8\", \"windows-1252\" or \"iso-8859-1\"",
                    f.encoding
                ),
            ));
        }
    }
    c.range("fias.link_alive_secs", f.link_alive_secs, 1, 3600)?;
    Ok(Fias {
        mode: f.mode,
        address,
        encoding: f.encoding.trim().to_string(),
        link_alive_secs: f.link_alive_secs,
        resync_on_connect: f.resync_on_connect,
    })
}
