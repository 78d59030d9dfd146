//! [`PgProbe`]: preflight's [`DataProbe`] over a plain PostgreSQL connection (it needs nothing
//! from the migration session), and the query naming who holds a lock.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::ADVISORY_LOCK_KEY as MIGRATION_LOCK_KEY;
use crate::preflight::Blocker;
use crate::preflight::{
    DataProbe, LiveCheck, LiveLimits, ProbeError, QName, TableSize, Verdict, Violation,
};
use crate::sql::without_literals;

/// [`DataProbe`] over a PostgreSQL connection (its `search_path` resolves unqualified names).
pub struct PgProbe<'c> {
    conn: &'c mut PgConnection,
    limits: LiveLimits,
}

impl<'c> PgProbe<'c> {
    pub fn new(conn: &'c mut PgConnection, limits: LiveLimits) -> PgProbe<'c> {
        PgProbe { conn, limits }
    }

    /// Runs one query in a READ ONLY, time-bounded transaction that is rolled back.
    async fn query(
        &mut self,
        sql: String,
        bind: Option<Vec<String>>,
    ) -> Result<Vec<PgRow>, ProbeError> {
        let statement_timeout = self.limits.statement_timeout;
        let setup = format!(
            "SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
            statement_timeout.as_millis().max(1),
            self.limits.lock_timeout.as_millis().max(1)
        );
        let mut tx = self
            .conn
            .begin()
            .await
            .map_err(|e| classify_error(&e, statement_timeout))?;
        sqlx::raw_sql(AssertSqlSafe(setup))
            .execute(&mut *tx)
            .await
            .map_err(|e| classify_error(&e, statement_timeout))?;
        let query = sqlx::query(AssertSqlSafe(sql));
        let query = match bind {
            Some(values) => query.bind(values),
            None => query,
        };
        let rows = query.fetch_all(&mut *tx).await;
        // A failed query aborted the transaction; rolling back is all there is to do either way.
        let _ = tx.rollback().await;
        rows.map_err(|e| classify_error(&e, statement_timeout))
    }

    async fn primary_key(&mut self, table: &QName) -> Result<Vec<String>, ProbeError> {
        let rows = self
            .query(
                "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                 WHERE i.indrelid = to_regclass(($1::text[])[1]) AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)"
                    .into(),
                Some(vec![regclass_text(table)]),
            )
            .await?;
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>(0)
                    .map_err(|e| ProbeError::Cannot(e.to_string()))
            })
            .collect()
    }

    /// The key columns to report for an offending row: the primary key, else `ctid`.
    async fn key_columns(&mut self, table: &QName) -> Result<Vec<String>, ProbeError> {
        let pk = self.primary_key(table).await?;
        Ok(if pk.is_empty() {
            vec!["ctid".into()]
        } else {
            pk
        })
    }

    fn from(&self, table: &QName, sample: bool) -> String {
        let mut from = format!("{} AS t", qualified(table));
        if sample {
            from.push_str(&format!(
                " TABLESAMPLE SYSTEM ({})",
                self.limits.sample_percent
            ));
        }
        from
    }

    /// Runs `SELECT <keys as text>, count(*) OVER () FROM … <rest> LIMIT 1`.
    async fn first_offender(
        &mut self,
        keys: &[String],
        from: String,
        rest: &str,
        bind: Option<Vec<String>>,
        sample: bool,
        what: &str,
    ) -> Result<Verdict, ProbeError> {
        let select: Vec<String> = keys
            .iter()
            .map(|k| format!("t.{}::text", ident(k)))
            .collect();
        let sql = format!(
            "SELECT {}, count(*) OVER ()::int8 FROM {from} {rest} LIMIT 1",
            select.join(", ")
        );
        let rows = self.query(sql, bind).await?;
        let Some(row) = rows.first() else {
            return Ok(if sample {
                Verdict::NotFoundInSample
            } else {
                Verdict::Passes
            });
        };
        let mut parts = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let value: Option<String> = row
                .try_get(i)
                .map_err(|e| ProbeError::Cannot(e.to_string()))?;
            parts.push(format!(
                "{key}={}",
                value.as_deref().map(shorten).unwrap_or("NULL")
            ));
        }
        let count: i64 = row
            .try_get(keys.len())
            .map_err(|e| ProbeError::Cannot(e.to_string()))?;
        Ok(Verdict::Fails(Violation {
            count: (!sample).then_some(count.max(0) as u64),
            example_key: Some(parts.join(", ")),
            what: what.to_owned(),
        }))
    }
}

