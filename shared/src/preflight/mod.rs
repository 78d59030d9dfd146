//! Preflight: whether each pending migration will fail or hurt production, predicted from
//! its SQL ([`rules`], over the splitter's tokens) and, on PostgreSQL, from the live data
//! (a [`DataProbe`], read-only and bounded), graded by size ([`policy`]). The engine runs it
//! (`engine::gate`); this module only decides.
//!
//! [`check_static`] needs no database (`migrator lint`); [`check_live`] asks a
//! [`DataProbe`]. Both walk the scripts in order, so that a table created or emptied by an
//! earlier pending migration is known to hold no rows, and a column added by one is known
//! not to hold values from before.

mod classify;
pub mod findings;
mod model;
pub mod policy;
pub mod probe;
pub mod questions;
mod rules;
mod suppress;

use std::collections::HashMap;
use std::time::Instant;

pub use classify::QName;
pub use findings::{Basis, Blocker, Evidence, Finding, Rule, Severity};
pub use policy::{BlockOn, PreflightSettings, SizeClass, Thresholds};
pub use probe::{
    DataProbe, LiveCheck, LiveLimits, PlanRehearsal, ProbeError, RehearsalError, TableSize,
    Verdict, Violation,
};

use crate::sql::Flavor;
use model::Rows;
use rules::{Candidate, Check};

/// One migration's script, in plan order.
#[derive(Debug, Clone, Copy)]
pub struct Script<'a> {
    pub migration: &'a str,
    pub sql: &'a str,
    /// Applied migrations are walked too (they teach the plan the schema: enum values,
    /// column types) but give no findings.
    pub pending: bool,
}

/// Which earlier statements count as "in the same plan".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every pending migration is one plan (plan and deploy).
    Plan,
    /// Each migration on its own, everything before it taken as deployed with unknown data
    /// (lint: in a pull request, the new migration runs against production's tables).
    EachMigration,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub flavor: Flavor,
    pub scope: Scope,
    pub thresholds: Thresholds,
}

impl Options {
    pub fn new(flavor: Flavor) -> Options {
        Options {
            flavor,
            scope: Scope::Plan,
            thresholds: Thresholds::default(),
        }
    }
}

