//! PostgreSQL: Prisma's bookkeeping, `pg_advisory_lock(72707369)`, and each migration in one
//! transaction with its `_prisma_migrations` row (unless it holds a statement that cannot run
//! in a transaction block).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgDatabaseError, PgErrorPosition, PgSeverity, PgSslMode,
};
use sqlx::{AssertSqlSafe, Connection, Row};
use url::Url;

use super::bookkeeping::{self, BookkeepingSql, Conn, Placeholders, SqlBookkeeping, table_gone};
use super::ca::read_ca_file;
use super::connect_error::{ConnectError, describe_tls};
use super::server::{self, Refusals, Server};
use super::{
    Applied, ApplyError, Commits, Dialect, FailedStatement, Held, Interruption, Migrating,
    MigrationRow, OneByOne, ScriptFailure, StatementLimits, Steps, Tables, TransactionError,
    Unsupported, left_open_failure, one_by_one, transaction_control_reason,
};
use crate::error::EngineError;
use crate::outcome::{DatabaseInfo, Execution};
use crate::preflight::Blocker;
use crate::sql::{Statement, split_pg};
use probe::{blocker_from_row, holders_query};

mod errors;
mod probe;
mod target;
mod transaction;

use errors::*;
pub use probe::PgProbe;
pub use target::Target;
use transaction::*;

/// Prisma's advisory lock key (`72707369`, "prisma" on a phone keypad, more or less).
pub const ADVISORY_LOCK_KEY: i64 = 72707369;

/// Prisma's DDL for PostgreSQL, byte for byte (`flavour/postgres.rs`).
pub const CREATE_MIGRATIONS_TABLE: &str = r#"CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);"#;

/// How often the server checks that our connection is still there while a statement runs
/// (PostgreSQL 14+): a killed deploy's backend is cancelled within this, freeing the lock.
const CONNECTION_CHECK_INTERVAL_MS: u32 = 2000;

/// SQLSTATEs our own finishing block raises (class `MG` is not used by PostgreSQL).
const ENDED_BY_SCRIPT: &str = "MGR01";
const LEFT_OPEN_BY_SCRIPT: &str = "MGR02";
const ROW_GONE: &str = "MGR03";
const UNDEFINED_TABLE: &str = "42P01";
const QUERY_CANCELED: &str = "57014";
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// PostGIS tables that do not make a schema "non-empty" for Prisma.
const IGNORED_TABLES: [&str; 5] = [
    "spatial_ref_sys",
    "geometry_columns",
    "geography_columns",
    "raster_columns",
    "raster_overviews",
];

/// One PostgreSQL session.
pub struct Postgres {
    conn: PgConnection,
    target: Target,
    locked: bool,
    /// Migrations were committed with `synchronous_commit = off` and not flushed since.
    unflushed: bool,
    /// `"schema"."_prisma_migrations"`: the bookkeeping never depends on `search_path`.
    sql: BookkeepingSql,
    /// The server's `standard_conforming_strings` for this session (how `'\'` lexes).
    standard_strings: bool,
    /// Our session settings, applied at connect and after every `RESET ALL`.
    session_defaults: String,
    /// What the last apply found worth telling (see [`Dialect::take_warnings`]).
    warnings: Vec<String>,
}

impl Postgres {
    /// Reads how the server lexes strings and sets our session defaults: the connection
    /// check lets the server cancel the statement of a deploy that was killed (14+).
    async fn setup_session(&mut self) -> Result<(), EngineError> {
        let (standard, checks): (bool, bool) = sqlx::query_as(
            "SELECT current_setting('standard_conforming_strings') = 'on', current_setting('server_version_num')::int >= 140000",
        )
        .fetch_one(&mut self.conn)
        .await
        .map_err(EngineError::database("reading the session settings"))?;
        self.standard_strings = standard;
        if checks {
            let set =
                format!("SET client_connection_check_interval = {CONNECTION_CHECK_INTERVAL_MS}; ");
            match sqlx::raw_sql(AssertSqlSafe(set.clone()))
                .execute(&mut self.conn)
                .await
            {
                Ok(_) => self.session_defaults = set,
                // A server (or a compatible one) without it: killed deploys then keep their
                // backend until its statement ends, as with Prisma.
                Err(e) => tracing::debug!("client_connection_check_interval not set: {e}"),
            }
        }
        Ok(())
    }

    /// `RESET ALL` and our defaults: what one migration's script set for the session
    /// (`statement_timeout`, `search_path`, `role` …) does not reach the next migration.
    fn reset_sql(&self) -> String {
        format!("RESET ALL; {}", self.session_defaults)
    }

    /// Ends a failed transaction and resets the session; the connection may already be
    /// gone, which ends it too.
    async fn rollback(&mut self) {
        let sql = format!("ROLLBACK; {}", self.reset_sql());
        let _ = sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await;
    }

