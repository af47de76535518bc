//! PMS events (pms-events.md): the model, and the validation that turns one JSON object
//! into an `Event` or a `Rejection` naming the field and the rule. Pure: no I/O, no clock.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A guest as the PMS describes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    pub last: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<String>,
}

/// One room of a `sync` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRoom {
    pub room: String,
    pub guests: Vec<Guest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_permission: Option<String>,
}

/// What happened, by event type. Levels and permissions are kept as the PMS sent them
/// (a code or a name); `room::Policy` resolves them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    CheckIn {
        room: String,
        guest: Guest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_permission: Option<String>,
    },
    CheckOut {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        guest_id: Option<String>,
    },
    GuestChange {
        room: String,
        guest: Guest,
    },
    RoomMove {
        room: String,
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        guest: Option<Guest>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_permission: Option<String>,
    },
    CallPermission {
        room: String,
        level: String,
    },
    Sync {
        rooms: Vec<SyncRoom>,
    },
}

/// A valid event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(flatten)]
    pub kind: Kind,
}

impl Event {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::CheckIn { .. } => "check_in",
            Kind::CheckOut { .. } => "check_out",
            Kind::GuestChange { .. } => "guest_change",
            Kind::RoomMove { .. } => "room_move",
            Kind::CallPermission { .. } => "call_permission",
            Kind::Sync { .. } => "sync",
        }
    }

    /// The room the event is about (`None` for `sync`).
    pub fn room(&self) -> Option<&str> {
        match &self.kind {
            Kind::CheckIn { room, .. }
            | Kind::CheckOut { room, .. }
            | Kind::GuestChange { room, .. }
            | Kind::RoomMove { room, .. }
            | Kind::CallPermission { room, .. } => Some(room),
            Kind::Sync { .. } => None,
        }
    }

    /// The event as stored: compact JSON in a fixed field order, so that two events with
    /// the same content have the same text whatever the producer's spacing or key order.
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why an event was refused: the field (dotted, `(event)` for the whole) and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub field: String,
    pub rule: String,
}

impl Rejection {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Rejection {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field == WHOLE {
            write!(f, "{}", self.rule)
        } else {
            write!(f, "field `{}`: {}", self.field, self.rule)
        }
    }
}

impl std::error::Error for Rejection {}

const WHOLE: &str = "(event)";

pub const MAX_ROOM: usize = 16;
pub const MAX_ID: usize = 128;
pub const MAX_TEXT: usize = 64;

/// A room string: 1 to 16 letters, digits, `-`, `_` or `.`.
pub fn check_room(room: &str) -> Result<(), &'static str> {
    if room.is_empty() {
        return Err("must not be empty");
    }
    if room.chars().count() > MAX_ROOM {
        return Err("must be at most 16 characters");
    }
    if !room
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("may hold only letters, digits, `-`, `_` and `.`");
    }
    Ok(())
}

/// A Kandy call permission name: 1 to 64 printable characters, not a bare code.
pub fn check_permission_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("must not be empty");
    }
    if name.chars().count() > MAX_TEXT {
        return Err("must be at most 64 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("must not hold control characters");
    }
    Ok(())
}

/// Parses one event from its JSON text.
pub fn parse(text: &str) -> Result<Event, Rejection> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| Rejection::new(WHOLE, format!("is not valid JSON: {e}")))?;
    from_value(&value)
}

/// Validates one event already read as JSON.
pub fn from_value(value: &Value) -> Result<Event, Rejection> {
    let Value::Object(obj) = value else {
        return Err(Rejection::new(WHOLE, "must be a JSON object"));
    };
    let o = Obj {
        map: obj,
        prefix: String::new(),
    };
    let type_name = o.required_str("type")?;
    let (kind, fields): (Kind, &[&str]) = match type_name {
        "check_in" => (
            Kind::CheckIn {
                room: o.room("room")?,
                guest: o.guest("guest")?.ok_or_else(|| o.missing("guest"))?,
                call_permission: o.level("call_permission")?,
            },
            &["room", "guest", "call_permission"],
        ),
        "check_out" => (
            Kind::CheckOut {
                room: o.room("room")?,
                guest_id: o.text("guest_id", MAX_TEXT)?,
            },
            &["room", "guest_id"],
        ),
        "guest_change" => (
            Kind::GuestChange {
                room: o.room("room")?,
                guest: o.guest("guest")?.ok_or_else(|| o.missing("guest"))?,
            },
            &["room", "guest"],
        ),
        "room_move" => {
            let room = o.room("room")?;
            let from = o.room("from")?;
            if from == room {
                return Err(Rejection::new(
                    "from",
                    format!("must differ from `room` (both are `{room}`)"),
                ));
            }
            (
                Kind::RoomMove {
                    room,
                    from,
                    guest: o.guest("guest")?,
                    call_permission: o.level("call_permission")?,
                },
                &["room", "from", "guest", "call_permission"],
            )
        }
        "call_permission" => (
            Kind::CallPermission {
                room: o.room("room")?,
                level: o.level("level")?.ok_or_else(|| o.missing("level"))?,
            },
            &["room", "level"],
        ),
        "sync" => (
            Kind::Sync {
                rooms: o.sync_rooms("rooms")?,
            },
            &["rooms"],
        ),
        other => {
            return Err(Rejection::new(
                "type",
                format!(
                    "`{other}` is not an event type (check_in, check_out, guest_change, room_move, call_permission, sync)"
                ),
            ));
        }
    };
    o.only(
        &[&["type", "id", "time"], fields].concat(),
        &format!("{type_name} events"),
    )?;
    let id = o.text("id", MAX_ID)?;
    if id.as_deref() == Some("") {
        return Err(Rejection::new("id", "must not be empty (leave it out instead)"));
    }
    let time = o.text("time", MAX_TEXT)?;
    if let Some(t) = &time {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(|_| {
            Rejection::new(
                "time",
                format!("`{t}` is not an RFC 3339 time such as 2026-12-04T09:30:00Z"),
            )
        })?;
    }
    Ok(Event { id, time, kind })
}

