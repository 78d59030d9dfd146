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

use super::bookkeeping::{self, BookkeepingSql, Conn, Placeholders, SqlBookkeeping};
use super::ca::read_ca_file;
use super::connect_error::{ConnectError, describe_tls};
use super::server::{self, Refusals, Server};
use super::witness::{WAITED_FOR_CLIENT, judge_applied, supervise};
use super::{
    Applied, ApplyError, Commits, Dialect, FailedStatement, Held, Interruption, Migrating,
    MigrationRow, OneByOne, ScriptFailed, ScriptFailure, StatementLimits, Steps, Tables,
    TransactionError, Unsupported, left_open_failure, one_by_one, transaction_control_reason,
};
use crate::error::EngineError;
use crate::outcome::{DatabaseInfo, Execution};
use crate::preflight::Blocker;
use crate::sql::{Statement, split_pg};
use probe::{blocker_from_row, holders_query};

mod errors;
mod probe;
mod read_only;
mod replay;
mod supervisor;
mod target;
mod transaction;
mod worker;

use errors::*;
pub use probe::PgProbe;
use supervisor::PgSupervisor;
pub use target::Target;
use transaction::*;
use worker::Worker;

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

const UNDEFINED_TABLE: &str = "42P01";
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// PostGIS tables that do not make a schema "non-empty" for Prisma.
const IGNORED_TABLES: [&str; 5] = [
    "spatial_ref_sys",
    "geometry_columns",
    "geography_columns",
    "raster_columns",
    "raster_overviews",
];

/// A PostgreSQL target: the supervising session (the lock, the reads, the bookkeeping
/// outside a migration's transaction, the read-back) and, once something is pending, the
/// working session that runs the scripts.
pub struct Postgres {
    /// The supervising session: the first connection.
    conn: PgConnection,
    /// The working session, opened for the first migration to apply.
    worker: Option<Worker>,
    target: Target,
    locked: bool,
    /// Migrations were committed with `synchronous_commit = off` and not flushed since.
    unflushed: bool,
    /// `"schema"."_prisma_migrations"`: the bookkeeping never depends on `search_path`.
    sql: BookkeepingSql,
    /// The server's `standard_conforming_strings` for this session (how `'\'` lexes).
    standard_strings: bool,
    /// The migration being applied (for progress lines).
    current: String,
}

