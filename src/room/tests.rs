use super::*;
use crate::event::parse;

fn g(id: Option<&str>, last: &str) -> Guest {
    Guest {
        id: id.map(String::from),
        first: None,
        last: last.into(),
        title: None,
        language: None,
        vip: None,
    }
}

fn room(guests: Vec<Guest>, permission: Option<&str>) -> RoomState {
    RoomState {
        guests,
        permission: permission.map(String::from),
    }
}

/// Applies `events` in order from `start`, the way the store does.
fn run(
    start: &[(&str, RoomState)],
    events: &[&str],
    perms: &CallPermissions,
) -> Result<BTreeMap<String, RoomState>, Rejection> {
    let mut rooms: BTreeMap<String, RoomState> = start.iter().map(|(r, s)| (r.to_string(), s.clone())).collect();
    for e in events {
        let event = parse(e).expect(e);
        let applied = apply(&event, &rooms, Policy { permissions: perms })?;
        rooms.extend(applied.rooms);
    }
    Ok(rooms)
}

#[test]
fn the_spec_examples_end_vacant_and_internal() {
    let perms = CallPermissions::default();
    let rooms = run(&[], &crate::event::tests::EXAMPLES, &perms).unwrap();
    assert_eq!(rooms["101"], room(vec![], Some("internal")));
    assert_eq!(rooms["205"], room(vec![], Some("internal")));
}

