//! The order in which Prisma lists migration folders.
//!
//! Prisma ≥ 6.6 sorts folder names with JavaScript's `a.localeCompare(b)`, which is ICU collation
//! with the root locale. Prisma < 6.6 sorted by bytes. Both agree on the standard
//! `YYYYMMDDHHMMSS_name` names; they differ on case and punctuation (`a` < `B`, `_` < digits).
//!
//! [`prisma_cmp`] follows ICU. It is an approximation of the root collation that is exact enough for
//! ASCII names:
//!
//! - **Primary level**: characters are compared case-insensitively by class, whitespace <
//!   punctuation and symbols < digits < letters. Within whitespace the order is tab, LF, VT, FF, CR,
//!   space; punctuation and symbols follow ICU's root order
//!   `_ - , ; : ! ? . ' " ( ) [ ] { } @ * / \ & # % ` ^ + < = > | ~ $`; digits and letters are in
//!   their natural order. Other ASCII control characters are ignored, as in ICU.
//! - Characters outside ASCII are compared by code point and sort after all ASCII characters. ICU
//!   would interleave them with ASCII (`é` next to `e`); that is not reproduced.
//! - **Tertiary level**, when the primary keys are equal: the first position where the case differs
//!   decides, lowercase before uppercase.
//! - **Tie-break**: byte order, so that the order is total and only equal strings compare equal.

//!
//! Names are compared byte for byte, as Prisma does; [`nfc`] and [`spelled_out`] serve to find
//! and show names that differ only by Unicode normalisation (NFC vs NFD), which look the same.

use std::cmp::Ordering;

use unicode_normalization::{UnicodeNormalization, is_nfc, is_nfd};

/// ICU root order of ASCII punctuation and symbols.
const PUNCTUATION: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";

/// ICU root order of ASCII whitespace.
const WHITESPACE: &str = "\t\n\u{b}\u{c}\r ";

/// Compare two migration folder names the way Prisma ≥ 6.6 sorts them (see the module doc).
pub fn prisma_cmp(a: &str, b: &str) -> Ordering {
    primary_keys(a)
        .cmp(primary_keys(b))
        .then_with(|| tertiary_keys(a).cmp(tertiary_keys(b)))
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Primary weights of the characters that are not ignored.
fn primary_keys(s: &str) -> impl Iterator<Item = u32> + '_ {
    s.chars().filter_map(primary_weight)
}

/// Case of the characters that are not ignored: `false` for lowercase (and caseless), `true` for
/// uppercase.
fn tertiary_keys(s: &str) -> impl Iterator<Item = bool> + '_ {
    s.chars()
        .filter(|c| primary_weight(*c).is_some())
        .map(|c| c.is_ascii_uppercase())
}

/// The primary weight of `c`, or `None` when the collation ignores it.
fn primary_weight(c: char) -> Option<u32> {
    const WHITESPACE_BASE: u32 = 0x100;
    const PUNCTUATION_BASE: u32 = 0x200;
    const DIGIT_BASE: u32 = 0x300;
    const LETTER_BASE: u32 = 0x400;
    const OTHER_BASE: u32 = 0x1000;

    if !c.is_ascii() {
        return Some(OTHER_BASE + u32::from(c));
    }
    let position = |set: &str| set.chars().position(|s| s == c).map(index_u32);
    if let Some(i) = position(WHITESPACE) {
        Some(WHITESPACE_BASE + i)
    } else if let Some(i) = position(PUNCTUATION) {
        Some(PUNCTUATION_BASE + i)
    } else if c.is_ascii_digit() {
        Some(DIGIT_BASE + u32::from(c) - u32::from('0'))
    } else if c.is_ascii_alphabetic() {
        Some(LETTER_BASE + u32::from(c.to_ascii_lowercase()) - u32::from('a'))
    } else {
        // The remaining ASCII characters are control characters.
        None
    }
}

/// An index into one of the short character tables above as `u32`.
fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// `name` in Unicode Normalization Form C.
pub fn nfc(name: &str) -> String {
    name.nfc().collect()
}

