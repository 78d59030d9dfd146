//! [`PgProbe`]: preflight's [`DataProbe`] over a plain PostgreSQL connection (it needs nothing
//! from the migration session), and the query naming who holds a lock.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Row};

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

    /// Runs one query in a time-bounded transaction that is rolled back: `READ ONLY`, or
    /// `READ WRITE` when `rehearse` holds earlier pending statements of the plan to run
    /// first (each estimated by `EXPLAIN` and counted against the row budget).
    async fn query(
        &mut self,
        sql: String,
        bind: Option<Vec<String>>,
        rehearse: &[String],
    ) -> Result<Vec<PgRow>, ProbeError> {
        self.query_after(sql, bind, rehearse, false).await
    }

    /// [`PgProbe::query`]; with `tested`, the last statement of `rehearse` is the one a
    /// [`LiveCheck::Runs`] asks about: a data or integrity error there is the answer.
    async fn query_after(
        &mut self,
        sql: String,
        bind: Option<Vec<String>>,
        rehearse: &[String],
        tested: bool,
    ) -> Result<Vec<PgRow>, ProbeError> {
        let statement_timeout = self.limits.statement_timeout;
        // BEGIN and the bounds in one round trip; ROLLBACK below in every case.
        let setup = format!(
            "BEGIN {}; SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
            if rehearse.is_empty() {
                "READ ONLY"
            } else {
                "READ WRITE"
            },
            statement_timeout.as_millis().max(1),
            self.limits.lock_timeout.as_millis().max(1)
        );
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(setup))
            .execute(&mut *self.conn)
            .await
        {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *self.conn).await;
            return Err(classify_error(&e, statement_timeout));
        }
        let tx = &mut *self.conn;
        for (i, step) in rehearse.iter().enumerate() {
            if let Err(e) = rehearse_step(tx, step, self.limits.rehearsal_rows).await {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *tx).await;
                // The statement under test (`LiveCheck::Runs`) refused by the rows themselves.
                if tested
                    && i + 1 == rehearse.len()
                    && let StepError::Sql(e) = &e
                    && let Some(db) = e.as_database_error()
                    && let Some(code) = db.code()
                    && (code.starts_with("22") || code.starts_with("23"))
                {
                    let message = db.message();
                    let head = message.split(':').next().unwrap_or(message);
                    return Err(ProbeError::DataException(format!("{code}: {head}")));
                }
                return Err(match e {
                    // A statement of the plan failing here says nothing sure about the
                    // check (the DDL before it was not rehearsed): no prediction.
                    StepError::Sql(e) => match classify_error(&e, statement_timeout) {
                        ProbeError::Cannot(why) | ProbeError::DataException(why) => {
                            ProbeError::Rehearsal(format!("failed: {why}"))
                        }
                        other => other,
                    },
                    StepError::Budget(why) => ProbeError::Rehearsal(why),
                });
            }
        }
        let query = sqlx::query(AssertSqlSafe(sql));
        let query = match bind {
            Some(values) => query.bind(values),
            None => query,
        };
        let rows = query.fetch_all(&mut *tx).await;
        // Always rolled back: a failed query aborted the transaction anyway, and a rehearsal
        // must leave nothing behind.
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *tx).await;
        rows.map_err(|e| classify_error(&e, statement_timeout))
    }

    async fn primary_key(&mut self, table: &QName) -> Result<Vec<String>, ProbeError> {
        let rows = self
            .query(
                "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                 WHERE i.indrelid = to_regclass(($1::text[])[1]) AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)"
                    .into(),
                Some(vec![regclass_text(table)]),
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

    /// The key columns to report for an offending row: the primary key, else `ctid`.
    async fn key_columns(&mut self, table: &QName) -> Result<Vec<String>, ProbeError> {
        let pk = self.primary_key(table).await?;
        Ok(if pk.is_empty() {
            vec!["ctid".into()]
        } else {
            pk
        })
    }

    /// Whether an index of `table` starts with exactly `columns`, in order: a question on
    /// them is then answered from the index (bounded by `LIMIT 1`), not from a sample.
    async fn indexed(&mut self, table: &QName, columns: &[String]) -> Result<bool, ProbeError> {
        let mut bind = vec![regclass_text(table)];
        bind.extend(columns.iter().cloned());
        let rows = self
            .query(
                "SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass(($1::text[])[1]) AND i.indpred IS NULL \
                 AND (SELECT array_agg(a.attname::text ORDER BY k.n) FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
                      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                      WHERE k.n <= array_length($1::text[], 1) - 1) = ($1::text[])[2:])"
                    .into(),
                Some(bind),
                &[],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.try_get::<bool, _>(0).ok())
            .unwrap_or(false))
    }

    /// `(SELECT <pk> AS "p0", …, <expr> AS "k0", … FROM table [TABLESAMPLE] [WHERE predicate]) AS t`:
    /// the expressions are evaluated over the live table, and the outer query reads them
    /// as `t.k0`, … (so a parent's columns in a subquery cannot capture their names).
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
            .map(|(i, k)| {
                let column = if k == "ctid" { k.clone() } else { ident(k) };
                format!("{column} AS \"p{i}\"")
            })
            .collect();
        select.extend(
            exprs
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{e} AS \"k{i}\"")),
        );
        if select.is_empty() {
            select.push("1".into());
        }
        let mut from = qualified(table);
        if sample {
            from.push_str(&format!(
                " TABLESAMPLE SYSTEM ({})",
                self.limits.sample_percent
            ));
        }
        let filter = predicate
            .map(|p| format!(" WHERE ({p})"))
            .unwrap_or_default();
        format!("(SELECT {} FROM {from}{filter}) AS t", select.join(", "))
    }

    /// Runs `SELECT <shown>::text…, count(*) OVER () FROM <inner> <rest> LIMIT 1` (without the
    /// count when `count` is false: a query answered from an index stops at the first row).
    #[allow(clippy::too_many_arguments)]
    async fn first_offender(
        &mut self,
        shown: &[(String, String)],
        from: String,
        rest: &str,
        bind: Option<Vec<String>>,
        exact: bool,
        count: bool,
        what: &str,
        rehearse: &[String],
    ) -> Result<Verdict, ProbeError> {
        let mut select: Vec<String> = shown
            .iter()
            .map(|(_, sql)| format!("({sql})::text"))
            .collect();
        select.push(if count {
            "count(*) OVER ()::int8".into()
        } else {
            "NULL::int8".into()
        });
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
                value.as_deref().map(shorten).unwrap_or("NULL")
            ));
        }
        let n: Option<i64> = row
            .try_get(shown.len())
            .map_err(|e| ProbeError::Cannot(e.to_string()))?;
        Ok(Verdict::Fails(Violation {
            count: n.filter(|_| exact).map(|n| n.max(0) as u64),
            example_key: Some(parts.join(", ")),
            what: what.to_owned(),
        }))
    }

    /// The primary key columns, shown as `id=…` (read as `t.p0`, …).
    fn pk_shown(keys: &[String]) -> Vec<(String, String)> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), format!("t.\"p{i}\"")))
            .collect()
    }

    /// The expressions, shown by their text (read as `t.k0`, …).
    fn expr_shown(exprs: &[String]) -> Vec<(String, String)> {
        exprs
            .iter()
            .enumerate()
            .map(|(i, e)| (shown_name(e), format!("t.\"k{i}\"")))
            .collect()
    }

    async fn check(
        &mut self,
        table: &QName,
        check: &LiveCheck,
        sample: bool,
        rehearse: &[String],
    ) -> Result<Verdict, ProbeError> {
        // A plain column on a large table: an index on it answers exactly, without sampling.
        let mut sample = sample;
        let mut from_index = false;
        if sample {
            let columns: Option<Vec<String>> = match check {
                LiveCheck::Nulls { expr } => plain_column(expr).map(|c| vec![c]),
                LiveCheck::Duplicates { exprs, .. } => {
                    exprs.iter().map(|e| plain_column(e)).collect()
                }
                _ => None,
            };
            if let Some(columns) = columns
                && self.indexed(table, &columns).await?
            {
                sample = false;
                from_index = true;
            }
        }
        let exact = !sample;
        // Counting every offender reads the whole table: not on a large one, where the
        // index answers only whether there is one.
        let count = exact && !from_index;
        match check {
            LiveCheck::HasRows => {
                let keys = self.key_columns(table).await?;
                let from = self.inner(table, sample, &keys, &[], None);
                self.first_offender(
                    &Self::pk_shown(&keys),
                    from,
                    "",
                    None,
                    exact,
                    count,
                    "existing row",
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
                    "WHERE t.\"k0\" IS NULL",
                    None,
                    exact,
                    count,
                    "NULL",
                    rehearse,
                )
                .await
            }
            LiveCheck::Duplicates {
                exprs,
                predicate,
                primary,
                nulls_distinct,
            } => {
                let any_null: Vec<String> = (0..exprs.len())
                    .map(|i| format!("t.\"k{i}\" IS NULL"))
                    .collect();
                if *primary {
                    let keys = self.key_columns(table).await?;
                    let from = self.inner(table, sample, &keys, exprs, predicate.as_deref());
                    let nulls = self
                        .first_offender(
                            &Self::pk_shown(&keys),
                            from,
                            &format!("WHERE {}", any_null.join(" OR ")),
                            None,
                            exact,
                            count,
                            "NULL in a primary key column",
                            rehearse,
                        )
                        .await?;
                    if let Verdict::Fails(_) = nulls {
                        return Ok(nulls);
                    }
                }
                let from = self.inner(table, sample, &[], exprs, predicate.as_deref());
                let group: Vec<String> = (0..exprs.len()).map(|i| format!("t.\"k{i}\"")).collect();
                let filter = if *nulls_distinct {
                    let not_null: Vec<String> =
                        group.iter().map(|g| format!("{g} IS NOT NULL")).collect();
                    format!("WHERE {}", not_null.join(" AND "))
                } else {
                    String::new()
                };
                let rest = format!("{filter} GROUP BY {} HAVING count(*) > 1", group.join(", "));
                self.first_offender(
                    &Self::expr_shown(exprs),
                    from,
                    &rest,
                    None,
                    exact,
                    count,
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
                    .map(|i| format!("t.\"k{i}\" IS NOT NULL"))
                    .collect();
                let join: Vec<String> = parent_columns
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("p.{} = t.\"k{i}\"", ident(p)))
                    .collect();
                conditions.push(format!(
                    "NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})",
                    qualified(parent),
                    join.join(" AND ")
                ));
                let rest = format!("WHERE {}", conditions.join(" AND "));
                self.first_offender(
                    &Self::expr_shown(exprs),
                    from,
                    &rest,
                    None,
                    exact,
                    count,
                    "orphan key",
                    rehearse,
                )
                .await
            }
            LiveCheck::NonNull { exprs } => {
                let from = self.inner(table, sample, &[], exprs, None);
                let conditions: Vec<String> = (0..exprs.len())
                    .map(|i| format!("t.\"k{i}\" IS NOT NULL"))
                    .collect();
                let rest = format!("WHERE {}", conditions.join(" AND "));
                self.first_offender(
                    &Self::expr_shown(exprs),
                    from,
                    &rest,
                    None,
                    exact,
                    count,
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
                    "WHERE NOT t.\"k0\"",
                    None,
                    exact,
                    count,
                    "violating row",
                    rehearse,
                )
                .await
            }
            LiveCheck::EnumRemoved {
                column,
                new_values,
                array,
            } => {
                let keys = self.key_columns(table).await?;
                let (expr, rest) = if *array {
                    (
                        format!("{}::text[]", ident(column)),
                        "WHERE EXISTS (SELECT 1 FROM unnest(t.\"k0\") AS v WHERE v IS NOT NULL AND v <> ALL ($1::text[]))",
                    )
                } else {
                    (
                        format!("{}::text", ident(column)),
                        "WHERE t.\"k0\" <> ALL ($1::text[])",
                    )
                };
                let from = self.inner(table, sample, &keys, &[expr], None);
                self.first_offender(
                    &Self::pk_shown(&keys),
                    from,
                    rest,
                    Some(new_values.clone()),
                    exact,
                    count,
                    "row holding a removed value",
                    rehearse,
                )
                .await
            }
            LiveCheck::Evaluates { expr } => {
                // count(x) evaluates x on every row: a refused conversion raises a data
                // exception (SQLSTATE class 22), which `find` turns into the verdict.
                let from = self.inner(table, sample, &[], &[format!("ROW({expr})")], None);
                self.query(
                    format!("SELECT count(t.\"k0\") FROM {from}"),
                    None,
                    rehearse,
                )
                .await?;
                Ok(if exact {
                    Verdict::Passes
                } else {
                    Verdict::NotFoundInSample
                })
            }
            LiveCheck::TooLong { expr, max } => {
                let keys = self.key_columns(table).await?;
                // Assignment to varchar(n) refuses a longer value unless the excess is spaces.
                let length = format!("char_length(rtrim(({expr})::text, ' '))");
                let from = self.inner(table, sample, &keys, &[length], None);
                self.first_offender(
                    &Self::pk_shown(&keys),
                    from,
                    &format!("WHERE t.\"k0\" > {max}"),
                    None,
                    exact,
                    count,
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
                    &format!("WHERE t.\"k0\" < {min} OR t.\"k0\" > {max}"),
                    None,
                    exact,
                    count,
                    "value out of the new type's range",
                    rehearse,
                )
                .await
            }
            LiveCheck::Dependents { column, except } => {
                let rows = self
                    .query(
                        "SELECT DISTINCT v.relname::text, v.oid::regclass::text FROM pg_depend d \
                         JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class \
                         WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass \
                         AND d.refobjid = to_regclass(($1::text[])[1]) AND v.oid <> d.refobjid \
                         AND (($1::text[])[2] = '' OR d.refobjsubid = (SELECT a.attnum FROM pg_attribute a \
                              WHERE a.attrelid = d.refobjid AND a.attname = ($1::text[])[2])) ORDER BY 2"
                            .into(),
                        Some(vec![regclass_text(table), column.clone().unwrap_or_default()]),
                        &[],
                    )
                    .await?;
                let views: Vec<String> = rows
                    .iter()
                    .filter_map(|r| {
                        let name: String = r.try_get(0).ok()?;
                        let shown: String = r.try_get(1).ok()?;
                        (!except.contains(&name)).then_some(shown)
                    })
                    .collect();
                Ok(match views.first() {
                    None => Verdict::Passes,
                    Some(_) => Verdict::Fails(Violation {
                        count: Some(views.len() as u64),
                        example_key: Some(views.join(", ")),
                        what: "view depending on it".into(),
                    }),
                })
            }
            LiveCheck::Runs => {
                self.query_after("SELECT 1".into(), None, rehearse, true)
                    .await?;
                Ok(Verdict::Passes)
            }
            LiveCheck::ImplicitDefault { .. } => Ok(Verdict::NotApplicable(
                "PostgreSQL has no implicit defaults".into(),
            )),
        }
    }
}

