//! Splitting SQL scripts into statements, for PostgreSQL, MySQL and SQLite.
//!
//! A migration normally goes to the server as one script. Some cannot: PostgreSQL refuses
//! `CREATE INDEX CONCURRENTLY`, `VACUUM`, … inside a transaction block, and MySQL runs
//! DDL outside transactions anyway. Those scripts are sent statement by statement, and a
//! failure is reported with the statement's number, line and text. [`split`] finds the
//! statement boundaries; [`Statement::keywords`] finds a statement's leading keywords.
//!
//! # How it works
//!
//! The script is cut into tokens by a small lexer that knows the flavor's quoting and
//! comment rules, so that a `;` inside a string, a quoted identifier, a comment or a
//! dollar-quoted body never ends a statement. A `;` outside all of them ends the statement
//! unless the statement is a routine or trigger whose `BEGIN … END` body is still open (see
//! below). The splitter never fails: an unterminated string, identifier, comment or
//! dollar quote simply runs to the end of the input, and everything after it belongs to
//! the last statement. It never panics and runs in linear time.
//!
//! Statement boundaries are placed right after each terminating `;`, so whitespace and
//! comments between two statements belong to the statement that follows them, and
//! concatenating all [`Statement::text`]s gives back the script byte for byte.
//!
//! # Lexical rules
//!
//! Common to all flavors: a *word* (identifier or keyword) starts with an ASCII letter,
//! `_` or any non-ASCII character and continues with those, ASCII digits and `$`.
//! Keywords are matched case-insensitively and only as whole words, so `BEGIN` is not
//! found in `BEGINNING`, in `"begin"` or in a comment. A token starting with a digit is a
//! number, never a keyword. Whitespace is ASCII whitespace.
//!
//! **PostgreSQL** (with `standard_conforming_strings` on, the default):
//! - `'…'` strings; `''` is an escaped quote and a backslash is an ordinary character, so
//!   `'\';` is a complete string followed by a `;`.
//! - `E'…'` / `e'…'` escape strings (the `E` must stand alone, not end a longer word): a
//!   backslash escapes the next character, and `''` also works. `U&'…'`, `B'…'`, `X'…'`
//!   and `N'…'` follow the standard-string rule.
//! - `"…"` quoted identifiers with `""` as an escaped quote.
//! - Dollar quotes `$$…$$` and `$tag$…$tag$`, where the tag is made of word characters
//!   without `$` and does not start with a digit. `$1` is a parameter, not a dollar quote,
//!   and a `$` inside a word (`a$$b`) is part of the word.
//! - `--` comments to the end of the line; `/* … */` comments that nest.
//! - Like `psql`, a `;` inside parentheses does not end a statement (this is what lets
//!   `CREATE RULE … DO ( …; … )` through).
//! - SQL-standard routine bodies: when a statement starts with `CREATE [OR REPLACE]
//!   FUNCTION|PROCEDURE` (its first words, as `psql` checks them), every `BEGIN` outside
//!   parentheses opens a block, `CASE` opens one when already inside a block, and `END`
//!   closes one; a `;` ends the statement only when no block is open. This is exactly the
//!   heuristic of `psql`'s lexer, so `BEGIN ATOMIC … END` bodies stay in one piece.
//!
//! **MySQL**:
//! - `'…'` and `"…"` strings; a backslash escapes the next character and a doubled quote
//!   is an escaped quote.
//! - `` `…` `` quoted identifiers with a doubled backtick as an escaped backtick.
//! - `#` comments to the end of the line. `--` starts a comment only when followed by
//!   whitespace, a control character or the end of the input: `--x` and `1--1` are not
//!   comments.
//! - `/* … */` comments, which do not nest. Executable comments `/*! … */`,
//!   `/*!50001 … */` (and MariaDB's `/*M! … */`) are lexed the same way, but they are code:
//!   they count as statement content (a statement holding one is not blank) and they end
//!   the [`Statement::keywords`] word list.
//! - Compound statements: when a statement starts with `CREATE` and the first word naming
//!   an object kind is `PROCEDURE`, `FUNCTION`, `TRIGGER` or `EVENT` (definer clauses and
//!   other modifiers are skipped), its body is tracked with a stack of open blocks.
//!   `BEGIN` and `CASE` always open a block; `IF`, `LOOP`, `WHILE`, `REPEAT` and `FOR` open
//!   one only where a statement can start (after `;`, a label's `:`, `BEGIN`, `THEN`,
//!   `ELSE`, `DO`, `LOOP`, `REPEAT` or a trigger's `FOR EACH ROW`), which keeps the
//!   `IF(…)`/`REPEAT(…)` functions and `IF [NOT] EXISTS` out. `END IF`, `END CASE`,
//!   `END LOOP`, `END WHILE`, `END REPEAT` and `END FOR` close the innermost block of that
//!   kind (and anything opened inside it); a plain `END` closes the innermost `BEGIN` or
//!   `CASE`. A `;` ends the statement only when no block is open.
//! - `DELIMITER` is a client directive, not SQL; it is not supported (Prisma does not
//!   support it either) and gets no special treatment.
//!
//! **SQLite**:
//! - `'…'` strings with `''` as an escaped quote (backslashes are ordinary characters).
//! - `"…"` and `` `…` `` quoted identifiers with doubled-quote escapes, and `[…]` quoted
//!   identifiers (no escape; they end at the first `]`).
//! - `--` comments to the end of the line; `/* … */` comments, which do not nest.
//! - Triggers: in a statement starting with `CREATE [TEMP|TEMPORARY] TRIGGER`, `BEGIN`
//!   opens a block, `CASE` opens one when already inside a block, and `END` closes one; a
//!   `;` ends the statement only when no block is open.

/// The SQL dialect whose lexical rules [`split`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// PostgreSQL (and compatibles such as CockroachDB).
    Postgres,
    /// MySQL and MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
}

/// One statement of a script, as found by [`split`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The exact source slice: from the end of the previous statement (exclusive) up to
    /// and including this statement's terminating `;` (or the end of input). Leading
    /// whitespace/comments belong to the statement that follows them.
    pub text: &'a str,
    /// Byte offset of `text` in the script.
    pub offset: usize,
    /// 1-based line number of the first significant (non-whitespace, non-comment)
    /// character; the line of `offset` if none.
    pub line: usize,
    /// The flavor whose lexical rules were used to split (and are used by the methods).
    pub flavor: Flavor,
}

impl<'a> Statement<'a> {
    /// True when the statement holds nothing but whitespace, comments and `;` (nothing to
    /// send to the server). A MySQL executable comment (`/*! … */`) is content.
    pub fn is_blank(&self) -> bool {
        Lexer::new(self.text, self.flavor).all(|t| t.kind.is_trivia() || t.kind == Kind::Semi)
    }

    /// The first `n` words of the statement, uppercased (ASCII letters only), skipping
    /// comments and whitespace. The list ends early at the first token that is not a bare
    /// word: a quoted identifier, a string, a number, punctuation, a `;` or a MySQL
    /// executable comment.
    ///
    /// For example `"  -- c\nCREATE /*x*/ unique index concurrently \"i\" ON t"` with
    /// `n = 5` gives `["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"]`.
    pub fn keywords(&self, n: usize) -> Vec<String> {
        let mut words = Vec::new();
        if n == 0 {
            return words;
        }
        for token in Lexer::new(self.text, self.flavor) {
            if token.kind.is_trivia() {
                continue;
            }
            if token.kind != Kind::Word {
                break;
            }
            words.push(self.text[token.start..token.end].to_ascii_uppercase());
            if words.len() == n {
                break;
            }
        }
        words
    }

    /// `text` without leading whitespace/comments and without trailing whitespace (the
    /// `;` kept): what to show in an error message. Empty for a statement holding only
    /// whitespace and comments.
    pub fn trimmed(&self) -> &'a str {
        let text = self.text;
        text[lead_len(text, self.flavor)..].trim_end_matches(|c: char| c.is_ascii_whitespace())
    }

    /// The statement's significant tokens (no whitespace or comments), with the same lexical
    /// rules as [`split`], for callers that classify statements (the preflight rules).
    pub fn tokens(&self) -> impl Iterator<Item = SqlToken<'a>> + 'a {
        let text = self.text;
        Lexer::new(text, self.flavor)
            .filter(|t| !t.kind.is_trivia())
            .map(move |t| SqlToken {
                kind: match t.kind {
                    Kind::Word => TokenKind::Word,
                    Kind::QuotedIdent => TokenKind::QuotedIdent,
                    Kind::Str | Kind::DollarStr => TokenKind::Str,
                    Kind::Number => TokenKind::Number,
                    Kind::Semi => TokenKind::Semi,
                    Kind::ExecComment => TokenKind::Exec,
                    Kind::Space | Kind::LineComment | Kind::BlockComment | Kind::Punct => {
                        TokenKind::Punct
                    }
                },
                text: &text[t.start..t.end],
                offset: t.start,
            })
    }

    /// The whitespace and comments before the statement's first significant token.
    pub fn leading_trivia(&self) -> &'a str {
        &self.text[..lead_len(self.text, self.flavor)]
    }
}

