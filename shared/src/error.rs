//! Errors of the engine, each carrying the Prisma error code where Prisma has one. They are
//! about the database, the artifact and the request only: what the runtime around the engine
//! fails on (fetching the artifact, credentials) is the runtime's own error, which wraps this
//! one. A hint names what a person does next in the words of the runtime they use
//! ([`Wording`]): the CLI's options and commands by default.

use std::time::Duration;

use crate::artifact::ArtifactError;
use crate::outcome::{ErrorInfo, Outcome, ResolveKind, Status};

/// Prisma's documentation links, quoted in messages exactly as Prisma prints them.
const RESOLVE_LINK: &str = "https://pris.ly/d/migrate-resolve";
const BASELINE_LINK: &str = "https://pris.ly/d/migrate-baseline";

/// What `logs` say of a migration whose one transaction was rolled back (read again when a
/// later deploy finds the failed row, so that its hint does not ask for repairs).
pub const ROLLED_BACK_LOGS: &str = "The migration ran in one transaction, which was rolled back: none of its statements were applied.";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The artifact could not be read or is unsafe.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),

    /// The request itself is incomplete or contradictory.
    #[error("Invalid request: {reason}")]
    InvalidRequest { reason: String },

    /// P1013: the database URL cannot be used.
    #[error("The provided database string is invalid. {reason}")]
    InvalidDatabaseUrl { reason: String },

    /// P1001 / P1003 / P1000: connecting failed. The text follows the code: a server that
    /// answered (P1003, P1000) was reached.
    #[error("{}", connect_message(code, target, reason))]
    Connect {
        target: String,
        reason: String,
        code: &'static str,
    },

    /// P1002: another migrator (or a person running the Prisma CLI) holds the lock.
    #[error(
        "The database server was reached but timed out. Context: Timed out trying to acquire a {lock} lock ({statement}). Timeout: {}ms. See https://pris.ly/d/migrate-advisory-locking for details.",
        timeout.as_millis()
    )]
    LockTimeout {
        lock: &'static str,
        statement: String,
        timeout: Duration,
    },

    /// The server refused the migration lock outright (not a wait that ran out).
    #[error("The {lock} lock could not be taken: {reason}")]
    LockFailed { lock: &'static str, reason: String },

    /// P3004: a MySQL system database.
    #[error(
        "The `{database}` database is a system database, it should not be altered with prisma migrate. Please connect to another database."
    )]
    SystemDatabase { database: String },

    /// P3005: tables exist but `_prisma_migrations` does not.
    #[error(
        "The database schema is not empty. Read more about how to baseline an existing production database: {BASELINE_LINK}"
    )]
    SchemaNotEmpty { tables: Vec<String> },

    /// P3009: failed migrations are recorded.
    #[error(
        "migrate found failed migrations in the target database, new migrations will not be applied. Read more about how to resolve migration issues in a production database: {RESOLVE_LINK}\n{details}"
    )]
    FailedMigrations { names: Vec<String>, details: String },

    /// P3018: a migration failed; `logs` is the text written to the row.
    #[error("{logs}")]
    ApplyFailed {
        migration: String,
        logs: String,
        /// What of the migration stayed applied, for the hint.
        state: FailedState,
    },

    /// A migration removed, emptied or moved `_prisma_migrations` (or its own row), or its
    /// script ended the migrator's transaction: the bookkeeping cannot be trusted to say
    /// what happened, so the migration is not reported as applied.
    #[error(
        "Migration `{migration}` broke the migrator's bookkeeping: {what}. {}",
        if *rolled_back { "Its transaction was rolled back: nothing of the migration was applied and nothing was recorded." } else { "What it committed stays applied." }
    )]
    Bookkeeping {
        migration: String,
        what: String,
        rolled_back: bool,
    },

    /// The witness read a migration's row back after it ran and found it other than the
    /// migrator wrote it (missing, unfinished, another checksum, rolled back): the outcome
    /// reports what the database holds, and the deploy stops.
    #[error(
        "Migration `{migration}` ran, but its row in _prisma_migrations is not what the migrator wrote: {found}. The deploy stopped here."
    )]
    Witness { migration: String, found: String },

    /// A statement of a migration was cancelled because the run's deadline came (the
    /// supervising session cancelled it from outside); nothing of it is recorded.
    #[error(
        "Migration `{migration}` was cancelled because the run reached its deadline ({}): it needs more time than was left. Nothing of it was applied or recorded; the next run applies it again.",
        what
    )]
    DeadlineCancelled { migration: String, what: String },

    /// A migration could not get a table lock within the statement lock timeout, however
    /// often it was tried; nothing of it is recorded.
    #[error(
        "Migration `{migration}` could not get a table lock within the statement lock timeout ({code}), in {attempts} attempt(s): another session holds a lock on a table it changes{}. Nothing of it was applied or recorded.",
        held_by.as_deref().map(|who| format!(" (held by {who})")).unwrap_or_default()
    )]
    StatementLocked {
        migration: String,
        code: String,
        attempts: u32,
        /// The session in the way, as the dialect could tell (`None`: unknown).
        held_by: Option<String>,
    },

    /// A pending migration holds a statement the migrator cannot run (it would hang or
    /// needs a client-side data stream).
    #[error(
        "Migration `{migration}` cannot be applied: line {line} holds `{statement}`, {reason}. Nothing was applied."
    )]
    UnsupportedStatement {
        migration: String,
        line: usize,
        statement: String,
        reason: String,
    },

    /// A dialect found the migration's row or `_prisma_migrations` itself gone while
    /// finishing; the engine turns it into [`EngineError::Bookkeeping`] with the migration.
    #[error("{what}")]
    RowMissing { what: String },

    /// A SQLite database file that cannot be opened.
    #[error("The SQLite database `{path}` cannot be opened: {reason}")]
    SqliteFile { path: String, reason: String },

    /// P3015: a pending migration's folder has no `migration.sql`.
    #[error(
        "Could not find the migration file at migration.sql. Please delete the directory or restore the migration file. (migration `{migration}`)"
    )]
    MissingScript { migration: String },

    /// A pending migration whose name differs from a recorded one only by Unicode normalisation
    /// (NFC vs NFD): Prisma would apply it a second time. `local`/`recorded` are spelled out.
    #[error(
        "Migration {local} in the artifact and {recorded} recorded in _prisma_migrations differ only by Unicode normalisation: they look the same but are different names, so deploying would apply the migration a second time."
    )]
    NormalisationMismatch {
        name: String,
        local: String,
        recorded: String,
    },

    /// P3019: `migration_lock.toml` names another provider.
    #[error(
        "The datasource provider `{provider}` specified in your schema does not match the one specified in the migration_lock.toml, `{expected}`. Please remove your current migration directory and start a new migration history with prisma migrate dev. Read more: https://pris.ly/d/migrate-provider-switch"
    )]
    ProviderMismatch { provider: String, expected: String },

    /// `schema.prisma` names a provider the database URL is not.
    #[error(
        "schema.prisma says `provider = \"{schema}\"` but the database URL is a {database} database."
    )]
    SchemaProviderMismatch { schema: String, database: String },

    /// P3008
    #[error("The migration `{name}` is already recorded as applied in the database.")]
    AlreadyApplied { name: String },

    /// P3011
    #[error(
        "Migration `{name}` cannot be rolled back because it was never applied to the database. Hint: did you pass in the whole migration name? (example: \"20201207184859_initial_migration\")"
    )]
    NeverApplied { name: String },

    /// P3012
    #[error("Migration `{name}` cannot be rolled back because it is not in a failed state.")]
    NotFailed { name: String },

    /// P3017
    #[error(
        "The migration {name} could not be found. Please make sure that the migration exists, and that you included the whole name of the directory. (example: \"20201207184859_initial_migration\")"
    )]
    MigrationNotFound { name: String },

    /// `resolve --rolled-back` on a database without `_prisma_migrations` (Prisma: an invariant violation, no code).
    #[error(
        "The database has no `_prisma_migrations` table: there is no migration to mark as rolled back."
    )]
    NoMigrationsTable,

    /// Preflight findings block the deploy (`--block-on`, `BLOCK_ON`); nothing was written.
    #[error("Preflight blocked the deploy: {}. Nothing was applied.", findings.join(", "))]
    PreflightBlocked { findings: Vec<String> },

    /// The database is one a migration must not write: a read replica, a hot standby, a
    /// server in read-only mode, the green side of a Blue/Green deployment, a pooler endpoint
    /// the migration lock cannot hold through. Found before the lock; nothing was written.
    #[error("Refused before taking the migration lock: {found}. Nothing was written.")]
    WrongDatabase { found: String },

    /// The database cannot be migrated now, for a reason that passes (a Blue/Green switchover
    /// in progress). Found before the lock; nothing was written.
    #[error("Not now: {found}. Nothing was written.")]
    DatabaseBusy { found: String },

    /// The recovery point the stage's policy asks for cannot be had (backups are off, the
    /// snapshot could not finish before the deadline): nothing was applied without it.
    #[error("No recovery point, so nothing was applied: {reason}")]
    RecoveryPointUnavailable { reason: String },

    /// The RDS API failed before the first write (`call` names it: taking the recovery point,
    /// or asking about Blue/Green deployments); nothing was applied. Worth trying again.
    #[error("RDS {call} failed before anything was written, so nothing was applied: {reason}")]
    RecoveryPointFailed { call: String, reason: String },

    /// Any other database error, with what we were doing.
    #[error("{context}: {}", describe_sqlx(source))]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl EngineError {
    pub fn database(context: &'static str) -> impl FnOnce(sqlx::Error) -> EngineError {
        move |source| EngineError::Database { context, source }
    }

    /// The Prisma error code, when Prisma has one for this case.
    pub fn code(&self) -> Option<&'static str> {
        Some(match self {
            EngineError::InvalidDatabaseUrl { .. } => "P1013",
            EngineError::Connect { code, .. } => code,
            EngineError::LockTimeout { .. } => "P1002",
            EngineError::SystemDatabase { .. } => "P3004",
            EngineError::SchemaNotEmpty { .. } => "P3005",
            EngineError::FailedMigrations { .. } => "P3009",
            EngineError::ApplyFailed { .. } | EngineError::Bookkeeping { .. } => "P3018",
            EngineError::MissingScript { .. } => "P3015",
            EngineError::ProviderMismatch { .. } => "P3019",
            EngineError::AlreadyApplied { .. } => "P3008",
            EngineError::NeverApplied { .. } => "P3011",
            EngineError::NotFailed { .. } => "P3012",
            EngineError::MigrationNotFound { .. } => "P3017",
            EngineError::Artifact(_)
            | EngineError::InvalidRequest { .. }
            | EngineError::SchemaProviderMismatch { .. }
            | EngineError::NormalisationMismatch { .. }
            | EngineError::NoMigrationsTable
            | EngineError::PreflightBlocked { .. }
            | EngineError::DeadlineCancelled { .. }
            | EngineError::Witness { .. }
            | EngineError::StatementLocked { .. }
            | EngineError::UnsupportedStatement { .. }
            | EngineError::SqliteFile { .. }
            | EngineError::RowMissing { .. }
            | EngineError::LockFailed { .. }
            | EngineError::WrongDatabase { .. }
            | EngineError::DatabaseBusy { .. }
            | EngineError::RecoveryPointUnavailable { .. }
            | EngineError::RecoveryPointFailed { .. }
            | EngineError::Database { .. } => return None,
        })
    }

    /// How the outcome reports this error.
    /// `rejected`: the request or artifact is unusable, nothing was touched.
    /// `blocked`: the database's state forbids going on (until a person acts), nothing was changed.
    /// `failed`: something went wrong while working; the outcome says what was applied.
    pub fn status(&self) -> Status {
        match self {
            EngineError::Artifact(_)
            | EngineError::InvalidRequest { .. }
            | EngineError::InvalidDatabaseUrl { .. }
            | EngineError::ProviderMismatch { .. }
            | EngineError::SchemaProviderMismatch { .. }
            | EngineError::MissingScript { .. }
            | EngineError::NormalisationMismatch { .. }
            | EngineError::MigrationNotFound { .. }
            | EngineError::UnsupportedStatement { .. }
            | EngineError::WrongDatabase { .. }
            | EngineError::SystemDatabase { .. } => Status::Rejected,
            EngineError::DeadlineCancelled { .. } => Status::Incomplete,
            EngineError::LockTimeout { .. }
            | EngineError::SchemaNotEmpty { .. }
            | EngineError::FailedMigrations { .. }
            | EngineError::AlreadyApplied { .. }
            | EngineError::NeverApplied { .. }
            | EngineError::NotFailed { .. }
            | EngineError::StatementLocked { .. }
            | EngineError::NoMigrationsTable
            | EngineError::DatabaseBusy { .. }
            | EngineError::RecoveryPointUnavailable { .. }
            | EngineError::PreflightBlocked { .. } => Status::Blocked,
            EngineError::Connect { .. }
            | EngineError::ApplyFailed { .. }
            | EngineError::Bookkeeping { .. }
            | EngineError::Witness { .. }
            | EngineError::SqliteFile { .. }
            | EngineError::RowMissing { .. }
            | EngineError::LockFailed { .. }
            | EngineError::RecoveryPointFailed { .. }
            | EngineError::Database { .. } => Status::Failed,
        }
    }

    /// What a person should do next, in the words of their runtime.
    pub fn hint(&self, wording: &dyn Wording) -> Option<String> {
        let applied = |name: &str| wording.resolve(ResolveKind::Applied, name);
        let rolled_back = |name: &str| wording.resolve(ResolveKind::RolledBack, name);
        match self {
            EngineError::LockTimeout { .. } => Some(format!(
                "Another migration is running against this database (our tool or the Prisma CLI). Wait for it, or raise {}.",
                wording.lock_wait()
            )),
            EngineError::SchemaNotEmpty { tables } => Some(format!(
                "The database has tables ({}) but no `_prisma_migrations`. Baseline it: {} once the schema matches that migration.",
                preview(tables),
                applied("<first migration>")
            )),
            EngineError::FailedMigrations { names, details }
                if names.len() == 1 && details.contains(ROLLED_BACK_LOGS) =>
            {
                // Its transaction was rolled back: there is nothing to repair.
                Some(format!(
                    "Nothing of `{}` was applied (its transaction was rolled back). Fix the migration, run {} and deploy again.",
                    names[0],
                    rolled_back(&names[0])
                ))
            }
            EngineError::FailedMigrations { names, .. } => names.first().map(|name| {
                format!(
                    "Repair the database by hand, then run {} (to apply it again) or {} (if you finished it by hand).",
                    rolled_back(name),
                    applied(name)
                )
            }),
            EngineError::ApplyFailed { migration, state, .. } => {
                Some(state.hint(migration, wording))
            }
            EngineError::Bookkeeping { rolled_back: true, .. } => Some(
                "A migration must not drop, move, truncate or delete from `_prisma_migrations`, nor end the migrator's transaction: fix the migration and deploy again.".into(),
            ),
            EngineError::Bookkeeping { migration, .. } => Some(format!(
                "Check what the migration committed; repair `_prisma_migrations` by hand, then {} if all of it is in place or {} after undoing it.",
                applied(migration),
                rolled_back(migration)
            )),
            EngineError::Witness { migration, .. } => Some(format!(
                "Something changed `_prisma_migrations` behind the migrator (a trigger, a default, a rule, or another session): look at the row quoted above and at the table's definition, repair it by hand, then {} if the migration is in place.",
                applied(migration)
            )),
            EngineError::DeadlineCancelled { .. } => Some(format!(
                "Give the run more time: {}.",
                wording.more_time()
            )),
            EngineError::StatementLocked { .. } => Some(
                "Find the session holding the lock (a long transaction, `LOCK TABLES`), let it finish, and deploy again; or raise the statement lock timeout.".into(),
            ),
            EngineError::UnsupportedStatement { .. } => Some(
                "Load data with INSERT statements or a server-side file, or run that step outside the migrator.".into(),
            ),
            EngineError::SqliteFile { .. } => Some(
                "The SQLite URL must name a database file (file:./dev.db) in a folder the migrator can write.".into(),
            ),
            EngineError::MissingScript { migration } => Some(format!(
                "Restore {migration}/migration.sql in the artifact or delete the folder."
            )),
            EngineError::NormalisationMismatch { name, recorded, .. } => Some(format!(
                "Rename the folder `{name}` in the artifact to the recorded name {recorded}, byte for byte (archivers on macOS often store names decomposed, NFD)."
            )),
            EngineError::ProviderMismatch { .. } | EngineError::SchemaProviderMismatch { .. } => {
                Some("Point the migrator at a database of the provider the migrations were written for.".into())
            }
            EngineError::PreflightBlocked { findings } => Some(format!(
                "Fix the migration, allow the rule inline with `-- migrator:allow <rule> <reason>` before the statement, or accept it for this deploy: {}.",
                wording.accept(findings.first().and_then(|f| f.split(' ').next()).unwrap_or("rule@migration"))
            )),
            EngineError::WrongDatabase { .. } => Some(
                "Point the migrator at the primary (writer) endpoint of the database: the instance or cluster writer endpoint, not a replica, the green side of a Blue/Green deployment or a connection pooler.".into(),
            ),
            EngineError::DatabaseBusy { .. } => Some("Wait until it has finished, then deploy again.".into()),
            EngineError::RecoveryPointUnavailable { .. } => Some(
                "Nothing was written. Turn on automated backups (a backup retention of at least 1 day) for `pitr`, give a `snapshot` run more time (the long-migration task), or change the stage's recovery-point policy.".into(),
            ),
            EngineError::RecoveryPointFailed { .. } => Some(
                "Nothing was written; the run may simply be tried again. Check the function's RDS permissions if the error says access was denied.".into(),
            ),
            EngineError::AlreadyApplied { .. } => Some("Nothing to do: the migration is already recorded as applied.".into()),
            EngineError::MigrationNotFound { .. } | EngineError::NeverApplied { .. } => {
                Some("Pass the whole folder name, e.g. 20201207184859_initial_migration.".into())
            }
            EngineError::Connect { code: "P1003", .. } => Some("Create the database, or check its name in the database URL (deploy creates a missing database).".into()),
            EngineError::Connect { code: "P1000", .. } => Some("Check the user name and password (or IAM token) of the database URL.".into()),
            EngineError::Connect { .. } => Some("Check the host, port, credentials and TLS settings of the database URL.".into()),
            _ => None,
        }
    }

    /// The outcome's `error`: code, message, and the hint in `wording`.
    pub fn info(&self, wording: &dyn Wording) -> ErrorInfo {
        ErrorInfo {
            code: self.code().map(str::to_string),
            message: self.to_string(),
            hint: self.hint(wording),
        }
    }

    /// Records this error in `outcome`: its status wins over whatever was reached before.
    pub fn record(&self, outcome: &mut Outcome, wording: &dyn Wording) {
        outcome.fail(self.status(), self.info(wording));
    }
}

