//! Text for a person to read: cutting it without splitting a character (one rule for every
//! place that shows a prefix of something long: a statement in `logs`, a key in evidence, a
//! message line), the characters that must never reach a reader as they are, and the quoting
//! of a command to paste.

/// At most `max` bytes of `text`, ending on a character boundary.
pub fn clip_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// At most `max` characters of `text`.
pub fn clip_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Characters that change how text reads without being seen: C0 and C1 controls (ESC starts
/// ANSI sequences), bidirectional overrides, embeddings, isolates and marks, the line and
/// paragraph separators, zero-width characters and the byte-order mark.
pub fn is_hazard(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `arg` as one POSIX shell word, for every command we print for a person to paste: as it is
/// when it holds only characters no shell treats specially, else in single quotes (inside
/// which nothing is special), each `'` written as `'\''`.
pub fn shell_word(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_cut_on_a_character_boundary() {
        assert_eq!(clip_bytes("abc", 5), "abc");
        assert_eq!(clip_bytes("abc", 2), "ab");
        // "é" is two bytes: a cut inside it falls back to before it.
        assert_eq!(clip_bytes("aé", 2), "a");
        assert_eq!(clip_bytes("aé", 3), "aé");
        assert_eq!(clip_bytes("", 0), "");
    }

    #[test]
    fn characters_are_counted_not_bytes() {
        assert_eq!(clip_chars("héllo", 2), "hé");
        assert_eq!(clip_chars("héllo", 10), "héllo");
        assert_eq!(clip_chars("日本語", 1), "日");
        assert_eq!(clip_chars("abc", 0), "");
    }

    #[test]
    fn a_shell_word_pastes_as_exactly_itself() {
        assert_eq!(shell_word("20240101_init"), "20240101_init");
        assert_eq!(shell_word("$(touch x)"), "'$(touch x)'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
