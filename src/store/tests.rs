use super::*;
use crate::config::CallPermissions;
use crate::event::parse;

fn rules(p: &CallPermissions) -> Rules<'_> {
    Rules {
        permissions: p,
        configured_rooms: &[],
    }
}

#[test]
fn every_connection_runs_in_wal_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let mode: String = store.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    let sync: i64 = store.conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    assert_eq!((mode.as_str(), sync), ("wal", 2));
    let version: i64 = store.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, migrate::VERSION);
    drop(store);
    // A second open migrates nothing and keeps the data.
    Store::open(&dir.path().join("s.db")).unwrap();
}

#[test]
fn events_and_room_state_commit_together_and_ids_are_taken_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    let p = CallPermissions::default();
    let raw = r#"{"id":"a","type":"check_in","room":"101","guest":{"last":"Smith"}}"#;
    let mut tx = store.intake().unwrap();
    assert!(matches!(
        tx.take(raw, parse(raw), "test", rules(&p)).unwrap(),
        Outcome::Accepted { .. }
    ));
    // Uncommitted work is not there.
    drop(tx);
    assert!(store.sync_rows(None).unwrap().is_empty());
    assert_eq!(store.counters().unwrap(), Counters::default());

    let mut tx = store.intake().unwrap();
    tx.take(raw, parse(raw), "test", rules(&p)).unwrap();
    tx.commit().unwrap();
    let rooms = store.sync_rows(None).unwrap();
    assert_eq!(rooms[0].state.guests[0].last, "Smith");
    assert_eq!(rooms[0].state.permission.as_deref(), Some("international"));

    let changed = r#"{"id":"a","type":"check_in","room":"101","guest":{"last":"Jones"}}"#;
    let mut tx = store.intake().unwrap();
    assert_eq!(
        tx.take(raw, parse(raw), "test", rules(&p)).unwrap(),
        Outcome::Duplicate {
            id: "a".into(),
            differs: false
        }
    );
    assert_eq!(
        tx.take(changed, parse(changed), "test", rules(&p)).unwrap(),
        Outcome::Duplicate {
            id: "a".into(),
            differs: true
        }
    );
    let bad = r#"{"type":"room_move","room":"2","from":"9"}"#;
    assert!(matches!(
        tx.take(bad, parse(bad), "test", rules(&p)).unwrap(),
        Outcome::Rejected(_)
    ));
    tx.commit().unwrap();
    assert_eq!(store.sync_rows(None).unwrap()[0].state.guests[0].last, "Smith");
    assert_eq!(
        store.counters().unwrap(),
        Counters {
            accepted: 1,
            duplicate: 2,
            rejected: 1
        }
    );
}
