//! `deploy`, confirmed: Prisma's `apply_migrations`, with each migration atomic where the
//! database allows it.

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::history::compare;
use super::recovery;
use super::{
    Session, Settings, pending_list, refuse_failed, refuse_missing_script, refuse_renamed,
    report_drift,
};
use crate::dialect::{
    ApplyError, Dialect, Held, Interruption, Migrating, NewRow, ScriptFailure, StatementLimits,
};
use crate::error::{EngineError, FailedState};
use crate::migration::Migration;
use crate::outcome::{AppliedMigration, Execution, FailedMigration, Outcome, Status};

pub(super) async fn deploy(
    expected_plan: Option<&str>,
    s: &mut Session<'_>,
) -> Result<(), EngineError> {
    if s.settings.use_lock {
        super::holders::lock(s.dialect, s.settings.effective_lock_wait(), s.outcome).await?;
    }
    let tables = s.dialect.tables().await?;
    if let Some(expected) = expected_plan {
        // Under the lock, before anything is written: only the confirmed plan is applied.
        let rows = match tables.has_migrations_table {
            true => s.dialect.rows().await?,
            false => Vec::new(),
        };
        let pending = pending_list(&compare(s.set, &rows), s.dialect);
        let artifact = s.outcome.artifact.as_ref().map(|a| a.sha256.as_str());
        super::plan_hash::check(expected, artifact.unwrap_or_default(), &pending)?;
    }
    // The recovery point comes before the first write of any kind, `_prisma_migrations`
    // included, and only when something is pending.
    let mut recovery_taken = false;
    if !tables.has_migrations_table {
        // Every migration is pending: refuse what cannot run before creating anything.
        refuse_unsupported(s.set.migrations.iter(), s.dialect)?;
        if !tables.others.is_empty() {
            return Err(EngineError::SchemaNotEmpty {
                tables: tables.others,
            });
        }
        let pending = pending_list(&compare(s.set, &[]), s.dialect);
        let time_left = s.settings.time_left();
        recovery::take(
            s.settings.recovery.as_deref(),
            &pending,
            time_left,
            &mut recovery_taken,
            s.outcome,
        )
        .await?;
        // A schema holding `_prisma_migrations` exists: only here can it be missing (Prisma
        // creates it, as we do).
        s.dialect.prepare_namespace().await?;
        s.dialect.create_migrations_table().await?;
    }
    let rows = s.dialect.rows().await?;
    let comparison = compare(s.set, &rows);
    report_drift(&comparison, s.outcome);

    refuse_failed(&comparison, s.outcome)?;
    s.outcome.pending = pending_list(&comparison, s.dialect);
    refuse_renamed(&comparison)?;
    refuse_missing_script(&comparison)?;
    refuse_unsupported(comparison.pending.iter().map(|(m, _)| *m), s.dialect)?;
    let pending = s.outcome.pending.clone();
    let time_left = s.settings.time_left();
    recovery::take(
        s.settings.recovery.as_deref(),
        &pending,
        time_left,
        &mut recovery_taken,
        s.outcome,
    )
    .await?;

    for (migration, _) in &comparison.pending {
        let deadline = match s.settings.time_left() {
            Some(left) if left.is_zero() => {
                s.outcome.warnings.push(format!(
                    "Stopped before `{}`: less than {} s were left before the deadline. The next run applies what remains.",
                    migration.name,
                    s.settings.deadline_margin.as_secs()
                ));
                s.outcome.status = Status::Incomplete;
                note_statement_runs(s.outcome, s.dialect.always_by_statement());
                return Ok(());
            }
            left => left.map(|left| Instant::now() + left),
        };
        let limits = StatementLimits {
            deadline,
            lock_timeout: s.settings.statement_lock_timeout,
        };
        if let Err(e) = apply_with_retries(migration, limits, s).await {
            note_statement_runs(s.outcome, s.dialect.always_by_statement());
            return Err(e);
        }
        s.outcome.pending.remove(0);
    }
    note_statement_runs(s.outcome, s.dialect.always_by_statement());
    s.outcome.status = if s.outcome.applied.is_empty() {
        Status::UpToDate
    } else {
        Status::Applied
    };
    Ok(())
}

/// One warning per reason for the migrations that ran statement by statement. On MySQL every
/// migration does (DDL commits implicitly): that is said once in the documentation, not on
/// every deploy.
fn note_statement_runs(outcome: &mut Outcome, always: bool) {
    if always {
        return;
    }
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

/// A pending migration holding a statement that would hang (`COPY … FROM STDIN`) is
/// refused before anything is applied.
fn refuse_unsupported<'m>(
    migrations: impl Iterator<Item = &'m Migration>,
    dialect: &dyn Dialect,
) -> Result<(), EngineError> {
    for migration in migrations {
        if let Some(script) = &migration.script
            && let Some(found) = dialect.unsupported(script)
        {
            return Err(EngineError::UnsupportedStatement {
                migration: migration.name.clone(),
                line: found.line,
                statement: found.statement,
                reason: found.reason,
            });
        }
    }
    Ok(())
}

