//! MySQL and MariaDB: Prisma's bookkeeping, `GET_LOCK('prisma_migrate', …)`, and each migration
//! run statement by statement, because MySQL commits DDL implicitly and a migration cannot be
//! atomic there. A failure names the failing statement and the ones already committed.

use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDateTime;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlSslMode};
use sqlx::{AssertSqlSafe, Connection};
use url::Url;

use super::bookkeeping::{self, BookkeepingSql, Conn, Placeholders, SqlBookkeeping};
use super::ca::read_ca_file;
use super::connect_error::{ConnectError, describe_tls};
use super::server::{self, Refusals, Server};
use super::witness::{judge_applied, supervise};
use super::{
    Applied, ApplyError, Commits, Dialect, Held, Interruption, Migrating, MigrationRow, OneByOne,
    ScriptFailure, StatementLimits, Steps, Tables, one_by_one,
};
use crate::error::EngineError;
use crate::outcome::{DatabaseInfo, Execution};
use crate::preflight::Blocker;
use crate::sql::without_literals;

mod errors;
mod probe;
mod read_only;
mod supervisor;
mod target;
mod worker;

use errors::*;
pub use probe::MyProbe;
use supervisor::MySupervisor;
pub use target::Target;
use worker::Worker;

/// Prisma's lock name (server-wide on MySQL, not per database).
pub const LOCK_NAME: &str = "prisma_migrate";

/// Prisma's DDL for MySQL, byte for byte (`flavour/mysql.rs`).
pub const CREATE_MIGRATIONS_TABLE: &str = r#"CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             DATETIME(3),
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          DATETIME(3),
    started_at              DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    applied_steps_count     INTEGER UNSIGNED NOT NULL DEFAULT 0
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"#;

/// Why every MySQL migration runs statement by statement.
const BY_STATEMENT: &str = "MySQL commits DDL implicitly; statements run and commit one by one";

/// Databases Prisma refuses to migrate (P3004).
const SYSTEM_DATABASES: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// MySQL's `ER_EMPTY_QUERY`: what Prisma's MySQL connector gets for an empty script.
pub const ER_EMPTY_QUERY: u16 = 1065;
const ER_BAD_DB_ERROR: u16 = 1049;
const ER_DB_CREATE_EXISTS: u16 = 1007;
const ER_NO_SUCH_TABLE: u16 = 1146;
/// A lock wait (row or metadata lock) that hit `lock_wait_timeout` / `innodb_lock_wait_timeout`.
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
/// MariaDB's `max_statement_time` exceeded (preflight's probes are bounded by it).
const ER_STATEMENT_TIMEOUT: u16 = 1969;
/// MySQL's `max_execution_time` exceeded.
const ER_QUERY_TIMEOUT: u16 = 3024;
const ER_ACCESS_DENIED_ERROR: u16 = 1045;
const ER_DBACCESS_DENIED_ERROR: u16 = 1044;
/// MariaDB's access denied for a user without a password / unknown plugin user.
const ER_ACCESS_DENIED_NO_PASSWORD_ERROR: u16 = 1698;

/// A MySQL / MariaDB target: the supervising session (`GET_LOCK`, the reads, the
/// bookkeeping, the read-back) and, once something is pending, the working session that runs
/// the scripts.
pub struct MySql {
    /// The supervising session: the first connection.
    conn: MySqlConnection,
    /// The working session, opened for the first migration to apply.
    worker: Option<Worker>,
    target: Target,
    locked: bool,
    mariadb: bool,
    /// `` `database`.`_prisma_migrations` ``: a script's `USE` does not move the bookkeeping.
    sql: BookkeepingSql,
    /// The migration being applied (for progress lines).
    current: String,
}

impl MySql {
    /// The working session, opened on first use (a deploy with nothing pending never opens
    /// it); the caller gives it back unless it had to be ended.
    async fn take_worker(&mut self) -> Result<Worker, EngineError> {
        match self.worker.take() {
            Some(worker) => Ok(worker),
            None => Worker::open(&self.target, self.mariadb).await,
        }
    }
}

