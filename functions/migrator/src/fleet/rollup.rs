//! The rollup: one outcome for a whole rollout, every target with its status, and its
//! renderings (the document, the Chatbot notification on the rollout's thread, text).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::payload::{RunState, TargetResult};
use crate::render::escape::{code, prose};

/// How many targets a message lists one by one (failures and skips first); the document
/// (the SNS message's `default`) lists every one.
pub const LISTED_IN_CHAT: usize = 40;

/// The whole rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollup {
    pub kind: &'static str,
    pub stage: String,
    /// One line: what happened.
    pub headline: String,
    /// applied, planned, halted, failed (the waves stopped on an error) or rejected.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Why nothing ran (a bad target line, an artifact that cannot be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The target whose failure raised the halt flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted_at: Option<TargetRef>,
    /// Status → how many targets.
    pub counts: BTreeMap<String, usize>,
    /// Every target, in line order (in a message too big for SNS, those that did not succeed
    /// first, see [`Rollup::listing`]).
    pub targets: Vec<TargetStatus>,
    /// How many targets this rendering leaves out (a rollup too big for one SNS message):
    /// they are still in `counts`, and the whole rollup is in the fleet function's log.
    #[serde(skip_serializing_if = "is_zero")]
    pub left_out: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub line: usize,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatus {
    pub line: usize,
    pub id: String,
    pub status: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub applied: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub pending: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Rollup {
    /// A rollout refused before any target was touched.
    pub fn rejected(stage: &str, reason: String) -> Rollup {
        let mut rollup = Rollup {
            kind: "fleet-rollup",
            stage: stage.to_string(),
            headline: String::new(),
            status: "rejected".into(),
            rollout_id: None,
            thread_id: None,
            artifact: None,
            version_id: None,
            reason: Some(reason),
            halted_at: None,
            counts: BTreeMap::new(),
            targets: Vec::new(),
            left_out: 0,
        };
        rollup.headline = rollup.headline();
        rollup
    }

    /// Every target's status from what the state machine kept: a result where a child
    /// answered, `skipped` where the halt flag stopped it, `not-run` where nothing started.
    /// `ids` are the targets object's ids, in line order (`(line, id)`).
    pub fn of(stage: &str, run: &RunState, ids: &[(usize, String)]) -> Rollup {
        let Some(rollout) = run.prepare.rollout.as_ref().filter(|_| run.prepare.ok) else {
            let reason = run
                .prepare
                .rejected
                .clone()
                .unwrap_or_else(|| "the rollout was not prepared".into());
            return Rollup::rejected(stage, reason);
        };
        let halted_at = run.halt.as_ref().and_then(halt_item);
        let mut by_index: BTreeMap<usize, &TargetResult> = BTreeMap::new();
        for result in [&run.plan, &run.canary, &run.waves]
            .into_iter()
            .flatten()
            .flatten()
            .filter(|r| r.status != "canary")
        {
            by_index.insert(result.index, result);
        }
        let targets: Vec<TargetStatus> = ids
            .iter()
            .map(|(line, id)| match by_index.get(&(line - 1)) {
                Some(r) => TargetStatus {
                    line: *line,
                    id: id.clone(),
                    status: r.status.clone(),
                    applied: r.applied,
                    pending: r.pending,
                    detail: r.detail.clone(),
                },
                None => TargetStatus {
                    line: *line,
                    id: id.clone(),
                    status: if halted_at.is_some() {
                        "skipped"
                    } else {
                        "not-run"
                    }
                    .into(),
                    applied: 0,
                    pending: 0,
                    detail: None,
                },
            })
            .collect();
        let mut counts = BTreeMap::new();
        for t in &targets {
            *counts.entry(t.status.clone()).or_insert(0) += 1;
        }
        let status = if halted_at.is_some() {
            "halted"
        } else if run.waves_error.is_some() || targets.iter().any(|t| !ok_status(&t.status)) {
            "failed"
        } else if !rollout.apply {
            "planned"
        } else {
            "applied"
        };
        let mut rollup = Rollup {
            kind: "fleet-rollup",
            stage: stage.to_string(),
            headline: String::new(),
            status: status.into(),
            rollout_id: Some(rollout.id.clone()),
            thread_id: Some(rollout.thread_id.clone()),
            artifact: Some(rollout.artifact.clone()),
            version_id: rollout.version_id.clone(),
            reason: run.waves_error.as_ref().map(|e| {
                format!(
                    "the waves stopped: {}",
                    crate::trigger::clip(&e.to_string())
                )
            }),
            halted_at,
            counts,
            targets,
            left_out: 0,
        };
        rollup.headline = rollup.headline();
        rollup
    }

    /// Whether the rollout ended as it should (exit 0, execution succeeds).
    pub fn ok(&self) -> bool {
        matches!(self.status.as_str(), "applied" | "planned")
    }

    /// `6 applied, 1 failed, 13 skipped`.
    pub fn count_line(&self) -> String {
        let order = [
            "applied",
            "up-to-date",
            "planned",
            "failed",
            "blocked",
            "rejected",
            "incomplete",
            "skipped",
            "not-run",
        ];
        let mut parts: Vec<String> = order
            .iter()
            .filter_map(|s| self.counts.get(*s).map(|n| format!("{n} {s}")))
            .collect();
        for (s, n) in &self.counts {
            if !order.contains(&s.as_str()) {
                parts.push(format!("{n} {s}"));
            }
        }
        parts.join(", ")
    }

    pub fn headline(&self) -> String {
        let of = self
            .artifact
            .as_deref()
            .map(|a| format!(" of {a}"))
            .unwrap_or_default();
        match (&self.status[..], &self.halted_at) {
            ("rejected", _) => format!(
                "Fleet rollout rejected on {}: {} Nothing was applied anywhere.",
                self.stage,
                self.reason.as_deref().unwrap_or_default()
            ),
            ("halted", Some(at)) => format!(
                "Fleet rollout{of} on {} halted at {} (line {}): {}",
                self.stage,
                at.id,
                at.line,
                self.count_line()
            ),
            (status, _) => format!(
                "Fleet rollout{of} on {}: {status}: {}",
                self.stage,
                self.count_line()
            ),
        }
    }

    /// The same rollup listing at most `keep` targets: those that did not succeed (failed,
    /// blocked, skipped, …) in line order, the successful ones dropped first; `left_out`
    /// says how many are missing. Counts, status and headline do not change.
    pub fn listing(&self, keep: usize) -> Rollup {
        let mut short = self.clone();
        short.targets = self
            .targets
            .iter()
            .filter(|t| !ok_status(&t.status))
            .take(keep)
            .cloned()
            .collect();
        short.left_out = self.left_out + self.targets.len() - short.targets.len();
        short
    }

    /// The sentence that says what a shortened listing leaves out.
    pub fn left_out_line(&self) -> Option<String> {
        (self.left_out > 0).then(|| {
            format!(
                "{} of {} targets are left out of this message (the successful ones first; the counts cover every target, the fleet function's log has the whole rollup)",
                self.left_out,
                self.targets.len() + self.left_out
            )
        })
    }

    /// Plain text: the headline, then one line per target.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.headline());
        if let Some(line) = self.left_out_line() {
            out.push_str(&format!("{line}\n"));
        }
        for t in &self.targets {
            out.push_str(&format!("  line {:>4}  {:<24} {}", t.line, t.id, t.status));
            if t.applied > 0 {
                out.push_str(&format!(" ({} applied)", t.applied));
            }
            if t.pending > 0 {
                out.push_str(&format!(" ({} pending)", t.pending));
            }
            if let Some(d) = &t.detail {
                out.push_str(&format!(": {d}"));
            }
            out.push('\n');
        }
        out
    }

    /// The AWS Chatbot custom notification: on the rollout's thread, the counts and at most
    /// [`LISTED_IN_CHAT`] targets (those that did not succeed first).
    pub fn chatbot(&self) -> Value {
        let mut notable: Vec<&TargetStatus> = self
            .targets
            .iter()
            .filter(|t| !ok_status(&t.status))
            .collect();
        notable.extend(self.targets.iter().filter(|t| ok_status(&t.status)));
        let mut lines: Vec<String> = notable
            .iter()
            .take(LISTED_IN_CHAT)
            .map(|t| {
                let detail = t
                    .detail
                    .as_deref()
                    .map(|d| format!(": {}", prose(d)))
                    .unwrap_or_default();
                format!("• {} {}{detail}", code(&t.id), prose(&t.status))
            })
            .collect();
        let unlisted = self.targets.len().saturating_sub(LISTED_IN_CHAT) + self.left_out;
        if unlisted > 0 {
            let whole = if self.left_out > 0 {
                "the whole rollup is in the fleet function's log"
            } else {
                "every target is in the message's document"
            };
            lines.push(format!("… and {unlisted} more ({whole})"));
        }
        let mut metadata = json!({
            "summary": prose(&format!("fleet {}: {}", self.stage, self.status)),
            "eventType": format!("migrator.fleet.{}", self.status),
            "additionalContext": {"stage": self.stage, "status": self.status, "rollout": self.rollout_id},
        });
        if let Some(thread) = &self.thread_id {
            metadata["threadId"] = json!(thread);
        }
        json!({
            "version": "1.0",
            "source": "custom",
            "content": {
                "textType": "client-markdown",
                "title": prose(&self.headline()),
                "description": lines.join("\n"),
            },
            "metadata": metadata,
        })
    }
}

