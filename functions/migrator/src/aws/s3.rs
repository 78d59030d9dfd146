//! Fetching the exact artifact version an event names.

use crate::error::EdgeError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::ports::{ArtifactSource, Fetched};
use crate::trigger::ObjectRef;

/// The stage's artifact bucket(s), read through one client.
pub struct S3Source {
    client: aws_sdk_s3::Client,
}

impl S3Source {
    pub fn new(client: aws_sdk_s3::Client) -> S3Source {
        S3Source { client }
    }
}

impl ArtifactSource for S3Source {
    async fn fetch(&self, object: &ObjectRef, max_bytes: u64) -> Result<Fetched, EdgeError> {
        fetch(&self.client, object, max_bytes).await
    }
}

/// Gets `object`: the version the event names, else (no versioning) the object whose ETag
/// the event saw (`If-Match`), else the latest. At most `max_bytes`, checked before and
/// while reading.
async fn fetch(
    client: &aws_sdk_s3::Client,
    object: &ObjectRef,
    max_bytes: u64,
) -> Result<Fetched, EdgeError> {
    let location = format!("s3://{}/{}", object.bucket, object.key);
    let fail = |reason: String, transient: bool| EdgeError::ArtifactUnavailable {
        location: location.clone(),
        reason,
        transient,
    };
    let mut request = client.get_object().bucket(&object.bucket).key(&object.key);
    if let Some(version) = &object.version_id {
        request = request.version_id(version);
    } else if let Some(etag) = &object.etag {
        request = request.if_match(format!("\"{etag}\""));
    }
    let response = request.send().await.map_err(|e| {
        let transient = is_transient(&e);
        fail(describe(&e), transient)
    })?;
    if let Some(length) = response.content_length()
        && u64::try_from(length).unwrap_or(u64::MAX) > max_bytes
    {
        return Err(fail(
            format!(
                "it is {length} bytes, more than the limit of {max_bytes} (MAX_ARTIFACT_BYTES)"
            ),
            false,
        ));
    }
    let version = response.version_id().map(str::to_string);
    let mut body = response.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| fail(format!("reading the object failed: {e}"), true))?;
        if (bytes.len() + chunk.len()) as u64 > max_bytes {
            return Err(fail(
                format!("it is more than the limit of {max_bytes} bytes (MAX_ARTIFACT_BYTES)"),
                false,
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    let version_id = version.filter(|v| v != "null");
    let location = match &version_id {
        Some(version) => format!("{location}?versionId={version}"),
        None => location.clone(),
    };
    Ok(Fetched {
        bytes,
        location,
        version_id,
    })
}

fn describe<E: ProvideErrorMetadata + std::fmt::Debug, R>(error: &SdkError<E, R>) -> String {
    match error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match e.code() {
                Some("NoSuchKey") => "no such object".into(),
                Some("NoSuchVersion") => "no such object version".into(),
                Some("NoSuchBucket") => "no such bucket".into(),
                Some("PreconditionFailed") => {
                    "the object changed since the event (its ETag no longer matches)".into()
                }
                Some("AccessDenied") => {
                    "access denied (check the function's s3:GetObject/GetObjectVersion grant)"
                        .into()
                }
                Some(code) => format!("{code}: {}", e.message().unwrap_or_default()),
                None => format!("{e:?}"),
            }
        }
        SdkError::TimeoutError(_) => "S3 did not answer in time".into(),
        SdkError::DispatchFailure(_) => "S3 could not be reached".into(),
        other => format!("{other}"),
    }
}

/// Faults worth another invocation (the SDK already retried throttling and 5xx).
fn is_transient<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "SlowDown"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "RequestTimeout"
                    | "AccessDenied"
            )
        ),
        _ => false,
    }
}
