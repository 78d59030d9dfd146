//! What a Slack button needs, carried in the Chatbot notification's
//! `metadata.additionalContext` (and its `metadata.threadId`).
//!
//! The construct's AWS Chatbot custom actions (infra/lib/chat-actions.json) are buttons that
//! run one AWS CLI command, `lambda invoke --function-name $fn --qualifier apply --payload $p`,
//! with the variables read from `additionalContext`; a button is shown only when its
//! criteria match the stable marker [`MARKER`]. The payloads are exactly what the function
//! would print for a person to run: a plan's `confirmPayload` (bound to the object version
//! and the plan hash), a resolve of the failed migration, or the blocked plan's payload with
//! the findings accepted. Each is one word of printable ASCII (see [`one_word`]) so that it
//! stays a single argument however the command line is split.

use migrator_engine::checksum::sha256_hex;
use migrator_engine::outcome::{Outcome, ResolveKind, Status};
use migrator_engine::preflight::Severity;
use serde_json::{Map, Value};

use crate::payload::{ManualPayload, parse_s3_url};

/// The `additionalContext` key a custom action's criteria match.
pub const MARKER: &str = "migratorAction";
/// The function name (`$fn` in the command text).
pub const FUNCTION: &str = "fn";

/// Which button(s) a notification carries, and the `additionalContext` keys of their payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// A plan: apply exactly it (`p`).
    ApplyPlan,
    /// A failed migration: mark it rolled back (`rb`) or applied (`ap`).
    Resolve,
    /// Blocked by preflight findings: accept them and apply exactly this plan (`p`).
    AcceptAndApply,
}

impl Offer {
    pub fn marker(self) -> &'static str {
        match self {
            Offer::ApplyPlan => "apply-plan",
            Offer::Resolve => "resolve-failed",
            Offer::AcceptAndApply => "accept-and-apply",
        }
    }
}

/// What `by` says when a button accepts findings: that a Slack button sent it, nothing more.
/// The function cannot know who pressed it; CloudTrail can (the Invoke record of the
/// request id, as the `chatbot-session-slack-…` role session). Any name put here would be
/// a claim the clicker's button wrote, not a verified identity.
pub const BUTTON_BY: &str = "slack-button";

/// The longest payload variable we offer (a longer one gets no button; the text still shows
/// the command to run).
pub const MAX_PAYLOAD: usize = 1000;

/// The stable thread of one object version on one stage: plan → apply → outcome → a later
/// resolve of that version share one Slack thread. `None` when the outcome names no artifact.
pub fn thread_id(o: &Outcome) -> Option<String> {
    let location = &o.artifact.as_ref()?.location;
    let stage = o.stage.as_deref().unwrap_or("");
    Some(sha256_hex(format!("{stage}\n{location}").as_bytes())[..16].to_string())
}

