//! The rules of `prisma migrate deploy`, `status` and `resolve`, over the [`Dialect`] port.
//!
//! [`run`] is the one entry point every runtime uses: it takes a request, an artifact (or
//! the reason it could not be read) and a database target, and always returns an
//! [`Outcome`]; errors become the outcome's `error` and `status`.

mod deploy;
mod gate;
pub mod history;
mod holders;
mod inspect;
pub mod plan_hash;
pub mod recovery;
mod request;
mod resolve;

pub use recovery::{RecoveryNeed, RecoveryPoints, RecoveryWhen};
pub use request::{InvokedBy, InvokerSource, Request, ResolveTarget, StagePolicy};

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::artifact::{Artifact, ArtifactError};
use crate::clock::Clock;
use crate::dialect::{self, ConnectPurpose, DatabaseTarget, Dialect};
use crate::error::{CliWording, EngineError, Wording};
use crate::migration::MigrationSet;
use crate::outcome::{
    Action, ArtifactInfo, Execution, Outcome, PendingMigration, ResolveKind, Status,
};

/// How the engine behaves, beyond the request.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long to wait for the migration lock.
    pub lock_wait: Duration,
    /// Prisma's `PRISMA_SCHEMA_DISABLE_ADVISORY_LOCK`: false skips the lock entirely.
    pub use_lock: bool,
    /// When the caller must have answered (a Lambda's deadline). No migration starts with
    /// less than `deadline_margin` left; statements are cancelled by the database before it.
    pub deadline: Option<Instant>,
    pub deadline_margin: Duration,
    /// PostgreSQL `lock_timeout` for each migration's statements (none: wait as long as it takes).
    pub statement_lock_timeout: Option<Duration>,
    /// How often a migration that timed out waiting for a table lock is tried again. Safe
    /// because such a migration ran in a transaction that was rolled back.
    pub statement_lock_retries: u32,
    /// Preflight findings for plan and deploy (`None`: no preflight).
    pub preflight: Option<crate::preflight::PreflightSettings>,
    /// The runtime's words in hints (the CLI's by default).
    pub wording: Arc<dyn Wording>,
    /// Takes a way back before a deploy's first write (the stage's recovery-point policy);
    /// `None`: no recovery point.
    pub recovery: Option<Arc<dyn RecoveryPoints>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lock_wait: dialect::DEFAULT_LOCK_WAIT,
            use_lock: true,
            deadline: None,
            deadline_margin: Duration::from_secs(30),
            statement_lock_timeout: None,
            statement_lock_retries: 3,
            preflight: None,
            wording: Arc::new(CliWording),
            recovery: None,
        }
    }
}

impl Settings {
    /// Time left before the deadline's margin, if there is a deadline.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline.map(|deadline| {
            deadline
                .saturating_duration_since(Instant::now())
                .saturating_sub(self.deadline_margin)
        })
    }

    /// The lock wait, never past the deadline's margin.
    pub fn effective_lock_wait(&self) -> Duration {
        match self.time_left() {
            Some(left) => self.lock_wait.min(left),
            None => self.lock_wait,
        }
    }

    /// Honours `PRISMA_SCHEMA_DISABLE_ADVISORY_LOCK` like Prisma: any value but "" and "0".
    pub fn with_prisma_env(mut self) -> Self {
        if let Ok(value) = std::env::var("PRISMA_SCHEMA_DISABLE_ADVISORY_LOCK")
            && !value.is_empty()
            && value != "0"
        {
            self.use_lock = false;
        }
        self
    }
}

/// Runs `request` and reports what happened. Never panics on bad input; never touches the
/// database when the artifact is unusable.
pub async fn run(
    request: &Request,
    artifact: Result<Artifact, ArtifactError>,
    target: &DatabaseTarget,
    settings: &Settings,
    clock: &dyn Clock,
) -> Outcome {
    let timer = Instant::now();
    let mut outcome = Outcome::new(request.action, clock.now());
    outcome.confirmed = request.confirmed();
    outcome.invoked_by = request.invoked_by.clone();
    outcome.database = Some(target.info());

    let result = match artifact {
        Err(e) => Err(EngineError::from(e)),
        Ok(artifact) => {
            outcome.artifact = Some(artifact_info(&artifact));
            outcome
                .warnings
                .extend(artifact.set.warnings.iter().cloned());
            run_with_artifact(
                request,
                &artifact.set,
                target,
                settings,
                clock,
                &mut outcome,
            )
            .await
        }
    };
    if let Err(error) = result {
        tracing::debug!(code = error.code().unwrap_or("none"), "{error}");
        error.record(&mut outcome, settings.wording.as_ref());
    }
    // A plan names exactly what confirming it applies.
    if outcome.status == Status::Planned
        && matches!(outcome.action, Action::Deploy | Action::Plan)
        && let Some(artifact) = &outcome.artifact
    {
        outcome.plan_hash = Some(plan_hash::plan_hash(&artifact.sha256, &outcome.pending));
    }
    outcome.duration_ms = u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX);
    outcome
}

