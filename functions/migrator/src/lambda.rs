//! The AWS Lambda runtime (`provided.al2023`): chosen when `AWS_LAMBDA_RUNTIME_API` is set.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;
use serde_json::value::RawValue;
use tracing::Instrument;

use crate::aws::AwsHandler;
use crate::handler::Invocation;

pub async fn run(handler: AwsHandler) -> Result<(), Error> {
    let handler = &handler;
    // The raw event: the handler reads it strictly (a duplicated key is refused, not "last wins").
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            let invocation = Invocation {
                request_id: event.context.request_id.clone(),
                deadline: deadline(event.context.deadline),
                invoked_function_arn: Some(event.context.invoked_function_arn.clone()),
            };
            let span = tracing::info_span!("invocation", request_id = %invocation.request_id);
            let response = handler
                .handle(event.payload.get().as_bytes(), &invocation)
                .instrument(span)
                .await;
            if response.fails_invocation {
                // The outcome is in the log (see Handler::publish); the invocation reports the error.
                let message: Vec<String> = response
                    .publish_errors
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                return Err(Diagnostic {
                    error_type: "OutcomeNotPublished".into(),
                    error_message: message.join("; "),
                });
            }
            Ok::<Value, Diagnostic>(response.body)
        },
    ))
    .await
}

/// The context's deadline (epoch milliseconds) as an `Instant`. A deadline already past is
/// now (nothing may start); one before 2000 is no real deadline (emulators send a constant).
fn deadline(epoch_ms: u64) -> Option<Instant> {
    const YEAR_2000_MS: u64 = 946_684_800_000;
    if epoch_ms < YEAR_2000_MS {
        tracing::warn!(
            epoch_ms,
            "the invocation's deadline is not a real time; running without one"
        );
        return None;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis();
    let left = u128::from(epoch_ms).saturating_sub(now_ms);
    Some(Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        assert!(
            deadline(600_000).is_none(),
            "the emulator's constant is no deadline"
        );
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let past = deadline(now_ms - 10_000).unwrap();
        assert!(past <= Instant::now(), "a past deadline is now");
        let future = deadline(now_ms + 60_000).unwrap();
        let left = future.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(55) && left <= Duration::from_secs(60));
    }
}
