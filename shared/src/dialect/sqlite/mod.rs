//! SQLite: the embedded default (demo, local use). Prisma's DDL, epoch-millisecond
//! timestamps, `locking_mode=EXCLUSIVE`; each migration in one transaction with its row,
//! unless it holds a statement SQLite ignores or refuses inside one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::bookkeeping::{self, BookkeepingSql, Conn, Placeholders, SqlBookkeeping};
use super::witness::judge_applied;
use super::{
    Applied, ApplyError, Commits, Dialect, Interruption, Migrating, MigrationRow, OneByOne,
    ScriptFailure, StatementLimits, Steps, Tables, TransactionError, one_by_one,
    transaction_control_reason,
};
use crate::error::EngineError;
use crate::outcome::{DatabaseInfo, Execution};
use crate::sql::{Flavor, split};

mod deadline;
mod replay;
mod table;

use deadline::Watch;

/// Prisma's DDL for SQLite, byte for byte (`flavour/sqlite.rs`).
pub const CREATE_MIGRATIONS_TABLE: &str = r#"CREATE TABLE "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
);"#;

/// Timestamps may be Prisma's integers (epoch ms) or text (the column default, other tools).
const SELECT_ROWS: &str = "SELECT id, checksum, migration_name, logs, applied_steps_count, \
    CASE WHEN typeof(finished_at) IN ('integer', 'real') THEN CAST(finished_at AS INTEGER) END AS finished_at_ms, \
    CASE WHEN typeof(finished_at) = 'text' THEN finished_at END AS finished_at_text, \
    CASE WHEN typeof(rolled_back_at) IN ('integer', 'real') THEN CAST(rolled_back_at AS INTEGER) END AS rolled_back_at_ms, \
    CASE WHEN typeof(rolled_back_at) = 'text' THEN rolled_back_at END AS rolled_back_at_text, \
    CASE WHEN typeof(started_at) IN ('integer', 'real') THEN CAST(started_at AS INTEGER) END AS started_at_ms, \
    CASE WHEN typeof(started_at) = 'text' THEN started_at END AS started_at_text \
    FROM main.`_prisma_migrations` ORDER BY started_at ASC";

/// A SQLite database file, from `file:`, `sqlite:` or `sqlite://` URLs.
#[derive(Debug, Clone)]
pub struct Target {
    path: PathBuf,
    info: DatabaseInfo,
}

impl Target {
    /// `file:./dev.db`, `sqlite:dev.db`, `sqlite:///abs/dev.db`; query parameters are ignored
    /// (Prisma's are pool settings). Relative paths are relative to the working directory
    /// (Prisma resolves them against the schema's folder: see the README).
    pub fn from_url(url: &str) -> Result<Target, EngineError> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .or_else(|| url.strip_prefix("file://"))
            .or_else(|| url.strip_prefix("file:"))
            .ok_or_else(|| EngineError::InvalidDatabaseUrl {
                reason: "A SQLite URL starts with `file:` or `sqlite:`.".into(),
            })?;
        let path = rest.split('?').next().unwrap_or_default();
        let path = percent_encoding::percent_decode_str(path)
            .decode_utf8_lossy()
            .into_owned();
        if path.is_empty() {
            return Err(EngineError::InvalidDatabaseUrl {
                reason: "The SQLite URL names no file.".into(),
            });
        }
        let info = DatabaseInfo {
            engine: "sqlite".into(),
            host: None,
            port: None,
            name: path.clone(),
            schema: None,
        };
        Ok(Target {
            path: PathBuf::from(path),
            info,
        })
    }

    pub fn info(&self) -> &DatabaseInfo {
        &self.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file; with `create`, a missing file is created (as Prisma's deploy does).
    /// Without it, a missing file reads as an empty database and nothing is created.
    pub async fn connect(
        &self,
        create: bool,
        lock_wait: Duration,
    ) -> Result<(Sqlite, Option<String>), EngineError> {
        if self.path.is_dir() {
            return Err(EngineError::SqliteFile {
                path: self.path.display().to_string(),
                reason: "it is a directory, not a database file".into(),
            });
        }
        let exists = self.path.exists();
        let options = if exists || create {
            SqliteConnectOptions::new()
                .filename(&self.path)
                .create_if_missing(create)
        } else {
            SqliteConnectOptions::new().in_memory(true)
        }
        .busy_timeout(lock_wait);
        let conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| EngineError::SqliteFile {
                path: self.path.display().to_string(),
                reason: match &e {
                    sqlx::Error::Database(db) => db.message().to_string(),
                    other => other.to_string(),
                },
            })?;
        let created =
            (!exists && create).then(|| format!("SQLite database {} created", self.path.display()));
        Ok((
            Sqlite {
                conn,
                target: self.clone(),
                locked: false,
                // `main.`: a temporary table of the same name (which would shadow it
                // for unqualified names in this connection) never receives our rows.
                sql: BookkeepingSql::new(
                    "main.`_prisma_migrations`".into(),
                    Placeholders::Question,
                ),
            },
            created,
        ))
    }
}

