//! From one statement's tokens (the splitter's lexer) to what the statement does, as far as
//! the rules care: a small recursive-descent reader of the DDL/DML shapes that Prisma (and
//! people editing its migrations) write. Anything else is [`Stmt::Other`]: the rules then
//! say nothing, which is the safe direction for a linter that must never stop a deploy on a
//! statement it did not understand.

use crate::sql::{Flavor, SqlToken, Statement, TokenKind};

/// A possibly schema-qualified name, unquoted (PostgreSQL folds unquoted names to lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QName {
    pub schema: Option<String>,
    pub name: String,
}

impl QName {
    /// `schema.name` or `name`, for messages.
    pub fn display(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    /// The type as written, words joined by one space (`character varying(10)`), uppercased.
    pub type_name: String,
    pub not_null: bool,
    pub primary_key: bool,
    pub unique: bool,
    /// The `DEFAULT` expression as written.
    pub default: Option<String>,
    /// `GENERATED ALWAYS AS (…) STORED`.
    pub generated_stored: bool,
    /// `GENERATED … AS IDENTITY`, `SERIAL` types, MySQL `AUTO_INCREMENT`: a value for every row.
    pub auto_value: bool,
    pub references: Option<(QName, Vec<String>)>,
    pub check: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintKind {
    /// `None` for an index element that is an expression, not a column.
    Unique(Vec<Option<String>>),
    PrimaryKey(Vec<Option<String>>),
    ForeignKey {
        columns: Vec<String>,
        parent: QName,
        parent_columns: Vec<String>,
    },
    Check(String),
    /// `ADD CONSTRAINT … UNIQUE/PRIMARY KEY USING INDEX`, `EXCLUDE`, …
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    AddColumn(ColumnDef),
    DropColumn(String),
    /// `ALTER COLUMN … TYPE` (PostgreSQL) or `MODIFY`/`CHANGE` (MySQL).
    ColumnType {
        column: String,
        type_name: String,
        /// PostgreSQL's `USING (…)` expression, as written.
        using: Option<String>,
        /// MySQL's `MODIFY … NOT NULL`: the column also becomes required.
        not_null: bool,
    },
    SetNotNull(String),
    /// `VALIDATE CONSTRAINT name`.
    Validate(String),
    /// Drops a constraint or an index, or `DROP NOT NULL`: a later data change may rely on
    /// it being gone.
    Loosen,
    AddConstraint {
        name: Option<String>,
        kind: ConstraintKind,
        not_valid: bool,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    RenameTo(String),
    /// Something that rewrites the whole table: `SET LOGGED`, `SET TABLESPACE`, MySQL `ENGINE=`…
    Rewrite(String),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    pub name: Option<String>,
    pub table: QName,
    pub unique: bool,
    pub concurrently: bool,
    pub columns: Vec<Option<String>>,
    /// Each element's text as written (an expression's, for elements that are not a column).
    pub elements: Vec<String>,
    /// The `WHERE` predicate of a partial index, as written.
    pub predicate: Option<String>,
    /// `NULLS NOT DISTINCT` (PostgreSQL 15+): NULLs count as equal.
    pub nulls_not_distinct: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    CreateTable {
        table: QName,
        columns: Vec<ColumnDef>,
        /// `CREATE TABLE … AS SELECT` / `LIKE`: rows or columns come from elsewhere.
        copied: bool,
    },
    AlterTable {
        table: QName,
        actions: Vec<Action>,
    },
    /// MySQL `RENAME TABLE a TO b`.
    RenameTables(Vec<(QName, String)>),
    CreateIndex(IndexDef),
    DropIndex {
        names: Vec<QName>,
        concurrently: bool,
    },
    DropTable(Vec<QName>),
    Truncate(Vec<QName>),
    Update {
        table: QName,
        has_where: bool,
    },
    Delete {
        table: QName,
        has_where: bool,
    },
    Insert(QName),
    /// `WITH … DELETE/UPDATE/INSERT …`: the tables its data-modifying parts write.
    With(Vec<QName>),
    CreateEnum {
        name: QName,
        values: Vec<String>,
    },
    RenameType {
        from: QName,
        to: String,
    },
    /// `ALTER TYPE … ADD VALUE 'v'`.
    AddEnumValue {
        name: QName,
        value: String,
    },
    DropType(Vec<QName>),
    DropView(Vec<QName>),
    /// `VACUUM FULL`, `CLUSTER`: rewrites under an ACCESS EXCLUSIVE lock.
    Rewrite {
        table: Option<QName>,
        what: String,
    },
    Other,
}

/// Reads one statement.
pub fn classify(statement: &Statement<'_>) -> Stmt {
    let tokens: Vec<SqlToken<'_>> = statement.tokens().collect();
    let mut c = Cursor {
        t: &tokens,
        i: 0,
        flavor: statement.flavor,
        src: statement.text,
    };
    c.statement().unwrap_or(Stmt::Other)
}

struct Cursor<'t, 's> {
    t: &'t [SqlToken<'s>],
    i: usize,
    flavor: Flavor,
    src: &'s str,
}

impl<'s> Cursor<'_, 's> {
    fn peek(&self) -> Option<&SqlToken<'s>> {
        self.t.get(self.i)
    }

