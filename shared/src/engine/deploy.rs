//! `deploy`, confirmed: Prisma's `apply_migrations`, with each migration atomic where the
//! database allows it.

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::history::compare;
use super::{
    Settings, pending_list, refuse_failed, refuse_missing_script, refuse_renamed, report_drift,
};
use crate::clock::Clock;
use crate::dialect::{ApplyError, Dialect, NewRow, ScriptFailure, StatementLimits};

/// PostgreSQL's SQLSTATE for a lock wait that hit `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";
use crate::error::EngineError;
use crate::migration::{Migration, MigrationSet};
use crate::outcome::{AppliedMigration, Execution, FailedMigration, Outcome, Status};

pub(super) async fn deploy(
    set: &MigrationSet,
    dialect: &mut dyn Dialect,
    settings: &Settings,
    clock: &dyn Clock,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    if settings.use_lock {
        dialect.lock(settings.effective_lock_wait()).await?;
    }
    let tables = dialect.tables().await?;
    if !tables.has_migrations_table {
        if !tables.others.is_empty() {
            return Err(EngineError::SchemaNotEmpty {
                tables: tables.others,
            });
        }
        // A schema holding `_prisma_migrations` exists: only here can it be missing (Prisma
        // creates it, as we do).
        dialect.prepare_namespace().await?;
        dialect.create_migrations_table().await?;
    }
    let rows = dialect.rows().await?;
    let comparison = compare(set, &rows);
    report_drift(&comparison, outcome);

    refuse_failed(&comparison, outcome)?;
    outcome.pending = pending_list(&comparison, dialect);
    refuse_renamed(&comparison)?;
    refuse_missing_script(&comparison)?;

    for (migration, _) in &comparison.pending {
        let statement_timeout = match settings.time_left() {
            Some(left) if left.is_zero() => {
                outcome.warnings.push(format!(
                    "Stopped before `{}`: less than {} s were left before the deadline. The next run applies what remains.",
                    migration.name,
                    settings.deadline_margin.as_secs()
                ));
                outcome.status = Status::Incomplete;
                note_statement_runs(outcome);
                return Ok(());
            }
            left => left,
        };
        let limits = StatementLimits {
            statement_timeout,
            lock_timeout: settings.statement_lock_timeout,
        };
        if let Err(e) =
            apply_with_retries(migration, dialect, limits, settings, clock, outcome).await
        {
            note_statement_runs(outcome);
            return Err(e);
        }
        outcome.pending.remove(0);
    }
    note_statement_runs(outcome);
    outcome.status = if outcome.applied.is_empty() {
        Status::UpToDate
    } else {
        Status::Applied
    };
    Ok(())
}

/// One warning per reason for the migrations that ran statement by statement (on MySQL that
/// is every migration: a thousand of them make one line, not a thousand).
fn note_statement_runs(outcome: &mut Outcome) {
    let mut by_reason: Vec<(&str, Vec<&str>)> = Vec::new();
    for applied in &outcome.applied {
        if let Execution::StatementByStatement { reason } = &applied.execution {
            match by_reason.iter_mut().find(|(r, _)| *r == reason.as_str()) {
                Some((_, names)) => names.push(&applied.name),
                None => by_reason.push((reason, vec![&applied.name])),
            }
        }
    }
    let notes: Vec<String> = by_reason
        .into_iter()
        .map(|(reason, names)| {
            let shown: Vec<String> = names.iter().take(5).map(|n| format!("`{n}`")).collect();
            let more = if names.len() > 5 { format!(" and {} more", names.len() - 5) } else { String::new() };
            format!(
                "{} migration(s) ran statement by statement, without a transaction, because {reason}: {}{more}.",
                names.len(),
                shown.join(", ")
            )
        })
        .collect();
    outcome.warnings.extend(notes);
}

/// A migration that ran in a transaction and gave up waiting for a table lock (55P03) left
/// nothing behind: try it again, a few times, with a growing pause.
async fn apply_with_retries(
    migration: &Migration,
    dialect: &mut dyn Dialect,
    limits: StatementLimits,
    settings: &Settings,
    clock: &dyn Clock,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    let mut attempt = 0;
    loop {
        let may_retry = attempt < settings.statement_lock_retries;
        match apply(migration, dialect, limits, may_retry, clock, outcome).await? {
            Applied::Done => return Ok(()),
            Applied::LockTimedOut => {
                attempt += 1;
                let pause = Duration::from_millis(250 << attempt.min(6));
                outcome.warnings.push(format!(
                    "Migration `{}` timed out waiting for a table lock (55P03) and was rolled back; trying again in {} ms (attempt {} of {}).",
                    migration.name,
                    pause.as_millis(),
                    attempt + 1,
                    settings.statement_lock_retries + 1
                ));
                tokio::time::sleep(pause).await;
            }
        }
    }
}

