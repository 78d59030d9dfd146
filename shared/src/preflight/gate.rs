//! Preflight inside the engine: findings attached to plan and deploy outcomes, and the block
//! that stops a confirmed deploy before it writes anything.

use std::collections::HashSet;

use crate::dialect::{DatabaseTarget, Dialect};
use crate::engine::history::compare;
use crate::error::EngineError;
use crate::migration::MigrationSet;
use crate::outcome::{Outcome, PendingMigration};
use crate::sql::Flavor;

use super::{
    BlockOn, DataProbe, LiveLimits, Options, PgProbe, Script, Thresholds, check_live_and_locks,
    check_static,
};

/// How preflight runs for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct PreflightSettings {
    /// Probe the live data (PostgreSQL); otherwise the static rules only.
    pub live: bool,
    /// The lowest severity that stops a confirmed deploy.
    pub block_on: BlockOn,
    /// `rule@migration` entries the person invoking the deploy accepts.
    pub accept: Vec<String>,
    pub thresholds: Thresholds,
    pub limits: LiveLimits,
}

impl Default for PreflightSettings {
    fn default() -> Self {
        PreflightSettings {
            live: true,
            block_on: BlockOn::Never,
            accept: Vec::new(),
            thresholds: Thresholds::default(),
            limits: LiveLimits::default(),
        }
    }
}

/// Before a confirmed deploy takes the lock: computes the findings of what `set` would
/// apply (read-only), records them in `outcome`, and refuses with
/// [`EngineError::PreflightBlocked`] when one blocks. Nothing is written either way.
pub(crate) async fn before_deploy(
    set: &MigrationSet,
    target: &DatabaseTarget,
    dialect: &mut dyn Dialect,
    settings: &PreflightSettings,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    let tables = dialect.tables().await?;
    if !tables.has_migrations_table && !tables.others.is_empty() {
        // P3005 comes from the engine proper.
        return Ok(());
    }
    let rows = if tables.has_migrations_table {
        dialect.rows().await?
    } else {
        Vec::new()
    };
    let comparison = compare(set, &rows);
    if comparison.pending.is_empty() {
        return Ok(());
    }
    let pending: HashSet<&str> = comparison
        .pending
        .iter()
        .map(|(m, _)| m.name.as_str())
        .collect();
    attach(set, &pending, target, settings, outcome).await;
    let blocking: Vec<String> = settings
        .block_on
        .blocking(&outcome.findings, &settings.accept)
        .iter()
        .map(|f| format!("{} ({})", f.accept_key(), f.severity))
        .collect();
    if blocking.is_empty() {
        return Ok(());
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
    Err(EngineError::PreflightBlocked { findings: blocking })
}

/// After a plan (or an unconfirmed deploy) listed what is pending: its findings, with no
/// further read of the bookkeeping table.
pub(crate) async fn after_plan(
    set: &MigrationSet,
    target: &DatabaseTarget,
    settings: &PreflightSettings,
    outcome: &mut Outcome,
) {
    if outcome.pending.is_empty() {
        return;
    }
    let names: Vec<String> = outcome.pending.iter().map(|p| p.name.clone()).collect();
    let pending: HashSet<&str> = names.iter().map(String::as_str).collect();
    attach(set, &pending, target, settings, outcome).await;
}

/// Computes the findings (live on PostgreSQL when asked) and who is in the way, into `outcome`.
async fn attach(
    set: &MigrationSet,
    pending: &HashSet<&str>,
    target: &DatabaseTarget,
    settings: &PreflightSettings,
    outcome: &mut Outcome,
) {
    let scripts: Vec<Script<'_>> = set
        .migrations
        .iter()
        .filter_map(|m| {
            m.script.as_deref().map(|sql| Script {
                migration: &m.name,
                sql,
                pending: pending.contains(m.name.as_str()),
            })
        })
        .collect();
    let flavor = match target {
        DatabaseTarget::Postgres(_) => Flavor::Postgres,
        DatabaseTarget::MySql(_) => Flavor::MySql,
        DatabaseTarget::Sqlite(_) => Flavor::Sqlite,
    };
    let options = Options {
        thresholds: settings.thresholds,
        ..Options::new(flavor)
    };
    let findings = match target {
        DatabaseTarget::Postgres(pg) if settings.live => match pg.read_connection().await {
            Ok(mut conn) => {
                let mut probe = PgProbe::new(&mut conn, settings.limits);
                let (findings, tables) =
                    check_live_and_locks(&scripts, &options, &mut probe, &settings.limits).await;
                if !tables.is_empty() {
                    match probe.blockers(&tables).await {
                        Ok(blockers) => outcome.blockers = blockers,
                        Err(e) => outcome
                            .warnings
                            .push(format!("Preflight could not tell who holds locks: {e}.")),
                    }
                }
                let _ = sqlx::Connection::close(conn).await;
                findings
            }
            Err(e) => {
                outcome.warnings.push(format!(
                    "Preflight could not open a read-only connection ({e}); its findings come from the SQL alone."
                ));
                check_static(&scripts, &options)
            }
        },
        _ => check_static(&scripts, &options),
    };
    for accepted in &settings.accept {
        if !findings.iter().any(|f| f.accept_key() == accepted.trim()) {
            outcome.warnings.push(format!(
                "`{accepted}` was accepted, but no finding is `rule@migration` like that."
            ));
        }
    }
    outcome.accepted = settings.accept.clone();
    outcome.findings = findings;
}
