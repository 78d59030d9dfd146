//! `resolve --applied` and `resolve --rolled-back`: Prisma's `markMigrationApplied` and
//! `markMigrationRolledBack`, row for row.

use uuid::Uuid;

use super::{ResolveTarget, Session};
use crate::dialect::NewRow;
use crate::error::EngineError;
use crate::outcome::{Outcome, ResolveKind, Resolved, Status};

pub(super) async fn resolve(
    target: &ResolveTarget,
    confirm: bool,
    s: &mut Session<'_>,
) -> Result<(), EngineError> {
    s.outcome.resolved = Some(Resolved {
        name: target.name.clone(),
        kind: target.kind,
    });
    if confirm && s.settings.use_lock {
        super::holders::lock(s.dialect, s.settings.effective_lock_wait(), s.outcome).await?;
    }
    match target.kind {
        ResolveKind::Applied => mark_applied(&target.name, confirm, s).await,
        ResolveKind::RolledBack => mark_rolled_back(&target.name, confirm, s).await,
    }
}

async fn mark_applied(name: &str, confirm: bool, s: &mut Session<'_>) -> Result<(), EngineError> {
    let Some(checksum) = s.set.find(name).and_then(|m| m.checksum.clone()) else {
        return Err(EngineError::MigrationNotFound { name: name.into() });
    };
    // Baselining: the table is created without Prisma's emptiness check.
    let has_table = s.dialect.tables().await?.has_migrations_table;
    let rows = if has_table {
        s.dialect.rows().await?
    } else {
        Vec::new()
    };
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| r.migration_name == name)
        .collect();
    if rows.iter().any(|r| r.finished_at.is_some()) {
        return Err(EngineError::AlreadyApplied { name: name.into() });
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.is_failed())
        .map(|r| r.id.clone())
        .collect();
    if !confirm {
        return planned(
            s.outcome,
            format!(
                "would record `{name}` as applied{}",
                rolled_back_note(&failed)
            ),
        );
    }
    if !has_table {
        s.dialect.prepare_namespace().await?;
        s.dialect.create_migrations_table().await?;
    }
    let now = s.clock.now();
    if !failed.is_empty() {
        s.dialect.mark_rolled_back(&failed, now).await?;
    }
    let row = NewRow {
        id: Uuid::new_v4().to_string(),
        checksum,
        migration_name: name.into(),
        started_at: now,
    };
    s.dialect.record_resolved(&row).await?;
    s.outcome.status = Status::Applied;
    Ok(())
}

async fn mark_rolled_back(
    name: &str,
    confirm: bool,
    s: &mut Session<'_>,
) -> Result<(), EngineError> {
    if !s.dialect.tables().await?.has_migrations_table {
        return Err(EngineError::NoMigrationsTable);
    }
    let rows: Vec<_> = s
        .dialect
        .rows()
        .await?
        .into_iter()
        .filter(|r| r.migration_name == name)
        .collect();
    if rows.is_empty() {
        return Err(EngineError::NeverApplied { name: name.into() });
    }
    if rows.iter().all(|r| r.finished_at.is_some()) {
        return Err(EngineError::NotFailed { name: name.into() });
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.is_failed())
        .map(|r| r.id.clone())
        .collect();
    if failed.is_empty() {
        // Prisma's silent no-op (e.g. a rolled-back row beside a finished one); we say it.
        s.outcome.warnings.push(format!(
            "Migration `{name}` has no failed row left to mark: nothing to do."
        ));
        s.outcome.status = Status::UpToDate;
        return Ok(());
    }
    if !confirm {
        return planned(
            s.outcome,
            format!(
                "would mark {} failed row(s) of `{name}` as rolled back",
                failed.len()
            ),
        );
    }
    s.dialect.mark_rolled_back(&failed, s.clock.now()).await?;
    s.outcome.status = Status::Applied;
    Ok(())
}

fn planned(outcome: &mut Outcome, what: String) -> Result<(), EngineError> {
    outcome
        .warnings
        .push(format!("Not confirmed: nothing was written ({what})."));
    outcome.status = Status::Planned;
    Ok(())
}

fn rolled_back_note(failed: &[String]) -> String {
    if failed.is_empty() {
        String::new()
    } else {
        format!(
            " after marking {} failed row(s) as rolled back",
            failed.len()
        )
    }
}
