//! The AWS edges, implementing the handler's ports (`crate::ports`): S3 artifacts, the SNS
//! outcome, Secrets Manager credentials, RDS IAM tokens. Nothing in the engine imports these.

pub mod credentials;
pub mod rds;
pub mod rds_token;
pub mod s3;
pub mod secrets;
pub mod sns;

use aws_config::BehaviorVersion;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

pub use credentials::AwsCredentials;

use crate::config::StageConfig;
use crate::handler::{Edges, Handler};

/// The shared SDK configuration: the default credential chain (Lambda role, ECS task role,
/// environment, profile), `AWS_ENDPOINT_URL` honoured (moto in tests), throttling and 5xx
/// retried with backoff.
pub async fn sdk_config() -> aws_config::SdkConfig {
    // A peer that accepts and never answers must not hold a run: every attempt is bounded
    // (the handler also bounds each call by the deadline).
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(20))
        .operation_attempt_timeout(Duration::from_secs(25))
        .operation_timeout(Duration::from_secs(60))
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(timeouts)
        .load()
        .await
}

/// The handler's edges on AWS, for one stage.
pub type AwsEdges = Edges<s3::S3Source, sns::SnsNotifier, AwsCredentials>;
pub type AwsHandler = Handler<s3::S3Source, sns::SnsNotifier, AwsCredentials>;

pub fn edges(sdk: &aws_config::SdkConfig, config: &StageConfig) -> AwsEdges {
    // A custom endpoint (moto, MinIO) wants path-style bucket addressing.
    let custom_endpoint = sdk.endpoint_url().is_some();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(custom_endpoint)
            .build(),
    );
    Edges {
        artifacts: s3::S3Source::new(s3),
        notifier: sns::SnsNotifier::new(
            aws_sdk_sns::Client::new(sdk),
            config.topic_arn.clone(),
            config.function_name.clone(),
            config.confirm_qualifier.clone(),
        ),
        credentials: AwsCredentials::new(sdk, config.region.clone()),
        guard: rds::Rds::new(sdk, &config.recovery, &config.stage, config.region.clone())
            .map(|rds| std::sync::Arc::new(rds) as std::sync::Arc<dyn crate::ports::DatabaseGuard>),
    }
}

/// An SDK error in one line: the service's code and message, the HTTP status of an answer
/// that named no error (an outage or a proxy's page), or what kind of fault it was (never the
/// raw HTTP response, never a debug dump).
pub fn describe_sdk_error<E>(
    error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error,
{
    use aws_sdk_s3::error::SdkError;
    let status = error.raw_response().map(|r| r.status().as_u16());
    match error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message(), status) {
                (Some(code), Some(message), _) => {
                    format!(
                        "{code}: {}",
                        migrator_engine::text::clip_bytes(message, 300)
                    )
                }
                (Some(code), None, _) => code.to_string(),
                (None, _, Some(status)) => {
                    format!("the service answered HTTP {status} without naming an error")
                }
                (None, _, None) => "the service answered with an error it did not name".into(),
            }
        }
        SdkError::TimeoutError(_) => "the service did not answer in time".into(),
        SdkError::DispatchFailure(_) => "the service could not be reached".into(),
        SdkError::ResponseError(_) => match status {
            Some(status) => format!("the service's response (HTTP {status}) could not be read"),
            None => "the service's response could not be read".into(),
        },
        SdkError::ConstructionFailure(_) => "the request could not be built".into(),
        _ => "an unknown SDK error".into(),
    }
}
