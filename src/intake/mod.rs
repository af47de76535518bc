//! The ways events come in: the spool directory (`spool`) and the command line
//! (`enqueue` and the helpers). Both split input into events the same way and take them
//! into the store in one transaction per batch.

pub mod fias;
pub mod spool;

use std::fmt::Write;

use crate::event::{self, Event, Rejection};
use crate::store::{Intake, Outcome, Rules, Store, StoreError};

/// One event of an input, before it is taken in.
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based line number in its file (1 for a whole-file event).
    pub number: usize,
    pub raw: String,
    pub parsed: Result<Event, Rejection>,
}

/// Splits JSON lines: blank lines skipped, CRLF accepted, each line its own UTF-8.
pub fn json_lines(bytes: &[u8]) -> Vec<Line> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.push(one(i + 1, line));
    }
    out
}

/// One event, the whole input (a `.json` file).
pub fn whole(bytes: &[u8]) -> Vec<Line> {
    vec![one(1, bytes)]
}

/// What the command line reads: one JSON object (which may span lines) or JSON lines.
pub fn object_or_lines(bytes: &[u8]) -> Vec<Line> {
    let is_one_value = serde_json::from_slice::<serde_json::Value>(bytes).is_ok();
    if is_one_value && bytes.iter().filter(|b| **b == b'\n').count() > 1 {
        whole(bytes)
    } else {
        json_lines(bytes)
    }
}

fn one(number: usize, bytes: &[u8]) -> Line {
    match std::str::from_utf8(bytes) {
        Ok(text) => Line {
            number,
            raw: text.to_string(),
            parsed: event::parse(text),
        },
        Err(e) => Line {
            number,
            raw: String::from_utf8_lossy(bytes).into_owned(),
            parsed: Err(Rejection::new(
                "(event)",
                format!("is not valid UTF-8 (byte {})", e.valid_up_to() + 1),
            )),
        },
    }
}

/// The outcome of each line of one input.
#[derive(Debug, Clone, Default)]
pub struct Taken {
    pub lines: Vec<(usize, Outcome)>,
}

impl Taken {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.lines.iter().filter(|(_, o)| f(o)).count()
    }
    pub fn accepted(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Accepted { .. }))
    }
    pub fn duplicate(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Duplicate { .. }))
    }
    pub fn rejected(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Rejected(_)))
    }

    /// "3 accepted, 1 duplicate, 2 rejected".
    pub fn summary(&self) -> String {
        format!(
            "{} accepted, {} duplicate, {} rejected",
            self.accepted(),
            self.duplicate(),
            self.rejected()
        )
    }

    /// One line per event: which were accepted, and for each bad one the line, the field
    /// and the rule.
    pub fn per_line(&self) -> String {
        let mut out = String::new();
        for (n, o) in &self.lines {
            let _ = match o {
                Outcome::Accepted { .. } => writeln!(out, "line {n}: accepted"),
                Outcome::Duplicate { id, differs: false } => {
                    writeln!(out, "line {n}: duplicate of accepted event {id}, ignored")
                }
                Outcome::Duplicate { id, differs: true } => {
                    writeln!(
                        out,
                        "line {n}: duplicate id {id} with different content, ignored (the first one stands)"
                    )
                }
                Outcome::Rejected(r) => writeln!(out, "line {n}: rejected: {r}"),
            };
        }
        out
    }
}

/// Takes `lines` into `tx`, logging what a technician should see. `source` names the
/// input (`spool:NAME`, `enqueue:-`); the line number is added to it.
pub fn take_lines(tx: &mut Intake<'_>, lines: Vec<Line>, source: &str, rules: Rules<'_>) -> Result<Taken, StoreError> {
    let mut taken = Taken::default();
    for line in lines {
        let at = format!("{source}:{}", line.number);
        let outcome = tx.take(&line.raw, line.parsed, &at, rules)?;
        match &outcome {
            Outcome::Rejected(r) => tracing::warn!(source = %at, "Event rejected: {r}"),
            Outcome::Duplicate { id, differs: true } => {
                tracing::warn!(source = %at, event_id = %id, "Duplicate event id with different content ignored; the first one stands")
            }
            Outcome::Duplicate { id, .. } => tracing::info!(source = %at, event_id = %id, "Duplicate event ignored"),
            Outcome::Accepted { .. } => {}
        }
        taken.lines.push((line.number, outcome));
    }
    Ok(taken)
}

/// `kandy-link enqueue` and the helpers: every event of `bytes` in one transaction.
pub fn enqueue(store: &mut Store, lines: Vec<Line>, source: &str, rules: Rules<'_>) -> Result<Taken, StoreError> {
    let mut tx = store.intake()?;
    let taken = take_lines(&mut tx, lines, source, rules)?;
    crate::fault::point("before-enqueue-commit");
    tx.commit()?;
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_skip_blanks_accept_crlf_and_report_bad_utf8() {
        let lines = json_lines(
            b"{\"type\":\"check_out\",\"room\":\"1\"}\r\n\r\n  \n{\"type\":\"check_out\",\"room\":\"\xff\"}\n",
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].number, 1);
        assert!(lines[0].parsed.is_ok());
        assert_eq!(lines[1].number, 4);
        assert!(lines[1].parsed.as_ref().unwrap_err().rule.contains("UTF-8"));
    }

    #[test]
    fn a_pretty_printed_object_is_one_event() {
        let text = b"{\n  \"type\": \"check_out\",\n  \"room\": \"1\"\n}\n";
        let lines = object_or_lines(text);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].parsed.is_ok());
        let two = b"{\"type\":\"check_out\",\"room\":\"1\"}\n{\"type\":\"check_out\",\"room\":\"2\"}\n";
        assert_eq!(object_or_lines(two).len(), 2);
    }
}
