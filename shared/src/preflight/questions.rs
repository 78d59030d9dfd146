//! The SQL of preflight's live questions, built once for every database: "is there a row
//! of this table that makes the statement fail, and which?". Each dialect's probe passes in
//! its own words — identifier quoting, casts to text, the row count's type, how a sample
//! is read — as a [`Dialect`], runs the [`Question`]s in its bounded transaction and reads
//! the first row back. Questions that only one database can answer (PostgreSQL's view
//! dependencies, MySQL's zero dates) stay in that dialect.

use async_trait::async_trait;

use super::classify::QName;
use super::probe::{LiveCheck, ProbeError, Verdict, Violation};

/// What differs between the databases in the questions' SQL.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// `"a""b"` / `` `a``b` ``.
    pub ident: fn(&str) -> String,
    /// An expression as text, to show a key value.
    pub text: fn(&str) -> String,
    /// `char_length` of an expression's text without trailing spaces (the length a
    /// `VARCHAR(n)` assignment checks).
    pub length: fn(&str) -> String,
    /// An array column's elements as text (`None`: the database has no arrays).
    pub text_array: Option<fn(&str) -> String>,
    /// `expr` is none of `n` bound values, e.g. `<> ALL ($1::text[])` or `NOT IN (?, ?)`.
    pub not_among: fn(&str, usize) -> String,
    /// The number of rows the query found, as a 64-bit integer (a window count).
    pub count_all: &'static str,
    /// The same column when not counting (the count would read the whole table).
    pub no_count: &'static str,
    /// Reads a sample of `table` (already quoted): `TABLESAMPLE SYSTEM (1)`, or a
    /// `LIMIT` inside the inner query.
    pub sample: Sample,
}

/// How a dialect reads a sample of a large table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// `FROM t TABLESAMPLE SYSTEM (percent)` (PostgreSQL).
    System(f64),
    /// The first `n` rows the table gives (MySQL has no `TABLESAMPLE`).
    FirstRows(u64),
}

/// One question: `SELECT <shown as text>…, <count> FROM <from> <rest> LIMIT 1`. A row back
/// names an offender; none means there is none (in what was read).
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// What to show of the offender, as (label, SQL over the inner query's alias `t`).
    pub shown: Vec<(String, String)>,
    pub from: String,
    pub rest: String,
    /// Values bound to the dialect's `not_among` placeholders (`Some` when it has them).
    pub bind: Option<Vec<String>>,
    /// What kind of offender it is (`NULL`, `duplicated key`, …).
    pub what: String,
}

impl Question {
    pub fn sql(&self, dialect: &Dialect, count: bool) -> String {
        let mut select: Vec<String> = self
            .shown
            .iter()
            .map(|(_, sql)| (dialect.text)(sql))
            .collect();
        select.push(
            if count {
                dialect.count_all
            } else {
                dialect.no_count
            }
            .to_owned(),
        );
        format!(
            "SELECT {} FROM {} {} LIMIT 1",
            select.join(", "),
            self.from,
            self.rest
        )
    }
}

/// Builds the questions about one table for one dialect.
pub struct Builder<'d> {
    pub dialect: &'d Dialect,
    /// The relation read: the quoted table, or a relation standing in for it.
    pub relation: String,
    /// Whether to read only a sample.
    pub sample: bool,
}

/// The catalog facts a question needs beyond the check itself.
#[derive(Debug, Default, Clone)]
pub struct Known {
    /// The columns naming an offending row (its primary key), when [`needs_keys`] said so.
    pub keys: Vec<String>,
    /// For a foreign key: the referenced columns (the parent's primary key when the
    /// statement named none).
    pub parent_columns: Vec<String>,
}

/// Whether the questions for `check` show the offending row's key.
pub fn needs_keys(check: &LiveCheck) -> bool {
    match check {
        LiveCheck::HasRows
        | LiveCheck::ImplicitDefault { .. }
        | LiveCheck::Nulls { .. }
        | LiveCheck::Violations { .. }
        | LiveCheck::EnumRemoved { .. }
        | LiveCheck::TooLong { .. }
        | LiveCheck::OutOfRange { .. } => true,
        LiveCheck::Duplicates { primary, .. } => *primary,
        _ => false,
    }
}

