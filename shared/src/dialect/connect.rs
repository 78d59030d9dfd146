//! From a database URL to a connected dialect. Adding a database is one arm here and one file.

use std::time::Duration;

use url::Url;

use super::{Dialect, mysql, postgres, sqlite};
use crate::error::EngineError;
use crate::outcome::DatabaseInfo;

/// A parsed database URL, not yet connected.
#[derive(Debug, Clone)]
pub enum DatabaseTarget {
    Postgres(Box<postgres::Target>),
    MySql(Box<mysql::Target>),
    Sqlite(sqlite::Target),
}

/// Whether the connection may create what is missing (Prisma's deploy creates the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectPurpose {
    Read,
    Write,
}

/// `postgresql://`, `postgres://`, `mysql://`, `file:`, `sqlite:`.
pub fn parse_database_url(url: &str) -> Result<DatabaseTarget, EngineError> {
    let url = url.trim();
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "postgresql" | "postgres" => {
            let parsed = Url::parse(url).map_err(|e| EngineError::InvalidDatabaseUrl {
                reason: format!("The PostgreSQL URL cannot be parsed: {e}."),
            })?;
            Ok(DatabaseTarget::Postgres(Box::new(
                postgres::Target::from_url(&parsed)?,
            )))
        }
        "mysql" => {
            let parsed = Url::parse(url).map_err(|e| EngineError::InvalidDatabaseUrl {
                reason: format!("The MySQL URL cannot be parsed: {e}."),
            })?;
            Ok(DatabaseTarget::MySql(Box::new(mysql::Target::from_url(
                &parsed,
            )?)))
        }
        "file" | "sqlite" => Ok(DatabaseTarget::Sqlite(sqlite::Target::from_url(url)?)),
        "" => Err(EngineError::InvalidDatabaseUrl {
            reason: "No database URL: pass --database-url or set DATABASE_URL.".into(),
        }),
        other => Err(EngineError::InvalidDatabaseUrl {
            reason: format!(
                "The URL scheme `{other}:` is not supported; use postgresql://, postgres://, mysql://, file: or sqlite:."
            ),
        }),
    }
}

impl DatabaseTarget {
    pub fn info(&self) -> DatabaseInfo {
        match self {
            DatabaseTarget::Postgres(t) => t.info().clone(),
            DatabaseTarget::MySql(t) => t.info().clone(),
            DatabaseTarget::Sqlite(t) => t.info().clone(),
        }
    }

    /// The provider Prisma would call this database.
    pub fn provider(&self) -> &'static str {
        match self {
            DatabaseTarget::Postgres(_) => "postgresql",
            DatabaseTarget::MySql(_) => "mysql",
            DatabaseTarget::Sqlite(_) => "sqlite",
        }
    }
}

/// Connects. Returns the dialect and, when something was created on the way, a note saying so.
pub async fn connect(
    target: &DatabaseTarget,
    purpose: ConnectPurpose,
    lock_wait: Duration,
) -> Result<(Box<dyn Dialect>, Option<String>), EngineError> {
    let create = purpose == ConnectPurpose::Write;
    Ok(match target {
        DatabaseTarget::Postgres(t) => {
            let (dialect, note) = t.connect(create).await?;
            (Box::new(dialect), note)
        }
        DatabaseTarget::MySql(t) => {
            let (dialect, note) = t.connect(create).await?;
            (Box::new(dialect), note)
        }
        DatabaseTarget::Sqlite(t) => {
            let (dialect, note) = t.connect(create, lock_wait).await?;
            (Box::new(dialect), note)
        }
    })
}