/// The static rules only: no database.
pub fn check_static(scripts: &[Script<'_>], options: &Options) -> Vec<Finding> {
    rules::candidates(scripts, options.flavor, options.scope)
        .into_iter()
        .filter(|c| !created_by_plan(c) && c.rule != Rule::DataChangeFails)
        .map(|c| {
            let (size, basis) = match &c.subject {
                Some(s) if s.rows == Rows::Empty => (plan_size(s), Basis::Plan),
                _ => (SizeClass::Unknown, Basis::Static),
            };
            let prediction = static_prediction(&c.check, size);
            let evidence = Evidence {
                basis,
                lock: c.lock.map(str::to_owned),
                unknown: prediction.unknown.clone(),
                ..Evidence::default()
            };
            let backfilled = prediction.unknown.as_deref() == Some(BACKFILLED);
            let mut finding = finish(
                c,
                scripts,
                size,
                prediction.will_fail,
                prediction.known,
                evidence,
            );
            if backfilled {
                finding.severity = finding.severity.min(Severity::Info);
            }
            finding
        })
        .collect()
}

/// A finding that can neither fail nor block anyone: a lock or a check on a table the plan
/// itself creates (what Prisma generates for a new model). Left out, so that `lint` and
/// `plan` stay quiet on it.
fn created_by_plan(c: &Candidate) -> bool {
    matches!(&c.subject, Some(s) if s.rows == Rows::Empty && s.live.is_none())
        && c.rule.hazard() != findings::Hazard::Breaks
}

/// The static rules, with predictions from the live data through `probe`.
pub async fn check_live(
    scripts: &[Script<'_>],
    options: &Options,
    probe: &mut dyn DataProbe,
    limits: &LiveLimits,
) -> Vec<Finding> {
    check_live_and_locks(scripts, options, probe, limits)
        .await
        .0
}

/// [`check_live`], and the live tables the pending statements lock (in plan order, each
/// once), for asking who is in the way.
pub async fn check_live_and_locks(
    scripts: &[Script<'_>],
    options: &Options,
    probe: &mut dyn DataProbe,
    limits: &LiveLimits,
) -> (Vec<Finding>, Vec<QName>) {
    let started = Instant::now();
    let mut sizes: HashMap<QName, Result<Option<TableSize>, String>> = HashMap::new();
    let mut out: Vec<Judged> = Vec::new();
    let (candidates, steps) = rules::walk(scripts, options.flavor, options.scope);
    let candidates: Vec<Candidate> = candidates
        .into_iter()
        .filter(|c| !created_by_plan(c))
        .collect();
    let locked = locked_tables(&candidates);
    for c in candidates {
        let subject = c.subject.clone();
        let mut evidence = Evidence {
            basis: Basis::Static,
            lock: c.lock.map(str::to_owned),
            ..Evidence::default()
        };
        let over_budget = started.elapsed() >= limits.budget;
        let live_table = match &subject {
            Some(s) if s.rows == Rows::Live => s.live.clone(),
            _ => None,
        };
        let size = match (&subject, &live_table) {
            (Some(s), _) if s.rows == Rows::Empty => {
                evidence.basis = Basis::Plan;
                evidence.has_rows = Some(false);
                plan_size(s)
            }
            (_, Some(table)) if !over_budget => match size_of(table, probe, &mut sizes).await {
                Ok(Some(size)) => {
                    evidence.basis = Basis::Live;
                    evidence.table = Some(table.display());
                    evidence.row_estimate = size.row_estimate;
                    evidence.bytes = Some(size.bytes);
                    evidence.has_rows = Some(size.has_rows);
                    SizeClass::of(&size, &options.thresholds)
                }
                Ok(None) => {
                    evidence.unknown =
                        Some(format!("`{}` is not in the database", table.display()));
                    SizeClass::Unknown
                }
                Err(e) => {
                    evidence.unknown = Some(e);
                    SizeClass::Unknown
                }
            },
            _ => SizeClass::Unknown,
        };
        if over_budget && evidence.unknown.is_none() && live_table.is_some() {
            evidence.unknown = Some("the preflight time budget was used up".into());
        }
        let (will_fail, known) = match (&c.check, size, &live_table) {
            (Check::Live { check, rehearse }, _, Some(table))
                if !over_budget
                    && (matches!(size, SizeClass::Small | SizeClass::Large)
                        || check.is_catalog()
                        || (size == SizeClass::Empty && !rehearse.is_empty())) =>
            {
                let sample = size == SizeClass::Large && !check.is_catalog();
                evidence.sampled = sample;
                evidence.rehearsed = rehearse.len();
                let verdict = if *check == LiveCheck::HasRows && rehearse.is_empty() {
                    // Answered by the size probe: the table has rows.
                    Ok(Verdict::Fails(Violation {
                        count: None,
                        example_key: None,
                        what: "the table has rows".into(),
                    }))
                } else {
                    probe.find(table, check, sample, rehearse).await
                };
                match verdict {
                    Ok(Verdict::Fails(v)) => {
                        evidence.reason = Some(match (&v.count, &v.example_key) {
                            (Some(n), Some(key)) => format!("{n} × {}, e.g. {key}", v.what),
                            (None, Some(key)) => format!("{}: {key}", v.what),
                            (Some(n), None) => format!("{n} × {}", v.what),
                            (None, None) => v.what.clone(),
                        });
                        evidence.count = v.count;
                        evidence.example_key = v.example_key;
                        (true, true)
                    }
                    Ok(Verdict::Passes) => (false, true),
                    Ok(Verdict::NotApplicable(why)) => {
                        evidence.unknown = Some(why);
                        (false, true)
                    }
                    Ok(Verdict::NotFoundInSample) => {
                        evidence.unknown =
                            Some("no offending row in a sample of this large table".into());
                        (false, false)
                    }
                    Err(e) => {
                        evidence.unknown = Some(e.to_string());
                        (false, false)
                    }
                }
            }
            (Check::Live { .. }, SizeClass::Empty, _) => (false, true),
            (Check::Plan { fails_if_rows, why }, SizeClass::Small | SizeClass::Large, _) => {
                evidence.reason = Some(why.clone());
                (*fails_if_rows, true)
            }
            (Check::Plan { .. }, SizeClass::Empty, _) => (false, true),
            (Check::Unknown(why), _, _) => {
                evidence.unknown.get_or_insert_with(|| why.clone());
                (false, false)
            }
            (Check::None, _, _) => (false, size != SizeClass::Unknown),
            (_, SizeClass::Plan, _) => (false, true),
            (_, _, _) => (false, false),
        };
        out.push(Judged {
            candidate: c,
            size,
            will_fail,
            known,
            evidence,
        });
    }
    if options.flavor == Flavor::Postgres && started.elapsed() < limits.budget {
        rehearse_plan(&steps, &mut out, options, probe, limits, &mut sizes).await;
    }
    let findings = out
        .into_iter()
        // A data change is reported only when its rehearsal fails: "it runs" is no news,
        // and "could not tell" on every data migration would only be noise.
        .filter(|j| j.candidate.rule != Rule::DataChangeFails || j.will_fail)
        .map(|j| {
            finish(
                j.candidate,
                scripts,
                j.size,
                j.will_fail,
                j.known,
                j.evidence,
            )
        })
        .collect();
    (findings, locked)
}

/// A candidate with its prediction, before it becomes a [`Finding`].
struct Judged {
    candidate: Candidate,
    size: SizeClass,
    will_fail: bool,
    known: bool,
    evidence: Evidence,
}

/// The size of a live table, asked once per plan.
async fn size_of(
    table: &QName,
    probe: &mut dyn DataProbe,
    sizes: &mut HashMap<QName, Result<Option<TableSize>, String>>,
) -> Result<Option<TableSize>, String> {
    if let Some(known) = sizes.get(table) {
        return known.clone();
    }
    let known = probe.size(table).await.map_err(|e| e.to_string());
    sizes.insert(table.clone(), known.clone());
    known
}

/// Rehearses the whole plan (PostgreSQL, whose DDL is transactional): every pending
/// statement in order, in one transaction that is always rolled back — the exact test of
/// what deploy will do to the live rows. Only the statements before the first that touches
/// a table from before the plan that is large, of unknown size, or holds more rows than a
/// rehearsal may touch are run; nothing at all when no table from before the plan holding
/// rows is touched. A statement that ran clears the failure predictions on it; the first
/// that the rows refuse (SQLSTATE class 22 or 23) is predicted to fail.
async fn rehearse_plan(
    steps: &[rules::PlanStep],
    out: &mut Vec<Judged>,
    options: &Options,
    probe: &mut dyn DataProbe,
    limits: &LiveLimits,
    sizes: &mut HashMap<QName, Result<Option<TableSize>, String>>,
) {
    let mut runnable = 0;
    let mut rows_touched = false;
    'steps: for step in steps {
        for table in &step.live_tables {
            match size_of(table, probe, sizes).await {
                Ok(Some(size))
                    if matches!(
                        SizeClass::of(&size, &options.thresholds),
                        SizeClass::Small | SizeClass::Empty
                    ) && size.row_estimate.unwrap_or(u64::MAX) <= limits.rehearsal_rows =>
                {
                    rows_touched |= size.has_rows;
                }
                _ => break 'steps,
            }
        }
        runnable += 1;
    }
    if !rows_touched {
        return;
    }
    let statements: Vec<String> = steps[..runnable].iter().map(|s| s.sql.clone()).collect();
    let Ok(rehearsal) = probe.rehearse_plan(&statements).await else {
        return;
    };
    let on = |j: &Judged, step: &rules::PlanStep| {
        j.candidate.script == step.script && j.candidate.statement == step.statement
    };
    // The findings that can predict a failure: a rule about failing, or a live question (a
    // type change's conversion, a drop's dependent views).
    let may_fail = |j: &Judged| {
        j.candidate.rule.hazard() == findings::Hazard::MayFail
            || matches!(j.candidate.check, Check::Live { .. })
    };
    for step in &steps[..rehearsal.ran.min(runnable)] {
        for j in out.iter_mut().filter(|j| on(j, step) && may_fail(j)) {
            j.will_fail = false;
            j.known = true;
            j.evidence.unknown = None;
            j.evidence.reason =
                Some("the plan's rehearsal ran this statement without error".into());
        }
    }
    let (Some(step), Some(error)) = (steps.get(rehearsal.ran), &rehearsal.failed) else {
        return;
    };
    if !error.is_data() {
        return;
    }
    let reason = format!(
        "the plan's rehearsal failed here: {}: {}",
        error.code, error.message
    );
    let mut predicted = false;
    for j in out.iter_mut().filter(|j| on(j, step) && may_fail(j)) {
        j.will_fail = true;
        j.known = true;
        j.evidence.unknown = None;
        j.evidence.reason = Some(reason.clone());
        j.evidence.rehearsed = rehearsal.ran;
        predicted = true;
    }
    if predicted {
        return;
    }
    let table = step.live_tables.first();
    let size = match table.and_then(|t| sizes.get(t)) {
        Some(Ok(Some(size))) => SizeClass::of(size, &options.thresholds),
        _ => SizeClass::Unknown,
    };
    out.push(Judged {
        candidate: Candidate {
            rule: Rule::DataChangeFails,
            script: step.script,
            statement: step.statement,
            line: step.line,
            message: "Rehearsing the plan, the live rows refuse this statement. Fix the data or the statement first.".into(),
            table: table.map(QName::display),
            subject: None,
            lock: None,
            check: rules::Check::None,
            allowed: None,
        },
        size,
        will_fail: true,
        known: true,
        evidence: Evidence {
            basis: Basis::Live,
            table: table.map(QName::display),
            reason: Some(reason),
            rehearsed: rehearsal.ran,
            ..Evidence::default()
        },
    });
}

/// A table without rows because of the plan: created by it (nothing from before at all),
/// or an existing table it emptied (the running application still uses it).
fn plan_size(subject: &rules::Subject) -> SizeClass {
    if subject.live.is_none() {
        SizeClass::Plan
    } else {
        SizeClass::Empty
    }
}

fn locked_tables(candidates: &[Candidate]) -> Vec<QName> {
    let mut tables: Vec<QName> = Vec::new();
    for c in candidates {
        if let (Some(_), Some(subject)) = (c.lock, &c.subject)
            && subject.rows == Rows::Live
            && let Some(live) = &subject.live
            && !tables.contains(live)
        {
            tables.push(live.clone());
        }
    }
    tables
}

/// Why `lint` says no more than `info` about a constraint the plan prepares its data for.
const BACKFILLED: &str = "the plan changes these rows first (a backfill or clean-up): `plan` rehearses that against the live data";

struct StaticPrediction {
    will_fail: bool,
    known: bool,
    unknown: Option<String>,
}

fn static_prediction(check: &Check, size: SizeClass) -> StaticPrediction {
    match (check, size) {
        (_, SizeClass::Plan | SizeClass::Empty) | (Check::None, _) => StaticPrediction {
            will_fail: false,
            known: matches!(size, SizeClass::Plan | SizeClass::Empty),
            unknown: None,
        },
        (Check::Unknown(why), _) => StaticPrediction {
            will_fail: false,
            known: false,
            unknown: Some(why.clone()),
        },
        (Check::Plan { why, .. }, _) => StaticPrediction {
            will_fail: false,
            known: false,
            unknown: Some(format!("{why}; fails if the table has rows")),
        },
        (Check::Live { rehearse, .. }, _) if !rehearse.is_empty() => StaticPrediction {
            will_fail: false,
            known: false,
            unknown: Some(BACKFILLED.into()),
        },
        (Check::Live { .. }, _) => StaticPrediction {
            will_fail: false,
            known: false,
            unknown: Some("no database: the data was not looked at".into()),
        },
    }
}

fn finish(
    c: Candidate,
    scripts: &[Script<'_>],
    size: SizeClass,
    will_fail: bool,
    known: bool,
    evidence: Evidence,
) -> Finding {
    let severity = policy::grade(c.rule, size, will_fail, known);
    let mut message = c.message;
    if will_fail {
        message = match &evidence.reason {
            Some(reason) => format!("Will fail ({reason}): {message}"),
            None => format!("Will fail: {message}"),
        };
    }
    Finding {
        rule: c.rule,
        severity,
        migration: scripts
            .get(c.script)
            .map(|s| s.migration.to_owned())
            .unwrap_or_default(),
        statement: c.statement,
        line: c.line,
        message,
        table: c.table,
        will_fail,
        evidence,
        allowed: c.allowed,
    }
}