/// `"a"`.`"b"`, quoted by the dialect.
pub fn qualified(dialect: &Dialect, table: &QName) -> String {
    match &table.schema {
        Some(schema) => format!(
            "{}.{}",
            (dialect.ident)(schema),
            (dialect.ident)(&table.name)
        ),
        None => (dialect.ident)(&table.name),
    }
}

impl Builder<'_> {
    fn ident(&self, name: &str) -> String {
        (self.dialect.ident)(name)
    }

    /// `t.<alias>` in the dialect's quoting.
    fn at(&self, alias: &str) -> String {
        format!("t.{}", self.ident(alias))
    }

    /// `(SELECT <key> AS p0, …, <expr> AS k0, … FROM <relation> [sample] [WHERE predicate]) AS t`:
    /// the expressions are evaluated over the table, and the outer query reads them as
    /// `t.k0`, … (so that a parent's columns in a subquery cannot capture their names).
    fn inner(&self, keys: &[String], exprs: &[String], predicate: Option<&str>) -> String {
        let mut select: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                // PostgreSQL's row address names a row of a table without a primary key.
                let column = if k == "ctid" {
                    k.clone()
                } else {
                    self.ident(k)
                };
                format!("{column} AS {}", self.ident(&format!("p{i}")))
            })
            .collect();
        select.extend(
            exprs
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{e} AS {}", self.ident(&format!("k{i}")))),
        );
        if select.is_empty() {
            select.push(format!("1 AS {}", self.ident("one")));
        }
        let mut from = self.relation.clone();
        let mut limit = String::new();
        match (self.sample, self.dialect.sample) {
            (true, Sample::System(percent)) => {
                from.push_str(&format!(" TABLESAMPLE SYSTEM ({percent})"))
            }
            (true, Sample::FirstRows(n)) => limit = format!(" LIMIT {n}"),
            (false, _) => {}
        }
        let filter = predicate
            .map(|p| format!(" WHERE ({p})"))
            .unwrap_or_default();
        format!(
            "(SELECT {} FROM {from}{filter}{limit}) AS t",
            select.join(", ")
        )
    }

    /// The key columns, shown as `id=…` (read as `t.p0`, …).
    fn keys_shown(&self, keys: &[String]) -> Vec<(String, String)> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), self.at(&format!("p{i}"))))
            .collect()
    }

    /// The expressions, shown by their text (a plain column by its name; read as `t.k0`, …).
    fn exprs_shown(&self, exprs: &[String]) -> Vec<(String, String)> {
        exprs
            .iter()
            .enumerate()
            .map(|(i, e)| (self.shown_name(e), self.at(&format!("k{i}"))))
            .collect()
    }

    fn shown_name(&self, expr: &str) -> String {
        for q in ['"', '`'] {
            if let Some(inner) = expr.strip_prefix(q).and_then(|e| e.strip_suffix(q))
                && !inner.contains(q)
            {
                return inner.to_owned();
            }
        }
        expr.trim_matches(['(', ')']).to_owned()
    }

    fn k(&self, i: usize) -> String {
        self.at(&format!("k{i}"))
    }

    /// A question over the key columns and `exprs`, offenders selected by `rest`.
    fn by_key(&self, known: &Known, exprs: &[String], rest: String, what: &str) -> Question {
        Question {
            shown: self.keys_shown(&known.keys),
            from: self.inner(&known.keys, exprs, None),
            rest,
            bind: None,
            what: what.to_owned(),
        }
    }

    /// The questions for `check`, asked in order until one finds an offender; `None` for a
    /// check this builder does not ask (a dialect's own), or one the dialect cannot.
    pub fn questions(&self, check: &LiveCheck, known: &Known) -> Option<Vec<Question>> {
        Some(match check {
            LiveCheck::HasRows => vec![self.by_key(known, &[], String::new(), "existing row")],
            LiveCheck::Nulls { expr } => vec![self.by_key(
                known,
                std::slice::from_ref(expr),
                format!("WHERE {} IS NULL", self.k(0)),
                "NULL",
            )],
            LiveCheck::Duplicates {
                exprs,
                predicate,
                primary,
                nulls_distinct,
            } => {
                let mut out = Vec::new();
                let group: Vec<String> = (0..exprs.len()).map(|i| self.k(i)).collect();
                if *primary {
                    let any_null: Vec<String> =
                        group.iter().map(|g| format!("{g} IS NULL")).collect();
                    out.push(Question {
                        shown: self.keys_shown(&known.keys),
                        from: self.inner(&known.keys, exprs, predicate.as_deref()),
                        rest: format!("WHERE {}", any_null.join(" OR ")),
                        bind: None,
                        what: "NULL in a primary key column".into(),
                    });
                }
                let filter = if *nulls_distinct {
                    let not_null: Vec<String> =
                        group.iter().map(|g| format!("{g} IS NOT NULL")).collect();
                    format!("WHERE {} ", not_null.join(" AND "))
                } else {
                    String::new()
                };
                out.push(Question {
                    shown: self.exprs_shown(exprs),
                    from: self.inner(&[], exprs, predicate.as_deref()),
                    rest: format!("{filter}GROUP BY {} HAVING count(*) > 1", group.join(", ")),
                    bind: None,
                    what: "duplicated key".into(),
                });
                out
            }
            LiveCheck::Orphans { exprs, parent, .. } => {
                let mut conditions: Vec<String> = (0..exprs.len())
                    .map(|i| format!("{} IS NOT NULL", self.k(i)))
                    .collect();
                let join: Vec<String> = known
                    .parent_columns
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("p.{} = {}", self.ident(p), self.k(i)))
                    .collect();
                conditions.push(format!(
                    "NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})",
                    qualified(self.dialect, parent),
                    join.join(" AND ")
                ));
                vec![Question {
                    shown: self.exprs_shown(exprs),
                    from: self.inner(&[], exprs, None),
                    rest: format!("WHERE {}", conditions.join(" AND ")),
                    bind: None,
                    what: "orphan key".into(),
                }]
            }
            LiveCheck::NonNull { exprs } => {
                let conditions: Vec<String> = (0..exprs.len())
                    .map(|i| format!("{} IS NOT NULL", self.k(i)))
                    .collect();
                vec![Question {
                    shown: self.exprs_shown(exprs),
                    from: self.inner(&[], exprs, None),
                    rest: format!("WHERE {}", conditions.join(" AND ")),
                    bind: None,
                    what: "orphan key".into(),
                }]
            }
            LiveCheck::Violations { expr } => vec![self.by_key(
                known,
                &[format!("({expr})")],
                format!("WHERE NOT {}", self.k(0)),
                "violating row",
            )],
            LiveCheck::EnumRemoved {
                expr,
                new_values,
                array,
            } => {
                let n = new_values.len();
                let (expr, rest) = if *array {
                    let text_array = self.dialect.text_array?;
                    (
                        text_array(expr),
                        format!(
                            "WHERE EXISTS (SELECT 1 FROM unnest({}) AS v WHERE v IS NOT NULL AND v {})",
                            self.k(0),
                            (self.dialect.not_among)("", n).trim_start()
                        ),
                    )
                } else {
                    (
                        (self.dialect.text)(expr),
                        format!(
                            "WHERE {} {}",
                            self.k(0),
                            (self.dialect.not_among)("", n).trim_start()
                        ),
                    )
                };
                let mut q = self.by_key(known, &[expr], rest, "row holding a removed value");
                q.bind = Some(new_values.clone());
                vec![q]
            }
            LiveCheck::TooLong { expr, max } => vec![self.by_key(
                known,
                &[(self.dialect.length)(expr)],
                format!("WHERE {} > {max}", self.k(0)),
                &format!("value longer than {max} characters"),
            )],
            LiveCheck::OutOfRange { expr, min, max } => vec![self.by_key(
                known,
                std::slice::from_ref(expr),
                format!("WHERE {k} < {min} OR {k} > {max}", k = self.k(0)),
                "value out of the new type's range",
            )],
            LiveCheck::ImplicitDefault { .. }
            | LiveCheck::Evaluates { .. }
            | LiveCheck::Dependents { .. }
            | LiveCheck::Runs => return None,
        })
    }

    /// `SELECT count(<ROW(expr)>) FROM <inner>`: evaluates `expr` on every row read, so a
    /// value the expression refuses raises its error (the dialect reads that as the answer).
    pub fn evaluation(&self, expr: &str, row: fn(&str) -> String) -> String {
        let from = self.inner(&[], &[row(expr)], None);
        format!("SELECT count({}) FROM {from}", self.k(0))
    }
}

