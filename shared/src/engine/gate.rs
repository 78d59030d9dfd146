//! Preflight as an engine step: findings attached to plan and deploy outcomes, and the block
//! that stops a confirmed deploy before it writes anything.

use std::collections::HashSet;

use super::history::compare;
use crate::dialect::mysql::MyProbe;
use crate::dialect::postgres::PgProbe;
use crate::dialect::{DatabaseTarget, Dialect};
use crate::error::EngineError;
use crate::migration::MigrationSet;
use crate::outcome::Outcome;
use crate::preflight::{
    Blocker, DataProbe, LiveCheck, LiveLimits, Options, PlanRehearsal, PreflightSettings,
    ProbeError, QName, Script, TableSize, Verdict, check_live_and_locks, check_static,
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
    let live_target = match target {
        DatabaseTarget::Postgres(pg) if settings.live => Some(ProbeTarget::Postgres(pg)),
        DatabaseTarget::MySql(my) if settings.live => Some(ProbeTarget::MySql(my)),
        _ => None,
    };
    let findings = match live_target {
        Some(target) => {
            // Connects only when a statement touches a table from before the plan: a plan
            // that only creates (a whole history against an empty database) opens no
            // second connection.
            let mut probe = LazyProbe {
                target,
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
                conn.close().await;
            }
            findings
        }
        None => check_static(&scripts, &options),
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

/// Where [`LazyProbe`] connects.
enum ProbeTarget<'t> {
    Postgres(&'t crate::dialect::postgres::Target),
    MySql(&'t crate::dialect::mysql::Target),
}

enum ProbeConn {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
}

impl ProbeConn {
    async fn close(self) {
        let _ = match self {
            ProbeConn::Postgres(c) => sqlx::Connection::close(c).await,
            ProbeConn::MySql(c) => sqlx::Connection::close(c).await,
        };
    }
}

/// [`PgProbe`] or [`MyProbe`] over a connection opened at the first question. When it
/// cannot be opened, every question fails and `failed` says why (the caller then reports
/// the static findings, as before any probing).
struct LazyProbe<'t> {
    target: ProbeTarget<'t>,
    limits: LiveLimits,
    conn: Option<ProbeConn>,
    failed: Option<String>,
}

impl LazyProbe<'_> {
    async fn open(&self) -> Result<ProbeConn, String> {
        match self.target {
            ProbeTarget::Postgres(pg) => pg
                .read_connection()
                .await
                .map(ProbeConn::Postgres)
                .map_err(|e| e.to_string()),
            ProbeTarget::MySql(my) => {
                let mut conn = my.read_connection().await.map_err(|e| e.to_string())?;
                MyProbe::bound_session(&mut conn, &self.limits)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(ProbeConn::MySql(conn))
            }
        }
    }

    async fn probe(&mut self) -> Result<Box<dyn DataProbe + '_>, ProbeError> {
        if let Some(e) = &self.failed {
            return Err(ProbeError::Cannot(e.clone()));
        }
        if self.conn.is_none() {
            match self.open().await {
                Ok(conn) => self.conn = Some(conn),
                Err(e) => {
                    self.failed = Some(e.clone());
                    return Err(ProbeError::Cannot(e));
                }
            }
        }
        match self.conn.as_mut() {
            Some(ProbeConn::Postgres(conn)) => Ok(Box::new(PgProbe::new(conn, self.limits))),
            Some(ProbeConn::MySql(conn)) => Ok(Box::new(MyProbe::bounded(conn, self.limits))),
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
        self.probe()
            .await?
            .find(table, check, sample, rehearse)
            .await
    }

    async fn blockers(&mut self, tables: &[QName]) -> Result<Vec<Blocker>, ProbeError> {
        self.probe().await?.blockers(tables).await
    }

    async fn rehearse_plan(&mut self, statements: &[String]) -> Result<PlanRehearsal, ProbeError> {
        self.probe().await?.rehearse_plan(statements).await
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
            target: ProbeTarget::Postgres(&pg),
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
