//! SQLite: the embedded default (demo, local use). Prisma's DDL, epoch-millisecond
//! timestamps, `locking_mode=EXCLUSIVE`; each migration in one transaction with its row,
//! unless it holds a statement SQLite ignores or refuses inside one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::{
    ApplyError, Commits, Dialect, FailedStatement, MigrationRow, NewRow, ScriptFailure,
    StatementLimits, Tables, left_open_failure, transaction_control_reason,
};
use crate::clock::Clock;
use crate::error::EngineError;
use crate::outcome::{DatabaseInfo, Execution};
use crate::sql::{Flavor, split};

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
    FROM `_prisma_migrations` ORDER BY started_at ASC";

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
        sqlx::raw_sql(CREATE_MIGRATIONS_TABLE)
            .execute(&mut self.conn)
            .await
            .map_err(EngineError::database("creating _prisma_migrations"))?;
        Ok(())
    }

    async fn rows(&mut self) -> Result<Vec<MigrationRow>, EngineError> {
        let rows = sqlx::query(SELECT_ROWS)
            .fetch_all(&mut self.conn)
            .await
            .map_err(EngineError::database("reading _prisma_migrations"))?;
        rows.iter().map(read_row).collect()
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

    async fn apply_in_transaction(
        &mut self,
        row: &NewRow,
        script: &str,
        _limits: StatementLimits,
        clock: &dyn Clock,
    ) -> Result<(), ApplyError> {
        let bookkeeping =
            |context| move |e| ApplyError::Bookkeeping(EngineError::database(context)(e));
        let mut tx = self
            .conn
            .begin()
            .await
            .map_err(bookkeeping("starting a transaction"))?;
        insert_started(&mut tx, row)
            .await
            .map_err(bookkeeping("recording the migration start"))?;
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(script.to_owned()))
            .execute(&mut *tx)
            .await
        {
            let _ = tx.rollback().await;
            let mut failure = script_failure(&e);
            failure.rolled_back = true;
            return Err(ApplyError::Script(failure));
        }
        let done = mark_finished(&mut tx, &row.id, clock.now()).await;
        one_row(done, "recording the migration end").map_err(ApplyError::Bookkeeping)?;
        tx.commit()
            .await
            .map_err(bookkeeping("committing the migration"))?;
        Ok(())
    }

    async fn insert_started_row(&mut self, row: &NewRow) -> Result<(), EngineError> {
        insert_started(&mut self.conn, row)
            .await
            .map_err(EngineError::database("recording the migration start"))
    }

    async fn run_statements(
        &mut self,
        script: &str,
        _limits: StatementLimits,
    ) -> Result<usize, ScriptFailure> {
        let mut number = 0;
        let mut commits = Commits::new(false);
        let mut opened = None;
        for statement in split(script, Flavor::Sqlite) {
            if statement.is_blank() {
                continue;
            }
            number += 1;
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(statement.text.to_owned()))
                .execute(&mut self.conn)
                .await
            {
                // End a transaction the script may have opened (an error, ignored, when none is).
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
                let mut failure = script_failure(&e);
                failure.statement = Some(FailedStatement {
                    number,
                    line: statement.line,
                    text: statement.trimmed().to_string(),
                });
                failure.committed = commits.committed;
                return Err(failure);
            }
            let words = statement.keywords(2);
            if words.first().map(String::as_str) == Some("BEGIN") && commits.open.is_none() {
                opened = Some(FailedStatement {
                    number,
                    line: statement.line,
                    text: statement.trimmed().to_string(),
                });
            }
            commits.ran(number, &words);
        }
        // SQLite refuses BEGIN inside a transaction: the probe tells whether the script left
        // one open (and ends its own when it did not).
        match sqlx::raw_sql("BEGIN").execute(&mut self.conn).await {
            Ok(_) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
            }
            Err(_) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
                let mut failure = left_open_failure(commits.committed);
                failure.statement = opened;
                return Err(failure);
            }
        }
        Ok(number)
    }

    async fn mark_finished(&mut self, id: &str, at: DateTime<Utc>) -> Result<(), EngineError> {
        let done = mark_finished(&mut self.conn, id, at).await;
        one_row(done, "recording the migration end")
    }

    async fn delete_row(&mut self, id: &str) -> Result<(), EngineError> {
        sqlx::query("DELETE FROM `_prisma_migrations` WHERE id = ?1")
            .bind(id)
            .execute(&mut self.conn)
            .await
            .map_err(EngineError::database("removing the migration's row"))?;
        Ok(())
    }

    async fn set_logs(&mut self, id: &str, logs: &str) -> Result<(), EngineError> {
        let done = sqlx::query("UPDATE `_prisma_migrations` SET logs = ?2 WHERE id = ?1")
            .bind(id)
            .bind(logs)
            .execute(&mut self.conn)
            .await;
        one_row(done, "recording the failure")
    }

    async fn insert_failed_row(&mut self, row: &NewRow, logs: &str) -> Result<(), EngineError> {
        sqlx::query(
            "INSERT INTO `_prisma_migrations` (id, checksum, started_at, migration_name, logs) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&row.id)
        .bind(&row.checksum)
        .bind(row.started_at.timestamp_millis())
        .bind(&row.migration_name)
        .bind(logs)
        .execute(&mut self.conn)
        .await
        .map_err(EngineError::database("recording the failure"))?;
        Ok(())
    }

    async fn insert_resolved_row(&mut self, row: &NewRow) -> Result<(), EngineError> {
        sqlx::query(
            "INSERT INTO `_prisma_migrations` (id, checksum, logs, started_at, finished_at, migration_name) VALUES (?1, ?2, '', ?3, ?3, ?4)",
        )
        .bind(&row.id)
        .bind(&row.checksum)
        .bind(row.started_at.timestamp_millis())
        .bind(&row.migration_name)
        .execute(&mut self.conn)
        .await
        .map_err(EngineError::database("recording the migration as applied"))?;
        Ok(())
    }

    async fn mark_rolled_back(
        &mut self,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        for id in ids {
            sqlx::query("UPDATE `_prisma_migrations` SET rolled_back_at = ?1 WHERE id = ?2")
                .bind(at.timestamp_millis())
                .bind(id)
                .execute(&mut self.conn)
                .await
                .map_err(EngineError::database(
                    "marking the migration as rolled back",
                ))?;
        }
        Ok(())
    }

    async fn close(self: Box<Self>) {
        let _ = self.conn.close().await;
    }
}

async fn insert_started(conn: &mut SqliteConnection, row: &NewRow) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO `_prisma_migrations` (id, checksum, started_at, migration_name) VALUES (?1, ?2, ?3, ?4)")
        .bind(&row.id)
        .bind(&row.checksum)
        .bind(row.started_at.timestamp_millis())
        .bind(&row.migration_name)
        .execute(conn)
        .await?;
    Ok(())
}

/// One row written, or the script removed the row or the table.
fn one_row(
    done: Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>,
    context: &'static str,
) -> Result<(), EngineError> {
    super::exactly_one_row(
        done.map(|r| r.rows_affected()),
        |e| e.message().contains("no such table"),
        || "its row is gone from `_prisma_migrations` (the script deleted it)".into(),
        || "`_prisma_migrations` no longer exists (the script dropped or renamed it)".into(),
        context,
    )
}

async fn mark_finished(
    conn: &mut SqliteConnection,
    id: &str,
    at: DateTime<Utc>,
) -> Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error> {
    sqlx::query(
        "UPDATE `_prisma_migrations` SET applied_steps_count = applied_steps_count + 1, finished_at = ?2 WHERE id = ?1",
    )
    .bind(id)
    .bind(at.timestamp_millis())
    .execute(conn)
    .await
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
