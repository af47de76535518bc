use std::path::Path;

use super::*;

const MINIMAL: &str = r#"
[kandy]
api_base_url = "https://portal.example.net/api/v1/"
user_id = "duvoice"
group_id = "hotel-42"
password = "pw"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/kandy-link/kandy-link.toml"), text)
}

#[test]
fn every_default_is_as_config_md() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.kandy.api_base_url, "https://portal.example.net/api/v1");
    assert_eq!(c.kandy.hmac_mode, HmacMode::Sign);
    assert!(!c.kandy.use_nonce && !c.kandy.allow_insecure_http && !c.kandy.dry_run);
    assert_eq!((c.kandy.timeout_secs, c.kandy.max_in_flight), (30, 4));
    assert_eq!(c.kandy.api, Api::default());
    assert_eq!(c.kandy.api.page_size, 200);
    assert_eq!(
        c.scheduling,
        Scheduling {
            retries: 3,
            interval_secs: 60,
            refresh_cache_mins: 60,
            repair_drift: true
        }
    );
    assert_eq!(c.logging.dir, Path::new("/var/log/kandy-link"));
    assert_eq!(
        (c.logging.prefix.as_str(), c.logging.rotation, c.logging.max_files),
        ("Kandy", Rotation::Daily, 14)
    );
    assert_eq!((c.logging.level, c.logging.enable_debug), (Level::Info, false));
    assert_eq!(c.queue.state_dir, Path::new("/var/lib/kandy-link"));
    assert_eq!(c.queue.spool_dir, Path::new("/var/spool/kandy-link"));
    assert_eq!((c.queue.max_file_bytes, c.queue.keep_days), (1_048_576, 30));
    assert_eq!(c.names.vacant_first, "Room");
    assert_eq!(c.names.max_len, 30);
    assert_eq!(c.call_permissions.on_check_in, "international");
    assert_eq!(c.call_permissions.on_check_out, "internal");
    assert_eq!(c.call_permissions.codes["2"], "national");
    assert!(c.rooms.ignore.is_empty() && c.rooms.mailboxes.is_empty());
}

#[test]
fn relative_paths_start_at_the_files_folder() {
    let text =
        format!("{MINIMAL}\n[queue]\nstate_dir = \"state\"\nspool_dir = \"/srv/spool\"\n[logging]\ndir = \"../log\"\n");
    let c = parse(&text).unwrap();
    assert_eq!(c.queue.state_dir, Path::new("/etc/kandy-link/state"));
    assert_eq!(c.queue.spool_dir, Path::new("/srv/spool"));
    assert_eq!(c.logging.dir, Path::new("/etc/kandy-link/../log"));
}

#[test]
fn secrets_are_masked_in_the_effective_settings() {
    let text = MINIMAL.replace(
        "password = \"pw\"",
        "password = \"hunter2\"\nhmac = \"k3y\"\nuser_token_file = \"token\"",
    );
    let c = parse(&text).unwrap();
    let shown = c.effective();
    assert!(!shown.contains("hunter2") && !shown.contains("k3y"), "{shown}");
    assert!(shown.contains(MASK));
}

