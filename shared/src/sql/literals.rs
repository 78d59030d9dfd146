//! What a query may show of itself in a report: its literals replaced.

use super::{Flavor, TokenKind, split};

/// `query` with every string and number literal replaced by `?`, comments dropped, tokens
/// joined by single spaces, cut to 200 characters: what a blocker's query may show.
pub fn without_literals(query: &str) -> String {
    let mut out = String::new();
    for statement in split(query, Flavor::Postgres) {
        for token in statement.tokens() {
            let text = match token.kind {
                TokenKind::Str | TokenKind::Number => "?",
                _ => token.text,
            };
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(text);
            if out.chars().count() >= 200 {
                return crate::text::clip_chars(&out, 200).to_owned();
            }
        }
    }
    out.trim_end_matches(" ;").trim_end_matches(';').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_lose_their_literals() {
        assert_eq!(
            without_literals(
                "UPDATE \"User\" SET email = 'a@x' -- secret\n WHERE id = 42 AND t = $tag$x$tag$"
            ),
            "UPDATE \"User\" SET email = ? WHERE id = ? AND t = ?"
        );
        assert_eq!(without_literals(&"x ".repeat(300)).chars().count(), 200);
    }
}
