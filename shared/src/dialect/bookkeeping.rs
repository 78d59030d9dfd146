//! Prisma's bookkeeping statements on `_prisma_migrations`, written once. A dialect gives the
//! table's (quoted, qualified) name and how it writes placeholders, binds in the order each
//! statement documents, and writes its own statement only where its SQL differs (PostgreSQL's
//! `= ANY($2)`, SQLite's select that reads both timestamp forms).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type,
};

use super::{MigrationRow, NewRow, ScriptFailure, StatementLimits, Steps};
use crate::error::EngineError;

/// How a dialect writes the n-th bound parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholders {
    /// `?` (MySQL, SQLite).
    Question,
    /// `$1`, `$2` … (PostgreSQL).
    Numbered,
}

/// The bookkeeping SQL for one `_prisma_migrations` table.
#[derive(Debug, Clone)]
pub(crate) struct BookkeepingSql {
    table: String,
    placeholders: Placeholders,
}

impl BookkeepingSql {
    pub(crate) fn new(table: String, placeholders: Placeholders) -> BookkeepingSql {
        BookkeepingSql {
            table,
            placeholders,
        }
    }

    /// The table as the statements name it (never dependent on `search_path` or `USE`).
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    fn mark(&self, n: usize) -> String {
        match self.placeholders {
            Placeholders::Question => "?".into(),
            Placeholders::Numbered => format!("${n}"),
        }
    }

    fn marks(&self, from: usize, count: usize) -> String {
        (from..from + count)
            .map(|n| self.mark(n))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Binds: id, checksum, started_at, migration_name.
    pub(crate) fn insert_started(&self) -> String {
        format!(
            "INSERT INTO {} (id, checksum, started_at, migration_name) VALUES ({})",
            self.table,
            self.marks(1, 4)
        )
    }

    /// Binds: id, checksum, started_at, migration_name, logs.
    pub(crate) fn insert_failed(&self) -> String {
        format!(
            "INSERT INTO {} (id, checksum, started_at, migration_name, logs) VALUES ({})",
            self.table,
            self.marks(1, 5)
        )
    }

    /// Binds: id, checksum, started_at, started_at again (as `finished_at`), migration_name.
    pub(crate) fn insert_resolved(&self) -> String {
        format!(
            "INSERT INTO {} (id, checksum, logs, started_at, finished_at, migration_name) VALUES ({}, {}, '', {})",
            self.table,
            self.mark(1),
            self.mark(2),
            self.marks(3, 3)
        )
    }

    /// Binds: finished_at, id.
    pub(crate) fn mark_finished(&self) -> String {
        format!(
            "UPDATE {} SET applied_steps_count = applied_steps_count + 1, finished_at = {} WHERE id = {}",
            self.table,
            self.mark(1),
            self.mark(2)
        )
    }

    /// Binds: logs, id.
    pub(crate) fn set_logs(&self) -> String {
        format!(
            "UPDATE {} SET logs = {} WHERE id = {}",
            self.table,
            self.mark(1),
            self.mark(2)
        )
    }

    /// Binds: rolled_back_at, then each of the `ids` ids.
    pub(crate) fn mark_rolled_back(&self, ids: usize) -> String {
        format!(
            "UPDATE {} SET rolled_back_at = {} WHERE id IN ({})",
            self.table,
            self.mark(1),
            self.marks(2, ids)
        )
    }

    /// Binds: id.
    pub(crate) fn delete(&self) -> String {
        format!("DELETE FROM {} WHERE id = {}", self.table, self.mark(1))
    }

    /// The row with one id (the witness's read-back). Binds: id.
    pub(crate) fn select_row(&self) -> String {
        format!(
            "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count FROM {} WHERE id = {}",
            self.table,
            self.mark(1)
        )
    }

    /// All rows, ordered by `started_at` like Prisma. Binds nothing.
    pub(crate) fn select_rows(&self) -> String {
        format!(
            "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count FROM {} ORDER BY started_at ASC",
            self.table
        )
    }
}

/// A dialect over one sqlx connection: the bookkeeping [`Steps`] come from here, with the
/// SQL above; the dialect says how it binds a timestamp, how its server reports a missing
/// table, and runs statements its own way.
/// The connection type of a [`SqlBookkeeping`] dialect.
pub(crate) type Conn<B> = <<B as SqlBookkeeping>::Db as Database>::Connection;

/// How many rows a statement touched, whatever the database.
pub(crate) trait RowsAffected {
    fn rows(&self) -> u64;
}

macro_rules! rows_affected {
    ($($result:ty),*) => {$(
        impl RowsAffected for $result {
            fn rows(&self) -> u64 {
                self.rows_affected()
            }
        }
    )*};
}

rows_affected!(
    sqlx::postgres::PgQueryResult,
    sqlx::mysql::MySqlQueryResult,
    sqlx::sqlite::SqliteQueryResult
);

#[async_trait]
pub(crate) trait SqlBookkeeping: Send {
    type Db: Database<QueryResult: RowsAffected>;
    /// How a timestamp is stored (`timestamptz`, `DATETIME(3)` as UTC, epoch milliseconds).
    type Time: for<'t> Encode<'t, Self::Db> + Type<Self::Db> + StoredTime + Send;

