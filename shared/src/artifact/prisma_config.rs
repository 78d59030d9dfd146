//! What a project's `prisma.config.ts` (Prisma 7's configuration file) says about where the
//! migrations are and which environment variable holds the database URL.
//!
//! The file is TypeScript, which we do not run. We read the two settings only where they are
//! plain literals — `migrations: { path: "prisma/migrations" }`, `schema: "prisma/schema.prisma"`
//! and `datasource: { url: env("DATABASE_URL") }` (also `process.env.NAME` or a string) — and
//! report anything else as an [`Setting::Expression`] with its text, so that the caller can say
//! clearly that it was not understood instead of guessing.

/// One setting of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting<T> {
    /// The file does not set it.
    Absent,
    /// A value we can read without running the file.
    Value(T),
    /// Set by code we do not evaluate: the expression's text, trimmed.
    Expression(String),
}

impl<T> Setting<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Setting::Value(v) => Some(v),
            _ => None,
        }
    }
}

/// Where the datasource URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// `env("NAME")`, `process.env.NAME`, `process.env["NAME"]`.
    Env(String),
    /// A string literal (the URL itself).
    Literal(String),
}

/// The settings we read from `prisma.config.ts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrismaConfig {
    /// `migrations.path`.
    pub migrations_path: Setting<String>,
    /// `schema`: the schema file or folder (Prisma puts `migrations/` beside it by default).
    pub schema: Setting<String>,
    /// `datasource.url`.
    pub url: Setting<UrlSource>,
}

impl PrismaConfig {
    /// Reads the settings from the file's text. Never fails: what cannot be read is
    /// [`Setting::Expression`] or [`Setting::Absent`].
    pub fn parse(text: &str) -> PrismaConfig {
        let tokens = tokenize(text);
        let migrations_path = match object_value(&tokens, &["migrations", "path"]) {
            None => Setting::Absent,
            Some(value) => string_setting(value),
        };
        let schema = match object_value(&tokens, &["schema"]) {
            None => Setting::Absent,
            Some(value) => string_setting(value),
        };
        let url = match object_value(&tokens, &["datasource", "url"]) {
            None => Setting::Absent,
            Some(value) => url_setting(value),
        };
        PrismaConfig {
            migrations_path,
            schema,
            url,
        }
    }

    /// The migrations folder the file names, relative to the file's folder: `migrations.path`,
    /// else `migrations/` beside `schema` (a `.prisma` file's folder, or the schema folder),
    /// as Prisma does. `Absent` when the file names neither.
    pub fn migrations_folder(&self) -> Setting<String> {
        match &self.migrations_path {
            Setting::Absent => {}
            other => return other.clone(),
        }
        match &self.schema {
            Setting::Absent => Setting::Absent,
            Setting::Expression(text) => Setting::Expression(text.clone()),
            Setting::Value(schema) => {
                let schema = schema.trim_end_matches('/');
                let folder = if schema.ends_with(".prisma") {
                    match schema.rfind('/') {
                        Some(i) => &schema[..i],
                        None => ".",
                    }
                } else {
                    schema
                };
                Setting::Value(format!("{folder}/migrations"))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Str(String),
    /// A template literal with `${…}` in it: not a plain string.
    Template(String),
    Punct(char),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Str(s) => format!("{s:?}"),
            Token::Template(s) => format!("`{s}`"),
            Token::Punct(c) => c.to_string(),
        }
    }
}

/// The tokens of `text`, comments dropped. Numbers and operators are punctuation or
/// identifiers; that is enough to find keys and tell a literal from an expression.
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '"' || c == '\'' || c == '`' {
            let mut value = String::new();
            let mut interpolated = false;
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    value.push(match chars[i] {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    if c == '`' && chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
                        interpolated = true;
                    }
                    value.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            tokens.push(if interpolated {
                Token::Template(value)
            } else {
                Token::Str(value)
            });
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            tokens.push(Token::Punct(c));
            i += 1;
        }
    }
    tokens
}

/// Whether `token` is the object key `name` (an identifier or a quoted key).
fn is_key(token: &Token, name: &str) -> bool {
    matches!(token, Token::Ident(s) | Token::Str(s) if s == name)
}

/// The value tokens of the first `path[0]: { path[1]: … }` in `tokens` (any depth), up to
/// the `,` or closing bracket that ends it.
fn object_value<'t>(tokens: &'t [Token], path: &[&str]) -> Option<&'t [Token]> {
    let (first, rest) = path.split_first()?;
    let mut i = 0;
    while i + 1 < tokens.len() {
        if is_key(&tokens[i], first) && tokens[i + 1] == Token::Punct(':') {
            // Only a key: not `env.migrations:` in a ternary (`a ? migrations : b` is rare in
            // a config, and the previous token of a key is `{` or `,`).
            let is_object_key = i == 0 || matches!(tokens[i - 1], Token::Punct('{' | ','));
            if is_object_key {
                let value = value_span(&tokens[i + 2..]);
                if rest.is_empty() {
                    return Some(value);
                }
                return object_value_at_depth0(inside_braces(value)?, rest);
            }
        }
        i += 1;
    }
    None
}

/// Like [`object_value`], but only keys directly in this object (depth 0 of `tokens`).
fn object_value_at_depth0<'t>(tokens: &'t [Token], path: &[&str]) -> Option<&'t [Token]> {
    let (first, rest) = path.split_first()?;
    let mut depth = 0usize;
    for i in 0..tokens.len() {
        match tokens[i] {
            Token::Punct('{' | '(' | '[') => depth += 1,
            Token::Punct('}' | ')' | ']') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0
            && is_key(&tokens[i], first)
            && tokens.get(i + 1) == Some(&Token::Punct(':'))
            && (i == 0 || tokens[i - 1] == Token::Punct(','))
        {
            let value = value_span(&tokens[i + 2..]);
            if rest.is_empty() {
                return Some(value);
            }
            return object_value_at_depth0(inside_braces(value)?, rest);
        }
    }
    None
}