async fn run_with_artifact(
    request: &Request,
    set: &MigrationSet,
    target: &DatabaseTarget,
    settings: &Settings,
    clock: &dyn Clock,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    check_providers(request, set, target.provider())?;
    let (purpose, probed) = if request.writes() && request.action == Action::Deploy {
        let expected_plan = request.expected_plan.as_deref();
        let probed = refuse_before_creating(set, expected_plan, target, settings, outcome).await?;
        (ConnectPurpose::Write, probed)
    } else {
        (ConnectPurpose::Read, None)
    };
    let connected = match probed {
        Some(dialect) => Ok((dialect, None)),
        None => dialect::connect(target, purpose, settings.effective_lock_wait()).await,
    };
    let (mut dialect, created) = match connected {
        Err(EngineError::Connect { code: "P1003", .. })
            if matches!(request.action, Action::Plan | Action::Deploy) =>
        {
            plan_missing_database(request.action, set, target, outcome)?;
            if let Some(preflight) = &settings.preflight {
                gate::after_plan(set, target, preflight, outcome).await;
            }
            return Ok(());
        }
        connected => connected?,
    };
    outcome.warnings.extend(created);
    // A replica, a standby or a read-only server is refused before the lock: whatever was
    // asked to write must not find out half-way.
    let refused = match request.writes() {
        true => dialect.refuse_read_only().await,
        false => Ok(()),
    };
    // Preflight: a confirmed deploy is checked before anything is written; a plan reports
    // the findings of what it listed.
    let gate = match (refused, &settings.preflight) {
        (Err(e), _) => Err(e),
        (Ok(()), Some(preflight)) if request.writes() && request.action == Action::Deploy => {
            gate::before_deploy(set, target, dialect.as_mut(), preflight, outcome).await
        }
        (Ok(()), _) => Ok(()),
    };
    let result = match gate {
        Ok(()) => {
            let mut session = Session {
                set,
                dialect: dialect.as_mut(),
                settings,
                clock,
                outcome,
            };
            run_connected(request, &mut session).await
        }
        Err(e) => Err(e),
    };
    dialect.close().await;
    if let Some(preflight) = &settings.preflight
        && result.is_ok()
        && !request.writes()
        && matches!(request.action, Action::Plan | Action::Deploy)
    {
        gate::after_plan(set, target, preflight, outcome).await;
    }
    result
}

/// The artifact's providers against the database's, before connecting: a rejected artifact
/// never opens, let alone creates, the database.
fn check_providers(
    request: &Request,
    set: &MigrationSet,
    provider: &str,
) -> Result<(), EngineError> {
    if let Some(schema) = &set.schema_provider
        && !dialect::accepts_schema_provider(provider, schema)
    {
        return Err(EngineError::SchemaProviderMismatch {
            schema: schema.clone(),
            database: provider.into(),
        });
    }
    // Prisma's P3019 (every command but `resolve --rolled-back`).
    let rolls_back = request
        .resolve
        .as_ref()
        .is_some_and(|r| r.kind == ResolveKind::RolledBack);
    if !(request.action == Action::Resolve && rolls_back) {
        check_lockfile(set, provider)?;
    }
    Ok(())
}

/// What the rules work with once connected: the migrations, the database (under its lock
/// when the request writes), the settings, the clock and the outcome being written.
pub(super) struct Session<'a> {
    pub(super) set: &'a MigrationSet,
    pub(super) dialect: &'a mut dyn Dialect,
    pub(super) settings: &'a Settings,
    pub(super) clock: &'a dyn Clock,
    pub(super) outcome: &'a mut Outcome,
}

/// Everything after connecting: the request's rules, then the flush and the unlock, which
/// happen whatever the rules decided.
async fn run_connected(request: &Request, s: &mut Session<'_>) -> Result<(), EngineError> {
    let result = dispatch(request, s).await;
    if let Err(e) = s.dialect.flush().await {
        s.outcome.warnings.push(format!(
            "Could not confirm that the last commits reached the disk ({e}); if the database server crashed just now, the next deploy re-applies what did not."
        ));
    }
    if let Err(e) = s.dialect.unlock().await {
        tracing::warn!("{e}");
    }
    result
}

