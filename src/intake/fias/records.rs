//! FIAS records to PMS events (fias.md, "Records to events"). Pure: a `Translator` takes
//! records one by one and says what each means; the only state it keeps is a database
//! resync in progress, which becomes one `sync` event at `DE`.
//!
//! Events are built as JSON and go through `event::from_value`, so a FIAS event obeys
//! exactly the rules of an event from the spool.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::frame::Record;
use crate::event::{self, Event, MAX_TEXT, Rejection};
use crate::intake::spool::hex;

/// The link records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Start,
    Alive,
    End,
    /// LD or LR from the PMS: it describes itself; nothing to do.
    Description,
}

/// What one record means to the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    Link(Link),
    /// Events to commit, in order, before the next record is read. An `Err` is a record
    /// that breaks an event rule: it is logged and counted as rejected.
    Events(Vec<Result<Event, Rejection>>),
    /// Kept until the resync ends (DS, and the GI records of a resync).
    Held,
    /// Nothing for this link; says why (an unknown record type, RE without CS).
    Ignored(String),
}

/// A database resync in progress: the occupied rooms in the order the PMS listed them.
#[derive(Debug, Default)]
struct Resync {
    rooms: Vec<(String, Vec<Value>, Option<String>)>,
}

/// Turns records into events; one per connection (a resync does not survive a drop).
#[derive(Debug, Default)]
pub struct Translator {
    resync: Option<Resync>,
}

impl Translator {
    pub fn take(&mut self, r: &Record) -> Meaning {
        match r.kind.as_str() {
            "LS" => Meaning::Link(Link::Start),
            "LA" => Meaning::Link(Link::Alive),
            "LE" => Meaning::Link(Link::End),
            "LD" | "LR" => Meaning::Link(Link::Description),
            "GI" => match &mut self.resync {
                Some(resync) => match resync_guest(r) {
                    Ok((room, guest, cs)) => {
                        resync.add(room, guest, cs);
                        Meaning::Held
                    }
                    Err(e) => Meaning::Events(vec![Err(e)]),
                },
                None => one(check_in(r)),
            },
            "GO" => one(build(r, "check_out", |o| {
                o.insert("room".into(), room(r));
                put(o, "guest_id", r.get("G#"));
            })),
            "GC" => guest_change(r),
            "RE" => match r.get("CS") {
                Some(cs) => one(build(r, "call_permission", |o| {
                    o.insert("room".into(), room(r));
                    o.insert("level".into(), cs.into());
                })),
                None => Meaning::Ignored("an RE without CS changes nothing a phone shows".into()),
            },
            "DS" => {
                // A second DS starts the resync again: the PMS is listing from the top.
                self.resync = Some(Resync::default());
                Meaning::Held
            }
            "DE" => match self.resync.take() {
                Some(resync) => one(resync.finish(r)),
                // Never vacate the hotel on a DE whose DS was not seen.
                None => Meaning::Ignored("a DE without a DS before it: no resync to end".into()),
            },
            other => Meaning::Ignored(format!("record type {other} is not one this link asks for")),
        }
    }

    /// The connection dropped: a resync not ended by DE is discarded. True when one was.
    pub fn link_lost(&mut self) -> bool {
        self.resync.take().is_some()
    }

    /// True while a resync is being received.
    pub fn in_resync(&self) -> bool {
        self.resync.is_some()
    }
}

impl Resync {
    fn add(&mut self, room: String, guest: Value, cs: Option<String>) {
        match self.rooms.iter_mut().find(|(r, _, _)| *r == room) {
            Some((_, guests, permission)) => {
                // A sharer: same room, a guest of its own (the same G# again replaces).
                let id = guest.get("id").cloned();
                match guests.iter_mut().find(|g| id.is_some() && g.get("id") == id.as_ref()) {
                    Some(same) => *same = guest,
                    None => guests.push(guest),
                }
                if cs.is_some() {
                    *permission = cs;
                }
            }
            None => self.rooms.push((room, vec![guest], cs)),
        }
    }

    fn finish(self, de: &Record) -> Result<Event, Rejection> {
        let rooms: Vec<Value> = self
            .rooms
            .into_iter()
            .map(|(room, guests, cs)| {
                let mut o = Map::new();
                o.insert("room".into(), room.into());
                o.insert("guests".into(), guests.into());
                put(&mut o, "call_permission", cs.as_deref());
                Value::Object(o)
            })
            .collect();
        // A resync is told from a resend of itself by what it lists.
        let rooms = Value::from(rooms);
        build_with_id("sync", id(de, &rooms.to_string(), ""), |o| {
            o.insert("rooms".into(), rooms);
        })
    }
}

fn one(e: Result<Event, Rejection>) -> Meaning {
    Meaning::Events(vec![e])
}