/// The tokens of one value: up to the `,` or closing bracket that ends it at its own depth
/// (an object value keeps its braces).
fn value_span(tokens: &[Token]) -> &[Token] {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Punct('{' | '(' | '[') => depth += 1,
            Token::Punct('}' | ')' | ']') => {
                if depth == 0 {
                    return &tokens[..i];
                }
                depth -= 1;
            }
            Token::Punct(',') if depth == 0 => return &tokens[..i],
            _ => {}
        }
    }
    tokens
}

/// The inside of an object value `{ … }`, or `None` for any other value.
fn inside_braces(value: &[Token]) -> Option<&[Token]> {
    match value {
        [Token::Punct('{'), inner @ .., Token::Punct('}')] => Some(inner),
        _ => None,
    }
}

fn expression(value: &[Token]) -> String {
    let text: Vec<String> = value.iter().map(Token::text).collect();
    text.join(" ")
        .replace(" . ", ".")
        .replace(" , ", ", ")
        .replace(" ( ", "(")
        .replace(" )", ")")
        .replace("( ", "(")
}

fn string_setting(value: &[Token]) -> Setting<String> {
    match value {
        [Token::Str(s)] => Setting::Value(s.clone()),
        _ => Setting::Expression(expression(value)),
    }
}

fn url_setting(value: &[Token]) -> Setting<UrlSource> {
    use Token::{Ident, Punct, Str};
    match value {
        [Str(url)] => Setting::Value(UrlSource::Literal(url.clone())),
        [Ident(f), Punct('('), Str(name), Punct(')')] if f == "env" => {
            Setting::Value(UrlSource::Env(name.clone()))
        }
        [Ident(p), Punct('.'), Ident(e), Punct('.'), Ident(name)]
            if p == "process" && e == "env" =>
        {
            Setting::Value(UrlSource::Env(name.clone()))
        }
        [
            Ident(p),
            Punct('.'),
            Ident(e),
            Punct('['),
            Str(name),
            Punct(']'),
        ] if p == "process" && e == "env" => Setting::Value(UrlSource::Env(name.clone())),
        _ => Setting::Expression(expression(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prismas_own_template_is_read() {
        let config = PrismaConfig::parse(
            r#"import "dotenv/config";
            import { defineConfig, env } from "prisma/config";

            export default defineConfig({
              schema: "prisma/schema.prisma",
              migrations: {
                path: "prisma/migrations",
                seed: "tsx prisma/seed.ts",
              },
              datasource: {
                url: env("DATABASE_URL"),
              },
            });"#,
        );
        assert_eq!(
            config.migrations_path,
            Setting::Value("prisma/migrations".into())
        );
        assert_eq!(
            config.url,
            Setting::Value(UrlSource::Env("DATABASE_URL".into()))
        );
        assert_eq!(
            config.migrations_folder(),
            Setting::Value("prisma/migrations".into())
        );
    }

    #[test]
    fn quotes_comments_and_other_env_forms_are_read() {
        let config = PrismaConfig::parse(
            "// migrations: { path: 'wrong' }\n/* datasource: { url: env('WRONG') } */\n\
             export default { 'migrations': { seed: `tsx s.ts`, path: './db/migrations' },\n\
             datasource: { url: process.env.PG_URL } } satisfies PrismaConfig;",
        );
        assert_eq!(
            config.migrations_path,
            Setting::Value("./db/migrations".into())
        );
        assert_eq!(config.url, Setting::Value(UrlSource::Env("PG_URL".into())));
        let config = PrismaConfig::parse(
            "defineConfig({ datasource: { url: process.env[\"A_URL\"] }, schema: 'db/schema.prisma' })",
        );
        assert_eq!(config.url, Setting::Value(UrlSource::Env("A_URL".into())));
        assert_eq!(config.migrations_path, Setting::Absent);
        // Prisma puts migrations/ beside the schema file when migrations.path is not set.
        assert_eq!(
            config.migrations_folder(),
            Setting::Value("db/migrations".into())
        );
        let config = PrismaConfig::parse("defineConfig({ schema: 'prisma/schema' })");
        assert_eq!(
            config.migrations_folder(),
            Setting::Value("prisma/schema/migrations".into())
        );
    }

    #[test]
    fn code_is_reported_as_an_expression_not_guessed() {
        let config = PrismaConfig::parse(
            "defineConfig({ migrations: { path: path.join(__dirname, 'm') }, \
             datasource: { url: process.env.DATABASE_URL ?? '' } })",
        );
        let Setting::Expression(path) = &config.migrations_path else {
            panic!("{config:?}");
        };
        assert!(path.contains("path.join"), "{path}");
        let Setting::Expression(url) = &config.url else {
            panic!("{config:?}");
        };
        assert!(url.contains("process.env.DATABASE_URL"), "{url}");
        let config = PrismaConfig::parse("defineConfig({ migrations: { path: `${root}/m` } })");
        assert!(matches!(config.migrations_path, Setting::Expression(_)));
    }

    #[test]
    fn a_file_without_the_settings_has_none() {
        let config = PrismaConfig::parse("export default defineConfig({})");
        assert_eq!(config.migrations_path, Setting::Absent);
        assert_eq!(config.url, Setting::Absent);
        assert_eq!(config.migrations_folder(), Setting::Absent);
    }
}
