//! `migrator invoke`: sends the manual payload to the deployed function and prints the
//! outcome it returns (the old `migrate --stage PROD --confirm`, without a second tool).

use aws_sdk_lambda::primitives::Blob;
use migrator_engine::outcome::{Action, Outcome, Status};
use serde_json::{Value, json};

use crate::render;

pub struct InvokeArgs {
    pub function: String,
    pub action: Action,
    pub confirm: bool,
    pub object: Option<String>,
    pub version_id: Option<String>,
    pub resolve: Option<(String, bool)>,
    pub endpoint_url: Option<String>,
    pub json: bool,
}

/// The manual payload for these arguments.
pub fn payload(args: &InvokeArgs) -> Value {
    let mut payload = json!({ "action": action_name(args.action), "confirm": args.confirm });
    if let Some(object) = &args.object {
        payload["artifact"] = json!(object);
    }
    if let Some(version) = &args.version_id {
        payload["versionId"] = json!(version);
    }
    if let Some((name, applied)) = &args.resolve {
        let key = if *applied { "applied" } else { "rolledBack" };
        payload["resolve"] = json!({ key: name });
    }
    payload
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Deploy => "deploy",
        Action::Plan => "plan",
        Action::Status => "status",
        Action::Resolve => "resolve",
    }
}

/// Returns whether the function reported success.
pub async fn invoke(args: InvokeArgs) -> anyhow::Result<bool> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let client = aws_sdk_lambda::Client::new(&loader.load().await);
    let payload = payload(&args);
    let response = client
        .invoke()
        .function_name(&args.function)
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
        if outcome.status == Status::Planned && !args.confirm && !args.json {
            println!(
                "\nNothing was applied. To apply: migrator invoke --function {} --confirm{}",
                args.function,
                args.object
                    .as_deref()
                    .map(|o| format!(" --object {o}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(confirm: bool) -> InvokeArgs {
        InvokeArgs {
            function: "f".into(),
            action: Action::Deploy,
            confirm,
            object: None,
            version_id: None,
            resolve: None,
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
        a.resolve = Some(("20240101_x".into(), false));
        a.object = Some("s3://b/k.zip".into());
        a.version_id = Some("v1".into());
        assert_eq!(
            payload(&a),
            json!({"action":"resolve","confirm":true,"artifact":"s3://b/k.zip","versionId":"v1","resolve":{"rolledBack":"20240101_x"}})
        );
    }
}
