//! The AWS edges: S3 artifacts, the SNS outcome, Secrets Manager credentials, RDS IAM tokens.
//! Nothing in the engine imports these.

pub mod rds_token;
pub mod s3;
pub mod secrets;
pub mod sns;

use aws_config::BehaviorVersion;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

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

/// Clients for one runtime.
#[derive(Clone)]
pub struct Clients {
    pub sdk: aws_config::SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    pub fn new(sdk: aws_config::SdkConfig) -> Clients {
        // A custom endpoint (moto, MinIO) wants path-style bucket addressing.
        let custom_endpoint = sdk.endpoint_url().is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(custom_endpoint)
                .build(),
        );
        Clients {
            s3,
            sns: aws_sdk_sns::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sdk,
        }
    }
}

/// An SDK error in one line: the service's code and message, or what kind of fault it was
/// (never the raw HTTP response).
pub fn describe_sdk_error<E, R>(error: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error,
{
    use aws_sdk_s3::error::SdkError;
    match error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => e.to_string(),
            }
        }
        SdkError::TimeoutError(_) => "the service did not answer in time".into(),
        SdkError::DispatchFailure(_) => "the service could not be reached".into(),
        SdkError::ResponseError(_) => "the service's response could not be read".into(),
        SdkError::ConstructionFailure(_) => "the request could not be built".into(),
        _ => "an unknown SDK error".into(),
    }
}