/// A status that does not stop a rollout.
fn ok_status(status: &str) -> bool {
    matches!(status, "applied" | "up-to-date" | "planned")
}

/// `{"Item": {"index": {"N": "6"}, "id": {"S": "t07"}}}` (DynamoDB's GetItem) → line 7, t07.
fn halt_item(halt: &Value) -> Option<TargetRef> {
    let item = halt.get("Item")?;
    let index: usize = item.pointer("/index/N")?.as_str()?.parse().ok()?;
    Some(TargetRef {
        line: index + 1,
        id: item.pointer("/id/S")?.as_str()?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::payload::{Prepared, Rollout};

    fn result(index: usize, status: &str) -> TargetResult {
        TargetResult {
            index,
            id: format!("t{:02}", index + 1),
            status: status.into(),
            ok: ok_status(status),
            applied: usize::from(status == "applied"),
            pending: 0,
            detail: None,
        }
    }

    #[test]
    fn a_halted_rollout_lists_every_target() {
        let rollout = Rollout {
            id: "r1".into(),
            thread_id: "fleet-r1".into(),
            artifact: "s3://b/k".into(),
            version_id: Some("v".into()),
            targets: "s3://b/t".into(),
            targets_version: None,
            apply: true,
            total: 5,
            canary: 1,
        };
        let run = RunState {
            prepare: Prepared {
                ok: true,
                rejected: None,
                rollout: Some(rollout),
                canary: vec![],
                items: None,
            },
            plan: None,
            canary: Some(vec![result(0, "applied")]),
            waves: Some(vec![
                result(0, "canary"),
                result(1, "applied"),
                result(2, "failed"),
                result(3, "skipped"),
            ]),
            halt: Some(
                json!({"Item": {"execution": {"S": "x"}, "index": {"N": "2"}, "id": {"S": "t03"}}}),
            ),
            waves_error: None,
        };
        let ids: Vec<(usize, String)> = (1..=5).map(|l| (l, format!("t{l:02}"))).collect();
        let r = Rollup::of("PROD", &run, &ids);
        assert_eq!(r.status, "halted");
        assert_eq!(
            r.halted_at,
            Some(TargetRef {
                line: 3,
                id: "t03".into()
            })
        );
        let statuses: Vec<&str> = r.targets.iter().map(|t| t.status.as_str()).collect();
        assert_eq!(
            statuses,
            ["applied", "applied", "failed", "skipped", "skipped"]
        );
        assert_eq!(r.count_line(), "2 applied, 1 failed, 2 skipped");
        let chat = r.chatbot();
        assert_eq!(chat["metadata"]["threadId"], "fleet-r1");
        assert!(!r.ok());
    }
}
