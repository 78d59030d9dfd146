//! [`MyProbe`]: preflight's [`DataProbe`] over a plain MySQL / MariaDB connection.
//!
//! Every question runs in its own transaction that is rolled back — `READ ONLY`, or
//! `READ WRITE` when earlier pending data changes of the plan are rehearsed first (InnoDB
//! rolls them back; DDL is never rehearsed on MySQL, since it commits implicitly). The
//! session is bounded by `max_statement_time` (MariaDB) or `max_execution_time` (MySQL,
//! SELECTs), `lock_wait_timeout` (metadata locks) and `innodb_lock_wait_timeout` (row
//! locks). MySQL has no `TABLESAMPLE`: on a large table a probe reads the first
//! [`SAMPLE_ROWS`] rows, where an offending row proves the statement fails and none proves
//! nothing.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{AssertSqlSafe, Row};

use super::{
    ER_LOCK_WAIT_TIMEOUT, ER_QUERY_TIMEOUT, ER_STATEMENT_TIMEOUT, error_number, quote_ident,
};
use crate::preflight::questions::{Asker, Dialect, OffenderRow, Sample, ask, qualified};
use crate::preflight::{
    Blocker, DataProbe, LiveCheck, LiveLimits, PlanRehearsal, ProbeError, QName, TableSize, Verdict,
};

/// Rows a probe reads of a large table.
pub const SAMPLE_ROWS: u64 = 100_000;

/// [`DataProbe`] over a MySQL or MariaDB connection (its current database resolves
/// unqualified names).
pub struct MyProbe<'c> {
    conn: &'c mut MySqlConnection,
    limits: LiveLimits,
    bounded: bool,
}

impl<'c> MyProbe<'c> {
    pub fn new(conn: &'c mut MySqlConnection, limits: LiveLimits) -> MyProbe<'c> {
        MyProbe {
            conn,
            limits,
            bounded: false,
        }
    }

    /// A probe over a connection whose session [`MyProbe::bound_session`] already bounded.
    pub fn bounded(conn: &'c mut MySqlConnection, limits: LiveLimits) -> MyProbe<'c> {
        MyProbe {
            conn,
            limits,
            bounded: true,
        }
    }

    async fn bound(&mut self) -> Result<(), ProbeError> {
        if !self.bounded {
            Self::bound_session(self.conn, &self.limits).await?;
            self.bounded = true;
        }
        Ok(())
    }

    /// Sets the session's time bounds (MariaDB and MySQL name the statement time limit
    /// differently).
    pub async fn bound_session(
        conn: &mut MySqlConnection,
        limits: &LiveLimits,
    ) -> Result<(), ProbeError> {
        let timeout = limits.statement_timeout;
        let lock_s = limits.lock_timeout.as_secs().max(1);
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| classify_error(&e, timeout))?;
        let time = if version.to_ascii_lowercase().contains("mariadb") {
            format!(
                "SET SESSION max_statement_time = {}",
                timeout.as_secs_f64().max(0.001)
            )
        } else {
            format!(
                "SET SESSION max_execution_time = {}",
                timeout.as_millis().max(1)
            )
        };
        for setting in [
            time,
            format!("SET SESSION lock_wait_timeout = {lock_s}"),
            format!("SET SESSION innodb_lock_wait_timeout = {lock_s}"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(setting))
                .execute(&mut *conn)
                .await
                .map_err(|e| classify_error(&e, timeout))?;
        }
        Ok(())
    }

    /// One query in a transaction that is rolled back, after `rehearse`.
    async fn query(
        &mut self,
        sql: String,
        bind: Vec<String>,
        rehearse: &[String],
    ) -> Result<Vec<MySqlRow>, ProbeError> {
        self.bound().await?;
        let timeout = self.limits.statement_timeout;
        let budget = self.limits.rehearsal_rows;
        let start = if rehearse.is_empty() {
            "START TRANSACTION READ ONLY"
        } else {
            "START TRANSACTION READ WRITE"
        };
        sqlx::raw_sql(start)
            .execute(&mut *self.conn)
            .await
            .map_err(|e| classify_error(&e, timeout))?;
        let result = async {
            for step in rehearse {
                let done = sqlx::raw_sql(AssertSqlSafe(step.clone()))
                    .execute(&mut *self.conn)
                    .await
                    .map_err(|e| match classify_error(&e, timeout) {
                        ProbeError::Cannot(why) => ProbeError::Rehearsal(format!("failed: {why}")),
                        other => other,
                    })?;
                if done.rows_affected() > budget {
                    return Err(ProbeError::Rehearsal(format!(
                        "touched {} rows, more than the {budget} a rehearsal may",
                        done.rows_affected()
                    )));
                }
            }
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for value in bind {
                query = query.bind(value);
            }
            query
                .fetch_all(&mut *self.conn)
                .await
                .map_err(|e| classify_error(&e, timeout))
        }
        .await;
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *self.conn).await;
        result
    }

    /// Whether the server refuses a zero date in a required date column added without a
    /// default (strict mode with `NO_ZERO_DATE`).
    async fn refuses_zero_dates(&mut self) -> Result<bool, ProbeError> {
        let rows = self
            .query(
                "SELECT CAST(@@SESSION.sql_mode AS CHAR)".into(),
                Vec::new(),
                &[],
            )
            .await?;
        let mode: String = rows
            .first()
            .and_then(|r| r.try_get(0).ok())
            .unwrap_or_default();
        let mode = mode.to_ascii_uppercase();
        Ok(mode.contains("NO_ZERO_DATE")
            && (mode.contains("STRICT_TRANS_TABLES") || mode.contains("STRICT_ALL_TABLES")))
    }
}

