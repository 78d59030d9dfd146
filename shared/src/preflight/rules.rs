//! The static rules: each statement of each migration, in order, against the [`Model`] of
//! what the earlier statements did, gives [`Candidate`]s — a rule, a message, the table
//! whose size weighs on it, and what the data would have to show for it to fail.

use std::collections::HashSet;

use super::classify::{Action, ColumnDef, ConstraintKind, IndexDef, QName, Stmt, classify};
use super::findings::Rule;
use super::model::{Model, Rows};
use super::probe::LiveCheck;
use super::suppress;
use super::{Scope, Script};
use crate::sql::{Flavor, split};

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
    /// Ask the live database.
    Live(LiveCheck),
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

/// Walks `scripts` in order and returns every candidate finding.
pub fn candidates(scripts: &[Script<'_>], flavor: Flavor, scope: Scope) -> Vec<Candidate> {
    let mut model = Model::default();
    let mut out = Vec::new();
    for (index, script) in scripts.iter().enumerate() {
        if scope == Scope::EachMigration {
            model.treat_as_deployed();
        }
        let statements: Vec<_> = split(script.sql, flavor)
            .into_iter()
            .filter(|s| !s.is_blank())
            .collect();
        let classified: Vec<Stmt> = statements.iter().map(classify).collect();
        let redefined = redefined_tables(&classified);
        for (number, (statement, stmt)) in statements.iter().zip(&classified).enumerate() {
            let mut walker = Walker {
                model: &mut model,
                flavor,
                pending: script.pending,
                redefined: &redefined,
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
    out
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
            lock,
            check,
        });
    }

    fn pg(&self) -> bool {
        self.flavor == Flavor::Postgres
    }

    /// A live check, on PostgreSQL only (the probes speak its SQL).
    fn live(&self, check: LiveCheck) -> Check {
        if self.pg() {
            Check::Live(check)
        } else {
            Check::Unknown("live predictions are made on PostgreSQL only".into())
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
                for action in actions {
                    self.action(table, action);
                }
            }
            Stmt::RenameTables(pairs) => {
                for (from, to) in pairs {
                    self.rename_table(from, to);
                }
            }
            Stmt::CreateIndex(index) => self.create_index(index),
            Stmt::DropIndex { names, .. } => {
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
                        self.push(
                            Rule::DropTable,
                            name,
                            format!(
                                "Dropping `{}` deletes its rows, and the application version still running fails on it.",
                                name.display()
                            ),
                            Some(ACCESS_EXCLUSIVE),
                            Check::None,
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
                if pending {
                    self.model.written(table, false);
                }
            }
            Stmt::CreateEnum { name, values } => self.model.create_enum(name, values),
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
        self.push(
            Rule::TableRewrite,
            table,
            format!(
                "`{what}` rewrites `{}` under an ACCESS EXCLUSIVE lock.",
                table.display()
            ),
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
        self.model.rename_table(from, to);
    }

    fn action(&mut self, table: &QName, action: &Action) {
        let pending = self.pending;
        match action {
            Action::AddColumn(column) => {
                self.add_column(table, column);
                self.model.add_column(table, column, pending);
            }
            Action::DropColumn(column) => {
                self.push(
                    Rule::DropColumn,
                    table,
                    format!(
                        "Dropping `{}`.`{column}` deletes its data, and the application version still running fails on it.",
                        table.display()
                    ),
                    Some(ACCESS_EXCLUSIVE),
                    Check::None,
                );
                self.model.drop_column(table, column);
            }
            Action::ColumnType { column, type_name } => {
                self.column_type(table, column, type_name);
                self.model.set_column_type(table, column, type_name);
            }
            Action::SetNotNull(column) => self.set_not_null(table, column),
            Action::AddConstraint {
                name,
                kind,
                not_valid,
            } => self.add_constraint(table, name.as_deref(), kind, *not_valid),
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
                self.model.rename_column(table, from, to);
            }
            Action::RenameTo(to) => self.rename_table(table, to),
            Action::Rewrite(what) => self.rewrite(table, what),
            Action::Other => {}
        }
    }

    fn add_column(&mut self, table: &QName, column: &ColumnDef) {
        let name = &column.name;
        if column.not_null
            && column.default.is_none()
            && !column.auto_value
            && !column.generated_stored
        {
            let check = if self.pg() {
                Check::Live(LiveCheck::HasRows)
            } else {
                Check::Unknown(
                    "MySQL fills an implicit default in non-strict mode and fails in strict mode"
                        .into(),
                )
            };
            self.push(
                Rule::NotNullWithoutDefault,
                table,
                format!(
                    "Adding the required column `{name}` without a default fails when `{}` has rows. Add it with a default, or nullable, backfill, then make it required.",
                    table.display()
                ),
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
        if let Some((parent, parent_columns)) = &column.references {
            self.foreign_key(
                table,
                std::slice::from_ref(name),
                parent,
                parent_columns,
                false,
            );
        }
        if column.unique || column.primary_key {
            // A new column is NULL (or its default) everywhere: a constant default on a table
            // with two rows duplicates; the data check cannot run on a column that does not exist yet.
            self.push(
                Rule::UniqueIndex,
                table,
                format!(
                    "Adding `{name}` as unique builds an index under a lock that stops writes to `{}`.",
                    table.display()
                ),
                Some(ACCESS_EXCLUSIVE),
                if column.default.is_some() {
                    Check::Unknown("a default gives every row the same value".into())
                } else {
                    Check::None
                },
            );
        }
    }

    fn column_type(&mut self, table: &QName, column: &str, type_name: &str) {
        let current = self.model.column(table, column);
        let target = type_name.trim_matches('"');
        let enum_new = self.model.enum_values(target).map(<[String]>::to_vec);
        if let Some(new_values) = enum_new
            && (target.ends_with("_new") || !current.type_name.is_empty())
        {
            let old_type = if current.type_name.is_empty() {
                target.trim_end_matches("_new").to_owned()
            } else {
                current.type_name.clone()
            };
            let old_values = self.model.enum_values(&old_type).map(<[String]>::to_vec);
            let removed: Option<Vec<String>> = old_values.as_ref().map(|old| {
                old.iter()
                    .filter(|v| !new_values.contains(v))
                    .cloned()
                    .collect()
            });
            let meaningful = match &removed {
                Some(removed) => !removed.is_empty(),
                None => target.ends_with("_new"),
            };
            if meaningful {
                let listed = removed
                    .as_ref()
                    .map(|r| format!(" ({})", r.join(", ")))
                    .unwrap_or_default();
                let t = self.model.table(table);
                let check = match (&current.live, t.rows) {
                    (_, Rows::Empty) => Check::None,
                    (Some(live_column), Rows::Live) => self.live(LiveCheck::EnumRemoved {
                        column: live_column.clone(),
                        new_values: new_values.clone(),
                    }),
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
        }
        self.push(
            Rule::ColumnTypeChange,
            table,
            format!(
                "Changing the type of `{}`.`{column}` to `{type_name}` can rewrite the table under an ACCESS EXCLUSIVE lock, and the running application may not read the new type. Add a new column, backfill, and switch over.",
                table.display()
            ),
            Some(ACCESS_EXCLUSIVE),
            Check::None,
        );
    }

    fn set_not_null(&mut self, table: &QName, column: &str) {
        let col = self.model.column(table, column);
        let t = self.model.table(table);
        let check = match (t.rows, &col.live, col.filled_when_added) {
            (Rows::Empty, _, _) => Check::None,
            (Rows::PlanData, _, _) => Check::Unknown("the plan writes this table first".into()),
            (Rows::Live, Some(live), _) => self.live(LiveCheck::Nulls {
                column: live.clone(),
            }),
            (Rows::Live, None, Some(true)) => Check::None,
            (Rows::Live, None, Some(false)) => Check::Plan {
                fails_if_rows: true,
                why:
                    "the plan added this column without a default, so every existing row holds NULL"
                        .into(),
            },
            (Rows::Live, None, None) => {
                Check::Unknown("the plan added this column and then updated the table".into())
            }
        };
        self.push(
            Rule::SetNotNull,
            table,
            format!(
                "`SET NOT NULL` on `{}`.`{column}` scans the table under an ACCESS EXCLUSIVE lock and fails if any row holds NULL. Backfill first; on a large table add `CHECK ({column} IS NOT NULL) NOT VALID`, validate it, then set NOT NULL.",
                table.display()
            ),
            Some(ACCESS_EXCLUSIVE),
            check,
        );
    }

    fn unique_check(
        &self,
        table: &QName,
        columns: &[Option<String>],
        predicate: Option<&str>,
        primary: bool,
    ) -> Check {
        let t = self.model.table(table);
        match t.rows {
            Rows::Empty => return Check::None,
            Rows::PlanData => return Check::Unknown("the plan writes this table first".into()),
            Rows::Live => {}
        }
        let mut live_columns = Vec::new();
        for column in columns {
            let Some(column) = column else {
                return Check::Unknown("an index expression cannot be checked".into());
            };
            let c = self.model.column(table, column);
            match (c.live, c.filled_when_added) {
                (Some(live), _) => live_columns.push(live),
                (None, _) => return Check::Unknown(format!("`{column}` was added by this plan")),
            }
        }
        self.live(LiveCheck::Duplicates {
            columns: live_columns,
            predicate: predicate.map(str::to_owned),
            primary,
        })
    }

    fn create_index(&mut self, index: &IndexDef) {
        let table = &index.table;
        if index.unique {
            let check = self.unique_check(table, &index.columns, index.predicate.as_deref(), false);
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
        if !index.concurrently && self.pg() {
            self.push(
                Rule::IndexNotConcurrent,
                table,
                format!(
                    "`CREATE INDEX` without `CONCURRENTLY` blocks writes to `{}` while the index builds. Use `CREATE INDEX CONCURRENTLY` in a migration of its own.",
                    table.display()
                ),
                Some(SHARE),
                Check::None,
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
                let check = self.unique_check(table, columns, None, primary);
                self.push(
                    Rule::UniqueIndex,
                    table,
                    format!(
                        "The {} constraint {named}on `{}` builds a unique index under an ACCESS EXCLUSIVE lock and fails on duplicate{} values. Build the index `CONCURRENTLY` first, then add the constraint `USING INDEX`.",
                        if primary { "primary key" } else { "unique" },
                        table.display(),
                        if primary { " or NULL" } else { "" }
                    ),
                    Some(ACCESS_EXCLUSIVE),
                    check,
                );
            }
            ConstraintKind::ForeignKey {
                columns,
                parent,
                parent_columns,
            } => self.foreign_key(table, columns, parent, parent_columns, not_valid),
            ConstraintKind::Check(expr) => {
                if not_valid {
                    return;
                }
                let t = self.model.table(table);
                let check = match t.rows {
                    Rows::Empty => Check::None,
                    Rows::PlanData => Check::Unknown("the plan writes this table first".into()),
                    Rows::Live => self.live(LiveCheck::Violations { expr: expr.clone() }),
                };
                self.push(
                    Rule::CheckConstraintValidation,
                    table,
                    format!(
                        "The check constraint {named}on `{}` scans every row under an ACCESS EXCLUSIVE lock and fails if one violates `{expr}`. Add it `NOT VALID`, then `VALIDATE CONSTRAINT` in a later migration.",
                        table.display()
                    ),
                    Some(ACCESS_EXCLUSIVE),
                    check,
                );
            }
            ConstraintKind::Other => {}
        }
    }

    fn foreign_key(
        &mut self,
        table: &QName,
        columns: &[String],
        parent: &QName,
        parent_columns: &[String],
        not_valid: bool,
    ) {
        if not_valid {
            return;
        }
        let child = self.model.table(table);
        let parent_table = self.model.table(parent);
        let child_live: Option<Vec<String>> = columns
            .iter()
            .map(|c| self.model.column(table, c).live)
            .collect();
        let check = match (child.rows, parent_table.rows) {
            (Rows::Empty, _) => Check::None,
            (Rows::PlanData, _) | (_, Rows::PlanData) => {
                Check::Unknown("the plan writes one of the tables first".into())
            }
            (Rows::Live, Rows::Empty) => match child_live {
                Some(columns) => self.live(LiveCheck::NonNull { columns }),
                None => Check::Unknown("a column was added by this plan".into()),
            },
            (Rows::Live, Rows::Live) => {
                let parent_live: Option<Vec<String>> = parent_columns
                    .iter()
                    .map(|c| self.model.column(parent, c).live)
                    .collect();
                match (child_live, parent_live, parent_table.live) {
                    (Some(columns), Some(parent_columns), Some(parent)) => {
                        self.live(LiveCheck::Orphans {
                            columns,
                            parent,
                            parent_columns,
                        })
                    }
                    _ => Check::Unknown("a column was added by this plan".into()),
                }
            }
        };
        self.push(
            Rule::ForeignKeyValidation,
            table,
            format!(
                "The foreign key from `{}` to `{}` checks every row while both tables are locked against writes, and fails on rows referencing a missing `{}`. Add it `NOT VALID`, then `VALIDATE CONSTRAINT` in a later migration.",
                table.display(),
                parent.display(),
                parent.display()
            ),
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

    #[test]
    fn volatile_defaults_are_recognised() {
        assert_eq!(volatile_call("gen_random_uuid()"), Some("gen_random_uuid"));
        assert_eq!(volatile_call("(random() * 10)"), Some("random"));
        assert_eq!(volatile_call("now()"), None);
        assert_eq!(volatile_call("'random()'::text"), None);
        assert_eq!(volatile_call("my_random()"), None);
    }
}
