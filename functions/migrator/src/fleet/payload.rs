//! What the fleet's state machine sends its child (`{"fleet": {"step": …}}`) and what a
//! child answers. Read strictly; only the fleet's door (`FLEET_QUALIFIER`) lets one in.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One step of a rollout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", tag = "step")]
pub enum Step {
    /// Read the execution's input (an upload or `{"artifact", "versionId", "confirm"}`), pin
    /// the artifact and the targets object by version, check every target line.
    Prepare { input: Value, canary: usize },
    /// Plan or apply one target (chosen by the state machine).
    Target {
        action: TargetAction,
        /// 0-based item index (line = index + 1).
        index: usize,
        target: Value,
        rollout: Rollout,
    },
    /// Every target's status in one message, published on the rollout's thread.
    Rollup {
        #[serde(rename = "run")]
        run: Box<RunState>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetAction {
    Plan,
    Deploy,
}

/// A rollout, as Prepare pinned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rollout {
    /// Hash of the artifact and targets versions: a re-run of the same upload is the same rollout.
    pub id: String,
    /// Chatbot's `threadId`: every message of this rollout in one Slack thread.
    pub thread_id: String,
    /// `s3://bucket/key` of the artifact.
    pub artifact: String,
    #[serde(default)]
    pub version_id: Option<String>,
    /// `s3://bucket/key` of the targets.
    pub targets: String,
    #[serde(default)]
    pub targets_version: Option<String>,
    /// Apply (the stage applies uploads, or the execution was a confirmation) or plan only.
    pub apply: bool,
    pub total: usize,
    /// The first `canary` lines are the canary group.
    pub canary: usize,
}

/// What the state machine keeps between states (the rollup reads all of it).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    pub prepare: Prepared,
    #[serde(default)]
    pub plan: Option<Vec<TargetResult>>,
    #[serde(default)]
    pub canary: Option<Vec<TargetResult>>,
    #[serde(default)]
    pub waves: Option<Vec<TargetResult>>,
    /// The halt flag as the state machine read it (DynamoDB GetItem's answer).
    #[serde(default)]
    pub halt: Option<Value>,
    /// The waves' Map failed as a whole (a child's error, past ToleratedFailureCount 0).
    #[serde(default)]
    pub waves_error: Option<Value>,
}

/// Prepare's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prepared {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// The canary group: `{index, target}` for the first `canary` lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canary: Vec<Value>,
    /// Where the item reader reads the targets: `{bucket, key, versionId}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Value>,
}

/// One target's answer (kept small: 1,000 of them travel in the state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetResult {
    pub index: usize,
    #[serde(default)]
    pub id: String,
    /// applied, up-to-date, planned, failed, blocked, rejected, incomplete; `skipped` (the
    /// halt flag was up when its turn came); `canary` (a canary line seen again by the waves).
    pub status: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub applied: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pending: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What one Map's results may take of the execution's state: Step Functions fails an
/// execution whose state passes 256 KiB with `States.DataLimitExceeded`, which no `Catch`
/// catches (so no rollup would be published). The rest of the state (the rollout, the
/// canary's items and results, the halt flag) fits in the other 56 KiB.
pub const RESULTS_BUDGET: usize = 200 * 1024;

/// A result without its detail, at its largest (a 64-byte id, the longest status, counts).
pub const RESULT_WITHOUT_DETAIL: usize = 180;

/// The longest detail a result carries in a rollout of `total` targets: 240 bytes, less when
/// `total` results with that much would pass [`RESULTS_BUDGET`] (1,000 targets: 24 bytes,
/// about an error code and its first words; the whole error is in the function's log and in
/// `migrator fleet status`).
pub fn detail_limit(total: usize) -> usize {
    (RESULTS_BUDGET / total.max(1))
        .saturating_sub(RESULT_WITHOUT_DETAIL)
        .min(240)
}

/// The fleet payload inside `{"fleet": …}`.
pub fn read(value: &Value) -> Result<Step, String> {
    serde_json::from_value(value.clone()).map_err(|e| {
        format!(
            "a fleet payload that does not fit {{step: prepare|target|rollup, …}}: {}",
            crate::trigger::clip(&e.to_string())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_are_read_strictly() {
        let rollout = json!({"id":"r","threadId":"t","artifact":"s3://b/k","targets":"s3://b/t","apply":true,"total":2,"canary":1});
        let step = read(&json!({"step":"target","action":"deploy","index":0,"target":{"id":"a"},"rollout":rollout})).unwrap();
        assert!(matches!(
            step,
            Step::Target {
                action: TargetAction::Deploy,
                index: 0,
                ..
            }
        ));
        assert!(
            read(&json!({"step":"target","action":"drop","index":0,"target":{},"rollout":rollout}))
                .is_err()
        );
        assert!(read(&json!({"step":"prepare","input":{},"canary":1,"extra":1})).is_err());
    }

    /// The worst Map of the largest fleet: 1,000 targets with 64-byte ids, every one failed
    /// with a detail as long as allowed (quotes in it escaped), stays within the budget; a
    /// small fleet keeps 240 bytes of detail.
    #[test]
    fn a_thousand_failed_results_fit_the_state() {
        assert_eq!(detail_limit(10), 240);
        assert_eq!(detail_limit(0), 240);
        let total = crate::fleet::targets::MAX_TARGETS;
        let limit = detail_limit(total);
        assert!(limit >= 16, "room for an error code: {limit}");
        let detail = "P1001: Can't reach database server at `db.example.com:5432`".repeat(10);
        let results: Vec<TargetResult> = (0..total)
            .map(|index| TargetResult {
                index,
                id: format!("{index:04}-{}", "x".repeat(59)),
                status: "incomplete".into(),
                ok: false,
                applied: 999,
                pending: 999,
                detail: Some(migrator_engine::text::clip_bytes(&detail, limit).to_string()),
            })
            .collect();
        assert_eq!(results[0].id.len(), 64);
        let size = serde_json::to_string(&results).unwrap().len();
        assert!(size <= RESULTS_BUDGET, "{size} bytes");
        let one = serde_json::to_string(&TargetResult {
            detail: None,
            ..results[999].clone()
        })
        .unwrap()
        .len();
        assert!(one <= RESULT_WITHOUT_DETAIL, "{one} bytes");
    }
}
