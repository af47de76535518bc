//! The extension directory: the group's Kandy users as last read from the portal, and
//! which user a room's mailbox is (link-behaviour.md, "Which Kandy user a room is").
//! Matching is pure; refreshing and keeping the cache live elsewhere.

use std::hash::BuildHasher;

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

/// The users of the group, indexed for the three matching steps. Each index is a sorted
/// list of (hash of the key, user) pairs: a lookup is a binary search and a check of the
/// few users with that hash, and a 10,000-user group costs a few hundred KiB of index
/// instead of a copy of every key.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    users: Vec<User>,
    by_id: Vec<(u64, u32)>,
    by_local_part: Vec<(u64, u32)>,
    by_number: Vec<(u64, u32)>,
    hasher: std::hash::RandomState,
}

/// The three ways a user can be a mailbox, in the order they are tried.
#[derive(Debug, Clone, Copy)]
enum Step {
    UserId,
    LocalPart,
    Number,
}

impl Step {
    fn describe(self) -> &'static str {
        match self {
            Step::UserId => "userId",
            Step::LocalPart => "userId before @",
            Step::Number => "number or extension",
        }
    }

    /// Whether `user` is `mailbox` by this step.
    fn matches(self, user: &User, mailbox: &str) -> bool {
        match self {
            Step::UserId => user.user_id == mailbox,
            Step::LocalPart => user.user_id.split_once('@').is_some_and(|(local, _)| local == mailbox),
            Step::Number => user.number.as_deref() == Some(mailbox) || user.extension.as_deref() == Some(mailbox),
        }
    }
}

impl Directory {
    pub fn new(users: Vec<User>) -> Directory {
        let mut d = Directory {
            users,
            ..Directory::default()
        };
        for (i, u) in d.users.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            d.by_id.push((d.hasher.hash_one(&u.user_id), i));
            if let Some((local, _)) = u.user_id.split_once('@') {
                d.by_local_part.push((d.hasher.hash_one(local), i));
            }
            let mut numbers: Vec<&String> = u.number.iter().chain(u.extension.iter()).collect();
            numbers.dedup();
            for n in numbers {
                d.by_number.push((d.hasher.hash_one(n), i));
            }
        }
        for index in [&mut d.by_id, &mut d.by_local_part, &mut d.by_number] {
            index.sort_unstable();
            index.shrink_to_fit();
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
        self.find(Step::UserId, user_id).into_iter().next()
    }

    /// The users that are `mailbox` by one step, in the group's order.
    fn find(&self, step: Step, mailbox: &str) -> Vec<&User> {
        let index = match step {
            Step::UserId => &self.by_id,
            Step::LocalPart => &self.by_local_part,
            Step::Number => &self.by_number,
        };
        let hash = self.hasher.hash_one(mailbox);
        let start = index.partition_point(|(h, _)| *h < hash);
        index[start..]
            .iter()
            .take_while(|(h, _)| *h == hash)
            .filter_map(|(_, i)| self.users.get(*i as usize))
            .filter(|u| step.matches(u, mailbox))
            .collect()
    }

    /// The first step that finds exactly one user wins; two at one step is ambiguous.
    pub fn resolve(&self, mailbox: &str) -> Resolution {
        for step in [Step::UserId, Step::LocalPart, Step::Number] {
            let found = self.find(step, mailbox);
            match found.as_slice() {
                [] => continue,
                [one] => return Resolution::Found(one.user_id.clone()),
                many => {
                    let candidates: Vec<String> = many.iter().map(|u| u.user_id.clone()).collect();
                    return Resolution::Unresolved {
                        reason: format!(
                            "mailbox {mailbox} matches {} Kandy users by {}",
                            candidates.len(),
                            step.describe()
                        ),
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
