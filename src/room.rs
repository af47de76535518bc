//! Room state (link-behaviour.md, "Room state"): what the PMS says a room's Kandy user
//! should be, and the pure function that applies an event to it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::CallPermissions;
use crate::event::{Event, Guest, Kind, Rejection};

/// A room's wanted state: its guests in order of arrival (the first one's name is shown)
/// and a call permission name (`None`: leave Kandy's as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    pub guests: Vec<Guest>,
    pub permission: Option<String>,
}

impl RoomState {
    pub fn occupied(&self) -> bool {
        !self.guests.is_empty()
    }
}

/// The settings applying an event depends on.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub permissions: &'a CallPermissions,
}

impl Policy<'_> {
    /// A level or permission from the PMS as a Kandy permission name.
    pub fn resolve(&self, field: &str, level: &str) -> Result<String, Rejection> {
        let p = self.permissions;
        let name = if level.len() == 1 && level.as_bytes()[0].is_ascii_digit() {
            p.codes.get(level).cloned().ok_or_else(|| {
                Rejection::new(
                    field,
                    format!("class-of-service code `{level}` has no mapping in [call_permissions.codes]"),
                )
            })?
        } else {
            level.to_string()
        };
        if !p.allowed.is_empty() && !p.allowed.contains(&name) {
            return Err(Rejection::new(
                field,
                format!("`{name}` is not in call_permissions.allowed"),
            ));
        }
        Ok(name)
    }

    fn on_check_in(&self) -> Option<String> {
        Some(self.permissions.on_check_in.clone()).filter(|p| !p.is_empty())
    }

    fn on_check_out(&self) -> Option<String> {
        Some(self.permissions.on_check_out.clone()).filter(|p| !p.is_empty())
    }

    fn opt(&self, field: &str, level: &Option<String>) -> Result<Option<String>, Rejection> {
        level.as_deref().map(|l| self.resolve(field, l)).transpose()
    }
}

/// The outcome of applying one event: the new state of every room it touched, and what
/// is worth a warning in the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub rooms: BTreeMap<String, RoomState>,
    pub notes: Vec<String>,
}

/// The rooms whose current state `apply` needs: for `sync`, every known room as well.
pub fn rooms_needed(event: &Event) -> Vec<&str> {
    match &event.kind {
        Kind::RoomMove { room, from, .. } => vec![room, from],
        Kind::Sync { rooms } => rooms.iter().map(|r| r.room.as_str()).collect(),
        _ => event.room().into_iter().collect(),
    }
}

/// Applies `event` to `current` (the rooms of `rooms_needed`, and for `sync` every other
/// known room; a room absent from it has never been seen and is vacant).
pub fn apply(event: &Event, current: &BTreeMap<String, RoomState>, policy: Policy<'_>) -> Result<Applied, Rejection> {
    let mut out = Applied::default();
    let state = |room: &str| current.get(room).cloned().unwrap_or_default();
    match &event.kind {
        Kind::CheckIn {
            room,
            guest,
            call_permission,
        } => {
            let permission = policy.opt("call_permission", call_permission)?;
            let mut s = state(room);
            check_in(room, &mut s, guest.clone(), permission, policy, &mut out.notes);
            out.rooms.insert(room.clone(), s);
        }
        Kind::CheckOut { room, guest_id } => {
            let mut s = state(room);
            check_out(room, &mut s, guest_id.as_deref(), policy, &mut out.notes);
            out.rooms.insert(room.clone(), s);
        }
        Kind::GuestChange { room, guest } => {
            let mut s = state(room);
            guest_change(room, &mut s, guest, &mut out.notes);
            out.rooms.insert(room.clone(), s);
        }
        Kind::RoomMove {
            room,
            from,
            guest,
            call_permission,
        } => {
            let permission = policy.opt("call_permission", call_permission)?;
            let mut source = state(from);
            let movers = take_movers(from, &mut source, guest.as_ref(), policy, &mut out.notes)?;
            let mut target = state(room);
            let permission = permission
                .or_else(|| source_permission(current, from))
                .or_else(|| policy.on_check_in());
            let mut first = true;
            for g in movers {
                // The permission is set once; later movers join without changing it.
                let p = if first { permission.clone() } else { None };
                first = false;
                check_in(room, &mut target, g, p, policy, &mut out.notes);
            }
            out.rooms.insert(from.clone(), source);
            out.rooms.insert(room.clone(), target);
        }
        Kind::CallPermission { room, level } => {
            let mut s = state(room);
            s.permission = Some(policy.resolve("level", level)?);
            out.rooms.insert(room.clone(), s);
        }
        Kind::Sync { rooms } => {
            let mut listed = BTreeMap::new();
            for (i, r) in rooms.iter().enumerate() {
                let permission = policy.opt(&format!("rooms[{i}].call_permission"), &r.call_permission)?;
                let before = state(&r.room);
                let permission = permission
                    .or_else(|| before.occupied().then(|| before.permission.clone()).flatten())
                    .or_else(|| policy.on_check_in())
                    .or(before.permission);
                listed.insert(
                    r.room.clone(),
                    RoomState {
                        guests: r.guests.clone(),
                        permission,
                    },
                );
            }
            for (room, before) in current {
                if !listed.contains_key(room) {
                    let mut s = before.clone();
                    check_out(room, &mut s, None, policy, &mut Vec::new());
                    out.rooms.insert(room.clone(), s);
                }
            }
            out.rooms.extend(listed);
        }
    }
    Ok(out)
}

