//! Each field's status, and a name as one value (link-behaviour.md, "Pushing
//! to Kandy"). Pure: the sync loop feeds it what the store and the cache say.

use serde::Serialize;

use crate::names::ShownName;

/// The two things the link owns on a room's Kandy user. Permission sorts first: at
/// check-out, cutting outside calls matters more than the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Permission,
    Name,
}

impl Field {
    pub const ALL: [Field; 2] = [Field::Permission, Field::Name];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Permission => "permission",
            Field::Name => "name",
        }
    }
}

/// A field's sync status, as `rooms` and `status` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    InSync,
    Pending,
    Deferred,
    Failed,
    Unresolved,
    Ignored,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InSync => "in-sync",
            Status::Pending => "pending",
            Status::Deferred => "deferred",
            Status::Failed => "failed",
            Status::Unresolved => "unresolved",
            Status::Ignored => "ignored",
        }
    }
}

/// A name as one value: first and last joined by U+001F, which a rendered name never
/// holds (control characters are removed).
pub fn name_value(name: &ShownName) -> String {
    format!("{}\u{1f}{}", name.first, name.last)
}

/// The first and last name of a `name_value`.
pub fn split_name(value: &str) -> (&str, &str) {
    value.split_once('\u{1f}').unwrap_or((value, ""))
}

/// What the link knows of one field of one room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSync {
    /// The value Kandy last confirmed (`None`: unknown).
    pub confirmed: Option<String>,
    /// Failed attempts of the current value.
    pub attempts: u32,
    /// All attempts spent; waits for a new event, a cache refresh or `retry`.
    pub deferred: bool,
    /// The wanted value the portal refused or altered; not sent again until the wanted
    /// value changes.
    pub failed: Option<String>,
    pub last_error: Option<String>,
    /// `resync`: send even when confirmed.
    pub force: bool,
}

impl FieldSync {
    /// The field's status for `wanted` (`None`: the link leaves Kandy's value alone).
    pub fn status(&self, wanted: Option<&str>) -> Status {
        let Some(wanted) = wanted else { return Status::InSync };
        if self.failed.as_deref() == Some(wanted) {
            Status::Failed
        } else if self.deferred {
            Status::Deferred
        } else if self.force || self.confirmed.as_deref() != Some(wanted) {
            Status::Pending
        } else {
            Status::InSync
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(confirmed: Option<&str>) -> FieldSync {
        FieldSync {
            confirmed: confirmed.map(String::from),
            ..FieldSync::default()
        }
    }

    #[test]
    fn statuses() {
        let cases: Vec<(&str, FieldSync, Option<&str>, Status)> = vec![
            ("nothing wanted", f(None), None, Status::InSync),
            ("confirmed unknown", f(None), Some("internal"), Status::Pending),
            ("confirmed differs", f(Some("local")), Some("internal"), Status::Pending),
            ("confirmed equal", f(Some("internal")), Some("internal"), Status::InSync),
            (
                "resync",
                FieldSync {
                    force: true,
                    ..f(Some("internal"))
                },
                Some("internal"),
                Status::Pending,
            ),
            (
                "deferred",
                FieldSync {
                    deferred: true,
                    attempts: 4,
                    ..f(None)
                },
                Some("internal"),
                Status::Deferred,
            ),
            (
                "failed for this value",
                FieldSync {
                    failed: Some("vip".into()),
                    ..f(Some("local"))
                },
                Some("vip"),
                Status::Failed,
            ),
            (
                "failed for an older value",
                FieldSync {
                    failed: Some("vip".into()),
                    ..f(Some("local"))
                },
                Some("internal"),
                Status::Pending,
            ),
        ];
        for (what, sync, wanted, want) in cases {
            assert_eq!(sync.status(wanted), want, "{what}");
        }
    }

    #[test]
    fn names_round_trip_as_one_value() {
        let n = ShownName {
            first: "Room".into(),
            last: String::new(),
        };
        assert_eq!(split_name(&name_value(&n)), ("Room", ""));
    }
}
