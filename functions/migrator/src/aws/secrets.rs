//! Reading an RDS-style Secrets Manager secret.

use crate::error::EdgeError;

use crate::ports::DbSecret;

pub async fn database_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<DbSecret, EdgeError> {
    let fail = |reason: String| EdgeError::Credentials { reason };
    let response = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            fail(format!(
                "reading secret {arn} failed: {}",
                crate::aws::describe_sdk_error(&e)
            ))
        })?;
    let text = response
        .secret_string()
        .ok_or_else(|| fail(format!("secret {arn} has no string value")))?;
    // Never echo the secret's content in an error.
    serde_json::from_str(text).map_err(|e| {
        fail(format!(
            "secret {arn} is not an RDS-style JSON secret with username and password (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}
