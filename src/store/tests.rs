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
fn a_connection_without_wal_and_full_sync_is_refused() {
    let path = Path::new("/x/s.db");
    durable(path, "wal", 2).unwrap();
    durable(path, "WAL", 2).unwrap();
    for (mode, sync) in [
        ("delete", 2),
        ("memory", 2),
        ("truncate", 2),
        ("wal", 1),
        ("wal", 0),
        ("wal", 3),
    ] {
        let e = durable(path, mode, sync).unwrap_err().to_string();
        assert!(e.contains("refusing to take events in"), "{e}");
        assert!(
            e.contains(&format!("journal_mode={mode} and synchronous={sync}")),
            "{e}"
        );
    }
}

#[test]
fn a_store_left_in_rollback_mode_or_with_normal_sync_is_brought_back_to_wal_and_full() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(Store::open(&path).unwrap());
    // Another tool switched the file out of WAL, and its own connection to NORMAL.
    let other = Connection::open(&path).unwrap();
    let mode: String = other.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete");
    other.execute_batch("PRAGMA synchronous=NORMAL").unwrap();
    drop(other);
    let store = Store::open(&path).unwrap();
    let mode: String = store.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    let sync: i64 = store.conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    assert_eq!((mode.as_str(), sync), ("wal", 2));
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
