//! `kandy-link check-config`: the shipped example is valid; a broken copy exits 2 and
//! says where and what.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{BIN, text};

fn check(path: &Path) -> std::process::Output {
    std::process::Command::new(BIN)
        .arg("check-config")
        .arg("--config")
        .arg(path)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap()
}

fn example() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kandy-link.toml")).unwrap()
}

#[test]
fn the_annotated_example_passes_and_prints_settings_without_secrets() {
    let out = check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kandy-link.toml"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("api_base_url = \"https://portal.example.net/api/v1\""),
        "{stdout}"
    );
    assert!(stdout.contains("max_in_flight = 4"), "{stdout}");
}

#[test]
fn a_broken_copy_exits_2_naming_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "misspelled key",
            "group_id = \"hotel-42\"",
            "gruop_id = \"hotel-42\"",
            "kandy.gruop_id",
            "unknown field",
        ),
        (
            "wrong type",
            "# timeout_secs = 30",
            "timeout_secs = \"30\"",
            "kandy.timeout_secs",
            "invalid type",
        ),
        (
            "out of range",
            "# max_in_flight = 4",
            "max_in_flight = 100",
            "kandy.max_in_flight",
            "between 1 and 64",
        ),
        (
            "out of range",
            "# keep_days = 30",
            "keep_days = 0",
            "queue.keep_days",
            "between 1 and 3650",
        ),
    ];
    for (what, from, to, key, words) in cases {
        let text_in = example();
        assert!(text_in.contains(from), "{from}");
        let changed = text_in.replacen(from, to, 1);
        let line = changed.lines().position(|l| l == to).unwrap() + 1;
        let path = dir.path().join("kandy-link.toml");
        std::fs::write(&path, changed).unwrap();
        let out = check(&path);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("line {line}, column")), "{what}: {stderr}");
        assert!(stderr.contains(&format!("`{key}`")), "{what}: {stderr}");
        assert!(stderr.contains(words), "{what}: {stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{what}: {stderr}");
    }
}

#[test]
fn a_missing_secret_file_is_named_without_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kandy-link.toml");
    std::fs::write(
        &path,
        example().replace("password_file = \"kandy-password\"", "password_file = \"./secrets/pw\""),
    )
    .unwrap();
    let out = check(&path);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`kandy.password_file`: cannot read"),
        "{}",
        text(&out)
    );

    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/pw"), "hunter2\n").unwrap();
    let out = check(&path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
}