/// One SQLite connection.
pub struct Sqlite {
    conn: SqliteConnection,
    target: Target,
    locked: bool,
    sql: BookkeepingSql,
}

impl Sqlite {
    /// Whether a transaction is open: SQLite refuses BEGIN inside one (the probe's own
    /// transaction is ended at once).
    async fn transaction_open(&mut self) -> bool {
        match sqlx::raw_sql("BEGIN").execute(&mut self.conn).await {
            Ok(_) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
                false
            }
            Err(_) => true,
        }
    }
}

#[async_trait]
impl OneByOne for Sqlite {
    async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
            .execute(&mut self.conn)
            .await
            .map(|_| ())
    }

    async fn in_transaction(&mut self) -> Option<bool> {
        Some(self.transaction_open().await)
    }

    fn failure(&self, error: &sqlx::Error, _: &str, _: StatementLimits) -> ScriptFailure {
        script_failure(error)
    }

    async fn end_own_transaction(&mut self) {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
    }

    /// SQLite refuses BEGIN inside a transaction: the probe tells whether the script left
    /// one open (and ends its own when it did not).
    async fn left_open(&mut self, _commits: &Commits) -> bool {
        let probe = sqlx::raw_sql("BEGIN").execute(&mut self.conn).await;
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        probe.is_err()
    }
}

