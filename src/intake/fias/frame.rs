//! FIAS framing (fias.md, "Framing"): a byte stream cut into records between STX and
//! ETX, a record's text split into its type and fields, and records built to send.
//! Pure: no I/O, no clock.

use encoding_rs::Encoding;

pub const STX: u8 = 0x02;
pub const ETX: u8 = 0x03;
/// A record longer than this is no record the link asked for: it is dropped unparsed,
/// so that a PMS sending no ETX cannot make the link hold memory without bound.
pub const MAX_RECORD: usize = 8 * 1024;

/// What a stretch of the byte stream held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The bytes between an STX and its ETX.
    Record(Vec<u8>),
    /// Bytes that belong to no record: outside STX ... ETX, a record cut short by a new
    /// STX, or one longer than `MAX_RECORD`. They are logged and otherwise ignored.
    Stray(Vec<u8>, &'static str),
}

/// Cuts a byte stream into records. One per connection: what is left of a record when
/// the connection drops is dropped with it, never joined to the next connection's bytes.
#[derive(Debug, Default)]
pub struct Deframer {
    record: Option<Vec<u8>>,
    stray: Vec<u8>,
}

impl Deframer {
    /// Takes the bytes just read; returns the records (and stray bytes) they complete,
    /// in the order they came.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        for &b in bytes {
            match (b, self.record.as_mut()) {
                (STX, record) => {
                    if let Some(cut) = record.map(std::mem::take) {
                        let mut cut_short = vec![STX];
                        cut_short.extend(cut);
                        out.push(Piece::Stray(cut_short, "a record cut short by the next STX"));
                    }
                    self.flush_stray(&mut out);
                    self.record = Some(Vec::new());
                }
                (ETX, Some(record)) => {
                    out.push(Piece::Record(std::mem::take(record)));
                    self.record = None;
                }
                (_, Some(record)) => {
                    record.push(b);
                    if record.len() > MAX_RECORD {
                        let long = std::mem::take(record);
                        self.record = None;
                        out.push(Piece::Stray(long, "a record longer than 8 KiB without ETX"));
                    }
                }
                (_, None) => {
                    if self.stray.len() < MAX_RECORD {
                        self.stray.push(b);
                    }
                }
            }
        }
        self.flush_stray(&mut out);
        out
    }

    fn flush_stray(&mut self, out: &mut Vec<Piece>) {
        if !self.stray.is_empty() {
            out.push(Piece::Stray(
                std::mem::take(&mut self.stray),
                "bytes outside STX ... ETX",
            ));
        }
    }
}

/// One record: its two-letter type and its fields in the order sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: String,
    pub fields: Vec<(String, String)>,
}

impl Record {
    /// The value of field `id`, trimmed; `None` when absent or empty (FIAS sends empty
    /// fields for "not known").
    pub fn get(&self, id: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| f == id)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || c == '#'
}

/// Parses the bytes of one record (between STX and ETX) sent in `encoding`. The error
/// says why it is malformed.
pub fn parse(bytes: &[u8], encoding: &'static Encoding) -> Result<Record, String> {
    // Decoded before it is split: in some character sets a `|` byte can be the second
    // half of a character.
    let text = encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or_else(|| format!("it does not decode as {}", encoding.name()))?;
    let mut parts = text.split('|');
    let kind = parts.next().unwrap_or_default();
    if kind.chars().count() != 2 || !kind.chars().all(is_id_char) {
        return Err(format!("`{}` is not a two-letter record type", kind.escape_debug()));
    }
    let mut fields = Vec::new();
    for part in parts.filter(|p| !p.is_empty()) {
        let split = part.char_indices().nth(2).map_or(part.len(), |(i, _)| i);
        let (id, value) = part.split_at(split);
        if id.chars().count() != 2 || !id.chars().all(is_id_char) {
            return Err(format!(
                "`{}` does not start with a two-letter field id",
                part.escape_debug()
            ));
        }
        fields.push((id.to_string(), value.to_string()));
    }
    Ok(Record {
        kind: kind.to_string(),
        fields,
    })
}

/// A record to send: `text` (such as `LA|DA260304|TI101500|`) in `encoding`, framed.
pub fn frame(text: &str, encoding: &'static Encoding) -> Vec<u8> {
    let (bytes, _, _) = encoding.encode(text);
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(STX);
    out.extend_from_slice(&bytes);
    out.push(ETX);
    out
}

