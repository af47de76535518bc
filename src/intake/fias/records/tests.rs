use encoding_rs::UTF_8;
use serde_json::json;

use super::*;
use crate::intake::fias::frame;

fn rec(text: &str) -> Record {
    frame::parse(text.as_bytes(), UTF_8).unwrap()
}

fn ev(v: Value) -> Result<Event, Rejection> {
    Ok(event::from_value(&v).unwrap())
}

/// The events with the digest taken out of their ids (`fias:GI:101:7:DA:TI`), which the
/// tables spell without it; `a_record_sent_twice...` checks the digest.
fn undigested(events: Vec<Result<Event, Rejection>>) -> Vec<Result<Event, Rejection>> {
    events
        .into_iter()
        .map(|e| {
            e.map(|mut e| {
                e.id = e.id.map(|id| {
                    let mut parts: Vec<&str> = id.split(':').collect();
                    assert_eq!(parts[6].len(), 8, "{id}");
                    parts.remove(6);
                    parts.join(":")
                });
                e
            })
        })
        .collect()
}

fn events(m: Meaning) -> Vec<Result<Event, Rejection>> {
    match m {
        Meaning::Events(e) => e,
        other => panic!("not events: {other:?}"),
    }
}

type Events = Vec<Result<Event, Rejection>>;

/// (what, the record, the events it becomes).
#[test]
fn guest_records_become_the_events_of_the_spec() {
    let long = format!("GI|RN1|GN{}|", "x".repeat(80));
    let cases: Vec<(&str, &str, Events)> = vec![
        (
            "GI: a check-in with every guest field and CS",
            "GI|RN101|G#778812|GNSmith|GFJohn|GTMr|GLEN|GVG|CS2|DA260304|TI101500|",
            vec![ev(
                json!({"id": "fias:GI:101:778812:260304:101500", "type": "check_in", "room": "101",
                "guest": {"id": "778812", "last": "Smith", "first": "John", "title": "Mr", "language": "EN", "vip": "G"},
                "call_permission": "2"}),
            )],
        ),
        (
            "GI of a sharer: a guest of its own",
            "GI|RN101|G#778813|GSY|GNDoe|DA260304|TI101600|",
            vec![ev(
                json!({"id": "fias:GI:101:778813:260304:101600", "type": "check_in", "room": "101",
                "guest": {"id": "778813", "last": "Doe"}}),
            )],
        ),
        (
            "GI without a name: occupied all the same",
            "GI|RN101|G#9|",
            vec![ev(
                json!({"type": "check_in", "room": "101", "guest": {"id": "9", "last": ""}}),
            )],
        ),
        (
            "GO of one guest",
            "GO|RN101|G#778812|GSN|DA260305|TI090000|",
            vec![ev(
                json!({"id": "fias:GO:101:778812:260305:090000", "type": "check_out", "room": "101", "guest_id": "778812"}),
            )],
        ),
        (
            "GO without G#: the room",
            "GO|RN101|DA260305|TI090000|",
            vec![ev(
                json!({"id": "fias:GO:101::260305:090000", "type": "check_out", "room": "101"}),
            )],
        ),
        (
            "GC with RO: a room move",
            "GC|RN205|RO101|G#778812|GNSmith|GFJon|DA260304|TI120000|",
            vec![ev(
                json!({"id": "fias:GC:205:778812:260304:120000", "type": "room_move", "room": "205", "from": "101",
                "guest": {"id": "778812", "last": "Smith", "first": "Jon"}}),
            )],
        ),
        (
            "GC with RO and no name: every guest moves",
            "GC|RN205|RO101|CS1|DA260304|TI120000|",
            vec![ev(
                json!({"id": "fias:GC:205::260304:120000", "type": "room_move", "room": "205", "from": "101", "call_permission": "1"}),
            )],
        ),
        (
            "GC with RO equal to RN: a guest change",
            "GC|RN101|RO101|G#7|GNSmith|",
            vec![ev(
                json!({"type": "guest_change", "room": "101", "guest": {"id": "7", "last": "Smith"}}),
            )],
        ),
        (
            "GC without RO: a guest change",
            "GC|RN101|G#778812|GNSmith|GFJon|DA260304|TI110000|",
            vec![ev(
                json!({"id": "fias:GC:101:778812:260304:110000", "type": "guest_change", "room": "101",
                "guest": {"id": "778812", "last": "Smith", "first": "Jon"}}),
            )],
        ),
        (
            "GC with a name and CS: a guest change and a call permission",
            "GC|RN101|G#7|GNSmith|CS3|DA260304|TI110000|",
            vec![
                ev(
                    json!({"id": "fias:GC:101:7:260304:110000", "type": "guest_change", "room": "101", "guest": {"id": "7", "last": "Smith"}}),
                ),
                ev(
                    json!({"id": "fias:GC:101:7:260304:110000:CS", "type": "call_permission", "room": "101", "level": "3"}),
                ),
            ],
        ),
        (
            "RE with CS: a call permission",
            "RE|RN101|CS0|DA260304|TI130000|",
            vec![ev(
                json!({"id": "fias:RE:101::260304:130000", "type": "call_permission", "room": "101", "level": "0"}),
            )],
        ),
        (
            "a long name is cut to what events allow",
            &long,
            vec![ev(
                json!({"type": "check_in", "room": "1", "guest": {"last": "x".repeat(64)}}),
            )],
        ),
    ];
    for (what, text, want) in cases {
        assert_eq!(
            undigested(events(Translator::default().take(&rec(text)))),
            want,
            "{what}"
        );
    }
}

