//! Looking at the live data, read-only and bounded: the [`DataProbe`] port preflight asks.
//! Its PostgreSQL implementation is `dialect::postgres::PgProbe`.
//!
//! Every probe runs in its own `READ ONLY` transaction with `statement_timeout` and
//! `lock_timeout` set, and is rolled back. On a large table a probe reads a
//! `TABLESAMPLE SYSTEM` sample: an offending row found there proves the statement fails,
//! none found proves nothing ("unknown"). Evidence holds keys (primary key, or the
//! duplicated/orphan key value) and counts, never other row data.

use std::time::Duration;

use async_trait::async_trait;

use super::classify::QName;
use super::findings::Blocker;

/// What the data would have to show for a statement to fail. Expressions are SQL over the
/// live table (alias `t`), quoted for the database's flavor by the rules: a live column
/// (`"email"`), or what a column the plan adds holds on the rows from before (its constant
/// default, `NULL`, a `USING` conversion).
#[derive(Debug, Clone, PartialEq)]
pub enum LiveCheck {
    /// Any row at all (a required column added without a default).
    HasRows,
    /// A NULL in `expr` (`SET NOT NULL`, MySQL `MODIFY … NOT NULL`).
    Nulls { expr: String },
    /// Two rows with the same key (a unique index or constraint): non-NULL keys, or any
    /// keys with `NULLS NOT DISTINCT`; for a primary key a NULL too.
    Duplicates {
        exprs: Vec<String>,
        predicate: Option<String>,
        primary: bool,
        nulls_distinct: bool,
    },
    /// A row whose key (all parts non-NULL) has no row in `parent` (a foreign key).
    Orphans {
        exprs: Vec<String>,
        parent: QName,
        /// Empty: the parent's primary key.
        parent_columns: Vec<String>,
    },
    /// A non-NULL key at all: the parent was created (empty) by the plan.
    NonNull { exprs: Vec<String> },
    /// A row for which the check expression is false.
    Violations { expr: String },
    /// A row holding an enum value that the new enum type lacks (in an array column: any
    /// element). `expr` is the value the row converts, as text over the live table: the
    /// live column, or the `USING` expression with its casts to the new type made casts
    /// to text.
    EnumRemoved {
        expr: String,
        new_values: Vec<String>,
        array: bool,
    },
    /// A row on which evaluating `expr` raises a data error (a cast, an index expression):
    /// PostgreSQL evaluates it over the rows.
    Evaluates { expr: String },
    /// A value of `expr` longer than `max` characters (narrowing to `VARCHAR(max)`).
    TooLong { expr: String, max: u32 },
    /// A value of `expr` outside `[min, max]` (narrowing an integer or decimal type).
    OutOfRange {
        expr: String,
        min: String,
        max: String,
    },
    /// Views (PostgreSQL: rules in `pg_depend`) that use the table, or its `column`, and
    /// are not dropped earlier in the plan (`except`): dropping it fails (2BP01).
    Dependents {
        column: Option<String>,
        except: Vec<String>,
    },
    /// The last statement of the rehearsal itself (a pending `UPDATE`/`DELETE`/`INSERT`)
    /// raises a data or integrity error (SQLSTATE class 22 or 23) on the live rows.
    Runs,
    /// MySQL: a required column of `type_name` added without a default takes the type's
    /// implicit default on existing rows; a zero date is refused when `sql_mode` is strict
    /// with `NO_ZERO_DATE`.
    ImplicitDefault { type_name: String },
}

impl LiveCheck {
    /// Answered from the catalog, whatever the table holds (even no rows).
    pub fn is_catalog(&self) -> bool {
        matches!(self, LiveCheck::Dependents { .. })
    }
}

/// A live table's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSize {
    /// `reltuples`; `None` when the table was never analysed.
    pub row_estimate: Option<u64>,
    pub bytes: u64,
    /// Exact: `EXISTS (SELECT 1 FROM t)`.
    pub has_rows: bool,
}