/// Raw bytes as a log can show them: decoded as far as they decode, control characters
/// (STX and ETX among them) escaped as `\x02`.
pub fn escape(bytes: &[u8], encoding: &'static Encoding) -> String {
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02X}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The `DA` and `TI` fields of a record sent at `at` (`DA260304|TI101500|`).
pub fn stamp(at: time::PrimitiveDateTime) -> String {
    format!(
        "DA{:02}{:02}{:02}|TI{:02}{:02}{:02}|",
        at.year().rem_euclid(100),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use encoding_rs::{UTF_8, WINDOWS_1252};

    use super::*;

    fn records(pieces: &[Piece]) -> Vec<&[u8]> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Record(r) => Some(r.as_slice()),
                Piece::Stray(..) => None,
            })
            .collect()
    }

    #[test]
    fn records_are_cut_at_stx_and_etx_whatever_the_reads() {
        let stream = b"\x02LS|DA260304|\x03\x02GI|RN101|\x03";
        // Every way of splitting the stream into two reads gives the same records.
        for cut in 0..=stream.len() {
            let mut d = Deframer::default();
            let mut pieces = d.push(&stream[..cut]);
            pieces.extend(d.push(&stream[cut..]));
            assert_eq!(records(&pieces), [&b"LS|DA260304|"[..], b"GI|RN101|"], "cut at {cut}");
        }
    }

    /// (what, the stream, the records, the stray reasons).
    type StrayCase<'a> = (&'a str, &'a [u8], &'a [&'a [u8]], &'a [&'a str]);

    #[test]
    fn stray_bytes_are_reported_and_never_join_a_record() {
        let cases: [StrayCase<'_>; 5] = [
            (
                "garbage before",
                b"\xff\x00junk\x02LA|\x03",
                &[b"LA|"],
                &["bytes outside STX ... ETX"],
            ),
            (
                "garbage between",
                b"\x02LA|\x03\r\n\x02LA|\x03",
                &[b"LA|", b"LA|"],
                &["bytes outside STX ... ETX"],
            ),
            (
                "ETX alone",
                b"\x03\x02LA|\x03",
                &[b"LA|"],
                &["bytes outside STX ... ETX"],
            ),
            (
                "a record cut short",
                b"\x02GI|RN1\x02GO|RN2|\x03",
                &[b"GO|RN2|"],
                &["a record cut short by the next STX"],
            ),
            ("nothing odd", b"\x02LA|\x03", &[b"LA|"], &[]),
        ];
        for (what, stream, want, reasons) in cases {
            let pieces = Deframer::default().push(stream);
            assert_eq!(records(&pieces), want, "{what}");
            let got: Vec<&str> = pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Stray(_, why) => Some(*why),
                    Piece::Record(_) => None,
                })
                .collect();
            assert_eq!(got, reasons, "{what}");
        }
    }

    #[test]
    fn a_record_without_etx_is_dropped_at_the_limit() {
        let mut d = Deframer::default();
        let mut long = vec![STX];
        long.extend(std::iter::repeat_n(b'A', MAX_RECORD + 1));
        let pieces = d.push(&long);
        assert!(matches!(pieces.as_slice(), [Piece::Stray(_, why)] if why.contains("8 KiB")));
        assert_eq!(records(&d.push(b"\x02LA|\x03")), [b"LA|"]);
    }

    #[test]
    fn a_record_splits_into_type_and_fields() {
        let r = parse(b"GI|RN101|G#778812|GNSmith|GF|GTMr |", UTF_8).unwrap();
        assert_eq!(r.kind, "GI");
        assert_eq!(r.get("RN"), Some("101"));
        assert_eq!(r.get("G#"), Some("778812"));
        assert_eq!(r.get("GF"), None, "an empty field is no value");
        assert_eq!(r.get("GT"), Some("Mr"));
        assert_eq!(r.get("CS"), None);
        // No trailing `|`, and a record of its type alone.
        assert_eq!(parse(b"GO|RN101", UTF_8).unwrap().get("RN"), Some("101"));
        assert_eq!(parse(b"LE", UTF_8).unwrap().fields, []);
    }

    #[test]
    fn the_character_set_decides_the_text() {
        let r = parse(b"GI|RN1|GNM\xfcller|", WINDOWS_1252).unwrap();
        assert_eq!(r.get("GN"), Some("Müller"));
        let r = parse("GI|RN1|GNMüller|".as_bytes(), UTF_8).unwrap();
        assert_eq!(r.get("GN"), Some("Müller"));
        let e = parse(b"GI|RN1|GNM\xfcller|", UTF_8).unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
    }

    /// (the record, words of the error).
    #[test]
    fn malformed_records_say_why() {
        let cases: [(&[u8], &str); 4] = [
            (b"", "record type"),
            (b"G|RN1|", "record type"),
            (b"gi|RN1|", "record type"),
            (b"GI|R|", "field id"),
        ];
        for (bytes, words) in cases {
            let e = parse(bytes, UTF_8).unwrap_err();
            assert!(e.contains(words), "{bytes:?}: {e}");
        }
    }

    #[test]
    fn records_are_framed_in_the_character_set_and_escaped_for_logs() {
        assert_eq!(frame("GI|GNMüller|", WINDOWS_1252), b"\x02GI|GNM\xfcller|\x03");
        assert_eq!(
            escape(b"\x02GI|GNM\xfcller|\x03\r\n", WINDOWS_1252),
            "\\x02GI|GNMüller|\\x03\\x0D\\x0A"
        );
        let at = time::macros::datetime!(2026-03-04 09:05:07);
        assert_eq!(stamp(at), "DA260304|TI090507|");
    }
}
