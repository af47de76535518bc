//! The extension directory: the group's Kandy users as last read from the portal, and
//! which user a room's mailbox is (link-behaviour.md, "Which Kandy user a room is").
//! Matching is pure; refreshing and keeping the cache live elsewhere.

use std::collections::HashMap;

pub use crate::kandy::user::User;

/// Which user a mailbox is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Found(String),
    /// No user, or more than one at the first step that found any (`candidates`).
    Unresolved {
        reason: String,
        candidates: Vec<String>,
    },
}

/// The users of the group, indexed for the three matching steps.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    users: Vec<User>,
    by_id: HashMap<String, Vec<usize>>,
    by_local_part: HashMap<String, Vec<usize>>,
    by_number: HashMap<String, Vec<usize>>,
}

impl Directory {
    pub fn new(users: Vec<User>) -> Directory {
        let mut d = Directory {
            users,
            ..Directory::default()
        };
        for (i, u) in d.users.iter().enumerate() {
            d.by_id.entry(u.user_id.clone()).or_default().push(i);
            if let Some((local, _)) = u.user_id.split_once('@') {
                d.by_local_part.entry(local.to_string()).or_default().push(i);
            }
            let mut numbers: Vec<&String> = u.number.iter().chain(u.extension.iter()).collect();
            numbers.dedup();
            for n in numbers {
                d.by_number.entry(n.clone()).or_default().push(i);
            }
        }
        d
    }

    pub fn users(&self) -> &[User] {
        &self.users
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn get(&self, user_id: &str) -> Option<&User> {
        self.by_id.get(user_id).and_then(|v| v.first()).map(|i| &self.users[*i])
    }

    /// The first step that finds exactly one user wins; two at one step is ambiguous.
    pub fn resolve(&self, mailbox: &str) -> Resolution {
        let steps = [
            ("userId", &self.by_id),
            ("userId before @", &self.by_local_part),
            ("number or extension", &self.by_number),
        ];
        for (what, index) in steps {
            match index.get(mailbox).map(Vec::as_slice) {
                None | Some([]) => continue,
                Some([one]) => return Resolution::Found(self.users[*one].user_id.clone()),
                Some(many) => {
                    let candidates: Vec<String> = many.iter().map(|i| self.users[*i].user_id.clone()).collect();
                    return Resolution::Unresolved {
                        reason: format!("mailbox {mailbox} matches {} Kandy users by {what}", candidates.len()),
                        candidates,
                    };
                }
            }
        }
        Resolution::Unresolved {
            reason: format!("no Kandy user for mailbox {mailbox}"),
            candidates: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, number: Option<&str>, extension: Option<&str>) -> User {
        User {
            user_id: id.into(),
            number: number.map(String::from),
            extension: extension.map(String::from),
            first_name: None,
            last_name: None,
            call_permission: None,
        }
    }

    fn found(id: &str) -> Resolution {
        Resolution::Found(id.into())
    }

    #[test]
    fn each_matching_rule_in_order() {
        let d = Directory::new(vec![
            user("101", None, None),
            user("102@hotel.example", None, None),
            user("front-desk", Some("+13125550103"), Some("103")),
            user("lobby", Some("104"), None),
            // 201 by userId beats 201 as someone's extension.
            user("201", None, None),
            user("other", None, Some("201")),
            // userId before @ beats an extension too.
            user("202@hotel.example", None, None),
            user("x", None, Some("202")),
            // Two at one step: ambiguous, even though a later step would find one.
            user("301@a.example", None, None),
            user("301@b.example", None, None),
            user("z", None, Some("301")),
            user("s1", None, Some("401")),
            user("s2", Some("401"), None),
            // A user whose number and extension are the same counts once.
            user("same", Some("501"), Some("501")),
        ]);
        let cases: Vec<(&str, Resolution)> = vec![
            ("101", found("101")),
            ("102", found("102@hotel.example")),
            ("102@hotel.example", found("102@hotel.example")),
            ("103", found("front-desk")),
            ("+13125550103", found("front-desk")),
            ("104", found("lobby")),
            ("201", found("201")),
            ("202", found("202@hotel.example")),
            ("501", found("same")),
        ];
        for (mailbox, want) in cases {
            assert_eq!(d.resolve(mailbox), want, "mailbox {mailbox}");
        }
        let Resolution::Unresolved { reason, candidates } = d.resolve("301") else {
            panic!("301 should be ambiguous")
        };
        assert_eq!(candidates, ["301@a.example", "301@b.example"]);
        assert!(reason.contains("matches 2 Kandy users by userId before @"), "{reason}");
        let Resolution::Unresolved { candidates, .. } = d.resolve("401") else {
            panic!("401 should be ambiguous")
        };
        assert_eq!(candidates, ["s1", "s2"]);
        assert_eq!(
            d.resolve("999"),
            Resolution::Unresolved {
                reason: "no Kandy user for mailbox 999".into(),
                candidates: vec![]
            }
        );
    }
}