/// A migration that gave up waiting for a table lock (a lock timeout) and left nothing
/// behind is tried again, a few times, with a growing pause; after that it is `blocked`,
/// with no failed row.
async fn apply_with_retries(
    migration: &Migration,
    limits: StatementLimits,
    s: &mut Session<'_>,
) -> Result<(), EngineError> {
    let mut attempt = 0;
    loop {
        match apply(migration, limits, s).await? {
            Applied::Done => return Ok(()),
            Applied::LockTimedOut { code } => {
                attempt += 1;
                let held_by = super::holders::ask(s.dialect, Held::Tables, s.outcome).await;
                if attempt > s.settings.statement_lock_retries {
                    if let Some(who) = &held_by {
                        s.outcome
                            .warnings
                            .push(format!("The table lock was held by {who}."));
                    }
                    return Err(EngineError::StatementLocked {
                        migration: migration.name.clone(),
                        code,
                        attempts: attempt,
                        held_by,
                    });
                }
                let pause = Duration::from_millis(250 << attempt.min(6));
                let held_by = held_by
                    .map(|who| format!(" The lock was held by {who}."))
                    .unwrap_or_default();
                s.outcome.warnings.push(format!(
                    "Migration `{}` timed out waiting for a table lock ({code}) and was rolled back; trying again in {} ms (attempt {} of {}).{held_by}",
                    migration.name,
                    pause.as_millis(),
                    attempt + 1,
                    s.settings.statement_lock_retries + 1
                ));
                tokio::time::sleep(pause).await;
            }
        }
    }
}

enum Applied {
    Done,
    /// Gave up on a table lock, nothing applied or recorded: may be tried again.
    LockTimedOut {
        code: String,
    },
}

/// What a failure that left nothing behind means: our limit, not the migration's fault.
fn interrupted(
    failure: &ScriptFailure,
    migration: &Migration,
    settings: &Settings,
) -> Option<Result<Applied, EngineError>> {
    match failure.interruption? {
        Interruption::LockTimeout => Some(Ok(Applied::LockTimedOut {
            code: failure
                .code
                .clone()
                .unwrap_or_else(|| "lock timeout".into()),
        })),
        // The supervising session cancelled it at the deadline's margin.
        Interruption::Deadline => Some(Err(EngineError::DeadlineCancelled {
            migration: migration.name.clone(),
            what: format!(
                "{} s before the end of the run's time",
                settings.deadline_margin.as_secs()
            ),
        })),
        // Said below: nothing is recorded, the next deploy applies it again.
        Interruption::SessionLost => None,
    }
}

async fn apply(
    migration: &Migration,
    limits: StatementLimits,
    s: &mut Session<'_>,
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
        started_at: s.clock.now(),
    };
    let timer = Instant::now();
    tracing::info!("Applying migration `{}`", migration.name);

    let migrating = Migrating {
        row: &row,
        script,
        limits,
        clock: s.clock,
    };
    let failed = match s.dialect.apply(&migrating).await {
        Ok(applied) => {
            s.outcome.warnings.extend(applied.warnings);
            s.outcome.applied.push(AppliedMigration {
                name: migration.name.clone(),
                checksum: checksum.clone(),
                execution: applied.execution,
                duration_ms: elapsed_ms(timer),
            });
            return Ok(Applied::Done);
        }
        Err(ApplyError::Bookkeeping(e)) => return Err(e),
        Err(ApplyError::Script(failed)) => failed,
    };
    let failure = &failed.failure;
    if failed.committed_nothing()
        && let Some(result) = interrupted(failure, migration, s.settings)
    {
        if failed.row_exists() {
            // None of its statements was committed: leave no row behind.
            s.dialect.discard(&row).await?;
        }
        return result;
    }
    let logs = failure.logs(&migration.name);
    if failed.committed_nothing() && failure.interruption == Some(Interruption::SessionLost) {
        // The working session was ended under it (not the migration's fault) and the server
        // rolled everything back: no failed row, as Prisma (whose session it was) leaves none.
        if failed.row_exists() {
            s.dialect.discard(&row).await?;
        }
        s.outcome.warnings.push(format!(
            "The database session running `{}` was ended under it; nothing of the migration was applied or recorded, so the next deploy applies it again.",
            migration.name
        ));
        return Err(EngineError::ApplyFailed {
            migration: migration.name.clone(),
            logs,
            state: FailedState::NotRecorded,
        });
    }
    let recorded = s.dialect.record_failure(&row, &failed, &logs).await;
    let state = match (&failed.execution, recorded) {
        (Execution::Transaction, Err(e)) => {
            s.outcome.warnings.push(format!(
                "The failure could not be recorded in _prisma_migrations ({e}); nothing of the migration was applied, so the next deploy will try it again."
            ));
            FailedState::NotRecorded
        }
        (Execution::Transaction, Ok(())) if failure.rolled_back => FailedState::RolledBack,
        (Execution::Transaction, Ok(())) => FailedState::PartlyCommitted,
        (Execution::StatementByStatement { .. }, recorded) => {
            if let Err(e) = recorded {
                s.outcome
                    .warnings
                    .push(format!("The failure's logs could not be recorded ({e})."));
            }
            FailedState::Committed(failure.committed.clone())
        }
    };
    s.outcome
        .failed
        .push(failed_now(&migration.name, &row, failure, &logs));
    s.outcome.pending.retain(|p| p.name != migration.name);
    Err(EngineError::ApplyFailed {
        migration: migration.name.clone(),
        logs,
        state,
    })
}

fn failed_now(name: &str, row: &NewRow, failure: &ScriptFailure, logs: &str) -> FailedMigration {
    FailedMigration {
        name: name.to_string(),
        started_at: row.started_at,
        logs: Some(logs.to_string()),
        // Named statement by statement; a transaction rolled back committed nothing to list.
        committed_statements: failure
            .statement
            .as_ref()
            .filter(|_| !failure.rolled_back)
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
