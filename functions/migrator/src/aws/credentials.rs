//! Database credentials from AWS: RDS IAM auth tokens signed with the SDK's credential
//! chain (the function, the ECS task and `migrator auth-token` all mint them here), and
//! RDS-style Secrets Manager secrets.

use std::time::SystemTime;

use crate::error::EdgeError;
use aws_credential_types::provider::ProvideCredentials;

use super::rds_token::{self, TokenRequest};
use super::secrets;
use crate::ports::{self, DbSecret, TokenFor};

pub struct AwsCredentials {
    sdk: aws_config::SdkConfig,
    secrets: aws_sdk_secretsmanager::Client,
    /// The region tokens are signed for: the one given, else the SDK's.
    region: Option<String>,
}

impl AwsCredentials {
    /// `region` overrides the SDK's (AWS_REGION, profile).
    pub fn new(sdk: &aws_config::SdkConfig, region: Option<String>) -> AwsCredentials {
        AwsCredentials {
            region: region.or_else(|| sdk.region().map(|r| r.to_string())),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            sdk: sdk.clone(),
        }
    }

    /// A fresh token for `token`, signed now (never logged: only its masked form).
    pub async fn iam_token(&self, token: &TokenFor) -> Result<String, EdgeError> {
        let fail = |reason: String| EdgeError::Credentials { reason };
        let region = self.region.as_deref().ok_or_else(|| {
            fail("no AWS region (AWS_REGION) to sign the IAM auth token for".into())
        })?;
        let credentials = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| fail("no AWS credentials provider".into()))?
            .provide_credentials()
            .await
            .map_err(|e| fail(format!("no AWS credentials: {e}")))?;
        let request = TokenRequest {
            host: &token.host,
            port: token.port,
            user: &token.user,
            region,
        };
        let token = rds_token::generate(&request, &credentials, SystemTime::now())
            .map_err(|e| fail(e.to_string()))?;
        tracing::debug!(token = %rds_token::describe(&token), "minted an IAM auth token");
        Ok(token)
    }
}

impl ports::Credentials for AwsCredentials {
    async fn iam_token(&self, token: &TokenFor) -> Result<String, EdgeError> {
        AwsCredentials::iam_token(self, token).await
    }

    async fn database_secret(&self, arn: &str) -> Result<DbSecret, EdgeError> {
        secrets::database_secret(&self.secrets, arn).await
    }
}