fn source_permission(current: &BTreeMap<String, RoomState>, from: &str) -> Option<String> {
    current.get(from).and_then(|s| s.permission.clone())
}

/// A guest joins a room: replaces the guest with the same id, or, without an id, every
/// guest; else joins as a sharer.
fn check_in(
    room: &str,
    s: &mut RoomState,
    guest: Guest,
    permission: Option<String>,
    policy: Policy<'_>,
    notes: &mut Vec<String>,
) {
    let was_vacant = !s.occupied();
    match guest
        .id
        .as_deref()
        .and_then(|id| s.guests.iter().position(|g| g.id.as_deref() == Some(id)))
    {
        Some(i) => s.guests[i] = guest,
        None if guest.id.is_none() => {
            if s.occupied() && s.guests != [guest.clone()] {
                notes.push(format!(
                    "room {room}: check-in without a guest id replaces {}",
                    describe(&s.guests)
                ));
            }
            s.guests = vec![guest];
        }
        None => s.guests.push(guest),
    }
    if let Some(p) = permission.or_else(|| if was_vacant { policy.on_check_in() } else { None }) {
        s.permission = Some(p);
    }
}

fn check_out(room: &str, s: &mut RoomState, guest_id: Option<&str>, policy: Policy<'_>, notes: &mut Vec<String>) {
    match guest_id {
        Some(id) => match s.guests.iter().position(|g| g.id.as_deref() == Some(id)) {
            Some(i) => {
                s.guests.remove(i);
            }
            None => {
                notes.push(format!(
                    "room {room}: check-out of guest {id}, who is not in the room; nothing changes"
                ));
                if s.occupied() {
                    return;
                }
            }
        },
        None => s.guests.clear(),
    }
    if !s.occupied()
        && let Some(p) = policy.on_check_out()
    {
        s.permission = Some(p);
    }
}

fn guest_change(room: &str, s: &mut RoomState, guest: &Guest, notes: &mut Vec<String>) {
    if !s.occupied() {
        notes.push(format!("room {room}: guest change for a vacant room; nothing changes"));
        return;
    }
    let index = match guest.id.as_deref() {
        None => Some(0),
        Some(id) => s.guests.iter().position(|g| g.id.as_deref() == Some(id)).or_else(|| {
            // A guest checked in without an id (by hand, say) takes the PMS's id.
            (s.guests.len() == 1 && s.guests[0].id.is_none()).then_some(0)
        }),
    };
    match index {
        Some(i) => s.guests[i] = guest.clone(),
        None => notes.push(format!(
            "room {room}: guest change for guest {}, who is not in the room; nothing changes",
            guest.id.as_deref().unwrap_or_default()
        )),
    }
}

/// Removes the moving guests from `from` as a check-out would, and returns them.
fn take_movers(
    from: &str,
    source: &mut RoomState,
    guest: Option<&Guest>,
    policy: Policy<'_>,
    notes: &mut Vec<String>,
) -> Result<Vec<Guest>, Rejection> {
    let movers = match guest {
        None => {
            if !source.occupied() {
                return Err(Rejection::new(
                    "from",
                    format!("room {from} has no guest to move, and the event names none"),
                ));
            }
            let all = source.guests.clone();
            check_out(from, source, None, policy, notes);
            all
        }
        Some(g) => {
            match g.id.as_deref() {
                Some(id) if source.guests.iter().any(|x| x.id.as_deref() == Some(id)) => {
                    check_out(from, source, Some(id), policy, notes);
                }
                Some(id) => notes.push(format!("room {from}: guest {id} moves out but was not listed there")),
                None if source.occupied() => check_out(from, source, None, policy, notes),
                None => {}
            }
            vec![g.clone()]
        }
    };
    Ok(movers)
}

fn describe(guests: &[Guest]) -> String {
    let names: Vec<String> = guests
        .iter()
        .map(|g| match &g.id {
            Some(id) => format!("guest {id}"),
            None => "a guest without id".to_string(),
        })
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests;
