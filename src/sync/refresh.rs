//! The extension cache refresh (link-behaviour.md, "Which Kandy user a room is"): all
//! pages or nothing, swapped whole and saved; then rooms are resolved again, values read
//! from the portal are taken as confirmed, drift is repaired once, deferred fields get
//! fresh attempts and a link paused for its credentials resumes.

use std::time::Duration;

use tokio::time::Instant;

use super::engine::{Done, Engine, Entry, ix, now_ms, shown, wanted};
use super::link::Link;
use super::plan::{Field, name_value};
use crate::directory::{Directory, User};
use crate::kandy::KandyError;
use crate::names::ShownName;
use crate::store::{StoreError, now};

impl Engine {
    /// Starts a refresh unless one is running; every caller shares it.
    pub(super) fn start_refresh(&mut self) {
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        let client = self.client.clone();
        let tx = self.done_tx.clone();
        let started_ms = now_ms();
        tokio::spawn(async move {
            let result = client.list_users().await;
            let _ = tx.send(Done::Refresh { started_ms, result });
        });
    }

    pub(super) fn refreshed(
        &mut self,
        started_ms: i64,
        result: Result<Vec<User>, KandyError>,
    ) -> Result<(), StoreError> {
        self.refreshing = false;
        let users = match result {
            Ok(users) => users,
            Err(e) => {
                // Keep the previous cache whole; try again after one interval.
                tracing::warn!("Extension cache refresh failed; keeping the previous cache: {e}");
                self.next_refresh = Instant::now() + Duration::from_secs(self.config.scheduling.interval_secs);
                for room in std::mem::take(&mut self.after_refresh) {
                    // No fresh cache was read: a second 404 must ask for another refresh,
                    // not mark the field failed.
                    if let Some(entry) = self.rooms.get_mut(&room) {
                        entry.stale_user = None;
                    }
                    self.make_ready(&room);
                }
                return self.pause(&e);
            }
        };
        let count = users.len();
        self.store.save_directory(&users, now())?;
        let directory = Directory::new(users);
        let mins = self.config.scheduling.refresh_cache_mins;
        self.next_refresh = Instant::now() + Duration::from_secs(mins * 60);
        tracing::info!(users = count, "Extension cache refreshed");

        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        self.directory = Some(directory);
        for room in &rooms {
            self.resolve(room);
            self.read_back(room, started_ms);
            if let Some(entry) = self.rooms.get_mut(room)
                && entry.field(Field::Permission).deferred | entry.field(Field::Name).deferred
            {
                entry.undefer();
                self.unsaved.insert(room.clone());
            }
            self.make_ready(room);
        }
        self.after_refresh.clear();
        if !self.link.sending() {
            tracing::info!("The Kandy portal answered a full refresh; sending resumes");
            self.set_link(Link::Up)?;
        }
        self.flush()
    }

    /// Takes the values the refresh read as confirmed, and handles drift.
    fn read_back(&mut self, room: &str, started_ms: i64) {
        let repair = self.config.scheduling.repair_drift;
        let Some(entry) = self.rooms.get(room) else { return };
        let Some(user) = entry
            .row
            .user_id
            .as_deref()
            .and_then(|u| self.directory.as_ref()?.get(u))
            .cloned()
        else {
            return;
        };
        let wanted = wanted(&self.config, &entry.row);
        let read = [
            user.call_permission.clone(),
            Some(name_value(&ShownName {
                first: user.first_name.clone().unwrap_or_default(),
                last: user.last_name.clone().unwrap_or_default(),
            })),
        ];
        let Some(entry) = self.rooms.get_mut(room) else { return };
        let mut changed = false;
        for field in Field::ALL {
            let (Some(read), Some(want)) = (read[ix(field)].clone(), wanted[ix(field)].clone()) else {
                continue;
            };
            // A confirmation newer than the refresh is newer than what it read.
            if entry.confirmed_at[ix(field)] > started_ms {
                continue;
            }
            changed |= take_read(entry, room, &user.user_id, field, read, want, repair);
        }
        if changed {
            self.unsaved.insert(room.to_string());
        }
    }
}

/// Applies one value read from the portal to a field; true when the field changed.
fn take_read(
    entry: &mut Entry,
    room: &str,
    user: &str,
    field: Field,
    read: String,
    want: String,
    repair: bool,
) -> bool {
    let repaired = entry.repaired[ix(field)];
    let s = entry.field_mut(field);
    match s.confirmed.clone() {
        Some(c) if c == read => {
            entry.repaired[ix(field)] = false;
            false
        }
        None => {
            s.confirmed = Some(read);
            true
        }
        Some(c) => {
            let (was, now) = (shown(field, &c), shown(field, &read));
            if repaired {
                tracing::warn!(room, user, field = field.as_str(), kandy = %now, sent = %was,
                    "The portal alters what it is sent; the field is marked failed until the room changes");
                s.failed = Some(want);
                s.last_error = Some(format!("Kandy keeps \"{now}\" after being sent \"{was}\""));
                s.confirmed = Some(read);
                entry.repaired[ix(field)] = false;
            } else if repair {
                tracing::warn!(room, user, field = field.as_str(), kandy = %now, expected = %was,
                    "Drift: someone changed the user in the portal; putting it back");
                s.confirmed = Some(read);
                entry.repaired[ix(field)] = true;
            } else {
                tracing::warn!(room, user, field = field.as_str(), kandy = %now, expected = %was,
                    "Drift: someone changed the user in the portal (repair_drift is off, left as it is)");
                return false;
            }
            true
        }
    }
}
