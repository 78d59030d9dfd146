//! Migration script checksums, computed and compared the way Prisma does.
//!
//! Prisma stores `sha256(script)` as lowercase, zero-padded hex (64 characters). When it compares a
//! script with a stored checksum it tolerates CRLF/LF differences, and rows written by an old engine
//! hold hex without zero padding (prisma-engines#1887).

use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Length of a checksum rendered the current way.
const CHECKSUM_LEN: usize = 64;

/// Lowercase, zero-padded sha256 hex of `bytes` (always 64 characters).
pub fn sha256_hex(bytes: &[u8]) -> String {
    render(&Sha256::digest(bytes), true)
}

/// Whether `script` matches the `stored` checksum, as Prisma's `script_matches_checksum` decides.
///
/// The candidates are the checksums of the script as is, with CRLF turned into LF, and with LF
/// turned into CRLF. A `stored` value that is non-empty and not 64 characters long is a legacy
/// checksum, so the candidates are then rendered without zero padding.
pub fn script_matches_checksum(script: &str, stored: &str) -> bool {
    let padded = stored.is_empty() || stored.len() == CHECKSUM_LEN;
    let matches = |text: &str| render(&Sha256::digest(text.as_bytes()), padded) == stored;
    matches(script)
        || matches(&script.replace("\r\n", "\n"))
        || matches(&script.replace('\n', "\r\n"))
}

/// Hex of `digest`, each byte as two digits (`padded`) or as `{:x}` (legacy).
fn render(digest: &[u8], padded: bool) -> String {
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = if padded {
            write!(out, "{byte:02x}")
        } else {
            write!(out, "{byte:x}")
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    /// Legacy rendering of `text`'s checksum, written out independently of `render`.
    fn unpadded(text: &str) -> String {
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:x}"))
            .collect()
    }

    #[test]
    fn hello_test_vector() {
        assert_eq!(sha256_hex(b"hello"), HELLO);
    }

    #[test]
    fn always_64_lowercase_chars() {
        for text in ["", "a", "abcd", "SELECT 1;"] {
            let hex = sha256_hex(text.as_bytes());
            assert_eq!(hex.len(), 64);
            assert!(
                hex.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            );
        }
    }

    #[test]
    fn exact_script_matches() {
        assert!(script_matches_checksum("hello", HELLO));
    }

    #[test]
    fn different_script_does_not_match() {
        assert!(!script_matches_checksum("abc", &sha256_hex(b"abcd")));
        assert!(!script_matches_checksum("abc\n", &sha256_hex(b"abc")));
    }

    #[test]
    fn crlf_script_matches_lf_checksum() {
        let stored = sha256_hex(b"a;\nb;\n");
        assert!(script_matches_checksum("a;\r\nb;\r\n", &stored));
    }

    #[test]
    fn lf_script_matches_crlf_checksum() {
        let stored = sha256_hex(b"a;\r\nb;\r\n");
        assert!(script_matches_checksum("a;\nb;\n", &stored));
    }

    #[test]
    fn lone_cr_is_not_normalised() {
        let stored = sha256_hex(b"a;\nb;");
        assert!(!script_matches_checksum("a;\rb;", &stored));
    }

    #[test]
    fn mixed_line_endings_match_only_the_lf_form() {
        // Prisma turns every `\n` into `\r\n`, so an existing `\r\n` becomes `\r\r\n`.
        let script = "ab\ncd\r\nef";
        assert!(script_matches_checksum(script, &sha256_hex(b"ab\ncd\nef")));
        assert!(!script_matches_checksum(
            script,
            &sha256_hex(b"ab\r\ncd\r\nef")
        ));
        assert!(script_matches_checksum(
            script,
            &sha256_hex(b"ab\r\ncd\r\r\nef")
        ));
    }

    #[test]
    fn legacy_unpadded_checksum_matches() {
        // Find a script whose digest has a byte below 0x10, so the legacy form is shorter.
        let script = (0..)
            .map(|i| format!("SELECT {i};"))
            .find(|s| unpadded(s).len() != 64)
            .unwrap();
        let legacy = unpadded(&script);
        assert!(legacy.len() < 64);
        assert!(script_matches_checksum(&script, &legacy));
        assert!(script_matches_checksum(
            &script.replace('\n', "\r\n"),
            &legacy
        ));
        assert!(!script_matches_checksum("something else", &legacy));
    }

    #[test]
    fn legacy_crlf_candidates_are_unpadded_too() {
        let script = (0..)
            .map(|i| format!("SELECT {i};\n"))
            .find(|s| unpadded(&s.replace('\n', "\r\n")).len() != 64)
            .unwrap();
        let legacy_crlf = unpadded(&script.replace('\n', "\r\n"));
        assert!(script_matches_checksum(&script, &legacy_crlf));
    }

    #[test]
    fn padded_form_is_used_for_64_char_checksums() {
        // A 64-char stored value is compared with the padded form only.
        let script = (0..)
            .map(|i| format!("SELECT {i};"))
            .find(|s| unpadded(s).len() != 64)
            .unwrap();
        assert!(script_matches_checksum(
            &script,
            &sha256_hex(script.as_bytes())
        ));
    }

    #[test]
    fn empty_stored_checksum_never_matches() {
        assert!(!script_matches_checksum("", ""));
        assert!(!script_matches_checksum("x", ""));
    }
}
