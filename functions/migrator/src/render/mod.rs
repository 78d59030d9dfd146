//! Outcome → human renderings, one concern a file: [`text`] (the terminal and the body of
//! the e-mail), [`chatbot`] (the AWS Chatbot notification), [`email`] (e-mail subscribers),
//! [`wording`] (the function's words in hints). Here: what they share (the headline, the SNS
//! subject and severity, how to apply a plan).

mod chatbot;
mod email;
mod text;
mod wording;

pub use chatbot::chatbot;
pub use email::email;
pub use text::text;
pub use wording::FunctionWording;

use migrator_engine::outcome::{Action, Outcome, ResolveKind, Status};
use migrator_engine::text::clip_chars;

/// `info`, `warning` or `error`, for SNS subscription filter policies.
pub fn severity(o: &Outcome) -> &'static str {
    match o.status {
        Status::Applied | Status::UpToDate if o.warnings.is_empty() => "info",
        Status::Applied | Status::UpToDate | Status::Planned | Status::Incomplete => "warning",
        Status::Failed | Status::Blocked | Status::Rejected => "error",
    }
}

fn headline(o: &Outcome) -> String {
    let stage = o.stage.as_deref().unwrap_or("migrator");
    let what = match (o.status, &o.resolved) {
        (Status::Applied, Some(r)) if o.action == Action::Resolve => {
            format!("resolved {} as {}", r.name, resolved_as(r.kind))
        }
        _ => headline_status(o),
    };
    format!("{stage}: {what}")
}

fn headline_status(o: &Outcome) -> String {
    match o.status {
        Status::Applied if o.action == Action::Resolve => "resolved".to_string(),
        Status::Applied => format!(
            "applied {} migration{}",
            o.applied.len(),
            plural(o.applied.len())
        ),
        Status::UpToDate => "up to date".into(),
        Status::Planned => format!(
            "{} migration{} waiting to be applied",
            o.pending.len(),
            plural(o.pending.len())
        ),
        Status::Incomplete => format!(
            "stopped early, {} migration{} remain",
            o.pending.len(),
            plural(o.pending.len())
        ),
        Status::Blocked => "blocked".into(),
        Status::Rejected => "rejected".into(),
        Status::Failed => "FAILED".into(),
    }
}

/// The SNS subject: ASCII, one line, at most 100 characters.
pub fn subject(o: &Outcome) -> String {
    let text: String = format!("[{}] {}", o.status_text(), headline(o))
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    clip_chars(&text, 100).to_string()
}

/// How to apply a plan's `confirmPayload`, and nothing else.
pub fn apply_step(payload: &serde_json::Value, function: Option<&str>) -> String {
    match function {
        Some(function) => format!(
            "To apply exactly this plan: {}, or invoke the function with the payload `{payload}`.",
            invoke_command(payload, function)
        ),
        None => format!(
            "To apply exactly this plan, invoke the stage's function (or run its ECS task) with the payload `{payload}`."
        ),
    }
}

/// `migrator invoke --function F …`: the command that sends `payload`.
pub fn invoke_command(payload: &serde_json::Value, function: &str) -> String {
    let mut command = format!("`migrator invoke --function {function}");
    let get = |field: &str| payload.get(field).and_then(serde_json::Value::as_str);
    if let Some(action) = get("action").filter(|a| *a != "deploy") {
        command.push_str(&format!(" --action {action}"));
    }
    if let Some(resolve) = payload.get("resolve") {
        for (field, flag) in [("applied", "--applied"), ("rolledBack", "--rolled-back")] {
            if let Some(name) = resolve.get(field).and_then(serde_json::Value::as_str) {
                command.push_str(&format!(" {flag} {name}"));
            }
        }
    }
    if let Some(artifact) = get("artifact") {
        command.push_str(&format!(" --object {artifact}"));
    }
    if let Some(version) = get("versionId") {
        command.push_str(&format!(" --version-id {version}"));
    }
    if let Some(hash) = get("planHash") {
        command.push_str(&format!(" --plan-hash {hash}"));
    }
    if payload.get("confirm") == Some(&serde_json::Value::Bool(true)) {
        command.push_str(" --confirm");
    }
    command.push('`');
    command
}

