//! The database port: everything the engine needs from a database, one file per database.
//!
//! A dialect owns one connection (the migration lock is a session lock) and knows its
//! bookkeeping SQL, its lock, how a script is executed and how errors read. The engine
//! decides *what* happens; a dialect knows *how* it is said to its database.

pub(crate) mod apply;
mod bookkeeping;
mod connect;
mod connect_error;
pub mod mysql;
pub mod postgres;
mod script_error;
pub mod sqlite;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::error::EngineError;
use crate::outcome::{DatabaseInfo, Execution};

pub use apply::{Applied, ApplyError, ScriptFailed};
pub(crate) use apply::{Steps, TransactionError};
pub use connect::{ConnectPurpose, DatabaseTarget, connect, parse_database_url};
pub use script_error::{FailedStatement, Interruption, ScriptFailure};

/// The name Prisma gives its bookkeeping table.
pub const MIGRATIONS_TABLE: &str = "_prisma_migrations";

/// One row of `_prisma_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRow {
    pub id: String,
    pub checksum: String,
    pub finished_at: Option<DateTime<Utc>>,
    pub migration_name: String,
    pub logs: Option<String>,
    pub rolled_back_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub applied_steps_count: i64,
}

impl MigrationRow {
    /// Prisma's "failed": started, never finished, never rolled back.
    pub fn is_failed(&self) -> bool {
        self.finished_at.is_none() && self.rolled_back_at.is_none()
    }
}

/// The columns written when a migration starts (Prisma's `record_migration_started`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRow {
    pub id: String,
    pub checksum: String,
    pub migration_name: String,
    pub started_at: DateTime<Utc>,
}

/// Server-side limits for one migration: a runaway statement is cancelled by the database
/// (and its transaction rolled back) instead of the process being killed mid-migration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatementLimits {
    /// PostgreSQL `statement_timeout` (the time left before the deadline).
    pub statement_timeout: Option<Duration>,
    /// Give up waiting for a table lock (PostgreSQL `lock_timeout`, MySQL `lock_wait_timeout`).
    pub lock_timeout: Option<Duration>,
}

/// What the target namespace holds, for the P3005 check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    pub has_migrations_table: bool,
    /// Tables that make the schema "not empty" for Prisma (ignored ones already left out).
    /// Only listed when there is no `_prisma_migrations` (the only time it matters).
    pub others: Vec<String>,
}

impl Tables {
    /// Sorts table names the way Prisma's initialisation sees them: `_prisma_migrations`, the
    /// tables it ignores (`ignored`, case-insensitive), and the rest.
    pub fn classify(names: Vec<String>, ignored: &[&str]) -> Tables {
        let mut tables = Tables::default();
        for name in names {
            if name == MIGRATIONS_TABLE {
                tables.has_migrations_table = true;
            } else if !ignored.iter().any(|t| t.eq_ignore_ascii_case(&name)) {
                tables.others.push(name);
            }
        }
        tables
    }
}

#[async_trait]
pub trait Dialect: Send {
    /// The connector type Prisma compares `migration_lock.toml` with: `postgresql`, `sqlite`, `mysql`.
    fn provider(&self) -> &'static str;

    /// Where we are connected (never a password).
    fn info(&self) -> DatabaseInfo;

    /// Takes the migration lock, waiting at most `wait` (P1002 after that).
    async fn lock(&mut self, wait: Duration) -> Result<(), EngineError>;

    /// Gives the lock back (closing the connection would too).
    async fn unlock(&mut self) -> Result<(), EngineError>;

    /// Creates the target namespace when it is missing (PostgreSQL's `?schema=`), like Prisma.
    async fn prepare_namespace(&mut self) -> Result<(), EngineError>;

    async fn tables(&mut self) -> Result<Tables, EngineError>;

    /// Prisma's exact DDL for this database.
    async fn create_migrations_table(&mut self) -> Result<(), EngineError>;

