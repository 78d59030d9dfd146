//! The static rules: each statement of each migration, in order, against the [`Model`] of
//! what the earlier statements did, gives [`Candidate`]s — a rule, a message, the table
//! whose size weighs on it, and what the data would have to show for it to fail.

use std::collections::HashSet;

use super::classify::{Action, ColumnDef, ConstraintKind, IndexDef, QName, Stmt, classify};
use super::findings::Rule;
use super::model::{Model, Rows, enum_name, quote};
use super::probe::LiveCheck;
use super::suppress;
use super::{Scope, Script};
use crate::sql::{Flavor, TokenKind, split};

/// The table a finding is about, as the plan knows it at that statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Its name in the live database (`None`: created by the plan).
    pub live: Option<QName>,
    pub rows: Rows,
}

/// What would make the statement fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Nothing in the data can make it fail (it may still hurt).
    None,
    /// The plan itself decides: e.g. `SET NOT NULL` on a column the plan added without a default.
    Plan { fails_if_rows: bool, why: String },
    /// Ask the live database, after rehearsing `rehearse` (the plan's earlier statements
    /// that change the rows looked at) in the same rolled-back transaction.
    Live {
        check: LiveCheck,
        rehearse: Vec<String>,
    },
    /// Cannot be predicted (why).
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub rule: Rule,
    /// Index into the scripts.
    pub script: usize,
    pub statement: usize,
    pub line: usize,
    pub message: String,
    pub table: Option<String>,
    pub subject: Option<Subject>,
    pub lock: Option<&'static str>,
    pub check: Check,
    pub allowed: Option<String>,
}

const ACCESS_EXCLUSIVE: &str = "ACCESS EXCLUSIVE";
const SHARE: &str = "SHARE";
const SHARE_ROW_EXCLUSIVE: &str = "SHARE ROW EXCLUSIVE";

/// Functions whose value differs per row: a column added with one as its default makes
/// PostgreSQL rewrite the table (constant and `now()`-like defaults do not, since PG 11).
const VOLATILE: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "txid_current",
];

/// A pending statement a probe may rehearse before looking at `table`'s rows.
#[derive(Debug, Clone)]
struct Step {
    /// The model's key of the table it changes.
    table: String,
    sql: String,
    /// A data change (`UPDATE`/`DELETE`/`INSERT`); otherwise a catalog-only `ADD COLUMN`,
    /// rehearsed only ahead of a data change that may need it.
    dml: bool,
}

/// One pending statement, as a rehearsal of the whole plan would run it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanStep {
    /// Index into the scripts.
    pub script: usize,
    /// 1-based among the script's non-blank statements (as findings count them).
    pub statement: usize,
    pub line: usize,
    pub sql: String,
    /// The tables from before the plan (live names) the statement locks or writes.
    pub live_tables: Vec<QName>,
}

