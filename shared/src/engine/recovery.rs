//! The recovery-point port: "take a way back before the first write". The engine calls it
//! once per confirmed deploy, after it holds the migration lock and knows that something is
//! pending, before it writes anything (not even `_prisma_migrations`). A deploy with nothing
//! pending never calls it. What the point is (a point in time, a snapshot) and how it is
//! taken is the runtime's: the function's RDS implementation lives in `functions/`.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::EngineError;
use crate::outcome::{Outcome, PendingMigration, RecoveryPoint};
use crate::preflight::{Finding, Severity};

/// When the policy applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryWhen {
    /// Before every deploy that writes.
    Always,
    /// Only when the plan has a finding at or above this severity (accepted or allowed
    /// findings count: accepting a risk is exactly when a way back matters).
    AtLeast(Severity),
}

impl RecoveryWhen {
    /// `always`, `warning`, `error` (`info` too, though every plan of note has one).
    pub fn parse(text: &str) -> Option<RecoveryWhen> {
        match text.trim().to_ascii_lowercase().as_str() {
            "always" => Some(RecoveryWhen::Always),
            "info" => Some(RecoveryWhen::AtLeast(Severity::Info)),
            "warning" => Some(RecoveryWhen::AtLeast(Severity::Warning)),
            "error" => Some(RecoveryWhen::AtLeast(Severity::Error)),
            _ => None,
        }
    }

    /// Whether a plan with these findings needs the recovery point. The one rule.
    pub fn applies(self, findings: &[Finding]) -> bool {
        match self {
            RecoveryWhen::Always => true,
            RecoveryWhen::AtLeast(threshold) => findings
                .iter()
                .any(|f| f.severity >= threshold || f.will_fail),
        }
    }
}

/// What the recovery point is taken for.
#[derive(Debug)]
pub struct RecoveryNeed<'a> {
    /// What is about to be applied, in order (never empty).
    pub pending: &'a [PendingMigration],
    /// The plan's preflight findings (empty without preflight).
    pub findings: &'a [Finding],
    /// The hash of the plan about to be applied (`engine::plan_hash`), for the snapshot's tags.
    pub plan_hash: String,
    /// The artifact's SHA-256, when known.
    pub artifact_sha256: Option<&'a str>,
    /// The artifact's location (`s3://…?versionId=…`), when known.
    pub artifact_location: Option<&'a str>,
    /// Time left before the deadline's margin: a wait must end by then.
    pub time_left: Option<Duration>,
}

/// Takes the way back. `Ok(None)`: the policy asks for none for this plan.
/// `Err(RecoveryPointUnavailable)` (blocked) or `Err(RecoveryPointFailed)` (failed, worth
/// retrying) stop the deploy before anything is written.
#[async_trait]
pub trait RecoveryPoints: Send + Sync + std::fmt::Debug {
    async fn before_first_write(
        &self,
        need: &RecoveryNeed<'_>,
    ) -> Result<Option<RecoveryPoint>, EngineError>;
}

/// Calls the port (when there is one and something is pending) and records the point in the
/// outcome. Called once per deploy: `taken` remembers that it was.
pub(super) async fn take(
    port: Option<&dyn RecoveryPoints>,
    pending: &[PendingMigration],
    time_left: Option<Duration>,
    taken: &mut bool,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    let Some(port) = port else {
        return Ok(());
    };
    if *taken || pending.is_empty() {
        return Ok(());
    }
    *taken = true;
    let sha = outcome.artifact.as_ref().map(|a| a.sha256.clone());
    let location = outcome.artifact.as_ref().map(|a| a.location.clone());
    let need = RecoveryNeed {
        pending,
        findings: &outcome.findings,
        plan_hash: super::plan_hash::plan_hash(sha.as_deref().unwrap_or_default(), pending),
        artifact_sha256: sha.as_deref(),
        artifact_location: location.as_deref(),
        time_left,
    };
    if let Some(point) = port.before_first_write(&need).await? {
        tracing::info!(
            kind = point.kind.as_str(),
            identifier = %point.identifier,
            "recovery point taken before the first write"
        );
        outcome.recovery_point = Some(point);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_reads_and_decides_once() {
        assert_eq!(RecoveryWhen::parse("Always"), Some(RecoveryWhen::Always));
        assert_eq!(
            RecoveryWhen::parse("error"),
            Some(RecoveryWhen::AtLeast(Severity::Error))
        );
        assert_eq!(RecoveryWhen::parse("sometimes"), None);
        assert!(RecoveryWhen::Always.applies(&[]));
        assert!(!RecoveryWhen::AtLeast(Severity::Info).applies(&[]));
    }
}
