//! The whole-migration apply every dialect shares: what the engine gets back ([`Applied`],
//! [`ApplyError`]) and the statement-by-statement flow (started row, statements, finished
//! row) written once over a dialect's bookkeeping [`Steps`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{NewRow, ScriptFailure, StatementLimits};
use crate::clock::Clock;
use crate::error::EngineError;
use crate::outcome::Execution;

/// One migration to apply: its started row, its script, the limits of its statements.
#[derive(Clone, Copy)]
pub struct Migrating<'a> {
    pub row: &'a NewRow,
    pub script: &'a str,
    pub limits: StatementLimits,
    pub clock: &'a dyn Clock,
}

/// What a successful apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// How the migration ran (one transaction, or statement by statement and why).
    pub execution: Execution,
    /// What a person must know (a script that committed our transaction itself …).
    pub warnings: Vec<String>,
}

/// A migration whose script failed, and how it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFailed {
    pub execution: Execution,
    pub failure: ScriptFailure,
}

impl ScriptFailed {
    /// Nothing of the migration is committed: its transaction was rolled back, or it ran
    /// statement by statement and failed before any statement was committed (its started
    /// row aside, see [`ScriptFailed::row_exists`]).
    pub fn committed_nothing(&self) -> bool {
        match self.execution {
            Execution::Transaction => self.failure.rolled_back,
            Execution::StatementByStatement { .. } => self.failure.committed.is_empty(),
        }
    }

    /// The migration's started row is committed (statement by statement, or a script that
    /// committed our transaction itself): a failure is written into it, not inserted.
    pub fn row_exists(&self) -> bool {
        self.failure.row_recorded
    }
}

/// Why a whole-migration apply failed.
#[derive(Debug)]
pub enum ApplyError {
    /// The script failed; [`ScriptFailed`] says what stayed committed.
    Script(Box<ScriptFailed>),
    /// The bookkeeping around it failed (or the connection broke). A migration that broke
    /// `_prisma_migrations` is [`EngineError::Bookkeeping`], saying whether it was rolled back.
    Bookkeeping(EngineError),
}

/// Why a transactional apply failed, inside a dialect (the engine sees [`ApplyError`]).
#[derive(Debug)]
pub(crate) enum TransactionError {
    /// The script failed; the transaction was rolled back (unless the script committed it).
    Script(ScriptFailure),
    /// The bookkeeping around it failed; rolled back as well.
    Bookkeeping(EngineError),
}

/// A dialect's bookkeeping steps, used by the shared flows below and the [`super::Dialect`]
/// defaults; the engine never calls them one by one (the trait cannot be named outside
/// the crate).
#[async_trait]
pub trait Steps: Send {
    /// Inserts the started row on its own.
    async fn insert_started_row(&mut self, row: &NewRow) -> Result<(), EngineError>;

    /// Runs the script statement by statement, each committed on its own; returns the
    /// number of statements run.
    async fn run_statements(
        &mut self,
        script: &str,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure>;

    /// `applied_steps_count + 1` and `finished_at`, as Prisma does after a successful script.
    async fn mark_finished(&mut self, id: &str, at: DateTime<Utc>) -> Result<(), EngineError>;

    /// Writes the error text into `logs` of an existing row (Prisma's failure path).
    async fn set_logs(&mut self, id: &str, logs: &str) -> Result<(), EngineError>;

    /// Inserts a row exactly as Prisma leaves a failed migration (`finished_at` NULL,
    /// `applied_steps_count` 0, `logs` set).
    async fn insert_failed_row(&mut self, row: &NewRow, logs: &str) -> Result<(), EngineError>;

    /// Deletes the row with this id.
    async fn delete_row(&mut self, id: &str) -> Result<(), EngineError>;

    /// `resolve --applied`: a finished row with `logs = ''`, `finished_at = started_at`, 0 steps.
    async fn insert_resolved_row(&mut self, row: &NewRow) -> Result<(), EngineError>;

    /// Sets `rolled_back_at` on the rows with these ids.
    async fn mark_rolled_back(
        &mut self,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), EngineError>;
}

/// A migration that could not run in one transaction: the started row, the statements one
/// by one, the finished row. A failed script leaves the started row (with what was
/// committed in the failure).
pub(crate) async fn by_statement<S: Steps + ?Sized>(
    steps: &mut S,
    m: &Migrating<'_>,
    reason: String,
) -> Result<Applied, ApplyError> {
    let row = m.row;
    tracing::debug!(migration = %row.migration_name, "running statement by statement: {reason}");
    let execution = Execution::StatementByStatement { reason };
    steps
        .insert_started_row(row)
        .await
        .map_err(ApplyError::Bookkeeping)?;
    match steps.run_statements(m.script, m.limits).await {
        Ok(_) => {
            steps
                .mark_finished(&row.id, m.clock.now())
                .await
                .map_err(|e| ApplyError::Bookkeeping(broken(e, row, false)))?;
            Ok(Applied {
                execution,
                warnings: Vec::new(),
            })
        }
        Err(mut failure) => {
            failure.row_recorded = true;
            Err(ApplyError::Script(Box::new(ScriptFailed {
                execution,
                failure,
            })))
        }
    }
}

/// Prisma's failure record: the logs written into the started row when it exists, else the
/// failed row inserted the way Prisma leaves it.
pub(crate) async fn record_failure<S: Steps + ?Sized>(
    steps: &mut S,
    row: &NewRow,
    failed: &ScriptFailed,
    logs: &str,
) -> Result<(), EngineError> {
    if failed.row_exists() {
        steps.set_logs(&row.id, logs).await
    } else {
        steps.insert_failed_row(row, logs).await
    }
}

/// A bookkeeping write that found the row or the table gone is the migration breaking the
/// bookkeeping; `rolled_back` says whether its statements were undone.
pub(crate) fn broken(e: EngineError, row: &NewRow, rolled_back: bool) -> EngineError {
    match e {
        EngineError::RowMissing { what } => EngineError::Bookkeeping {
            migration: row.migration_name.clone(),
            what,
            rolled_back,
        },
        other => other,
    }
}

/// What a transactional apply's result means for the engine (the engine's fake dialect).
#[cfg(test)]
pub(crate) fn in_transaction(
    result: Result<(), TransactionError>,
    row: &NewRow,
    warnings: Vec<String>,
) -> Result<Applied, ApplyError> {
    let execution = Execution::Transaction;
    match result {
        Ok(()) => Ok(Applied {
            execution,
            warnings,
        }),
        Err(TransactionError::Script(failure)) => Err(ApplyError::Script(Box::new(ScriptFailed {
            execution,
            failure,
        }))),
        Err(TransactionError::Bookkeeping(e)) => Err(ApplyError::Bookkeeping(broken(e, row, true))),
    }
}