/// Walks `scripts` in order and returns every candidate finding.
pub fn candidates(scripts: &[Script<'_>], flavor: Flavor, scope: Scope) -> Vec<Candidate> {
    walk(scripts, flavor, scope).0
}

/// The tables `stmt` locks or writes.
fn touched(stmt: &Stmt) -> Vec<&QName> {
    match stmt {
        Stmt::AlterTable { table, .. }
        | Stmt::Update { table, .. }
        | Stmt::Delete { table, .. }
        | Stmt::Insert(table)
        | Stmt::Rewrite {
            table: Some(table), ..
        } => vec![table],
        Stmt::CreateIndex(index) => vec![&index.table],
        Stmt::DropTable(names) | Stmt::Truncate(names) | Stmt::With(names) => {
            names.iter().collect()
        }
        Stmt::RenameTables(pairs) => pairs.iter().map(|(from, _)| from).collect(),
        _ => Vec::new(),
    }
}

/// [`candidates`], and the pending statements in order (for a rehearsal of the plan).
pub fn walk(
    scripts: &[Script<'_>],
    flavor: Flavor,
    scope: Scope,
) -> (Vec<Candidate>, Vec<PlanStep>) {
    let mut plan = Vec::new();
    let mut model = Model::new(flavor);
    let mut steps: Vec<Step> = Vec::new();
    let mut dropped_views: Vec<String> = Vec::new();
    let mut loosened = false;
    let mut out = Vec::new();
    for (index, script) in scripts.iter().enumerate() {
        if scope == Scope::EachMigration {
            model.treat_as_deployed();
            steps.clear();
            dropped_views.clear();
            loosened = false;
        }
        let statements: Vec<_> = split(script.sql, flavor)
            .into_iter()
            .filter(|s| !s.is_blank())
            .collect();
        let classified: Vec<Stmt> = statements.iter().map(classify).collect();
        let redefined = redefined_tables(&classified);
        for (number, (statement, stmt)) in statements.iter().zip(&classified).enumerate() {
            if script.pending {
                let mut live_tables: Vec<QName> = touched(stmt)
                    .into_iter()
                    .filter_map(|t| model.table(t).live)
                    .collect();
                // A data change may read other tables (`INSERT … SELECT … FROM "User"`):
                // the tables from before the plan that it names.
                if matches!(
                    stmt,
                    Stmt::Update { .. } | Stmt::Delete { .. } | Stmt::Insert(_) | Stmt::With(_)
                ) {
                    for token in statement.tokens() {
                        let name = match token.kind {
                            TokenKind::QuotedIdent => token
                                .text
                                .get(1..token.text.len().saturating_sub(1))
                                .unwrap_or_default()
                                .to_owned(),
                            TokenKind::Word => token.text.to_owned(),
                            _ => continue,
                        };
                        if let Some(live) = model.known_live(&name)
                            && !live_tables.contains(&live)
                        {
                            live_tables.push(live);
                        }
                    }
                }
                plan.push(PlanStep {
                    script: index,
                    statement: number + 1,
                    line: statement.line,
                    sql: statement.text.to_owned(),
                    live_tables,
                });
            }
            let mut walker = Walker {
                model: &mut model,
                flavor,
                pending: script.pending,
                redefined: &redefined,
                steps: &mut steps,
                dropped_views: &mut dropped_views,
                text: statement.text,
                rehearsable_statement: false,
                loosened: &mut loosened,
                found: Vec::new(),
            };
            walker.statement(stmt);
            if !script.pending {
                continue;
            }
            let allows = suppress::allowed(statement.leading_trivia());
            for found in walker.found {
                let allowed = allows
                    .iter()
                    .find(|(rule, _)| *rule == found.rule)
                    .map(|(_, reason)| reason.clone());
                out.push(Candidate {
                    rule: found.rule,
                    script: index,
                    statement: number + 1,
                    line: statement.line,
                    message: found.message,
                    table: found.table,
                    subject: found.subject,
                    lock: found.lock,
                    check: found.check,
                    allowed,
                });
            }
        }
    }
    (out, plan)
}

/// Prisma's "redefine table" (SQLite, and hand-written copies): `CREATE TABLE new_X …;
/// INSERT INTO new_X SELECT … FROM X; DROP TABLE X; ALTER TABLE new_X RENAME TO X;` in one
/// migration. That drop and rename lose nothing: the pair is one table rewrite of X.
fn redefined_tables(statements: &[Stmt]) -> HashSet<String> {
    let mut dropped: HashSet<&str> = HashSet::new();
    let mut out = HashSet::new();
    for stmt in statements {
        match stmt {
            Stmt::DropTable(names) => dropped.extend(names.iter().map(|n| n.name.as_str())),
            Stmt::AlterTable { actions, .. } => {
                out.extend(actions.iter().filter_map(|a| match a {
                    Action::RenameTo(to) if dropped.contains(to.as_str()) => Some(to.clone()),
                    _ => None,
                }))
            }
            Stmt::RenameTables(pairs) => out.extend(
                pairs
                    .iter()
                    .filter(|(_, to)| dropped.contains(to.as_str()))
                    .map(|(_, to)| to.clone()),
            ),
            _ => {}
        }
    }
    out
}

struct Found {
    rule: Rule,
    message: String,
    table: Option<String>,
    subject: Option<Subject>,
    lock: Option<&'static str>,
    check: Check,
}

struct Walker<'m> {
    model: &'m mut Model,
    flavor: Flavor,
    pending: bool,
    redefined: &'m HashSet<String>,
    steps: &'m mut Vec<Step>,
    dropped_views: &'m mut Vec<String>,
    /// The statement's text, as a rehearsal would run it.
    text: &'m str,
    /// The `ALTER TABLE` being walked is a catalog-only change a rehearsal may run.
    rehearsable_statement: bool,
    /// An earlier pending statement dropped a constraint, an index, a column or a table, or
    /// changed a type: a data change's failure in a rehearsal (which does not run that DDL)
    /// then proves nothing.
    loosened: &'m mut bool,
    found: Vec<Found>,
}

impl Walker<'_> {
    fn subject(&self, table: &QName) -> Subject {
        let t = self.model.table(table);
        Subject {
            live: t.live,
            rows: t.rows,
        }
    }

    fn push(
        &mut self,
        rule: Rule,
        table: &QName,
        message: String,
        lock: Option<&'static str>,
        check: Check,
    ) {
        let subject = self.subject(table);
        self.found.push(Found {
            rule,
            message,
            table: Some(table.display()),
            subject: Some(subject),
            lock: lock.map(|mode| lock_words(self.flavor, mode)),
            check,
        });
    }

    /// `under an ACCESS EXCLUSIVE lock` on PostgreSQL; the same said in the dialect's own
    /// words elsewhere (MySQL's DDL takes metadata locks, and may copy the table).
    fn exclusively(&self) -> &'static str {
        match self.flavor {
            Flavor::Postgres => "under an ACCESS EXCLUSIVE lock",
            Flavor::MySql => "under an exclusive metadata lock",
            Flavor::Sqlite => "while the database is locked",
        }
    }

    fn pg(&self) -> bool {
        self.flavor == Flavor::Postgres
    }

    /// A live check on PostgreSQL and MySQL (SQLite has no probe), rehearsing the plan's
    /// earlier data changes of `tables`.
    fn live(&self, check: LiveCheck, tables: &[&QName]) -> Check {
        if self.flavor == Flavor::Sqlite {
            return Check::Unknown("live predictions are made on PostgreSQL and MySQL".into());
        }
        Check::Live {
            check,
            rehearse: self.rehearsal(tables),
        }
    }

    /// The earlier pending statements that change `tables`' rows, in order (with the
    /// catalog-only `ADD COLUMN`s among them), or none when no data change is among them.
    fn rehearsal(&self, tables: &[&QName]) -> Vec<String> {
        let relevant: Vec<&Step> = self
            .steps
            .iter()
            .filter(|s| tables.iter().any(|t| t.name == s.table))
            .collect();
        if relevant.iter().any(|s| s.dml) {
            relevant.iter().map(|s| s.sql.clone()).collect()
        } else {
            Vec::new()
        }
    }

    /// What `column` holds on the rows a probe of `table` sees: after a rehearsal, a column
    /// the rehearsal added is its own name.
    fn value(&self, table: &QName, column: &str) -> Option<String> {
        let c = self.model.column(table, column);
        if c.cheap_add && !self.rehearsal(&[table]).is_empty() {
            return Some(quote(self.flavor, column));
        }
        c.value
    }

    /// A data change by a pending statement on a table with live rows: a probe of that table
    /// rehearses it; and the change itself is rehearsed (after every earlier one of the
    /// plan) to see whether the live rows make it fail.
    fn data_step(&mut self, table: &QName) {
        let t = self.model.table(table);
        if self.pending && t.rows == Rows::Live && t.live.is_some() {
            if !*self.loosened && self.pg() {
                // Every earlier rehearsable statement of the plan, of any table: a data
                // migration often inserts parents before the children that reference them.
                let mut rehearse: Vec<String> = self.steps.iter().map(|s| s.sql.clone()).collect();
                rehearse.push(self.text.to_owned());
                self.push(
                    Rule::DataChangeFails,
                    table,
                    format!(
                        "This data change of `{}` fails on the live rows. Fix the data or the statement first.",
                        table.display()
                    ),
                    Some("ROW EXCLUSIVE"),
                    Check::Live {
                        check: LiveCheck::Runs,
                        rehearse,
                    },
                );
            }
            self.steps.push(Step {
                table: table.name.clone(),
                sql: self.text.to_owned(),
                dml: true,
            });
        }
    }

    fn statement(&mut self, stmt: &Stmt) {
        let pending = self.pending;
        match stmt {
            Stmt::CreateTable {
                table,
                columns,
                copied,
            } => self.model.create_table(table, columns, pending, *copied),
            Stmt::AlterTable { table, actions } => {
                let t = self.model.table(table);
                let cheap = self.pg()
                    && pending
                    && t.rows == Rows::Live
                    && t.live.is_some()
                    && !actions.is_empty()
                    && actions
                        .iter()
                        .all(|a| matches!(a, Action::AddColumn(c) if self.cheap_add(c)));
                self.rehearsable_statement = cheap;
                for action in actions {
                    self.action(table, action);
                }
                self.rehearsable_statement = false;
                if cheap {
                    self.steps.push(Step {
                        table: table.name.clone(),
                        sql: self.text.to_owned(),
                        dml: false,
                    });
                }
            }
            Stmt::RenameTables(pairs) => {
                for (from, to) in pairs {
                    self.rename_table(from, to);
                }
            }
            Stmt::CreateIndex(index) => self.create_index(index),
            Stmt::DropIndex { names, .. } => {
                if pending {
                    *self.loosened = true;
                }
                for name in names {
                    if name.name.ends_with("_AB_unique") && name.name.starts_with('_') {
                        let table = QName {
                            schema: name.schema.clone(),
                            name: name.name.trim_end_matches("_AB_unique").to_owned(),
                        };
                        self.m2m_churn(&table);
                    }
                }
            }
            Stmt::DropTable(names) => {
                if pending {
                    *self.loosened = true;
                }
                for name in names {
                    if self.redefined.contains(&name.name) {
                        self.push(
                            Rule::TableRewrite,
                            name,
                            format!(
                                "`{}` is redefined (copied into a new table, dropped and renamed): every row is rewritten while the table is locked.",
                                name.display()
                            ),
                            Some(ACCESS_EXCLUSIVE),
                            Check::None,
                        );
                    } else {
                        let check = self.dependents(name, None);
                        self.push(
                            Rule::DropTable,
                            name,
                            format!(
                                "Dropping `{}` deletes its rows, and the application version still running fails on it.",
                                name.display()
                            ),
                            Some(ACCESS_EXCLUSIVE),
                            check,
                        );
                    }
                    if pending {
                        self.model.drop_table(name);
                    }
                }
            }
            Stmt::Truncate(names) => {
                for name in names {
                    self.push(
                        Rule::Truncate,
                        name,
                        format!("`TRUNCATE {}` deletes every row.", name.display()),
                        Some(ACCESS_EXCLUSIVE),
                        Check::None,
                    );
                    if pending {
                        self.model.empty(name);
                    }
                }
            }
            Stmt::Update { table, has_where } => {
                self.data_step(table);
                if !has_where {
                    self.push(
                        Rule::UpdateWithoutWhere,
                        table,
                        format!(
                            "`UPDATE {}` without `WHERE` rewrites every row in one transaction, locking them all.",
                            table.display()
                        ),
                        Some("ROW EXCLUSIVE, every row"),
                        Check::None,
                    );
                }
                if pending {
                    self.model.written(table, true);
                }
            }
            Stmt::Delete { table, has_where } => {
                if *has_where {
                    self.data_step(table);
                }
                if !has_where {
                    self.push(
                        Rule::DeleteWithoutWhere,
                        table,
                        format!(
                            "`DELETE FROM {}` without `WHERE` deletes every row.",
                            table.display()
                        ),
                        Some("ROW EXCLUSIVE, every row"),
                        Check::None,
                    );
                    if pending {
                        self.model.empty(table);
                    }
                }
            }
            Stmt::Insert(table) => {
                self.data_step(table);
                if pending {
                    self.model.written(table, false);
                }
            }
            Stmt::With(tables) => {
                for table in tables {
                    self.data_step(table);
                    if pending {
                        self.model.written(table, true);
                    }
                }
            }
            Stmt::CreateEnum { name, values } => self.model.create_enum(name, values),
            Stmt::AddEnumValue { name, value } => self.model.add_enum_value(name, value),
            Stmt::DropView(names) => {
                if pending {
                    self.dropped_views
                        .extend(names.iter().map(|n| n.name.clone()));
                }
            }
            Stmt::RenameType { from, to } => self.model.rename_enum(from, to),
            Stmt::DropType(names) => {
                for name in names {
                    self.model.drop_enum(name);
                }
            }
            Stmt::Rewrite { table, what } => {
                if let Some(table) = table {
                    self.rewrite(table, what);
                }
            }
            Stmt::Other => {}
        }
    }

    /// `table-rewrite`: the statement rewrites the whole table under an ACCESS EXCLUSIVE lock.
    fn rewrite(&mut self, table: &QName, what: &str) {
        let message = format!(
            "`{what}` rewrites `{}` {}.",
            table.display(),
            self.exclusively()
        );
        self.push(
            Rule::TableRewrite,
            table,
            message,
            Some(ACCESS_EXCLUSIVE),
            Check::None,
        );
    }

    fn rename_table(&mut self, from: &QName, to: &str) {
        if !self.redefined.contains(to) {
            self.push(
                Rule::RenameTable,
                from,
                format!(
                    "Renaming `{}` to `{to}` breaks the application version still running, which uses the old name.",
                    from.display()
                ),
                Some(ACCESS_EXCLUSIVE),
                Check::None,
            );
        }
        self.model.rename_table(from, to, self.pending);
    }

    fn action(&mut self, table: &QName, action: &Action) {
        let pending = self.pending;
        match action {
            Action::AddColumn(column) => {
                self.add_column(table, column);
                let value = self.added_value(column);
                // Only a statement that is rehearsed whole can make the column exist.
                let cheap = self.rehearsable_statement && self.cheap_add(column);
                self.model.add_column(table, column, pending, value, cheap);
            }
            Action::DropColumn(column) => {
                if pending {
                    *self.loosened = true;
                }
                let live = self.model.column(table, column).live;
                let check = match live {
                    Some(live) => self.dependents(table, Some(live)),
                    None => Check::None,
                };
                self.push(
                    Rule::DropColumn,
                    table,
                    format!(
                        "Dropping `{}`.`{column}` deletes its data, and the application version still running fails on it.",
                        table.display()
                    ),
                    Some(ACCESS_EXCLUSIVE),
                    check,
                );
                self.model.drop_column(table, column);
            }
            Action::ColumnType {
                column,
                type_name,
                using,
                not_null,
            } => {
                if pending {
                    *self.loosened = true;
                }
                let value = self.column_type(table, column, type_name, using.as_deref());
                if *not_null {
                    self.set_not_null(table, column);
                }
                self.model
                    .set_column_type(table, column, type_name, value, pending);
            }
            Action::SetNotNull(column) => self.set_not_null(table, column),
            Action::AddConstraint {
                name,
                kind,
                not_valid,
            } => {
                if *not_valid
                    && pending
                    && let Some(name) = name
                {
                    self.model.add_not_valid(name, table, kind);
                }
                self.add_constraint(table, name.as_deref(), kind, *not_valid)
            }
            Action::Loosen => {
                if pending {
                    *self.loosened = true;
                }
            }
            Action::Validate(name) => {
                if let Some(constraint) = self.model.take_not_valid(name) {
                    self.add_constraint(&constraint.table, Some(name), &constraint.kind, false);
                }
            }
            Action::RenameColumn { from, to } => {
                self.push(
                    Rule::RenameColumn,
                    table,
                    format!(
                        "Renaming `{}`.`{from}` to `{to}` breaks the application version still running, which uses the old name.",
                        table.display()
                    ),
                    Some(ACCESS_EXCLUSIVE),
                    Check::None,
                );
                self.model.rename_column(table, from, to, pending);
            }
            Action::RenameTo(to) => self.rename_table(table, to),
            Action::Rewrite(what) => self.rewrite(table, what),
            Action::Other => {}
        }
    }

    /// What a column added by `column` holds on the rows from before: its constant default,
    /// or NULL; `None` when each row gets its own value (identity, volatile default,
    /// generated) or the database fills an implicit one (MySQL's NOT NULL).
    fn added_value(&self, column: &ColumnDef) -> Option<String> {
        if column.generated_stored || column.auto_value {
            return None;
        }
        match &column.default {
            Some(default) if volatile_call(default).is_none() => Some(format!("({default})")),
            Some(_) => None,
            None if column.not_null && self.flavor == Flavor::MySql => {
                mysql_implicit_default(&column.type_name).map(str::to_owned)
            }
            None if column.not_null => None,
            None => Some("NULL".into()),
        }
    }

    /// Whether `ADD COLUMN column` is a catalog change only (PostgreSQL ≥ 11): no volatile
    /// default, nothing generated, no constraint to check or index to build.
    fn cheap_add(&self, column: &ColumnDef) -> bool {
        self.pg()
            && !column.generated_stored
            && !column.auto_value
            && column.references.is_none()
            && !column.unique
            && !column.primary_key
            && column.check.is_none()
            && column
                .default
                .as_deref()
                .is_none_or(|d| volatile_call(d).is_none())
            && !(column.not_null && column.default.is_none())
    }

    /// Dropping `table` (or its `column`) fails while a view not dropped earlier uses it.
    fn dependents(&self, table: &QName, column: Option<String>) -> Check {
        if !self.pg() || self.model.table(table).live.is_none() {
            return Check::None;
        }
        Check::Live {
            check: LiveCheck::Dependents {
                column,
                except: self.dropped_views.clone(),
            },
            rehearse: Vec::new(),
        }
    }

    fn add_column(&mut self, table: &QName, column: &ColumnDef) {
        let name = &column.name;
        if column.not_null
            && column.default.is_none()
            && !column.auto_value
            && !column.generated_stored
        {
            let (check, message) = match self.flavor {
                Flavor::MySql => (
                    self.live(
                        LiveCheck::ImplicitDefault {
                            type_name: column.type_name.clone(),
                        },
                        &[table],
                    ),
                    format!(
                        "Adding the required column `{name}` without a default gives every existing row of `{}` the type's implicit default (0, '', a zero date), and fails where `sql_mode` refuses it. Add it with a default, or nullable, backfill, then make it required.",
                        table.display()
                    ),
                ),
                _ => (
                    self.live(LiveCheck::HasRows, &[table]),
                    format!(
                        "Adding the required column `{name}` without a default fails when `{}` has rows. Add it with a default, or nullable, backfill, then make it required.",
                        table.display()
                    ),
                ),
            };
            self.push(
                Rule::NotNullWithoutDefault,
                table,
                message,
                Some(ACCESS_EXCLUSIVE),
                check,
            );
        }
        let volatile = column.default.as_deref().and_then(volatile_call);
        let rewrite = match (
            &volatile,
            column.generated_stored,
            column.auto_value && column.type_name.contains("SERIAL"),
        ) {
            (Some(function), _, _) => Some(format!("the volatile default `{function}()`")),
            (None, true, _) => Some("a stored generated column".to_owned()),
            (None, false, true) => Some(format!(
                "the `{}` type's sequence default",
                column.type_name
            )),
            _ => None,
        };
        if let Some(why) = rewrite
            && self.pg()
        {
            self.push(
                Rule::TableRewrite,
                table,
                format!(
                    "Adding `{name}` with {why} rewrites every row of `{}` under an ACCESS EXCLUSIVE lock. Add the column without it, then backfill in batches.",
                    table.display()
                ),
                Some(ACCESS_EXCLUSIVE),
                Check::None,
            );
        }
        let value = self.added_value(column);
        if let Some((parent, parent_columns)) = &column.references {
            self.foreign_key_values(
                table,
                value.clone().map(|v| vec![v]),
                parent,
                parent_columns,
            );
        }
        if column.unique || column.primary_key {
            // Every existing row holds the same default: two rows duplicate it.
            let t = self.model.table(table);
            let check = match (t.rows, &value) {
                (Rows::Empty, _) => Check::None,
                (Rows::PlanData, _) => Check::Unknown("the plan writes this table first".into()),
                (Rows::Live, Some(v)) => self.live(
                    LiveCheck::Duplicates {
                        exprs: vec![v.clone()],
                        predicate: None,
                        primary: column.primary_key,
                        nulls_distinct: true,
                    },
                    &[table],
                ),
                (Rows::Live, None) => Check::None,
            };
            self.push(
                Rule::UniqueIndex,
                table,
                format!(
                    "Adding `{name}` as unique builds an index under a lock that stops writes to `{}`.",
                    table.display()
                ),
                Some(ACCESS_EXCLUSIVE),
                check,
            );
        }
    }

    /// `ALTER COLUMN … TYPE` / `MODIFY`: returns what the column holds on the live rows
    /// afterwards (for later checks).
    fn column_type(
        &mut self,
        table: &QName,
        column: &str,
        type_name: &str,
        using: Option<&str>,
    ) -> Option<String> {
        let current = self.model.column(table, column);
        let t = self.model.table(table);
        let (target, array) = enum_name(type_name);
        let (current_type, _) = enum_name(&current.type_name);
        let enum_new = self.model.enum_values(&target).map(<[String]>::to_vec);
        let mysql_enum = (self.flavor == Flavor::MySql && type_name.starts_with("ENUM("))
            .then(|| mysql_enum_values(type_name));
        let value = current.value.clone();
        let after = match (&value, using) {
            (_, Some(using)) if self.pg() => Some(format!("({using})")),
            (Some(v), None) if self.pg() => cast_target(type_name).map(|t| format!("({v})::{t}")),
            (Some(v), None) => Some(v.clone()),
            _ => None,
        };
        if let Some(new_values) = enum_new.or(mysql_enum)
            && (target.ends_with("_new")
                || self.model.enum_values(&current_type).is_some()
                || self.flavor == Flavor::MySql)
        {
            let old_type = if current.type_name.is_empty() {
                target.trim_end_matches("_new").to_owned()
            } else {
                current_type.clone()
            };
            let old_values = self
                .model
                .enum_values(&old_type)
                .map(<[String]>::to_vec)
                .or_else(|| {
                    (self.flavor == Flavor::MySql && current.type_name.starts_with("ENUM("))
                        .then(|| mysql_enum_values(&current.type_name))
                });
            let removed: Option<Vec<String>> = old_values.as_ref().map(|old| {
                old.iter()
                    .filter(|v| !new_values.contains(v))
                    .cloned()
                    .collect()
            });
            let meaningful = match &removed {
                Some(removed) => !removed.is_empty(),
                None => target.ends_with("_new") || self.flavor == Flavor::MySql,
            };
            if meaningful {
                let listed = removed
                    .as_ref()
                    .map(|r| format!(" ({})", r.join(", ")))
                    .unwrap_or_default();
                let check = match (&current.live, t.rows) {
                    (_, Rows::Empty) => Check::None,
                    (Some(live_column), Rows::Live) => {
                        match enum_source(self.flavor, live_column, using, &target) {
                            Some(expr) => self.live(
                                LiveCheck::EnumRemoved {
                                    expr,
                                    new_values: new_values.clone(),
                                    array,
                                },
                                &[table],
                            ),
                            None => Check::Unknown(format!(
                                "the `USING` conversion names `{target}` other than in a cast"
                            )),
                        }
                    }
                    (None, Rows::Live) => {
                        Check::Unknown("the column was added by this plan".into())
                    }
                    (_, Rows::PlanData) => {
                        Check::Unknown("the plan writes this table first".into())
                    }
                };
                self.push(
                    Rule::EnumValueRemoved,
                    table,
                    format!(
                        "Changing `{}`.`{column}` to the enum `{target}` removes values{listed}: rows holding a removed value make it fail. Migrate those rows first.",
                        table.display()
                    ),
                    Some(ACCESS_EXCLUSIVE),
                    check,
                );
            }
            self.push(
                Rule::ColumnTypeChange,
                table,
                type_change_message(self.flavor, table, column, type_name),
                Some(ACCESS_EXCLUSIVE),
                Check::None,
            );
            return after;
        }
        // Converting the live values: the conversion (or the narrower type) may refuse one.
        let source = match using {
            Some(using) => Some(format!("({using})")),
            None => value.clone(),
        };
        let check = match (t.rows, &source) {
            (Rows::Empty, _) => Check::None,
            (Rows::PlanData, _) => Check::Unknown("the plan writes this table first".into()),
            (Rows::Live, None) => Check::Unknown("the column's values come from the plan".into()),
            (Rows::Live, Some(source)) => match self.conversion(type_name, source) {
                Some(check) => self.live(check, &[table]),
                None => Check::None,
            },
        };
        self.push(
            Rule::ColumnTypeChange,
            table,
            type_change_message(self.flavor, table, column, type_name),
            Some(ACCESS_EXCLUSIVE),
            check,
        );
        after
    }

    /// What converting `source` to `type_name` can refuse on a row.
    fn conversion(&self, type_name: &str, source: &str) -> Option<LiveCheck> {
        let upper = type_name.to_ascii_uppercase();
        if let Some(max) = char_limit(&upper) {
            return Some(LiveCheck::TooLong {
                expr: source.to_owned(),
                max,
            });
        }
        if self.pg() {
            // PostgreSQL evaluates the conversion itself: a cast refusing a value raises a
            // data exception. Text accepts what any column held (JSON does not: a text
            // that is not JSON is refused).
            if matches!(upper.as_str(), "TEXT" | "VARCHAR" | "CHARACTER VARYING") {
                return None;
            }
            let target = cast_target(type_name)?;
            return Some(LiveCheck::Evaluates {
                expr: format!("({source})::{target}"),
            });
        }
        let (min, max) = mysql_range(&upper)?;
        Some(LiveCheck::OutOfRange {
            expr: source.to_owned(),
            min,
            max,
        })
    }

    fn set_not_null(&mut self, table: &QName, column: &str) {
        let col = self.model.column(table, column);
        let t = self.model.table(table);
        let rehearsed = !self.rehearsal(&[table]).is_empty();
        let value = self.value(table, column);
        let check = match (t.rows, &value, col.filled_when_added) {
            (Rows::Empty, _, _) => Check::None,
            (Rows::PlanData, _, _) => Check::Unknown("the plan writes this table first".into()),
            (Rows::Live, _, Some(false)) if col.live.is_none() && !rehearsed => Check::Plan {
                fails_if_rows: true,
                why:
                    "the plan added this column without a default, so every existing row holds NULL"
                        .into(),
            },
            (Rows::Live, Some(v), _) => self.live(LiveCheck::Nulls { expr: v.clone() }, &[table]),
            (Rows::Live, None, Some(true)) => Check::None,
            (Rows::Live, None, _) => {
                Check::Unknown("the plan added this column and then updated the table".into())
            }
        };
        let message = match self.flavor {
            Flavor::MySql => format!(
                "`MODIFY` … `NOT NULL` on `{}`.`{column}` rebuilds the table and fails if any row holds NULL. Backfill first.",
                table.display()
            ),
            _ => format!(
                "`SET NOT NULL` on `{}`.`{column}` scans the table under an ACCESS EXCLUSIVE lock and fails if any row holds NULL. Backfill first; on a large table add `CHECK ({column} IS NOT NULL) NOT VALID`, validate it, then set NOT NULL.",
                table.display()
            ),
        };
        self.push(
            Rule::SetNotNull,
            table,
            message,
            Some(ACCESS_EXCLUSIVE),
            check,
        );
    }

    /// The duplicates check of a unique key over `columns` (a `None` column is the
    /// expression `elements[i]`).
    fn unique_check(
        &self,
        table: &QName,
        columns: &[Option<String>],
        elements: &[String],
        predicate: Option<&str>,
        primary: bool,
        nulls_distinct: bool,
    ) -> Check {
        let t = self.model.table(table);
        match t.rows {
            Rows::Empty => return Check::None,
            Rows::PlanData => return Check::Unknown("the plan writes this table first".into()),
            Rows::Live => {}
        }
        let mut exprs = Vec::new();
        for (i, column) in columns.iter().enumerate() {
            let expr = match column {
                Some(column) => match self.value(table, column) {
                    Some(v) => v,
                    None => {
                        return Check::Unknown(format!(
                            "the values of `{column}` come from the plan"
                        ));
                    }
                },
                None => match elements.get(i) {
                    Some(e) => format!("({})", strip_order(e)),
                    None => return Check::Unknown("an index expression cannot be read".into()),
                },
            };
            exprs.push(expr);
        }
        self.live(
            LiveCheck::Duplicates {
                exprs,
                predicate: predicate.map(str::to_owned),
                primary,
                nulls_distinct,
            },
            &[table],
        )
    }

    fn create_index(&mut self, index: &IndexDef) {
        let table = &index.table;
        if index.unique {
            let check = self.unique_check(
                table,
                &index.columns,
                &index.elements,
                index.predicate.as_deref(),
                false,
                !index.nulls_not_distinct,
            );
            self.push(
                Rule::UniqueIndex,
                table,
                format!(
                    "The unique index {}on `{}` fails if existing rows hold duplicate values. Remove the duplicates first.",
                    index.name.as_deref().map(|n| format!("`{n}` ")).unwrap_or_default(),
                    table.display()
                ),
                Some(if index.concurrently { "SHARE UPDATE EXCLUSIVE" } else { SHARE }),
                check,
            );
        }
        // An expression is evaluated on every row while the index builds.
        let expressions: Vec<String> = index
            .columns
            .iter()
            .zip(&index.elements)
            .filter(|(c, _)| c.is_none())
            .map(|(_, e)| format!("({})", strip_order(e)))
            .collect();
        let evaluates = if !expressions.is_empty() && !index.unique && self.pg() {
            match self.model.table(table).rows {
                Rows::Live => self.live(
                    LiveCheck::Evaluates {
                        expr: expressions.join(", "),
                    },
                    &[table],
                ),
                _ => Check::None,
            }
        } else {
            Check::None
        };
        if !index.concurrently && self.pg() {
            self.push(
                Rule::IndexNotConcurrent,
                table,
                format!(
                    "`CREATE INDEX` without `CONCURRENTLY` blocks writes to `{}` while the index builds. Use `CREATE INDEX CONCURRENTLY` in a migration of its own.",
                    table.display()
                ),
                Some(SHARE),
                evaluates,
            );
        }
    }

    fn add_constraint(
        &mut self,
        table: &QName,
        name: Option<&str>,
        kind: &ConstraintKind,
        not_valid: bool,
    ) {
        let named = name.map(|n| format!("`{n}` ")).unwrap_or_default();
        match kind {
            ConstraintKind::Unique(columns) | ConstraintKind::PrimaryKey(columns) => {
                let primary = matches!(kind, ConstraintKind::PrimaryKey(_));
                if primary
                    && table.name.starts_with('_')
                    && name.is_some_and(|n| n.ends_with("_AB_pkey"))
                    && columns == &[Some("A".to_owned()), Some("B".to_owned())]
                {
                    self.m2m_churn(table);
                }
                let check = self.unique_check(table, columns, &[], None, primary, true);
                let what = if primary { "primary key" } else { "unique" };
                let nulls = if primary { " or NULL" } else { "" };
                let message = match self.flavor {
                    Flavor::Postgres => format!(
                        "The {what} constraint {named}on `{}` builds a unique index under an ACCESS EXCLUSIVE lock and fails on duplicate{nulls} values. Build the index `CONCURRENTLY` first, then add the constraint `USING INDEX`.",
                        table.display()
                    ),
                    _ => format!(
                        "The {what} constraint {named}on `{}` builds a unique index and fails on duplicate{nulls} values. Remove the duplicates first.",
                        table.display()
                    ),
                };
                self.push(
                    Rule::UniqueIndex,
                    table,
                    message,
                    Some(ACCESS_EXCLUSIVE),
                    check,
                );
            }
            ConstraintKind::ForeignKey {
                columns,
                parent,
                parent_columns,
            } => {
                if not_valid {
                    return;
                }
                let values: Option<Vec<String>> =
                    columns.iter().map(|c| self.value(table, c)).collect();
                self.foreign_key_values(table, values, parent, parent_columns)
            }
            ConstraintKind::Check(expr) => {
                if not_valid {
                    return;
                }
                let t = self.model.table(table);
                let check = match t.rows {
                    Rows::Empty => Check::None,
                    Rows::PlanData => Check::Unknown("the plan writes this table first".into()),
                    Rows::Live => self.live(LiveCheck::Violations { expr: expr.clone() }, &[table]),
                };
                let message = match self.flavor {
                    Flavor::Postgres => format!(
                        "The check constraint {named}on `{}` scans every row under an ACCESS EXCLUSIVE lock and fails if one violates `{expr}`. Add it `NOT VALID`, then `VALIDATE CONSTRAINT` in a later migration.",
                        table.display()
                    ),
                    _ => format!(
                        "The check constraint {named}on `{}` copies the table, blocking writes, and fails if a row violates `{expr}`. Fix those rows first.",
                        table.display()
                    ),
                };
                self.push(
                    Rule::CheckConstraintValidation,
                    table,
                    message,
                    Some(ACCESS_EXCLUSIVE),
                    check,
                );
            }
            ConstraintKind::Other => {}
        }
    }

    /// A foreign key from `table` whose key holds `values` on the live rows (`None`: only
    /// the plan knows) to `parent`.
    fn foreign_key_values(
        &mut self,
        table: &QName,
        values: Option<Vec<String>>,
        parent: &QName,
        parent_columns: &[String],
    ) {
        let child = self.model.table(table);
        let parent_table = self.model.table(parent);
        let check = match (child.rows, parent_table.rows, values) {
            (Rows::Empty, _, _) => Check::None,
            (Rows::PlanData, _, _) | (_, Rows::PlanData, _) => {
                Check::Unknown("the plan writes one of the tables first".into())
            }
            (Rows::Live, _, None) => Check::Unknown("the key's values come from the plan".into()),
            (Rows::Live, Rows::Empty, Some(exprs)) => {
                self.live(LiveCheck::NonNull { exprs }, &[table, parent])
            }
            (Rows::Live, Rows::Live, Some(exprs)) => {
                let parent_live: Option<Vec<String>> = parent_columns
                    .iter()
                    .map(|c| self.model.column(parent, c).live)
                    .collect();
                match (parent_live, parent_table.live) {
                    (Some(parent_columns), Some(live_parent)) => self.live(
                        LiveCheck::Orphans {
                            exprs,
                            parent: live_parent,
                            parent_columns,
                        },
                        &[table, parent],
                    ),
                    _ => Check::Unknown("the referenced key was added by this plan".into()),
                }
            }
        };
        let message = match self.flavor {
            Flavor::Postgres => format!(
                "The foreign key from `{}` to `{}` checks every row while both tables are locked against writes, and fails on rows referencing a missing `{}`. Add it `NOT VALID`, then `VALIDATE CONSTRAINT` in a later migration.",
                table.display(),
                parent.display(),
                parent.display()
            ),
            _ => format!(
                "The foreign key from `{}` to `{}` checks every row (with `foreign_key_checks` on, by copying `{}`, blocking writes), and fails on rows referencing a missing `{}`. Remove or fix those rows first.",
                table.display(),
                parent.display(),
                table.display(),
                parent.display()
            ),
        };
        self.push(
            Rule::ForeignKeyValidation,
            table,
            message,
            Some(SHARE_ROW_EXCLUSIVE),
            check,
        );
    }

    fn m2m_churn(&mut self, table: &QName) {
        self.push(
            Rule::ImplicitM2mChurn,
            table,
            format!(
                "Prisma's implicit many-to-many table `{}` gets its `_AB_unique` index swapped for an `_AB_pkey` primary key: a spurious rebuild under lock. Edit these lines out of the generated migration unless you mean them.",
                table.display()
            ),
            Some(ACCESS_EXCLUSIVE),
            Check::None,
        );
    }
}