impl Postgres {
    /// Reads how the server lexes strings; the connection check lets the server notice a
    /// killed deploy waiting for the lock (14+).
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
                format!("SET client_connection_check_interval = {CONNECTION_CHECK_INTERVAL_MS}");
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(set))
                .execute(&mut self.conn)
                .await
            {
                tracing::debug!("client_connection_check_interval not set: {e}");
            }
        }
        Ok(())
    }

    fn statements<'s>(&self, script: &'s str) -> Vec<Statement<'s>> {
        split_pg(script, self.standard_strings)
    }

    /// The working session, opened on first use (a deploy with nothing pending never opens
    /// it); the caller gives it back unless the supervisor had to terminate it.
    async fn take_worker(&mut self) -> Result<Worker, EngineError> {
        match self.worker.take() {
            Some(worker) => Ok(worker),
            None => {
                let worker = Worker::open(&self.target, self.sql.table().to_owned()).await?;
                tracing::debug!(pid = worker.pid, "working session opened");
                Ok(worker)
            }
        }
    }

    /// The migration's row as the supervisor reads it (never the working session's view).
    async fn read_back(&mut self, id: &str) -> Result<Option<MigrationRow>, EngineError> {
        bookkeeping::read_row::<_, i32>(self, id).await
    }

    /// After a failed `CREATE INDEX CONCURRENTLY`: the invalid indexes it left, and how to
    /// remove each.
    async fn invalid_indexes(&mut self) -> Vec<String> {
        sqlx::query_scalar::<_, String>(
            "SELECT format('DROP INDEX CONCURRENTLY %I.%I;', n.nspname, c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid AND n.nspname = $1 ORDER BY c.relname",
        )
        .bind(&self.target.schema)
        .fetch_all(&mut self.conn)
        .await
        .unwrap_or_default()
    }

    /// One migration in one transaction on the working session, supervised; what it left is
    /// then read by the supervisor.
    async fn apply_transaction(&mut self, m: &Migrating<'_>) -> Result<Applied, ApplyError> {
        let statements = self.statements(m.script);
        let leads = leads_with_set_transaction(&statements);
        let mut w = self.take_worker().await.map_err(ApplyError::Bookkeeping)?;
        let pid = i64::from(w.pid);
        let started = std::time::Instant::now();
        let (result, watched) = supervise(
            w.apply_in_transaction(m, leads),
            &mut PgSupervisor(&mut self.conn),
            pid,
            m.limits.deadline,
            &m.row.migration_name,
        )
        .await;
        if !watched.terminated {
            self.worker = Some(w);
        }
        // Whatever the working session committed, it committed asynchronously (our
        // `synchronous_commit = off` also covers a COMMIT the script made itself).
        self.unflushed = true;
        let row = m.row;
        let execution = Execution::Transaction;
        match result {
            Ok(Finished::Done) => Ok(Applied {
                execution,
                warnings: Vec::new(),
            }),
            Ok(Finished::EndedByScript) => {
                // Every statement ran and is committed (the part after the script's COMMIT
                // in an implicit transaction of its own): recorded as applied, as Prisma does,
                // and said not to be atomic.
                let read = self
                    .read_back(&row.id)
                    .await
                    .map_err(ApplyError::Bookkeeping)?;
                if read.is_none() {
                    self.insert_started_row(row)
                        .await
                        .map_err(ApplyError::Bookkeeping)?;
                }
                self.mark_finished(&row.id, m.clock.now())
                    .await
                    .map_err(|e| ApplyError::Bookkeeping(super::apply::broken(e, row, false)))?;
                Ok(Applied {
                    execution,
                    warnings: vec![format!(
                        "Migration `{}` ended the migrator's transaction itself (a COMMIT or ROLLBACK inside the script): all its statements ran, but not as one transaction.",
                        row.migration_name
                    )],
                })
            }
            Err(TransactionError::Script(mut failure)) => {
                // What stayed is what the supervisor reads, not what the working session
                // believes.
                let read = self
                    .read_back(&row.id)
                    .await
                    .map_err(ApplyError::Bookkeeping)?;
                if watched.waited_for_client {
                    // Not a session lost by accident: the migration's own statement, recorded.
                    failure.note = Some(WAITED_FOR_CLIENT.into());
                    failure.interruption = None;
                }
                if watched.cancelled {
                    if read.as_ref().is_some_and(|r| r.finished_at.is_some()) {
                        // The cancel came after the COMMIT: the migration is applied.
                        return Ok(Applied {
                            execution,
                            warnings: Vec::new(),
                        });
                    }
                    failure.interruption = Some(Interruption::Deadline);
                }
                if read.is_some() {
                    // The script committed our transaction itself (a COMMIT the splitter did
                    // not see as one): what ran before it stays, as it would with Prisma.
                    failure.row_recorded = true;
                    failure.rolled_back = false;
                    failure.note.get_or_insert_with(|| ENDED_NOTE.into());
                } else if failure.note.as_deref() == Some(CHAINED_NOTE) && !leads {
                    // Our row went with the first transaction: it was rolled back too.
                    failure.rolled_back = true;
                } else if failure.rolled_back
                    && failure.statement.is_none()
                    && failure.note.is_none()
                    && failure.interruption.is_none()
                    && failure.code.is_some()
                    && !watched.cancelled
                    && !watched.terminated
                {
                    // The server said no position, and no row stayed: the transaction rolled
                    // back, so the statements may run again to find which one fails.
                    self.name_failed_statement(m, &mut failure, started.elapsed())
                        .await;
                }
                Err(ApplyError::Script(Box::new(ScriptFailed {
                    execution,
                    failure,
                })))
            }
            Err(TransactionError::Bookkeeping(e)) => {
                Err(ApplyError::Bookkeeping(super::apply::broken(e, row, true)))
            }
        }
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

    async fn refuse_read_only(&mut self) -> Result<(), EngineError> {
        read_only::refuse(&mut self.conn).await
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
        match leaves_transaction(&self.statements(script)) {
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
        self.current = m.row.migration_name.clone();
        let applied = match self.execution(m.script) {
            Execution::Transaction => self.apply_transaction(m).await?,
            Execution::StatementByStatement { reason } => {
                super::by_statement(self, m, reason).await?
            }
        };
        // The witness: the row as the supervisor reads it is what the outcome reports.
        let read = self
            .read_back(&m.row.id)
            .await
            .map_err(ApplyError::Bookkeeping)?;
        judge_applied(read, m.row).map_err(ApplyError::Bookkeeping)?;
        Ok(applied)
    }

    async fn flush(&mut self) -> Result<(), EngineError> {
        if self.unflushed {
            // A transaction holding an xid writes a commit record; committing it synchronously
            // flushes the WAL up to here, which holds every earlier asynchronous commit (of
            // any session: the working session's commits too).
            sqlx::raw_sql("SELECT txid_current()")
                .execute(&mut self.conn)
                .await
                .map_err(EngineError::database("flushing the commits to disk"))?;
            self.unflushed = false;
        }
        Ok(())
    }

    async fn close(self: Box<Self>) {
        let this = *self;
        if let Some(worker) = this.worker {
            let _ = worker.conn.close().await;
        }
        let _ = this.conn.close().await;
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
        let mut w = match self.take_worker().await {
            Ok(w) => w,
            Err(e) => {
                return Err(ScriptFailure {
                    message: e.to_string(),
                    ..ScriptFailure::default()
                });
            }
        };
        let pid = i64::from(w.pid);
        let (mut result, watched) = supervise(
            w.run_each_statement(script, limits),
            &mut PgSupervisor(&mut self.conn),
            pid,
            limits.deadline,
            &self.current,
        )
        .await;
        if !watched.terminated {
            self.worker = Some(w);
        }
        if let Err(failure) = &mut result {
            if watched.cancelled {
                failure.interruption = Some(Interruption::Deadline);
            }
            if watched.waited_for_client {
                // Not a session lost by accident: the migration's own statement, recorded.
                failure.note = Some(WAITED_FOR_CLIENT.into());
                failure.interruption = None;
            }
            let concurrently = failure
                .statement
                .as_ref()
                .is_some_and(|s| contains_word(&s.text, "CONCURRENTLY"));
            if concurrently {
                let drops = self.invalid_indexes().await;
                if !drops.is_empty() {
                    let note = format!(
                        "The failed statement left an invalid index behind (PostgreSQL keeps it after a failed CONCURRENTLY build); remove it before deploying again: {}",
                        drops.join(" ")
                    );
                    failure.note = Some(match failure.note.take() {
                        Some(n) => format!("{n}\n{note}"),
                        None => note,
                    });
                }
            }
        }
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