/// What a [`SqlToken`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An identifier or keyword.
    Word,
    /// `"…"`, `` `…` `` or `[…]`, quotes included.
    QuotedIdent,
    /// Any string literal, dollar-quoted ones included.
    Str,
    Number,
    Semi,
    /// A MySQL executable comment (`/*! … */`).
    Exec,
    /// Any other single character.
    Punct,
}

/// One significant token of a statement: its kind, its exact text and its byte offset in
/// [`Statement::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlToken<'a> {
    pub kind: TokenKind,
    pub text: &'a str,
    pub offset: usize,
}

/// Splits `script` into statements using `flavor`'s lexical rules (see the module
/// documentation).
///
/// Concatenating every `text` gives back `script` byte for byte, always. A trailing part
/// with only whitespace/comments is returned as a final (blank) statement so nothing is
/// lost; an empty script gives no statements.
pub fn split(script: &str, flavor: Flavor) -> Vec<Statement<'_>> {
    split_lexed(script, flavor, flavor == Flavor::MySql)
}

/// [`split`] for PostgreSQL, following the session's `standard_conforming_strings`: when it
/// is off, a backslash escapes the next character in every `'…'` string (as in `E'…'`), so
/// `'\''` is one string and a `;` or `COMMIT` after it is seen where the server sees it.
pub fn split_pg(script: &str, standard_conforming_strings: bool) -> Vec<Statement<'_>> {
    split_lexed(script, Flavor::Postgres, !standard_conforming_strings)
}

/// [`split`] for MySQL / MariaDB, following the session's `sql_mode`: with
/// `NO_BACKSLASH_ESCAPES` a backslash is an ordinary character in `'…'` and `"…"` strings,
/// so `'\'` ends where the server ends it.
pub fn split_mysql(script: &str, backslash_escapes: bool) -> Vec<Statement<'_>> {
    split_lexed(script, Flavor::MySql, backslash_escapes)
}

fn split_lexed(script: &str, flavor: Flavor, backslash_strings: bool) -> Vec<Statement<'_>> {
    let mut statements = Vec::new();
    let mut lines = LineCounter::default();
    let mut start = 0;
    let mut first_significant = None;
    let mut tracker = Tracker::new(flavor);
    let mut lexer = Lexer::new(script, flavor);
    lexer.backslash_strings = backslash_strings;
    for token in lexer {
        if token.kind.is_trivia() {
            continue;
        }
        first_significant.get_or_insert(token.start);
        if tracker.ends_statement(token.kind, &script[token.start..token.end]) {
            let line = lines.line_at(script, first_significant.unwrap_or(start));
            statements.push(Statement {
                text: &script[start..token.end],
                offset: start,
                line,
                flavor,
            });
            start = token.end;
            first_significant = None;
            tracker = Tracker::new(flavor);
        }
    }
    if start < script.len() {
        let line = lines.line_at(script, first_significant.unwrap_or(start));
        statements.push(Statement {
            text: &script[start..],
            offset: start,
            line,
            flavor,
        });
    }
    statements
}

/// Length of the leading whitespace/comments of `text`.
fn lead_len(text: &str, flavor: Flavor) -> usize {
    Lexer::new(text, flavor)
        .find(|t| !t.kind.is_trivia())
        .map_or(text.len(), |t| t.start)
}

/// Counts lines incrementally; positions must be asked for in non-decreasing order.
#[derive(Default)]
struct LineCounter {
    pos: usize,
    line: usize,
}

impl LineCounter {
    fn line_at(&mut self, script: &str, pos: usize) -> usize {
        if let Some(skipped) = script.as_bytes().get(self.pos..pos) {
            self.line += skipped.iter().filter(|&&b| b == b'\n').count();
            self.pos = pos;
        }
        self.line + 1
    }
}

// ---------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A run of ASCII whitespace.
    Space,
    /// `-- …` or (MySQL) `# …`, up to but excluding the line break.
    LineComment,
    /// `/* … */`.
    BlockComment,
    /// MySQL `/*! … */` or `/*M! … */`: a comment the server executes.
    ExecComment,
    /// An identifier or keyword.
    Word,
    /// A token starting with a digit, or a PostgreSQL `$n` parameter.
    Number,
    /// `"…"`, `` `…` `` or `[…]` (depending on the flavor).
    QuotedIdent,
    /// A string literal of any kind.
    Str,
    /// A PostgreSQL dollar-quoted string.
    DollarStr,
    /// `;`.
    Semi,
    /// Any other single ASCII character.
    Punct,
}

