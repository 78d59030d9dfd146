//! How bad a finding is, and whether it stops a deploy. The one place that decides both.

use serde::{Deserialize, Serialize};

use super::findings::{Finding, Hazard, Rule, Severity};
use super::probe::{LiveLimits, TableSize};

/// When a table counts as large. Defaults: 1,000,000 rows (`reltuples`) or 1 GiB
/// (`pg_total_relation_size`), whichever is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub large_rows: u64,
    pub large_bytes: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            large_rows: 1_000_000,
            large_bytes: 1 << 30,
        }
    }
}

/// What is known of the size of the table a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeClass {
    /// Created (or emptied) earlier in the same plan: no rows from before.
    Plan,
    /// Live and holding no rows.
    Empty,
    Small,
    Large,
    /// No database (lint), or the probe could not tell.
    Unknown,
}

impl SizeClass {
    pub fn of(size: &TableSize, thresholds: &Thresholds) -> SizeClass {
        if !size.has_rows {
            SizeClass::Empty
        } else if size.row_estimate.unwrap_or(0) >= thresholds.large_rows
            || size.bytes >= thresholds.large_bytes
        {
            SizeClass::Large
        } else {
            SizeClass::Small
        }
    }
}

/// The severity of `rule` on a table of `size`. `will_fail` is always an error; `predicted`
/// says whether the data was checked and found clean.
pub fn grade(rule: Rule, size: SizeClass, will_fail: bool, predicted: bool) -> Severity {
    if will_fail {
        return Severity::Error;
    }
    match (rule.hazard(), size) {
        (_, SizeClass::Plan) => Severity::Info,
        (Hazard::MayFail, SizeClass::Empty) => Severity::Info,
        (Hazard::MayFail, SizeClass::Small) if predicted => Severity::Info,
        // A clean large table still scans (and for a unique index, builds) under its lock.
        (Hazard::MayFail, _) => Severity::Warning,
        (Hazard::BlocksWrites, SizeClass::Empty) => Severity::Info,
        (Hazard::BlocksWrites, SizeClass::Large) => Severity::Error,
        (Hazard::BlocksWrites, _) => Severity::Warning,
        // Data loss and breaking the running application do not depend on size.
        (Hazard::Breaks, _) => Severity::Warning,
    }
}

/// `--block-on` / `BLOCK_ON`: the lowest severity that stops a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockOn {
    Error,
    Warning,
    Never,
}

impl BlockOn {
    pub fn parse(text: &str) -> Option<BlockOn> {
        match text.trim().to_ascii_lowercase().as_str() {
            "error" => Some(BlockOn::Error),
            "warning" => Some(BlockOn::Warning),
            "never" => Some(BlockOn::Never),
            _ => None,
        }
    }

    fn threshold(self) -> Option<Severity> {
        match self {
            BlockOn::Error => Some(Severity::Error),
            BlockOn::Warning => Some(Severity::Warning),
            BlockOn::Never => None,
        }
    }

    /// The findings that block: at or above the threshold, neither allowed by a comment nor
    /// accepted (`rule@migration`) by the person who invoked the deploy.
    pub fn blocking<'f>(self, findings: &'f [Finding], accepted: &[String]) -> Vec<&'f Finding> {
        let Some(threshold) = self.threshold() else {
            return Vec::new();
        };
        findings
            .iter()
            .filter(|f| f.severity >= threshold)
            .filter(|f| f.allowed.is_none())
            .filter(|f| !accepted.iter().any(|a| a.trim() == f.accept_key()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preflight::findings::Evidence;

    #[test]
    fn size_weighs_as_documented() {
        use SizeClass::*;
        assert_eq!(
            grade(Rule::IndexNotConcurrent, Plan, false, true),
            Severity::Info
        );
        assert_eq!(
            grade(Rule::IndexNotConcurrent, Small, false, true),
            Severity::Warning
        );
        assert_eq!(
            grade(Rule::IndexNotConcurrent, Large, false, true),
            Severity::Error
        );
        assert_eq!(
            grade(Rule::IndexNotConcurrent, Unknown, false, false),
            Severity::Warning
        );
        assert_eq!(grade(Rule::SetNotNull, Small, true, true), Severity::Error);
        assert_eq!(grade(Rule::SetNotNull, Small, false, true), Severity::Info);
        assert_eq!(
            grade(Rule::SetNotNull, Small, false, false),
            Severity::Warning
        );
        assert_eq!(
            grade(Rule::DropColumn, Empty, false, true),
            Severity::Warning
        );
        assert_eq!(grade(Rule::DropColumn, Plan, false, true), Severity::Info);
        let t = Thresholds {
            large_rows: 10,
            large_bytes: u64::MAX,
        };
        let size = |rows, has_rows| TableSize {
            row_estimate: Some(rows),
            bytes: 0,
            has_rows,
        };
        assert_eq!(SizeClass::of(&size(0, false), &t), Empty);
        assert_eq!(SizeClass::of(&size(9, true), &t), Small);
        assert_eq!(SizeClass::of(&size(10, true), &t), Large);
    }

    #[test]
    fn blocking_honours_allow_and_accept() {
        let finding = |rule, severity, allowed: Option<&str>| Finding {
            rule,
            severity,
            migration: "m1".into(),
            statement: 1,
            line: 1,
            message: String::new(),
            table: None,
            will_fail: false,
            evidence: Evidence::default(),
            allowed: allowed.map(str::to_owned),
        };
        let findings = vec![
            finding(Rule::SetNotNull, Severity::Error, None),
            finding(Rule::DropColumn, Severity::Warning, None),
            finding(Rule::Truncate, Severity::Error, Some("fixture table")),
        ];
        assert_eq!(BlockOn::Error.blocking(&findings, &[]).len(), 1);
        assert_eq!(BlockOn::Warning.blocking(&findings, &[]).len(), 2);
        assert!(BlockOn::Never.blocking(&findings, &[]).is_empty());
        assert!(
            BlockOn::Error
                .blocking(&findings, &["set-not-null@m1".into()])
                .is_empty()
        );
        assert_eq!(BlockOn::parse(" Warning "), Some(BlockOn::Warning));
        assert_eq!(BlockOn::parse("sometimes"), None);
    }
}

/// How preflight runs for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct PreflightSettings {
    /// Probe the live data (PostgreSQL); otherwise the static rules only.
    pub live: bool,
    /// The lowest severity that stops a confirmed deploy.
    pub block_on: BlockOn,
    /// `rule@migration` entries the person invoking the deploy accepts.
    pub accept: Vec<String>,
    pub thresholds: Thresholds,
    pub limits: LiveLimits,
}

impl Default for PreflightSettings {
    fn default() -> Self {
        PreflightSettings {
            live: true,
            block_on: BlockOn::Never,
            accept: Vec::new(),
            thresholds: Thresholds::default(),
            limits: LiveLimits::default(),
        }
    }
}
