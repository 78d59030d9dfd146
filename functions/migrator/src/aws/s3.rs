//! Fetching the exact artifact version an event names.

use crate::error::EdgeError;
use aws_sdk_s3::config::http::HttpResponse;
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

    async fn latest_version(&self, object: &ObjectRef) -> Result<Option<String>, EdgeError> {
        let response = self
            .client
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await
            .map_err(|e| EdgeError::ArtifactUnavailable {
                location: format!("s3://{}/{}", object.bucket, object.key),
                reason: format!("asking for its latest version: {}", describe(&e)),
                transient: is_transient(&e),
            })?;
        Ok(response.version_id().map(str::to_string))
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

type Failure<E> = SdkError<E, HttpResponse>;

/// The HTTP status S3 (or whatever answered in its place) gave, when a response arrived.
fn http_status<E>(error: &Failure<E>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

/// The failure in one readable line: S3's error code and message, or the HTTP status of an
/// answer that carried no S3 error (a proxy's or an outage's HTML page), never a dump.
fn describe<E: ProvideErrorMetadata>(error: &Failure<E>) -> String {
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
                Some(code) => match e.message() {
                    Some(message) => format!("{code}: {}", clip(message)),
                    None => code.to_string(),
                },
                None => match http_status(error) {
                    Some(status) => format!(
                        "S3 answered HTTP {status} without an S3 error (an outage or a proxy's page){}",
                        if is_transient(error) {
                            "; worth another attempt"
                        } else {
                            ""
                        }
                    ),
                    None => "S3 answered with an error it did not name".into(),
                },
            }
        }
        SdkError::TimeoutError(_) => "S3 did not answer in time".into(),
        SdkError::DispatchFailure(_) => "S3 could not be reached".into(),
        SdkError::ResponseError(_) => match http_status(error) {
            Some(status) => format!("S3's answer (HTTP {status}) could not be read"),
            None => "S3's answer could not be read".into(),
        },
        SdkError::ConstructionFailure(_) => "the S3 request could not be built".into(),
        _ => "an unknown S3 client error".into(),
    }
}

fn clip(text: &str) -> &str {
    migrator_engine::text::clip_bytes(text, 300)
}

/// Faults worth another invocation (the SDK already retried throttling and 5xx): no answer,
/// an unreadable one, throttling, any 5xx or 429 whatever its body, and AccessDenied (a grant
/// being deployed).
fn is_transient<E: ProvideErrorMetadata>(error: &Failure<E>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            matches!(
                service.err().code(),
                Some(
                    "SlowDown"
                        | "InternalError"
                        | "ServiceUnavailable"
                        | "RequestTimeout"
                        | "AccessDenied"
                )
            ) || http_status(error).is_some_and(|s| s == 429 || (500..600).contains(&s))
        }
        _ => false,
    }
}