/// What a row's value becomes, as text, when a column changes to the enum `target`: the
/// live column itself without `USING` (or with Prisma's `"c"::text::"E_new"`), else the
/// `USING` expression with every cast to `target` (`::"E_new"`, `::"public"."E_new"`,
/// `::E_new`, arrays too) made a cast to text, so that a `CASE` mapping old values to new
/// ones is evaluated over the live rows before the new type exists. `None` when `target`
/// is named some other way (`CAST(… AS E_new)`).
fn enum_source(
    flavor: Flavor,
    live_column: &str,
    using: Option<&str>,
    target: &str,
) -> Option<String> {
    let Some(using) = using else {
        return Some(quote(flavor, live_column));
    };
    let mut out = String::with_capacity(using.len());
    let mut rest = using;
    while let Some(at) = rest.find("::") {
        out.push_str(&rest[..at + 2]);
        rest = &rest[at + 2..];
        let trimmed = rest.trim_start();
        // The type name after `::`: quoted or bare parts joined by dots.
        let mut end = 0;
        let mut last = "";
        let bytes = trimmed.as_bytes();
        loop {
            let part_start = end;
            if bytes.get(end) == Some(&b'"') {
                match trimmed[end + 1..].find('"') {
                    Some(close) => {
                        last = &trimmed[end + 1..end + 1 + close];
                        end += close + 2;
                    }
                    None => break,
                }
            } else {
                let len = trimmed[end..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(trimmed.len() - end);
                if len == 0 {
                    break;
                }
                last = &trimmed[part_start..end + len];
                end += len;
            }
            if bytes.get(end) == Some(&b'.') {
                end += 1;
            } else {
                break;
            }
        }
        if !last.is_empty() && last.eq_ignore_ascii_case(target) {
            out.push_str("text");
            rest = &trimmed[end..];
        }
    }
    out.push_str(rest);
    let lower = out.to_ascii_lowercase();
    if lower.contains(&target.to_ascii_lowercase()) {
        return None;
    }
    Some(format!("({out})"))
}

fn type_change_message(flavor: Flavor, table: &QName, column: &str, type_name: &str) -> String {
    let rewrite = match flavor {
        Flavor::MySql => "copy the table, blocking writes",
        _ => "rewrite the table under an ACCESS EXCLUSIVE lock",
    };
    format!(
        "Changing the type of `{}`.`{column}` to `{type_name}` can {rewrite}, and the running application may not read the new type. Add a new column, backfill, and switch over.",
        table.display()
    )
}

/// The lock a statement takes, in the dialect's words: PostgreSQL's table lock modes as
/// they are; on MySQL the metadata lock (and, for a table copy, blocked writes); SQLite
/// locks the whole database.
fn lock_words(flavor: Flavor, mode: &'static str) -> &'static str {
    match flavor {
        Flavor::Postgres => mode,
        Flavor::MySql => match mode {
            ACCESS_EXCLUSIVE => "exclusive metadata lock",
            SHARE | SHARE_ROW_EXCLUSIVE => "shared metadata lock, writes blocked",
            "ROW EXCLUSIVE, every row" => "row locks, every row",
            "ROW EXCLUSIVE" => "row locks",
            _ => "metadata lock",
        },
        Flavor::Sqlite => "database write lock",
    }
}

/// The type as a PostgreSQL cast target, when it can be written back safely (built-in
/// type names only: a quoted user type would need its exact spelling).
fn cast_target(type_name: &str) -> Option<String> {
    let ok = type_name.chars().all(|c| {
        c.is_ascii_uppercase()
            || c.is_ascii_digit()
            || matches!(c, ' ' | '(' | ')' | ',' | '[' | ']')
    });
    (ok && !type_name.is_empty()).then(|| type_name.to_owned())
}

/// `VARCHAR(n)`, `CHARACTER VARYING(n)`, `CHAR(n)`, `CHARACTER(n)`: n.
fn char_limit(upper: &str) -> Option<u32> {
    let (head, rest) = upper.split_once('(')?;
    let head = head.trim();
    if !matches!(
        head,
        "VARCHAR" | "CHARACTER VARYING" | "CHAR" | "CHARACTER" | "NVARCHAR" | "NCHAR"
    ) {
        return None;
    }
    rest.trim_end_matches(')').trim().parse().ok()
}

/// MySQL integer and decimal types' ranges (narrowing refuses a value outside them).
fn mysql_range(upper: &str) -> Option<(String, String)> {
    let unsigned = upper.contains("UNSIGNED");
    let base = upper.split(['(', ' ']).next().unwrap_or("");
    let bits = match base {
        "TINYINT" => 8,
        "SMALLINT" => 16,
        "MEDIUMINT" => 24,
        "INT" | "INTEGER" => 32,
        "DECIMAL" | "NUMERIC" => {
            let inner = upper.split_once('(')?.1.split(')').next()?;
            let mut parts = inner.split(',').map(|p| p.trim().parse::<u32>());
            let precision = parts.next()?.ok()?;
            let scale = parts.next().and_then(Result::ok).unwrap_or(0);
            let integer_digits = precision.checked_sub(scale)? as usize;
            let max = if scale == 0 {
                "9".repeat(integer_digits.max(1))
            } else {
                format!(
                    "{}.{}",
                    "9".repeat(integer_digits.max(1)),
                    "9".repeat(scale as usize)
                )
            };
            let min = if unsigned {
                "0".to_owned()
            } else {
                format!("-{max}")
            };
            return Some((min, max));
        }
        _ => return None,
    };
    Some(if unsigned {
        ("0".into(), ((1u64 << bits) - 1).to_string())
    } else {
        (
            (-(1i64 << (bits - 1))).to_string(),
            ((1i64 << (bits - 1)) - 1).to_string(),
        )
    })
}

/// What MySQL gives existing rows in a required column added without a default: the
/// type's implicit default (strings and numbers; other types are not guessed).
fn mysql_implicit_default(type_name: &str) -> Option<&'static str> {
    let upper = type_name.to_ascii_uppercase();
    let base = upper.split(['(', ' ']).next().unwrap_or("");
    match base {
        "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" => Some("''"),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "INTEGER" | "BIGINT" | "DECIMAL"
        | "NUMERIC" | "DOUBLE" | "FLOAT" | "REAL" => Some("0"),
        _ => None,
    }
}

/// MySQL `ENUM('a','b')` → its values.
fn mysql_enum_values(type_name: &str) -> Vec<String> {
    let inner = type_name.trim_start_matches("ENUM(").trim_end_matches(')');
    let mut values = Vec::new();
    let mut current = String::new();
    let mut in_string = false;
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if in_string && chars.peek() == Some(&'\'') {
                current.push('\'');
                chars.next();
            } else if in_string {
                values.push(std::mem::take(&mut current));
                in_string = false;
            } else {
                in_string = true;
            }
        } else if in_string {
            current.push(c);
        }
    }
    values
}

