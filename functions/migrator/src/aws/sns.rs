//! Publishing the outcome: one message per outcome, `MessageStructure=json` so each kind of
//! subscriber reads its own rendering, with attributes for subscription filter policies.

use aws_sdk_sns::types::MessageAttributeValue;
use migrator_engine::outcome::Outcome;

use crate::render;

#[derive(Debug, thiserror::Error)]
#[error("publishing the outcome to {topic} failed: {reason}")]
pub struct PublishError {
    pub topic: String,
    pub reason: String,
}

/// The SNS message: `default` = the outcome document (SQS, Lambda, HTTP subscribers),
/// `https` = an AWS Chatbot custom notification (Slack through Chatbot), `email` = text.
pub fn message(outcome: &Outcome) -> serde_json::Value {
    let document =
        serde_json::to_string(outcome).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    serde_json::json!({
        "default": document,
        "https": render::chatbot(outcome).to_string(),
        "email": render::email(outcome),
    })
}

pub async fn publish(
    client: &aws_sdk_sns::Client,
    topic: &str,
    outcome: &Outcome,
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
        .message(message(outcome).to_string())
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
