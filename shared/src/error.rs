//! Errors of the engine, each carrying the Prisma error code where Prisma has one.

use std::time::Duration;

use crate::artifact::ArtifactError;
use crate::outcome::Status;

/// Prisma's documentation links, quoted in messages exactly as Prisma prints them.
const RESOLVE_LINK: &str = "https://pris.ly/d/migrate-resolve";
const BASELINE_LINK: &str = "https://pris.ly/d/migrate-baseline";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The artifact could not be read or is unsafe.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),

    /// The request itself is incomplete or contradictory.
    #[error("Invalid request: {reason}")]
    InvalidRequest { reason: String },

    /// The artifact could not be fetched (an S3 object that is missing, too large, not allowed …).
    #[error("The artifact {location} could not be fetched: {reason}")]
    ArtifactUnavailable {
        location: String,
        reason: String,
        /// Worth trying again (throttling, a network fault) rather than a wrong request.
        transient: bool,
    },

    /// Credentials for the database could not be had (IAM token, secret).
    #[error("No database credentials: {reason}")]
    Credentials { reason: String },

    /// P1013: the database URL cannot be used.
    #[error("The provided database string is invalid. {reason}")]
    InvalidDatabaseUrl { reason: String },

    /// P1001 / P1003 / P1000: connecting failed.
    #[error("Can't reach database server at `{target}`: {reason}")]
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
    ApplyFailed { migration: String, logs: String },

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
            EngineError::ApplyFailed { .. } => "P3018",
            EngineError::MissingScript { .. } => "P3015",
            EngineError::ProviderMismatch { .. } => "P3019",
            EngineError::AlreadyApplied { .. } => "P3008",
            EngineError::NeverApplied { .. } => "P3011",
            EngineError::NotFailed { .. } => "P3012",
            EngineError::MigrationNotFound { .. } => "P3017",
            EngineError::Artifact(_)
            | EngineError::ArtifactUnavailable { .. }
            | EngineError::Credentials { .. }
            | EngineError::InvalidRequest { .. }
            | EngineError::SchemaProviderMismatch { .. }
            | EngineError::NormalisationMismatch { .. }
            | EngineError::NoMigrationsTable
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
            | EngineError::SystemDatabase { .. } => Status::Rejected,
            EngineError::LockTimeout { .. }
            | EngineError::SchemaNotEmpty { .. }
            | EngineError::FailedMigrations { .. }
            | EngineError::AlreadyApplied { .. }
            | EngineError::NeverApplied { .. }
            | EngineError::NotFailed { .. }
            | EngineError::NoMigrationsTable => Status::Blocked,
            EngineError::ArtifactUnavailable {
                transient: false, ..
            } => Status::Rejected,
            EngineError::ArtifactUnavailable {
                transient: true, ..
            }
            | EngineError::Credentials { .. }
            | EngineError::Connect { .. }
            | EngineError::ApplyFailed { .. }
            | EngineError::Database { .. } => Status::Failed,
        }
    }

    /// What a person should do next.
    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::LockTimeout { .. } => Some(
                "Another migration is running against this database (our tool or the Prisma CLI). Wait for it, or raise --lock-timeout.".into(),
            ),
            EngineError::SchemaNotEmpty { tables } => Some(format!(
                "The database has tables ({}) but no `_prisma_migrations`. Baseline it: `migrator resolve --applied <first migration>` once the schema matches that migration.",
                preview(tables)
            )),
            EngineError::FailedMigrations { names, .. } => names.first().map(|name| {
                format!(
                    "Repair the database by hand, then run `migrator resolve --rolled-back {name}` (to apply it again) or `migrator resolve --applied {name}` (if you finished it by hand)."
                )
            }),
            EngineError::ApplyFailed { migration, .. } => Some(format!(
                "Fix the migration, then run `migrator resolve --rolled-back {migration}` and deploy again."
            )),
            EngineError::MissingScript { migration } => Some(format!(
                "Restore {migration}/migration.sql in the artifact or delete the folder."
            )),
            EngineError::NormalisationMismatch { name, recorded, .. } => Some(format!(
                "Rename the folder `{name}` in the artifact to the recorded name {recorded}, byte for byte (archivers on macOS often store names decomposed, NFD)."
            )),
            EngineError::ProviderMismatch { .. } | EngineError::SchemaProviderMismatch { .. } => {
                Some("Point the migrator at a database of the provider the migrations were written for.".into())
            }
            EngineError::AlreadyApplied { .. } => Some("Nothing to do: the migration is already recorded as applied.".into()),
            EngineError::MigrationNotFound { .. } | EngineError::NeverApplied { .. } => {
                Some("Pass the whole folder name, e.g. 20201207184859_initial_migration.".into())
            }
            EngineError::Connect { .. } => Some("Check the host, port, credentials and TLS settings of the database URL.".into()),
            _ => None,
        }
    }
}

/// A database error as people read it: the server's code and message, without sqlx's
/// "at line N" (a line of the server's own source code).
pub fn describe_sqlx(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => match db.code() {
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
