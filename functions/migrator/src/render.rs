//! Outcome → short human text for the terminal.

use std::fmt::Write;

use migrator_engine::outcome::{Action, Execution, Outcome, State, Status};
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
        writeln!(out, "Resolve: {} as {:?}", r.name, r.kind)?;
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
    let what = match o.status {
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
    };
    format!("{stage}: {what}")
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
    text.chars().take(100).collect()
}

/// An AWS Chatbot custom notification (Slack reads it with no code of ours).
pub fn chatbot(o: &Outcome) -> serde_json::Value {
    const LIMIT: usize = 3500;
    let mut lines = Vec::new();
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
            lines.push(format!("*{title}:*"));
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
    list(
        "Failed",
        o.failed.iter().map(|m| m.name.clone()).collect(),
        &mut lines,
    );
    for w in o.warnings.iter().take(5) {
        lines.push(format!(":warning: {w}"));
    }
    if let Some(e) = &o.error {
        let first = e.message.lines().next().unwrap_or_default();
        lines.push(format!(
            "*Error {}:* {first}",
            e.code.as_deref().unwrap_or("")
        ));
    }
    let mut description = lines.join("\n");
    if description.len() > LIMIT {
        let mut end = LIMIT;
        while !description.is_char_boundary(end) {
            end -= 1;
        }
        description.truncate(end);
        description.push_str("\n…");
    }
    let mut next_steps: Vec<String> = Vec::new();
    if let Some(hint) = o.error.as_ref().and_then(|e| e.hint.clone()) {
        next_steps.push(hint);
    }
    if o.status == Status::Planned && o.action == Action::Deploy {
        next_steps.push("Apply with `migrator invoke --function <name> --confirm`.".into());
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

/// Plain text for e-mail subscribers: the terminal rendering.
pub fn email(o: &Outcome) -> String {
    format!("{}\n\n{}", headline(o), text(o))
}