/// (what, the record, the field named, words of the rule).
#[test]
fn records_that_break_an_event_rule_are_rejected_naming_the_field() {
    let cases = [
        ("GI without a room", "GI|G#1|GNSmith|", "room", "required"),
        ("a room with a space", "GI|RN1 01|GNSmith|", "room", "only letters"),
        ("a sharer without G#", "GI|RN1|GSY|GNSmith|", "G#", "sharer"),
        ("GO without a room", "GO|G#1|", "room", "required"),
        (
            "a name with a control character",
            "GI|RN1|GNSm\u{7}ith|",
            "guest.last",
            "control",
        ),
    ];
    for (what, text, field, words) in cases {
        let got = events(Translator::default().take(&rec(text)));
        let [Err(r)] = got.as_slice() else {
            panic!("{what}: {got:?}")
        };
        assert_eq!(r.field, field, "{what}: {r}");
        assert!(r.rule.contains(words), "{what}: {r}");
    }
}

#[test]
fn link_records_and_records_of_no_interest() {
    let mut t = Translator::default();
    for (text, want) in [
        ("LS|DA260304|TI101500|", Meaning::Link(Link::Start)),
        ("LA|DA260304|TI101500|", Meaning::Link(Link::Alive)),
        ("LE|", Meaning::Link(Link::End)),
        ("LD|IFPB|V#1|", Meaning::Link(Link::Description)),
        ("LR|RIGI|FLRN|", Meaning::Link(Link::Description)),
    ] {
        assert_eq!(t.take(&rec(text)), want, "{text}");
    }
    for (text, words) in [
        ("XX|RN1|", "record type XX"),
        ("PS|RN1|", "record type PS"),
        ("RE|RN1|ML1|", "RE without CS"),
        ("GC|RN1|G#1|", "changes nothing"),
        ("DE|DA260304|TI101500|", "without a DS"),
    ] {
        match t.take(&rec(text)) {
            Meaning::Ignored(why) => assert!(why.contains(words), "{text}: {why}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn a_resync_is_one_sync_event_at_de_with_sharers_in_one_room() {
    let mut t = Translator::default();
    assert_eq!(t.take(&rec("DS|DA260304|TI020000|")), Meaning::Held);
    assert_eq!(t.take(&rec("GI|RN101|G#1|GNSmith|CS2|")), Meaning::Held);
    assert_eq!(t.take(&rec("GI|RN102|G#2|GNJones|")), Meaning::Held);
    assert_eq!(t.take(&rec("GI|RN101|G#3|GSY|GNDoe|")), Meaning::Held);
    // A bad GI is rejected on its own; the resync goes on without it.
    assert!(matches!(&events(t.take(&rec("GI|G#4|GNNoRoom|")))[..], [Err(r)] if r.field == "room"));
    // Live records during a resync are taken as they come.
    assert_eq!(events(t.take(&rec("RE|RN102|CS1|"))).len(), 1);
    assert!(t.in_resync());
    let sync = undigested(events(t.take(&rec("DE|DA260304|TI020100|"))));
    assert_eq!(
        sync,
        [ev(json!({"id": "fias:DE:::260304:020100", "type": "sync", "rooms": [
            {"room": "101", "guests": [{"id": "1", "last": "Smith"}, {"id": "3", "last": "Doe"}], "call_permission": "2"},
            {"room": "102", "guests": [{"id": "2", "last": "Jones"}]},
        ]}))]
    );
    assert!(!t.in_resync());
    // After the resync, a GI is a check-in again.
    assert!(matches!(&events(t.take(&rec("GI|RN9|GNX|")))[..], [Ok(e)] if e.type_name() == "check_in"));
}

#[test]
fn an_empty_resync_vacates_everything_and_a_lost_one_nothing() {
    let mut t = Translator::default();
    t.take(&rec("DS|"));
    assert_eq!(events(t.take(&rec("DE|"))), [ev(json!({"type": "sync", "rooms": []}))]);

    t.take(&rec("DS|"));
    t.take(&rec("GI|RN101|G#1|GNSmith|"));
    assert!(t.link_lost());
    assert!(!t.link_lost());
    assert!(matches!(t.take(&rec("DE|")), Meaning::Ignored(_)));
}

#[test]
fn a_record_sent_twice_has_the_same_id_and_another_time_another() {
    let a = events(Translator::default().take(&rec("GI|RN1|G#5|GNA|DA260304|TI101500|")));
    let b = events(Translator::default().take(&rec("GI|RN1|G#5|GNA|DA260304|TI101500|")));
    let c = events(Translator::default().take(&rec("GI|RN1|G#5|GNA|DA260304|TI101501|")));
    // The same second, another name: another record.
    let d = events(Translator::default().take(&rec("GI|RN1|G#5|GNB|DA260304|TI101500|")));
    let id = |v: &[Result<Event, Rejection>]| v[0].as_ref().unwrap().id.clone().unwrap();
    assert_eq!(id(&a), id(&b));
    assert_ne!(id(&a), id(&c));
    assert_ne!(id(&a), id(&d));
    assert!(id(&a).starts_with("fias:GI:1:5:260304:101500:"), "{}", id(&a));
    // Two resyncs in one second are two resyncs when they list different rooms.
    let resync = |gi: &str| {
        let mut t = Translator::default();
        t.take(&rec("DS|DA260304|TI020000|"));
        t.take(&rec(gi));
        id(&events(t.take(&rec("DE|DA260304|TI020000|"))))
    };
    assert_eq!(resync("GI|RN1|GNA|"), resync("GI|RN1|GNA|"));
    assert_ne!(resync("GI|RN1|GNA|"), resync("GI|RN2|GNA|"));
}