#[async_trait]
impl Dialect for MySql {
    fn provider(&self) -> &'static str {
        "mysql"
    }

    fn info(&self) -> DatabaseInfo {
        self.target.server.info.clone()
    }

    async fn lock(&mut self, wait: Duration) -> Result<(), EngineError> {
        // GET_LOCK takes whole seconds on MySQL; round up so a wait is never shortened.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let statement = format!("SELECT GET_LOCK('{LOCK_NAME}', {seconds})");
        let timeout = || EngineError::LockTimeout {
            lock: "mysql",
            statement: statement.clone(),
            timeout: wait,
        };
        // The server enforces the wait; unlike Prisma, a lock not obtained is an error.
        let attempt = sqlx::query_scalar::<_, Option<i64>>(AssertSqlSafe(statement.clone()))
            .fetch_one(&mut self.conn);
        match tokio::time::timeout(wait + Duration::from_secs(5), attempt).await {
            Err(_) | Ok(Ok(Some(0))) => Err(timeout()),
            Ok(Ok(Some(_))) => {
                self.locked = true;
                Ok(())
            }
            Ok(Ok(None)) => Err(EngineError::LockFailed {
                lock: "mysql",
                reason: format!(
                    "{statement} returned NULL: the server could not take the lock (out of memory, or the thread was killed)"
                ),
            }),
            Ok(Err(e)) => Err(EngineError::database("taking the GET_LOCK lock")(e)),
        }
    }

    /// The session holding `GET_LOCK('prisma_migrate')`; who holds a table's metadata lock is
    /// not asked (performance_schema may be off), so that answer is nobody.
    async fn lock_holders(&mut self, held: Held) -> Result<Vec<Blocker>, EngineError> {
        if held != Held::MigrationLock {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT CAST(ID AS SIGNED), CAST(USER AS CHAR), CAST(COMMAND AS CHAR), CAST(TIME AS SIGNED), CAST(INFO AS CHAR) \
             FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK('{LOCK_NAME}')"
        );
        let query = sqlx::query_as::<
            _,
            (
                i64,
                Option<String>,
                Option<String>,
                Option<i64>,
                Option<String>,
            ),
        >(AssertSqlSafe(sql))
        .fetch_all(&mut self.conn);
        let rows = match tokio::time::timeout(Duration::from_secs(5), query).await {
            Ok(rows) => rows.map_err(EngineError::database("asking who holds the lock"))?,
            Err(_) => return Ok(Vec::new()),
        };
        Ok(rows
            .into_iter()
            .map(|(id, user, command, time, info)| Blocker {
                pid: i32::try_from(id).unwrap_or(i32::MAX),
                holds: "migration lock".into(),
                mode: "GET_LOCK".into(),
                application_name: None,
                user,
                state: command.map(|c| match time {
                    Some(t) => format!("{c} ({t} s)"),
                    None => c,
                }),
                transaction_age_s: None,
                query: info.map(|q| without_literals(&q)),
            })
            .collect())
    }

    async fn refuse_read_only(&mut self) -> Result<(), EngineError> {
        read_only::refuse(&mut self.conn).await
    }

    async fn unlock(&mut self) -> Result<(), EngineError> {
        if self.locked {
            sqlx::raw_sql(AssertSqlSafe(format!("SELECT RELEASE_LOCK('{LOCK_NAME}')")))
                .execute(&mut self.conn)
                .await
                .map_err(EngineError::database("releasing the GET_LOCK lock"))?;
            self.locked = false;
        }
        Ok(())
    }

    async fn prepare_namespace(&mut self) -> Result<(), EngineError> {
        // The database is the namespace; `connect` creates it when deploy needs it.
        Ok(())
    }

    async fn tables(&mut self) -> Result<Tables, EngineError> {
        // Prisma's notion of a table: `BASE TABLE` in the current database (views do not count).
        let names: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT BINARY table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY BINARY table_name",
        )
        .bind(&self.target.server.info.name)
        .fetch_all(&mut self.conn)
        .await
        .map_err(EngineError::database("listing tables"))?;
        let names = names
            .into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect();
        Ok(Tables::classify(names, &[]))
    }

    async fn create_migrations_table(&mut self) -> Result<(), EngineError> {
        let ddl = CREATE_MIGRATIONS_TABLE.replacen("_prisma_migrations", self.sql.table(), 1);
        bookkeeping::create_table(self, ddl).await
    }

    async fn rows(&mut self) -> Result<Vec<MigrationRow>, EngineError> {
        bookkeeping::read_rows::<_, u32>(self).await
    }

    fn steps(&mut self) -> &mut dyn Steps {
        self
    }

    fn always_by_statement(&self) -> bool {
        true
    }

    fn execution(&self, _script: &str) -> Execution {
        Execution::StatementByStatement {
            reason: BY_STATEMENT.into(),
        }
    }

    async fn apply(&mut self, m: &Migrating<'_>) -> Result<Applied, ApplyError> {
        // DDL commits implicitly: a migration cannot be one transaction here.
        self.current = m.row.migration_name.clone();
        let applied = super::by_statement(self, m, BY_STATEMENT.into()).await?;
        // The witness: the row as the supervisor reads it is what the outcome reports.
        let read = bookkeeping::read_row::<_, u32>(self, &m.row.id)
            .await
            .map_err(ApplyError::Bookkeeping)?;
        judge_applied(read, m.row).map_err(ApplyError::Bookkeeping)?;
        Ok(applied)
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
impl SqlBookkeeping for MySql {
    type Db = sqlx::MySql;
    type Time = NaiveDateTime;
    const REMOVED_ROW: &'static str = "the script deleted it or emptied the table";
    const REMOVED_TABLE: &'static str = "the script dropped or renamed it";

    fn bookkeeping(&mut self) -> (&mut Conn<Self>, &BookkeepingSql) {
        (&mut self.conn, &self.sql)
    }

    fn table_is_missing(error: &dyn sqlx::error::DatabaseError) -> bool {
        error_number(error) == Some(ER_NO_SUCH_TABLE)
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
        let id = i64::try_from(w.id).unwrap_or(i64::MAX);
        let (mut result, watched) = supervise(
            w.run_each_statement(script, limits),
            &mut MySupervisor(&mut self.conn),
            id,
            limits.deadline,
            &self.current,
        )
        .await;
        if watched.cancelled
            && let Err(failure) = &mut result
        {
            failure.interruption = Some(Interruption::Deadline);
        }
        if watched.terminated {
            return result;
        }
        if let Some(xa) = w.xa_state().await {
            // The session cannot be used again; closing it keeps a prepared XA transaction.
            let _ = w.conn.close().await;
            return Err(worker::xa_failure(result, xa));
        }
        w.reset().await;
        self.worker = Some(w);
        result
    }
}

fn error_number(e: &(dyn sqlx::error::DatabaseError + 'static)) -> Option<u16> {
    e.try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number)
}

/// `` `name` `` with embedded backticks doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_follow_autocommit_transactions_and_implicit_commits() {
        let mut c = Commits::new(true);
        let w = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        c.ran(1, &w("CREATE TABLE"));
        c.ran(2, &w("START TRANSACTION"));
        c.ran(3, &w("INSERT INTO"));
        assert_eq!(c.committed, [1, 2]);
        c.ran(4, &w("COMMIT"));
        c.ran(5, &w("BEGIN"));
        c.ran(6, &w("UPDATE T"));
        c.ran(7, &w("ROLLBACK"));
        c.ran(8, &w("BEGIN"));
        c.ran(9, &w("DELETE FROM"));
        c.ran(10, &w("ALTER TABLE"));
        c.ran(11, &w("INSERT INTO"));
        assert_eq!(c.committed, [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
    }
}