/// An index element without its `ASC`/`DESC`/`NULLS …` tail.
fn strip_order(element: &str) -> &str {
    let mut text = element.trim();
    for suffix in [" NULLS FIRST", " NULLS LAST", " ASC", " DESC"] {
        if text.len() >= suffix.len()
            && text[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        {
            text = text[..text.len() - suffix.len()].trim_end();
        }
    }
    text
}

/// The first volatile function called in a default expression.
fn volatile_call(default: &str) -> Option<&'static str> {
    // String literals hold no calls: blank them out first.
    let mut lower = String::with_capacity(default.len());
    let mut in_string = false;
    for c in default.chars() {
        if c == '\'' {
            in_string = !in_string;
        }
        lower.push(if in_string {
            ' '
        } else {
            c.to_ascii_lowercase()
        });
    }
    VOLATILE.iter().copied().find(|f| {
        lower.match_indices(f).any(|(at, _)| {
            let before_ok = at == 0
                || !lower.as_bytes()[at - 1].is_ascii_alphanumeric()
                    && lower.as_bytes()[at - 1] != b'_';
            let after = lower[at + f.len()..].trim_start();
            before_ok && after.starts_with('(')
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(sql: &str) -> Vec<(Rule, Check)> {
        let scripts = [Script {
            migration: "m",
            sql,
            pending: true,
        }];
        candidates(&scripts, Flavor::Postgres, Scope::Plan)
            .into_iter()
            .map(|c| (c.rule, c.check))
            .collect()
    }

    #[test]
    fn an_enum_conversion_is_asked_as_text_before_the_new_type_exists() {
        let pg = Flavor::Postgres;
        assert_eq!(
            enum_source(pg, "role", None, "Role_new"),
            Some("\"role\"".into())
        );
        assert_eq!(
            enum_source(
                pg,
                "role",
                Some("\"role\"::text::\"public\".\"Role_new\""),
                "Role_new"
            ),
            Some("(\"role\"::text::text)".into())
        );
        assert_eq!(
            enum_source(pg, "p", Some("\"p\"::text::\"Perm_new\"[]"), "Perm_new"),
            Some("(\"p\"::text::text[])".into())
        );
        assert_eq!(
            enum_source(
                pg,
                "status",
                Some(
                    "CASE \"status\"::text WHEN 'live' THEN 'open'::poll_status_new ELSE 'open'::poll_status_new END"
                ),
                "poll_status_new"
            ),
            Some(
                "(CASE \"status\"::text WHEN 'live' THEN 'open'::text ELSE 'open'::text END)"
                    .into()
            )
        );
        assert_eq!(
            enum_source(pg, "s", Some("CAST(\"s\" AS \"S_new\")"), "S_new"),
            None
        );
    }

    #[test]
    fn mysql_findings_are_worded_in_mysql_terms() {
        let scripts = [Script {
            migration: "m",
            sql: "ALTER TABLE `U` MODIFY `n` VARCHAR(191) NOT NULL;\nALTER TABLE `U` ADD CONSTRAINT `U_p_fkey` FOREIGN KEY (`p`) REFERENCES `P`(`id`);\nALTER TABLE `U` ADD UNIQUE INDEX `U_n_key`(`n`);",
            pending: true,
        }];
        let found = candidates(&scripts, Flavor::MySql, Scope::Plan);
        assert!(found.iter().any(|c| c.rule == Rule::SetNotNull));
        for c in &found {
            for pg in [
                "SET NOT NULL",
                "ACCESS EXCLUSIVE",
                "NOT VALID",
                "CONCURRENTLY",
            ] {
                assert!(!c.message.contains(pg), "{:?}: {}", c.rule, c.message);
                assert!(
                    c.lock.is_none_or(|l| !l.contains(pg)),
                    "{:?}: {:?}",
                    c.rule,
                    c.lock
                );
            }
        }
        let not_null = found.iter().find(|c| c.rule == Rule::SetNotNull);
        assert!(not_null.is_some_and(|c| c.message.contains("`MODIFY`")));
    }

    #[test]
    fn a_backfill_is_rehearsed_before_the_constraint_it_prepares() {
        let found = checks(
            "UPDATE \"U\" SET \"n\" = 'x' WHERE \"n\" IS NULL;\nALTER TABLE \"U\" ALTER COLUMN \"n\" SET NOT NULL;",
        );
        let (_, check) = found
            .iter()
            .find(|(rule, _)| *rule == Rule::SetNotNull)
            .expect("a set-not-null finding");
        let Check::Live { check, rehearse } = check else {
            panic!("{check:?}")
        };
        assert_eq!(
            check,
            &LiveCheck::Nulls {
                expr: "\"n\"".into()
            }
        );
        assert_eq!(rehearse.len(), 1);
        assert!(rehearse[0].contains("UPDATE"));
        // A data change of another table is not rehearsed.
        let found = checks(
            "UPDATE \"V\" SET \"n\" = 'x';\nALTER TABLE \"U\" ALTER COLUMN \"n\" SET NOT NULL;",
        );
        assert!(
            found
                .iter()
                .any(|(_, c)| matches!(c, Check::Live { rehearse, .. } if rehearse.is_empty()))
        );
    }

    #[test]
    fn a_column_added_with_a_default_is_that_default_on_old_rows() {
        let found = checks(
            "ALTER TABLE \"U\" ADD COLUMN \"code\" TEXT NOT NULL DEFAULT 'x';\nCREATE UNIQUE INDEX \"U_code_key\" ON \"U\"(\"code\");",
        );
        assert!(found.iter().any(|(rule, c)| *rule == Rule::UniqueIndex
            && matches!(c, Check::Live { check: LiveCheck::Duplicates { exprs, .. }, .. } if exprs == &["('x')".to_owned()])));
    }

    #[test]
    fn narrowing_and_conversions_are_checked_on_the_live_values() {
        let found = checks("ALTER TABLE \"P\" ALTER COLUMN \"t\" SET DATA TYPE VARCHAR(10);");
        assert!(found.iter().any(|(_, c)| matches!(
            c,
            Check::Live {
                check: LiveCheck::TooLong { max: 10, .. },
                ..
            }
        )));
        let found = checks(
            "ALTER TABLE \"P\" ALTER COLUMN \"q\" SET DATA TYPE INTEGER USING (\"q\"::integer);",
        );
        assert!(found.iter().any(|(_, c)| matches!(c, Check::Live { check: LiveCheck::Evaluates { expr }, .. } if expr.contains("(\"q\"::integer)") && expr.ends_with(")::INTEGER"))));
        assert_eq!(
            mysql_range("INT"),
            Some(("-2147483648".into(), "2147483647".into()))
        );
        assert_eq!(
            mysql_range("DECIMAL(10,2)"),
            Some(("-99999999.99".into(), "99999999.99".into()))
        );
        assert_eq!(mysql_enum_values("ENUM('A','it''s')"), vec!["A", "it's"]);
    }

    #[test]
    fn volatile_defaults_are_recognised() {
        assert_eq!(volatile_call("gen_random_uuid()"), Some("gen_random_uuid"));
        assert_eq!(volatile_call("(random() * 10)"), Some("random"));
        assert_eq!(volatile_call("now()"), None);
        assert_eq!(volatile_call("'random()'::text"), None);
        assert_eq!(volatile_call("my_random()"), None);
    }
}