#[async_trait]
impl Asker for MyProbe<'_> {
    /// The words of MySQL and MariaDB for the shared question builder.
    fn dialect(&self) -> Dialect {
        Dialect {
            ident: quote_ident,
            text: |e| format!("CAST({e} AS CHAR)"),
            length: |e| format!("CHAR_LENGTH(RTRIM({e}))"),
            text_array: None,
            not_among: |_, n| format!("NOT IN ({})", vec!["?"; n.max(1)].join(", ")),
            count_all: "CAST(COUNT(*) OVER () AS SIGNED)",
            no_count: "CAST(NULL AS SIGNED)",
            sample: Sample::FirstRows(SAMPLE_ROWS),
        }
    }

    async fn primary_key(&mut self, table: &QName) -> Result<Vec<String>, ProbeError> {
        let rows = self
            .query(
                "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ? \
                 AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION"
                    .into(),
                vec![table.schema.clone().unwrap_or_default(), table.name.clone()],
                &[],
            )
            .await?;
        super::super::probe_row::texts(&rows)
    }

    async fn key_columns(&mut self, table: &QName) -> Result<Vec<String>, ProbeError> {
        let pk = self.primary_key(table).await?;
        if pk.is_empty() {
            return Err(ProbeError::Cannot(format!(
                "`{}` has no primary key to name a row by",
                table.display()
            )));
        }
        Ok(pk)
    }

    async fn first_row(
        &mut self,
        sql: String,
        bind: Option<Vec<String>>,
        shown: usize,
        rehearse: &[String],
    ) -> Result<Option<OffenderRow>, ProbeError> {
        // `NOT IN (?)` over no values at all: one value no row holds stands for none.
        let bind = match bind {
            Some(values) if values.is_empty() => vec![String::new()],
            Some(values) => values,
            None => Vec::new(),
        };
        let rows = self.query(sql, bind, rehearse).await?;
        super::super::probe_row::first_row(&rows, shown)
    }
}

#[async_trait]
impl DataProbe for MyProbe<'_> {
    async fn size(&mut self, table: &QName) -> Result<Option<TableSize>, ProbeError> {
        let rows = self
            .query(
                "SELECT CAST(TABLE_ROWS AS SIGNED), CAST(COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) AS SIGNED) \
                 FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ?"
                    .into(),
                vec![table.schema.clone().unwrap_or_default(), table.name.clone()],
                &[],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let estimate: Option<i64> = row
            .try_get(0)
            .map_err(|e| ProbeError::Cannot(e.to_string()))?;
        let bytes: Option<i64> = row
            .try_get(1)
            .map_err(|e| ProbeError::Cannot(e.to_string()))?;
        let rows = self
            .query(
                format!(
                    "SELECT EXISTS (SELECT 1 FROM {})",
                    qualified(&self.dialect(), table)
                ),
                Vec::new(),
                &[],
            )
            .await?;
        let has_rows: i64 = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| ProbeError::Cannot(e.to_string()))?
            .unwrap_or(0);
        Ok(Some(TableSize {
            row_estimate: estimate.map(|n| n.max(0) as u64),
            bytes: bytes.unwrap_or(0).max(0) as u64,
            has_rows: has_rows != 0,
        }))
    }

    async fn find(
        &mut self,
        table: &QName,
        check: &LiveCheck,
        sample: bool,
        rehearse: &[String],
    ) -> Result<Verdict, ProbeError> {
        match check {
            LiveCheck::ImplicitDefault { type_name } => {
                let upper = type_name.to_ascii_uppercase();
                let date = ["DATE", "DATETIME", "TIMESTAMP"]
                    .iter()
                    .any(|t| upper == *t || upper.starts_with(&format!("{t}(")));
                if !date || !self.refuses_zero_dates().await? {
                    return Ok(Verdict::Passes);
                }
                let relation = qualified(&self.dialect(), table);
                let has_rows = LiveCheck::HasRows;
                match ask(self, table, relation, &has_rows, sample, !sample, rehearse).await? {
                    Verdict::Fails(mut v) => {
                        v.what = "existing row (a zero date is refused by sql_mode)".into();
                        Ok(Verdict::Fails(v))
                    }
                    other => Ok(other),
                }
            }
            _ => {
                let relation = qualified(&self.dialect(), table);
                ask(self, table, relation, check, sample, !sample, rehearse).await
            }
        }
    }

    async fn rehearse_plan(&mut self, _statements: &[String]) -> Result<PlanRehearsal, ProbeError> {
        Err(ProbeError::Cannot(
            "MySQL and MariaDB commit DDL implicitly: a plan cannot be rehearsed".into(),
        ))
    }

    async fn blockers(&mut self, _tables: &[QName]) -> Result<Vec<Blocker>, ProbeError> {
        // The MySQL dialect names lock holders itself when a statement waits too long.
        Ok(Vec::new())
    }
}

fn classify_error(error: &sqlx::Error, timeout: Duration) -> ProbeError {
    if let Some(db) = error.as_database_error() {
        match error_number(db) {
            Some(ER_STATEMENT_TIMEOUT | ER_QUERY_TIMEOUT) => return ProbeError::Timeout(timeout),
            Some(ER_LOCK_WAIT_TIMEOUT) => return ProbeError::Locked,
            _ => {}
        }
    }
    ProbeError::Cannot(error.to_string())
}