/// The words a hint uses for what only the runtime knows how to do: each runtime (the CLI,
/// the function) passes its own; [`CliWording`] is the default.
pub trait Wording: Send + Sync + std::fmt::Debug {
    /// How a person records `migration` as applied or rolled back (with its quotes).
    fn resolve(&self, kind: ResolveKind, migration: &str) -> String;
    /// What raises the migration-lock wait.
    fn lock_wait(&self) -> String;
    /// How a run gets more time before its deadline.
    fn more_time(&self) -> String;
    /// How a person accepts the finding `entry` (`rule@migration`) for one deploy.
    fn accept(&self, entry: &str) -> String;
}

/// The `migrator` command line's words: `migrator resolve --applied NAME`, `--lock-timeout`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CliWording;

impl Wording for CliWording {
    fn resolve(&self, kind: ResolveKind, migration: &str) -> String {
        let flag = match kind {
            ResolveKind::Applied => "--applied",
            ResolveKind::RolledBack => "--rolled-back",
        };
        format!(
            "`migrator resolve {flag} {}`",
            crate::text::shell_word(migration)
        )
    }

    fn lock_wait(&self) -> String {
        "--lock-timeout".into()
    }

    fn accept(&self, entry: &str) -> String {
        format!(
            "deploy again with `--accept {} --by YOUR_NAME`",
            crate::text::shell_word(entry)
        )
    }

