//! The signature of kandy-api.md ("Signing"): the seven-line string to sign, HMAC-SHA256
//! over it, and the nonces. Pure but for `new_nonce`, which draws from a CSPRNG.
//!
//! The simulator verifies with these same functions; the test vectors of the spec below
//! pin them, so a shared mistake cannot hide.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::config::HmacMode;

/// What the signature covers: the request as it goes on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// Upper case, as on the request line.
    pub method: &'a str,
    /// The path and query exactly as on the request line, base path included.
    pub path_and_query: &'a str,
    pub user_id: &'a str,
    pub group_id: &'a str,
    pub timestamp: &'a str,
    /// The empty string when nonces are off.
    pub nonce: &'a str,
    /// The exact body bytes sent; empty when there is no body.
    pub body: &'a [u8],
}

/// The seven lines joined by `\n`, without a trailing newline.
pub fn string_to_sign(s: &Signed<'_>) -> String {
    [
        s.method,
        s.path_and_query,
        s.user_id,
        s.group_id,
        s.timestamp,
        s.nonce,
        &sha256_hex(s.body),
    ]
    .join("\n")
}

/// Lowercase hex of HMAC-SHA256 of the string to sign, keyed with `key`'s UTF-8 bytes.
pub fn hmac_hex(key: &str, s: &Signed<'_>) -> String {
    hex(&mac(key, s).finalize().into_bytes())
}

/// The `X-HMAC` value for `mode`: the signature, or with `static` the key itself.
pub fn x_hmac(mode: HmacMode, key: &str, s: &Signed<'_>) -> String {
    match mode {
        HmacMode::Sign => hmac_hex(key, s),
        HmacMode::Static => key.to_string(),
    }
}

/// Whether `presented` is the right `X-HMAC` for the request; compared in constant time.
pub fn verify(mode: HmacMode, key: &str, s: &Signed<'_>, presented: &str) -> bool {
    match mode {
        HmacMode::Sign => match unhex(presented) {
            Some(tag) => mac(key, s).verify_slice(&tag).is_ok(),
            None => false,
        },
        HmacMode::Static => {
            let (a, b) = (key.as_bytes(), presented.as_bytes());
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        }
    }
}

fn mac(key: &str, s: &Signed<'_>) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so this cannot fail; an empty MAC is never sent
    // because the caller only signs when a key is configured.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(string_to_sign(s).as_bytes());
    mac
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// 32 lowercase hex characters from 16 bytes of the thread's CSPRNG (ChaCha, seeded and
/// reseeded from the operating system). Called once per attempt: a resend never reuses one.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes[..]);
    hex(&bytes)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector<'a>(method: &'a str, path: &'a str, nonce: &'a str, body: &'a [u8]) -> Signed<'a> {
        Signed {
            method,
            path_and_query: path,
            user_id: "duvoice",
            group_id: "hotel-42",
            timestamp: "1767225600",
            nonce,
            body,
        }
    }

    #[test]
    fn the_first_test_vector_of_the_spec() {
        let s = vector(
            "PUT",
            "/api/v1/groups/hotel-42/users/1001/name",
            "000102030405060708090a0b0c0d0e0f",
            br#"{"firstName":"John","lastName":"Smith"}"#,
        );
        let want = "490fc4c3c02d39506b86a499ecf84054d1afb4e757ee9f8c28bc1e685cde9f00";
        assert_eq!(hmac_hex("s3cret", &s), want);
        assert!(verify(HmacMode::Sign, "s3cret", &s, want));
    }

    #[test]
    fn the_second_test_vector_of_the_spec() {
        let s = vector("GET", "/api/v1/groups/hotel-42/users?page=1&pageSize=200", "", b"");
        assert_eq!(
            hmac_hex("s3cret", &s),
            "f0b61b14af4b7883f9bddae79a1e80f7c9ffa91f423af0e28c5c971cea62cbbc"
        );
        // Seven lines, the nonce line empty, the empty body's hash last, no trailing newline.
        let text = string_to_sign(&s);
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[5], "");
        assert_eq!(
            lines[6],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_wrong_key_body_or_signature_does_not_verify() {
        let s = vector("GET", "/x", "", b"");
        let good = hmac_hex("k", &s);
        assert!(!verify(HmacMode::Sign, "other", &s, &good));
        assert!(!verify(HmacMode::Sign, "k", &vector("GET", "/x", "", b"{}"), &good));
        assert!(!verify(HmacMode::Sign, "k", &s, "zz"));
        assert!(!verify(HmacMode::Sign, "k", &s, ""));
    }

    #[test]
    fn static_mode_sends_and_checks_the_key_itself() {
        let s = vector("GET", "/x", "", b"");
        assert_eq!(x_hmac(HmacMode::Static, "k3y", &s), "k3y");
        assert!(verify(HmacMode::Static, "k3y", &s, "k3y"));
        assert!(!verify(HmacMode::Static, "k3y", &s, "k3z"));
    }

    #[test]
    fn nonces_are_32_lowercase_hex_characters_and_differ() {
        let a = new_nonce();
        let b = new_nonce();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a, b);
    }
}
