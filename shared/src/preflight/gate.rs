//! Preflight inside the engine: findings attached to plan and deploy outcomes, and the block
//! that stops a confirmed deploy before it writes anything.

use crate::dialect::{DatabaseTarget, Dialect};
use crate::engine::history::compare;
use crate::error::EngineError;
use crate::migration::MigrationSet;
use crate::outcome::{Action, Outcome, PendingMigration};
use crate::sql::Flavor;

use super::{
    BlockOn, DataProbe, LiveLimits, Options, PgProbe, Script, Thresholds, check_live, check_static,
    locked_tables,
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

/// Computes the findings of what `set` would apply to the database behind `dialect`
/// (read-only), records them in `outcome`, and for a confirmed deploy refuses with
/// [`EngineError::PreflightBlocked`] when a finding blocks.
pub(crate) async fn run(
    action: Action,
    writes: bool,
    set: &MigrationSet,
    target: &DatabaseTarget,
    dialect: &mut dyn Dialect,
    settings: &PreflightSettings,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    if !matches!(action, Action::Plan | Action::Deploy) {
        return Ok(());
    }
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
    let scripts: Vec<Script<'_>> = set
        .migrations
        .iter()
        .filter_map(|m| {
            let pending = comparison.pending.iter().any(|(p, _)| p.name == m.name);
            m.script.as_deref().map(|sql| Script {
                migration: &m.name,
                sql,
                pending,
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
                let findings = check_live(&scripts, &options, &mut probe, &settings.limits).await;
                let tables = locked_tables(&scripts, &options);
                match probe.blockers(&tables).await {
                    Ok(blockers) => outcome.blockers = blockers,
                    Err(e) => outcome
                        .warnings
                        .push(format!("Preflight could not tell who holds locks: {e}.")),
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
    let blocking: Vec<String> = if writes {
        settings
            .block_on
            .blocking(&findings, &settings.accept)
            .iter()
            .map(|f| format!("{} ({})", f.accept_key(), f.severity))
            .collect()
    } else {
        Vec::new()
    };
    outcome.findings = findings;
    if blocking.is_empty() {
        Ok(())
    } else {
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
}
