//! Publishing the outcome: one message per outcome, `MessageStructure=json` so each kind of
//! subscriber reads its own rendering, with attributes for subscription filter policies.

use aws_sdk_sns::types::MessageAttributeValue;
use migrator_engine::outcome::Outcome;
use migrator_engine::text::clip_bytes;

use crate::fleet::rollup::Rollup;
use crate::ports::{Notifier, PublishError};
use crate::render;

/// The stage's topic; messages word hints for `function` (the function's own name) and offer
/// buttons through `confirm_qualifier` (see `render::buttons`).
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic: String,
    function: Option<String>,
    confirm_qualifier: Option<String>,
}

impl SnsNotifier {
    pub fn new(
        client: aws_sdk_sns::Client,
        topic: String,
        function: Option<String>,
        confirm_qualifier: Option<String>,
    ) -> SnsNotifier {
        SnsNotifier {
            client,
            topic,
            function,
            confirm_qualifier,
        }
    }
}

impl Notifier for SnsNotifier {
    fn topic(&self) -> &str {
        &self.topic
    }

    async fn publish(&self, outcome: &Outcome, door: Option<&str>) -> Result<String, PublishError> {
        let channel = render::Channel {
            function: self.function.as_deref(),
            confirm_qualifier: self.confirm_qualifier.as_deref(),
            door,
        };
        publish(&self.client, &self.topic, outcome, &channel).await
    }

    async fn publish_rollup(&self, rollup: &Rollup) -> Result<String, PublishError> {
        let fail = |reason: String| PublishError {
            topic: self.topic.clone(),
            reason,
        };
        let attribute = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| fail(e.to_string()))
        };
        let severity = if rollup.ok() { "info" } else { "error" };
        let response = self
            .client
            .publish()
            .topic_arn(&self.topic)
            .message_structure("json")
            .message(rollup_message(rollup))
            .subject(clip_bytes(
                &format!("migrator fleet {}: {}", rollup.stage, rollup.status),
                99,
            ))
            .message_attributes("stage", attribute(&rollup.stage)?)
            .message_attributes("status", attribute(&format!("fleet-{}", rollup.status))?)
            .message_attributes("severity", attribute(severity)?)
            .send()
            .await
            .map_err(|e| fail(crate::aws::describe_sdk_error(&e)))?;
        Ok(response.message_id().unwrap_or_default().to_string())
    }
}

/// A rollup's SNS message (`default`: the document, `https`: Chatbot on the rollout's thread,
/// `email`: text), under [`MESSAGE_LIMIT`]: past it, the successful targets leave the
/// document and the text first, then the others from the last line up
/// ([`Rollup::listing`]); the message says how many are left out, the counts stay whole.
pub fn rollup_message(rollup: &Rollup) -> String {
    let render = |r: &Rollup| {
        serde_json::json!({
            "default": serde_json::to_string(r).unwrap_or_default(),
            "https": r.chatbot().to_string(),
            "email": r.text(),
        })
        .to_string()
    };
    let text = render(rollup);
    if text.len() <= MESSAGE_LIMIT {
        return text;
    }
    // Each target's line is bounded (an id of at most 64 bytes, a detail of at most 240):
    // with none listed, the message is the headline, the counts and Chatbot's 40 lines.
    let mut keep = rollup.targets.len();
    loop {
        let text = render(&rollup.listing(keep));
        if text.len() <= MESSAGE_LIMIT || keep == 0 {
            return text;
        }
        keep /= 2;
    }
}

/// SNS refuses a message (with its attributes) over 256 KiB; ours stays below this, with
/// room for the subject and attributes.
pub const MESSAGE_LIMIT: usize = 250 * 1024;

/// The SNS message: `default` = the outcome document (SQS, Lambda, HTTP subscribers),
/// `https` = an AWS Chatbot custom notification (Slack through Chatbot), `email` = text.
/// Always under [`MESSAGE_LIMIT`]: when the whole outcome does not fit, its lists are cut
/// (error and failures kept whole first), with counts; the full outcome is in the log.
pub fn message(outcome: &Outcome, channel: &render::Channel) -> String {
    let mut text = render_message(outcome, channel);
    for keep in [100, 20, 5, 0] {
        if text.len() <= MESSAGE_LIMIT {
            return text;
        }
        text = render_message(&shortened(outcome, keep), channel);
    }
    if text.len() <= MESSAGE_LIMIT {
        return text;
    }
    // Only a huge error message or warning is left: cut the texts too.
    let mut minimal = shortened(outcome, 0);
    if let Some(error) = &mut minimal.error {
        error.message = format!("{}\n…", clip_bytes(&error.message, 16 * 1024));
    }
    for failed in &mut minimal.failed {
        failed.logs = failed
            .logs
            .as_deref()
            .map(|l| clip_bytes(l, 4 * 1024).to_string());
    }
    minimal.warnings = minimal
        .warnings
        .iter()
        .take(5)
        .map(|w| clip_bytes(w, 1024).to_string())
        .collect();
    render_message(&minimal, channel)
}

