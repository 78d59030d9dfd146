//! Outside text made safe for the medium it lands in — the one place that decides how.
//!
//! Outside text is anything the function did not write itself: S3 keys, migration names,
//! a payload's `by` and `accept`, database messages, the keys of an unrecognised event.
//! [`plain`] is for the terminal and e-mail (no escape sequence, no invisible reordering);
//! [`code`], [`block`], [`prose`] and [`with_code`] are for Slack's mrkdwn (AWS Chatbot), where
//! `<…>` is a link or a mention, `&` an entity, and `*_~` and backticks are formatting.

/// The one rule of which characters must not reach a reader as they are (shared with the
/// payload's validation of `by` and `accept`).
pub use migrator_engine::text::is_hazard;

/// `c` as the reader should see it: `\u{1b}` for a hazard, else itself.
fn visible(c: char, out: &mut String) {
    if is_hazard(c) {
        out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
    } else {
        out.push(c);
    }
}

/// For the terminal and e-mail: every hazard but the line feed and the tab shown as `\u{…}`.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c => visible(c, &mut out),
        }
    }
    out
}

/// Slack: the three characters mrkdwn reads as markup everywhere (`<` opens a link or a
/// mention, `&` an entity).
fn entity(c: char, out: &mut String) -> bool {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        _ => return false,
    }
    true
}

/// A backtick cannot be escaped in mrkdwn: it shows as `ˋ` (U+02CB) so that it can never
/// open or close a code span.
const BACKTICK: char = '\u{02CB}';

fn code_text(text: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if entity(c, &mut out) {
            continue;
        }
        match c {
            '`' => out.push(BACKTICK),
            '\n' if keep_newlines => out.push('\n'),
            c => visible(c, &mut out),
        }
    }
    out
}

/// Slack: `text` as an inline code span (formatting is inert inside one).
pub fn code(text: &str) -> String {
    format!("`{}`", code_text(text, false))
}

/// Slack: `text` as a code block (its lines kept).
pub fn block(text: &str) -> String {
    format!("```{}```", code_text(text, true))
}

/// Slack: `text` as running text. Besides the entities and the backtick, `*`, `_` and `~`
/// show as `∗`, `＿` and `∼` where they could open or close formatting (anywhere but between
/// two letters or digits, so `20240101_users` stays as it is), and `@channel`, `@here` and
/// `@everyone` lose their `@` to `＠`.
pub fn prose(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        if entity(c, &mut out) {
            continue;
        }
        let inside_word = || {
            i > 0
                && chars[i - 1].is_alphanumeric()
                && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())
        };
        match c {
            '`' => out.push(BACKTICK),
            '*' if !inside_word() => out.push('\u{2217}'),
            '_' if !inside_word() => out.push('\u{FF3F}'),
            '~' if !inside_word() => out.push('\u{223C}'),
            '@' if is_broadcast(&chars[i + 1..]) => out.push('\u{FF20}'),
            c => visible(c, &mut out),
        }
    }
    out
}

fn is_broadcast(after: &[char]) -> bool {
    let word: String = after
        .iter()
        .take_while(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    matches!(word.as_str(), "channel" | "here" | "everyone")
}

/// Slack: our own sentence with `code` spans in backticks (a hint, the next step), whose
/// spans may hold outside text. Backticks pair left to right, as Slack pairs them; what lies
/// between a pair is escaped as [`code`], the rest as [`prose`], an unpaired backtick shows as
/// `ˋ`. Whatever the outside text held, the result's only backticks are the pairs.
pub fn with_code(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    let paired = if parts.len() % 2 == 1 {
        parts.len()
    } else {
        parts.len() - 1
    };
    let mut out = String::with_capacity(text.len());
    for (i, part) in parts.iter().enumerate() {
        if i >= paired {
            out.push(BACKTICK);
            out.push_str(&prose(part));
        } else if i % 2 == 1 {
            out.push_str(&code(part));
        } else {
            out.push_str(&prose(part));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the adversarial pass sent, in every field it could reach.
    pub const HOSTILE: [&str; 9] = [
        "<!channel>",
        "<https://evil.example|click>",
        "*bold* _it_ ~gone~",
        "x```\n*out*```y",
        "a`b",
        "\u{1b}[31mred\u{1b}[0m",
        "abc\u{202E}gpj.exe",
        "one\u{2028}two",
        "zero\u{200B}width @here @Channel",
    ];

    fn no_hazard(text: &str) -> bool {
        !text.chars().any(|c| is_hazard(c) && c != '\n')
    }

    #[test]
    fn plain_text_shows_every_hazard_and_keeps_lines() {
        assert_eq!(plain("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(plain("abc\u{202E}x"), "abc\\u{202e}x");
        assert_eq!(plain("a\nb\tc\u{2028}d"), "a\nb\tc\\u{2028}d");
        for text in HOSTILE {
            assert!(no_hazard(&plain(text)), "{text:?}");
        }
    }

    #[test]
    fn a_code_span_cannot_be_left_or_turned_into_a_link() {
        assert_eq!(code("<!channel>"), "`&lt;!channel&gt;`");
        assert_eq!(code("a`b"), "`aˋb`");
        assert_eq!(code("x```y"), "`xˋˋˋy`");
        assert_eq!(code("a\nb"), "`a\\u{a}b`");
        assert_eq!(block("a```\nb"), "```aˋˋˋ\nb```");
        for text in HOSTILE {
            for out in [code(text), block(text)] {
                let inner = out.trim_matches('`');
                assert!(!inner.contains('`') && !inner.contains('<'), "{out}");
                assert!(no_hazard(&out), "{out:?}");
            }
        }
    }

    #[test]
    fn prose_has_no_markup_but_keeps_names_readable() {
        assert_eq!(prose("*bold*"), "∗bold∗");
        assert_eq!(prose("_it_ ~x~"), "＿it＿ ∼x∼");
        assert_eq!(prose("20240101_users a*b"), "20240101_users a*b");
        assert_eq!(
            prose("<https://evil|click> & more"),
            "&lt;https://evil|click&gt; &amp; more"
        );
        assert_eq!(
            prose("@here @Everyone alice@example.com"),
            "＠here ＠Everyone alice@example.com"
        );
        for text in HOSTILE {
            let out = prose(text);
            assert!(!out.contains(['`', '<', '>']), "{out}");
            assert!(no_hazard(&out), "{out:?}");
            for mark in ['*', '_', '~'] {
                for (i, _) in out.match_indices(mark) {
                    let before = out[..i].chars().next_back();
                    let after = out[i + 1..].chars().next();
                    assert!(
                        before.is_some_and(char::is_alphanumeric)
                            && after.is_some_and(char::is_alphanumeric),
                        "{out}"
                    );
                }
            }
        }
    }

    #[test]
    fn our_code_spans_survive_and_outside_backticks_cannot_pair() {
        assert_eq!(
            with_code("run `migrator invoke --object 'a b'` now"),
            "run `migrator invoke --object 'a b'` now"
        );
        assert_eq!(
            with_code("run `x <!channel>` *now*"),
            "run `x &lt;!channel&gt;` ∗now∗"
        );
        for text in HOSTILE {
            let out = with_code(&format!("see `{text}` and {text}"));
            assert_eq!(out.matches('`').count() % 2, 0, "{out}");
            assert!(!out.contains('<') && no_hazard(&out), "{out:?}");
        }
    }
}