async fn dispatch(request: &Request, s: &mut Session<'_>) -> Result<(), EngineError> {
    match request.action {
        Action::Deploy if request.confirmed() => {
            let expected_plan = request.expected_plan.as_deref();
            deploy::deploy(expected_plan, s).await
        }
        Action::Deploy | Action::Plan | Action::Status => {
            inspect::inspect(request.action, s.set, s.dialect, s.outcome).await
        }
        Action::Resolve => {
            let Some(target) = &request.resolve else {
                return Err(EngineError::InvalidRequest {
                    reason:
                        "resolve needs the name of a migration to mark as applied or rolled back"
                            .into(),
                });
            };
            resolve::resolve(target, request.confirmed(), s).await
        }
    }
}

#[cfg(test)]
mod tests;

/// The outcome's view of an artifact.
pub fn artifact_info(artifact: &Artifact) -> ArtifactInfo {
    ArtifactInfo {
        location: artifact.location.clone(),
        sha256: artifact.sha256.clone(),
        migrations_path: artifact.set.path.clone(),
        migration_count: artifact.set.migrations.len(),
        lock_provider: artifact.set.lockfile.as_ref().map(|l| l.provider.clone()),
        schema_provider: artifact.set.schema_provider.clone(),
    }
}

/// Prisma's P3019 check of `migration_lock.toml` against the database.
fn check_lockfile(set: &MigrationSet, provider: &str) -> Result<(), EngineError> {
    match &set.lockfile {
        Some(lock) if lock.provider != provider => Err(EngineError::ProviderMismatch {
            provider: provider.into(),
            expected: lock.provider.clone(),
        }),
        _ => Ok(()),
    }
}