    /// All rows, ordered by `started_at` like Prisma.
    async fn rows(&mut self) -> Result<Vec<MigrationRow>, EngineError>;

    /// How `script` would be executed.
    fn execution(&self, script: &str) -> Execution;

    /// A statement of `script` the migrator refuses to run (it would hang waiting for a
    /// client-side data stream, …), checked for every pending migration before any is applied.
    fn unsupported(&self, _script: &str) -> Option<Unsupported> {
        None
    }

    /// Applies one migration with its bookkeeping, the way [`Dialect::execution`] says: in one
    /// transaction with its row (on failure nothing of it remains, unless the script committed
    /// it itself), or statement by statement after its started row. The error says what was
    /// committed and whether the started row exists; nothing of the failure is recorded yet.
    async fn apply(
        &mut self,
        row: &NewRow,
        script: &str,
        limits: StatementLimits,
        clock: &dyn Clock,
    ) -> Result<Applied, ApplyError>;

    /// Records a failed apply as Prisma leaves it: the logs written into the started row when
    /// the apply left one, else a failed row inserted in a transaction of its own.
    async fn record_failure(
        &mut self,
        row: &NewRow,
        failed: &ScriptFailed,
        logs: &str,
    ) -> Result<(), EngineError>;

    /// Removes the started row an apply left behind, when the engine decides the failure was
    /// one of its own limits and nothing else was committed (the migration is tried again).
    async fn discard(&mut self, row: &NewRow) -> Result<(), EngineError>;

    /// `resolve --applied`: a finished row with `logs = ''`, `finished_at = started_at`, 0 steps.
    async fn record_resolved(&mut self, row: &NewRow) -> Result<(), EngineError>;

    /// Sets `rolled_back_at` on the rows with these ids.
    async fn mark_rolled_back(
        &mut self,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), EngineError>;

    /// Makes everything committed so far durable, before an outcome reports it. Dialects that
    /// commit migrations asynchronously (PostgreSQL) flush here; others have nothing to do.
    async fn flush(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Closes the connection (which also frees the lock).
    async fn close(self: Box<Self>);
}

/// Which `schema.prisma` providers a database of `provider` accepts: its own, and on
/// PostgreSQL also `cockroachdb` (Prisma's CockroachDB connector speaks the same protocol).
pub fn accepts_schema_provider(provider: &str, schema_provider: &str) -> bool {
    schema_provider == provider || (provider == "postgresql" && schema_provider == "cockroachdb")
}

/// A statement the migrator will not run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub line: usize,
    pub statement: String,
    pub reason: String,
}

/// Which statements of a script run one by one are committed, following the script's own
/// `BEGIN` / `START TRANSACTION` / `COMMIT` / `ROLLBACK` and, on MySQL, the implicit commit
/// of DDL (`implicit_ddl_commit`).
#[derive(Debug, Default)]
pub(crate) struct Commits {
    pub(crate) committed: Vec<usize>,
    /// Statements run inside a transaction the script opened and has not ended yet.
    pub(crate) open: Option<Vec<usize>>,
    implicit_ddl_commit: bool,
}

impl Commits {
    pub(crate) fn new(implicit_ddl_commit: bool) -> Commits {
        Commits {
            implicit_ddl_commit,
            ..Commits::default()
        }
    }

    /// Statement `number`, whose first words are `words`, ran without error.
    pub(crate) fn ran(&mut self, number: usize, words: &[String]) {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["START", "TRANSACTION", ..] | ["BEGIN", ..] => {
                // MySQL commits an open transaction on BEGIN; PostgreSQL only warns.
                if self.implicit_ddl_commit || self.open.is_none() {
                    self.commit_open();
                    self.open = Some(Vec::new());
                }
                self.committed.push(number);
            }
            ["COMMIT" | "END", ..] => {
                self.commit_open();
                self.committed.push(number);
            }
            ["ROLLBACK" | "ABORT", ..] if !w.contains(&"TO") => {
                self.open = None;
                self.committed.push(number);
            }
            // Statements that commit implicitly (before and after themselves).
            [
                "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE" | "LOCK" | "UNLOCK",
                ..,
            ] if self.implicit_ddl_commit => {
                self.commit_open();
                self.committed.push(number);
            }
            _ => match &mut self.open {
                Some(open) => open.push(number),
                None => self.committed.push(number),
            },
        }
    }

    fn commit_open(&mut self) {
        if let Some(open) = self.open.take() {
            self.committed.extend(open);
            self.committed.sort_unstable();
        }
    }
}

