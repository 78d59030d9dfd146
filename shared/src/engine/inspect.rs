//! `plan`, `status` and an unconfirmed `deploy`: what deploy would do, read-only.

use std::collections::{HashMap, HashSet};

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
    // One pass over each list, so a status over 10,000 migrations stays linear.
    let mut newest: HashMap<&str, &MigrationRow> = HashMap::new();
    for row in rows.iter().filter(|r| r.rolled_back_at.is_none()) {
        let entry = newest.entry(row.migration_name.as_str()).or_insert(row);
        // The last of equals wins, as `max_by_key` did.
        if row.started_at >= entry.started_at {
            *entry = row;
        }
    }
    let newest_live = |name: &str| newest.get(name).copied();
    let pending: HashMap<&str, bool> = comparison
        .pending
        .iter()
        .map(|(p, out_of_order)| (p.name.as_str(), *out_of_order))
        .collect();
    let edited: HashSet<&str> = comparison.edited.iter().map(String::as_str).collect();
    let mut states: Vec<MigrationState> = set
        .migrations
        .iter()
        .map(|m| {
            let pending = pending.get(m.name.as_str()).copied();
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
                edited: edited.contains(m.name.as_str()),
                out_of_order: pending.unwrap_or(false),
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
