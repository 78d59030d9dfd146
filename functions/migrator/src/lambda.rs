//! The AWS Lambda runtime (`provided.al2023`): chosen when `AWS_LAMBDA_RUNTIME_API` is set.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tracing::Instrument;

use crate::handler::{Handler, Invocation};

pub async fn run(handler: Handler) -> Result<(), Error> {
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation {
            request_id: event.context.request_id.clone(),
            deadline: deadline(event.context.deadline),
        };
        let span = tracing::info_span!("invocation", request_id = %invocation.request_id);
        let response = handler
            .handle(&event.payload, &invocation)
            .instrument(span)
            .await;
        if let Some(error) = response.publish_errors.first() {
            // The outcome is in the log (see Handler::publish); the invocation reports the error.
            return Err(Error::from(error.to_string()));
        }
        Ok::<Value, Error>(response.body)
    }))
    .await
}

/// The context's deadline (epoch milliseconds) as an `Instant`.
fn deadline(epoch_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis();
    let left = u128::from(epoch_ms).checked_sub(now_ms)?;
    Some(Instant::now() + Duration::from_millis(u64::try_from(left).ok()?))
}