/// A JSON object being validated, with the dotted path to it for messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
}

impl Obj<'_> {
    fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn missing(&self, key: &str) -> Rejection {
        Rejection::new(self.path(key), "is required")
    }

    /// Rejects any key not in `allowed`.
    fn only(&self, allowed: &[&str], what: &str) -> Result<(), Rejection> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(Rejection::new(self.path(k), format!("is not a field of {what}"))),
            None => Ok(()),
        }
    }

    /// An optional string (null counts as absent).
    fn opt_str(&self, key: &str) -> Result<Option<&str>, Rejection> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Rejection::new(
                self.path(key),
                format!("must be a string, not {}", json_type(other)),
            )),
        }
    }

    fn required_str(&self, key: &str) -> Result<&str, Rejection> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    /// Optional printable text of at most `max` characters.
    fn text(&self, key: &str, max: usize) -> Result<Option<String>, Rejection> {
        let Some(s) = self.opt_str(key)? else { return Ok(None) };
        if s.chars().count() > max {
            return Err(Rejection::new(
                self.path(key),
                format!("is longer than {max} characters"),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(Rejection::new(
                self.path(key),
                "must be printable text (it holds a control character)",
            ));
        }
        Ok(Some(s.to_string()))
    }

    fn room(&self, key: &str) -> Result<String, Rejection> {
        let room = self.required_str(key)?;
        check_room(room).map_err(|rule| Rejection::new(self.path(key), format!("`{}` {rule}", room.escape_debug())))?;
        Ok(room.to_string())
    }

    fn level(&self, key: &str) -> Result<Option<String>, Rejection> {
        let Some(level) = self.opt_str(key)? else {
            return Ok(None);
        };
        check_permission_name(level).map_err(|rule| Rejection::new(self.path(key), rule))?;
        Ok(Some(level.to_string()))
    }

    fn child(&self, key: &str, value: &'_ Value) -> Result<Map<String, Value>, Rejection> {
        match value {
            Value::Object(m) => Ok(m.clone()),
            other => Err(Rejection::new(
                self.path(key),
                format!("must be an object, not {}", json_type(other)),
            )),
        }
    }

    fn guest(&self, key: &str) -> Result<Option<Guest>, Rejection> {
        let value = match self.map.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => v,
        };
        let map = self.child(key, value)?;
        guest(&Obj {
            map: &map,
            prefix: format!("{}.", self.path(key)),
        })
        .map(Some)
    }

    fn sync_rooms(&self, key: &str) -> Result<Vec<SyncRoom>, Rejection> {
        let list = match self.map.get(key) {
            None | Some(Value::Null) => return Err(self.missing(key)),
            Some(Value::Array(list)) => list,
            Some(other) => {
                return Err(Rejection::new(
                    self.path(key),
                    format!("must be a list, not {}", json_type(other)),
                ));
            }
        };
        let mut rooms: Vec<SyncRoom> = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let at = format!("{key}[{i}]");
            let map = self.child(&at, item)?;
            let o = Obj {
                map: &map,
                prefix: format!("{}.", self.path(&at)),
            };
            let room = o.room("room")?;
            if rooms.iter().any(|r| r.room == room) {
                return Err(Rejection::new(o.path("room"), format!("`{room}` is listed twice")));
            }
            let guests = match map.get("guests") {
                None | Some(Value::Null) => return Err(o.missing("guests")),
                Some(Value::Array(g)) => g,
                Some(other) => {
                    return Err(Rejection::new(
                        o.path("guests"),
                        format!("must be a list, not {}", json_type(other)),
                    ));
                }
            };
            if guests.is_empty() {
                return Err(Rejection::new(
                    o.path("guests"),
                    "must list at least one guest (list only occupied rooms)",
                ));
            }
            let mut parsed = Vec::with_capacity(guests.len());
            for (j, g) in guests.iter().enumerate() {
                let gat = format!("guests[{j}]");
                let gmap = o.child(&gat, g)?;
                parsed.push(guest(&Obj {
                    map: &gmap,
                    prefix: format!("{}.", o.path(&gat)),
                })?);
            }
            let call_permission = o.level("call_permission")?;
            o.only(&["room", "guests", "call_permission"], "a sync room")?;
            rooms.push(SyncRoom {
                room,
                guests: parsed,
                call_permission,
            });
        }
        Ok(rooms)
    }
}

fn guest(o: &Obj<'_>) -> Result<Guest, Rejection> {
    o.only(&["id", "first", "last", "title", "language", "vip"], "a guest")?;
    let last = o.text("last", MAX_TEXT)?.ok_or_else(|| o.missing("last"))?;
    let id = o.text("id", MAX_TEXT)?;
    if id.as_deref() == Some("") {
        return Err(Rejection::new(o.path("id"), "must not be empty (leave it out instead)"));
    }
    Ok(Guest {
        id,
        first: o.text("first", MAX_TEXT)?,
        last,
        title: o.text("title", MAX_TEXT)?,
        language: o.text("language", MAX_TEXT)?,
        vip: o.text("vip", MAX_TEXT)?,
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
pub(crate) mod tests;
