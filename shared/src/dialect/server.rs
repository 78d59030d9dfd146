//! What PostgreSQL and MySQL share as servers reached over the network: a URL's
//! percent-encoded parts, opening a connection within a time, and creating the
//! database a deploy finds missing.

use std::time::{Duration, Instant};

use sqlx::error::DatabaseError;
use sqlx::{AssertSqlSafe, Connection, Executor};

use super::connect_error::ConnectError;
use crate::error::EngineError;
use crate::outcome::DatabaseInfo;

/// A percent-encoded URL part (user, password, database) as text.
pub(crate) fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The URL's host without IPv6 brackets, if it names one.
pub(crate) fn host(url: &url::Url) -> Option<String> {
    url.host_str()
        .filter(|h| !h.is_empty())
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
}

/// What a server URL says the same way for every server dialect: host, port, user, password
/// and database, percent-decoded.
pub(crate) struct UrlParts {
    pub(crate) host: Option<String>,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) database: String,
}

impl UrlParts {
    pub(crate) fn read(url: &url::Url, default_port: u16) -> UrlParts {
        UrlParts {
            host: host(url),
            port: url.port().unwrap_or(default_port),
            user: decode(url.username()),
            password: url.password().map(decode),
            database: decode(url.path().trim_start_matches('/')),
        }
    }
}

/// `connect_timeout=<seconds>` (0 keeps the default, as libpq does).
fn connect_timeout(value: &str, default: Duration) -> Result<Duration, String> {
    let secs: u64 = value
        .parse()
        .map_err(|_| format!("connect_timeout must be a number of seconds, got `{value}`."))?;
    Ok(if secs > 0 {
        Duration::from_secs(secs)
    } else {
        default
    })
}

/// Prisma's pool and driver settings, which mean nothing for one migration connection.
const POOL_PARAMETERS: [&str; 7] = [
    "connection_limit",
    "pool_timeout",
    "socket_timeout",
    "statement_cache_size",
    "sslaccept",
    "sslidentity",
    "sslpassword",
];

/// A URL parameter every server URL takes: `connect_timeout`, and Prisma's pool settings and
/// the dialect's own `ignored` ones, accepted and ignored. `None`: the dialect's to read.
pub(crate) fn common_parameter(
    key: &str,
    value: &str,
    connect_timeout: &mut Duration,
    ignored: &[&str],
) -> Option<Result<(), String>> {
    if key == "connect_timeout" {
        return Some(self::connect_timeout(value, *connect_timeout).map(|t| *connect_timeout = t));
    }
    (POOL_PARAMETERS.contains(&key) || ignored.contains(&key)).then_some(Ok(()))
}

/// How a server says why it refused a connection.
pub(crate) struct Refusals {
    pub(crate) missing_database: fn(&dyn DatabaseError) -> bool,
    pub(crate) auth: fn(&dyn DatabaseError) -> bool,
}

tokio::task_local! {
    /// When every connection attempt of the running task must have given up (see
    /// [`connecting_by`]).
    static CONNECT_BY: Instant;
}

/// Runs `work` with every connection attempt in it given up at `by` at the latest: a run's
/// deadline (less its margin) bounds the connect timeout as it bounds every other wait.
pub(crate) async fn connecting_by<F: std::future::Future>(
    by: Option<Instant>,
    work: F,
) -> F::Output {
    match by {
        Some(by) => CONNECT_BY.scope(by, work).await,
        None => work.await,
    }
}

/// The connect timeout, never past the running task's [`connecting_by`] instant.
fn capped(timeout: Duration) -> Duration {
    CONNECT_BY
        .try_with(|by| by.saturating_duration_since(Instant::now()))
        .map_or(timeout, |left| timeout.min(left))
}

/// Opens one connection, giving up after `timeout` (or at the run's deadline, if sooner);
/// `describe` says a non-database failure (TLS above all) in words a person can act on. A
/// refusal the server sent (an `options` value it rejects, too many connections …) is the
/// server's own error, not "can't reach".
pub(crate) async fn open<C: Connection>(
    options: &C::Options,
    timeout: Duration,
    refusals: &Refusals,
    describe: impl FnOnce(&sqlx::Error) -> String,
) -> Result<C, ConnectError> {
    let timeout = capped(timeout);
    match tokio::time::timeout(timeout, C::connect_with(options)).await {
        Err(_) => Err(ConnectError::Other(format!(
            "no answer within {} s",
            timeout.as_secs()
        ))),
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(sqlx::Error::Database(e))) if (refusals.missing_database)(e.as_ref()) => {
            Err(ConnectError::MissingDatabase)
        }
        Ok(Err(sqlx::Error::Database(e))) if (refusals.auth)(e.as_ref()) => {
            Err(ConnectError::Auth(e.message().to_string()))
        }
        Ok(Err(sqlx::Error::Database(e))) => Err(ConnectError::Refused(sqlx::Error::Database(e))),
        Ok(Err(e)) => Err(ConnectError::Other(describe(&e))),
    }
}

/// A server, the database a target names on it and how long a connection may take: what a
/// PostgreSQL or MySQL target holds besides its driver options.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    /// `PostgreSQL`, `MySQL`: how the note on a created database names the server.
    pub(crate) label: &'static str,
    pub(crate) default_port: u16,
    pub(crate) info: DatabaseInfo,
    pub(crate) connect_timeout: Duration,
}

impl Server {
    pub(crate) fn connect_error(&self, e: ConnectError) -> EngineError {
        e.into_engine(&self.info, self.default_port)
    }

    /// Opens one connection within the connect timeout (see [`open`]).
    pub(crate) async fn open<C: Connection>(
        &self,
        options: &C::Options,
        refusals: &Refusals,
        describe: impl FnOnce(&sqlx::Error) -> String,
    ) -> Result<C, ConnectError> {
        open(options, self.connect_timeout, refusals, describe).await
    }

    /// Connects with `open`; with `create_database`, a missing database is first created with
    /// `create` (as Prisma's deploy does) and a note says so.
    pub(crate) async fn connect<C>(
        &self,
        create_database: bool,
        open: impl AsyncFn() -> Result<C, ConnectError>,
        create: impl AsyncFn() -> Result<(), EngineError>,
    ) -> Result<(C, Option<String>), EngineError> {
        match open().await {
            Err(ConnectError::MissingDatabase) if create_database => {
                create().await?;
                let note = format!(
                    "{} database {} created at {}:{}",
                    self.label,
                    self.info.name,
                    self.info.host.as_deref().unwrap_or("localhost"),
                    self.info.port.unwrap_or(self.default_port)
                );
                let conn = open().await.map_err(|e| self.connect_error(e))?;
                Ok((conn, Some(note)))
            }
            other => Ok((other.map_err(|e| self.connect_error(e))?, None)),
        }
    }

    /// `CREATE DATABASE` over `admin`; a database another deploy created at the same moment
    /// (`already_exists`) is no error.
    pub(crate) async fn create_database<C: Connection>(
        &self,
        admin: Result<C, ConnectError>,
        quoted_name: String,
        already_exists: fn(&dyn DatabaseError) -> bool,
    ) -> Result<(), EngineError>
    where
        for<'c> &'c mut C: Executor<'c, Database = C::Database>,
    {
        let mut conn = admin.map_err(|e| self.connect_error(e))?;
        let sql = format!("CREATE DATABASE {quoted_name}");
        let result = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
        let _ = conn.close().await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if already_exists(e.as_ref()) => Ok(()),
            Err(e) => Err(EngineError::database("creating the database")(e)),
        }
    }
}