#[async_trait]
impl Dialect for Sqlite {
    fn provider(&self) -> &'static str {
        "sqlite"
    }

    fn info(&self) -> DatabaseInfo {
        self.target.info.clone()
    }

    async fn lock(&mut self, wait: Duration) -> Result<(), EngineError> {
        // Prisma's `PRAGMA main.locking_mode=EXCLUSIVE`; the empty exclusive transaction takes
        // the file lock now (waiting up to the busy timeout) and exclusive mode keeps it.
        let sql = "PRAGMA main.locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;";
        match sqlx::raw_sql(sql).execute(&mut self.conn).await {
            Ok(_) => {
                self.locked = true;
                Ok(())
            }
            Err(sqlx::Error::Database(e))
                if e.message().contains("locked") || e.message().contains("busy") =>
            {
                Err(EngineError::LockTimeout {
                    lock: "SQLite exclusive",
                    statement: "PRAGMA main.locking_mode=EXCLUSIVE".into(),
                    timeout: wait,
                })
            }
            Err(e) => Err(EngineError::database("locking the database file")(e)),
        }
    }

    async fn unlock(&mut self) -> Result<(), EngineError> {
        if self.locked {
            // Back to normal mode; the lock goes with the next access or the close.
            sqlx::raw_sql("PRAGMA main.locking_mode=NORMAL; SELECT 1 FROM sqlite_master LIMIT 1;")
                .execute(&mut self.conn)
                .await
                .map_err(EngineError::database("unlocking the database file"))?;
            self.locked = false;
        }
        Ok(())
    }

    async fn prepare_namespace(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

    async fn tables(&mut self) -> Result<Tables, EngineError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name AS table_name FROM sqlite_master WHERE type='table' ORDER BY name ASC",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(EngineError::database("listing tables"))?;
        // Prisma counts `sqlite_sequence` too; PostgreSQL ignores PostGIS's tables.
        Ok(Tables::classify(names, &[]))
    }

    async fn create_migrations_table(&mut self) -> Result<(), EngineError> {
        bookkeeping::create_table(self, CREATE_MIGRATIONS_TABLE.into()).await
    }

    async fn rows(&mut self) -> Result<Vec<MigrationRow>, EngineError> {
        let rows = sqlx::query(SELECT_ROWS)
            .fetch_all(&mut self.conn)
            .await
            .map_err(EngineError::database("reading _prisma_migrations"))?;
        rows.iter().map(read_row).collect()
    }

    fn steps(&mut self) -> &mut dyn Steps {
        self
    }

    fn execution(&self, script: &str) -> Execution {
        for statement in split(script, Flavor::Sqlite) {
            if statement.is_blank() {
                continue;
            }
            let words = statement.keywords(3);
            if let Some(reason) = non_transactional_reason(&words, statement.trimmed()) {
                return Execution::StatementByStatement { reason };
            }
        }
        Execution::Transaction
    }

    async fn apply(&mut self, m: &Migrating<'_>) -> Result<Applied, ApplyError> {
        let applied = match self.execution(m.script) {
            Execution::Transaction => self.apply_transaction(m).await?,
            Execution::StatementByStatement { reason } => {
                super::by_statement(self, m, reason).await?
            }
        };
        // The row as `main._prisma_migrations` holds it is what the outcome reports.
        let read = bookkeeping::read_row::<_, i64>(self, &m.row.id)
            .await
            .map_err(ApplyError::Bookkeeping)?;
        judge_applied(read, m.row).map_err(ApplyError::Bookkeeping)?;
        Ok(applied)
    }

    async fn close(self: Box<Self>) {
        let _ = self.conn.close().await;
    }
}

#[async_trait]
impl SqlBookkeeping for Sqlite {
    type Db = sqlx::Sqlite;
    type Time = i64;
    const REMOVED_ROW: &'static str = "the script deleted it";
    const REMOVED_TABLE: &'static str = "the script dropped or renamed it";

    fn bookkeeping(&mut self) -> (&mut Conn<Self>, &BookkeepingSql) {
        (&mut self.conn, &self.sql)
    }

    fn table_is_missing(error: &dyn sqlx::error::DatabaseError) -> bool {
        error.message().contains("no such table")
    }

    async fn run_each_statement(
        &mut self,
        script: &str,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure> {
        let statements = split(script, Flavor::Sqlite)
            .into_iter()
            .filter(|s| !s.is_blank())
            .collect();
        let watch = Watch::set(&mut self.conn, limits.deadline).await;
        let mut result = one_by_one(self, statements, Commits::new(false), limits).await;
        let fired = watch.clear(&mut self.conn).await;
        if let Err(failure) = &mut result
            && fired
            && deadline::is_interruption(failure)
        {
            failure.interruption = Some(Interruption::Deadline);
        }
        result
    }
}

/// How a transactional apply ended.
enum Finished {
    Done,
    /// Every statement ran but the script ended our transaction itself (a COMMIT the
    /// splitter could not see, in a trigger body …).
    EndedByScript,
}

impl Sqlite {
    /// One migration in one transaction with its row, judged by what the database says.
    async fn apply_transaction(&mut self, m: &Migrating<'_>) -> Result<Applied, ApplyError> {
        let started = std::time::Instant::now();
        let result = self.apply_in_transaction(m).await;
        let execution = Execution::Transaction;
        match result {
            Ok(Finished::Done) => Ok(Applied {
                execution,
                warnings: Vec::new(),
            }),
            Ok(Finished::EndedByScript) => {
                let read = bookkeeping::read_row::<_, i64>(self, &m.row.id)
                    .await
                    .map_err(ApplyError::Bookkeeping)?;
                if read.is_none() {
                    self.insert_started_row(m.row)
                        .await
                        .map_err(ApplyError::Bookkeeping)?;
                }
                self.mark_finished(&m.row.id, m.clock.now())
                    .await
                    .map_err(|e| ApplyError::Bookkeeping(super::apply::broken(e, m.row, false)))?;
                Ok(Applied {
                    execution,
                    warnings: vec![format!(
                        "Migration `{}` ended the migrator's transaction itself (a COMMIT inside the script): all its statements ran, but not as one transaction.",
                        m.row.migration_name
                    )],
                })
            }
            Err(TransactionError::Script(mut failure)) => {
                let read = bookkeeping::read_row::<_, i64>(self, &m.row.id)
                    .await
                    .map_err(ApplyError::Bookkeeping)?;
                if read.is_some() {
                    // The script committed our transaction itself: what ran before stays.
                    failure.rolled_back = false;
                    failure.row_recorded = true;
                    failure.note = Some("The script ended the migrator's transaction itself (a COMMIT inside it that the migrator could not see as one): what ran up to that COMMIT is committed, together with this migration's row.".into());
                } else if failure.rolled_back
                    && failure.statement.is_none()
                    && failure.note.is_none()
                    && failure.interruption.is_none()
                {
                    // SQLite never says which statement failed; no row stayed, so the
                    // transaction rolled back and the statements may run again to find it.
                    self.name_failed_statement(m, &mut failure, started.elapsed())
                        .await;
                }
                Err(ApplyError::Script(Box::new(super::ScriptFailed {
                    execution,
                    failure,
                })))
            }
            Err(TransactionError::Bookkeeping(e)) => Err(ApplyError::Bookkeeping(
                super::apply::broken(e, m.row, true),
            )),
        }
    }

