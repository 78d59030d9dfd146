//! The `provider` of the first `datasource` block of a `schema.prisma`.
//!
//! A small tokenizer, not a full Prisma schema parser: `//` comments are skipped, strings are
//! `"..."` with `\` escapes, and the first `datasource <name> { ... }` block at the top level is
//! searched for `provider = "<value>"`.

/// What the schema says about the datasource provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Provider {
    /// `provider = "postgresql"`.
    Literal(String),
    /// `provider = env("X")` or anything else that is not a string.
    NotLiteral,
    /// The datasource block has no `provider`.
    Missing,
    /// There is no datasource block.
    NoDatasource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Str(String),
    Punct(char),
}

/// Find the datasource provider in the text of a `schema.prisma`.
pub(super) fn datasource_provider(text: &str) -> Provider {
    let tokens = tokenize(text);
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => depth = depth.saturating_sub(1),
            Token::Word("datasource")
                if depth == 0
                    && matches!(tokens.get(i + 1), Some(Token::Word(_)))
                    && tokens.get(i + 2) == Some(&Token::Punct('{')) =>
            {
                return provider_in_block(&tokens[i + 3..]);
            }
            _ => {}
        }
        i += 1;
    }
    Provider::NoDatasource
}

/// Look for `provider = ...` at the top level of a block whose `{` was just consumed.
fn provider_in_block(tokens: &[Token<'_>]) -> Provider {
    let mut depth = 1usize;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Token::Word("provider")
                if depth == 1 && tokens.get(i + 1) == Some(&Token::Punct('=')) =>
            {
                return match tokens.get(i + 2) {
                    Some(Token::Str(value)) => Provider::Literal(value.clone()),
                    _ => Provider::NotLiteral,
                };
            }
            _ => {}
        }
    }
    Provider::Missing
}

fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c == '/' && chars.peek().is_some_and(|&(_, next)| next == '/') {
            // A comment runs to the end of the line.
            for (_, c) in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
        } else if c == '"' {
            let mut value = String::new();
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' | '\n' => break,
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    _ => value.push(c),
                }
            }
            tokens.push(Token::Str(value));
        } else if is_word_char(c) {
            let mut end = start + c.len_utf8();
            while let Some(&(i, c)) = chars.peek() {
                if !is_word_char(c) {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            tokens.push(Token::Word(&text[start..end]));
        } else {
            tokens.push(Token::Punct(c));
        }
    }
    tokens
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(s: &str) -> Provider {
        Provider::Literal(s.to_owned())
    }

    #[test]
    fn usual_schema() {
        let text = r#"
generator client {
  provider = "prisma-client-js"
}

datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}
"#;
        assert_eq!(datasource_provider(text), literal("postgresql"));
    }

    #[test]
    fn comments_are_skipped() {
        let text = "// datasource x { provider = \"mysql\" }\ndatasource db {\n  // provider = \"sqlite\"\n  provider = \"postgresql\" // the real one\n}\n";
        assert_eq!(datasource_provider(text), literal("postgresql"));
    }

    #[test]
    fn brace_on_the_same_line_and_compact_spacing() {
        assert_eq!(
            datasource_provider("datasource db{provider=\"sqlite\"}"),
            literal("sqlite")
        );
    }

    #[test]
    fn env_provider_is_not_literal() {
        let text = "datasource db {\n  provider = env(\"PROVIDER\")\n}\n";
        assert_eq!(datasource_provider(text), Provider::NotLiteral);
    }

    #[test]
    fn missing_provider() {
        let text = "datasource db {\n  url = env(\"DATABASE_URL\")\n}\n";
        assert_eq!(datasource_provider(text), Provider::Missing);
    }

    #[test]
    fn no_datasource() {
        let text = "generator client {\n  provider = \"prisma-client-js\"\n}\n";
        assert_eq!(datasource_provider(text), Provider::NoDatasource);
    }

    #[test]
    fn first_datasource_block_wins() {
        let text =
            "datasource a {\n provider = \"mysql\"\n}\ndatasource b {\n provider = \"sqlite\"\n}\n";
        assert_eq!(datasource_provider(text), literal("mysql"));
    }

    #[test]
    fn datasource_word_inside_a_model_is_not_a_block() {
        let text =
            "model M {\n  datasource String\n}\ndatasource db {\n provider = \"cockroachdb\"\n}\n";
        assert_eq!(datasource_provider(text), literal("cockroachdb"));
    }

    #[test]
    fn provider_inside_a_nested_block_is_skipped() {
        let text = "datasource db {\n  extensions = [x]\n  nested { provider = \"no\" }\n  provider = \"postgresql\"\n}\n";
        assert_eq!(datasource_provider(text), literal("postgresql"));
    }

    #[test]
    fn crlf_schema() {
        let text = "datasource db {\r\n  provider = \"mysql\"\r\n}\r\n";
        assert_eq!(datasource_provider(text), literal("mysql"));
    }
}