/// The buttons' variables for `o`: `(key, value)` pairs for `additionalContext`, the marker
/// first. Nothing when the stage has no confirm door (`confirm_qualifier`) or no function
/// name, or when nothing can be pressed.
pub fn context(
    o: &Outcome,
    function: Option<&str>,
    confirm_qualifier: Option<&str>,
) -> Vec<(&'static str, String)> {
    let (Some(function), Some(_)) = (function, confirm_qualifier) else {
        return Vec::new();
    };
    let (offer, payloads): (Offer, Vec<(&'static str, Value)>) = match o.status {
        Status::Planned => match &o.confirm_payload {
            Some(p) => (Offer::ApplyPlan, vec![("p", p.clone())]),
            None => return Vec::new(),
        },
        Status::Blocked => match accepting(o) {
            Some(p) => (Offer::AcceptAndApply, vec![("p", p)]),
            None => return Vec::new(),
        },
        Status::Failed => match resolving(o) {
            Some(pair) => (Offer::Resolve, pair),
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    let mut out = vec![(MARKER, offer.marker().to_string())];
    out.push((FUNCTION, function.to_string()));
    for (key, payload) in payloads {
        let word = one_word(&payload);
        if word.len() > MAX_PAYLOAD {
            return Vec::new();
        }
        out.push((key, word));
    }
    out
}

/// The blocked plan's `confirmPayload` with its blocking findings accepted, `by` a button.
fn accepting(o: &Outcome) -> Option<Value> {
    let mut payload = o.confirm_payload.clone()?;
    let accept: Vec<Value> = o
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error && f.allowed.is_none())
        .map(|f| Value::String(format!("{}@{}", f.rule, f.migration)))
        .collect();
    if accept.is_empty() {
        return None;
    }
    let object = payload.as_object_mut()?;
    object.insert("accept".into(), Value::Array(accept));
    object.insert("by".into(), Value::String(BUTTON_BY.into()));
    Some(payload)
}

/// Resolving the first failed migration of the failed outcome's artifact version: as rolled
/// back (`rb`) or as applied (`ap`).
fn resolving(o: &Outcome) -> Option<Vec<(&'static str, Value)>> {
    let failed = o.failed.first()?;
    let location = &o.artifact.as_ref()?.location;
    let (url, version) = match location.rsplit_once("?versionId=") {
        Some((url, version)) => (url, Some(version.to_string())),
        None => (location.as_str(), None),
    };
    parse_s3_url(url).ok()?;
    let payload = |kind: ResolveKind| {
        let target = migrator_engine::engine::ResolveTarget {
            name: failed.name.clone(),
            kind,
        };
        ManualPayload {
            artifact: Some(url.to_string()),
            version_id: version.clone(),
            ..ManualPayload::new(migrator_engine::outcome::Action::Resolve, true)
                .with_resolve(Some(&target))
        }
        .to_value()
    };
    Some(vec![
        ("rb", payload(ResolveKind::RolledBack)),
        ("ap", payload(ResolveKind::Applied)),
    ])
}

/// `value` as compact JSON in printable ASCII with no space: every other character (inside a
/// string, the only place one can be) is written `\uXXXX`. Still the same JSON value.
pub fn one_word(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if ('!'..='~').contains(&c) {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The buttons' variables and the door as `additionalContext` entries.
pub fn insert(context: &mut Map<String, Value>, entries: Vec<(&'static str, String)>) {
    for (key, value) in entries {
        context.insert(key.into(), Value::String(value));
    }
}

#[cfg(test)]
mod tests {
    use migrator_engine::chrono;
    use migrator_engine::outcome::{Action, ArtifactInfo, FailedMigration};
    use serde_json::json;

    use super::*;

    fn with_artifact(status: Status, stage: &str, location: &str) -> Outcome {
        let mut o = Outcome::new(Action::Deploy, chrono::Utc::now());
        o.status = status;
        o.stage = Some(stage.into());
        o.artifact = Some(ArtifactInfo {
            location: location.into(),
            sha256: "ab".repeat(32),
            migrations_path: "prisma/migrations".into(),
            migration_count: 1,
            lock_provider: None,
            schema_provider: None,
        });
        o
    }

    #[test]
    fn one_thread_per_stage_and_object_version() {
        let a = with_artifact(Status::Planned, "PROD", "s3://b/k.zip?versionId=v1");
        let b = with_artifact(Status::Applied, "PROD", "s3://b/k.zip?versionId=v1");
        let c = with_artifact(Status::Planned, "PROD", "s3://b/k.zip?versionId=v2");
        let d = with_artifact(Status::Planned, "CODE", "s3://b/k.zip?versionId=v1");
        let id = thread_id(&a).unwrap();
        assert_eq!(id.len(), 16);
        assert_eq!(thread_id(&b).as_ref(), Some(&id));
        assert_ne!(thread_id(&c).as_ref(), Some(&id));
        assert_ne!(thread_id(&d).as_ref(), Some(&id));
        assert_eq!(
            thread_id(&Outcome::new(Action::Deploy, chrono::Utc::now())),
            None
        );
    }

    #[test]
    fn a_plan_offers_its_exact_confirm_payload_as_one_word() {
        let mut o = with_artifact(Status::Planned, "PROD", "s3://b/a key.zip?versionId=v1");
        let payload = json!({"action":"deploy","confirm":true,"artifact":"s3://b/a key é.zip","versionId":"v1","planHash":"ab"});
        o.confirm_payload = Some(payload.clone());
        assert!(
            context(&o, Some("f"), None).is_empty(),
            "no door, no button"
        );
        assert!(context(&o, None, Some("apply")).is_empty());
        let ctx = context(&o, Some("migrator-PROD"), Some("apply"));
        assert_eq!(ctx[0], (MARKER, "apply-plan".to_string()));
        assert_eq!(ctx[1], (FUNCTION, "migrator-PROD".to_string()));
        let (key, word) = &ctx[2];
        assert_eq!(*key, "p");
        assert!(
            word.chars().all(|c| ('!'..='~').contains(&c)),
            "one printable word: {word}"
        );
        assert_eq!(serde_json::from_str::<Value>(word).unwrap(), payload);
        // Beyond the BMP: a surrogate pair, still the same value.
        let emoji = json!({"k":"a😀b"});
        assert_eq!(
            serde_json::from_str::<Value>(&one_word(&emoji)).unwrap(),
            emoji
        );
    }

    #[test]
    fn a_block_offers_its_plan_with_the_blocking_findings_accepted_by_a_button() {
        let mut o = with_artifact(Status::Blocked, "PROD", "s3://b/k.zip?versionId=v1");
        let payload = json!({"action":"deploy","confirm":true,"artifact":"s3://b/k.zip","versionId":"v1","planHash":"ab"});
        let finding = |rule: &str, severity: &str, allowed: Option<&str>| {
            let mut f = json!({"rule": rule, "severity": severity, "migration": "20240301_x",
                "statement": 1, "line": 1, "message": "m", "willFail": false,
                "evidence": {"basis": "static"}});
            if let Some(a) = allowed {
                f["allowed"] = json!(a);
            }
            serde_json::from_value(f).expect("a finding")
        };
        o.findings = vec![
            finding("set-not-null", "error", None),
            finding("unique-index", "warning", None),
            finding("not-null-without-default", "error", Some("backfilled")),
        ];
        assert!(
            context(&o, Some("f"), Some("apply")).is_empty(),
            "no plan, no button"
        );
        o.confirm_payload = Some(payload);
        let ctx = context(&o, Some("f"), Some("apply"));
        assert_eq!(ctx[0].1, "accept-and-apply");
        let sent: Value = serde_json::from_str(&ctx[2].1).unwrap();
        assert_eq!(sent["accept"], json!(["set-not-null@20240301_x"]));
        assert_eq!(sent["by"], BUTTON_BY);
        assert_eq!(sent["planHash"], "ab");
    }

    #[test]
    fn a_failure_offers_both_resolves_of_that_version() {
        let mut o = with_artifact(Status::Failed, "PROD", "s3://b/k.zip?versionId=v1");
        o.failed.push(FailedMigration {
            name: "20240102000000_bad".into(),
            started_at: chrono::Utc::now(),
            logs: None,
            committed_statements: None,
            failed_statement: Some(2),
        });
        let ctx = context(&o, Some("fn1"), Some("apply"));
        assert_eq!(ctx[0].1, "resolve-failed");
        let rb: Value = serde_json::from_str(&ctx[2].1).unwrap();
        assert_eq!(
            rb,
            json!({"action":"resolve","confirm":true,"artifact":"s3://b/k.zip","versionId":"v1","resolve":{"rolledBack":"20240102000000_bad"}})
        );
        let ap: Value = serde_json::from_str(&ctx[3].1).unwrap();
        assert_eq!(ap["resolve"], json!({"applied":"20240102000000_bad"}));
    }
}