enum Applied {
    Done,
    /// Rolled back after a lock timeout, nothing recorded: may be tried again.
    LockTimedOut,
}

async fn apply(
    migration: &Migration,
    dialect: &mut dyn Dialect,
    limits: StatementLimits,
    may_retry: bool,
    clock: &dyn Clock,
    outcome: &mut Outcome,
) -> Result<Applied, EngineError> {
    let (Some(script), Some(checksum)) = (&migration.script, &migration.checksum) else {
        return Err(EngineError::MissingScript {
            migration: migration.name.clone(),
        });
    };
    let row = NewRow {
        id: Uuid::new_v4().to_string(),
        checksum: checksum.clone(),
        migration_name: migration.name.clone(),
        started_at: clock.now(),
    };
    let execution = dialect.execution(script);
    let timer = Instant::now();
    tracing::info!("Applying migration `{}`", migration.name);

    let result = match &execution {
        Execution::Transaction => match dialect
            .apply_in_transaction(&row, script, limits, clock)
            .await
        {
            Ok(()) => Ok(()),
            Err(ApplyError::Bookkeeping(e)) => return Err(e),
            Err(ApplyError::Script(failure))
                if may_retry && failure.code.as_deref() == Some(LOCK_NOT_AVAILABLE) =>
            {
                return Ok(Applied::LockTimedOut);
            }
            Err(ApplyError::Script(failure)) => {
                // The transaction is gone; record the failure the way Prisma leaves it.
                let logs = failure.logs(&migration.name);
                if let Err(e) = dialect.insert_failed_row(&row, &logs).await {
                    outcome.warnings.push(format!(
                        "The failure could not be recorded in _prisma_migrations ({e}); nothing of the migration was applied, so the next deploy will try it again."
                    ));
                }
                Err((failure, logs))
            }
        },
        Execution::StatementByStatement { reason } => {
            tracing::debug!(migration = %migration.name, "running statement by statement: {reason}");
            dialect.insert_started_row(&row).await?;
            match dialect.run_statements(script, limits).await {
                Ok(_) => {
                    dialect.mark_finished(&row.id, clock.now()).await?;
                    Ok(())
                }
                Err(failure) => {
                    let logs = failure.logs(&migration.name);
                    if let Err(e) = dialect.set_logs(&row.id, &logs).await {
                        outcome
                            .warnings
                            .push(format!("The failure's logs could not be recorded ({e})."));
                    }
                    Err((failure, logs))
                }
            }
        }
    };

    match result {
        Ok(()) => {
            outcome.applied.push(AppliedMigration {
                name: migration.name.clone(),
                checksum: checksum.clone(),
                execution,
                duration_ms: elapsed_ms(timer),
            });
            Ok(Applied::Done)
        }
        Err((failure, logs)) => {
            outcome
                .failed
                .push(failed_now(&migration.name, &row, &failure, &logs));
            outcome.pending.retain(|p| p.name != migration.name);
            Err(EngineError::ApplyFailed {
                migration: migration.name.clone(),
                logs,
            })
        }
    }
}

fn failed_now(name: &str, row: &NewRow, failure: &ScriptFailure, logs: &str) -> FailedMigration {
    FailedMigration {
        name: name.to_string(),
        started_at: row.started_at,
        logs: Some(logs.to_string()),
        committed_statements: failure
            .statement
            .as_ref()
            .map(|_| failure.committed.clone()),
        failed_statement: failure.statement.as_ref().map(|s| s.number),
    }
}

pub(super) fn failed_from_row(row: &crate::dialect::MigrationRow) -> FailedMigration {
    FailedMigration {
        name: row.migration_name.clone(),
        started_at: row.started_at,
        logs: row.logs.clone(),
        committed_statements: None,
        failed_statement: None,
    }
}

fn elapsed_ms(timer: Instant) -> u64 {
    u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX)
}