/// Rows that make the statement fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// How many (rows, or duplicated keys); `None` when only a sample was read.
    pub count: Option<u64>,
    /// `id=42`, or the offending key value.
    pub example_key: Option<String>,
    /// What kind of offending row it is, for the message (`NULL`, `duplicate`, …).
    pub what: String,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The data makes the statement fail.
    Fails(Violation),
    /// No offending row exists.
    Passes,
    /// No offending row in the part read (a sample): no prediction.
    NotFoundInSample,
    /// The check does not apply after all (why): e.g. no enum value is actually removed.
    NotApplicable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("the probe hit its {0:?} statement_timeout")]
    Timeout(Duration),
    #[error("the probe waited too long for a lock")]
    Locked,
    #[error("the probe cannot run: {0}")]
    Cannot(String),
    #[error("rehearsing the plan's earlier data changes {0}")]
    Rehearsal(String),
    /// Evaluating the statement's own expression over a row raised a data exception
    /// (PostgreSQL SQLSTATE class 22): the statement fails on that row too.
    #[error("a row raised {0}")]
    DataException(String),
}

/// How far a rehearsal of the whole plan got ([`DataProbe::rehearse_plan`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanRehearsal {
    /// How many of the statements ran without error, from the first.
    pub ran: usize,
    /// The statement after those raised this error (SQLSTATE and the message's first part,
    /// before any value it quotes).
    pub failed: Option<RehearsalError>,
    /// Why the rehearsal stopped before the next statement without running it (a statement
    /// PostgreSQL cannot run in a transaction block, the row budget).
    pub stopped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RehearsalError {
    pub code: String,
    pub message: String,
}

impl RehearsalError {
    /// A data exception (SQLSTATE class 22) or an integrity violation (class 23): the live
    /// rows refused the statement, as they would refuse the deploy.
    pub fn is_data(&self) -> bool {
        self.code.starts_with("22") || self.code.starts_with("23")
    }
}

/// Questions preflight asks the database. One implementation per database; tests may
/// implement it over anything.
#[async_trait]
pub trait DataProbe: Send {
    /// The table's size; `None` when it does not exist.
    async fn size(&mut self, table: &QName) -> Result<Option<TableSize>, ProbeError>;
    /// Looks for rows of `table` that make `check` fail; with `sample`, reads only a sample.
    /// With `rehearse` (earlier pending statements of the plan that change the rows
    /// looked at), runs them first in the same transaction, which is always rolled back
    /// ([`LiveLimits::rehearsal_rows`] bounds what they may touch).
    async fn find(
        &mut self,
        table: &QName,
        check: &LiveCheck,
        sample: bool,
        rehearse: &[String],
    ) -> Result<Verdict, ProbeError>;
    /// Other sessions holding a lock on one of `tables`, or the migration lock.
    async fn blockers(&mut self, tables: &[QName]) -> Result<Vec<Blocker>, ProbeError>;
    /// Runs `statements` (the plan's pending statements, in order) in one transaction that
    /// is always rolled back, until one fails, each bounded like a probe and the data
    /// changes by [`LiveLimits::rehearsal_rows`]. Only a database whose DDL is
    /// transactional can; the others say [`ProbeError::Cannot`].
    async fn rehearse_plan(&mut self, statements: &[String]) -> Result<PlanRehearsal, ProbeError>;
}

/// Bounds on what probing may cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveLimits {
    /// Per probe query (default 5 s).
    pub statement_timeout: Duration,
    /// Per probe query, for its ACCESS SHARE lock (default 1 s).
    pub lock_timeout: Duration,
    /// `TABLESAMPLE SYSTEM` percentage on large tables (default 1).
    pub sample_percent: f64,
    /// All probes of one plan together (default 30 s); later checks then say "unknown".
    pub budget: Duration,
    /// The most rows a rehearsal of the plan's earlier data changes may touch (estimated
    /// first, counted after; default 100,000): past it the check says "unknown".
    pub rehearsal_rows: u64,
}

impl Default for LiveLimits {
    fn default() -> Self {
        LiveLimits {
            statement_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(1),
            sample_percent: 1.0,
            budget: Duration::from_secs(30),
            rehearsal_rows: 100_000,
        }
    }
}