    /// The connection and the statements for its table.
    fn bookkeeping(&mut self) -> (&mut Conn<Self>, &BookkeepingSql);

    /// Whether this error says the table does not exist.
    fn table_is_missing(error: &dyn sqlx::error::DatabaseError) -> bool;

    /// How a script can remove the row and the table (said when it did).
    const REMOVED_ROW: &'static str;
    const REMOVED_TABLE: &'static str;

    /// Runs the script statement by statement, each committed on its own.
    async fn run_each_statement(
        &mut self,
        script: &str,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure>;
}

/// A timestamp as a database column holds it.
pub(crate) trait StoredTime: Sized {
    fn stored(at: DateTime<Utc>) -> Self;
    fn utc(self) -> DateTime<Utc>;
}

impl StoredTime for DateTime<Utc> {
    fn stored(at: DateTime<Utc>) -> Self {
        at
    }
    fn utc(self) -> DateTime<Utc> {
        self
    }
}

/// MySQL's `DATETIME(3)`, written and read as UTC wall time (as Prisma does).
impl StoredTime for chrono::NaiveDateTime {
    fn stored(at: DateTime<Utc>) -> Self {
        at.naive_utc()
    }
    fn utc(self) -> DateTime<Utc> {
        self.and_utc()
    }
}

/// SQLite's epoch milliseconds (Prisma's integers).
impl StoredTime for i64 {
    fn stored(at: DateTime<Utc>) -> Self {
        at.timestamp_millis()
    }
    fn utc(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self).unwrap_or_default()
    }
}

/// Creates `_prisma_migrations` with Prisma's DDL for the dialect.
pub(crate) async fn create_table<B: SqlBookkeeping + ?Sized>(
    dialect: &mut B,
    ddl: String,
) -> Result<(), EngineError>
where
    for<'c> &'c mut Conn<B>: Executor<'c, Database = B::Db>,
{
    let (conn, _) = dialect.bookkeeping();
    sqlx::raw_sql(AssertSqlSafe(ddl))
        .execute(conn)
        .await
        .map_err(EngineError::database("creating _prisma_migrations"))?;
    Ok(())
}

/// All rows of `_prisma_migrations`, ordered by `started_at` like Prisma; `Count` is how the
/// dialect's `applied_steps_count` reads (`INTEGER`, `INTEGER UNSIGNED`).
pub(crate) async fn read_rows<B, Count>(dialect: &mut B) -> Result<Vec<MigrationRow>, EngineError>
where
    B: SqlBookkeeping + ?Sized,
    for<'c> &'c mut Conn<B>: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'a> &'a str: ColumnIndex<<B::Db as Database>::Row>,
    for<'r> String: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> B::Time: Decode<'r, B::Db>,
    for<'r> Count: Decode<'r, B::Db> + Type<B::Db> + Into<i64>,
{
    let (conn, sql) = dialect.bookkeeping();
    let read = EngineError::database("reading _prisma_migrations");
    let rows = sqlx::query::<B::Db>(AssertSqlSafe(sql.select_rows()))
        .fetch_all(conn)
        .await
        .map_err(read)?;
    rows.iter()
        .map(migration_row::<B, Count>)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(EngineError::database("reading _prisma_migrations"))
}

/// The row with this id, read by the supervising session (the witness's read-back).
pub(crate) async fn read_row<B, Count>(
    dialect: &mut B,
    id: &str,
) -> Result<Option<MigrationRow>, EngineError>
where
    B: SqlBookkeeping + ?Sized,
    for<'c> &'c mut Conn<B>: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'a> &'a str: ColumnIndex<<B::Db as Database>::Row>,
    for<'t> String: Encode<'t, B::Db> + Decode<'t, B::Db> + Type<B::Db>,
    for<'r> B::Time: Decode<'r, B::Db>,
    for<'r> Count: Decode<'r, B::Db> + Type<B::Db> + Into<i64>,
{
    let (conn, sql) = dialect.bookkeeping();
    let read = EngineError::database("reading the migration's row back");
    let row = sqlx::query::<B::Db>(AssertSqlSafe(sql.select_row()))
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
        .map_err(EngineError::database("reading the migration's row back"))?;
    row.as_ref()
        .map(migration_row::<B, Count>)
        .transpose()
        .map_err(read)
}

fn migration_row<B, Count>(row: &<B::Db as Database>::Row) -> Result<MigrationRow, sqlx::Error>
where
    B: SqlBookkeeping + ?Sized,
    for<'a> &'a str: ColumnIndex<<B::Db as Database>::Row>,
    for<'r> String: Decode<'r, B::Db> + Type<B::Db>,
    for<'r> B::Time: Decode<'r, B::Db>,
    for<'r> Count: Decode<'r, B::Db> + Type<B::Db> + Into<i64>,
{
    let time = |column: &str| {
        row.try_get::<Option<B::Time>, _>(column)
            .map(|t| t.map(StoredTime::utc))
    };
    Ok(MigrationRow {
        id: row.try_get("id")?,
        checksum: row.try_get("checksum")?,
        finished_at: time("finished_at")?,
        migration_name: row.try_get("migration_name")?,
        logs: row.try_get("logs")?,
        rolled_back_at: time("rolled_back_at")?,
        started_at: row.try_get::<B::Time, _>("started_at")?.utc(),
        applied_steps_count: row.try_get::<Count, _>("applied_steps_count")?.into(),
    })
}

/// A value bound to a bookkeeping statement.
enum Value<T> {
    Text(String),
    Time(T),
}

/// Runs one bookkeeping statement with its values; returns the rows it touched.
async fn write<B: SqlBookkeeping + ?Sized>(
    dialect: &mut B,
    sql: impl FnOnce(&BookkeepingSql) -> String,
    values: Vec<Value<B::Time>>,
) -> Result<<B::Db as Database>::QueryResult, sqlx::Error>
where
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'t> String: Encode<'t, B::Db> + Type<B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
{
    let (conn, statements) = dialect.bookkeeping();
    let mut query = sqlx::query::<B::Db>(AssertSqlSafe(sql(statements)));
    for value in values {
        query = match value {
            Value::Text(text) => query.bind(text),
            Value::Time(at) => query.bind(at),
        };
    }
    query.execute(conn).await
}

/// The bookkeeping steps of every sqlx dialect: the SQL above, bound the same way.
#[async_trait]
impl<B> Steps for B
where
    B: SqlBookkeeping,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'t> String: Encode<'t, B::Db> + Type<B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
{
    async fn insert_started_row(&mut self, row: &NewRow) -> Result<(), EngineError> {
        write(
            self,
            BookkeepingSql::insert_started,
            row_values::<B>(row, None),
        )
        .await
        .map_err(EngineError::database("recording the migration start"))?;
        Ok(())
    }

    async fn run_statements(
        &mut self,
        script: &str,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure> {
        self.run_each_statement(script, limits).await
    }

    async fn mark_finished(&mut self, id: &str, at: DateTime<Utc>) -> Result<(), EngineError> {
        let values = vec![Value::Time(B::Time::stored(at)), Value::Text(id.to_owned())];
        let done = write(self, BookkeepingSql::mark_finished, values).await;
        one_row::<B>(self, done, "recording the migration end")
    }

    async fn set_logs(&mut self, id: &str, logs: &str) -> Result<(), EngineError> {
        let values = vec![Value::Text(logs.to_owned()), Value::Text(id.to_owned())];
        let done = write(self, BookkeepingSql::set_logs, values).await;
        one_row::<B>(self, done, "recording the failure")
    }

    async fn insert_failed_row(&mut self, row: &NewRow, logs: &str) -> Result<(), EngineError> {
        write(
            self,
            BookkeepingSql::insert_failed,
            row_values::<B>(row, Some(logs)),
        )
        .await
        .map_err(EngineError::database("recording the failure"))?;
        Ok(())
    }

    async fn insert_resolved_row(&mut self, row: &NewRow) -> Result<(), EngineError> {
        let values = vec![
            Value::Text(row.id.clone()),
            Value::Text(row.checksum.clone()),
            Value::Time(B::Time::stored(row.started_at)),
            Value::Time(B::Time::stored(row.started_at)),
            Value::Text(row.migration_name.clone()),
        ];
        write(self, BookkeepingSql::insert_resolved, values)
            .await
            .map_err(EngineError::database("recording the migration as applied"))?;
        Ok(())
    }

    async fn mark_rolled_back(
        &mut self,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut values = vec![Value::Time(B::Time::stored(at))];
        values.extend(ids.iter().cloned().map(Value::Text));
        write(self, |sql| sql.mark_rolled_back(ids.len()), values)
            .await
            .map_err(EngineError::database(
                "marking the migration as rolled back",
            ))?;
        Ok(())
    }

    async fn delete_row(&mut self, id: &str) -> Result<(), EngineError> {
        write(
            self,
            BookkeepingSql::delete,
            vec![Value::Text(id.to_owned())],
        )
        .await
        .map_err(EngineError::database("removing the migration's row"))?;
        Ok(())
    }
}

/// id, checksum, started_at, migration_name (and logs): a new row's values.
fn row_values<B: SqlBookkeeping + ?Sized>(row: &NewRow, logs: Option<&str>) -> Vec<Value<B::Time>> {
    let mut values = vec![
        Value::Text(row.id.clone()),
        Value::Text(row.checksum.clone()),
        Value::Time(B::Time::stored(row.started_at)),
        Value::Text(row.migration_name.clone()),
    ];
    values.extend(logs.map(|l| Value::Text(l.to_owned())));
    values
}

/// One row written, or the script removed the row or the table.
fn one_row<B: SqlBookkeeping + ?Sized>(
    dialect: &mut B,
    done: Result<<B::Db as Database>::QueryResult, sqlx::Error>,
    context: &'static str,
) -> Result<(), EngineError> {
    let (_, sql) = dialect.bookkeeping();
    super::exactly_one_row(
        done.map(|r| r.rows()),
        |e| B::table_is_missing(e),
        || row_gone(sql.table(), B::REMOVED_ROW),
        || table_gone(sql.table(), B::REMOVED_TABLE),
        context,
    )
}

/// What the outcome says when a script deleted the migration's own row.
pub(crate) fn row_gone(table: &str, how: &str) -> String {
    format!("its row is gone from {table} ({how})")
}

/// What the outcome says when a script dropped or moved `_prisma_migrations`.
pub(crate) fn table_gone(table: &str, how: &str) -> String {
    format!("{table} no longer exists ({how})")
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_dialect() {
        let my = BookkeepingSql::new("`db`.`_prisma_migrations`".into(), Placeholders::Question);
        assert_eq!(
            my.insert_resolved(),
            "INSERT INTO `db`.`_prisma_migrations` (id, checksum, logs, started_at, finished_at, migration_name) VALUES (?, ?, '', ?, ?, ?)"
        );
        assert_eq!(
            my.mark_rolled_back(2),
            "UPDATE `db`.`_prisma_migrations` SET rolled_back_at = ? WHERE id IN (?, ?)"
        );
        let pg = BookkeepingSql::new(
            "\"public\".\"_prisma_migrations\"".into(),
            Placeholders::Numbered,
        );
        assert_eq!(
            pg.mark_finished(),
            "UPDATE \"public\".\"_prisma_migrations\" SET applied_steps_count = applied_steps_count + 1, finished_at = $1 WHERE id = $2"
        );
        assert_eq!(
            pg.insert_failed(),
            "INSERT INTO \"public\".\"_prisma_migrations\" (id, checksum, started_at, migration_name, logs) VALUES ($1, $2, $3, $4, $5)"
        );
    }
}
