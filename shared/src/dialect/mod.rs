//! The database port: everything the engine needs from a database, one file per database.
//!
//! A dialect owns one connection (the migration lock is a session lock) and knows its
//! bookkeeping SQL, its lock, how a script is executed and how errors read. The engine
//! decides *what* happens; a dialect knows *how* it is said to its database.

mod apply;
mod bookkeeping;
mod ca;
mod connect;
mod connect_error;
pub mod mysql;
pub mod postgres;
mod probe_row;
mod replay;
mod script_error;
mod server;
pub mod sqlite;
mod statements;
mod witness;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::EngineError;
use crate::outcome::{DatabaseInfo, Execution};
use crate::preflight::Blocker;

#[cfg(test)]
pub(crate) use apply::in_transaction;
pub use apply::{Applied, ApplyError, Migrating, ScriptFailed};
pub(crate) use apply::{Steps, TransactionError, by_statement};
pub use ca::{CaError, count_certificates, read_ca_file};
pub use connect::{ConnectPurpose, DatabaseTarget, ServerLogin, connect, parse_database_url};
pub use script_error::{FailedStatement, Interruption, ScriptFailure};
pub(crate) use statements::{Commits, OneByOne, left_open_failure, one_by_one};

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

/// Limits for one migration: at the deadline the supervising session cancels the running
/// statement from outside (whatever the script set for its session), so the process is never
/// killed mid-migration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatementLimits {
    /// When the working statement is cancelled (the run's deadline less its margin).
    pub deadline: Option<std::time::Instant>,
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

    /// Other sessions holding what this session waited for in vain: the migration lock
    /// (after a P1002) or a lock on a table of the target namespace (after a lock timeout).
    /// Bounded by the server; a dialect that cannot tell answers nobody.
    async fn lock_holders(&mut self, _held: Held) -> Result<Vec<Blocker>, EngineError> {
        Ok(Vec::new())
    }

    /// Refuses a server a migration must not write (a hot standby, a read replica, a
    /// read-only server), asked before the lock: `Err(EngineError::WrongDatabase)` names what
    /// was found. A database that cannot be one (SQLite) has nothing to refuse.
    async fn refuse_read_only(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

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

    /// Every migration runs statement by statement on this database (MySQL): nothing to warn
    /// about per deploy.
    fn always_by_statement(&self) -> bool {
        false
    }

    /// A statement of `script` the migrator refuses to run (it would hang waiting for a
    /// client-side data stream, …), checked for every pending migration before any is applied.
    fn unsupported(&self, _script: &str) -> Option<Unsupported> {
        None
    }

    /// Applies one migration with its bookkeeping, the way [`Dialect::execution`] says: in one
    /// transaction with its row (on failure nothing of it remains, unless the script committed
    /// it itself), or statement by statement after its started row. The error says what was
    /// committed and whether the started row exists; nothing of the failure is recorded yet.
    async fn apply(&mut self, m: &Migrating<'_>) -> Result<Applied, ApplyError>;

    /// The dialect's bookkeeping steps, for the defaults below (the engine uses those).
    fn steps(&mut self) -> &mut dyn Steps;

    /// Records a failed apply as Prisma leaves it: the logs written into the started row when
    /// the apply left one, else a failed row inserted in a transaction of its own.
    async fn record_failure(
        &mut self,
        row: &NewRow,
        failed: &ScriptFailed,
        logs: &str,
    ) -> Result<(), EngineError> {
        apply::record_failure(self.steps(), row, failed, logs).await
    }

    /// Removes the started row an apply left behind, when the engine decides the failure was
    /// one of its own limits and nothing else was committed (the migration is tried again).
    async fn discard(&mut self, row: &NewRow) -> Result<(), EngineError> {
        self.steps().delete_row(&row.id).await
    }

    /// `resolve --applied`: a finished row with `logs = ''`, `finished_at = started_at`, 0 steps.
    async fn record_resolved(&mut self, row: &NewRow) -> Result<(), EngineError> {
        self.steps().insert_resolved_row(row).await
    }

    /// Sets `rolled_back_at` on the rows with these ids.
    async fn mark_rolled_back(
        &mut self,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.steps().mark_rolled_back(ids, at).await
    }

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

/// What a session waited for when it asks who holds it ([`Dialect::lock_holders`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The migration lock (Prisma's advisory lock, MySQL's `GET_LOCK`).
    MigrationLock,
    /// A lock on a table of the target namespace.
    Tables,
}

/// A statement the migrator will not run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub line: usize,
    pub statement: String,
    pub reason: String,
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