/// A name as a person can tell it from its twin: non-ASCII characters as code points, with the
/// form it is in (`caf\u{e9}` (NFC), `cafe\u{301}` (NFD)).
pub fn spelled_out(name: &str) -> String {
    let spelled: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{{{:x}}}", u32::from(c))
            }
        })
        .collect();
    let form = if is_nfc(name) {
        "NFC"
    } else if is_nfd(name) {
        "NFD"
    } else {
        "neither NFC nor NFD"
    };
    format!("`{spelled}` ({form})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        v.sort_by(|a, b| prisma_cmp(a, b));
        v
    }

    #[test]
    fn standard_names_sort_by_timestamp() {
        let names = [
            "20240301000000_c",
            "20231231235959_z",
            "20240101000000_init",
            "20240101000001_Add_users",
        ];
        assert_eq!(
            sorted(&names),
            [
                "20231231235959_z",
                "20240101000000_init",
                "20240101000001_Add_users",
                "20240301000000_c"
            ]
        );
    }

    #[test]
    fn standard_names_agree_with_byte_order() {
        let names = [
            "20240101000000_init",
            "20240101000000_init_2",
            "20240102000000_add",
            "20230101000000_a",
        ];
        let mut bytes: Vec<&str> = names.to_vec();
        bytes.sort();
        assert_eq!(sorted(&names), bytes);
    }

    #[test]
    fn lowercase_a_before_uppercase_b() {
        assert_eq!(prisma_cmp("a", "B"), Ordering::Less);
        assert_eq!(prisma_cmp("B", "a"), Ordering::Greater);
        // Byte order says the opposite.
        assert!("B" < "a");
    }

    #[test]
    fn lowercase_before_uppercase_of_the_same_letter() {
        assert_eq!(prisma_cmp("a", "A"), Ordering::Less);
        assert_eq!(prisma_cmp("ab", "Ab"), Ordering::Less);
        assert_eq!(prisma_cmp("aB", "Ab"), Ordering::Less);
    }

    #[test]
    fn primary_difference_beats_case() {
        assert_eq!(prisma_cmp("Ab", "ac"), Ordering::Less);
    }

    #[test]
    fn underscore_before_digits_before_letters() {
        assert_eq!(prisma_cmp("_", "0"), Ordering::Less);
        assert_eq!(prisma_cmp("9", "a"), Ordering::Less);
        assert_eq!(prisma_cmp("_", "A"), Ordering::Less);
        assert_eq!(sorted(&["b", "1", "_", "A"]), ["_", "1", "A", "b"]);
    }

    #[test]
    fn whitespace_before_punctuation() {
        assert_eq!(prisma_cmp(" ", "_"), Ordering::Less);
        assert_eq!(prisma_cmp("\t", " "), Ordering::Less);
    }

    #[test]
    fn punctuation_follows_icu_order() {
        let shuffled = ["$", "~", "-", "_", ".", "+", "@"];
        assert_eq!(sorted(&shuffled), ["_", "-", ".", "@", "+", "~", "$"]);
    }

    #[test]
    fn prefix_sorts_first() {
        assert_eq!(prisma_cmp("init", "init_2"), Ordering::Less);
        assert_eq!(prisma_cmp("", "a"), Ordering::Less);
    }

    #[test]
    fn non_ascii_after_ascii_by_code_point() {
        assert_eq!(prisma_cmp("z", "é"), Ordering::Less);
        assert_eq!(prisma_cmp("é", "ü"), Ordering::Less);
    }

    #[test]
    fn control_characters_are_ignored_then_bytes_break_the_tie() {
        assert_eq!(prisma_cmp("a\u{1}b", "ab"), Ordering::Less);
        assert_eq!(prisma_cmp("a\u{1}c", "ab"), Ordering::Greater);
    }

    #[test]
    fn only_equal_strings_compare_equal() {
        assert_eq!(prisma_cmp("x", "x"), Ordering::Equal);
        assert_ne!(prisma_cmp("a\u{1}", "a"), Ordering::Equal);
    }
}

#[cfg(test)]
mod normalisation_tests {
    use super::*;

    #[test]
    fn nfc_joins_what_nfd_splits() {
        assert_eq!(nfc("cafe\u{301}"), "caf\u{e9}");
        assert_eq!(nfc("caf\u{e9}"), "caf\u{e9}");
        assert_ne!("cafe\u{301}", "caf\u{e9}");
    }

    #[test]
    fn spelled_out_tells_the_twins_apart() {
        assert_eq!(spelled_out("1_caf\u{e9}"), "`1_caf\\u{e9}` (NFC)");
        assert_eq!(spelled_out("1_cafe\u{301}"), "`1_cafe\\u{301}` (NFD)");
        assert_eq!(spelled_out("1_init"), "`1_init` (NFC)");
    }
}
