//! The FIAS link, driving the real `kandy-link run` between the simulated PMS
//! (`kandy_link::intake::fias::sim`) and `kandy-sim`: the handshake both ways, every
//! record type ending in the right Kandy state, resyncs, cut connections and garbage.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Site;
use kandy_link::intake::fias::sim::{Pms, PmsLink};
use kandy_link::sim::{self, Options, Sim};
use serde_json::Value;

/// Generous: a loaded two-core machine builds and runs other tests meanwhile.
const LIMIT: Duration = Duration::from_secs(30);

async fn kandy() -> Sim {
    sim::start(Options {
        users: 6,
        ..Options::default()
    })
    .await
    .unwrap()
}

/// A site whose link talks FIAS as `mode` at `address`, resending to Kandy every second.
fn site(sim: &Sim, mode: &str, address: SocketAddr, encoding: &str) -> Site {
    site_with(sim, mode, address, &format!("encoding = \"{encoding}\"\n"))
}

fn site_with(sim: &Sim, mode: &str, address: SocketAddr, fias: &str) -> Site {
    Site::for_sim(
        sim,
        &format!("[scheduling]\ninterval_secs = 1\n\n[fias]\nmode = \"{mode}\"\naddress = \"{address}\"\n{fias}"),
    )
}

/// A port nobody listens on, for a link in server mode.
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Polls `cond` without holding up the runtime the simulators run on.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIMIT, "not within {LIMIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The PMS connects to a link in server mode (which may still be starting) and waits
/// for the link to come up.
async fn connect(pms: &Pms, addr: SocketAddr, site: &Site) -> PmsLink {
    let start = tokio::time::Instant::now();
    let link = loop {
        match pms.connect(addr).await {
            Ok(l) => break l,
            Err(e) => {
                assert!(
                    start.elapsed() < LIMIT,
                    "cannot connect to the link: {e}\n{}",
                    site.daemon_log()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let up = link.wait(LIMIT, PmsLink::up).await;
    assert!(
        up,
        "the link did not come up: {:?}\n{}",
        link.received(),
        site.daemon_log()
    );
    link
}

/// What the Kandy user `id` shows: first name, last name, call permission.
fn shows(sim: &Sim, id: &str) -> (String, String, String) {
    let u = sim.user(id).unwrap_or_else(|| panic!("no user {id}"));
    (
        u.first_name.unwrap_or_default(),
        u.last_name.unwrap_or_default(),
        u.call_permission.unwrap_or_default(),
    )
}

async fn shown(sim: &Sim, site: &Site, id: &str, want: (&str, &str, &str)) {
    let want = (want.0.to_string(), want.1.to_string(), want.2.to_string());
    let start = tokio::time::Instant::now();
    while shows(sim, id) != want {
        assert!(
            start.elapsed() < LIMIT,
            "user {id} shows {:?}, not {want:?}\n{}",
            shows(sim, id),
            site.daemon_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const VACANT: (&str, &str, &str) = ("Room", "", "internal");

/// The link's records as the PMS received them, without the DA and TI fields.
fn link_records(link: &PmsLink) -> Vec<String> {
    link.received()
        .iter()
        .map(|r| {
            r.split('|')
                .filter(|f| !f.starts_with("DA") && !f.starts_with("TI"))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// What a link sends at its start, once the LS exchange is done.
const DESCRIPTION: &[&str] = &[
    "LD|V#0.1.0|IFPB|",
    "LR|RIGI|FLRNG#GSGNGFGTGLGVCSDATI|",
    "LR|RIGO|FLRNG#GSDATI|",
    "LR|RIGC|FLRNG#GSGNGFGTGLGVCSRODATI|",
    "LR|RIRE|FLRNCSDATI|",
    "LR|RIDS|FLDATI|",
    "LR|RIDE|FLDATI|",
    "LA|",
];

fn guests_of(site: &Site, room: &str) -> Vec<Value> {
    let guests: String = site
        .store()
        .query_row("SELECT guests FROM rooms WHERE room = ?1", [room], |r| r.get(0))
        .unwrap();
    serde_json::from_str::<Vec<Value>>(&guests).unwrap()
}

fn duplicates(site: &Site) -> u64 {
    site.status()["events"]["duplicate"].as_u64().unwrap_or_default()
}

fn events_with_id_like(site: &Site, pattern: &str) -> i64 {
    site.store()
        .query_row("SELECT count(*) FROM events WHERE id LIKE ?1", [pattern], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_mode_handshake_then_every_record_type_ends_in_the_right_kandy_state() {
    let sim = kandy().await;
    let addr = free_port();
    let site = site(&sim, "server", addr, "utf-8");
    let _daemon = site.daemon();
    let pms = Pms::new(encoding_rs::UTF_8);
    let link = connect(&pms, addr, &site).await;
    // The PMS sent LS; the link answered LS, described itself, and asked for a resync.
    until("the resync request", || link.count("DR|") == 1).await;
    let mut want = vec!["LS|"];
    want.extend(DESCRIPTION);
    want.push("DR|");
    assert_eq!(link_records(&link), want);

    let t = |s: &str| format!("DA260304|TI1000{s}|");
    link.send(&format!("GI|RN1001|G#1|GNSmith|GFJohn|GTMr|CS2|{}", t("01")))
        .await
        .unwrap();
    shown(&sim, &site, "1001", ("John", "Smith", "national")).await;
    // A sharer joins; the first guest's name stays.
    link.send(&format!("GI|RN1001|G#2|GSY|GNDoe|GFJane|{}", t("02")))
        .await
        .unwrap();
    until("the sharer in the store", || guests_of(&site, "1001").len() == 2).await;
    // The first guest leaves; the sharer stays and now shows.
    link.send(&format!("GO|RN1001|G#1|GSN|{}", t("03"))).await.unwrap();
    shown(&sim, &site, "1001", ("Jane", "Doe", "national")).await;
    // GC with RO: the sharer moves to 1004, taking the permission along.
    link.send(&format!("GC|RN1004|RO1001|G#2|GNDoe|GFJane|{}", t("04")))
        .await
        .unwrap();
    shown(&sim, &site, "1004", ("Jane", "Doe", "national")).await;
    shown(&sim, &site, "1001", VACANT).await;
    // GC without RO: a guest change.
    link.send(&format!("GC|RN1004|G#2|GNDoe|GFJanet|{}", t("05")))
        .await
        .unwrap();
    shown(&sim, &site, "1004", ("Janet", "Doe", "national")).await;
    // RE with CS: a call permission.
    link.send(&format!("RE|RN1004|CS1|{}", t("06"))).await.unwrap();
    shown(&sim, &site, "1004", ("Janet", "Doe", "local")).await;
    // GO of the last guest: vacant.
    link.send(&format!("GO|RN1004|G#2|{}", t("07"))).await.unwrap();
    shown(&sim, &site, "1004", VACANT).await;

    assert!(!link.closed(), "{}", site.daemon_log());
    assert_eq!(link.count("LS|"), 1, "the link never started again");
    // Seven records and the (empty) resync asked for at the start.
    assert_eq!(events_with_id_like(&site, "fias:%"), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mode_handshake_in_windows_1252_and_resyncs_vacate_rooms_no_longer_listed() {
    let sim = kandy().await;
    let pms = Pms::new(encoding_rs::WINDOWS_1252);
    let listener = pms.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let site = site(&sim, "client", listener.addr().unwrap(), "windows-1252");
    let _daemon = site.daemon();
    let link = tokio::time::timeout(LIMIT, listener.accept()).await.unwrap().unwrap();
    assert!(link.wait(LIMIT, PmsLink::up).await, "{}", site.daemon_log());
    until("the resync request", || link.count("DR|") == 1).await;
    // The link spoke first; the PMS answered its LS.
    let mut want = vec!["LS|"];
    want.extend(DESCRIPTION);
    want.push("DR|");
    assert_eq!(link_records(&link), want);

    link.send("GI|RN1001|G#1|GNMüller|GFJürgen|DA260304|TI100001|")
        .await
        .unwrap();
    link.send("GI|RN1002|G#2|GNSmith|GFJohn|CS1|DA260304|TI100002|")
        .await
        .unwrap();
    shown(&sim, &site, "1001", ("Jürgen", "Müller", "international")).await;
    shown(&sim, &site, "1002@hotel", ("John", "Smith", "local")).await;

    // The PMS loses 1002 without a GO; its own resync (DS ... DE) vacates it.
    pms.forget("1002");
    link.resync().await.unwrap();
    shown(&sim, &site, "1002@hotel", VACANT).await;
    shown(&sim, &site, "1001", ("Jürgen", "Müller", "international")).await;

    // The connection drops; the link connects again (back-off) and asks for a resync,
    // which vacates 1001, gone from the PMS meanwhile.
    pms.forget("1001");
    link.close().await;
    let again = tokio::time::timeout(LIMIT, listener.accept()).await.unwrap().unwrap();
    assert!(again.wait(LIMIT, PmsLink::up).await, "{}", site.daemon_log());
    until("the resync request", || again.count("DR|") == 1).await;
    shown(&sim, &site, "1001", VACANT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_in_the_middle_of_a_record_loses_nothing_and_duplicates_nothing() {
    let sim = kandy().await;
    let addr = free_port();
    let site = site(&sim, "server", addr, "utf-8");
    let _daemon = site.daemon();
    let pms = Pms::new(encoding_rs::UTF_8);
    let gi_1001 = "GI|RN1001|G#1|GNSmith|GFJohn|DA260304|TI100001|";
    let gi_1002 = "GI|RN1002|G#2|GNJones|GFAmy|DA260304|TI100002|";
    let gi_1003 = "GI|RN1003|G#3|GNBrown|GFBob|DA260304|TI100003|";
    let go_1003 = "GO|RN1003|G#3|DA260304|TI110000|";

    // First connection: two check-ins, then the cable is pulled halfway through a third.
    let link = connect(&pms, addr, &site).await;
    until("the first resync asked", || link.count("DR|") == 1).await;
    link.send(gi_1001).await.unwrap();
    link.send(gi_1003).await.unwrap();
    shown(&sim, &site, "usr-00003", ("Bob", "Brown", "international")).await;
    link.cut_in(gi_1002).await.unwrap();

    // Second connection: the resync brings the cut check-in in; the PMS then resends
    // what it was unsure of, which is taken once.
    let link = connect(&pms, addr, &site).await;
    shown(&sim, &site, "1002@hotel", ("Amy", "Jones", "international")).await;
    link.send(gi_1001).await.unwrap();
    link.send(gi_1002).await.unwrap();
    until("the resends taken", || {
        events_with_id_like(&site, "fias:GI:1002:%") == 1 && duplicates(&site) == 1
    })
    .await;
    // Now a check-out is cut.
    link.cut_in(go_1003).await.unwrap();

    // Third connection: the resync no longer lists 1003; the resent GO changes nothing.
    let link = connect(&pms, addr, &site).await;
    shown(&sim, &site, "usr-00003", VACANT).await;
    link.send(go_1003).await.unwrap();
    link.send(gi_1001).await.unwrap();
    until("the resends taken", || {
        events_with_id_like(&site, "fias:GO:1003:%") == 1 && duplicates(&site) == 2
    })
    .await;
    let status = site.status();

    shown(&sim, &site, "1001", ("John", "Smith", "international")).await;
    shown(&sim, &site, "1002@hotel", ("Amy", "Jones", "international")).await;
    for (room, pattern) in [("1001", "fias:GI:1001:%"), ("1002", "fias:GI:1002:%")] {
        assert_eq!(events_with_id_like(&site, pattern), 1, "{room}: {status}");
        assert_eq!(guests_of(&site, room).len(), 1, "{room}");
    }
    // Three connections, three resyncs, nothing rejected.
    assert_eq!(events_with_id_like(&site, "fias:DE:%"), 3);
    assert_eq!(site.status()["events"]["rejected"], 0, "{}", site.daemon_log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_malformed_and_unknown_records_keep_the_link_up() {
    let sim = kandy().await;
    let addr = free_port();
    let site = site(&sim, "server", addr, "utf-8");
    let _daemon = site.daemon();
    let pms = Pms::new(encoding_rs::UTF_8);
    let link = connect(&pms, addr, &site).await;
    until("the resync asked", || link.count("DR|") == 1).await;

    link.send_raw(b"\xff\xfe\x00garbage\r\n\x03\x1b[2J").await.unwrap();
    link.send("XX|RN1001|ZZ1|").await.unwrap();
    link.send("PS|RN1001|PTC|TA100|").await.unwrap();
    link.send_raw(b"\x02G|not a record\x03").await.unwrap();
    link.send_raw(b"\x02GI|RN1001|GNM\xfcller|\x03").await.unwrap();
    link.send("GI|RN10 01|GNSpace|").await.unwrap();
    link.send_raw(b"\x02GI|RN1001|GNHalf").await.unwrap();
    link.send("GI|RN1001|G#9|GNAfter|GFStill|DA260304|TI120000|")
        .await
        .unwrap();
    shown(&sim, &site, "1001", ("Still", "After", "international")).await;

    assert!(!link.closed(), "{}", site.daemon_log());
    assert_eq!(link.count("LS|"), 1, "the link never started again");
    // Each is logged with its raw text, control characters escaped.
    let log = site.daemon_log();
    for words in [
        "Ignored bytes outside STX ... ETX",
        r"garbage\x0D\x0A\x03\x1B[2J",
        "Malformed FIAS record skipped: `G` is not a two-letter record type",
        "it does not decode as UTF-8",
        "Ignored a record cut short by the next STX",
        r"raw=\x02GI|RN1001|GNHalf",
        "FIAS record skipped: field `room`",
    ] {
        assert!(log.contains(words), "{words}: {log}");
    }
    // Three records broke a rule (two malformed, one bad room): counted as rejected.
    assert_eq!(site.status()["events"]["rejected"], 3, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_alives_flow_and_a_silent_pms_is_dropped_then_taken_back() {
    let sim = kandy().await;
    let addr = free_port();
    let site = site_with(&sim, "server", addr, "link_alive_secs = 1\n");
    let _daemon = site.daemon();
    let pms = Pms::new(encoding_rs::UTF_8);
    let link = connect(&pms, addr, &site).await;
    // The link sends LA every second, beyond the one of the handshake.
    until("link alives", || link.count("LA|") >= 3).await;
    assert!(!link.closed());
    // The PMS hangs: after two seconds of silence the link drops the connection.
    link.mute();
    until("the silent connection dropped", || link.closed()).await;
    assert!(
        site.daemon_log().contains("nothing from the PMS for 2s"),
        "{}",
        site.daemon_log()
    );
    // The PMS comes back: a new link start, and a new resync.
    let again = connect(&pms, addr, &site).await;
    until("the resync asked again", || again.count("DR|") == 1).await;
}