    /// The started row, the script and the finished row in one transaction, committed
    /// together or rolled back together.
    async fn apply_in_transaction(
        &mut self,
        m: &Migrating<'_>,
    ) -> Result<Finished, TransactionError> {
        sqlx::raw_sql("BEGIN")
            .execute(&mut self.conn)
            .await
            .map_err(|e| {
                TransactionError::Bookkeeping(EngineError::database("starting a transaction")(e))
            })?;
        let result = self.in_transaction(m).await;
        if matches!(result, Ok(Finished::EndedByScript)) {
            return result;
        }
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        if let Err(e) = sqlx::raw_sql(end).execute(&mut self.conn).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
            if result.is_ok() {
                let mut failure = script_failure(&e);
                failure.rolled_back = true;
                failure.note = Some("The error came when the migrator committed the migration's transaction (a deferred foreign key …): the transaction was rolled back.".into());
                return Err(TransactionError::Script(failure));
            }
        }
        result
    }

    async fn in_transaction(&mut self, m: &Migrating<'_>) -> Result<Finished, TransactionError> {
        let Migrating {
            row,
            script,
            clock,
            limits,
        } = *m;
        self.insert_started_row(row)
            .await
            .map_err(TransactionError::Bookkeeping)?;
        // The deadline interrupts the script from outside it (no SQL can lift it).
        let watch = Watch::set(&mut self.conn, limits.deadline).await;
        let ran = sqlx::raw_sql(AssertSqlSafe(script.to_owned()))
            .execute(&mut self.conn)
            .await;
        let fired = watch.clear(&mut self.conn).await;
        if let Err(e) = ran {
            let mut failure = script_failure(&e);
            failure.rolled_back = true;
            if fired && deadline::is_interruption(&failure) {
                failure.interruption = Some(Interruption::Deadline);
            }
            return Err(TransactionError::Script(failure));
        }
        // The database says whether our transaction is still open.
        if !self.transaction_open().await {
            return Ok(Finished::EndedByScript);
        }
        // Still Prisma's table, or the migration is rolled back with what it did to it.
        table::check(&mut self.conn)
            .await
            .map_err(TransactionError::Bookkeeping)?;
        self.mark_finished(&row.id, clock.now())
            .await
            .map_err(TransactionError::Bookkeeping)?;
        Ok(Finished::Done)
    }
}