    fn statements<'s>(&self, script: &'s str) -> Vec<Statement<'s>> {
        split_pg(script, self.standard_strings)
    }

    /// Whether a transaction block is open: `SAVEPOINT` is refused outside one (25P01).
    async fn transaction_open(&mut self) -> bool {
        sqlx::raw_sql("SAVEPOINT migrator_probe")
            .execute(&mut self.conn)
            .await
            .is_ok()
    }

    /// Whether the row with this id is committed (after a rollback: the script committed it).
    async fn row_committed(&mut self, id: &str) -> bool {
        let sql = format!(
            "SELECT EXISTS(SELECT 1 FROM {} WHERE id = $1)",
            self.sql.table()
        );
        sqlx::query_scalar::<_, bool>(AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut self.conn)
            .await
            .unwrap_or(false)
    }
}

#[async_trait]
impl OneByOne for Postgres {
    fn failure(&self, error: &sqlx::Error, text: &str, limits: StatementLimits) -> ScriptFailure {
        script_failure(error, text, limits)
    }

    /// A script that opened its own transaction leaves it aborted.
    async fn end_own_transaction(&mut self) {
        self.rollback().await;
    }

    async fn left_open(&mut self, _commits: &Commits) -> bool {
        let open = self.transaction_open().await;
        if open {
            self.rollback().await;
        }
        open
    }
}

#[async_trait]
impl Dialect for Postgres {
    fn provider(&self) -> &'static str {
        "postgresql"
    }

    fn info(&self) -> DatabaseInfo {
        self.target.server.info.clone()
    }

    async fn lock(&mut self, wait: Duration) -> Result<(), EngineError> {
        let statement = format!("SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})");
        let timeout = || EngineError::LockTimeout {
            lock: "postgres advisory",
            statement: statement.clone(),
            timeout: wait,
        };
        // The server enforces the wait (lock_timeout also covers advisory locks), so a
        // timed-out wait does not linger on the server like Prisma's client-side timeout.
        // The three statements run as one implicit transaction: on a timeout the SET is undone.
        let millis = wait.as_millis().max(1);
        let sql = format!(
            "SET lock_timeout = '{millis}ms'; SELECT pg_advisory_lock({ADVISORY_LOCK_KEY}); RESET lock_timeout;"
        );
        let attempt = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut self.conn);
        match tokio::time::timeout(wait + Duration::from_secs(5), attempt).await {
            Err(_) => Err(timeout()),
            Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("55P03") => {
                Err(timeout())
            }
            Ok(Err(e)) => Err(EngineError::database("taking the advisory lock")(e)),
            Ok(Ok(_)) => {
                self.locked = true;
                Ok(())
            }
        }
    }

    async fn lock_holders(&mut self, held: Held) -> Result<Vec<Blocker>, EngineError> {
        // Read-only and bounded by the server, like preflight's probes.
        sqlx::raw_sql(
            "BEGIN READ ONLY; SET LOCAL statement_timeout = '2000ms'; SET LOCAL lock_timeout = '1000ms'",
        )
        .execute(&mut self.conn)
        .await
        .map_err(EngineError::database("asking who holds the lock"))?;
        let rows = match held {
            Held::MigrationLock => {
                sqlx::query(AssertSqlSafe(holders_query("false")))
                    .fetch_all(&mut self.conn)
                    .await
            }
            Held::Tables => {
                let in_schema = "l.relation IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1)";
                sqlx::query(AssertSqlSafe(holders_query(in_schema)))
                    .bind(&self.target.schema)
                    .fetch_all(&mut self.conn)
                    .await
            }
        };
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        let rows = rows.map_err(EngineError::database("asking who holds the lock"))?;
        Ok(rows.iter().map(blocker_from_row).collect())
    }

    async fn unlock(&mut self) -> Result<(), EngineError> {
        if self.locked {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(ADVISORY_LOCK_KEY)
                .execute(&mut self.conn)
                .await
                .map_err(EngineError::database("releasing the advisory lock"))?;
            self.locked = false;
        }
        Ok(())
    }

    async fn prepare_namespace(&mut self) -> Result<(), EngineError> {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS(SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(&self.target.schema)
                .fetch_one(&mut self.conn)
                .await
                .map_err(EngineError::database("looking for the schema"))?;
        if !exists {
            let sql = format!("CREATE SCHEMA {}", quote_ident(&self.target.schema));
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut self.conn)
                .await
                .map_err(EngineError::database("creating the schema"))?;
        }
        Ok(())
    }

    async fn tables(&mut self) -> Result<Tables, EngineError> {
        // The usual case is one index lookup; the schema's tables are listed (for P3005) only
        // when `_prisma_migrations` is missing.
        let has_table: bool = sqlx::query_scalar(
            "SELECT EXISTS(SELECT 1 FROM pg_class AS tbl INNER JOIN pg_namespace AS namespace ON namespace.oid = tbl.relnamespace WHERE tbl.relname = '_prisma_migrations' AND tbl.relkind = 'r' AND namespace.nspname = $1)",
        )
        .bind(&self.target.schema)
        .fetch_one(&mut self.conn)
        .await
        .map_err(EngineError::database("looking for _prisma_migrations"))?;
        if has_table {
            return Ok(Tables {
                has_migrations_table: true,
                others: Vec::new(),
            });
        }
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT tbl.relname::text FROM pg_class AS tbl INNER JOIN pg_namespace AS namespace ON namespace.oid = tbl.relnamespace WHERE tbl.relkind = 'r' AND namespace.nspname = $1 ORDER BY tbl.relname",
        )
        .bind(&self.target.schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(EngineError::database("listing tables"))?;
        // PostGIS's tables do not make a schema "non-empty".
        Ok(Tables::classify(names, &IGNORED_TABLES))
    }

    async fn create_migrations_table(&mut self) -> Result<(), EngineError> {
        let ddl = CREATE_MIGRATIONS_TABLE.replacen("_prisma_migrations", self.sql.table(), 1);
        bookkeeping::create_table(self, ddl).await
    }

    async fn rows(&mut self) -> Result<Vec<MigrationRow>, EngineError> {
        bookkeeping::read_rows::<_, i32>(self).await
    }

    fn steps(&mut self) -> &mut dyn Steps {
        self
    }

    fn execution(&self, script: &str) -> Execution {
        match self.leaves_transaction(script) {
            None => Execution::Transaction,
            Some(Leaves::Statement(reason)) => Execution::StatementByStatement { reason },
            Some(Leaves::OwnTransactions(reason)) => Execution::StatementByStatement {
                reason: format!(
                    "{reason}; they are committed where its own COMMITs are, as Prisma's single-message execution commits them"
                ),
            },
        }
    }

    fn unsupported(&self, script: &str) -> Option<Unsupported> {
        self.statements(script).iter().find_map(|statement| {
            let text = statement.trimmed();
            let words = statement.keywords(1);
            if words.first().map(String::as_str) != Some("COPY") {
                return None;
            }
            let reason = if contains_word(text, "STDIN") {
                "which waits for data the client sends after the statement; the migrator has none to send and the deploy would hang holding the migration lock"
            } else if contains_word(text, "STDOUT") {
                "which streams rows to the client, and a migration has nowhere to put them"
            } else {
                return None;
            };
            Some(Unsupported {
                line: statement.line,
                statement: text.chars().take(200).collect(),
                reason: reason.into(),
            })
        })
    }

    async fn apply(&mut self, m: &Migrating<'_>) -> Result<Applied, ApplyError> {
        match self.execution(m.script) {
            Execution::Transaction => {
                let result = self.apply_in_transaction(m).await;
                super::in_transaction(result, m.row, std::mem::take(&mut self.warnings))
            }
            Execution::StatementByStatement { reason } => {
                super::by_statement(self, m, reason).await
            }
        }
    }

    async fn flush(&mut self) -> Result<(), EngineError> {
        if self.unflushed {
            // A transaction holding an xid writes a commit record; committing it synchronously
            // flushes the WAL up to here, which holds every earlier asynchronous commit.
            sqlx::raw_sql("SELECT txid_current()")
                .execute(&mut self.conn)
                .await
                .map_err(EngineError::database("flushing the commits to disk"))?;
            self.unflushed = false;
        }
        Ok(())
    }

    async fn close(self: Box<Self>) {
        let _ = self.conn.close().await;
    }
}

