//! The systemd units in `config/`: `systemd-analyze verify` accepts a copy of each whose
//! `ExecStart=` runs the built binary, and `systemd-analyze security --offline=true`
//! rates its exposure 2.0 or lower. Where systemd's tools are not installed the test
//! says so and checks nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::BIN;

const UNITS: [(&str, &str); 2] = [
    ("kandy-link.service", "kandy-link.service"),
    ("kandy-link@.service", "kandy-link@hotel.service"),
];

fn analyze(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_units_verify_and_rate_an_exposure_of_two_or_lower() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("systemd-analyze is not installed: the units were not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (source, copy) in UNITS {
        let path = format!("{}/config/{source}", env!("CARGO_MANIFEST_DIR"));
        let unit = std::fs::read_to_string(&path).unwrap();
        assert!(unit.contains("ExecStart=/usr/local/bin/kandy-link "), "{source}");
        std::fs::write(dir.path().join(copy), unit.replace("/usr/local/bin/kandy-link", BIN)).unwrap();

        let out = analyze(dir.path(), &["verify", copy]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && said.trim().is_empty(), "{source}: {said}");

        let out = analyze(dir.path(), &["security", "--offline=true", copy]);
        let report = String::from_utf8_lossy(&out.stdout);
        let exposure: f64 = report
            .lines()
            .find_map(|l| {
                l.split_once("Overall exposure level for ")?
                    .1
                    .split_once(": ")?
                    .1
                    .split(' ')
                    .next()
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{source}: no exposure level in {report}"));
        assert!(exposure <= 2.0, "{source}: exposure {exposure}\n{report}");
    }
}