    fn more_time(&self) -> String {
        // The command line has no deadline of its own: a deadline is the function's or its
        // ECS task's.
        "a longer MAX_DURATION for the function's ECS task, or run it from the command line, which has no deadline".into()
    }
}

/// What of a failed migration stayed applied: the hint depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailedState {
    /// Ran in one transaction, rolled back: nothing of it is applied.
    RolledBack,
    /// Ran statement by statement; these statements (1-based) were committed before the
    /// failure (none: nothing of it is applied).
    Committed(Vec<usize>),
    /// The script committed part of itself (its own `COMMIT`): which statements took
    /// effect is not known statement by statement.
    PartlyCommitted,
    /// The failure could not be recorded (the connection was lost): no failed row.
    NotRecorded,
}

impl FailedState {
    fn hint(&self, migration: &str, wording: &dyn Wording) -> String {
        let applied = wording.resolve(ResolveKind::Applied, migration);
        let rolled_back = wording.resolve(ResolveKind::RolledBack, migration);
        match self {
            FailedState::RolledBack => format!(
                "Nothing of the migration was applied. Fix it, then run {rolled_back} and deploy again."
            ),
            FailedState::Committed(done) if done.is_empty() => format!(
                "No statement of the migration was committed. Fix it, then run {rolled_back} and deploy again."
            ),
            FailedState::Committed(done) => format!(
                "Statements {} of the migration are committed and stay applied. Either undo them by hand, fix the migration, run {rolled_back} and deploy again; or finish the remaining statements by hand and run {applied}.",
                numbers(done)
            ),
            FailedState::PartlyCommitted => format!(
                "The script committed part of itself before failing: check which of its statements took effect. Undo them, fix the migration, run {rolled_back} and deploy again; or finish the rest by hand and run {applied}."
            ),
            FailedState::NotRecorded => {
                "The failure was not recorded in `_prisma_migrations`: no resolve is needed. Fix the cause and deploy again.".into()
            }
        }
    }
}