#[async_trait]
impl DataProbe for PgProbe<'_> {
    async fn size(&mut self, table: &QName) -> Result<Option<TableSize>, ProbeError> {
        let rows = self
            .query(
                "SELECT c.reltuples::float8, pg_total_relation_size(c.oid)::int8 FROM pg_class c WHERE c.oid = to_regclass(($1::text[])[1])"
                    .into(),
                Some(vec![regclass_text(table)]),
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let reltuples: f64 = row
            .try_get(0)
            .map_err(|e| ProbeError::Cannot(e.to_string()))?;
        let bytes: i64 = row
            .try_get(1)
            .map_err(|e| ProbeError::Cannot(e.to_string()))?;
        let rows = self
            .query(
                format!("SELECT EXISTS (SELECT 1 FROM {})", qualified(table)),
                None,
            )
            .await?;
        let has_rows: bool = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| ProbeError::Cannot(e.to_string()))?
            .unwrap_or(false);
        Ok(Some(TableSize {
            row_estimate: (reltuples >= 0.0).then_some(reltuples as u64),
            bytes: bytes.max(0) as u64,
            has_rows,
        }))
    }

    async fn find(
        &mut self,
        table: &QName,
        check: &LiveCheck,
        sample: bool,
    ) -> Result<Verdict, ProbeError> {
        let from = self.from(table, sample);
        match check {
            LiveCheck::HasRows => {
                let keys = self.key_columns(table).await?;
                self.first_offender(&keys, from, "", None, sample, "existing row")
                    .await
            }
            LiveCheck::Nulls { column } => {
                let keys = self.key_columns(table).await?;
                let rest = format!("WHERE t.{} IS NULL", ident(column));
                self.first_offender(&keys, from, &rest, None, sample, "NULL")
                    .await
            }
            LiveCheck::Duplicates {
                columns,
                predicate,
                primary,
            } => {
                if *primary {
                    let keys = self.key_columns(table).await?;
                    let any_null: Vec<String> = columns
                        .iter()
                        .map(|c| format!("t.{} IS NULL", ident(c)))
                        .collect();
                    let rest = format!("WHERE {}", any_null.join(" OR "));
                    let nulls = self
                        .first_offender(
                            &keys,
                            from.clone(),
                            &rest,
                            None,
                            sample,
                            "NULL in a primary key column",
                        )
                        .await?;
                    if let Verdict::Fails(_) = nulls {
                        return Ok(nulls);
                    }
                }
                let mut conditions: Vec<String> = columns
                    .iter()
                    .map(|c| format!("t.{} IS NOT NULL", ident(c)))
                    .collect();
                if let Some(predicate) = predicate {
                    conditions.push(format!("({predicate})"));
                }
                let group: Vec<String> =
                    columns.iter().map(|c| format!("t.{}", ident(c))).collect();
                let rest = format!(
                    "WHERE {} GROUP BY {} HAVING count(*) > 1",
                    conditions.join(" AND "),
                    group.join(", ")
                );
                self.first_offender(columns, from, &rest, None, sample, "duplicated key")
                    .await
            }
            LiveCheck::Orphans {
                columns,
                parent,
                parent_columns,
            } => {
                let parent_columns = if parent_columns.is_empty() {
                    self.primary_key(parent).await?
                } else {
                    parent_columns.clone()
                };
                if parent_columns.len() != columns.len() {
                    return Err(ProbeError::Cannot(format!(
                        "the referenced key of {} is not known",
                        parent.display()
                    )));
                }
                let mut conditions: Vec<String> = columns
                    .iter()
                    .map(|c| format!("t.{} IS NOT NULL", ident(c)))
                    .collect();
                let join: Vec<String> = columns
                    .iter()
                    .zip(&parent_columns)
                    .map(|(c, p)| format!("p.{} = t.{}", ident(p), ident(c)))
                    .collect();
                conditions.push(format!(
                    "NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})",
                    qualified(parent),
                    join.join(" AND ")
                ));
                let rest = format!("WHERE {}", conditions.join(" AND "));
                self.first_offender(columns, from, &rest, None, sample, "orphan key")
                    .await
            }
            LiveCheck::NonNull { columns } => {
                let conditions: Vec<String> = columns
                    .iter()
                    .map(|c| format!("t.{} IS NOT NULL", ident(c)))
                    .collect();
                let rest = format!("WHERE {}", conditions.join(" AND "));
                self.first_offender(columns, from, &rest, None, sample, "orphan key")
                    .await
            }
            LiveCheck::Violations { expr } => {
                let keys = self.key_columns(table).await?;
                let rest = format!("WHERE NOT ({expr})");
                self.first_offender(&keys, from, &rest, None, sample, "violating row")
                    .await
            }
            LiveCheck::EnumRemoved { column, new_values } => {
                let rows = self
                    .query(
                        "SELECT e.enumlabel::text FROM pg_attribute a JOIN pg_enum e ON e.enumtypid = a.atttypid \
                         WHERE a.attrelid = to_regclass(($1::text[])[1]) AND a.attname = ($1::text[])[2] ORDER BY e.enumsortorder"
                            .into(),
                        Some(vec![regclass_text(table), column.clone()]),
                    )
                    .await?;
                let labels: Vec<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
                if labels.is_empty() {
                    return Err(ProbeError::Cannot(format!(
                        "`{column}` is not an enum column"
                    )));
                }
                let removed: Vec<String> = labels
                    .into_iter()
                    .filter(|l| !new_values.contains(l))
                    .collect();
                if removed.is_empty() {
                    return Ok(Verdict::NotApplicable(
                        "no value of the current enum is removed".into(),
                    ));
                }
                let keys = self.key_columns(table).await?;
                let rest = format!("WHERE t.{}::text = ANY ($1::text[])", ident(column));
                self.first_offender(
                    &keys,
                    from,
                    &rest,
                    Some(removed),
                    sample,
                    "row holding a removed value",
                )
                .await
            }
        }
    }

    async fn blockers(&mut self, tables: &[QName]) -> Result<Vec<Blocker>, ProbeError> {
        let names: Vec<String> = tables.iter().map(regclass_text).collect();
        let sql =
            holders_query("l.relation = ANY (SELECT to_regclass(x) FROM unnest($1::text[]) x)");
        let rows = self.query(sql, Some(names)).await?;
        Ok(rows.iter().map(blocker_from_row).collect())
    }
}

