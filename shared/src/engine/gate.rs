//! Preflight as an engine step: findings attached to plan and deploy outcomes, and the block
//! that stops a confirmed deploy before it writes anything.

use std::collections::HashSet;

use super::history::compare;
use crate::dialect::postgres::PgProbe;
use crate::dialect::{DatabaseTarget, Dialect};
use crate::error::EngineError;
use crate::migration::MigrationSet;
use crate::outcome::Outcome;
use crate::preflight::{
    Blocker, DataProbe, LiveCheck, LiveLimits, Options, PreflightSettings, ProbeError, QName,
    Script, TableSize, Verdict, check_live_and_locks, check_static,
};
use crate::sql::Flavor;

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
    outcome.pending = super::pending_list(&comparison, dialect);
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
        DatabaseTarget::Postgres(pg) if settings.live => {
            // Connects only when a statement touches a table from before the plan: a plan
            // that only creates (a whole history against an empty database) opens no
            // second connection.
            let mut probe = LazyProbe {
                target: pg,
                limits: settings.limits,
                conn: None,
                failed: None,
            };
            let (findings, tables) =
                check_live_and_locks(&scripts, &options, &mut probe, &settings.limits).await;
            let findings = match &probe.failed {
                None => {
                    if !tables.is_empty() {
                        match probe.blockers(&tables).await {
                            Ok(blockers) => outcome.blockers = blockers,
                            Err(e) => outcome
                                .warnings
                                .push(format!("Preflight could not tell who holds locks: {e}.")),
                        }
                    }
                    findings
                }
                Some(e) => {
                    outcome.warnings.push(format!(
                        "Preflight could not open a read-only connection ({e}); its findings come from the SQL alone."
                    ));
                    check_static(&scripts, &options)
                }
            };
            if let Some(conn) = probe.conn.take() {
                let _ = sqlx::Connection::close(conn).await;
            }
            findings
        }
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

/// [`PgProbe`] over a read-only connection opened at the first question. When it cannot be
/// opened, every question fails and `failed` says why (the caller then reports the static
/// findings, as before any probing).
struct LazyProbe<'t> {
    target: &'t crate::dialect::postgres::Target,
    limits: LiveLimits,
    conn: Option<sqlx::PgConnection>,
    failed: Option<String>,
}

impl LazyProbe<'_> {
    async fn probe(&mut self) -> Result<PgProbe<'_>, ProbeError> {
        if let Some(e) = &self.failed {
            return Err(ProbeError::Cannot(e.clone()));
        }
        if self.conn.is_none() {
            match self.target.read_connection().await {
                Ok(conn) => self.conn = Some(conn),
                Err(e) => {
                    self.failed = Some(e.to_string());
                    return Err(ProbeError::Cannot(e.to_string()));
                }
            }
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(PgProbe::new(conn, self.limits)),
            None => Err(ProbeError::Cannot("no connection".into())),
        }
    }
}

#[async_trait::async_trait]
impl DataProbe for LazyProbe<'_> {
    async fn size(&mut self, table: &QName) -> Result<Option<TableSize>, ProbeError> {
        self.probe().await?.size(table).await
    }

    async fn find(
        &mut self,
        table: &QName,
        check: &LiveCheck,
        sample: bool,
        rehearse: &[String],
    ) -> Result<Verdict, ProbeError> {
        self.probe().await?.find(table, check, sample, rehearse).await
    }

    async fn blockers(&mut self, tables: &[QName]) -> Result<Vec<Blocker>, ProbeError> {
        self.probe().await?.blockers(tables).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> QName {
        QName {
            schema: None,
            name: "User".into(),
        }
    }

    #[tokio::test]
    async fn the_probe_connects_at_the_first_question_and_remembers_a_failure() {
        // Nothing listens on port 1: the connection is refused at once.
        let Ok(DatabaseTarget::Postgres(pg)) = crate::dialect::parse_database_url(
            "postgresql://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
        ) else {
            panic!("a PostgreSQL URL")
        };
        let mut probe = LazyProbe {
            target: &pg,
            limits: LiveLimits::default(),
            conn: None,
            failed: None,
        };
        assert!(
            probe.failed.is_none(),
            "nothing is opened before a question"
        );
        assert!(probe.size(&table()).await.is_err());
        let why = probe.failed.clone().expect("the failure is kept");
        // Later questions fail with the same reason, without trying again.
        let again = probe.blockers(&[table()]).await.unwrap_err();
        assert!(again.to_string().contains(&why), "{again} / {why}");
        assert!(probe.conn.is_none());
    }
}