fn render_message(outcome: &Outcome, channel: &render::Channel) -> String {
    let function = channel.function;
    let document =
        serde_json::to_string(outcome).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    serde_json::json!({
        "default": document,
        "https": render::chatbot(outcome, channel).to_string(),
        "email": render::email(outcome, function),
    })
    .to_string()
}

/// `outcome` with at most `keep` entries in each list; a warning says what was cut.
fn shortened(outcome: &Outcome, keep: usize) -> Outcome {
    let mut short = outcome.clone();
    let mut cut = Vec::new();
    // The first failure is kept whatever the cut.
    let keep_failed = keep.max(1);
    let mut cut_list = |name: &str, len: usize, keep: usize| {
        if len > keep {
            cut.push(format!("{} of {len} {name}", len - keep));
        }
    };
    cut_list("applied", short.applied.len(), keep);
    cut_list("pending", short.pending.len(), keep);
    cut_list("failed", short.failed.len(), keep_failed);
    cut_list("migrations (status)", short.migrations.len(), keep);
    cut_list("warnings", short.warnings.len(), keep);
    cut_list("missing locally", short.drift.missing_locally.len(), keep);
    cut_list("edited", short.drift.edited.len(), keep);
    short.applied.truncate(keep);
    short.pending.truncate(keep);
    short.failed.truncate(keep_failed);
    short.migrations.truncate(keep);
    short.warnings.truncate(keep);
    short.drift.missing_locally.truncate(keep);
    short.drift.edited.truncate(keep);
    if !cut.is_empty() {
        short.warnings.insert(
            0,
            format!(
                "This message is shortened to fit SNS's 256 KiB: left out {}. The function's log has the whole outcome.",
                cut.join(", ")
            ),
        );
    }
    short
}