/// Other sessions holding a granted lock on a relation that `relations` (a condition on
/// `l.relation`) selects, or Prisma's migration lock in this database: pid, what it holds,
/// the mode, `application_name`, user, state, transaction age in seconds and its query
/// (read with [`blocker_from_row`]). At most 20 rows. Preflight and the PostgreSQL dialect
/// (after a lock wait ran out) both ask with it.
pub(crate) fn holders_query(relations: &str) -> String {
    format!(
        "SELECT DISTINCT a.pid, CASE WHEN l.locktype = 'advisory' THEN 'migration lock' ELSE l.relation::regclass::text END, l.mode, \
         a.application_name, a.usename::text, a.state, extract(epoch FROM now() - a.xact_start)::float8, a.query \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.granted AND a.pid <> pg_backend_pid() \
         AND (({relations}) \
              OR (l.locktype = 'advisory' AND l.classid = 0 AND l.objid = {MIGRATION_LOCK_KEY} AND l.objsubid = 1 \
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))) \
         ORDER BY 1, 2 LIMIT 20"
    )
}

/// One row of [`holders_query`], its query without literals.
pub(crate) fn blocker_from_row(row: &PgRow) -> Blocker {
    let text = |i: usize| {
        row.try_get::<Option<String>, _>(i)
            .ok()
            .flatten()
            .filter(|s| !s.is_empty())
    };
    Blocker {
        pid: row.try_get(0).unwrap_or_default(),
        holds: text(1).unwrap_or_default(),
        mode: text(2).unwrap_or_default(),
        application_name: text(3),
        user: text(4),
        state: text(5),
        transaction_age_s: row
            .try_get::<Option<f64>, _>(6)
            .ok()
            .flatten()
            .map(|s| s.max(0.0) as u64),
        query: text(7).map(|q| without_literals(&q)),
    }
}

fn classify_error(error: &sqlx::Error, timeout: Duration) -> ProbeError {
    if let Some(db) = error.as_database_error() {
        match db.code().as_deref() {
            Some("57014") => return ProbeError::Timeout(timeout),
            Some("55P03") => return ProbeError::Locked,
            _ => {}
        }
    }
    ProbeError::Cannot(error.to_string())
}

/// `"a""b"`.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn qualified(table: &QName) -> String {
    match &table.schema {
        Some(schema) => format!("{}.{}", ident(schema), ident(&table.name)),
        None => ident(&table.name),
    }
}

/// The text `to_regclass` reads: quoted parts, so case and odd characters survive.
fn regclass_text(table: &QName) -> String {
    qualified(table)
}

/// Key values longer than 100 characters are cut.
fn shorten(value: &str) -> &str {
    crate::text::clip_chars(value, 100)
}