/// `pid 42 (app, user alice, idle in transaction for 30 s) holds RowExclusiveLock on User: UPDATE …`.
fn blocker_line(b: &migrator_engine::preflight::Blocker) -> String {
    let mut who = Vec::new();
    if let Some(app) = &b.application_name {
        who.push(app.clone());
    }
    if let Some(user) = &b.user {
        who.push(format!("user {user}"));
    }
    match (&b.state, b.transaction_age_s) {
        (Some(state), Some(age)) => who.push(format!("{state} for {age} s")),
        (Some(state), None) => who.push(state.clone()),
        _ => {}
    }
    let query = b
        .query
        .as_deref()
        .map(|q| format!(": {q}"))
        .unwrap_or_default();
    format!(
        "pid {} ({}) holds {} on {}{query}",
        b.pid,
        who.join(", "),
        b.mode,
        b.holds
    )
}

/// "Accepted by X: rule@migration, …": who applied findings anyway, and whether AWS named them
/// (an S3 uploader) or they named themselves (a manual payload's `by`, the CLI's OS user).
fn accepted_line(o: &Outcome) -> Option<String> {
    if o.accepted.is_empty() {
        return None;
    }
    let by = match &o.invoked_by {
        Some(b) if b.verified => b.principal.clone(),
        Some(b) => format!("{} (declared)", b.principal),
        None => "(unnamed)".to_string(),
    };
    Some(format!("Accepted by {by}: {}", o.accepted.join(", ")))
}

fn resolved_as(kind: ResolveKind) -> &'static str {
    match kind {
        ResolveKind::Applied => "applied",
        ResolveKind::RolledBack => "rolled back",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use migrator_engine::chrono;

    use super::*;

    #[test]
    fn a_plan_shows_its_confirm_payload_everywhere() {
        let mut o = Outcome::new(Action::Deploy, chrono::Utc::now());
        o.status = Status::Planned;
        let payload = serde_json::json!({"action":"deploy","confirm":true,"artifact":"s3://b/k.zip","versionId":"v1","planHash":"ab"});
        o.confirm_payload = Some(payload.clone());
        assert!(text(&o).contains(&payload.to_string()));
        let steps = chatbot(&o, Some("migrator-PROD"))["content"]["nextSteps"].to_string();
        assert!(
            steps.contains("migrator invoke --function migrator-PROD --object s3://b/k.zip --version-id v1 --plan-hash ab --confirm"),
            "{steps}"
        );
        assert!(!steps.contains("<name>"), "{steps}");
        assert!(email(&o, Some("migrator-PROD")).contains("--plan-hash ab --confirm"));
    }

    #[test]
    fn accepted_findings_name_who_accepted_them_and_how_sure_that_is() {
        use migrator_engine::engine::{InvokedBy, InvokerSource};
        let mut o = Outcome::new(Action::Deploy, chrono::Utc::now());
        assert_eq!(accepted_line(&o), None);
        o.accepted = vec!["drop-column@20240101000000_a".into()];
        assert_eq!(
            accepted_line(&o).as_deref(),
            Some("Accepted by (unnamed): drop-column@20240101000000_a")
        );
        o.invoked_by = Some(InvokedBy {
            principal: "alice".into(),
            source: InvokerSource::Payload,
            verified: false,
            request_id: Some("req-1".into()),
        });
        assert!(text(&o).contains("Accepted by alice (declared): drop-column@20240101000000_a"));
        o.invoked_by = Some(InvokedBy {
            principal: "AWS:AIDAEXAMPLE".into(),
            source: InvokerSource::S3Event,
            verified: true,
            request_id: None,
        });
        let message = chatbot(&o, None).to_string();
        assert!(
            message.contains("Accepted by AWS:AIDAEXAMPLE: drop-column@20240101000000_a"),
            "{message}"
        );
    }
}