/// The event id of a record: `fias:TYPE:RN:G#:DA:TI:DIGEST`, so that a record sent
/// twice is taken once. DIGEST (8 hex digits of SHA-256 of `content`) keeps apart two
/// different records of one room and guest within the same second (a name change, then a
/// class of service), which DA and TI alone would make one. Without DA and TI there is
/// nothing to tell a resend from a new record with the same content (the same guest
/// checking in again another day), so such a record gets no id and is applied each time.
fn id(r: &Record, content: &str, suffix: &str) -> Option<String> {
    if r.get("DA").is_none() && r.get("TI").is_none() {
        return None;
    }
    let f = |k| r.get(k).unwrap_or_default();
    let digest = hex(&Sha256::digest(content.as_bytes()));
    Some(format!(
        "fias:{}:{}:{}:{}:{}:{}{suffix}",
        r.kind,
        f("RN"),
        f("G#"),
        f("DA"),
        f("TI"),
        &digest[..8]
    ))
}

/// A record's content as sent: its type and fields in order.
fn content(r: &Record) -> String {
    let mut out = r.kind.clone();
    for (k, v) in &r.fields {
        out.push('|');
        out.push_str(k);
        out.push_str(v);
    }
    out
}

fn room(r: &Record) -> Value {
    r.get("RN").map_or(Value::Null, Value::from)
}

fn put(o: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        o.insert(key.into(), v.into());
    }
}

/// An event of `kind` with the record's id, validated as any event is.
fn build(r: &Record, kind: &str, fill: impl FnOnce(&mut Map<String, Value>)) -> Result<Event, Rejection> {
    build_with_id(kind, id(r, &content(r), ""), fill)
}

fn build_with_id(
    kind: &str,
    id: Option<String>,
    fill: impl FnOnce(&mut Map<String, Value>),
) -> Result<Event, Rejection> {
    let mut o = Map::new();
    o.insert("type".into(), kind.into());
    put(&mut o, "id", id.as_deref());
    fill(&mut o);
    event::from_value(&Value::Object(o))
}

/// Guest texts are cut to the length events allow: the name Kandy shows is cut shorter
/// still, and a long name must not cost the guest a check-in.
fn text(r: &Record, field: &str) -> Option<String> {
    r.get(field).map(|v| v.chars().take(MAX_TEXT).collect())
}

/// The guest of a GI or GC. Without GN the last name is empty: a PMS may withhold a
/// name, and the room is occupied all the same.
fn guest(r: &Record) -> Value {
    let mut g = Map::new();
    put(&mut g, "id", text(r, "G#").as_deref());
    g.insert("last".into(), text(r, "GN").unwrap_or_default().into());
    for (key, field) in [("first", "GF"), ("title", "GT"), ("language", "GL"), ("vip", "GV")] {
        put(&mut g, key, text(r, field).as_deref());
    }
    Value::Object(g)
}

fn sharer_without_number(r: &Record) -> Option<Rejection> {
    (r.get("GS") == Some("Y") && r.get("G#").is_none()).then(|| {
        Rejection::new(
            "G#",
            "is required for a sharer (GS Y): without it the sharer would replace the room's guests",
        )
    })
}

fn check_in(r: &Record) -> Result<Event, Rejection> {
    if let Some(e) = sharer_without_number(r) {
        return Err(e);
    }
    build(r, "check_in", |o| {
        o.insert("room".into(), room(r));
        o.insert("guest".into(), guest(r));
        put(o, "call_permission", r.get("CS"));
    })
}

/// A GI of a resync, checked by the rules of a check-in: its room, guest and CS.
fn resync_guest(r: &Record) -> Result<(String, Value, Option<String>), Rejection> {
    match check_in(r)?.kind {
        event::Kind::CheckIn {
            room,
            guest,
            call_permission,
        } => {
            let guest = serde_json::to_value(guest).map_err(|e| Rejection::new("guest", e.to_string()))?;
            Ok((room, guest, call_permission))
        }
        _ => Err(Rejection::new("(event)", "a GI is a check-in")),
    }
}

/// GC: with RO (another room) a room move, else a guest change; a CS in a GC without RO
/// becomes a call permission of its own, with the record's id and `:CS`.
fn guest_change(r: &Record) -> Meaning {
    let from = r.get("RO").filter(|ro| Some(*ro) != r.get("RN"));
    if let Some(from) = from {
        return one(build(r, "room_move", |o| {
            o.insert("room".into(), room(r));
            o.insert("from".into(), from.into());
            // Without a name only the room is known: every guest of RO moves.
            if r.get("GN").is_some() {
                o.insert("guest".into(), guest(r));
            }
            put(o, "call_permission", r.get("CS"));
        }));
    }
    let mut events = Vec::new();
    if r.get("GN").is_some() {
        events.push(build(r, "guest_change", |o| {
            o.insert("room".into(), room(r));
            o.insert("guest".into(), guest(r));
        }));
    }
    if let Some(cs) = r.get("CS") {
        events.push(build_with_id("call_permission", id(r, &content(r), ":CS"), |o| {
            o.insert("room".into(), room(r));
            o.insert("level".into(), cs.into());
        }));
    }
    if events.is_empty() {
        return Meaning::Ignored("a GC without RO, GN or CS changes nothing".into());
    }
    Meaning::Events(events)
}

#[cfg(test)]
mod tests;