/// What to say when a script leaves a transaction of its own open at its end (`BEGIN`
/// without `COMMIT`): the migrator rolls it back rather than commit it unasked.
pub(crate) fn left_open_failure(committed: Vec<usize>) -> ScriptFailure {
    ScriptFailure {
        code: None,
        message: "The migration script left a transaction of its own open (a `BEGIN` or `START TRANSACTION` without `COMMIT`). The migrator rolled that transaction back: the statements after that `BEGIN` were not applied.".into(),
        committed,
        ..ScriptFailure::default()
    }
}

/// Statements PostgreSQL (and friends) refuse inside a transaction block, or that manage
/// transactions themselves. Returns why, for the outcome.
pub(crate) fn transaction_control_reason(words: &[String]) -> Option<String> {
    let first = words.first().map(String::as_str)?;
    match first {
        "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "PREPARE" => Some(format!(
            "the script controls transactions itself (`{}`)",
            words.join(" ")
        )),
        _ => None,
    }
}

/// Default wait for the migration lock, as Prisma's.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// The rule every dialect applies to a bookkeeping write that must touch exactly one row: zero rows
/// means the script removed the row, a missing-table error means it removed or moved the table, and
/// either is said as [`EngineError::RowMissing`] (never "applied"). Each dialect only says how its
/// server reports a missing table and how it names the table.
pub(crate) fn exactly_one_row(
    done: Result<u64, sqlx::Error>,
    table_is_missing: impl FnOnce(&dyn sqlx::error::DatabaseError) -> bool,
    row_gone: impl FnOnce() -> String,
    table_gone: impl FnOnce() -> String,
    context: &'static str,
) -> Result<(), EngineError> {
    match done {
        Ok(1) => Ok(()),
        Ok(_) => Err(EngineError::RowMissing { what: row_gone() }),
        Err(sqlx::Error::Database(e)) if table_is_missing(e.as_ref()) => {
            Err(EngineError::RowMissing { what: table_gone() })
        }
        Err(e) => Err(EngineError::database(context)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn postgres_commits_keep_a_scripts_transaction_together() {
        let mut c = Commits::new(false);
        c.ran(1, &words("CREATE TABLE"));
        c.ran(2, &words("BEGIN"));
        c.ran(3, &words("CREATE TABLE"));
        // Without an implicit DDL commit, the block is still open: 3 is not committed.
        assert_eq!(c.committed, [1, 2]);
        c.ran(4, &words("SAVEPOINT s"));
        c.ran(5, &words("ROLLBACK TO"));
        // ROLLBACK TO SAVEPOINT does not end the block.
        assert!(c.open.is_some());
        c.ran(6, &words("COMMIT"));
        assert_eq!(c.committed, [1, 2, 3, 4, 5, 6]);
        c.ran(7, &words("BEGIN"));
        c.ran(8, &words("INSERT INTO"));
        c.ran(9, &words("ROLLBACK"));
        assert_eq!(c.committed, [1, 2, 3, 4, 5, 6, 7, 9]);
        assert!(c.open.is_none());
    }

    #[test]
    fn a_transaction_left_open_names_what_stays() {
        let failure = left_open_failure(vec![1]);
        assert!(
            failure
                .message
                .contains("left a transaction of its own open")
        );
        assert_eq!(failure.committed, [1]);
        assert!(!failure.rolled_back);
    }
}
