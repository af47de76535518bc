//! `kandy-link demo` on a machine with nothing configured.
#![allow(clippy::unwrap_used)]

mod common;

#[test]
fn the_demo_shows_what_kandy_received_and_exits_0() {
    let out = std::process::Command::new(common::BIN)
        .arg("demo")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    assert!(
        stdout.contains(
            "PUT /api/v1/groups/hotel-42/users/1001/name {\"firstName\":\"Jon\",\"lastName\":\"Smith\"} -> 200"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "PUT /api/v1/groups/hotel-42/users/1005%40hotel/call-permission {\"callPermission\":\"internal\"} -> 204"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("205              1005             vacant"), "{stdout}");
    assert!(stdout.contains("Demo passed."), "{stdout}");
    assert!(!stdout.contains("sim-password"), "the demo prints no secret");
}
