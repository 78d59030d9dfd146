//! `deploy`, confirmed: Prisma's `apply_migrations`, with each migration atomic where the
//! database allows it.

use std::time::Instant;

use uuid::Uuid;

use super::history::{compare, failed_details};
use super::{Settings, report_drift};
use crate::clock::Clock;
use crate::dialect::{ApplyError, Dialect, NewRow, ScriptFailure};
use crate::error::EngineError;
use crate::migration::{Migration, MigrationSet};
use crate::outcome::{
    AppliedMigration, Execution, FailedMigration, Outcome, PendingMigration, Status,
};

pub(super) async fn deploy(
    set: &MigrationSet,
    dialect: &mut dyn Dialect,
    settings: &Settings,
    clock: &dyn Clock,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    dialect.prepare_namespace().await?;
    if settings.use_lock {
        dialect.lock(settings.lock_wait).await?;
    }
    let tables = dialect.tables().await?;
    if !tables.has_migrations_table {
        if !tables.others.is_empty() {
            return Err(EngineError::SchemaNotEmpty {
                tables: tables.others,
            });
        }
        dialect.create_migrations_table().await?;
    }
    let rows = dialect.rows().await?;
    let comparison = compare(set, &rows);
    report_drift(&comparison, outcome);

    if !comparison.failed.is_empty() {
        outcome.failed = comparison
            .failed
            .iter()
            .map(|row| failed_from_row(row))
            .collect();
        return Err(EngineError::FailedMigrations {
            names: comparison
                .failed
                .iter()
                .map(|r| r.migration_name.clone())
                .collect(),
            details: failed_details(&comparison.failed),
        });
    }
    outcome.pending = comparison
        .pending
        .iter()
        .map(|(m, out_of_order)| PendingMigration {
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            out_of_order: *out_of_order,
            execution: m.script.as_deref().map(|s| dialect.execution(s)),
        })
        .collect();
    // Prisma applies the migrations before a folder without migration.sql and then fails
    // with P3015; we refuse before touching anything.
    if let Some((missing, _)) = comparison.pending.iter().find(|(m, _)| m.script.is_none()) {
        return Err(EngineError::MissingScript {
            migration: missing.name.clone(),
        });
    }

    for (migration, _) in &comparison.pending {
        apply(migration, dialect, clock, outcome).await?;
        outcome.pending.remove(0);
    }
    outcome.status = if outcome.applied.is_empty() {
        Status::UpToDate
    } else {
        Status::Applied
    };
    Ok(())
}

async fn apply(
    migration: &Migration,
    dialect: &mut dyn Dialect,
    clock: &dyn Clock,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
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
        Execution::Transaction => match dialect.apply_in_transaction(&row, script, clock).await {
            Ok(()) => Ok(()),
            Err(ApplyError::Bookkeeping(e)) => return Err(e),
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
            outcome.warnings.push(format!(
                "Migration `{}` ran statement by statement, without a transaction, because {reason}.",
                migration.name
            ));
            dialect.insert_started_row(&row).await?;
            match dialect.run_statements(script).await {
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
            Ok(())
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