impl Kind {
    /// Whitespace and (non-executable) comments.
    fn is_trivia(self) -> bool {
        matches!(self, Kind::Space | Kind::LineComment | Kind::BlockComment)
    }
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// Cuts a script into tokens. Every token is at least one byte long and starts and ends
/// on an ASCII byte or the end of the input (non-ASCII characters only ever occur inside
/// words, strings, identifiers and comments), so token bounds are always `char` bounds.
struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    flavor: Flavor,
    /// A backslash escapes the next byte in `'…'` strings (MySQL; PostgreSQL with
    /// `standard_conforming_strings` off).
    backslash_strings: bool,
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_word_cont(b: u8) -> bool {
    is_word_start(b) || b.is_ascii_digit() || b == b'$'
}

/// A character of a dollar-quote tag after the first.
fn is_tag_cont(b: u8) -> bool {
    is_word_start(b) || b.is_ascii_digit()
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str, flavor: Flavor) -> Self {
        Lexer {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            flavor,
            backslash_strings: flavor == Flavor::MySql,
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    fn skip_while(&mut self, pred: impl Fn(u8) -> bool) {
        while self.at(self.pos).is_some_and(&pred) {
            self.pos += 1;
        }
    }

    /// Lexes one token starting with byte `b` at `self.pos` and returns its kind.
    fn lex(&mut self, b: u8) -> Kind {
        let flavor = self.flavor;
        let next = self.at(self.pos + 1);
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                self.skip_while(|c| c.is_ascii_whitespace() || c == 0x0b);
                Kind::Space
            }
            b';' => {
                self.pos += 1;
                Kind::Semi
            }
            b'\'' => {
                self.quoted(b'\'', self.backslash_strings);
                Kind::Str
            }
            b'"' if flavor == Flavor::MySql => {
                self.quoted(b'"', self.backslash_strings);
                Kind::Str
            }
            b'"' => {
                self.quoted(b'"', false);
                Kind::QuotedIdent
            }
            b'`' if flavor != Flavor::Postgres => {
                self.quoted(b'`', false);
                Kind::QuotedIdent
            }
            b'[' if flavor == Flavor::Sqlite => {
                self.pos += 1;
                self.skip_while(|c| c != b']');
                self.pos = (self.pos + 1).min(self.bytes.len());
                Kind::QuotedIdent
            }
            b'#' if flavor == Flavor::MySql => {
                self.skip_while(|c| c != b'\n' && c != b'\r');
                Kind::LineComment
            }
            b'-' if next == Some(b'-') && self.dashes_start_comment() => {
                self.skip_while(|c| c != b'\n' && c != b'\r');
                Kind::LineComment
            }
            b'/' if next == Some(b'*') => self.block_comment(),
            b'$' if flavor == Flavor::Postgres => self.dollar(),
            b'0'..=b'9' => {
                self.skip_while(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
                Kind::Number
            }
            _ if is_word_start(b) => self.word(b),
            _ => {
                self.pos += 1;
                Kind::Punct
            }
        }
    }

    /// At `--`: whether it starts a comment. MySQL wants whitespace, a control character
    /// or the end of the input after the dashes.
    fn dashes_start_comment(&self) -> bool {
        self.flavor != Flavor::MySql || self.at(self.pos + 2).is_none_or(|c| c <= b' ' || c == 0x7f)
    }

    /// At an opening `quote`: skips to just past the closing one. A doubled quote is an
    /// escaped quote; with `backslash`, a backslash escapes the next byte.
    fn quoted(&mut self, quote: u8, backslash: bool) {
        self.pos += 1;
        while let Some(c) = self.at(self.pos) {
            if backslash && c == b'\\' {
                self.pos += 2;
                continue;
            }
            self.pos += 1;
            if c == quote {
                if self.at(self.pos) == Some(quote) {
                    self.pos += 1;
                } else {
                    return;
                }
            }
        }
        // Unterminated (or a backslash as the very last byte).
        self.pos = self.pos.min(self.bytes.len());
    }

    /// At `/*`: skips the comment (nested for PostgreSQL).
    fn block_comment(&mut self) -> Kind {
        let exec = self.flavor == Flavor::MySql
            && (self.at(self.pos + 2) == Some(b'!')
                || (self.at(self.pos + 2) == Some(b'M') && self.at(self.pos + 3) == Some(b'!')));
        let nests = self.flavor == Flavor::Postgres;
        self.pos += 2;
        let mut depth = 1usize;
        while let Some(c) = self.at(self.pos) {
            let next = self.at(self.pos + 1);
            if c == b'*' && next == Some(b'/') {
                self.pos += 2;
                depth -= 1;
                if depth == 0 {
                    break;
                }
            } else if nests && c == b'/' && next == Some(b'*') {
                self.pos += 2;
                depth = depth.saturating_add(1);
            } else {
                self.pos += 1;
            }
        }
        if exec {
            Kind::ExecComment
        } else {
            Kind::BlockComment
        }
    }

    /// PostgreSQL, at `$`: a dollar-quoted string, a `$n` parameter or a lone `$`.
    fn dollar(&mut self) -> Kind {
        let start = self.pos;
        let mut close = start + 1;
        match self.at(close) {
            Some(b'$') => {}
            Some(c) if is_word_start(c) => {
                close += 1;
                while self.at(close).is_some_and(is_tag_cont) {
                    close += 1;
                }
                if self.at(close) != Some(b'$') {
                    self.pos += 1;
                    return Kind::Punct;
                }
            }
            Some(c) if c.is_ascii_digit() => {
                self.pos += 1;
                self.skip_while(|c| c.is_ascii_digit());
                return Kind::Number;
            }
            _ => {
                self.pos += 1;
                return Kind::Punct;
            }
        }
        // `start` and `close` are both `$`, so these are char boundaries.
        let delimiter = &self.src[start..=close];
        let body = close + 1;
        self.pos = match self.src[body..].find(delimiter) {
            Some(at) => body + at + delimiter.len(),
            None => self.bytes.len(),
        };
        Kind::DollarStr
    }

    /// At a word start: the word, or for PostgreSQL an `E'…'` string.
    fn word(&mut self, first: u8) -> Kind {
        let start = self.pos;
        self.pos += 1;
        self.skip_while(is_word_cont);
        if self.flavor == Flavor::Postgres
            && self.pos == start + 1
            && (first == b'e' || first == b'E')
            && self.at(self.pos) == Some(b'\'')
        {
            self.quoted(b'\'', true);
            return Kind::Str;
        }
        Kind::Word
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let start = self.pos;
        let b = self.at(start)?;
        let kind = self.lex(b);
        // Every branch consumes at least one byte; keep it that way even if one did not.
        if self.pos <= start {
            self.pos = start + 1;
        }
        Some(Token {
            kind,
            start,
            end: self.pos,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Statement-end tracking
// ---------------------------------------------------------------------------------------

/// Follows the significant tokens of one statement to tell whether a `;` ends it.
enum Tracker {
    Postgres(PgTracker),
    MySql(MyTracker),
    Sqlite(LiteTracker),
}

impl Tracker {
    fn new(flavor: Flavor) -> Self {
        match flavor {
            Flavor::Postgres => Tracker::Postgres(PgTracker::default()),
            Flavor::MySql => Tracker::MySql(MyTracker::default()),
            Flavor::Sqlite => Tracker::Sqlite(LiteTracker::default()),
        }
    }

    /// Feeds one significant (non-trivia) token; true when it is a statement-ending `;`.
    fn ends_statement(&mut self, kind: Kind, text: &str) -> bool {
        match self {
            Tracker::Postgres(t) => t.feed(kind, text),
            Tracker::MySql(t) => t.feed(kind, text),
            Tracker::Sqlite(t) => t.feed(kind, text),
        }
    }
}

fn is(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

/// PostgreSQL: `psql`'s heuristic (`psqlscan.l`).
#[derive(Default)]
struct PgTracker {
    /// Words seen so far.
    words: usize,
    /// For each of the first four words: `c`, `o`, `r`, `f` or `p` when it is `CREATE`,
    /// `OR`, `REPLACE`, `FUNCTION` or `PROCEDURE`, else 0.
    head: [u8; 4],
    parens: usize,
    /// Open `BEGIN`/`CASE` blocks of a routine body.
    depth: usize,
}

impl PgTracker {
    fn feed(&mut self, kind: Kind, text: &str) -> bool {
        match kind {
            Kind::Word => self.word(text),
            Kind::Punct if text == "(" => self.parens = self.parens.saturating_add(1),
            Kind::Punct if text == ")" => self.parens = self.parens.saturating_sub(1),
            Kind::Semi => return self.parens == 0 && self.depth == 0,
            _ => {}
        }
        false
    }

    fn word(&mut self, word: &str) {
        if let Some(slot) = self.head.get_mut(self.words) {
            *slot = ["create", "or", "replace", "function", "procedure"]
                .into_iter()
                .find(|k| is(word, k))
                .and_then(|k| k.bytes().next())
                .unwrap_or(0);
        }
        self.words = self.words.saturating_add(1);
        let h = self.head;
        let routine = h[0] == b'c'
            && (matches!(h[1], b'f' | b'p')
                || (h[1] == b'o' && h[2] == b'r' && matches!(h[3], b'f' | b'p')));
        if !routine || self.parens > 0 {
            return;
        }
        if is(word, "begin") || (is(word, "case") && self.depth > 0) {
            self.depth = self.depth.saturating_add(1);
        } else if is(word, "end") {
            self.depth = self.depth.saturating_sub(1);
        }
    }
}

/// SQLite: `CREATE [TEMP|TEMPORARY] TRIGGER … BEGIN … END`.
#[derive(Default)]
struct LiteTracker {
    head: LiteHead,
    depth: usize,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum LiteHead {
    #[default]
    Start,
    Create,
    CreateTemp,
    Trigger,
    Other,
}

impl LiteTracker {
    fn feed(&mut self, kind: Kind, text: &str) -> bool {
        if kind == Kind::Semi {
            return self.depth == 0;
        }
        let word = if kind == Kind::Word { text } else { "" };
        self.head = match self.head {
            LiteHead::Start if is(word, "create") => LiteHead::Create,
            LiteHead::Create if is(word, "temp") || is(word, "temporary") => LiteHead::CreateTemp,
            LiteHead::Create | LiteHead::CreateTemp if is(word, "trigger") => LiteHead::Trigger,
            LiteHead::Trigger => {
                if is(word, "begin") || (is(word, "case") && self.depth > 0) {
                    self.depth = self.depth.saturating_add(1);
                } else if is(word, "end") {
                    self.depth = self.depth.saturating_sub(1);
                }
                LiteHead::Trigger
            }
            _ => LiteHead::Other,
        };
        false
    }
}

/// MySQL: compound-statement bodies of stored programs.
#[derive(Default)]
struct MyTracker {
    head: MyHead,
    /// Words seen after `CREATE` while looking for the object kind.
    head_words: usize,
    /// Open blocks of the body, innermost last.
    blocks: Vec<Block>,
    /// The previous significant token is one after which a statement can start.
    at_statement_start: bool,
    /// The previous significant token was `END`; the next one tells what it closes.
    pending_end: bool,
    /// The previous significant token was `.`: the word after it is part of a qualified name
    /// (`SET NEW.begin = 1`), never a keyword.
    after_dot: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum MyHead {
    #[default]
    Start,
    Create,
    Body,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Begin,
    Case,
    If,
    Loop,
    While,
    Repeat,
    For,
}

/// The block kinds named by `END <word>`, and opened by `<word>` at a statement start.
const NAMED_BLOCKS: [(&str, Block); 6] = [
    ("case", Block::Case),
    ("if", Block::If),
    ("loop", Block::Loop),
    ("while", Block::While),
    ("repeat", Block::Repeat),
    ("for", Block::For),
];

/// After `CREATE` (and modifiers): object kinds whose body may be a compound statement.
const MY_BODY_KINDS: [&str; 4] = ["procedure", "function", "trigger", "event"];

/// After `CREATE` (and modifiers): other object kinds.
const MY_OTHER_KINDS: [&str; 17] = [
    "table",
    "temporary",
    "view",
    "index",
    "unique",
    "fulltext",
    "spatial",
    "database",
    "schema",
    "user",
    "role",
    "server",
    "tablespace",
    "logfile",
    "resource",
    "sequence",
    "package",
];

/// How many words after `CREATE` may precede the object kind (`OR REPLACE`, `DEFINER =
/// …`, `ALGORITHM = …`, `SQL SECURITY …`, `AGGREGATE`).
const MY_MAX_HEAD_WORDS: usize = 16;

fn named_block(word: &str) -> Option<Block> {
    NAMED_BLOCKS
        .iter()
        .find(|(name, _)| is(word, name))
        .map(|&(_, block)| block)
}

impl MyTracker {
    fn feed(&mut self, kind: Kind, text: &str) -> bool {
        let word = if kind == Kind::Word { text } else { "" };
        match self.head {
            MyHead::Start => {
                self.head = if is(word, "create") {
                    MyHead::Create
                } else {
                    MyHead::Other
                };
            }
            MyHead::Create if !word.is_empty() => {
                self.head_words += 1;
                if MY_BODY_KINDS.iter().any(|k| is(word, k)) {
                    self.head = MyHead::Body;
                } else if MY_OTHER_KINDS.iter().any(|k| is(word, k))
                    || self.head_words > MY_MAX_HEAD_WORDS
                {
                    self.head = MyHead::Other;
                }
            }
            MyHead::Body => self.body_token(kind, word, text),
            MyHead::Create | MyHead::Other => {}
        }
        kind == Kind::Semi && self.blocks.is_empty()
    }

    fn body_token(&mut self, kind: Kind, word: &str, text: &str) {
        if std::mem::replace(&mut self.after_dot, kind == Kind::Punct && text == ".") {
            self.at_statement_start = false;
            return;
        }
        if std::mem::take(&mut self.pending_end) {
            match named_block(word) {
                Some(block) => {
                    // `END IF` & co.: close that block and whatever was opened inside it.
                    if let Some(i) = self.blocks.iter().rposition(|&b| b == block) {
                        self.blocks.truncate(i);
                    }
                    self.at_statement_start = false;
                    return;
                }
                None => {
                    // A plain `END` closes the innermost BEGIN or CASE.
                    match self
                        .blocks
                        .iter()
                        .rposition(|&b| b == Block::Begin || b == Block::Case)
                    {
                        Some(i) => self.blocks.truncate(i),
                        None => {
                            self.blocks.pop();
                        }
                    }
                }
            }
        }
        let start = self.at_statement_start;
        self.at_statement_start = match kind {
            Kind::Semi => true,
            Kind::Punct => text == ":",
            Kind::Word => {
                if is(word, "begin") {
                    self.blocks.push(Block::Begin);
                    true
                } else if is(word, "case") {
                    self.blocks.push(Block::Case);
                    false
                } else if is(word, "end") {
                    self.pending_end = true;
                    false
                } else if let Some(block) = named_block(word).filter(|_| start) {
                    self.blocks.push(block);
                    matches!(block, Block::Loop | Block::Repeat)
                } else {
                    ["then", "else", "do", "loop", "repeat", "row"]
                        .iter()
                        .any(|k| is(word, k))
                }
            }
            _ => false,
        };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_qualified_name_in_a_mysql_trigger_body_is_no_keyword() {
        let script = "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.begin = 1;\nCREATE TABLE u (id int);\nCREATE TRIGGER tr2 BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.end = 1; SET NEW.begin = 2; END;\nCREATE TABLE v (id int);\n";
        let found: Vec<_> = split(script, Flavor::MySql)
            .into_iter()
            .filter(|s| !s.is_blank())
            .collect();
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[1].text.contains("CREATE TABLE u"));
    }

    #[test]
    fn mysql_without_backslash_escapes_ends_strings_where_the_server_does() {
        let script = "INSERT INTO t VALUES ('a\\'); CREATE TABLE u (id int);";
        assert_eq!(
            split_mysql(script, false)
                .iter()
                .filter(|s| !s.is_blank())
                .count(),
            2
        );
        assert_eq!(
            split_mysql(script, true)
                .iter()
                .filter(|s| !s.is_blank())
                .count(),
            1
        );
    }

    use super::{Flavor, Statement, lead_len, split, split_mysql, split_pg};

    const PG: Flavor = Flavor::Postgres;
    const MY: Flavor = Flavor::MySql;
    const LITE: Flavor = Flavor::Sqlite;
    const ALL: [Flavor; 3] = [PG, MY, LITE];

    fn texts(script: &str, flavor: Flavor) -> Vec<&str> {
        split(script, flavor).into_iter().map(|s| s.text).collect()
    }

    /// The trimmed text of every non-blank statement.
    fn stmts(script: &str, flavor: Flavor) -> Vec<&str> {
        split(script, flavor)
            .into_iter()
            .filter(|s| !s.is_blank())
            .map(|s| s.trimmed())
            .collect()
    }

    fn one(text: &str, flavor: Flavor) -> Statement<'_> {
        Statement {
            text,
            offset: 0,
            line: 1,
            flavor,
        }
    }

    // ----- common ------------------------------------------------------------------------

    #[test]
    fn empty_script_has_no_statements() {
        for f in ALL {
            assert!(split("", f).is_empty());
        }
    }

    #[test]
    fn simple_statements_split_after_semicolons() {
        for f in ALL {
            assert_eq!(
                texts("SELECT 1; SELECT 2;\nSELECT 3", f),
                ["SELECT 1;", " SELECT 2;", "\nSELECT 3"]
            );
        }
    }

    #[test]
    fn whitespace_only_script_is_one_blank_statement() {
        for f in ALL {
            let s = split(" \n\t ", f);
            assert_eq!(s.len(), 1);
            assert!(s[0].is_blank());
            assert_eq!(s[0].trimmed(), "");
            assert_eq!(s[0].line, 1);
        }
    }

    #[test]
    fn trailing_comment_part_is_a_final_blank_statement() {
        for f in ALL {
            let s = split("SELECT 1;\n/* done; */\n", f);
            assert_eq!(s.len(), 2);
            assert_eq!(s[1].text, "\n/* done; */\n");
            assert_eq!(s[1].offset, 9);
            assert!(s[1].is_blank());
            assert_eq!(s[1].trimmed(), "");
            assert_eq!(
                s[1].line, 1,
                "line of the offset when nothing is significant"
            );
            let s = split("SELECT 1;\n\n-- done;", f);
            assert_eq!(s[1].line, 1);
            let s = split("SELECT 1;\n;", f);
            assert_eq!(
                s[1].line, 2,
                "a lone `;` is the first significant character"
            );
        }
    }

    #[test]
    fn empty_statements_are_blank() {
        for f in ALL {
            let s = split("SELECT 1;; ;", f);
            assert_eq!(
                s.iter().map(|s| s.text).collect::<Vec<_>>(),
                ["SELECT 1;", ";", " ;"]
            );
            assert!(!s[0].is_blank());
            assert!(s[1].is_blank() && s[2].is_blank());
            assert_eq!(s[2].trimmed(), ";");
        }
    }

    #[test]
    fn leading_comments_belong_to_the_following_statement() {
        for f in ALL {
            let s = split("SELECT 1; -- one\n-- two;\nSELECT 2;", f);
            assert_eq!(s.len(), 2);
            assert_eq!(s[1].text, " -- one\n-- two;\nSELECT 2;");
            assert_eq!(s[1].trimmed(), "SELECT 2;");
            assert_eq!(s[1].line, 3);
        }
    }

    #[test]
    fn line_numbers_point_at_the_first_significant_character() {
        let script = "\n\nSELECT 1;\n/* a\nb */ SELECT\n2;\r\n\r\n  SELECT 3;";
        for f in ALL {
            let s = split(script, f);
            assert_eq!(
                s.iter().map(|s| s.line).collect::<Vec<_>>(),
                [3, 5, 8],
                "{f:?}"
            );
            assert_eq!(s[1].trimmed(), "SELECT\n2;");
        }
    }

    #[test]
    fn trimmed_drops_leading_trivia_and_trailing_whitespace_only() {
        for f in ALL {
            let s = split("  /* c */ -- d\n  SELECT 1 ;  \n\n", f);
            assert_eq!(s[0].trimmed(), "SELECT 1 ;");
            assert_eq!(s[1].trimmed(), "");
            let s = split("\n SELECT 1 /* tail */  \n", f);
            assert_eq!(s[0].trimmed(), "SELECT 1 /* tail */");
        }
    }

    #[test]
    fn offsets_are_byte_offsets() {
        for f in ALL {
            let script = "SELECT 'é;'; SELECT '日本';SELECT 3";
            let s = split(script, f);
            assert_eq!(s.len(), 3);
            for st in &s {
                assert_eq!(&script[st.offset..st.offset + st.text.len()], st.text);
            }
            assert_eq!(s[1].offset, "SELECT 'é;';".len());
        }
    }

    #[test]
    fn non_ascii_words_and_comments() {
        for f in ALL {
            assert_eq!(
                stmts("SELECT ünïcödé; -- ça;\nSELECT 日本;", f),
                ["SELECT ünïcödé;", "SELECT 日本;"]
            );
        }
    }

    #[test]
    fn keywords_example_from_the_docs() {
        for f in ALL {
            let st = one(
                "  -- c\nCREATE /*x*/ unique index concurrently \"i\" ON t",
                f,
            );
            // In MySQL `"i"` is a string rather than an identifier: it ends the list too.
            assert_eq!(
                st.keywords(5),
                ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"]
            );
        }
    }

    #[test]
    fn keywords_respect_n_and_stop_at_non_words() {
        let st = one("create index concurrently idx on t (a);", PG);
        assert_eq!(st.keywords(3), ["CREATE", "INDEX", "CONCURRENTLY"]);
        assert_eq!(st.keywords(0), Vec::<String>::new());
        assert_eq!(
            st.keywords(100),
            ["CREATE", "INDEX", "CONCURRENTLY", "IDX", "ON", "T"]
        );
        assert_eq!(one("VACUUM;", PG).keywords(3), ["VACUUM"]);
        assert_eq!(
            one("ALTER TYPE \"E\" ADD VALUE 'x'", PG).keywords(9),
            ["ALTER", "TYPE"]
        );
        assert_eq!(
            one("ALTER TYPE e ADD VALUE 'x'", PG).keywords(9),
            ["ALTER", "TYPE", "E", "ADD", "VALUE"]
        );
        assert_eq!(
            one("-- only a comment", PG).keywords(3),
            Vec::<String>::new()
        );
        assert_eq!(one("SELECT 1", PG).keywords(3), ["SELECT"]);
    }

    #[test]
    fn keywords_are_whole_words() {
        let st = one("BEGINNING_x$1 end", PG);
        assert_eq!(st.keywords(3), ["BEGINNING_X$1", "END"]);
    }

    #[test]
    fn keywords_of_create_index_concurrently_after_split() {
        let script = "-- Prisma\nCREATE INDEX CONCURRENTLY \"User_email_idx\" ON \"User\"(\"email\");\n\
                      -- CreateIndex\ncreate unique index concurrently if not exists i on t (a);";
        let s = split(script, PG);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].keywords(3), ["CREATE", "INDEX", "CONCURRENTLY"]);
        assert_eq!(
            s[1].keywords(4),
            ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"]
        );
        assert_eq!(s[1].line, 4);
    }

    #[test]
    fn unterminated_constructs_swallow_the_rest() {
        let cases: &[(Flavor, &str)] = &[
            (PG, "SELECT 1; SELECT 'abc; SELECT 2;"),
            (PG, "SELECT 1; SELECT \"abc; SELECT 2;"),
            (PG, "SELECT 1; SELECT E'abc\\'; SELECT 2;"),
            (PG, "SELECT 1; SELECT $$abc; SELECT 2;"),
            (PG, "SELECT 1; SELECT $q$abc; SELECT 2; $$;"),
            (PG, "SELECT 1; SELECT /* /* */ ; SELECT 2;"),
            (PG, "SELECT 1; SELECT E'\\"),
            (MY, "SELECT 1; SELECT 'a\\'; SELECT 2;"),
            (MY, "SELECT 1; SELECT `a; SELECT 2;"),
            (MY, "SELECT 1; SELECT /*! a; SELECT 2;"),
            (MY, "SELECT 1; SELECT \"\\"),
            (LITE, "SELECT 1; SELECT [a; SELECT 2;"),
            (LITE, "SELECT 1; SELECT `a; SELECT 2;"),
            (LITE, "SELECT 1; SELECT /* a; SELECT 2;"),
        ];
        for &(f, script) in cases {
            let t = texts(script, f);
            assert_eq!(t.len(), 2, "{f:?} {script:?}");
            assert_eq!(t[0], "SELECT 1;");
            assert!(!split(script, f)[1].is_blank());
        }
    }

    #[test]
    fn unterminated_comments_are_blank() {
        for f in ALL {
            let s = split("SELECT 1; /* open; SELECT 2;", f);
            assert_eq!(s.len(), 2);
            assert!(s[1].is_blank());
        }
    }

    // ----- PostgreSQL --------------------------------------------------------------------

    #[test]
    fn pg_semicolon_in_standard_string() {
        assert_eq!(
            stmts("SELECT 'a;b'; SELECT 'it''s; fine';", PG),
            ["SELECT 'a;b';", "SELECT 'it''s; fine';"]
        );
    }

    #[test]
    fn pg_backslash_is_literal_in_standard_string() {
        assert_eq!(
            stmts("SELECT '\\'; SELECT 2;", PG),
            ["SELECT '\\';", "SELECT 2;"]
        );
    }

    #[test]
    fn pg_backslash_escapes_without_standard_conforming_strings() {
        let script = "SELECT '\\''; COMMIT; SELECT 2;";
        let texts = |v: Vec<Statement<'_>>| {
            v.iter()
                .map(|s| s.trimmed().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            texts(split_pg(script, false)),
            ["SELECT '\\'';", "COMMIT;", "SELECT 2;"]
        );
        assert_eq!(
            texts(split_pg(script, true)),
            ["SELECT '\\''; COMMIT; SELECT 2;"]
        );
        // E'' strings and dollar quotes are unchanged by the setting.
        assert_eq!(
            texts(split_pg("SELECT $$\\$$; SELECT 2;", false)),
            ["SELECT $$\\$$;", "SELECT 2;"]
        );
    }

    #[test]
    fn pg_backslash_escapes_in_e_string() {
        assert_eq!(
            stmts("SELECT E'\\';'; SELECT 2;", PG),
            ["SELECT E'\\';';", "SELECT 2;"]
        );
        assert_eq!(
            stmts("SELECT e'\\\\'; SELECT e'a''b;\\n'; SELECT 3;", PG),
            ["SELECT e'\\\\';", "SELECT e'a''b;\\n';", "SELECT 3;"]
        );
    }

    #[test]
    fn pg_e_must_stand_alone_to_make_an_escape_string() {
        // `name'x\'` is the word `name` then the standard string `'x\'`.
        assert_eq!(
            stmts("SELECT name'x\\'; SELECT 2;", PG),
            ["SELECT name'x\\';", "SELECT 2;"]
        );
    }

    #[test]
    fn pg_unicode_and_bit_strings() {
        assert_eq!(
            stmts(
                "SELECT U&'d\\0061t\\+000061;'; SELECT B'1;'; SELECT U&\"a;\";",
                PG
            ),
            [
                "SELECT U&'d\\0061t\\+000061;';",
                "SELECT B'1;';",
                "SELECT U&\"a;\";"
            ]
        );
    }

    #[test]
    fn pg_quoted_identifiers() {
        assert_eq!(
            stmts("SELECT \"a;b\"\"c;\" FROM t; SELECT 2;", PG),
            ["SELECT \"a;b\"\"c;\" FROM t;", "SELECT 2;"]
        );
        // A single quote inside a quoted identifier is an ordinary character.
        assert_eq!(
            stmts("SELECT \"it's\"; SELECT 2;", PG),
            ["SELECT \"it's\";", "SELECT 2;"]
        );
    }

    #[test]
    fn pg_dollar_quotes() {
        assert_eq!(
            stmts("SELECT $$a;b$$; SELECT $fn$ $$ ; $ fn$ $fn$; SELECT 3;", PG),
            [
                "SELECT $$a;b$$;",
                "SELECT $fn$ $$ ; $ fn$ $fn$;",
                "SELECT 3;"
            ]
        );
        // Tags are case-sensitive.
        assert_eq!(texts("SELECT $a$ ; $A$ ; $a$; SELECT 2;", PG).len(), 2);
        // Tags may contain digits after the first character and non-ASCII characters.
        assert_eq!(texts("SELECT $a1$;$a1$; SELECT $é$;$é$;", PG).len(), 2);
    }

    #[test]
    fn pg_parameters_are_not_dollar_quotes() {
        assert_eq!(
            stmts("SELECT $1; SELECT $2, $10;", PG),
            ["SELECT $1;", "SELECT $2, $10;"]
        );
        // `$1abc$` is not a tag either (tags do not start with a digit).
        assert_eq!(texts("SELECT $1abc$; SELECT 2; $1abc$", PG).len(), 3);
        // A lone `$` followed by a word without a closing `$` is no quote.
        assert_eq!(texts("SELECT $abc; SELECT 2;", PG).len(), 2);
    }

    #[test]
    fn pg_dollar_inside_a_word_is_part_of_the_word() {
        assert_eq!(
            stmts("SELECT a$$b; SELECT c$$;", PG),
            ["SELECT a$$b;", "SELECT c$$;"]
        );
    }

    #[test]
    fn pg_comments() {
        assert_eq!(
            stmts("SELECT 1 -- a; b\n; SELECT /* ; */ 2;", PG),
            ["SELECT 1 -- a; b\n;", "SELECT /* ; */ 2;"]
        );
    }

    #[test]
    fn pg_block_comments_nest() {
        assert_eq!(
            stmts("SELECT /* a /* b; */ c; */ 1; SELECT 2;", PG),
            ["SELECT /* a /* b; */ c; */ 1;", "SELECT 2;"]
        );
        // `/*/` opens a comment; it is not closed by its own `*/`-lookalike.
        assert_eq!(texts("SELECT /*/ ; */ 1; SELECT 2;", PG).len(), 2);
    }

    #[test]
    fn non_nesting_comments_in_mysql_and_sqlite() {
        for f in [MY, LITE] {
            assert_eq!(
                texts("SELECT /* a /* b */ 1; SELECT 2; */", f),
                ["SELECT /* a /* b */ 1;", " SELECT 2;", " */"]
            );
        }
    }

    #[test]
    fn pg_dash_dash_is_always_a_comment() {
        assert_eq!(texts("SELECT 1--x;\n; SELECT 2;", PG).len(), 2);
    }

    #[test]
    fn pg_begin_atomic_function_body() {
        let script = "CREATE FUNCTION add(a integer, b integer) RETURNS integer\n\
                      LANGUAGE SQL\n\
                      BEGIN ATOMIC\n\
                        SELECT a + b;\n\
                        SELECT CASE WHEN a > b THEN a ELSE b END;\n\
                      END;\n\
                      SELECT add(1, 2);";
        let s = stmts(script, PG);
        assert_eq!(s.len(), 2, "{s:#?}");
        assert!(s[0].ends_with("END;"));
        assert_eq!(s[1], "SELECT add(1, 2);");
    }

    #[test]
    fn pg_create_or_replace_procedure_with_nested_blocks() {
        let script = "create or replace procedure p() language sql\n\
                      begin atomic\n\
                        insert into t values (1);\n\
                        select case when true then 1 end;\n\
                      end; COMMIT;";
        assert_eq!(texts(script, PG).len(), 2, "{:#?}", texts(script, PG));
    }

    #[test]
    fn pg_plpgsql_function_in_dollar_quotes() {
        let script = "CREATE OR REPLACE FUNCTION f() RETURNS trigger AS $body$\n\
                      BEGIN\n  NEW.x := 1; -- ;\n  RETURN NEW;\nEND;\n$body$ LANGUAGE plpgsql;\n\
                      CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW EXECUTE FUNCTION f();";
        let s = split(script, PG);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].line, 7);
        assert_eq!(s[1].keywords(2), ["CREATE", "TRIGGER"]);
    }

    #[test]
    fn pg_sql_function_returning_without_body() {
        assert_eq!(
            texts(
                "CREATE FUNCTION one() RETURNS int LANGUAGE sql RETURN 1; SELECT one();",
                PG
            )
            .len(),
            2
        );
    }

    #[test]
    fn pg_transaction_begin_end_are_not_bodies() {
        assert_eq!(
            stmts("BEGIN; CREATE TABLE t (a int); END; SELECT 1;", PG),
            ["BEGIN;", "CREATE TABLE t (a int);", "END;", "SELECT 1;"]
        );
    }

    #[test]
    fn pg_begin_only_counts_in_routines_and_as_a_whole_word() {
        // Not a routine: BEGIN in a column name or as a word does not count.
        assert_eq!(
            texts(
                "CREATE TABLE beginning (begin_at int, \"begin\" int); SELECT 1;",
                PG
            )
            .len(),
            2
        );
        // A routine, but these are not the word BEGIN.
        assert_eq!(
            texts(
                "CREATE FUNCTION f(beginning int) RETURNS int LANGUAGE sql RETURN beginning; SELECT 1;",
                PG
            )
            .len(),
            2
        );
        // Not in the first words: `CREATE TABLE function` is no routine.
        assert_eq!(
            texts("CREATE TABLE function (a int); BEGIN; SELECT 1;", PG).len(),
            3
        );
    }

    #[test]
    fn pg_semicolon_inside_parentheses_does_not_split() {
        let script = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); \
                      INSERT INTO b VALUES (2)); SELECT 1;";
        assert_eq!(texts(script, PG).len(), 2);
        // Stray closing parentheses do not go negative.
        assert_eq!(texts("SELECT 1); SELECT 2;", PG).len(), 2);
    }

    #[test]
    fn pg_prisma_migration() {
        let script = r#"-- CreateEnum
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');

-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" "Role" NOT NULL DEFAULT 'USER',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" VARCHAR(255) NOT NULL,
    "authorId" INTEGER NOT NULL,

    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"#;
        let s = split(script, PG);
        assert_eq!(s.len(), 6, "five statements and the trailing newline");
        assert!(s[5].is_blank());
        let lines: Vec<usize> = s[..5].iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 5, 16, 25, 28]);
        assert_eq!(s[0].keywords(2), ["CREATE", "TYPE"]);
        assert_eq!(s[3].keywords(3), ["CREATE", "UNIQUE", "INDEX"]);
        assert_eq!(
            s[3].trimmed(),
            "CREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");"
        );
        assert_eq!(s.iter().map(|s| s.text).collect::<String>(), script);
    }

    // ----- MySQL -------------------------------------------------------------------------

    #[test]
    fn my_strings_with_backslash_and_doubled_quotes() {
        assert_eq!(
            stmts(
                "SELECT 'a\\';b'; SELECT \"x\\\";y\"; SELECT 'it'';s', \"q\"\";\"; SELECT 4;",
                MY
            ),
            [
                "SELECT 'a\\';b';",
                "SELECT \"x\\\";y\";",
                "SELECT 'it'';s', \"q\"\";\";",
                "SELECT 4;"
            ]
        );
    }

    #[test]
    fn my_backtick_identifiers() {
        assert_eq!(
            stmts("SELECT `a;b``c;` FROM t; SELECT 2;", MY),
            ["SELECT `a;b``c;` FROM t;", "SELECT 2;"]
        );
    }

    #[test]
    fn my_hash_comments() {
        assert_eq!(
            stmts("SELECT 1 # a; b\n; SELECT 2;", MY),
            ["SELECT 1 # a; b\n;", "SELECT 2;"]
        );
        // Not a comment in the other flavors.
        assert_eq!(texts("SELECT 1 # a; b\n;", PG).len(), 2);
    }

    #[test]
    fn my_dash_dash_needs_whitespace() {
        // `--;` is not a comment: the `;` ends the statement.
        assert_eq!(
            texts("SELECT 1 --;\nSELECT 2;", MY),
            ["SELECT 1 --;", "\nSELECT 2;"]
        );
        // `1--1` is arithmetic.
        assert_eq!(
            stmts("SELECT 1--1; SELECT 2;", MY),
            ["SELECT 1--1;", "SELECT 2;"]
        );
        // `-- ` and `--\t` start comments; so does `--` at a line end or the input end.
        assert_eq!(texts("SELECT 1 -- ;\n;", MY).len(), 1);
        assert_eq!(texts("SELECT 1 --\t;\n;", MY).len(), 1);
        assert_eq!(texts("SELECT 1 --\n;", MY).len(), 1);
        let s = split("SELECT 1; --", MY);
        assert_eq!(s.len(), 2);
        assert!(s[1].is_blank());
    }

    #[test]
    fn my_executable_comments_are_content() {
        let s = split(
            "/*!40101 SET @x = 1; SET @y = 2 */;\n/*!50001 CREATE VIEW v AS SELECT 1 */;",
            MY,
        );
        assert_eq!(s.len(), 2);
        assert!(!s[0].is_blank());
        assert_eq!(s[0].trimmed(), "/*!40101 SET @x = 1; SET @y = 2 */;");
        assert_eq!(s[0].keywords(3), Vec::<String>::new());
        assert_eq!(s[1].line, 2);
        let s = split("/*M!100101 SET x = 1; */;", MY);
        assert_eq!(s.len(), 1);
        assert!(!s[0].is_blank());
        // Ordinary comments stay blank.
        assert!(split("/* SET x = 1 */;", MY)[0].is_blank());
    }

    #[test]
    fn my_procedure_with_control_flow() {
        let script = "CREATE PROCEDURE p(IN n INT)\n\
                      BEGIN\n\
                        DECLARE i INT DEFAULT 0;\n\
                        IF n > 0 THEN\n\
                          SET i = 1;\n\
                        ELSEIF n < 0 THEN\n\
                          SET i = -1;\n\
                        ELSE\n\
                          SET i = 0;\n\
                        END IF;\n\
                        lbl: LOOP\n\
                          SET i = i + 1;\n\
                          IF i > 10 THEN LEAVE lbl; END IF;\n\
                        END LOOP lbl;\n\
                        WHILE i > 0 DO\n\
                          SET i = i - 1;\n\
                        END WHILE;\n\
                        REPEAT\n\
                          SET i = i + 1;\n\
                        UNTIL i > 5 END REPEAT;\n\
                        CASE i WHEN 1 THEN SELECT 1; ELSE SELECT 2; END CASE;\n\
                        BEGIN\n\
                          SELECT CASE WHEN i > 1 THEN 'a;' ELSE 'b' END;\n\
                        END;\n\
                      END;\n\
                      CALL p(1);";
        let s = stmts(script, MY);
        assert_eq!(s.len(), 2, "{s:#?}");
        assert_eq!(s[1], "CALL p(1);");
    }

    #[test]
    fn my_end_if_closes_the_if_not_the_begin() {
        let script =
            "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; SELECT 2; END; SELECT 3;";
        assert_eq!(
            stmts(script, MY),
            [
                "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; SELECT 2; END;",
                "SELECT 3;"
            ]
        );
    }

    #[test]
    fn my_if_and_repeat_functions_do_not_open_blocks() {
        let script = "CREATE FUNCTION f(a INT) RETURNS INT DETERMINISTIC\n\
                      BEGIN\n\
                        DECLARE r INT;\n\
                        SET r = IF(a > 0, 1, 0);\n\
                        SELECT CASE WHEN a THEN IF(a, 1, 2) ELSE REPEAT('x', 2) END INTO r;\n\
                        DROP TEMPORARY TABLE IF EXISTS tmp;\n\
                        RETURN r;\n\
                      END;\n\
                      SELECT f(1);";
        assert_eq!(stmts(script, MY).len(), 2);
        // A body that is a single RETURN of an IF() call.
        let script = "CREATE FUNCTION g(a INT) RETURNS INT RETURN IF(a > 0, 1, 0); SELECT g(1);";
        assert_eq!(stmts(script, MY).len(), 2);
    }

    #[test]
    fn my_if_with_parenthesised_condition() {
        let script = "CREATE PROCEDURE p() BEGIN IF (1 > 0) THEN SELECT 1; END IF; END; SELECT 2;";
        assert_eq!(stmts(script, MY).len(), 2);
    }

    #[test]
    fn my_trigger_bodies() {
        let script = "CREATE DEFINER=`root`@`%` TRIGGER trg BEFORE INSERT ON t FOR EACH ROW\n\
                      BEGIN\n  SET NEW.a = 1;\n  IF NEW.b IS NULL THEN SET NEW.b = 2; END IF;\nEND;\n\
                      CREATE TRIGGER trg2 AFTER UPDATE ON t FOR EACH ROW\n\
                      IF NEW.a > 1 THEN INSERT INTO log VALUES (1); END IF;\n\
                      INSERT INTO t VALUES (1);";
        let s = stmts(script, MY);
        assert_eq!(s.len(), 3, "{s:#?}");
        assert_eq!(s[2], "INSERT INTO t VALUES (1);");
    }

    #[test]
    fn my_event_body() {
        let script = "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN DELETE FROM a; DELETE FROM b; END;\n\
                      CREATE EVENT e2 ON SCHEDULE EVERY 1 DAY DO DELETE FROM c; SELECT 1;";
        assert_eq!(stmts(script, MY).len(), 3);
    }

    #[test]
    fn my_handler_block_and_labels() {
        let script = "CREATE PROCEDURE p() BEGIN\n\
                      DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN SET @e = 1; END;\n\
                      DECLARE c CURSOR FOR SELECT 1;\n\
                      outer_block: BEGIN SELECT 1; END outer_block;\n\
                      END; SELECT 2;";
        assert_eq!(stmts(script, MY).len(), 2);
    }

    #[test]
    fn my_non_routine_creates_do_not_track_blocks() {
        // `event`, `trigger` and `begin` as identifiers in plain DDL.
        let script =
            "CREATE TABLE event (id INT, `begin` INT, trigger_at INT); BEGIN; SELECT 1; COMMIT;";
        assert_eq!(stmts(script, MY).len(), 4);
        let script = "CREATE OR REPLACE ALGORITHM=MERGE DEFINER=`a`@`b` SQL SECURITY INVOKER VIEW \
                      procedure_v AS SELECT 1; BEGIN; SELECT 2;";
        assert_eq!(stmts(script, MY).len(), 3);
    }

    #[test]
    fn my_delimiter_is_not_special() {
        let script = "DELIMITER $$\nSELECT 1$$\nDELIMITER ;\nSELECT 2;";
        assert_eq!(
            texts(script, MY),
            ["DELIMITER $$\nSELECT 1$$\nDELIMITER ;", "\nSELECT 2;"]
        );
        assert_eq!(texts("DELIMITER ;\nSELECT 1;", MY).len(), 2);
    }

    // ----- SQLite ------------------------------------------------------------------------

    #[test]
    fn lite_quoting() {
        assert_eq!(
            stmts(
                "SELECT [a;b], `c``;`, \"d\"\";\", 'e'';'; SELECT '\\'; SELECT 3;",
                LITE
            ),
            [
                "SELECT [a;b], `c``;`, \"d\"\";\", 'e'';';",
                "SELECT '\\';",
                "SELECT 3;"
            ]
        );
    }

    #[test]
    fn lite_brackets_are_only_identifiers_in_sqlite() {
        assert_eq!(texts("SELECT a[1;2]", PG).len(), 2);
        assert_eq!(texts("SELECT a[1;2]", LITE).len(), 1);
    }

    #[test]
    fn lite_dash_dash_is_always_a_comment() {
        assert_eq!(texts("SELECT 1--x;\n; SELECT 2;", LITE).len(), 2);
    }

    #[test]
    fn lite_trigger_body() {
        let script = "CREATE TRIGGER t_audit AFTER UPDATE ON t\n\
                      WHEN CASE WHEN old.a THEN 1 END\n\
                      BEGIN\n\
                        INSERT INTO audit VALUES (old.id);\n\
                        UPDATE t SET b = CASE WHEN new.a > 0 THEN 'x;' ELSE 'y' END WHERE id = new.id;\n\
                      END;\n\
                      CREATE TEMP TRIGGER t2 BEFORE DELETE ON t BEGIN SELECT RAISE(ABORT, 'no'); END;\n\
                      create temporary trigger if not exists t3 after insert on t begin delete from x; end;\n\
                      INSERT INTO t VALUES (1);";
        let s = split(script, LITE);
        assert_eq!(s.len(), 4, "{s:#?}");
        assert_eq!(s[1].line, 7);
        assert_eq!(s[3].trimmed(), "INSERT INTO t VALUES (1);");
    }

    #[test]
    fn lite_begin_transaction_is_not_a_body() {
        assert_eq!(
            stmts(
                "BEGIN TRANSACTION; CREATE TABLE beginning (end_at INT); END TRANSACTION;",
                LITE
            ),
            [
                "BEGIN TRANSACTION;",
                "CREATE TABLE beginning (end_at INT);",
                "END TRANSACTION;"
            ]
        );
    }

    // ----- property checks ---------------------------------------------------------------

    /// A small deterministic PRNG (SplitMix64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    /// Whitespace or a comment (possibly holding `;`), always starting with whitespace.
    fn separator(rng: &mut Rng, f: Flavor) -> &'static str {
        const COMMON: &[&str] = &[" ", "\n", "\t", "  \r\n", " /* ; */ ", " /*;'\"`$$*/\n"];
        const DASH: &[&str] = &[" -- ; ' \" $$ /*\n", " --;x\n"];
        const MY_DASH: &[&str] = &[" -- ; ' \" /*\n", " --\t;\n", " # ; ' \n", " #;\n"];
        const PG_NESTED: &[&str] = &[" /* a /* ; */ ; */ ", " /*/ ; */ "];
        match rng.below(4) {
            0 | 1 => rng.pick(COMMON),
            _ => match f {
                Flavor::Postgres if rng.chance(50) => rng.pick(PG_NESTED),
                Flavor::MySql => rng.pick(MY_DASH),
                _ => rng.pick(DASH),
            },
        }
    }

    /// One token-ish fragment of a plain statement; never holds a top-level `;` or a
    /// keyword that affects block tracking.
    fn fragment(rng: &mut Rng, f: Flavor) -> &'static str {
        const COMMON: &[&str] = &[
            "x",
            "tbl",
            "col_1",
            "a$b",
            "beginning",
            "endless",
            "ending",
            "cased",
            "iffy",
            "1",
            "42",
            "3.14",
            ",",
            "+",
            "=",
            "*",
            "-",
            "<>",
            ".",
            "( a , 1 )",
            "()",
            "'a;b'",
            "'it'';s;'",
            "''",
            "'é;日'",
            "ünï",
            "@v",
        ];
        const PG_ONLY: &[&str] = &[
            "E'\\';'",
            "e'a''b;\\\\'",
            "'\\'",
            "'a\\'",
            "$$ ; $$",
            "$$$$",
            "$fn$ a $$ ; $ fn$ $fn$",
            "$é$;$é$",
            "$1",
            "$23",
            "U&'d\\0061t;'",
            "\"a\"\";b\"",
            "\"it's;\"",
            "name'x\\'",
            "::",
            "B'1;0'",
        ];
        const MY_ONLY: &[&str] = &[
            "'a\\';b'",
            "\"x\\\";y\"",
            "\"q\"\";\"",
            "`a``;b`",
            "1--1",
            "/*!40101 SET x=1; */",
            "/*!50001 ; */",
            "X'0A'",
            "@@session.x",
            "_utf8mb4'a;'",
        ];
        const LITE_ONLY: &[&str] = &[
            "[a;b]",
            "[x'y]",
            "`a``;b`",
            "\"a\"\";b\"",
            "'\\'",
            "X'00'",
            "?1",
            ":name",
        ];
        if rng.chance(40) {
            rng.pick(match f {
                Flavor::Postgres => PG_ONLY,
                Flavor::MySql => MY_ONLY,
                Flavor::Sqlite => LITE_ONLY,
            })
        } else {
            rng.pick(COMMON)
        }
    }

    /// A plain statement without its `;`.
    fn plain(rng: &mut Rng, f: Flavor, out: &mut String) {
        const FIRST: &[&str] = &[
            "SELECT", "UPDATE", "insert", "Delete", "ALTER", "DROP", "VACUUM",
        ];
        out.push_str(rng.pick(FIRST));
        for _ in 0..rng.below(8) {
            out.push_str(separator(rng, f));
            out.push_str(fragment(rng, f));
        }
    }

    /// A routine/trigger statement with inner `;`s, without its final `;`.
    fn routine(rng: &mut Rng, f: Flavor, out: &mut String) {
        let inner = |rng: &mut Rng, out: &mut String| {
            out.push(' ');
            plain(rng, f, out);
            out.push(';');
        };
        match f {
            Flavor::Postgres => {
                out.push_str(rng.pick(&[
                    "CREATE FUNCTION f() RETURNS int LANGUAGE sql",
                    "create or replace procedure p(a int) language sql",
                ]));
                out.push_str(" BEGIN ATOMIC");
                for _ in 0..rng.below(4) {
                    inner(rng, out);
                    if rng.chance(30) {
                        out.push_str(" SELECT CASE WHEN x THEN 1 ELSE 2 END;");
                    }
                }
                out.push_str(" END");
            }
            Flavor::MySql => {
                out.push_str(rng.pick(&[
                    "CREATE PROCEDURE p()",
                    "CREATE DEFINER=`root`@`%` FUNCTION f() RETURNS INT",
                    "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW",
                    "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO",
                ]));
                out.push_str(" BEGIN");
                for _ in 0..rng.below(5) {
                    match rng.below(7) {
                        0 => {
                            out.push_str(" IF x THEN");
                            inner(rng, out);
                            out.push_str(" ELSE");
                            inner(rng, out);
                            out.push_str(" END IF;");
                        }
                        1 => {
                            out.push_str(" lbl: LOOP");
                            inner(rng, out);
                            out.push_str(" END LOOP lbl;");
                        }
                        2 => {
                            out.push_str(" WHILE x DO");
                            inner(rng, out);
                            out.push_str(" END WHILE;");
                        }
                        3 => {
                            out.push_str(" CASE x WHEN 1 THEN");
                            inner(rng, out);
                            out.push_str(" END CASE;");
                        }
                        4 => out.push_str(" SET y = CASE WHEN a THEN IF(b, 1, 2) END;"),
                        5 => {
                            out.push_str(" BEGIN");
                            inner(rng, out);
                            out.push_str(" END;");
                        }
                        _ => inner(rng, out),
                    }
                }
                out.push_str(" END");
            }
            Flavor::Sqlite => {
                out.push_str(rng.pick(&[
                    "CREATE TRIGGER t AFTER INSERT ON x",
                    "CREATE TEMP TRIGGER t BEFORE DELETE ON x WHEN CASE WHEN 1 THEN 1 END",
                ]));
                out.push_str(" BEGIN");
                for _ in 0..=rng.below(3) {
                    inner(rng, out);
                    if rng.chance(30) {
                        out.push_str(" UPDATE x SET a = CASE WHEN 1 THEN 2 END;");
                    }
                }
                out.push_str(" END");
            }
        }
    }

    /// A random script and the byte offsets where statements must end.
    fn script(rng: &mut Rng, f: Flavor) -> (String, Vec<usize>) {
        let mut out = String::new();
        let mut ends = Vec::new();
        for _ in 0..rng.below(6) {
            for _ in 0..rng.below(3) {
                out.push_str(separator(rng, f));
            }
            match rng.below(10) {
                0 => {}
                1 | 2 => routine(rng, f, &mut out),
                _ => plain(rng, f, &mut out),
            }
            if rng.chance(30) {
                out.push_str(separator(rng, f));
            }
            out.push(';');
            ends.push(out.len());
        }
        match rng.below(3) {
            0 => {}
            1 => out.push_str(separator(rng, f)),
            _ => plain(rng, f, &mut out),
        }
        if out.len() > ends.last().copied().unwrap_or(0) {
            ends.push(out.len());
        }
        (out, ends)
    }

    /// Invariants that hold for any input.
    fn check_invariants(script: &str, f: Flavor) -> Vec<Statement<'_>> {
        let s = split(script, f);
        assert_eq!(s.iter().map(|s| s.text).collect::<String>(), script);
        let mut offset = 0;
        let mut last_line = 1;
        for (i, st) in s.iter().enumerate() {
            assert_eq!(st.offset, offset, "{script:?}");
            assert!(!st.text.is_empty(), "{script:?}");
            assert_eq!(st.flavor, f);
            if i + 1 < s.len() {
                assert!(st.text.ends_with(';'), "{script:?}");
            }
            let lead = lead_len(st.text, f);
            let first = if lead < st.text.len() {
                offset + lead
            } else {
                offset
            };
            let expected_line = 1 + script[..first].matches('\n').count();
            assert_eq!(st.line, expected_line, "{script:?}");
            assert!(st.line >= last_line);
            last_line = st.line;
            let trimmed = st.trimmed();
            assert!(st.text[lead..].starts_with(trimmed));
            assert!(st.keywords(4).len() <= 4);
            if st.is_blank() {
                assert!(st.keywords(1).is_empty());
                assert!(trimmed.is_empty() || trimmed.starts_with(';'));
            }
            offset += st.text.len();
        }
        s
    }

    #[test]
    fn property_split_points_are_exactly_the_intended_boundaries() {
        let mut rng = Rng(0x5EED);
        for f in ALL {
            for _ in 0..1500 {
                let (script, ends) = script(&mut rng, f);
                let s = check_invariants(&script, f);
                let got: Vec<usize> = s.iter().map(|s| s.offset + s.text.len()).collect();
                assert_eq!(got, ends, "{f:?} {script:?}\n{s:#?}");
            }
        }
    }

    #[test]
    fn property_truncated_scripts_keep_the_invariants() {
        let mut rng = Rng(0x7A11);
        for f in ALL {
            for _ in 0..24 {
                let (script, _) = script(&mut rng, f);
                for (cut, _) in script.char_indices() {
                    check_invariants(&script[..cut], f);
                    check_invariants(&script[cut..], f);
                }
            }
        }
    }

    #[test]
    fn property_arbitrary_input_never_panics() {
        const CHUNKS: &[&str] = &[
            "'",
            "\"",
            "`",
            "$",
            "$$",
            "$a$",
            "$1",
            "-",
            "--",
            "#",
            "/",
            "*",
            "/*",
            "*/",
            "/*!",
            "/*M!",
            ";",
            "\\",
            "[",
            "]",
            "(",
            ")",
            ":",
            "E",
            "e'",
            "U&'",
            "a",
            "1",
            " ",
            "\n",
            "\r",
            "\t",
            "\u{b}",
            "é",
            "日",
            "\u{0}",
            "\u{7f}",
            "BEGIN",
            "end",
            "CASE",
            "IF",
            "LOOP",
            "END IF",
            "CREATE",
            "FUNCTION",
            "PROCEDURE",
            "TRIGGER",
            "or replace",
            "temp",
            "ROW",
            "DO",
            "then",
        ];
        let mut rng = Rng(0xF022);
        for f in ALL {
            for _ in 0..3000 {
                let mut input = String::new();
                for _ in 0..rng.below(40) {
                    if rng.chance(10) {
                        // Any Unicode scalar value.
                        let c = char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}');
                        input.push(c);
                    } else {
                        input.push_str(rng.pick(CHUNKS));
                    }
                }
                check_invariants(&input, f);
            }
        }
    }
}