/// The first row of a question: its shown columns as text, then the count column.
pub type OffenderRow = (Vec<Option<String>>, Option<i64>);

/// What a dialect's probe lends [`ask`]: its words, its catalog and its bounded queries.
#[async_trait]
pub trait Asker: Send {
    fn dialect(&self) -> Dialect;
    /// The primary key columns of `table`, in order (none: it has none).
    async fn primary_key(&mut self, table: &QName) -> Result<Vec<String>, ProbeError>;
    /// The columns that name an offending row of `table` (its primary key, or what stands
    /// in for one).
    async fn key_columns(&mut self, table: &QName) -> Result<Vec<String>, ProbeError>;
    /// The first row of `sql`, run after `rehearse` in a bounded transaction that is rolled
    /// back: its first `shown` columns as text, then the count column. `bind` holds the
    /// values of the dialect's `not_among` placeholders.
    async fn first_row(
        &mut self,
        sql: String,
        bind: Option<Vec<String>>,
        shown: usize,
        rehearse: &[String],
    ) -> Result<Option<OffenderRow>, ProbeError>;
}

/// The keys that name an offending row, and a foreign key's referenced columns.
async fn known<A: Asker + ?Sized>(
    asker: &mut A,
    table: &QName,
    check: &LiveCheck,
) -> Result<Known, ProbeError> {
    let keys = if needs_keys(check) {
        asker.key_columns(table).await?
    } else {
        Vec::new()
    };
    let parent_columns = match check {
        LiveCheck::Orphans {
            exprs,
            parent,
            parent_columns,
        } => {
            let columns = if parent_columns.is_empty() {
                asker.primary_key(parent).await?
            } else {
                parent_columns.clone()
            };
            if columns.len() != exprs.len() {
                return Err(ProbeError::Cannot(format!(
                    "the referenced key of {} is not known",
                    parent.display()
                )));
            }
            columns
        }
        _ => Vec::new(),
    };
    Ok(Known {
        keys,
        parent_columns,
    })
}

