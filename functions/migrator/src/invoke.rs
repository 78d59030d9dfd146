//! `migrator invoke`: sends the manual payload to the deployed function and prints the
//! outcome it returns (the old `migrate --stage PROD --confirm`, without a second tool).

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_lambda::primitives::Blob;
use migrator_engine::engine::{InvokedBy, ResolveTarget};
use migrator_engine::outcome::{Action, Outcome, Status};
use serde_json::Value;

use crate::payload::ManualPayload;
use crate::render;

pub struct InvokeArgs {
    pub function: String,
    pub action: Action,
    pub confirm: bool,
    pub object: Option<String>,
    pub version_id: Option<String>,
    pub resolve: Option<ResolveTarget>,
    /// The `planHash` of the plan this confirms.
    pub plan_hash: Option<String>,
    /// Preflight findings (`rule@migration`) to apply despite.
    pub accept: Vec<String>,
    /// Who invokes (the payload's `by`); [`invoke`] defaults it to the AWS caller identity,
    /// else the OS user.
    pub by: Option<String>,
    pub endpoint_url: Option<String>,
    pub json: bool,
}

/// The manual payload for these arguments.
pub fn payload(args: &InvokeArgs) -> Value {
    ManualPayload {
        artifact: args.object.clone(),
        version_id: args.version_id.clone(),
        plan_hash: args.plan_hash.clone(),
        accept: (!args.accept.is_empty()).then(|| args.accept.clone()),
        by: args.by.clone(),
        ..ManualPayload::new(args.action, args.confirm).with_resolve(args.resolve.as_ref())
    }
    .to_value()
}

/// How long `migrator invoke` waits for STS to say who its credentials are.
const CALLER_IDENTITY_WAIT: Duration = Duration::from_secs(5);

/// Who a payload names when `--by` does not: the ARN of the AWS credentials that invoke (STS
/// `GetCallerIdentity`, the name CloudTrail's Invoke record will carry), else the OS user
/// (`USER`, else `LOGNAME`). With `--endpoint-url` (a local emulator) STS is not asked.
async fn default_by(sdk: &SdkConfig, local: bool) -> Option<String> {
    if !local {
        let client = aws_sdk_sts::Client::new(sdk);
        match tokio::time::timeout(CALLER_IDENTITY_WAIT, client.get_caller_identity().send()).await
        {
            Ok(Ok(identity)) => {
                if let Some(arn) = identity.arn().filter(|a| !a.is_empty()) {
                    return Some(arn.to_string());
                }
            }
            Ok(Err(e)) => tracing::debug!(
                "STS GetCallerIdentity: {}",
                crate::aws::describe_sdk_error(&e)
            ),
            Err(_) => tracing::debug!("STS GetCallerIdentity did not answer in time"),
        }
    }
    InvokedBy::os_user().map(|who| who.principal)
}

/// What to run to go on from an unconfirmed outcome: the resolve it planned, or exactly
/// the plan it showed.
pub fn next_step(args: &InvokeArgs, outcome: &Outcome) -> Option<String> {
    if outcome.status != Status::Planned || args.confirm {
        return None;
    }
    if args.action == Action::Resolve {
        let confirmed = ManualPayload {
            artifact: args.object.clone(),
            version_id: args.version_id.clone(),
            ..ManualPayload::new(Action::Resolve, true).with_resolve(args.resolve.as_ref())
        }
        .to_value();
        return Some(format!(
            "Nothing was recorded. To record it: {}",
            render::invoke_command(&confirmed, &args.function)
        ));
    }
    let payload = outcome.confirm_payload.as_ref()?;
    Some(format!(
        "Nothing was applied. To apply exactly this plan: {}",
        render::invoke_command(payload, &args.function)
    ))
}

/// The alias the construct creates for confirmations (its `CONFIRM_QUALIFIER`): `--confirm`
/// invokes it; everything else invokes the unqualified function.
pub const CONFIRM_QUALIFIER: &str = "apply";

