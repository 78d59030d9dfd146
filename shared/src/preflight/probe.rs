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

/// What the data would have to show for a statement to fail.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveCheck {
    /// Any row at all (a required column added without a default).
    HasRows,
    /// A NULL in `column` (`SET NOT NULL`).
    Nulls { column: String },
    /// Two rows with the same non-NULL key (a unique index or constraint); for a primary key
    /// a NULL too.
    Duplicates {
        columns: Vec<String>,
        predicate: Option<String>,
        primary: bool,
    },
    /// A row whose key (all columns non-NULL) has no row in `parent` (a foreign key).
    Orphans {
        columns: Vec<String>,
        parent: QName,
        /// Empty: the parent's primary key.
        parent_columns: Vec<String>,
    },
    /// A non-NULL key at all: the parent was created (empty) by the plan.
    NonNull { columns: Vec<String> },
    /// A row for which the check expression is false.
    Violations { expr: String },
    /// A row holding an enum value that the new enum type lacks.
    EnumRemoved {
        column: String,
        new_values: Vec<String>,
    },
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
}

/// Questions preflight asks the database. One implementation per database; tests may
/// implement it over anything.
#[async_trait]
pub trait DataProbe: Send {
    /// The table's size; `None` when it does not exist.
    async fn size(&mut self, table: &QName) -> Result<Option<TableSize>, ProbeError>;
    /// Looks for rows of `table` that make `check` fail; with `sample`, reads only a sample.
    async fn find(
        &mut self,
        table: &QName,
        check: &LiveCheck,
        sample: bool,
    ) -> Result<Verdict, ProbeError>;
    /// Other sessions holding a lock on one of `tables`, or the migration lock.
    async fn blockers(&mut self, tables: &[QName]) -> Result<Vec<Blocker>, ProbeError>;
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
}

impl Default for LiveLimits {
    fn default() -> Self {
        LiveLimits {
            statement_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(1),
            sample_percent: 1.0,
            budget: Duration::from_secs(30),
        }
    }
}