async fn publish(
    client: &aws_sdk_sns::Client,
    topic: &str,
    outcome: &Outcome,
    channel: &render::Channel<'_>,
) -> Result<String, PublishError> {
    let fail = |reason: String| PublishError {
        topic: topic.to_string(),
        reason,
    };
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| fail(e.to_string()))
    };
    let stage = outcome.stage.clone().unwrap_or_else(|| "unknown".into());
    let response = client
        .publish()
        .topic_arn(topic)
        .message_structure("json")
        .message(message(outcome, channel))
        .subject(render::subject(outcome))
        .message_attributes("stage", attribute(&stage)?)
        .message_attributes("status", attribute(outcome.status_text())?)
        .message_attributes("severity", attribute(render::severity(outcome))?)
        .message_attributes(
            "findings",
            attribute(
                migrator_engine::preflight::findings::highest(&outcome.findings)
                    .map_or("none", |s| s.as_str()),
            )?,
        )
        .send()
        .await
        .map_err(|e| fail(crate::aws::describe_sdk_error(&e)))?;
    Ok(response.message_id().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use migrator_engine::chrono;
    use migrator_engine::outcome::{
        Action, AppliedMigration, ArtifactInfo, ErrorInfo, Execution, FailedMigration, Status,
    };

    use super::*;

    fn applied(n: usize) -> Outcome {
        let mut o = Outcome::new(Action::Deploy, chrono::Utc::now());
        o.status = Status::Applied;
        o.stage = Some("PROD".into());
        o.artifact = Some(ArtifactInfo {
            location: "s3://artifacts/deploy/PROD/app/prisma.zip?versionId=v1".into(),
            sha256: "ab".repeat(32),
            migrations_path: "prisma/migrations".into(),
            migration_count: n,
            lock_provider: Some("postgresql".into()),
            schema_provider: None,
        });
        o.applied = (0..n)
            .map(|i| AppliedMigration {
                name: format!("2024{i:010}_add_a_column_to_the_table_of_orders_{i}"),
                checksum: "cd".repeat(32),
                execution: Execution::StatementByStatement {
                    reason: "MySQL commits every DDL statement on its own".into(),
                },
                duration_ms: 12,
            })
            .collect();
        o
    }

    #[test]
    fn twelve_hundred_migrations_fit_in_one_sns_message() {
        let outcome = applied(1200);
        assert!(
            render_message(&outcome, &render::Channel::of(Some("migrator-PROD"))).len()
                > 256 * 1024,
            "the whole outcome would not fit: the case this guards"
        );
        let text = message(&outcome, &render::Channel::of(Some("migrator-PROD")));
        assert!(text.len() <= MESSAGE_LIMIT, "{} bytes", text.len());
        let message: serde_json::Value = serde_json::from_str(&text).unwrap();
        let document: Outcome = serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
        assert_eq!(document.status, Status::Applied);
        assert!(
            document.warnings[0].contains("of 1200 applied"),
            "{:?}",
            document.warnings
        );
        let chatbot: serde_json::Value =
            serde_json::from_str(message["https"].as_str().unwrap()).unwrap();
        let description = chatbot["content"]["description"].as_str().unwrap();
        assert!(description.contains("*Applied (100):*"), "{description}");
    }

    #[test]
    fn a_failure_message_carries_the_error_first_and_what_was_committed() {
        let mut outcome = applied(1200);
        outcome.status = Status::Failed;
        let logs = "A migration failed to apply.\n\nMigration name: 20240105_bad\n\nDatabase error code: 42P01\n\nDatabase error:\nERROR: relation \"missing\" does not exist\n\nPosition:\n  1 CREATE TABLE a (id int);\n  2 INSERT INTO missing VALUES (1);";
        outcome.failed = vec![FailedMigration {
            name: "20240105_bad".into(),
            started_at: chrono::Utc::now(),
            logs: Some(logs.repeat(50)),
            committed_statements: Some(vec![1]),
            failed_statement: Some(2),
        }];
        outcome.error = Some(ErrorInfo {
            code: Some("P3018".into()),
            message: logs.into(),
            hint: None,
        });
        let text = message(&outcome, &render::Channel::default());
        assert!(text.len() <= MESSAGE_LIMIT);
        let message: serde_json::Value = serde_json::from_str(&text).unwrap();
        let chatbot: serde_json::Value =
            serde_json::from_str(message["https"].as_str().unwrap()).unwrap();
        let description = chatbot["content"]["description"].as_str().unwrap();
        assert!(description.starts_with("*Error P3018:*"), "{description}");
        for fact in [
            "relation \"missing\" does not exist",
            "2 INSERT INTO missing",
            "at statement 2",
            "committed before the failure: statement(s) 1",
        ] {
            assert!(description.contains(fact), "{fact}: {description}");
        }
        let email = message["email"].as_str().unwrap();
        assert!(email.contains("Error P3018: A migration failed"), "{email}");
    }

    mod rollup {
        use serde_json::{Value, json};

        use super::super::{MESSAGE_LIMIT, rollup_message};
        use crate::fleet::payload::{Prepared, Rollout, RunState, TargetResult};
        use crate::fleet::rollup::Rollup;

        /// The longest id a target may have (64 bytes), numbered.
        fn id(i: usize) -> String {
            format!("tenant-{i:04}-{}", "x".repeat(52))
        }

        fn result(index: usize, status: &str, detail: Option<String>) -> TargetResult {
            TargetResult {
                index,
                id: id(index + 1),
                status: status.into(),
                ok: matches!(status, "applied" | "up-to-date" | "planned"),
                applied: usize::from(status == "applied"),
                pending: 0,
                detail,
            }
        }

        fn run(
            plan: Option<Vec<TargetResult>>,
            waves: Option<Vec<TargetResult>>,
            halt: Option<Value>,
        ) -> RunState {
            RunState {
                prepare: Prepared {
                    ok: true,
                    rejected: None,
                    rollout: Some(Rollout {
                        id: "r1".into(),
                        thread_id: "fleet-r1".into(),
                        artifact: "s3://b/deploy/PROD/app/prisma.zip".into(),
                        version_id: Some("v".into()),
                        targets: "s3://b/fleets/PROD/targets.jsonl".into(),
                        targets_version: Some("tv".into()),
                        apply: true,
                        total: 1000,
                        canary: 0,
                    }),
                    canary: vec![],
                    items: None,
                },
                plan,
                canary: None,
                waves,
                halt,
                waves_error: None,
            }
        }

        fn ids() -> Vec<(usize, String)> {
            (1..=1000).map(|l| (l, id(l))).collect()
        }

        fn parts(text: &str) -> (Value, Value, String) {
            let message: Value = serde_json::from_str(text).unwrap();
            let document = serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
            let chatbot = serde_json::from_str(message["https"].as_str().unwrap()).unwrap();
            (
                document,
                chatbot,
                message["email"].as_str().unwrap().to_string(),
            )
        }

        /// A network outage at the plan: all 1,000 targets fail, each with as much detail as
        /// a result keeps in a fleet that size: past SNS's 256 KiB if every line were listed.
        #[test]
        fn a_rollup_of_a_thousand_failed_targets_fits_and_says_how_many_are_left_out() {
            let limit = crate::fleet::payload::detail_limit(1000);
            let detail = |i: usize| {
                let d = format!(
                    "P1001: Can't reach database server at `tenant-{i:04}.cluster-abcdefghijkl.eu-west-1.rds.amazonaws.com:5432`"
                );
                migrator_engine::text::clip_bytes(&d, limit).to_string()
            };
            let plan = (0..1000)
                .map(|i| result(i, "failed", Some(detail(i + 1))))
                .collect();
            let halt = json!({"Item": {"index": {"N": "0"}, "id": {"S": id(1)}}});
            let rollup = Rollup::of("PROD", &run(Some(plan), None, Some(halt)), &ids());
            assert_eq!(rollup.targets.len(), 1000);
            let whole = json!({
                "default": serde_json::to_string(&rollup).unwrap(),
                "https": rollup.chatbot().to_string(),
                "email": rollup.text(),
            })
            .to_string()
            .len();
            assert!(whole > 256 * 1024, "{whole} bytes: the case this guards");

            let text = rollup_message(&rollup);
            assert!(text.len() <= MESSAGE_LIMIT, "{} bytes", text.len());
            let (document, chatbot, email) = parts(&text);
            let listed = document["targets"].as_array().unwrap();
            let left_out = document["leftOut"].as_u64().unwrap() as usize;
            assert!(!listed.is_empty() && left_out > 0, "{left_out} left out");
            assert_eq!(listed.len() + left_out, 1000);
            // The first lines are kept, in line order, with their details.
            for (n, t) in listed.iter().enumerate() {
                assert_eq!(t["line"], n + 1);
                assert_eq!(t["detail"].as_str().unwrap(), detail(n + 1));
            }
            // The counts and the headline still cover every target.
            assert_eq!(document["counts"], json!({"failed": 1000}));
            assert_eq!(document["status"], "halted");
            let sentence = format!("{left_out} of 1000 targets are left out of this message");
            assert!(email.contains(&sentence), "{}", &email[..400]);
            assert_eq!(email.lines().count(), 2 + listed.len());
            let description = chatbot["content"]["description"].as_str().unwrap();
            assert!(
                description.ends_with(&format!(
                    "… and {} more (the whole rollup is in the fleet function's log)",
                    1000 - 40
                )),
                "{description}"
            );
            assert_eq!(chatbot["metadata"]["threadId"], "fleet-r1");
        }

        /// 1,000 targets: a bad migration fails on the last 300 (running at once when the
        /// first of them raised the halt flag), each with a long detail: the 700 applied
        /// targets leave the message, every failure stays listed with its detail.
        #[test]
        fn the_successful_targets_leave_first_and_every_failure_stays() {
            let detail = format!("P3018: A migration failed to apply. {}", "e".repeat(200));
            let waves: Vec<TargetResult> = (0..1000)
                .map(|i| match i {
                    0..700 => result(i, "applied", None),
                    _ => result(i, "failed", Some(detail.clone())),
                })
                .collect();
            let halt = json!({"Item": {"index": {"N": "700"}, "id": {"S": id(701)}}});
            let rollup = Rollup::of("PROD", &run(None, Some(waves), Some(halt)), &ids());
            let text = rollup_message(&rollup);
            assert!(text.len() <= MESSAGE_LIMIT, "{} bytes", text.len());
            let (document, _, email) = parts(&text);
            let listed = document["targets"].as_array().unwrap();
            assert_eq!(document["leftOut"], 700, "only the applied ones leave");
            assert_eq!(listed.len(), 300);
            for (n, t) in listed.iter().enumerate() {
                assert_eq!(t["line"], 701 + n);
                assert_eq!(t["status"], "failed");
                assert_eq!(t["detail"], detail.as_str());
            }
            assert_eq!(document["counts"], json!({"applied": 700, "failed": 300}));
            assert!(
                email.contains("700 of 1000 targets are left out"),
                "{}",
                &email[..400]
            );
        }

        /// 1,000 applied targets with the longest ids fit one message whole.
        #[test]
        fn a_thousand_applied_targets_are_sent_whole() {
            let waves = (0..1000).map(|i| result(i, "applied", None)).collect();
            let rollup = Rollup::of("PROD", &run(None, Some(waves), None), &ids());
            let text = rollup_message(&rollup);
            assert!(text.len() <= MESSAGE_LIMIT, "{} bytes", text.len());
            let (document, chatbot, email) = parts(&text);
            assert_eq!(document["targets"].as_array().map(Vec::len), Some(1000));
            assert!(document.get("leftOut").is_none());
            assert!(!email.contains("left out"));
            let description = chatbot["content"]["description"].as_str().unwrap();
            assert!(
                description.ends_with("… and 960 more (every target is in the message's document)"),
                "{description}"
            );
        }
    }
}