/// `1-3, 5` style.
pub(crate) fn numbers(items: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = items.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(", ")
}

/// Prisma's wording for a connection failure, by code: a database that does not exist or a
/// refused login was an answer from the server, not a server out of reach.
fn connect_message(code: &str, target: &str, reason: &str) -> String {
    match code {
        "P1003" => {
            format!("Database does not exist on the database server at `{target}`: {reason}")
        }
        "P1000" => {
            format!("Authentication failed against the database server at `{target}`: {reason}")
        }
        _ => format!("Can't reach database server at `{target}`: {reason}"),
    }
}

/// A database error as people read it: the server's code and message, without sqlx's
/// "at line N" (a line of the server's own source code). SQLite's codes are result codes,
/// not SQLSTATEs.
pub fn describe_sqlx(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
                format!("{} (SQLite result code {code})", db.message())
            }
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_string(),
        },
        other => other.to_string(),
    }
}

fn preview(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_row_whose_transaction_was_rolled_back_asks_for_no_repair() {
        let failed = |logs: &str| EngineError::FailedMigrations {
            names: vec!["m".into()],
            details: format!(
                "The `m` migration started at 2024 failed with the following logs:\n{logs}\n"
            ),
        };
        let hint = failed(ROLLED_BACK_LOGS)
            .hint(&CliWording)
            .unwrap_or_default();
        assert!(!hint.contains("by hand"), "{hint}");
        assert!(
            hint.contains("Nothing of `m` was applied") && hint.contains("resolve --rolled-back m")
        );
        let hint = failed("Statements committed before the failure: 1.")
            .hint(&CliWording)
            .unwrap_or_default();
        assert!(hint.contains("Repair the database by hand"), "{hint}");
    }

    #[test]
    fn connection_errors_say_what_the_server_answered() {
        let error = |code| EngineError::Connect {
            target: "db:5432".into(),
            reason: "database `app` does not exist".into(),
            code,
        };
        assert!(
            error("P1003")
                .to_string()
                .starts_with("Database does not exist")
        );
        assert!(
            !error("P1003")
                .hint(&CliWording)
                .unwrap_or_default()
                .contains("TLS")
        );
        assert!(
            error("P1000")
                .to_string()
                .starts_with("Authentication failed")
        );
        assert!(
            error("P1001")
                .to_string()
                .starts_with("Can't reach database server")
        );
    }

    #[test]
    fn failure_hints_fit_what_was_committed() {
        let hint = |state| {
            EngineError::ApplyFailed {
                migration: "m".into(),
                logs: String::new(),
                state,
            }
            .hint(&CliWording)
            .unwrap_or_default()
        };
        assert!(hint(FailedState::RolledBack).contains("resolve --rolled-back m"));
        let committed = hint(FailedState::Committed(vec![1, 2, 4]));
        assert!(
            committed.contains("Statements 1-2, 4") && committed.contains("resolve --applied m")
        );
        assert!(!hint(FailedState::NotRecorded).contains("resolve --"));
        assert!(hint(FailedState::PartlyCommitted).contains("resolve --applied m"));
    }

    #[test]
    fn our_own_interruptions_are_not_failed_migrations() {
        let deadline = EngineError::DeadlineCancelled {
            migration: "m".into(),
            what: "x".into(),
        };
        assert_eq!(deadline.status(), Status::Incomplete);
        assert_eq!(deadline.code(), None);
        let locked = EngineError::StatementLocked {
            migration: "m".into(),
            code: "1205".into(),
            attempts: 4,
            held_by: None,
        };
        assert_eq!(locked.status(), Status::Blocked);
        assert_ne!(locked.code(), Some("P3018"));
        assert!(locked.to_string().contains("changes. Nothing"), "{locked}");
        let named = EngineError::StatementLocked {
            migration: "m".into(),
            code: "1205".into(),
            attempts: 4,
            held_by: Some("pid 7 (app `psql`)".into()),
        };
        assert!(
            named
                .to_string()
                .contains("a table it changes (held by pid 7 (app `psql`)). Nothing"),
            "{named}"
        );
    }
}