fn read_row(row: &SqliteRow) -> Result<MigrationRow, EngineError> {
    let read = || -> Result<MigrationRow, sqlx::Error> {
        let time = |column: &str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
            let millis: Option<i64> = row.try_get(format!("{column}_ms").as_str())?;
            let text: Option<String> = row.try_get(format!("{column}_text").as_str())?;
            Ok(millis
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                .or_else(|| text.as_deref().and_then(parse_time)))
        };
        Ok(MigrationRow {
            id: row.try_get("id")?,
            checksum: row.try_get("checksum")?,
            finished_at: time("finished_at")?,
            migration_name: row.try_get("migration_name")?,
            logs: row.try_get("logs")?,
            rolled_back_at: time("rolled_back_at")?,
            started_at: time("started_at")?.unwrap_or_default(),
            applied_steps_count: row.try_get("applied_steps_count")?,
        })
    };
    read().map_err(EngineError::database("reading _prisma_migrations"))
}

/// The text forms Prisma accepts: `%Y-%m-%d %H:%M:%S` (UTC), RFC 3339, RFC 2822.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| t.and_utc())
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
        .or_else(|| {
            DateTime::parse_from_rfc2822(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
}

/// Statements SQLite refuses in a transaction, or ignores there (`PRAGMA foreign_keys`,
/// which Prisma's table redefinitions rely on).
fn non_transactional_reason(words: &[String], text: &str) -> Option<String> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let pragma = |name: &str| {
        w.first() == Some(&"PRAGMA")
            && text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|part| part.eq_ignore_ascii_case(name))
    };
    if pragma("foreign_keys") || pragma("journal_mode") || pragma("locking_mode") {
        return Some("it sets a PRAGMA that SQLite ignores or refuses inside a transaction".into());
    }
    match w.as_slice() {
        ["VACUUM", ..] => {
            Some("it holds `VACUUM`, which SQLite cannot run inside a transaction".into())
        }
        ["ATTACH" | "DETACH", ..] => Some(format!(
            "it holds `{}`, which SQLite cannot run inside a transaction",
            w[0]
        )),
        _ => transaction_control_reason(words),
    }
}

fn script_failure(error: &sqlx::Error) -> ScriptFailure {
    let (code, message) = match error {
        sqlx::Error::Database(db) => (
            db.code().map(|c| c.to_string()),
            match db.code() {
                Some(code) => format!("SQLite error: {} (result code {code})", db.message()),
                None => format!("SQLite error: {}", db.message()),
            },
        ),
        other => (None, other.to_string()),
    };
    ScriptFailure {
        code,
        message,
        statement: None,
        committed: Vec::new(),
        rolled_back: false,
        ..ScriptFailure::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Target::from_url("file:./dev.db?connection_limit=1")
                .unwrap()
                .path(),
            Path::new("./dev.db")
        );
        assert_eq!(
            Target::from_url("sqlite:///tmp/x.db").unwrap().path(),
            Path::new("/tmp/x.db")
        );
        assert_eq!(
            Target::from_url("sqlite:x.db").unwrap().path(),
            Path::new("x.db")
        );
        assert!(Target::from_url("file:").is_err());
    }

    #[test]
    fn times_in_every_form_prisma_reads() {
        let t = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(parse_time("2024-01-02 03:04:05"), Some(t));
        assert_eq!(parse_time("2024-01-02T03:04:05Z"), Some(t));
        assert_eq!(parse_time("Tue, 2 Jan 2024 03:04:05 +0000"), Some(t));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn pragmas_that_matter_leave_the_transaction() {
        let w = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(
            non_transactional_reason(&w(&["PRAGMA", "FOREIGN_KEYS"]), "PRAGMA foreign_keys=OFF;")
                .is_some()
        );
        assert!(
            non_transactional_reason(&w(&["PRAGMA", "MAIN"]), "PRAGMA main.foreign_keys=OFF;")
                .is_some()
        );
        assert!(
            non_transactional_reason(
                &w(&["PRAGMA", "DEFER_FOREIGN_KEYS"]),
                "PRAGMA defer_foreign_keys=ON;"
            )
            .is_none()
        );
        assert!(
            non_transactional_reason(&w(&["CREATE", "TABLE"]), "CREATE TABLE a (id int);")
                .is_none()
        );
    }
}
