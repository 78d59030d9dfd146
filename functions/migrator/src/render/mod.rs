//! Outcome → human renderings, one concern a file: [`text`] (the terminal and the body of
//! the e-mail), [`chatbot`] (the AWS Chatbot notification), [`email`] (e-mail subscribers),
//! [`wording`] (the function's words in hints). Here: what they share (the headline, the SNS
//! subject and severity, how to apply a plan).

pub mod buttons;
mod chatbot;
mod email;
pub mod escape;
pub mod shell;
mod text;
mod wording;

pub use chatbot::chatbot;
pub use email::email;
pub use text::text;
pub use wording::FunctionWording;

use migrator_engine::outcome::{Action, Outcome, ResolveKind, Status};
use migrator_engine::text::clip_chars;

/// What a message knows beyond the outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct Channel<'a> {
    /// The function people invoke (hints, the buttons' `fn`).
    pub function: Option<&'a str>,
    /// `CONFIRM_QUALIFIER`: the confirm door; without it no button is offered.
    pub confirm_qualifier: Option<&'a str>,
    /// The qualifier this run came through, when it came through the confirm door.
    pub door: Option<&'a str>,
}

impl<'a> Channel<'a> {
    /// A channel that knows only the function's name.
    #[cfg(test)]
    pub fn of(function: Option<&'a str>) -> Channel<'a> {
        Channel {
            function,
            ..Channel::default()
        }
    }
}

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
            "To apply exactly this plan: `{}`, or invoke the function with the payload `{payload}`.",
            invoke_command(payload, function)
        ),
        None => format!(
            "To apply exactly this plan, invoke the stage's function (or run its ECS task) with the payload `{payload}`."
        ),
    }
}

