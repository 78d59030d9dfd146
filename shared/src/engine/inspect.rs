//! `plan`, `status` and an unconfirmed `deploy`: what deploy would do, read-only.

use super::history::Comparison;
use super::history::compare;
use super::{pending_list, refuse_failed, refuse_missing_script, refuse_renamed, report_drift};
use crate::dialect::Dialect;
use crate::dialect::MigrationRow;
use crate::error::EngineError;
use crate::migration::MigrationSet;
use crate::outcome::{Action, MigrationState, Outcome, State, Status};

pub(super) async fn inspect(
    action: Action,
    set: &MigrationSet,
    dialect: &mut dyn Dialect,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    let tables = dialect.tables().await?;
    let rows = if tables.has_migrations_table {
        dialect.rows().await?
    } else {
        if action == Action::Status {
            outcome
                .warnings
                .push("The current database is not managed by Prisma Migrate.".into());
        }
        if !tables.others.is_empty() {
            return Err(EngineError::SchemaNotEmpty {
                tables: tables.others,
            });
        }
        Vec::new()
    };
    let comparison = compare(set, &rows);
    report_drift(&comparison, outcome);
    if action == Action::Status {
        outcome.migrations = states(set, &rows, &comparison);
    }
    outcome.pending = pending_list(&comparison, dialect);
    refuse_failed(&comparison, outcome)?;
    refuse_renamed(&comparison)?;
    refuse_missing_script(&comparison)?;
    if action == Action::Deploy && !outcome.pending.is_empty() {
        outcome.warnings.push(
            "Not confirmed: nothing was applied. Confirm to apply the pending migrations.".into(),
        );
    }
    outcome.status = if outcome.pending.is_empty() {
        Status::UpToDate
    } else {
        Status::Planned
    };
    Ok(())
}

/// One line per migration: the artifact's in order, then those only the database has.
fn states(
    set: &MigrationSet,
    rows: &[MigrationRow],
    comparison: &Comparison<'_>,
) -> Vec<MigrationState> {
    let newest_live = |name: &str| {
        rows.iter()
            .filter(|r| r.migration_name == name && r.rolled_back_at.is_none())
            .max_by_key(|r| r.started_at)
    };
    let mut states: Vec<MigrationState> = set
        .migrations
        .iter()
        .map(|m| {
            let pending = comparison.pending.iter().find(|(p, _)| p.name == m.name);
            let row = newest_live(&m.name);
            let state = match (pending, row) {
                (Some(_), _) => State::Pending,
                (None, Some(r)) if r.is_failed() => State::Failed,
                _ => State::Applied,
            };
            MigrationState {
                name: m.name.clone(),
                state,
                finished_at: row.and_then(|r| r.finished_at),
                edited: comparison.edited.contains(&m.name),
                out_of_order: pending.is_some_and(|(_, out_of_order)| *out_of_order),
            }
        })
        .collect();
    for name in &comparison.missing_locally {
        let row = newest_live(name);
        states.push(MigrationState {
            name: name.clone(),
            state: if row.is_some_and(MigrationRow::is_failed) {
                State::Failed
            } else {
                State::MissingLocally
            },
            finished_at: row.and_then(|r| r.finished_at),
            edited: false,
            out_of_order: false,
        });
    }
    states
}
