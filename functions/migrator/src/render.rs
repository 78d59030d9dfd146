//! Outcome → human renderings: text (terminal, e-mail), the AWS Chatbot notification, and
//! the function's wording of hints ([`FunctionWording`]).

use std::fmt::Write;

use migrator_engine::engine::ResolveTarget;
use migrator_engine::error::Wording;
use migrator_engine::outcome::{Action, Execution, Outcome, ResolveKind, State, Status};
use migrator_engine::text::{clip_bytes, clip_chars};

use crate::payload::ManualPayload;
use migrator_engine::preflight::Severity;

pub fn text(outcome: &Outcome) -> String {
    let mut out = String::new();
    let _ = write_text(&mut out, outcome);
    out
}

fn write_text(out: &mut String, o: &Outcome) -> std::fmt::Result {
    if let Some(db) = &o.database {
        let place = match (&db.host, db.port) {
            (Some(host), Some(port)) => format!("{host}:{port}/{}", db.name),
            _ => db.name.clone(),
        };
        let schema = db
            .schema
            .as_deref()
            .map(|s| format!(" (schema {s})"))
            .unwrap_or_default();
        writeln!(out, "Database: {} {place}{schema}", db.engine)?;
    }
    if let Some(a) = &o.artifact {
        writeln!(
            out,
            "Artifact: {} ({}, {} migration{}, sha256 {})",
            a.location,
            a.migrations_path,
            a.migration_count,
            plural(a.migration_count),
            &a.sha256[..a.sha256.len().min(12)]
        )?;
    }
    writeln!(out)?;

    if o.action == Action::Status && !o.migrations.is_empty() {
        for m in &o.migrations {
            let mark = match m.state {
                State::Applied if m.edited => "edited ",
                State::Applied => "applied",
                State::Pending if m.out_of_order => "pending (out of order)",
                State::Pending => "pending",
                State::Failed => "FAILED ",
                State::MissingLocally => "missing locally",
            };
            writeln!(out, "  {mark:<8} {}", m.name)?;
        }
        writeln!(out)?;
    }
    if !o.applied.is_empty() {
        writeln!(out, "Applied:")?;
        for m in &o.applied {
            let how = match &m.execution {
                Execution::Transaction => String::new(),
                Execution::StatementByStatement { .. } => ", statement by statement".into(),
            };
            writeln!(out, "  ✔ {} ({} ms{how})", m.name, m.duration_ms)?;
        }
    }
    if !o.pending.is_empty() && o.action != Action::Status {
        let title = if o.status == Status::Planned {
            "Would apply:"
        } else {
            "Not applied:"
        };
        writeln!(out, "{title}")?;
        for m in &o.pending {
            let mut notes = Vec::new();
            if m.out_of_order {
                notes.push("out of order".to_string());
            }
            if let Some(Execution::StatementByStatement { .. }) = &m.execution {
                notes.push("statement by statement".to_string());
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            writeln!(out, "  • {}{notes}", m.name)?;
        }
    }
    if !o.failed.is_empty() {
        writeln!(out, "Failed:")?;
        for m in &o.failed {
            writeln!(
                out,
                "  ✘ {} (started {})",
                m.name,
                m.started_at.format("%Y-%m-%d %H:%M:%S UTC")
            )?;
            if let Some(committed) = &m.committed_statements
                && !committed.is_empty()
            {
                writeln!(
                    out,
                    "    statements committed before the failure: {committed:?}"
                )?;
            }
        }
    }
    if let Some(r) = &o.resolved {
        writeln!(out, "Resolve: {} as {}", r.name, resolved_as(r.kind))?;
    }
    write_findings(out, o)?;
    if !o.blockers.is_empty() {
        writeln!(out, "In the way:")?;
        for b in &o.blockers {
            writeln!(out, "  {}", blocker_line(b))?;
        }
    }
    for w in &o.warnings {
        writeln!(out, "warning: {w}")?;
    }
    if let Some(payload) = &o.confirm_payload {
        writeln!(out)?;
        writeln!(
            out,
            "To apply exactly this plan, invoke the function with: {payload}"
        )?;
    }
    if let Some(e) = &o.error {
        writeln!(out)?;
        match &e.code {
            Some(code) => writeln!(out, "Error {code}: {}", e.message.trim_end())?,
            None => writeln!(out, "Error: {}", e.message.trim_end())?,
        }
        if let Some(hint) = &e.hint {
            writeln!(out, "Hint: {hint}")?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", summary(o))
}

/// Preflight findings, grouped per migration, errors first within each.
fn write_findings(out: &mut String, o: &Outcome) -> std::fmt::Result {
    if o.findings.is_empty() {
        return Ok(());
    }
    writeln!(out, "Findings:")?;
    let mut migrations: Vec<&str> = Vec::new();
    for f in &o.findings {
        if !migrations.contains(&f.migration.as_str()) {
            migrations.push(&f.migration);
        }
    }
    for migration in migrations {
        writeln!(out, "  {migration}")?;
        let mut findings: Vec<_> = o
            .findings
            .iter()
            .filter(|f| f.migration == migration)
            .collect();
        findings.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.statement));
        for f in findings {
            let note = match (&f.allowed, o.accepted.contains(&f.accept_key())) {
                (Some(reason), _) => format!(" [allowed: {reason}]"),
                (None, true) => " [accepted]".to_string(),
                _ => String::new(),
            };
            writeln!(
                out,
                "    {:<7} {} (statement {}, line {}){note}: {}",
                f.severity.as_str(),
                f.rule,
                f.statement,
                f.line,
                f.message
            )?;
        }
    }
    Ok(())
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

fn summary(o: &Outcome) -> String {
    let headline = match o.status {
        Status::Applied if o.action == Action::Resolve => "Resolved.".to_string(),
        Status::Applied => format!(
            "Applied {} migration{}.",
            o.applied.len(),
            plural(o.applied.len())
        ),
        Status::UpToDate if o.action == Action::Status && !o.drift.is_empty() => {
            "Up to date, but the history has drifted (see warnings).".to_string()
        }
        Status::UpToDate => "Database schema is up to date.".to_string(),
        Status::Planned => format!(
            "{} migration{} pending; nothing was applied.",
            o.pending.len(),
            plural(o.pending.len())
        ),
        Status::Failed => "Failed.".to_string(),
        Status::Blocked => "Blocked: nothing was applied.".to_string(),
        Status::Rejected => "Rejected: the database was not touched.".to_string(),
        Status::Incomplete => format!("Stopped early; {} migration(s) remain.", o.pending.len()),
    };
    format!("{headline} ({} ms)", o.duration_ms)
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

/// `info`, `warning` or `error`, for SNS subscription filter policies.
pub fn severity(o: &Outcome) -> &'static str {
    match o.status {
        Status::Applied | Status::UpToDate if o.warnings.is_empty() => "info",
        Status::Applied | Status::UpToDate | Status::Planned | Status::Incomplete => "warning",
        Status::Failed | Status::Blocked | Status::Rejected => "error",
    }
}

fn emoji(status: Status) -> &'static str {
    match status {
        Status::Applied => ":white_check_mark:",
        Status::UpToDate => ":zzz:",
        Status::Planned => ":clipboard:",
        Status::Incomplete => ":hourglass_flowing_sand:",
        Status::Blocked => ":no_entry:",
        Status::Rejected => ":x:",
        Status::Failed => ":rotating_light:",
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

/// An AWS Chatbot custom notification (Slack reads it with no code of ours): the error
/// and the failures first (the database's message, the failing statement and line, what
/// was committed), then the lists, cut with counts.
pub fn chatbot(o: &Outcome, function: Option<&str>) -> serde_json::Value {
    const LIMIT: usize = 3500;
    const ERROR_LIMIT: usize = 1500;
    let mut lines = Vec::new();
    if let Some(e) = &o.error {
        lines.push(format!(
            "*Error {}:*\n```{}```",
            e.code.as_deref().unwrap_or(""),
            clip_bytes(e.message.trim_end(), ERROR_LIMIT)
        ));
    }
    for m in &o.failed {
        let mut line = format!("*Failed:* `{}`", m.name);
        if let Some(n) = m.failed_statement {
            line.push_str(&format!(", at statement {n}"));
        }
        match m.committed_statements.as_deref() {
            Some([]) | None => {
                line.push_str(" — none of its statements were committed");
            }
            Some(committed) => line.push_str(&format!(
                " — committed before the failure: statement(s) {}",
                list_numbers(committed)
            )),
        }
        lines.push(line);
    }
    if let Some(r) = &o.resolved {
        lines.push(format!(
            "*Resolved:* `{}` as {}",
            r.name,
            resolved_as(r.kind)
        ));
    }
    // Preflight errors first, with their evidence: they are why a deploy is blocked.
    let mut findings: Vec<_> = o
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in findings.iter().take(10) {
        let evidence = f
            .evidence
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        lines.push(format!(
            "{} `{}` in `{}` line {}{evidence}",
            if f.severity == Severity::Error {
                ":x:"
            } else {
                ":warning:"
            },
            f.rule,
            f.migration,
            f.line
        ));
    }
    for b in o.blockers.iter().take(5) {
        lines.push(format!(":lock: {}", blocker_line(b)));
    }
    if let Some(a) = &o.artifact {
        lines.push(format!("*Artifact:* `{}`", a.location));
    }
    if let Some(db) = &o.database {
        lines.push(format!("*Database:* {} `{}`", db.engine, db.name));
    }
    let list = |title: &str, names: Vec<String>, lines: &mut Vec<String>| {
        if !names.is_empty() {
            lines.push(format!("*{title} ({}):*", names.len()));
            lines.extend(names.iter().take(20).map(|n| format!("• `{n}`")));
            if names.len() > 20 {
                lines.push(format!("… and {} more", names.len() - 20));
            }
        }
    };
    list(
        "Applied",
        o.applied.iter().map(|m| m.name.clone()).collect(),
        &mut lines,
    );
    list(
        "Pending",
        o.pending.iter().map(|m| m.name.clone()).collect(),
        &mut lines,
    );
    for w in o.warnings.iter().take(5) {
        lines.push(format!(":warning: {}", clip_bytes(w, 400)));
    }
    if o.warnings.len() > 5 {
        lines.push(format!("… and {} more warnings", o.warnings.len() - 5));
    }
    let mut description = lines.join("\n");
    if description.len() > LIMIT {
        description = format!("{}\n…", clip_bytes(&description, LIMIT));
    }
    let mut next_steps: Vec<String> = Vec::new();
    if let Some(hint) = o.error.as_ref().and_then(|e| e.hint.clone()) {
        next_steps.push(hint);
    }
    if let Some(payload) = &o.confirm_payload {
        next_steps.push(apply_step(payload, function));
    }
    serde_json::json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": format!("{} {}", emoji(o.status), headline(o)),
            "description": description,
            "nextSteps": next_steps,
        },
        "metadata": {
            "summary": headline(o),
            "eventType": format!("migrator.{}", o.status_text()),
            "additionalContext": { "stage": o.stage, "status": o.status_text(), "durationMs": o.duration_ms },
        }
    })
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

/// The function's words in hints: what a person can do there, a manual payload to this
/// function (with the `migrator invoke` command that sends it, when the function's name is
/// known) and the stage's variables; never a CLI command that needs direct database access,
/// never a CLI-only option.
#[derive(Debug, Clone, Default)]
pub struct FunctionWording {
    /// `AWS_LAMBDA_FUNCTION_NAME`; none in the ECS task.
    pub function: Option<String>,
}

impl Wording for FunctionWording {
    fn resolve(&self, kind: ResolveKind, migration: &str) -> String {
        let target = ResolveTarget {
            name: migration.to_string(),
            kind,
        };
        let payload = ManualPayload::new(Action::Resolve, true)
            .with_resolve(Some(&target))
            .to_value();
        match &self.function {
            Some(function) => format!(
                "{} (the payload `{payload}`)",
                invoke_command(&payload, function)
            ),
            None => {
                format!("a direct invocation of the stage's function with the payload `{payload}`")
            }
        }
    }

    fn lock_wait(&self) -> String {
        "LOCK_TIMEOUT".into()
    }

    fn more_time(&self) -> String {
        "a longer function timeout (on ECS, MAX_DURATION), or run it as the ECS task, which has no 15-minute limit".into()
    }
}

fn list_numbers(numbers: &[usize]) -> String {
    let shown: Vec<String> = numbers.iter().take(20).map(ToString::to_string).collect();
    let more = if numbers.len() > 20 {
        format!(" and {} more", numbers.len() - 20)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// Plain text for e-mail subscribers: the error first, then the terminal rendering.
pub fn email(o: &Outcome, function: Option<&str>) -> String {
    let mut out = format!("{}\n\n", headline(o));
    if let Some(e) = &o.error {
        let code = e
            .code
            .as_deref()
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        out.push_str(&format!("Error{code}: {}\n\n", e.message.trim_end()));
    }
    if let Some(payload) = &o.confirm_payload {
        out.push_str(&apply_step(payload, function));
        out.push_str("\n\n");
    }
    out.push_str(&text(o));
    out
}

#[cfg(test)]
mod tests {
    use migrator_engine::chrono;
    use migrator_engine::error::{CliWording, EngineError};
    use migrator_engine::outcome::Resolved;

    use super::*;

    fn failed_migrations() -> EngineError {
        EngineError::FailedMigrations {
            names: vec!["20240101_x".into()],
            details: String::new(),
        }
    }

    fn lock_timeout() -> EngineError {
        EngineError::LockTimeout {
            lock: "advisory",
            statement: "SELECT pg_advisory_lock(72707369)".into(),
            timeout: std::time::Duration::from_secs(10),
        }
    }

    #[test]
    fn in_the_function_hints_name_the_function_and_the_payload() {
        let in_lambda = FunctionWording {
            function: Some("migrator-PROD".into()),
        };
        let hint = failed_migrations().hint(&in_lambda).unwrap();
        assert!(
            hint.contains("`migrator invoke --function migrator-PROD --action resolve --rolled-back 20240101_x --confirm` (the payload `{\"action\":\"resolve\",\"confirm\":true,\"resolve\":{\"rolledBack\":\"20240101_x\"}}`)"),
            "{hint}"
        );
        assert!(hint.contains("--applied 20240101_x --confirm"), "{hint}");
        let baseline = EngineError::SchemaNotEmpty {
            tables: vec!["customers".into()],
        }
        .hint(&in_lambda)
        .unwrap();
        assert!(
            baseline.contains("`migrator invoke --function migrator-PROD --action resolve --applied <first migration> --confirm`"),
            "{baseline}"
        );
        let locked = lock_timeout().hint(&in_lambda).unwrap();
        assert!(locked.contains("raise LOCK_TIMEOUT"), "{locked}");
        let deadline = EngineError::DeadlineCancelled {
            migration: "m".into(),
            what: "x".into(),
        }
        .hint(&in_lambda)
        .unwrap();
        assert!(deadline.contains("function timeout"), "{deadline}");
        for hint in [&hint, &baseline, &locked, &deadline] {
            for never in [
                "`migrator resolve",
                "<name>",
                "--lock-timeout",
                "--max-duration",
            ] {
                assert!(!hint.contains(never), "{never}: {hint}");
            }
        }
        // Outside Lambda (ECS) the function is not known: the payload alone.
        let hint = failed_migrations()
            .hint(&FunctionWording::default())
            .unwrap();
        assert!(
            hint.contains("a direct invocation of the stage's function with the payload"),
            "{hint}"
        );
        assert!(!hint.contains("`migrator resolve"), "{hint}");
    }

    #[test]
    fn on_the_command_line_hints_name_its_commands_and_options() {
        let hint = failed_migrations().hint(&CliWording).unwrap();
        assert_eq!(
            hint,
            "Repair the database by hand, then run `migrator resolve --rolled-back 20240101_x` (to apply it again) or `migrator resolve --applied 20240101_x` (if you finished it by hand)."
        );
        assert_eq!(
            lock_timeout().hint(&CliWording).unwrap(),
            "Another migration is running against this database (our tool or the Prisma CLI). Wait for it, or raise --lock-timeout."
        );
        let deadline = EngineError::DeadlineCancelled {
            migration: "m".into(),
            what: "x".into(),
        }
        .hint(&CliWording)
        .unwrap();
        assert!(!deadline.contains("--max-duration"), "{deadline}");
        for never in ["migrator invoke", "LOCK_TIMEOUT", "payload"] {
            assert!(!hint.contains(never), "{never}: {hint}");
        }
    }

    #[test]
    fn a_resolved_message_names_the_migration_and_how() {
        let mut o = Outcome::new(Action::Resolve, chrono::Utc::now());
        o.status = Status::Applied;
        o.stage = Some("PROD".into());
        o.resolved = Some(Resolved {
            name: "20240101_x".into(),
            kind: ResolveKind::RolledBack,
        });
        let chatbot = chatbot(&o, Some("migrator-PROD"));
        assert_eq!(
            chatbot["content"]["title"],
            ":white_check_mark: PROD: resolved 20240101_x as rolled back"
        );
        assert!(
            chatbot["content"]["description"]
                .as_str()
                .unwrap()
                .contains("*Resolved:* `20240101_x` as rolled back")
        );
    }

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
}
