//! What preflight reports: one [`Finding`] per rule that a statement trips, with its stable
//! [`Rule`] id, a [`Severity`] and the [`Evidence`] behind it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The stable rule ids. Their kebab-case names are part of the outcome document, of the
/// `-- migrator:allow <rule>` comments and of `accept` lists: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    NotNullWithoutDefault,
    SetNotNull,
    UniqueIndex,
    ForeignKeyValidation,
    CheckConstraintValidation,
    EnumValueRemoved,
    ColumnTypeChange,
    IndexNotConcurrent,
    DropTable,
    DropColumn,
    RenameTable,
    RenameColumn,
    UpdateWithoutWhere,
    DeleteWithoutWhere,
    Truncate,
    TableRewrite,
    ImplicitM2mChurn,
    DataChangeFails,
}

impl Rule {
    /// Every rule, in the order the README lists them.
    pub const ALL: [Rule; 18] = [
        Rule::NotNullWithoutDefault,
        Rule::SetNotNull,
        Rule::UniqueIndex,
        Rule::ForeignKeyValidation,
        Rule::CheckConstraintValidation,
        Rule::EnumValueRemoved,
        Rule::ColumnTypeChange,
        Rule::IndexNotConcurrent,
        Rule::DropTable,
        Rule::DropColumn,
        Rule::RenameTable,
        Rule::RenameColumn,
        Rule::UpdateWithoutWhere,
        Rule::DeleteWithoutWhere,
        Rule::Truncate,
        Rule::TableRewrite,
        Rule::ImplicitM2mChurn,
        Rule::DataChangeFails,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::NotNullWithoutDefault => "not-null-without-default",
            Rule::SetNotNull => "set-not-null",
            Rule::UniqueIndex => "unique-index",
            Rule::ForeignKeyValidation => "foreign-key-validation",
            Rule::CheckConstraintValidation => "check-constraint-validation",
            Rule::EnumValueRemoved => "enum-value-removed",
            Rule::ColumnTypeChange => "column-type-change",
            Rule::IndexNotConcurrent => "index-not-concurrent",
            Rule::DropTable => "drop-table",
            Rule::DropColumn => "drop-column",
            Rule::RenameTable => "rename-table",
            Rule::RenameColumn => "rename-column",
            Rule::UpdateWithoutWhere => "update-without-where",
            Rule::DeleteWithoutWhere => "delete-without-where",
            Rule::Truncate => "truncate",
            Rule::TableRewrite => "table-rewrite",
            Rule::ImplicitM2mChurn => "implicit-m2m-churn",
            Rule::DataChangeFails => "data-change-fails",
        }
    }

    /// The rule with this id (exact, lowercase).
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.id() == id)
    }

    /// What kind of harm the rule is about; decides how size weighs on the severity.
    pub fn hazard(self) -> Hazard {
        match self {
            Rule::NotNullWithoutDefault
            | Rule::SetNotNull
            | Rule::UniqueIndex
            | Rule::ForeignKeyValidation
            | Rule::CheckConstraintValidation
            | Rule::EnumValueRemoved
            | Rule::DataChangeFails => Hazard::MayFail,
            Rule::ColumnTypeChange | Rule::IndexNotConcurrent | Rule::TableRewrite => {
                Hazard::BlocksWrites
            }
            Rule::DropTable
            | Rule::DropColumn
            | Rule::RenameTable
            | Rule::RenameColumn
            | Rule::UpdateWithoutWhere
            | Rule::DeleteWithoutWhere
            | Rule::Truncate
            | Rule::ImplicitM2mChurn => Hazard::Breaks,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The harm a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hazard {
    /// The statement fails on some data (and blocks every later deploy until repaired).
    MayFail,
    /// The statement holds a lock that stops writes for as long as it scans or rewrites.
    BlocksWrites,
    /// Data is lost, or the application version still running breaks.
    Breaks,
}

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finding's severity and prediction rest on. Never row data beyond keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// Where the knowledge comes from: `static` (the SQL alone), `plan` (an earlier pending
    /// statement, e.g. the table was created in this plan) or `live` (the database).
    pub basis: Basis,
    /// The table's live name, when it was looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// `pg_class.reltuples` (PostgreSQL's estimate), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_estimate: Option<u64>,
    /// `pg_total_relation_size`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Whether the table holds at least one row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_rows: Option<bool>,
    /// How many rows (or duplicate groups) break the statement, when counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The key of one offending row (its primary key, the duplicated or orphan key value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example_key: Option<String>,
    /// True when only a sample of the table was read (a large table).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sampled: bool,
    /// The lock the statement takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// What the prediction rests on, in words (`3 × NULL, e.g. id=7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why there is no prediction, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    /// How many earlier pending statements of the plan were rehearsed (run and rolled
    /// back) before the data was looked at.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rehearsed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    #[default]
    Static,
    Plan,
    Live,
}

/// One rule tripped by one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub migration: String,
    /// 1-based among the non-blank statements of `migration.sql` (as in failure messages).
    pub statement: usize,
    /// 1-based line of the statement in `migration.sql`.
    pub line: usize,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// True only when the current data makes the statement fail.
    pub will_fail: bool,
    pub evidence: Evidence,
    /// The reason given by a `-- migrator:allow <rule> <reason>` comment: an allowed finding
    /// is still reported but never blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<String>,
}

impl Finding {
    /// `rule@migration`, the form an `accept` list names a finding by.
    pub fn accept_key(&self) -> String {
        format!("{}@{}", self.rule, self.migration)
    }
}

/// The highest severity among findings that are not allowed.
pub fn highest(findings: &[Finding]) -> Option<Severity> {
    findings
        .iter()
        .filter(|f| f.allowed.is_none())
        .map(|f| f.severity)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_round_trip() {
        for rule in Rule::ALL {
            assert_eq!(Rule::from_id(rule.id()), Some(rule));
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{}\"", rule.id()));
        }
        assert_eq!(
            Rule::from_id("implicit-m2m-churn"),
            Some(Rule::ImplicitM2mChurn)
        );
        assert_eq!(Rule::from_id("Drop-Table"), None);
        assert!(Severity::Error > Severity::Warning && Severity::Warning > Severity::Info);
    }
}

/// A session in the way: it holds a lock on a table the plan will lock, or the migration
/// lock. Its query is cut to 200 characters with every literal replaced by `?`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    pub pid: i32,
    /// The table it holds a lock on, or `migration lock` for Prisma's advisory lock.
    pub holds: String,
    /// The lock mode held (`RowExclusiveLock`, `ExclusiveLock` …).
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Seconds since its transaction started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_age_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}