#[async_trait]
impl SqlBookkeeping for Postgres {
    type Db = sqlx::Postgres;
    type Time = DateTime<Utc>;
    const REMOVED_ROW: &'static str = "the script deleted it or emptied the table";
    const REMOVED_TABLE: &'static str = "the script dropped, renamed or moved it";

    fn bookkeeping(&mut self) -> (&mut Conn<Self>, &BookkeepingSql) {
        (&mut self.conn, &self.sql)
    }

    fn table_is_missing(error: &dyn sqlx::error::DatabaseError) -> bool {
        error.code().as_deref() == Some(UNDEFINED_TABLE)
    }

    async fn run_each_statement(
        &mut self,
        script: &str,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure> {
        let set = set_limits("SET", limits);
        if !set.is_empty()
            && let Err(e) = sqlx::raw_sql(AssertSqlSafe(set))
                .execute(&mut self.conn)
                .await
        {
            return Err(script_failure(&e, script, limits));
        }
        let result = match self.leaves_transaction(script) {
            Some(Leaves::OwnTransactions(_)) => self.run_in_blocks(script, limits).await,
            _ => {
                let statements = self.statements(script);
                let statements = statements.into_iter().filter(|s| !s.is_blank()).collect();
                one_by_one(self, statements, Commits::new(false), limits).await
            }
        };
        // Our limits off, and whatever the script set for the session with them.
        let _ = sqlx::raw_sql(AssertSqlSafe(self.reset_sql()))
            .execute(&mut self.conn)
            .await;
        result
    }
}

/// `"name"` with embedded quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
