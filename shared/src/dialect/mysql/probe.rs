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
use crate::preflight::{
    Blocker, DataProbe, LiveCheck, LiveLimits, ProbeError, QName, TableSize, Verdict, Violation,
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
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>(0)
                    .map_err(|e| ProbeError::Cannot(e.to_string()))
            })
            .collect()
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

    /// `(SELECT <pk> AS p0, …, <expr> AS k0, … FROM table [WHERE predicate] [LIMIT n]) AS t`.
    fn inner(
        &self,
        table: &QName,
        sample: bool,
        keys: &[String],
        exprs: &[String],
        predicate: Option<&str>,
    ) -> String {
        let mut select: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{} AS `p{i}`", quote_ident(k)))
            .collect();
        select.extend(
            exprs
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{e} AS `k{i}`")),
        );
        if select.is_empty() {
            select.push("1 AS `one`".into());
        }
        let filter = predicate
            .map(|p| format!(" WHERE ({p})"))
            .unwrap_or_default();
        let limit = if sample {
            format!(" LIMIT {SAMPLE_ROWS}")
        } else {
            String::new()
        };
        format!(
            "(SELECT {} FROM {}{filter}{limit}) AS t",
            select.join(", "),
            qualified(table)
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn first_offender(
        &mut self,
        shown: &[(String, String)],
        from: String,
        rest: &str,
        bind: Vec<String>,
        exact: bool,
        what: &str,
        rehearse: &[String],
    ) -> Result<Verdict, ProbeError> {
        let mut select: Vec<String> = shown
            .iter()
            .map(|(_, sql)| format!("CAST({sql} AS CHAR)"))
            .collect();
        select.push("CAST(COUNT(*) OVER () AS SIGNED)".into());
        let sql = format!("SELECT {} FROM {from} {rest} LIMIT 1", select.join(", "));
        let rows = self.query(sql, bind, rehearse).await?;
        let Some(row) = rows.first() else {
            return Ok(if exact {
                Verdict::Passes
            } else {
                Verdict::NotFoundInSample
            });
        };
        let mut parts = Vec::new();
        for (i, (label, _)) in shown.iter().enumerate() {
            let value: Option<String> = row
                .try_get(i)
                .map_err(|e| ProbeError::Cannot(e.to_string()))?;
            parts.push(format!(
                "{label}={}",
                value
                    .as_deref()
                    .map(|v| crate::text::clip_chars(v, 100))
                    .unwrap_or("NULL")
            ));
        }
        let n: i64 = row
            .try_get(shown.len())
            .map_err(|e| ProbeError::Cannot(e.to_string()))?;
        Ok(Verdict::Fails(Violation {
            count: exact.then_some(n.max(0) as u64),
            example_key: Some(parts.join(", ")),
            what: what.to_owned(),
        }))
    }

    fn pk_shown(keys: &[String]) -> Vec<(String, String)> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), format!("t.`p{i}`")))
            .collect()
    }

    fn expr_shown(exprs: &[String]) -> Vec<(String, String)> {
        exprs
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let name = e
                    .strip_prefix('`')
                    .and_then(|n| n.strip_suffix('`'))
                    .filter(|n| !n.contains('`'))
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.trim_matches(['(', ')']).to_owned());
                (name, format!("t.`k{i}`"))
            })
            .collect()
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
                format!("SELECT EXISTS (SELECT 1 FROM {})", qualified(table)),
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
        let exact = !sample;
        match check {
            LiveCheck::HasRows => {
                let keys = self.key_columns(table).await?;
                let from = self.inner(table, sample, &keys, &[], None);
                self.first_offender(
                    &Self::pk_shown(&keys),
                    from,
                    "",
                    Vec::new(),
                    exact,
                    "existing row",
                    rehearse,
                )
                .await
            }
            LiveCheck::ImplicitDefault { type_name } => {
                let upper = type_name.to_ascii_uppercase();
                let date = ["DATE", "DATETIME", "TIMESTAMP"]
                    .iter()
                    .any(|t| upper == *t || upper.starts_with(&format!("{t}(")));
                if !date || !self.refuses_zero_dates().await? {
                    return Ok(Verdict::Passes);
                }
                let keys = self.key_columns(table).await?;
                let from = self.inner(table, sample, &keys, &[], None);
                self.first_offender(
                    &Self::pk_shown(&keys),
                    from,
                    "",
                    Vec::new(),
                    exact,
                    "existing row (a zero date is refused by sql_mode)",
                    rehearse,
                )
                .await
            }
            LiveCheck::Nulls { expr } => {
                let keys = self.key_columns(table).await?;
                let from = self.inner(table, sample, &keys, std::slice::from_ref(expr), None);
                self.first_offender(
                    &Self::pk_shown(&keys),
                    from,
                    "WHERE t.`k0` IS NULL",
                    Vec::new(),
                    exact,
                    "NULL",
                    rehearse,
                )
                .await
            }
            LiveCheck::Duplicates {
                exprs,
                predicate,
                primary,
                ..
            } => {
                if *primary {
                    let keys = self.key_columns(table).await?;
                    let any_null: Vec<String> = (0..exprs.len())
                        .map(|i| format!("t.`k{i}` IS NULL"))
                        .collect();
                    let from = self.inner(table, sample, &keys, exprs, predicate.as_deref());
                    let nulls = self
                        .first_offender(
                            &Self::pk_shown(&keys),
                            from,
                            &format!("WHERE {}", any_null.join(" OR ")),
                            Vec::new(),
                            exact,
                            "NULL in a primary key column",
                            rehearse,
                        )
                        .await?;
                    if let Verdict::Fails(_) = nulls {
                        return Ok(nulls);
                    }
                }
                let from = self.inner(table, sample, &[], exprs, predicate.as_deref());
                let group: Vec<String> = (0..exprs.len()).map(|i| format!("t.`k{i}`")).collect();
                let not_null: Vec<String> =
                    group.iter().map(|g| format!("{g} IS NOT NULL")).collect();
                let rest = format!(
                    "WHERE {} GROUP BY {} HAVING COUNT(*) > 1",
                    not_null.join(" AND "),
                    group.join(", ")
                );
                self.first_offender(
                    &Self::expr_shown(exprs),
                    from,
                    &rest,
                    Vec::new(),
                    exact,
                    "duplicated key",
                    rehearse,
                )
                .await
            }
            LiveCheck::Orphans {
                exprs,
                parent,
                parent_columns,
            } => {
                let parent_columns = if parent_columns.is_empty() {
                    self.primary_key(parent).await?
                } else {
                    parent_columns.clone()
                };
                if parent_columns.len() != exprs.len() {
                    return Err(ProbeError::Cannot(format!(
                        "the referenced key of {} is not known",
                        parent.display()
                    )));
                }
                let from = self.inner(table, sample, &[], exprs, None);
                let mut conditions: Vec<String> = (0..exprs.len())
                    .map(|i| format!("t.`k{i}` IS NOT NULL"))
                    .collect();
                let join: Vec<String> = parent_columns
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("p.{} = t.`k{i}`", quote_ident(p)))
                    .collect();
                conditions.push(format!(
                    "NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})",
                    qualified(parent),
                    join.join(" AND ")
                ));
                self.first_offender(
                    &Self::expr_shown(exprs),
                    from,
                    &format!("WHERE {}", conditions.join(" AND ")),
                    Vec::new(),
                    exact,
                    "orphan key",
                    rehearse,
                )
                .await
            }
            LiveCheck::NonNull { exprs } => {
                let from = self.inner(table, sample, &[], exprs, None);
                let conditions: Vec<String> = (0..exprs.len())
                    .map(|i| format!("t.`k{i}` IS NOT NULL"))
                    .collect();
                self.first_offender(
                    &Self::expr_shown(exprs),
                    from,
                    &format!("WHERE {}", conditions.join(" AND ")),
                    Vec::new(),
                    exact,
                    "orphan key",
                    rehearse,
                )
                .await
            }
            LiveCheck::Violations { expr } => {
                let keys = self.key_columns(table).await?;
                let from = self.inner(table, sample, &keys, &[format!("({expr})")], None);
                self.first_offender(
                    &Self::pk_shown(&keys),
                    from,
                    "WHERE NOT t.`k0`",
                    Vec::new(),
                    exact,
                    "violating row",
                    rehearse,
                )
                .await
            }
            LiveCheck::EnumRemoved {
                column,
                new_values,
                array: false,
            } => {
                let keys = self.key_columns(table).await?;
                let from = self.inner(
                    table,
                    sample,
                    &keys,
                    &[format!("CAST({} AS CHAR)", quote_ident(column))],
                    None,
                );
                let marks = vec!["?"; new_values.len().max(1)].join(", ");
                let mut bind = new_values.clone();
                if bind.is_empty() {
                    bind.push(String::new());
                }
                self.first_offender(
                    &Self::pk_shown(&keys),
                    from,
                    &format!("WHERE t.`k0` NOT IN ({marks})"),
                    bind,
                    exact,
                    "row holding a removed value",
                    rehearse,
                )
                .await
            }
            LiveCheck::TooLong { expr, max } => {
                let keys = self.key_columns(table).await?;
                let from = self.inner(
                    table,
                    sample,
                    &keys,
                    &[format!("CHAR_LENGTH(RTRIM({expr}))")],
                    None,
                );
                self.first_offender(
                    &Self::pk_shown(&keys),
                    from,
                    &format!("WHERE t.`k0` > {max}"),
                    Vec::new(),
                    exact,
                    &format!("value longer than {max} characters"),
                    rehearse,
                )
                .await
            }
            LiveCheck::OutOfRange { expr, min, max } => {
                let keys = self.key_columns(table).await?;
                let from = self.inner(table, sample, &keys, std::slice::from_ref(expr), None);
                self.first_offender(
                    &Self::pk_shown(&keys),
                    from,
                    &format!("WHERE t.`k0` < {min} OR t.`k0` > {max}"),
                    Vec::new(),
                    exact,
                    "value out of the new type's range",
                    rehearse,
                )
                .await
            }
            LiveCheck::EnumRemoved { array: true, .. }
            | LiveCheck::Runs
            | LiveCheck::Evaluates { .. }
            | LiveCheck::Dependents { .. } => Err(ProbeError::Cannot(
                "this check is made on PostgreSQL only".into(),
            )),
        }
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

fn qualified(table: &QName) -> String {
    match &table.schema {
        Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&table.name)),
        None => quote_ident(&table.name),
    }
}
