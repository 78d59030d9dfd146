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
/// document and the text (their counts stay).
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
    let mut short = rollup.clone();
    short
        .targets
        .retain(|t| !matches!(t.status.as_str(), "applied" | "up-to-date" | "planned"));
    for t in &mut short.targets {
        t.detail = None;
    }
    let text = render(&short);
    if text.len() <= MESSAGE_LIMIT {
        return text;
    }
    short.targets.truncate(500);
    render(&short)
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
}