#[test]
fn each_row_of_the_room_state_table() {
    let perms = CallPermissions::default();
    let smith = || g(Some("1"), "Smith");
    let jones = || g(Some("2"), "Jones");
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Vec<(&str, RoomState)>, Vec<&str>, Vec<(&str, RoomState)>)> = vec![
        (
            "check-in of a vacant room takes on_check_in",
            vec![],
            vec![r#"{"type":"check_in","room":"1","guest":{"id":"1","last":"Smith"}}"#],
            vec![("1", room(vec![smith()], Some("international")))],
        ),
        (
            "check-in with a permission takes it (a code maps to its name)",
            vec![],
            vec![r#"{"type":"check_in","room":"1","guest":{"id":"1","last":"Smith"},"call_permission":"1"}"#],
            vec![("1", room(vec![smith()], Some("local")))],
        ),
        (
            "a second guest id joins as a sharer, permission unchanged",
            vec![("1", room(vec![smith()], Some("national")))],
            vec![r#"{"type":"check_in","room":"1","guest":{"id":"2","last":"Jones"}}"#],
            vec![("1", room(vec![smith(), jones()], Some("national")))],
        ),
        (
            "the same guest id replaces that guest's data",
            vec![("1", room(vec![smith(), jones()], Some("national")))],
            vec![r#"{"type":"check_in","room":"1","guest":{"id":"1","last":"Smyth"}}"#],
            vec![("1", room(vec![g(Some("1"), "Smyth"), jones()], Some("national")))],
        ),
        (
            "a guest without id replaces everyone",
            vec![("1", room(vec![smith(), jones()], Some("national")))],
            vec![r#"{"type":"check_in","room":"1","guest":{"last":"Brown"}}"#],
            vec![("1", room(vec![g(None, "Brown")], Some("national")))],
        ),
        (
            "check-out of one sharer leaves the other",
            vec![("1", room(vec![smith(), jones()], Some("national")))],
            vec![r#"{"type":"check_out","room":"1","guest_id":"1"}"#],
            vec![("1", room(vec![jones()], Some("national")))],
        ),
        (
            "check-out of the last sharer vacates and takes on_check_out",
            vec![("1", room(vec![jones()], Some("national")))],
            vec![r#"{"type":"check_out","room":"1","guest_id":"2"}"#],
            vec![("1", room(vec![], Some("internal")))],
        ),
        (
            "check-out of an unknown guest id changes nothing",
            vec![("1", room(vec![smith()], Some("national")))],
            vec![r#"{"type":"check_out","room":"1","guest_id":"9"}"#],
            vec![("1", room(vec![smith()], Some("national")))],
        ),
        (
            "check-out without guest id empties the room",
            vec![("1", room(vec![smith(), jones()], Some("national")))],
            vec![r#"{"type":"check_out","room":"1"}"#],
            vec![("1", room(vec![], Some("internal")))],
        ),
        (
            "check-out of a room never seen creates it vacant",
            vec![],
            vec![r#"{"type":"check_out","room":"7"}"#],
            vec![("7", room(vec![], Some("internal")))],
        ),
        (
            "guest change replaces the named guest's data",
            vec![("1", room(vec![smith(), jones()], Some("national")))],
            vec![r#"{"type":"guest_change","room":"1","guest":{"id":"2","last":"Jonas"}}"#],
            vec![("1", room(vec![smith(), g(Some("2"), "Jonas")], Some("national")))],
        ),
        (
            "guest change without id changes the first guest",
            vec![("1", room(vec![smith(), jones()], None))],
            vec![r#"{"type":"guest_change","room":"1","guest":{"last":"Smyth"}}"#],
            vec![("1", room(vec![g(None, "Smyth"), jones()], None))],
        ),
        (
            "guest change on a vacant room changes nothing",
            vec![("1", room(vec![], Some("internal")))],
            vec![r#"{"type":"guest_change","room":"1","guest":{"id":"1","last":"Smith"}}"#],
            vec![("1", room(vec![], Some("internal")))],
        ),
        (
            "a move takes every guest and the old room's permission",
            vec![("1", room(vec![smith(), jones()], Some("national")))],
            vec![r#"{"type":"room_move","room":"2","from":"1"}"#],
            vec![
                ("1", room(vec![], Some("internal"))),
                ("2", room(vec![smith(), jones()], Some("national"))),
            ],
        ),
        (
            "a move of one named guest leaves the sharer",
            vec![("1", room(vec![smith(), jones()], Some("national")))],
            vec![
                r#"{"type":"room_move","room":"2","from":"1","guest":{"id":"2","last":"Jones"},"call_permission":"local"}"#,
            ],
            vec![
                ("1", room(vec![smith()], Some("national"))),
                ("2", room(vec![jones()], Some("local"))),
            ],
        ),
        (
            "a call permission applies to a vacant room too",
            vec![],
            vec![r#"{"type":"call_permission","room":"1","level":"3"}"#],
            vec![("1", room(vec![], Some("international")))],
        ),
        (
            "a sync sets listed rooms and vacates the others",
            vec![
                ("1", room(vec![smith()], Some("national"))),
                ("2", room(vec![jones()], Some("local"))),
            ],
            vec![
                r#"{"type":"sync","rooms":[{"room":"1","guests":[{"id":"3","last":"Gray"}]},{"room":"3","guests":[{"last":"New"}]}]}"#,
            ],
            vec![
                ("1", room(vec![g(Some("3"), "Gray")], Some("national"))),
                ("2", room(vec![], Some("internal"))),
                ("3", room(vec![g(None, "New")], Some("international"))),
            ],
        ),
    ];
    for (what, start, events, expect) in cases {
        let rooms = run(&start, &events, &perms).unwrap_or_else(|e| panic!("{what}: {e}"));
        for (r, s) in expect {
            assert_eq!(rooms.get(r), Some(&s), "{what}: room {r}");
        }
    }
}

#[test]
fn an_empty_on_check_in_or_out_means_no_change() {
    let perms = CallPermissions {
        on_check_in: String::new(),
        on_check_out: String::new(),
        ..CallPermissions::default()
    };
    let start = [("1", room(vec![], Some("local")))];
    let rooms = run(
        &start,
        &[r#"{"type":"check_in","room":"1","guest":{"last":"A"}}"#],
        &perms,
    )
    .unwrap();
    assert_eq!(rooms["1"].permission.as_deref(), Some("local"));
    let rooms = run(&start, &[r#"{"type":"check_out","room":"1"}"#], &perms).unwrap();
    assert_eq!(rooms["1"].permission.as_deref(), Some("local"));
}

#[test]
fn bad_levels_and_empty_moves_are_rejected() {
    let perms = CallPermissions {
        allowed: vec!["internal".into(), "local".into()],
        ..CallPermissions::default()
    };
    let cases = [
        (
            r#"{"type":"call_permission","room":"1","level":"7"}"#,
            "level",
            "no mapping",
        ),
        (
            r#"{"type":"call_permission","room":"1","level":"vip"}"#,
            "level",
            "not in call_permissions.allowed",
        ),
        (
            r#"{"type":"check_in","room":"1","guest":{"last":"A"},"call_permission":"3"}"#,
            "call_permission",
            "not in call_permissions.allowed",
        ),
        (
            r#"{"type":"room_move","room":"2","from":"1"}"#,
            "from",
            "no guest to move",
        ),
    ];
    for (e, field, rule) in cases {
        let r = run(&[], &[e], &perms).expect_err(e);
        assert_eq!(r.field, field, "{e}");
        assert!(r.rule.contains(rule), "{e}: {r}");
    }
}

#[test]
fn notes_are_given_for_what_a_technician_should_see() {
    let perms = CallPermissions::default();
    let rooms: BTreeMap<String, RoomState> = [("1".to_string(), room(vec![g(Some("1"), "Smith")], None))].into();
    let e = parse(r#"{"type":"check_in","room":"1","guest":{"last":"Brown"}}"#).unwrap();
    let applied = apply(&e, &rooms, Policy { permissions: &perms }).unwrap();
    assert!(applied.notes[0].contains("replaces guest 1"), "{:?}", applied.notes);
}