/// Why a rehearsal step stopped.
enum StepError {
    Sql(sqlx::Error),
    Budget(String),
}

/// Runs one earlier pending statement inside the probe's transaction: a data change only
/// when `EXPLAIN` estimates it within `budget` rows, and only if it then touched no more.
async fn rehearse_step(tx: &mut PgConnection, step: &str, budget: u64) -> Result<(), StepError> {
    let ddl = crate::sql::split(step, crate::sql::Flavor::Postgres)
        .first()
        .and_then(|s| s.tokens().next())
        .is_some_and(|t| t.text.eq_ignore_ascii_case("ALTER"));
    if !ddl {
        let plan = sqlx::raw_sql(AssertSqlSafe(format!("EXPLAIN {step}")))
            .fetch_all(&mut *tx)
            .await
            .map_err(StepError::Sql)?;
        let estimate = plan
            .iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .filter_map(|line| plan_rows(&line))
            .max()
            .unwrap_or(0);
        if estimate > budget {
            return Err(StepError::Budget(format!(
                "would touch about {estimate} rows, more than the {budget} a rehearsal may"
            )));
        }
    }
    let done = sqlx::raw_sql(AssertSqlSafe(step.to_owned()))
        .execute(&mut *tx)
        .await
        .map_err(StepError::Sql)?;
    if done.rows_affected() > budget {
        return Err(StepError::Budget(format!(
            "touched {} rows, more than the {budget} a rehearsal may",
            done.rows_affected()
        )));
    }
    Ok(())
}