    fn peek_at(&self, n: usize) -> Option<&SqlToken<'s>> {
        self.t.get(self.i + n)
    }

    fn is_kw_at(&self, n: usize, kw: &str) -> bool {
        self.peek_at(n)
            .is_some_and(|t| t.kind == TokenKind::Word && t.text.eq_ignore_ascii_case(kw))
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.is_kw_at(0, kw)
    }

    fn is_punct(&self, p: &str) -> bool {
        self.peek()
            .is_some_and(|t| t.kind == TokenKind::Punct && t.text == p)
    }

    fn at_end(&self) -> bool {
        self.peek().is_none_or(|t| t.kind == TokenKind::Semi)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.i += 1;
        }
        yes
    }

    /// Eats the keywords in order, or nothing.
    fn eat_kws(&mut self, kws: &[&str]) -> bool {
        if kws.iter().enumerate().all(|(n, kw)| self.is_kw_at(n, kw)) {
            self.i += kws.len();
            true
        } else {
            false
        }
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        let yes = self.is_punct(p);
        if yes {
            self.i += 1;
        }
        yes
    }

    fn bump(&mut self) -> Option<SqlToken<'s>> {
        let token = self.t.get(self.i).copied();
        if token.is_some() {
            self.i += 1;
        }
        token
    }

    /// One identifier part: a word or a quoted identifier, unquoted and case-folded the way
    /// the database folds it.
    fn ident(&mut self) -> Option<String> {
        let token = *self.peek()?;
        let name = match token.kind {
            TokenKind::Word => match self.flavor {
                Flavor::Postgres => token.text.to_ascii_lowercase(),
                Flavor::MySql | Flavor::Sqlite => token.text.to_owned(),
            },
            TokenKind::QuotedIdent => unquote(token.text),
            // MySQL accepts "…" only with ANSI_QUOTES; Prisma never writes it. SQLite's `'…'` names
            // are legacy. Neither is read as a name.
            _ => return None,
        };
        self.i += 1;
        Some(name)
    }

    /// `name` or `schema.name` (a database prefix on MySQL/SQLite is kept as the schema).
    fn qname(&mut self) -> Option<QName> {
        let first = self.ident()?;
        if self.is_punct(".") {
            self.i += 1;
            let second = self.ident()?;
            // `db.schema.table` (rare): keep the last two parts.
            if self.is_punct(".") {
                self.i += 1;
                let third = self.ident()?;
                return Some(QName {
                    schema: Some(second),
                    name: third,
                });
            }
            return Some(QName {
                schema: Some(first),
                name: second,
            });
        }
        Some(QName {
            schema: None,
            name: first,
        })
    }

    fn skip_if_exists(&mut self) {
        self.eat_kws(&["IF", "NOT", "EXISTS"]);
        self.eat_kws(&["IF", "EXISTS"]);
    }

    /// At `(`: the index just past the matching `)` (or the end), and the tokens inside.
    fn group(&mut self) -> Option<(usize, usize)> {
        if !self.is_punct("(") {
            return None;
        }
        let start = self.i + 1;
        let mut depth = 0usize;
        while let Some(token) = self.bump() {
            if token.kind == TokenKind::Punct {
                match token.text {
                    "(" => depth += 1,
                    ")" => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Some((start, self.i - 1));
                        }
                    }
                    _ => {}
                }
            }
        }
        Some((start, self.i))
    }

    /// The source text of tokens `from..to`.
    fn text(&self, from: usize, to: usize) -> String {
        match (
            self.t.get(from),
            to.checked_sub(1).and_then(|l| self.t.get(l)),
        ) {
            (Some(first), Some(last)) if from < to => {
                self.src[first.offset..last.offset + last.text.len()].to_owned()
            }
            _ => String::new(),
        }
    }

    /// Splits tokens `from..to` at top-level commas.
    fn items(&self, from: usize, to: usize) -> Vec<(usize, usize)> {
        let mut items = Vec::new();
        let mut depth = 0usize;
        let mut start = from;
        for i in from..to.min(self.t.len()) {
            let token = &self.t[i];
            if token.kind != TokenKind::Punct {
                continue;
            }
            match token.text {
                "(" => depth += 1,
                ")" => depth = depth.saturating_sub(1),
                "," if depth == 0 => {
                    items.push((start, i));
                    start = i + 1;
                }
                _ => {}
            }
        }
        if start < to {
            items.push((start, to));
        }
        items
    }

    /// A sub-cursor over tokens `from..to`.
    fn sub(&self, from: usize, to: usize) -> Cursor<'_, 's> {
        Cursor {
            t: &self.t[..to.min(self.t.len())],
            i: from,
            flavor: self.flavor,
            src: self.src,
        }
    }

    /// An index/constraint column list `(a, b, lower(c))`: a name per plain column.
    fn column_list(&mut self) -> Option<Vec<Option<String>>> {
        let (from, to) = self.group()?;
        let items = self.items(from, to);
        Some(
            items
                .into_iter()
                .map(|(a, b)| {
                    let mut sub = self.sub(a, b);
                    let name = sub.ident();
                    // Only `col [ASC|DESC] [NULLS FIRST|LAST] [opclass]` is a plain column; a `(`
                    // right after the name is a function call.
                    match name {
                        Some(name) if !sub.is_punct("(") && !sub.is_punct(".") => {
                            let rest_is_plain = (sub.i..b).all(|k| {
                                matches!(sub.t[k].kind, TokenKind::Word | TokenKind::QuotedIdent)
                                    || (sub.t[k].kind == TokenKind::Number)
                            });
                            rest_is_plain.then_some(name)
                        }
                        _ => None,
                    }
                })
                .collect(),
        )
    }

    /// At `(`: each top-level element's text, without moving.
    fn element_texts(&mut self) -> Vec<String> {
        let save = self.i;
        let texts = match self.group() {
            Some((from, to)) => self
                .items(from, to)
                .into_iter()
                .map(|(a, b)| self.text(a, b))
                .collect(),
            None => Vec::new(),
        };
        self.i = save;
        texts
    }

    fn plain_columns(&mut self) -> Option<Vec<String>> {
        self.column_list()?.into_iter().collect()
    }

    fn statement(&mut self) -> Option<Stmt> {
        if self.eat_kw("CREATE") {
            self.eat_kws(&["OR", "REPLACE"]);
            if self.is_kw("UNIQUE") || self.is_kw("INDEX") {
                return self.create_index();
            }
            while self.eat_kw("TEMP")
                || self.eat_kw("TEMPORARY")
                || self.eat_kw("UNLOGGED")
                || self.eat_kw("GLOBAL")
                || self.eat_kw("LOCAL")
            {}
            if self.eat_kw("TABLE") {
                return self.create_table();
            }
            if self.eat_kw("TYPE") {
                return self.create_type();
            }
            return Some(Stmt::Other);
        }
        if self.eat_kw("ALTER") {
            if self.eat_kw("TABLE") {
                return self.alter_table();
            }
            if self.eat_kw("TYPE") {
                let from = self.qname()?;
                if self.eat_kws(&["RENAME", "TO"]) {
                    let to = self.ident()?;
                    return Some(Stmt::RenameType { from, to });
                }
                if self.eat_kws(&["ADD", "VALUE"]) {
                    self.skip_if_exists();
                    let token = self.bump()?;
                    if token.kind != TokenKind::Str {
                        return Some(Stmt::Other);
                    }
                    return Some(Stmt::AddEnumValue {
                        name: from,
                        value: unquote_string(token.text),
                    });
                }
            }
            return Some(Stmt::Other);
        }
        if self.eat_kw("DROP") {
            if self.eat_kw("TABLE") {
                self.skip_if_exists();
                return Some(Stmt::DropTable(self.qname_list()));
            }
            if self.eat_kw("INDEX") {
                let concurrently = self.eat_kw("CONCURRENTLY");
                self.skip_if_exists();
                return Some(Stmt::DropIndex {
                    names: self.qname_list(),
                    concurrently,
                });
            }
            if self.eat_kw("TYPE") {
                self.skip_if_exists();
                return Some(Stmt::DropType(self.qname_list()));
            }
            if self.eat_kw("VIEW") || self.eat_kws(&["MATERIALIZED", "VIEW"]) {
                self.skip_if_exists();
                return Some(Stmt::DropView(self.qname_list()));
            }
            return Some(Stmt::Other);
        }
        if self.eat_kw("RENAME") {
            self.eat_kw("TABLE");
            let mut pairs = Vec::new();
            loop {
                let from = self.qname()?;
                if !self.eat_kw("TO") {
                    return Some(Stmt::Other);
                }
                let to = self.qname()?.name;
                pairs.push((from, to));
                if !self.eat_punct(",") {
                    break;
                }
            }
            return Some(Stmt::RenameTables(pairs));
        }
        if self.eat_kw("TRUNCATE") {
            self.eat_kw("TABLE");
            self.eat_kw("ONLY");
            return Some(Stmt::Truncate(self.qname_list()));
        }
        if self.eat_kw("WITH") {
            return Some(self.with());
        }
        if self.eat_kw("UPDATE") {
            self.eat_kw("ONLY");
            let table = self.qname()?;
            return Some(Stmt::Update {
                has_where: self.rest_has_kw("WHERE"),
                table,
            });
        }
        if self.eat_kw("DELETE") {
            self.eat_kw("FROM");
            self.eat_kw("ONLY");
            let table = self.qname()?;
            return Some(Stmt::Delete {
                has_where: self.rest_has_kw("WHERE"),
                table,
            });
        }
        if self.eat_kw("INSERT") || self.eat_kw("REPLACE") {
            self.eat_kw("IGNORE");
            self.eat_kw("INTO");
            return Some(Stmt::Insert(self.qname()?));
        }
        if self.eat_kw("COPY") {
            let table = self.qname()?;
            return Some(if self.rest_has_kw("FROM") {
                Stmt::Insert(table)
            } else {
                Stmt::Other
            });
        }
        if self.eat_kw("VACUUM") {
            let full = self.is_kw("FULL")
                || (self.is_punct("(") && {
                    let save = self.i;
                    let full = self.rest_has_kw("FULL");
                    self.i = save;
                    full
                });
            if !full {
                return Some(Stmt::Other);
            }
            if self.is_punct("(") {
                self.group();
            }
            while self.eat_kw("FULL") || self.eat_kw("FREEZE") || self.eat_kw("VERBOSE") {}
            self.eat_kw("ANALYZE");
            return Some(Stmt::Rewrite {
                table: self.qname(),
                what: "VACUUM FULL".into(),
            });
        }
        if self.eat_kw("CLUSTER") {
            self.eat_kw("VERBOSE");
            return Some(Stmt::Rewrite {
                table: self.qname(),
                what: "CLUSTER".into(),
            });
        }
        Some(Stmt::Other)
    }

    /// `WITH [RECURSIVE] a AS (…), … <main>`: the tables written by `DELETE FROM t`,
    /// `UPDATE t`, `INSERT INTO t` anywhere in it (a CTE's or the main statement's).
    fn with(&mut self) -> Stmt {
        let mut targets: Vec<QName> = Vec::new();
        while let Some(token) = self.bump() {
            if token.kind != TokenKind::Word {
                continue;
            }
            let writes = (token.text.eq_ignore_ascii_case("DELETE") && self.eat_kw("FROM"))
                || token.text.eq_ignore_ascii_case("UPDATE");
            let target = if writes {
                self.eat_kw("ONLY");
                self.qname()
            } else if token.text.eq_ignore_ascii_case("INSERT") && self.eat_kw("INTO") {
                self.qname()
            } else {
                None
            };
            if let Some(target) = target
                && !targets.contains(&target)
            {
                targets.push(target);
            }
        }
        if targets.is_empty() {
            Stmt::Other
        } else {
            Stmt::With(targets)
        }
    }

    /// Whether a keyword occurs at parenthesis depth 0 in the rest of the statement.
    fn rest_has_kw(&mut self, kw: &str) -> bool {
        let mut depth = 0usize;
        while let Some(token) = self.bump() {
            match (token.kind, token.text) {
                (TokenKind::Punct, "(") => depth += 1,
                (TokenKind::Punct, ")") => depth = depth.saturating_sub(1),
                (TokenKind::Word, word) if depth == 0 && word.eq_ignore_ascii_case(kw) => {
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    fn qname_list(&mut self) -> Vec<QName> {
        let mut names = Vec::new();
        while let Some(name) = self.qname() {
            names.push(name);
            if !self.eat_punct(",") {
                break;
            }
        }
        names
    }

    fn create_index(&mut self) -> Option<Stmt> {
        let unique = self.eat_kw("UNIQUE");
        if !self.eat_kw("INDEX") {
            return Some(Stmt::Other);
        }
        let concurrently = self.eat_kw("CONCURRENTLY");
        self.skip_if_exists();
        let name = if self.is_kw("ON") {
            None
        } else {
            self.qname().map(|q| q.name)
        };
        // MySQL: `CREATE INDEX i USING BTREE ON t (…)`.
        if self.eat_kw("USING") {
            self.bump();
        }
        if !self.eat_kw("ON") {
            return Some(Stmt::Other);
        }
        self.eat_kw("ONLY");
        let table = self.qname()?;
        if self.eat_kw("USING") {
            self.bump();
        }
        let elements = self.element_texts();
        let columns = self.column_list()?;
        let mut predicate = None;
        let mut nulls_not_distinct = false;
        while !self.at_end() {
            if self.eat_kws(&["NULLS", "NOT", "DISTINCT"]) {
                nulls_not_distinct = true;
                continue;
            }
            if self.eat_kw("WHERE") {
                let from = self.i;
                let mut to = self.t.len();
                if self.t.last().is_some_and(|t| t.kind == TokenKind::Semi) {
                    to -= 1;
                }
                predicate = Some(self.text(from, to));
                break;
            }
            if self.is_punct("(") {
                self.group();
            } else {
                self.i += 1;
            }
        }
        Some(Stmt::CreateIndex(IndexDef {
            name,
            table,
            unique,
            concurrently,
            columns,
            elements,
            predicate,
            nulls_not_distinct,
        }))
    }

    fn create_table(&mut self) -> Option<Stmt> {
        self.skip_if_exists();
        let table = self.qname()?;
        if !self.is_punct("(") {
            // `CREATE TABLE t AS …`, `CREATE TABLE t LIKE u`, `PARTITION OF …`.
            return Some(Stmt::CreateTable {
                table,
                columns: Vec::new(),
                copied: true,
            });
        }
        let (from, to) = self.group()?;
        let mut columns = Vec::new();
        let mut copied = false;
        for (a, b) in self.items(from, to) {
            let mut sub = self.sub(a, b);
            if sub.is_kw("CONSTRAINT")
                || sub.is_kw("PRIMARY")
                || sub.is_kw("UNIQUE")
                || sub.is_kw("FOREIGN")
                || sub.is_kw("CHECK")
                || sub.is_kw("EXCLUDE")
                || sub.is_kw("KEY")
                || sub.is_kw("INDEX")
                || sub.is_kw("FULLTEXT")
                || sub.is_kw("SPATIAL")
            {
                continue;
            }
            if sub.is_kw("LIKE") {
                copied = true;
                continue;
            }
            if let Some(column) = sub.column_def(b) {
                columns.push(column);
            }
        }
        if self.rest_has_kw("AS") {
            copied = true;
        }
        Some(Stmt::CreateTable {
            table,
            columns,
            copied,
        })
    }

    /// `name type [constraints…]` up to token `end`.
    fn column_def(&mut self, end: usize) -> Option<ColumnDef> {
        let name = self.ident()?;
        let mut type_words = Vec::new();
        while self.i < end {
            let token = self.t[self.i];
            let stops = token.kind == TokenKind::Word
                && COLUMN_CONSTRAINT_WORDS
                    .iter()
                    .any(|w| token.text.eq_ignore_ascii_case(w));
            if stops {
                break;
            }
            if self.is_punct("(") {
                let (a, b) = self.group()?;
                type_words.push(format!("({})", self.text(a, b)));
                continue;
            }
            type_words.push(match token.kind {
                TokenKind::QuotedIdent => unquote(token.text),
                _ => token.text.to_ascii_uppercase(),
            });
            self.i += 1;
        }
        let type_name = type_words.join(" ").replace(" (", "(").replace(" [", "[");
        let serial = matches!(
            type_name.as_str(),
            "SERIAL" | "BIGSERIAL" | "SMALLSERIAL" | "SERIAL4" | "SERIAL8" | "SERIAL2"
        );
        let mut column = ColumnDef {
            name,
            type_name,
            not_null: false,
            primary_key: false,
            unique: false,
            default: None,
            generated_stored: false,
            auto_value: serial,
            references: None,
            check: None,
        };
        while self.i < end {
            if self.eat_kws(&["NOT", "NULL"]) {
                column.not_null = true;
            } else if self.eat_kws(&["PRIMARY", "KEY"]) {
                column.primary_key = true;
                column.not_null = true;
            } else if self.eat_kw("UNIQUE") {
                column.unique = true;
                self.eat_kw("KEY");
            } else if self.eat_kw("DEFAULT") {
                let from = self.i;
                self.expression_until(end);
                column.default = Some(self.text(from, self.i));
            } else if self.eat_kw("GENERATED") {
                let from = self.i;
                self.expression_until(end);
                let clause = self.text(from, self.i).to_ascii_uppercase();
                if clause.contains("IDENTITY") {
                    column.auto_value = true;
                } else {
                    // PostgreSQL's generated columns are STORED (it has no other kind before 18);
                    // MySQL's default is VIRTUAL.
                    column.generated_stored =
                        clause.contains("STORED") || self.flavor == Flavor::Postgres;
                }
            } else if self.eat_kw("AUTO_INCREMENT") || self.eat_kw("AUTOINCREMENT") {
                column.auto_value = true;
            } else if self.eat_kw("REFERENCES") {
                let parent = self.qname()?;
                let parent_columns = if self.is_punct("(") {
                    self.plain_columns().unwrap_or_default()
                } else {
                    Vec::new()
                };
                column.references = Some((parent, parent_columns));
            } else if self.eat_kw("CHECK") {
                if let Some((a, b)) = self.group() {
                    column.check = Some(self.text(a, b));
                }
            } else if self.is_punct("(") {
                self.group();
            } else {
                self.i += 1;
            }
        }
        Some(column)
    }

    /// Skips an expression: up to the next column-constraint keyword at depth 0, or `end`.
    fn expression_until(&mut self, end: usize) {
        let mut first = true;
        while self.i < end {
            if self.is_punct("(") {
                self.group();
                first = false;
                continue;
            }
            let token = self.t[self.i];
            let stops = token.kind == TokenKind::Word
                && !first
                && EXPRESSION_END_WORDS
                    .iter()
                    .any(|w| token.text.eq_ignore_ascii_case(w));
            if stops {
                return;
            }
            first = false;
            self.i += 1;
        }
    }

    fn create_type(&mut self) -> Option<Stmt> {
        let name = self.qname()?;
        if !self.eat_kws(&["AS", "ENUM"]) {
            return Some(Stmt::Other);
        }
        let (from, to) = self.group()?;
        let values = (from..to)
            .filter_map(|k| {
                let token = self.t[k];
                (token.kind == TokenKind::Str).then(|| unquote_string(token.text))
            })
            .collect();
        Some(Stmt::CreateEnum { name, values })
    }

    fn alter_table(&mut self) -> Option<Stmt> {
        self.skip_if_exists();
        self.eat_kw("ONLY");
        let table = self.qname()?;
        self.eat_punct("*");
        let mut end = self.t.len();
        if self.t.last().is_some_and(|t| t.kind == TokenKind::Semi) {
            end -= 1;
        }
        let actions = self
            .items(self.i, end)
            .into_iter()
            .map(|(a, b)| self.sub(a, b).action(b))
            .collect();
        Some(Stmt::AlterTable { table, actions })
    }

    fn action(&mut self, end: usize) -> Action {
        self.action_inner(end).unwrap_or(Action::Other)
    }

    fn action_inner(&mut self, end: usize) -> Option<Action> {
        if self.eat_kw("ADD") {
            if self.is_kw("CONSTRAINT")
                || self.is_kw("PRIMARY")
                || self.is_kw("UNIQUE")
                || self.is_kw("FOREIGN")
                || self.is_kw("CHECK")
                || self.is_kw("EXCLUDE")
            {
                return self.constraint(end);
            }
            if self.is_kw("INDEX") || self.is_kw("KEY") || self.is_kw("FULLTEXT") {
                return Some(Action::Other);
            }
            self.eat_kw("COLUMN");
            self.skip_if_exists();
            return Some(Action::AddColumn(self.column_def(end)?));
        }
        if self.eat_kw("DROP") {
            if self.is_kw("DEFAULT") {
                return Some(Action::Other);
            }
            if self.is_kw("CONSTRAINT")
                || self.is_kw("INDEX")
                || self.is_kw("KEY")
                || self.is_kw("FOREIGN")
                || self.is_kw("PRIMARY")
                || self.is_kw("CHECK")
            {
                return Some(Action::Loosen);
            }
            self.eat_kw("COLUMN");
            self.skip_if_exists();
            return Some(Action::DropColumn(self.ident()?));
        }
        if self.eat_kw("ALTER") {
            self.eat_kw("COLUMN");
            let column = self.ident()?;
            if self.eat_kws(&["SET", "NOT", "NULL"]) {
                return Some(Action::SetNotNull(column));
            }
            if self.eat_kws(&["DROP", "NOT", "NULL"]) {
                return Some(Action::Loosen);
            }
            if self.eat_kws(&["SET", "DATA", "TYPE"]) || self.eat_kw("TYPE") {
                let from = self.i;
                while self.i < end && !self.is_kw("USING") && !self.is_kw("COLLATE") {
                    if self.is_punct("(") {
                        self.group();
                    } else {
                        self.i += 1;
                    }
                }
                let type_name = self.type_text(from, self.i);
                while self.i < end && !self.is_kw("USING") {
                    self.i += 1;
                }
                let using = self
                    .eat_kw("USING")
                    .then(|| self.text(self.i, end))
                    .filter(|u| !u.is_empty());
                return Some(Action::ColumnType {
                    column,
                    type_name,
                    using,
                    not_null: false,
                });
            }
            return Some(Action::Other);
        }
        if self.eat_kw("MODIFY") {
            self.eat_kw("COLUMN");
            let column = self.column_def(end)?;
            return Some(Action::ColumnType {
                column: column.name,
                type_name: column.type_name,
                using: None,
                not_null: column.not_null,
            });
        }
        if self.eat_kw("CHANGE") {
            self.eat_kw("COLUMN");
            let from = self.ident()?;
            let column = self.column_def(end)?;
            if column.name != from {
                return Some(Action::RenameColumn {
                    from,
                    to: column.name,
                });
            }
            return Some(Action::ColumnType {
                column: column.name,
                type_name: column.type_name,
                using: None,
                not_null: column.not_null,
            });
        }
        if self.eat_kws(&["VALIDATE", "CONSTRAINT"]) {
            return Some(Action::Validate(self.ident()?));
        }
        if self.eat_kw("RENAME") {
            if self.eat_kw("TO") || self.eat_kw("AS") {
                return Some(Action::RenameTo(self.qname()?.name));
            }
            if self.is_kw("CONSTRAINT") || self.is_kw("INDEX") || self.is_kw("KEY") {
                return Some(Action::Other);
            }
            self.eat_kw("COLUMN");
            let from = self.ident()?;
            if !self.eat_kw("TO") {
                return None;
            }
            let to = self.ident()?;
            return Some(Action::RenameColumn { from, to });
        }
        if self.eat_kws(&["SET", "LOGGED"]) || self.eat_kws(&["SET", "UNLOGGED"]) {
            return Some(Action::Rewrite("SET LOGGED/UNLOGGED".into()));
        }
        if self.eat_kws(&["SET", "TABLESPACE"]) {
            return Some(Action::Rewrite("SET TABLESPACE".into()));
        }
        if self.is_kw("ENGINE") || self.eat_kw("FORCE") {
            return Some(Action::Rewrite("a table rebuild".into()));
        }
        Some(Action::Other)
    }

    /// `[CONSTRAINT name] PRIMARY KEY (…) | UNIQUE (…) | FOREIGN KEY (…) REFERENCES … | CHECK (…)`.
    fn constraint(&mut self, end: usize) -> Option<Action> {
        let name = if self.eat_kw("CONSTRAINT") {
            self.ident()
        } else {
            None
        };
        let kind = if self.eat_kws(&["PRIMARY", "KEY"]) {
            if self.is_kw("USING") {
                ConstraintKind::Other
            } else {
                ConstraintKind::PrimaryKey(self.column_list()?)
            }
        } else if self.eat_kw("UNIQUE") {
            self.eat_kw("KEY");
            self.eat_kw("INDEX");
            self.eat_kws(&["NULLS", "DISTINCT"]);
            if self.is_kws_nulls_not_distinct() || self.is_kw("USING") {
                ConstraintKind::Other
            } else {
                // MySQL `UNIQUE INDEX name (…)`.
                if !self.is_punct("(") {
                    self.ident();
                }
                ConstraintKind::Unique(self.column_list()?)
            }
        } else if self.eat_kws(&["FOREIGN", "KEY"]) {
            if !self.is_punct("(") {
                self.ident();
            }
            let columns = self.plain_columns()?;
            if !self.eat_kw("REFERENCES") {
                return None;
            }
            let parent = self.qname()?;
            let parent_columns = if self.is_punct("(") {
                self.plain_columns()?
            } else {
                Vec::new()
            };
            ConstraintKind::ForeignKey {
                columns,
                parent,
                parent_columns,
            }
        } else if self.eat_kw("CHECK") {
            let (a, b) = self.group()?;
            ConstraintKind::Check(self.text(a, b))
        } else {
            ConstraintKind::Other
        };
        let mut not_valid = false;
        while self.i < end {
            if self.eat_kws(&["NOT", "VALID"]) {
                not_valid = true;
            } else if self.is_punct("(") {
                self.group();
            } else {
                self.i += 1;
            }
        }
        Some(Action::AddConstraint {
            name,
            kind,
            not_valid,
        })
    }

    fn is_kws_nulls_not_distinct(&self) -> bool {
        self.is_kw("NULLS") && self.is_kw_at(1, "NOT")
    }

    /// A type's text, normalised like [`Cursor::column_def`] does.
    fn type_text(&self, from: usize, to: usize) -> String {
        let mut words = Vec::new();
        let mut k = from;
        while k < to {
            let token = self.t[k];
            if token.kind == TokenKind::Punct && token.text == "(" {
                let mut sub = self.sub(k, to);
                if let Some((a, b)) = sub.group() {
                    words.push(format!("({})", self.text(a, b)));
                    k = sub.i;
                    continue;
                }
            }
            words.push(match token.kind {
                TokenKind::QuotedIdent => unquote(token.text),
                _ => token.text.to_ascii_uppercase(),
            });
            k += 1;
        }
        words.join(" ").replace(" (", "(")
    }
}

/// Words that end a column's type in a column definition.
const COLUMN_CONSTRAINT_WORDS: &[&str] = &[
    "NOT",
    "NULL",
    "DEFAULT",
    "PRIMARY",
    "UNIQUE",
    "REFERENCES",
    "CHECK",
    "CONSTRAINT",
    "GENERATED",
    "COLLATE",
    "AUTO_INCREMENT",
    "AUTOINCREMENT",
    "COMMENT",
    "FIRST",
    "AFTER",
    "ON",
    "CHARACTER",
    "CHARSET",
];

/// Words that end a `DEFAULT`/`GENERATED` expression.
const EXPRESSION_END_WORDS: &[&str] = &[
    "NOT",
    "NULL",
    "PRIMARY",
    "UNIQUE",
    "REFERENCES",
    "CHECK",
    "CONSTRAINT",
    "DEFAULT",
    "COLLATE",
    "AUTO_INCREMENT",
    "COMMENT",
    "FIRST",
    "AFTER",
];

/// `"a""b"` → `a"b`; `` `a` `` → `a`; `[a]` → `a`.
fn unquote(text: &str) -> String {
    let mut chars = text.chars();
    let (open, close) = match chars.next() {
        Some('"') => ('"', '"'),
        Some('`') => ('`', '`'),
        Some('[') => ('[', ']'),
        _ => return text.to_owned(),
    };
    let _ = open;
    let inner = text
        .get(1..text.len().saturating_sub(1))
        .filter(|_| text.len() >= 2 && text.ends_with(close))
        .unwrap_or(&text[1..]);
    let doubled = format!("{close}{close}");
    inner.replace(&doubled, &close.to_string())
}

/// `'a''b'` → `a'b` (a plain SQL string; other forms are kept as written).
fn unquote_string(text: &str) -> String {
    match text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::split;

    fn one(sql: &str) -> Stmt {
        let statements = split(sql, Flavor::Postgres);
        classify(&statements[0])
    }

    fn q(name: &str) -> QName {
        QName {
            schema: None,
            name: name.into(),
        }
    }

    #[test]
    fn reads_prisma_alter_table_shapes() {
        let stmt = one(
            r#"ALTER TABLE "User" ADD COLUMN "age" INTEGER NOT NULL, ADD COLUMN "id2" UUID DEFAULT gen_random_uuid(), ALTER COLUMN "name" SET NOT NULL, ALTER COLUMN "n" SET DATA TYPE VARCHAR(10), DROP COLUMN "x";"#,
        );
        let Stmt::AlterTable { table, actions } = stmt else {
            panic!("{stmt:?}")
        };
        assert_eq!(table, q("User"));
        let Action::AddColumn(age) = &actions[0] else {
            panic!()
        };
        assert_eq!(
            (age.name.as_str(), age.type_name.as_str(), age.not_null),
            ("age", "INTEGER", true)
        );
        assert_eq!(age.default, None);
        let Action::AddColumn(id2) = &actions[1] else {
            panic!()
        };
        assert_eq!(id2.default.as_deref(), Some("gen_random_uuid()"));
        assert_eq!(actions[2], Action::SetNotNull("name".into()));
        assert_eq!(
            actions[3],
            Action::ColumnType {
                column: "n".into(),
                type_name: "VARCHAR(10)".into(),
                using: None,
                not_null: false,
            }
        );
        assert_eq!(actions[4], Action::DropColumn("x".into()));
    }

    #[test]
    fn reads_constraints_indexes_and_enums() {
        let stmt = one(
            r#"ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;"#,
        );
        assert_eq!(
            stmt,
            Stmt::AlterTable {
                table: q("Post"),
                actions: vec![Action::AddConstraint {
                    name: Some("Post_authorId_fkey".into()),
                    kind: ConstraintKind::ForeignKey {
                        columns: vec!["authorId".into()],
                        parent: q("User"),
                        parent_columns: vec!["id".into()]
                    },
                    not_valid: false
                }]
            }
        );
        let stmt = one(r#"CREATE UNIQUE INDEX "User_email_key" ON "User"("email", lower(x));"#);
        let Stmt::CreateIndex(index) = stmt else {
            panic!()
        };
        assert!(index.unique && !index.concurrently);
        assert_eq!(index.columns, vec![Some("email".into()), None]);
        let stmt = one("CREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN', 'it''s');");
        assert_eq!(
            stmt,
            Stmt::CreateEnum {
                name: q("Role"),
                values: vec!["USER".into(), "ADMIN".into(), "it's".into()]
            }
        );
        let stmt = one("ALTER TABLE public.t ADD CONSTRAINT c CHECK (price > 0) NOT VALID;");
        let Stmt::AlterTable { table, actions } = stmt else {
            panic!()
        };
        assert_eq!(table.schema.as_deref(), Some("public"));
        assert_eq!(
            actions[0],
            Action::AddConstraint {
                name: Some("c".into()),
                kind: ConstraintKind::Check("price > 0".into()),
                not_valid: true
            }
        );
    }

    #[test]
    fn reads_prismas_current_shapes() {
        let Stmt::AlterTable { actions, .. } = one(
            r#"ALTER TABLE "public"."Order" ALTER COLUMN "type" TYPE "public"."Type_new" USING ("type"::text::"public"."Type_new");"#,
        ) else {
            panic!()
        };
        let Action::ColumnType {
            type_name, using, ..
        } = &actions[0]
        else {
            panic!("{actions:?}")
        };
        assert_eq!(
            crate::preflight::model::enum_name(type_name),
            ("Type_new".into(), false)
        );
        assert_eq!(
            using.as_deref(),
            Some(r#"("type"::text::"public"."Type_new")"#)
        );
        let Stmt::CreateIndex(index) =
            one(r#"CREATE UNIQUE INDEX "U_key" ON "U"("a", lower("b")) NULLS NOT DISTINCT;"#)
        else {
            panic!()
        };
        assert!(index.nulls_not_distinct);
        assert_eq!(index.elements, vec![r#""a""#, r#"lower("b")"#]);
        assert_eq!(
            one(r#"ALTER TABLE "U" VALIDATE CONSTRAINT "U_c";"#),
            Stmt::AlterTable {
                table: q("U"),
                actions: vec![Action::Validate("U_c".into())]
            }
        );
        assert_eq!(
            one(r#"ALTER TYPE "Role" ADD VALUE IF NOT EXISTS 'OWNER' AFTER 'USER';"#),
            Stmt::AddEnumValue {
                name: q("Role"),
                value: "OWNER".into()
            }
        );
        assert_eq!(
            one(
                r#"WITH d AS (SELECT id FROM "U") DELETE FROM "U" WHERE id IN (SELECT id FROM d);"#
            ),
            Stmt::With(vec![q("U")])
        );
        assert_eq!(one(r#"WITH d AS (SELECT 1) SELECT * FROM d;"#), Stmt::Other);
        assert_eq!(
            one(r#"DROP VIEW IF EXISTS "V";"#),
            Stmt::DropView(vec![q("V")])
        );
    }

    #[test]
    fn reads_dml_and_create_table() {
        assert_eq!(
            one("UPDATE t SET a = (SELECT 1 WHERE true);"),
            Stmt::Update {
                table: q("t"),
                has_where: false
            }
        );
        assert_eq!(
            one("DELETE FROM \"T\" WHERE id = 1;"),
            Stmt::Delete {
                table: q("T"),
                has_where: true
            }
        );
        let stmt = one(
            "CREATE TABLE \"A\" (\n \"id\" SERIAL NOT NULL,\n \"n\" TEXT DEFAULT 'x' NOT NULL,\n CONSTRAINT \"A_pkey\" PRIMARY KEY (\"id\")\n);",
        );
        let Stmt::CreateTable { columns, .. } = stmt else {
            panic!()
        };
        assert_eq!(columns.len(), 2);
        assert!(columns[0].auto_value && columns[1].not_null);
        assert_eq!(columns[1].default.as_deref(), Some("'x'"));
        assert_eq!(one("select 1;"), Stmt::Other);
        assert_eq!(one("ALTER TABLE"), Stmt::Other);
    }
}