/// (what is wrong, the text, the line, the key, words of the message).
#[test]
fn errors_name_line_column_and_key() {
    let cases: Vec<(&str, String, usize, &str, &str)> = vec![
        (
            "misspelled key",
            MINIMAL.replace("group_id", "gruop_id"),
            5,
            "kandy.gruop_id",
            "unknown field",
        ),
        (
            "misspelled section",
            format!("{MINIMAL}[schedulng]\nretries = 1\n"),
            7,
            "schedulng",
            "unknown field",
        ),
        (
            "wrong type",
            format!("{MINIMAL}timeout_secs = \"30\"\n"),
            7,
            "kandy.timeout_secs",
            "invalid type",
        ),
        (
            "out of range",
            format!("{MINIMAL}max_in_flight = 65\n"),
            7,
            "kandy.max_in_flight",
            "between 1 and 64",
        ),
        (
            "missing key",
            MINIMAL.replace("user_id = \"duvoice\"\n", ""),
            2,
            "kandy.user_id",
            "missing field",
        ),
        (
            "http without the switch",
            MINIMAL.replace("https", "http"),
            3,
            "kandy.api_base_url",
            "https://",
        ),
        (
            "both a secret and its file",
            format!("{MINIMAL}password_file = \"pw\"\n"),
            7,
            "kandy.password_file",
            "not both",
        ),
        (
            "bad enum",
            format!("{MINIMAL}[logging]\nrotation = \"weekly\"\n"),
            8,
            "logging.rotation",
            "unknown variant",
        ),
        (
            "retries too high",
            format!("{MINIMAL}[scheduling]\nretries = 101\n"),
            8,
            "scheduling.retries",
            "between 0 and 100",
        ),
        (
            "unknown name placeholder",
            format!("{MINIMAL}[names]\noccupied_first = \"{{frist}}\"\n"),
            8,
            "names.occupied_first",
            "{frist}",
        ),
        (
            "body that is not JSON",
            format!("{MINIMAL}[kandy.api]\nname_body = '{{\"firstName\":{{first}}'\n"),
            8,
            "kandy.api.name_body",
            "valid JSON",
        ),
        (
            "code that is not a digit",
            format!("{MINIMAL}[call_permissions.codes]\n\"10\" = \"x\"\n"),
            8,
            "call_permissions.codes.10",
            "class-of-service code",
        ),
        (
            "permission outside allowed",
            format!("{MINIMAL}[call_permissions]\nallowed = [\"internal\"]\n"),
            7,
            "call_permissions.on_check_in",
            "not in call_permissions.allowed",
        ),
        (
            "bad room to ignore",
            format!("{MINIMAL}[rooms]\nignore = [\"lobby phone\"]\n"),
            8,
            "rooms.ignore[0]",
            "only letters",
        ),
        (
            "no token nor password",
            MINIMAL.replace("password = \"pw\"\n", ""),
            2,
            "kandy.user_token",
            "set kandy.user_token or kandy.password",
        ),
    ];
    for (what, text, line, key, words) in cases {
        let e = parse(&text).expect_err(what);
        assert_eq!(e.key.as_deref(), Some(key), "{what}: {e}");
        assert!(e.message.contains(words), "{what}: {e}");
        assert_eq!(e.line, Some(line), "{what}: {e}");
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("/etc/kandy-link/kandy-link.toml: line {line}, column ")),
            "{what}: {shown}"
        );
    }
}

#[test]
fn the_annotated_example_file_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kandy-link.toml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.kandy.api, Api::default());
}

#[test]
fn fias_is_off_by_default_and_checked_when_set() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.fias.mode, FiasMode::Off);
    assert_eq!(c.fias.address.to_string(), "0.0.0.0:5010");
    assert_eq!(c.fias.encoding(), encoding_rs::UTF_8);
    assert_eq!((c.fias.link_alive_secs, c.fias.resync_on_connect), (60, true));

    let on = parse(&format!(
        "{MINIMAL}[fias]\nmode = \"client\"\naddress = \"192.0.2.10:5010\"\nencoding = \"iso-8859-1\"\n"
    ))
    .unwrap();
    assert_eq!(on.fias.mode, FiasMode::Client);
    assert_eq!(on.fias.encoding(), encoding_rs::WINDOWS_1252);

    // (the text after MINIMAL, the line, the key, words of the message).
    let cases = [
        ("[fias]\nmode = \"both\"\n", 8, "fias.mode", "unknown variant"),
        (
            "[fias]\naddress = \"pms.hotel:5010\"\n",
            8,
            "fias.address",
            "not an address",
        ),
        (
            "[fias]\nencoding = \"klingon\"\n",
            8,
            "fias.encoding",
            "not a character set",
        ),
        (
            "[fias]\nencoding = \"utf-16le\"\n",
            8,
            "fias.encoding",
            "cannot carry FIAS framing",
        ),
        (
            "[fias]\nlink_alive_secs = 0\n",
            8,
            "fias.link_alive_secs",
            "between 1 and 3600",
        ),
        ("[fias]\nlink_alive = 60\n", 8, "fias.link_alive", "unknown field"),
    ];
    for (extra, line, key, words) in cases {
        let e = parse(&format!("{MINIMAL}{extra}")).expect_err(extra);
        assert_eq!(e.key.as_deref(), Some(key), "{extra}: {e}");
        assert_eq!(e.line, Some(line), "{extra}: {e}");
        assert!(e.message.contains(words), "{extra}: {e}");
    }
}