/// Returns whether the function reported success.
pub async fn invoke(mut args: InvokeArgs) -> anyhow::Result<bool> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    if args.by.is_none() {
        args.by = default_by(&sdk, args.endpoint_url.is_some()).await;
    }
    if !args.accept.is_empty() && args.by.is_none() {
        anyhow::bail!(
            "--accept needs --by NAME: the outcome records who accepts (neither STS nor USER/LOGNAME named anyone)"
        );
    }
    let client = aws_sdk_lambda::Client::new(&sdk);
    let payload = payload(&args);
    let mut call = client.invoke().function_name(&args.function);
    if args.confirm {
        // A confirmation goes through the confirm door (see `handler::Invocation::qualifier`).
        call = call.qualifier(CONFIRM_QUALIFIER);
    }
    let response = call
        .payload(Blob::new(serde_json::to_vec(&payload)?))
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "invoking {}: {}",
                args.function,
                crate::aws::describe_sdk_error(&e)
            )
        })?;
    let body = response
        .payload()
        .map(|b| b.as_ref().to_vec())
        .unwrap_or_default();
    if let Some(kind) = response.function_error() {
        anyhow::bail!(
            "the function failed ({kind}): {}",
            String::from_utf8_lossy(&body)
        );
    }
    let value: Value = serde_json::from_slice(&body)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    let outcomes: Vec<Outcome> = match value.get("outcomes") {
        Some(list) => serde_json::from_value(list.clone())?,
        None => vec![serde_json::from_value(value.clone())?],
    };
    let mut ok = true;
    for outcome in &outcomes {
        if !args.json {
            print!("{}", render::text(outcome));
        }
        ok &= outcome.is_success();
        if let Some(step) = next_step(&args, outcome)
            && !args.json
        {
            println!("\n{}", render::escape::plain(&step));
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    use migrator_engine::chrono;
    use migrator_engine::outcome::ResolveKind;
    use serde_json::json;

    fn args(confirm: bool) -> InvokeArgs {
        InvokeArgs {
            function: "f".into(),
            action: Action::Deploy,
            confirm,
            object: None,
            version_id: None,
            resolve: None,
            plan_hash: None,
            accept: Vec::new(),
            by: None,
            endpoint_url: None,
            json: false,
        }
    }

    #[test]
    fn payloads_are_the_documented_manual_payload() {
        assert_eq!(
            payload(&args(false)),
            json!({"action":"deploy","confirm":false})
        );
        let mut a = args(true);
        a.action = Action::Resolve;
        a.resolve = Some(ResolveTarget {
            name: "20240101_x".into(),
            kind: ResolveKind::RolledBack,
        });
        a.object = Some("s3://b/k.zip".into());
        a.version_id = Some("v1".into());
        assert_eq!(
            payload(&a),
            json!({"action":"resolve","confirm":true,"artifact":"s3://b/k.zip","versionId":"v1","resolve":{"rolledBack":"20240101_x"}})
        );
    }

    #[test]
    fn an_unconfirmed_resolve_suggests_the_resolve_and_a_plan_its_payload() {
        let mut a = args(false);
        a.function = "migrator-PROD".into();
        a.action = Action::Resolve;
        a.resolve = Some(ResolveTarget {
            name: "20240101_x".into(),
            kind: ResolveKind::Applied,
        });
        let mut outcome = Outcome::new(Action::Resolve, chrono::Utc::now());
        outcome.status = Status::Planned;
        let step = next_step(&a, &outcome).unwrap();
        assert_eq!(
            step,
            "Nothing was recorded. To record it: migrator invoke --function migrator-PROD --action resolve --applied 20240101_x --confirm"
        );
        let mut a = args(false);
        a.function = "migrator-PROD".into();
        let mut outcome = Outcome::new(Action::Deploy, chrono::Utc::now());
        outcome.status = Status::Planned;
        let hash = "ab".repeat(32);
        outcome.confirm_payload = Some(
            json!({"action":"deploy","confirm":true,"artifact":"s3://b/k.zip","versionId":"v1","planHash": hash}),
        );
        let step = next_step(&a, &outcome).unwrap();
        assert_eq!(
            step,
            format!(
                "Nothing was applied. To apply exactly this plan: migrator invoke --function migrator-PROD --object s3://b/k.zip --version-id v1 --plan-hash {hash} --confirm"
            )
        );
    }

    #[test]
    fn accept_and_by_go_into_the_payload() {
        let mut a = args(true);
        a.accept = vec!["set-not-null@20240301120000_require_name".into()];
        a.by = Some("alice@example.com".into());
        let value = payload(&a);
        assert_eq!(
            value,
            json!({"action":"deploy","confirm":true,"accept":["set-not-null@20240301120000_require_name"],"by":"alice@example.com"})
        );
        // What the function reads back.
        let manual = crate::payload::read(&value).unwrap();
        assert_eq!(manual.by.as_deref(), Some("alice@example.com"));
        assert_eq!(manual.accept.len(), 1);
    }
}