/// `migrator invoke --function F …`: the command that sends `payload`, every word quoted for
/// a POSIX shell ([`shell::command`]).
pub fn invoke_command(payload: &serde_json::Value, function: &str) -> String {
    let mut words: Vec<&str> = vec!["migrator", "invoke", "--function", function];
    let get = |field: &str| payload.get(field).and_then(serde_json::Value::as_str);
    if let Some(action) = get("action").filter(|a| *a != "deploy") {
        words.extend(["--action", action]);
    }
    if let Some(resolve) = payload.get("resolve") {
        for (field, flag) in [("applied", "--applied"), ("rolledBack", "--rolled-back")] {
            if let Some(name) = resolve.get(field).and_then(serde_json::Value::as_str) {
                words.extend([flag, name]);
            }
        }
    }
    for (field, flag) in [
        ("artifact", "--object"),
        ("versionId", "--version-id"),
        ("planHash", "--plan-hash"),
    ] {
        if let Some(value) = get(field) {
            words.extend([flag, value]);
        }
    }
    if payload.get("confirm") == Some(&serde_json::Value::Bool(true)) {
        words.push("--confirm");
    }
    shell::command(words)
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

/// Who applied findings anyway, and how they are named: `alice (as the payload declares)`,
/// `AWS:AIDA… (as the upload event claims)`. `escape` is applied to the name (outside text).
fn accepted_by(o: &Outcome, escape: impl Fn(&str) -> String) -> Option<String> {
    if o.accepted.is_empty() {
        return None;
    }
    Some(match &o.invoked_by {
        Some(b) => format!("{} ({})", escape(&b.principal), b.source.claim()),
        None => "(unnamed)".to_string(),
    })
}

/// "Accepted by X (as …): rule@migration, …" as plain text.
fn accepted_line(o: &Outcome) -> Option<String> {
    let by = accepted_by(o, str::to_string)?;
    Some(format!("Accepted by {by}: {}", o.accepted.join(", ")))
}

/// The recovery point in words: what it is, and the command that restores it. Shown on every
/// outcome that carries one (a run that was about to write under the stage's policy), first
/// when the run failed: that is when someone asks "what can we restore to?".
fn recovery_point(o: &Outcome) -> Option<(String, String)> {
    use migrator_engine::chrono::SecondsFormat;
    use migrator_engine::outcome::RecoveryKind;
    let p = o.recovery_point.as_ref()?;
    let when = |t: &migrator_engine::chrono::DateTime<migrator_engine::chrono::Utc>| {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    let what = match p.kind {
        RecoveryKind::Snapshot => format!(
            "snapshot {} of {} {}, available at {}",
            p.snapshot_id.as_deref().unwrap_or("?"),
            p.resource,
            p.identifier,
            when(&p.taken_at)
        ),
        RecoveryKind::Pitr => format!(
            "point in time {} of {} {} (just before the first write; automated backups reached {})",
            p.restorable_time.as_ref().map(when).unwrap_or_default(),
            p.resource,
            p.identifier,
            p.latest_restorable_time
                .as_ref()
                .map(when)
                .unwrap_or_default()
        ),
    };
    Some((what, p.restore_command.clone()))
}

/// Whether the recovery point goes first (a failed or stopped run).
fn recovery_first(o: &Outcome) -> bool {
    matches!(o.status, Status::Failed | Status::Incomplete)
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
mod recovery_tests;

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
        let steps =
            chatbot(&o, &Channel::of(Some("migrator-PROD")))["content"]["nextSteps"].to_string();
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
            request_id: Some("req-1".into()),
        });
        assert!(
            text(&o).contains(
                "Accepted by alice (as the payload declares): drop-column@20240101000000_a"
            )
        );
        // An upload event's uploader is what the event claims: never shown as proven.
        o.invoked_by = Some(InvokedBy {
            principal: "AWS:AIDAEXAMPLE".into(),
            source: InvokerSource::S3Event,
            request_id: None,
        });
        let message = chatbot(&o, &Channel::default()).to_string();
        assert!(
            message.contains(
                "Accepted by AWS:AIDAEXAMPLE (as the upload event claims): `drop-column@20240101000000_a`"
            ),
            "{message}"
        );
    }

    /// The text between the first pair of backticks after `after`.
    fn code_after<'a>(text: &'a str, after: &str) -> &'a str {
        let start = text
            .find(after)
            .unwrap_or_else(|| panic!("{after} in {text}"))
            + after.len();
        let rest = &text[start..];
        let open = rest.find('`').expect("a code span") + 1;
        let close = rest[open..].find('`').expect("its end") + open;
        &rest[open..close]
    }

    fn unentity(text: &str) -> String {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    #[test]
    fn every_printed_command_runs_exactly_its_arguments() {
        use crate::payload::ManualPayload;
        use crate::trigger::ObjectRef;
        let hash = "ab".repeat(32);
        for key in [
            "deploy/CODE/$(touch${IFS}PWNED)/prisma.zip",
            "deploy/CODE/my app+v2/prisma.zip",
            "deploy/CODE/it's & <that>/prisma.zip",
        ] {
            let object = ObjectRef {
                bucket: "artifacts".into(),
                key: key.into(),
                version_id: Some("v 1".into()),
                etag: None,
            };
            let mut o = Outcome::new(Action::Deploy, chrono::Utc::now());
            o.status = Status::Planned;
            o.confirm_payload = Some(ManualPayload::confirming(&object, &hash).to_value());
            let expected = [
                "invoke",
                "--function",
                "migrator-PROD",
                "--object",
                &format!("s3://artifacts/{key}"),
                "--version-id",
                "v 1",
                "--plan-hash",
                &hash,
                "--confirm",
            ];
            let email = email(&o, Some("migrator-PROD"));
            let printed = code_after(&email, "To apply exactly this plan: ");
            assert_eq!(shell::run_printed(printed), expected, "{email}");
            let chatbot = chatbot(&o, &Channel::of(Some("migrator-PROD")));
            let step = chatbot["content"]["nextSteps"][0].as_str().unwrap();
            let printed = unentity(code_after(step, "To apply exactly this plan: "));
            assert_eq!(shell::run_printed(&printed), expected, "{step}");
        }
        // The function's hints: a migration name is quoted like any other word.
        let name = "20240101_$(touch${IFS}PWNED) it's";
        let hint = FunctionWording {
            function: Some("migrator-PROD".into()),
        }
        .resolve(ResolveKind::RolledBack, name);
        use migrator_engine::error::Wording;
        assert_eq!(
            shell::run_printed(code_after(&hint, "")),
            [
                "invoke",
                "--function",
                "migrator-PROD",
                "--action",
                "resolve",
                "--rolled-back",
                name,
                "--confirm"
            ],
            "{hint}"
        );
    }

    #[test]
    fn outside_text_is_escaped_for_each_medium() {
        use migrator_engine::engine::{InvokedBy, InvokerSource};
        use migrator_engine::outcome::{AppliedMigration, ErrorInfo, Execution};
        let hostile = "<!channel> <https://evil.example|click> *bold* ```x``` `y` \u{1b}[31m \u{202e}rtl \u{2028}line".to_string();
        let mut o = Outcome::new(Action::Deploy, chrono::Utc::now());
        o.status = Status::Failed;
        o.stage = Some("PROD".into());
        o.error = Some(ErrorInfo {
            code: Some("P3018".into()),
            message: format!("failed: {hostile}"),
            hint: Some(format!("Look at `{hostile}` then {hostile}")),
        });
        o.warnings = vec![hostile.clone()];
        o.accepted = vec![format!("drop-column@{hostile}")];
        o.invoked_by = Some(InvokedBy {
            principal: hostile.clone(),
            source: InvokerSource::Payload,
            request_id: None,
        });
        o.applied = vec![AppliedMigration {
            name: hostile.clone(),
            checksum: "0".into(),
            execution: Execution::Transaction,
            duration_ms: 1,
        }];
        o.confirm_payload = Some(
            serde_json::json!({"action":"deploy","confirm":true,"artifact": format!("s3://b/{hostile}"),"planHash":"ab"}),
        );
        let chatbot = chatbot(&o, &Channel::of(Some("migrator-PROD")));
        let content = &chatbot["content"];
        let mut slack: Vec<String> = vec![
            content["title"].as_str().unwrap().to_string(),
            content["description"].as_str().unwrap().to_string(),
            chatbot["metadata"]["summary"].as_str().unwrap().to_string(),
        ];
        for step in content["nextSteps"].as_array().unwrap() {
            slack.push(step.as_str().unwrap().to_string());
        }
        for text in &slack {
            assert!(!text.contains('<') && !text.contains('>'), "{text}");
            // Formatting is inert inside code; outside it, none survives.
            let outside: String = text.split('`').step_by(2).collect();
            assert!(!outside.contains("*bold*"), "{text}");
            assert!(
                !text.contains(['\u{1b}', '\u{202E}', '\u{2028}']),
                "{text:?}"
            );
            // Every code block is ours: the outside ``` never closes one.
            assert_eq!(text.matches("```").count() % 2, 0, "{text}");
            assert_eq!(text.matches('`').count() % 2, 0, "{text}");
        }
        assert!(slack[1].contains("&lt;!channel&gt;"), "{}", slack[1]);
        for text in [email(&o, Some("migrator-PROD")), text(&o)] {
            assert!(
                !text.contains(['\u{1b}', '\u{202E}', '\u{2028}']),
                "{text:?}"
            );
            assert!(text.contains("\\u{1b}[31m"), "{text}");
        }
    }
}