/// Asks the questions for `check` of `relation` (the table, or what stands in for it) in
/// order, until one finds an offender. With `sample`, finding none proves nothing; with
/// `count`, the offenders are counted (which reads every row).
#[allow(clippy::too_many_arguments)]
pub async fn ask<A: Asker + ?Sized>(
    asker: &mut A,
    table: &QName,
    relation: String,
    check: &LiveCheck,
    sample: bool,
    count: bool,
    rehearse: &[String],
) -> Result<Verdict, ProbeError> {
    let known = known(asker, table, check).await?;
    let dialect = asker.dialect();
    let builder = Builder {
        dialect: &dialect,
        relation,
        sample,
    };
    let questions = builder
        .questions(check, &known)
        .ok_or_else(|| ProbeError::Cannot("this check is not made on this database".into()))?;
    let exact = !sample;
    let mut verdict = Verdict::Passes;
    for question in &questions {
        let sql = question.sql(&dialect, count);
        let row = asker
            .first_row(sql, question.bind.clone(), question.shown.len(), rehearse)
            .await?;
        verdict = match row {
            None if exact => Verdict::Passes,
            None => Verdict::NotFoundInSample,
            Some((values, n)) => {
                let parts: Vec<String> = question
                    .shown
                    .iter()
                    .zip(&values)
                    .map(|((label, _), value)| {
                        let value = value
                            .as_deref()
                            .map(|v| crate::text::clip_chars(v, 100))
                            .unwrap_or("NULL");
                        format!("{label}={value}")
                    })
                    .collect();
                Verdict::Fails(Violation {
                    count: n.filter(|_| exact).map(|n| n.max(0) as u64),
                    example_key: (!parts.is_empty()).then(|| parts.join(", ")),
                    what: question.what.clone(),
                })
            }
        };
        if matches!(verdict, Verdict::Fails(_)) {
            break;
        }
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg() -> Dialect {
        Dialect {
            ident: |n| format!("\"{}\"", n.replace('"', "\"\"")),
            text: |e| format!("({e})::text"),
            length: |e| format!("char_length(rtrim(({e})::text, ' '))"),
            text_array: Some(|e| format!("{e}::text[]")),
            not_among: |_, _| "<> ALL ($1::text[])".into(),
            count_all: "count(*) OVER ()::int8",
            no_count: "NULL::int8",
            sample: Sample::System(1.0),
        }
    }

    fn my() -> Dialect {
        Dialect {
            ident: |n| format!("`{}`", n.replace('`', "``")),
            text: |e| format!("CAST({e} AS CHAR)"),
            length: |e| format!("CHAR_LENGTH(RTRIM({e}))"),
            text_array: None,
            not_among: |_, n| format!("NOT IN ({})", vec!["?"; n.max(1)].join(", ")),
            count_all: "CAST(COUNT(*) OVER () AS SIGNED)",
            no_count: "CAST(NULL AS SIGNED)",
            sample: Sample::FirstRows(100),
        }
    }

    fn nulls(dialect: &Dialect, relation: &str, sample: bool) -> String {
        let b = Builder {
            dialect,
            relation: relation.into(),
            sample,
        };
        let known = Known {
            keys: vec!["id".into()],
            ..Known::default()
        };
        let q = b
            .questions(
                &LiveCheck::Nulls {
                    expr: "\"name\"".into(),
                },
                &known,
            )
            .expect("a question");
        q[0].sql(dialect, !sample)
    }

    #[test]
    fn one_question_in_each_dialects_words() {
        assert_eq!(
            nulls(&pg(), "\"User\"", true),
            "SELECT (t.\"p0\")::text, NULL::int8 FROM (SELECT \"id\" AS \"p0\", \"name\" AS \"k0\" FROM \"User\" TABLESAMPLE SYSTEM (1)) AS t WHERE t.\"k0\" IS NULL LIMIT 1"
        );
        assert_eq!(
            nulls(&my(), "`User`", true),
            "SELECT CAST(t.`p0` AS CHAR), CAST(NULL AS SIGNED) FROM (SELECT `id` AS `p0`, \"name\" AS `k0` FROM `User` LIMIT 100) AS t WHERE t.`k0` IS NULL LIMIT 1"
        );
        assert!(nulls(&my(), "`User`", false).contains("COUNT(*) OVER ()"));
    }

    #[test]
    fn a_primary_key_asks_for_nulls_before_duplicates() {
        let d = pg();
        let b = Builder {
            dialect: &d,
            relation: "\"T\"".into(),
            sample: false,
        };
        let known = Known {
            keys: vec!["id".into()],
            ..Known::default()
        };
        let q = b
            .questions(
                &LiveCheck::Duplicates {
                    exprs: vec!["\"a\"".into(), "\"b\"".into()],
                    predicate: None,
                    primary: true,
                    nulls_distinct: true,
                },
                &known,
            )
            .expect("questions");
        assert_eq!(q.len(), 2);
        assert!(q[0].rest.contains("IS NULL OR"));
        assert!(
            q[1].rest
                .ends_with("GROUP BY t.\"k0\", t.\"k1\" HAVING count(*) > 1")
        );
        assert_eq!(q[1].shown[0].0, "a");
        // MySQL has no arrays: an enum array question is not asked there.
        let m = my();
        let b = Builder {
            dialect: &m,
            relation: "`T`".into(),
            sample: false,
        };
        let array = LiveCheck::EnumRemoved {
            expr: "`perms`".into(),
            new_values: vec!["READ".into()],
            array: true,
        };
        assert!(b.questions(&array, &known).is_none());
    }
}
