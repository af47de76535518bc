//! The name a room's Kandy user shows (link-behaviour.md, "The name Kandy shows"). Pure.

use crate::config::Names;
use crate::kandy::template;
use crate::room::RoomState;

/// First and last name as sent to Kandy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownName {
    pub first: String,
    pub last: String,
}

/// Renders the templates for `state` and cleans each field: control characters removed,
/// white space folded, trimmed, cut to `max_len` characters.
pub fn render(names: &Names, room: &str, mailbox: &str, state: &RoomState) -> ShownName {
    let guest = state.guests.first();
    let field = |f: fn(&crate::event::Guest) -> Option<&str>| guest.and_then(f).unwrap_or("");
    let values = [
        ("first", field(|g| g.first.as_deref())),
        ("last", field(|g| Some(g.last.as_str()))),
        ("title", field(|g| g.title.as_deref())),
        ("language", field(|g| g.language.as_deref())),
        ("vip", field(|g| g.vip.as_deref())),
        ("room", room),
        ("mailbox", mailbox),
    ];
    let (first, last) = if state.occupied() {
        (&names.occupied_first, &names.occupied_last)
    } else {
        (&names.vacant_first, &names.vacant_last)
    };
    let max = usize::try_from(names.max_len).unwrap_or(usize::MAX);
    let one = |t: &str| clean(&template::render(t, &values, template::plain), max);
    ShownName {
        first: one(first),
        last: one(last),
    }
}

fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace()).filter(|w| !w.is_empty()) {
        let word: String = word.chars().filter(|c| !c.is_control()).collect();
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word);
    }
    out.chars().take(max).collect::<String>().trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Guest;

    fn guest(first: &str, last: &str) -> Guest {
        Guest {
            id: None,
            first: Some(first.into()),
            last: last.into(),
            title: Some("Dr".into()),
            language: None,
            vip: Some("G".into()),
        }
    }

    #[test]
    fn occupied_and_vacant_defaults() {
        let n = Names::default();
        let occupied = RoomState {
            guests: vec![guest("John", "Smith")],
            permission: None,
        };
        assert_eq!(
            render(&n, "101", "101", &occupied),
            ShownName {
                first: "John".into(),
                last: "Smith".into()
            }
        );
        let vacant = RoomState::default();
        assert_eq!(
            render(&n, "101", "101", &vacant),
            ShownName {
                first: "Room".into(),
                last: String::new()
            }
        );
    }

    #[test]
    fn templates_see_every_placeholder_and_the_result_is_cleaned() {
        let n = Names {
            occupied_first: "{title}  {first}\u{7}".into(),
            occupied_last: "{last} ({vip}) {room}/{mailbox} {language}".into(),
            vacant_first: "Room {room}".into(),
            vacant_last: String::new(),
            max_len: 30,
        };
        let s = RoomState {
            guests: vec![guest(" Jöhn\t", "Smith")],
            permission: None,
        };
        let shown = render(&n, "101A", "1101", &s);
        assert_eq!(shown.first, "Dr Jöhn");
        assert_eq!(shown.last, "Smith (G) 101A/1101");
        assert_eq!(render(&n, "7", "7", &RoomState::default()).first, "Room 7");
    }

    #[test]
    fn names_are_cut_by_characters_never_inside_one() {
        let n = Names {
            max_len: 5,
            ..Names::default()
        };
        let s = RoomState {
            guests: vec![guest("Zoë", "Müllerström")],
            permission: None,
        };
        assert_eq!(render(&n, "1", "1", &s).last, "Mülle");
        let n = Names {
            max_len: 4,
            ..Names::default()
        };
        let s = RoomState {
            guests: vec![guest("Al B", "X")],
            permission: None,
        };
        assert_eq!(render(&n, "1", "1", &s).first, "Al B");
    }
}
