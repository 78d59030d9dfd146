//! [`PgProbe`]: preflight's [`DataProbe`] over a plain PostgreSQL connection (it needs nothing
//! from the migration session), and the query naming who holds a lock.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Row};

use super::ADVISORY_LOCK_KEY as MIGRATION_LOCK_KEY;
use super::transaction::non_transactional_reason;
use crate::preflight::Blocker;
use crate::preflight::questions::{Asker, Builder, Dialect, OffenderRow, Sample, ask};
use crate::preflight::{
    DataProbe, LiveCheck, LiveLimits, PlanRehearsal, ProbeError, QName, RehearsalError, TableSize,
    Verdict, Violation,
};
use crate::sql::without_literals;

/// [`DataProbe`] over a PostgreSQL connection (its `search_path` resolves unqualified names).
pub struct PgProbe<'c> {
    conn: &'c mut PgConnection,
    limits: LiveLimits,
    /// While set, questions read this relation (the distinct values of one indexed column,
    /// [`distinct_values`]) instead of the table: no row keys are shown then.
    source: Option<String>,
}

/// The most distinct values of an indexed column a question on a large table walks through
/// its index (one index probe each); past it the question falls back to a sample.
pub const INDEX_DISTINCT_LIMIT: u64 = 10_000;

impl<'c> PgProbe<'c> {
    pub fn new(conn: &'c mut PgConnection, limits: LiveLimits) -> PgProbe<'c> {
        PgProbe {
            conn,
            limits,
            source: None,
        }
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

    /// The relation a question reads: the table, or the distinct values standing in for it.
    fn relation(&self, table: &QName) -> String {
        match &self.source {
            Some(source) => format!("{source} AS {}", ident(&table.name)),
            None => qualified(table),
        }
    }

    /// A question about one column of a large table, answered exactly through an index
    /// that leads with the column: the index's distinct values are walked (a recursive
    /// skip scan, one index probe per value, at most [`INDEX_DISTINCT_LIMIT`]) and the
    /// check is asked of them. `None` when the column has more distinct values than that
    /// (the caller then samples).
    async fn through_index(
        &mut self,
        table: &QName,
        column: &str,
        check: &LiveCheck,
        rehearse: &[String],
    ) -> Result<Option<Verdict>, ProbeError> {
        let values = distinct_values(table, column, INDEX_DISTINCT_LIMIT);
        let rows = self
            .query(
                format!("SELECT count(*) > {INDEX_DISTINCT_LIMIT} FROM {values} AS d"),
                None,
                rehearse,
            )
            .await?;
        let truncated = rows
            .first()
            .and_then(|r| r.try_get::<bool, _>(0).ok())
            .unwrap_or(true);
        if truncated {
            return Ok(None);
        }
        self.source = Some(values);
        let verdict = Box::pin(self.check(table, check, false, rehearse)).await;
        self.source = None;
        Ok(Some(match verdict? {
            Verdict::Fails(mut v) => {
                v.what = format!("{} (found through the index on `{column}`)", v.what);
                Verdict::Fails(v)
            }
            other => other,
        }))
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
        // Any other question about a single column: through the index's distinct values.
        if sample
            && self.source.is_none()
            && let Some(column) = single_column(check)
            && self.indexed(table, std::slice::from_ref(&column)).await?
            && let Some(verdict) = self.through_index(table, &column, check, rehearse).await?
        {
            return Ok(verdict);
        }
        let exact = !sample;
        // Counting every offender reads the whole table: not on a large one, where the
        // index answers only whether there is one.
        let count = exact && !from_index && self.source.is_none();
        match check {
            LiveCheck::Evaluates { expr } => {
                // count(x) evaluates x on every row: a refused conversion raises a data
                // exception (SQLSTATE class 22), which `find` turns into the verdict.
                let dialect = self.dialect();
                let builder = Builder {
                    dialect: &dialect,
                    relation: self.relation(table),
                    sample,
                };
                let sql = builder.evaluation(expr, |e| format!("ROW({e})"));
                self.query(sql, None, rehearse).await?;
                Ok(if exact {
                    Verdict::Passes
                } else {
                    Verdict::NotFoundInSample
                })
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
            _ => {
                let relation = self.relation(table);
                ask(self, table, relation, check, sample, count, rehearse).await
            }
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
    // Only a data change has a plan for `EXPLAIN` to estimate.
    let dml = crate::sql::split(step, crate::sql::Flavor::Postgres)
        .iter()
        .find(|s| !s.is_blank())
        .and_then(|s| s.keywords(1).into_iter().next())
        .is_some_and(|w| {
            matches!(
                w.as_str(),
                "UPDATE" | "DELETE" | "INSERT" | "WITH" | "MERGE"
            )
        });
    if dml {
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

/// The one live column a check reads, when it reads exactly one (the quoted names in its
/// expressions, outside string literals): such a check can be asked of that column's
/// distinct values.
fn single_column(check: &LiveCheck) -> Option<String> {
    let exprs: Vec<&str> = match check {
        LiveCheck::Orphans { exprs, .. } if exprs.len() == 1 => vec![exprs[0].as_str()],
        LiveCheck::EnumRemoved { expr, .. } => vec![expr.as_str()],
        LiveCheck::Evaluates { expr }
        | LiveCheck::Violations { expr }
        | LiveCheck::TooLong { expr, .. }
        | LiveCheck::OutOfRange { expr, .. } => vec![expr.as_str()],
        _ => return None,
    };
    let mut names: Vec<String> = Vec::new();
    for expr in exprs {
        for name in quoted_names(expr)? {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    match names.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// The `"quoted"` names in `expr` outside `'string'` literals; `None` when it also holds an
/// unquoted word that could be a column (anything but keywords and type names PostgreSQL
/// casts to is taken for one).
fn quoted_names(expr: &str) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                while let Some(c) = chars.next() {
                    if c == '\'' && chars.peek() != Some(&'\'') {
                        break;
                    }
                    if c == '\'' {
                        chars.next();
                    }
                }
            }
            '"' => {
                let mut name = String::new();
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    name.push(c);
                }
                names.push(name);
            }
            c if c.is_ascii_lowercase() => {
                // A lower-case bare word: a function or a column; only casts and a few
                // keywords are let through, so that no unquoted column is missed.
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        word.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if !matches!(
                    word.as_str(),
                    "is" | "not" | "null" | "and" | "or" | "true" | "false" | "text" | "integer"
                ) {
                    return None;
                }
            }
            _ => {}
        }
    }
    Some(names)
}

/// The distinct non-NULL values of `table`.`column`, at most `limit` + 1 of them, read by a
/// recursive skip scan over an index that leads with the column, as a relation with one
/// column named like the table's (so that expressions over the column read it unchanged).
fn distinct_values(table: &QName, column: &str, limit: u64) -> String {
    let c = ident(column);
    let t = qualified(table);
    format!(
        "(WITH RECURSIVE d(v, n) AS (\
         (SELECT {c}, 1 FROM {t} WHERE {c} IS NOT NULL ORDER BY {c} LIMIT 1) \
         UNION ALL SELECT (SELECT {c} FROM {t} WHERE {c} > d.v ORDER BY {c} LIMIT 1), d.n + 1 \
         FROM d WHERE d.v IS NOT NULL AND d.n <= {limit}) \
         SELECT v AS {c} FROM d WHERE v IS NOT NULL)"
    )
}

/// `"name"` → `name` (a quoted plain column, as the rules write one).
fn plain_column(expr: &str) -> Option<String> {
    let inner = expr.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"')).then(|| inner.to_owned())
}

#[async_trait]
impl Asker for PgProbe<'_> {
    /// The words of PostgreSQL for the shared question builder.
    fn dialect(&self) -> Dialect {
        Dialect {
            ident,
            text: |e| format!("({e})::text"),
            length: |e| format!("char_length(rtrim(({e})::text, ' '))"),
            text_array: Some(|e| format!("{e}::text[]")),
            not_among: |_, _| "<> ALL ($1::text[])".into(),
            count_all: "count(*) OVER ()::int8",
            no_count: "NULL::int8",
            sample: Sample::System(self.limits.sample_percent),
        }
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
        super::super::probe_row::texts(&rows)
    }

    /// The key columns to report for an offending row: the primary key, else `ctid`; none
    /// while the question reads an index's distinct values.
    async fn key_columns(&mut self, table: &QName) -> Result<Vec<String>, ProbeError> {
        if self.source.is_some() {
            return Ok(Vec::new());
        }
        let pk = self.primary_key(table).await?;
        Ok(if pk.is_empty() {
            vec!["ctid".into()]
        } else {
            pk
        })
    }

    async fn first_row(
        &mut self,
        sql: String,
        bind: Option<Vec<String>>,
        shown: usize,
        rehearse: &[String],
    ) -> Result<Option<OffenderRow>, ProbeError> {
        let rows = self.query(sql, bind, rehearse).await?;
        super::super::probe_row::first_row(&rows, shown)
    }
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
                what: format!("a row the statement cannot process ({why})"),
            })),
            other => other,
        }
    }

    async fn rehearse_plan(&mut self, statements: &[String]) -> Result<PlanRehearsal, ProbeError> {
        let timeout = self.limits.statement_timeout;
        let bounds = format!(
            "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
            timeout.as_millis().max(1),
            self.limits.lock_timeout.as_millis().max(1)
        );
        let tx = &mut *self.conn;
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(format!("BEGIN READ WRITE; {bounds}")))
            .execute(&mut *tx)
            .await
        {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *tx).await;
            return Err(classify_error(&e, timeout));
        }
        let mut out = PlanRehearsal::default();
        let mut result = Ok(());
        for step in statements {
            let parts = crate::sql::split(step, crate::sql::Flavor::Postgres);
            let Some(statement) = parts.iter().find(|s| !s.is_blank()) else {
                out.ran += 1;
                continue;
            };
            let words = statement.keywords(6);
            if let Some(reason) = non_transactional_reason(&words, statement.trimmed()) {
                if matches!(
                    words.first().map(String::as_str),
                    Some("BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT")
                ) {
                    // The migration's own transaction: the rehearsal's one stands for it.
                    out.ran += 1;
                    continue;
                }
                out.stopped = Some(reason);
                break;
            }
            match rehearse_step(tx, step, self.limits.rehearsal_rows).await {
                Ok(()) => out.ran += 1,
                Err(StepError::Budget(why)) => {
                    out.stopped = Some(format!("a data change {why}"));
                    break;
                }
                Err(StepError::Sql(e)) => {
                    match e.as_database_error().and_then(|db| db.code()).as_deref() {
                        Some("57014" | "55P03") | None => {
                            result = Err(classify_error(&e, timeout));
                        }
                        Some(code) => {
                            let message = e
                                .as_database_error()
                                .map(|db| db.message().to_owned())
                                .unwrap_or_default();
                            let head = message.split(':').next().unwrap_or(&message);
                            out.failed = Some(RehearsalError {
                                code: code.to_owned(),
                                message: head.to_owned(),
                            });
                        }
                    }
                    break;
                }
            }
            // A migration's own `SET statement_timeout` must not lift the rehearsal's bounds.
            if matches!(words.first().map(String::as_str), Some("SET" | "RESET"))
                && let Err(e) = sqlx::raw_sql(AssertSqlSafe(bounds.clone()))
                    .execute(&mut *tx)
                    .await
            {
                result = Err(classify_error(&e, timeout));
                break;
            }
        }
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *tx).await;
        result.map(|()| out)
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