/// `rejected` means untouched. A confirmed deploy creates what is missing (the database, the
/// `?schema=` namespace, `_prisma_migrations`) before it reads the rows, and P3015 (a pending
/// folder without `migration.sql`) is the one artifact rule that needs the rows. So when the
/// artifact has such a folder, the rules are first run read-only (as `plan` runs them) and a
/// P3015 is returned before anything is created. A database that does not exist yet has every
/// migration pending: a confirmed plan (`expected_plan`) and the preflight policy are checked
/// against that before the database is created, so neither a wrong `planHash` nor a blocking
/// finding creates anything. Deploy decides again under the lock; this only refuses earlier.
///
/// Returns the read-only connection it opened to a PostgreSQL or MySQL database that exists
/// (the same as a deploy's: nothing was missing to create), for the deploy to use.
async fn refuse_before_creating(
    set: &MigrationSet,
    expected_plan: Option<&str>,
    target: &DatabaseTarget,
    settings: &Settings,
    outcome: &mut Outcome,
) -> Result<Option<Box<dyn Dialect>>, EngineError> {
    let missing_script = set.migrations.iter().any(|m| m.script.is_none());
    let server = !matches!(target, DatabaseTarget::Sqlite(_));
    let may_block = settings
        .preflight
        .as_ref()
        .is_some_and(|p| p.block_on != crate::preflight::BlockOn::Never);
    if !missing_script && expected_plan.is_none() && !(server && may_block) {
        return Ok(None);
    }
    match dialect::connect(target, ConnectPurpose::Read, settings.effective_lock_wait()).await {
        Ok((mut dialect, _)) => {
            if missing_script {
                let mut planned = outcome.clone();
                let result =
                    inspect::inspect(Action::Plan, set, dialect.as_mut(), &mut planned).await;
                // Anything else is deploy's to decide, under the lock.
                if let Err(missing @ EngineError::MissingScript { .. }) = result {
                    dialect.close().await;
                    *outcome = planned;
                    return Err(missing);
                }
            }
            if server {
                Ok(Some(dialect))
            } else {
                dialect.close().await;
                Ok(None)
            }
        }
        Err(EngineError::Connect { code: "P1003", .. }) => {
            let comparison = history::compare(set, &[]);
            outcome.pending = pending_entries(&comparison, |_| None);
            refuse_missing_script(&comparison)?;
            if let (Some(expected), Some(artifact)) = (expected_plan, &outcome.artifact) {
                plan_hash::check(expected, &artifact.sha256, &outcome.pending)?;
            }
            if let Some(preflight) = &settings.preflight {
                // The findings of the whole artifact, as the gate will see them once created.
                let mut probe = outcome.clone();
                gate::after_plan(set, target, preflight, &mut probe).await;
                let blocking: Vec<String> = preflight
                    .block_on
                    .blocking(&probe.findings, &preflight.accept)
                    .iter()
                    .map(|f| format!("{} ({})", f.accept_key(), f.severity))
                    .collect();
                if !blocking.is_empty() {
                    *outcome = probe;
                    return Err(EngineError::PreflightBlocked { findings: blocking });
                }
            }
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// A plan (or an unconfirmed deploy) of a database that does not exist yet: its history is
/// empty, so every migration is pending, and confirming the plan creates the database first
/// (as deploy does). Nothing is created here; the plan's `planHash` is the one a confirmation
/// of the first deploy carries.
fn plan_missing_database(
    action: Action,
    set: &MigrationSet,
    target: &DatabaseTarget,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    let comparison = history::compare(set, &[]);
    outcome.pending = pending_entries(&comparison, |_| None);
    refuse_missing_script(&comparison)?;
    let count = outcome.pending.len();
    outcome.warnings.push(format!(
        "The database `{}` does not exist yet: a confirmed deploy creates it, then applies {count} migration(s). Nothing was created.",
        target.info().name
    ));
    if action == Action::Deploy && count > 0 {
        outcome.warnings.push(
            "Not confirmed: nothing was applied. Confirm to apply the pending migrations.".into(),
        );
    }
    outcome.status = if count == 0 {
        Status::UpToDate
    } else {
        Status::Planned
    };
    Ok(())
}

/// What deploy would apply, for the outcome.
pub(crate) fn pending_list(
    comparison: &history::Comparison<'_>,
    dialect: &dyn Dialect,
) -> Vec<PendingMigration> {
    pending_entries(comparison, |script| Some(dialect.execution(script)))
}

/// The pending list, with `execution` saying how each script would run (when it is known).
fn pending_entries(
    comparison: &history::Comparison<'_>,
    execution: impl Fn(&str) -> Option<Execution>,
) -> Vec<PendingMigration> {
    comparison
        .pending
        .iter()
        .map(|(m, out_of_order)| PendingMigration {
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            out_of_order: *out_of_order,
            execution: m.script.as_deref().and_then(&execution),
        })
        .collect()
}

/// Prisma's P3009: failed rows stop everything until a person resolves them.
fn refuse_failed(
    comparison: &history::Comparison<'_>,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    if comparison.failed.is_empty() {
        return Ok(());
    }
    outcome.failed = comparison
        .failed
        .iter()
        .map(|row| deploy::failed_from_row(row))
        .collect();
    Err(EngineError::FailedMigrations {
        names: comparison
            .failed
            .iter()
            .map(|r| r.migration_name.clone())
            .collect(),
        details: history::failed_details(&comparison.failed),
    })
}

/// A pending migration that is a recorded one under another Unicode normalisation would be
/// applied twice (Prisma compares bytes): refuse, naming both forms.
fn refuse_renamed(comparison: &history::Comparison<'_>) -> Result<(), EngineError> {
    match comparison.renamed.first() {
        Some((local, recorded)) => Err(EngineError::NormalisationMismatch {
            name: local.clone(),
            local: crate::ordering::spelled_out(local),
            recorded: crate::ordering::spelled_out(recorded),
        }),
        None => Ok(()),
    }
}

/// Prisma fails with P3015 on a pending folder without `migration.sql` after applying what
/// comes before it; we refuse before touching anything.
fn refuse_missing_script(comparison: &history::Comparison<'_>) -> Result<(), EngineError> {
    match comparison.pending.iter().find(|(m, _)| m.script.is_none()) {
        Some((missing, _)) => Err(EngineError::MissingScript {
            migration: missing.name.clone(),
        }),
        None => Ok(()),
    }
}

/// Warnings for what Prisma silently ignores, and the drift section.
fn report_drift(comparison: &history::Comparison<'_>, outcome: &mut Outcome) {
    outcome.drift.missing_locally = comparison.missing_locally.clone();
    outcome.drift.edited = comparison.edited.clone();
    if !comparison.missing_locally.is_empty() {
        let text = if comparison.pending.is_empty() {
            format!(
                "The database has {} migration(s) that this artifact does not have ({}): the artifact looks older than the database. Nothing of it is applied.",
                comparison.missing_locally.len(),
                comparison.missing_locally.join(", ")
            )
        } else {
            format!(
                "The database has {} migration(s) that this artifact does not have: {}.",
                comparison.missing_locally.len(),
                comparison.missing_locally.join(", ")
            )
        };
        outcome.warnings.push(text);
    }
    for (local, recorded) in &comparison.renamed {
        outcome.warnings.push(format!(
            "Migration {} (pending) and {} (recorded, missing locally) differ only by Unicode normalisation: they are one migration under two spellings.",
            crate::ordering::spelled_out(local),
            crate::ordering::spelled_out(recorded)
        ));
    }
    for name in &comparison.edited {
        outcome
            .warnings
            .push(format!("Migration `{name}` was edited after it was applied (its checksum differs); the change is not applied."));
    }
    for (migration, out_of_order) in &comparison.pending {
        if *out_of_order {
            outcome.warnings.push(format!(
                "Migration `{}` sorts before migrations the database already has (out of order); Prisma applies it anyway.",
                migration.name
            ));
        }
    }
}
