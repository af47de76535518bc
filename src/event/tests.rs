use super::*;

/// The five examples of pms-events.md.
pub const EXAMPLES: [&str; 5] = [
    r#"{"id": "opera-778812", "type": "check_in", "room": "101", "guest": {"id": "778812", "first": "John", "last": "Smith", "title": "Mr"}}"#,
    r#"{"type": "guest_change", "room": "101", "guest": {"id": "778812", "first": "Jon", "last": "Smith"}}"#,
    r#"{"type": "call_permission", "room": "101", "level": "2"}"#,
    r#"{"type": "room_move", "from": "101", "room": "205"}"#,
    r#"{"type": "check_out", "room": "205"}"#,
];

#[test]
fn the_spec_examples_are_valid() {
    let types: Vec<&str> = EXAMPLES.iter().map(|e| parse(e).unwrap().type_name()).collect();
    assert_eq!(
        types,
        ["check_in", "guest_change", "call_permission", "room_move", "check_out"]
    );
    let first = parse(EXAMPLES[0]).unwrap();
    assert_eq!(first.id.as_deref(), Some("opera-778812"));
    assert_eq!(first.room(), Some("101"));
}

#[test]
fn canonical_text_ignores_spacing_and_key_order() {
    let a = parse(r#"{"type":"check_out","room":"1","guest_id":"g"}"#).unwrap();
    let b = parse(r#"{ "guest_id" : "g", "room": "1", "type": "check_out" }"#).unwrap();
    assert_eq!(a.canonical(), b.canonical());
    let back: Event = serde_json::from_str(&a.canonical()).unwrap();
    assert_eq!(back, a);
}

#[test]
fn a_sync_lists_rooms_and_guests() {
    let e = parse(r#"{"type":"sync","rooms":[{"room":"101","guests":[{"last":"A"},{"id":"2","last":"B"}],"call_permission":"3"}]}"#).unwrap();
    let Kind::Sync { rooms } = e.kind else {
        panic!("not a sync")
    };
    assert_eq!(rooms[0].guests.len(), 2);
    assert_eq!(rooms[0].call_permission.as_deref(), Some("3"));
}

#[test]
fn null_optional_fields_count_as_absent() {
    let e = parse(r#"{"type":"check_in","room":"1","guest":{"last":"A","first":null},"id":null}"#).unwrap();
    assert_eq!(e.id, None);
}

/// Every rule of "Bad input": (input, field, words the rule must contain).
#[test]
fn every_bad_input_rule_names_field_and_rule() {
    let long = "x".repeat(65);
    let long_id = "i".repeat(129);
    let cases: Vec<(String, &str, &str)> = vec![
        ("{not json".into(), "(event)", "not valid JSON"),
        ("[1,2]".into(), "(event)", "must be a JSON object"),
        ("\"check_in\"".into(), "(event)", "must be a JSON object"),
        (r#"{"room":"1"}"#.into(), "type", "is required"),
        (r#"{"type":7,"room":"1"}"#.into(), "type", "must be a string"),
        (r#"{"type":"checkin","room":"1"}"#.into(), "type", "not an event type"),
        (r#"{"type":"check_out"}"#.into(), "room", "is required"),
        (r#"{"type":"check_out","room":""}"#.into(), "room", "must not be empty"),
        (
            r#"{"type":"check_out","room":"12345678901234567"}"#.into(),
            "room",
            "at most 16",
        ),
        (
            r#"{"type":"check_out","room":"1 01"}"#.into(),
            "room",
            "only letters, digits",
        ),
        (r#"{"type":"check_out","room":101}"#.into(), "room", "must be a string"),
        (
            r#"{"type":"check_out","room":"1","guestid":"g"}"#.into(),
            "guestid",
            "not a field of check_out",
        ),
        (r#"{"type":"check_in","room":"1"}"#.into(), "guest", "is required"),
        (
            r#"{"type":"check_in","room":"1","guest":"Smith"}"#.into(),
            "guest",
            "must be an object",
        ),
        (
            r#"{"type":"check_in","room":"1","guest":{"first":"J"}}"#.into(),
            "guest.last",
            "is required",
        ),
        (
            format!(r#"{{"type":"check_in","room":"1","guest":{{"last":"{long}"}}}}"#),
            "guest.last",
            "longer than 64",
        ),
        (
            format!(r#"{{"type":"check_in","room":"1","guest":{{"last":"A","id":"{long}"}}}}"#),
            "guest.id",
            "longer than 64",
        ),
        (
            r#"{"type":"check_in","room":"1","guest":{"last":"A\u0007"}}"#.into(),
            "guest.last",
            "printable",
        ),
        (
            r#"{"type":"check_in","room":"1","guest":{"last":"A","nick":"B"}}"#.into(),
            "guest.nick",
            "not a field of a guest",
        ),
        (
            r#"{"type":"check_in","room":"1","guest":{"last":"A"},"call_permission":2}"#.into(),
            "call_permission",
            "must be a string",
        ),
        (r#"{"type":"guest_change","room":"1"}"#.into(), "guest", "is required"),
        (r#"{"type":"room_move","room":"1"}"#.into(), "from", "is required"),
        (
            r#"{"type":"room_move","room":"1","from":"1"}"#.into(),
            "from",
            "must differ",
        ),
        (
            r#"{"type":"call_permission","room":"1"}"#.into(),
            "level",
            "is required",
        ),
        (
            r#"{"type":"call_permission","room":"1","level":""}"#.into(),
            "level",
            "must not be empty",
        ),
        (r#"{"type":"sync"}"#.into(), "rooms", "is required"),
        (r#"{"type":"sync","rooms":{}}"#.into(), "rooms", "must be a list"),
        (
            r#"{"type":"sync","rooms":[{"room":"1"}]}"#.into(),
            "rooms[0].guests",
            "is required",
        ),
        (
            r#"{"type":"sync","rooms":[{"room":"1","guests":[]}]}"#.into(),
            "rooms[0].guests",
            "at least one guest",
        ),
        (
            r#"{"type":"sync","rooms":[{"room":"1","guests":[{"first":"A"}]}]}"#.into(),
            "rooms[0].guests[0].last",
            "is required",
        ),
        (
            r#"{"type":"sync","rooms":[{"room":"1","guests":[{"last":"A"}]},{"room":"1","guests":[{"last":"B"}]}]}"#
                .into(),
            "rooms[1].room",
            "listed twice",
        ),
        (
            format!(r#"{{"type":"check_out","room":"1","id":"{long_id}"}}"#),
            "id",
            "longer than 128",
        ),
        (
            r#"{"type":"check_out","room":"1","id":""}"#.into(),
            "id",
            "must not be empty",
        ),
        (
            r#"{"type":"check_out","room":"1","time":"yesterday"}"#.into(),
            "time",
            "RFC 3339",
        ),
    ];
    for (input, field, rule) in cases {
        let r = parse(&input).expect_err(&input);
        assert_eq!(r.field, field, "{input}: {r}");
        assert!(r.rule.contains(rule), "{input}: expected rule with {rule:?}, got {r}");
    }
}

#[test]
fn a_rejection_reads_as_a_sentence() {
    let r = parse(r#"{"type":"check_in","room":"1","guest":{}}"#).unwrap_err();
    assert_eq!(r.to_string(), "field `guest.last`: is required");
    assert_eq!(parse("7").unwrap_err().to_string(), "must be a JSON object");
}