/// `rows=N` in a line of `EXPLAIN`'s text.
fn plan_rows(line: &str) -> Option<u64> {
    let at = line.find("rows=")?;
    let digits: String = line[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// How an expression is named in evidence: a plain column by its name.
fn shown_name(expr: &str) -> String {
    plain_column(expr).unwrap_or_else(|| expr.trim_matches(['(', ')']).to_owned())
}

/// `"name"` → `name` (a quoted plain column, as the rules write one).
fn plain_column(expr: &str) -> Option<String> {
    let inner = expr.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"')).then(|| inner.to_owned())
}

#[async_trait]
impl DataProbe for PgProbe<'_> {
    async fn size(&mut self, table: &QName) -> Result<Option<TableSize>, ProbeError> {
        let rows = self
            .query(
                "SELECT c.reltuples::float8, pg_total_relation_size(c.oid)::int8, pg_relation_size(c.oid)::int8 FROM pg_class c WHERE c.oid = to_regclass(($1::text[])[1])"
                    .into(),
                Some(vec![regclass_text(table)]),
                &[],
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
        let heap: i64 = row
            .try_get(2)
            .map_err(|e| ProbeError::Cannot(e.to_string()))?;
        let rows = self
            .query(
                format!("SELECT EXISTS (SELECT 1 FROM {})", qualified(table)),
                None,
                &[],
            )
            .await?;
        let has_rows: bool = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| ProbeError::Cannot(e.to_string()))?
            .unwrap_or(false);
        // Never analysed (reltuples = -1): as many rows as the heap could hold at the
        // smallest row PostgreSQL stores (about 32 bytes with its line pointer), so that an
        // unanalysed big table is not taken for a small one.
        let row_estimate = if reltuples >= 0.0 {
            reltuples as u64
        } else {
            heap.max(0) as u64 / 32
        };
        Ok(Some(TableSize {
            row_estimate: Some(row_estimate),
            bytes: bytes.max(0) as u64,
            has_rows,
        }))
    }

    async fn find(
        &mut self,
        table: &QName,
        check: &LiveCheck,
        sample: bool,
        rehearse: &[String],
    ) -> Result<Verdict, ProbeError> {
        match self.check(table, check, sample, rehearse).await {
            Err(ProbeError::DataException(why)) => Ok(Verdict::Fails(Violation {
                count: None,
                example_key: None,
                what: format!("row the statement cannot process ({why})"),
            })),
            other => other,
        }
    }

    async fn blockers(&mut self, tables: &[QName]) -> Result<Vec<Blocker>, ProbeError> {
        let names: Vec<String> = tables.iter().map(regclass_text).collect();
        let sql =
            holders_query("l.relation = ANY (SELECT to_regclass(x) FROM unnest($1::text[]) x)");
        let rows = self.query(sql, Some(names), &[]).await?;
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
            // A data exception: a value the expression refuses. Its message names the value
            // (`…: "abc"`); only the part before it is kept.
            Some(code) if code.starts_with("22") => {
                let message = db.message();
                let head = message.split(':').next().unwrap_or(message);
                return ProbeError::DataException(format!("{code}: {head}"));
            }
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
