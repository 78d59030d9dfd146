//! The outcome as text: the terminal (`migrator deploy`, `invoke`) and the body of the
//! e-mail.

use std::fmt::Write;

use migrator_engine::outcome::{Action, Execution, Outcome, State, Status};

use super::{accepted_line, blocker_line, escape, plural, resolved_as};

/// Outside text in it (names, keys, messages) has every control and invisible character
/// shown as `\u{…}` ([`escape::plain`]): no escape sequence reaches a terminal.
pub fn text(outcome: &Outcome) -> String {
    text_with(outcome, true)
}

/// [`text`], without the recovery point when the caller already showed it.
pub(super) fn text_with(outcome: &Outcome, show_recovery: bool) -> String {
    let mut out = String::new();
    let _ = write_text(&mut out, outcome, show_recovery);
    escape::plain(&out)
}

fn write_text(out: &mut String, o: &Outcome, show_recovery: bool) -> std::fmt::Result {
    let recovery = super::recovery_point(o).filter(|_| show_recovery);
    if let Some((what, restore)) = recovery.as_ref().filter(|_| super::recovery_first(o)) {
        writeln!(out, "Recovery point: {what}")?;
        writeln!(out, "  Restore with: {restore}")?;
    }
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
    if let Some((what, restore)) = recovery.as_ref().filter(|_| !super::recovery_first(o)) {
        writeln!(out, "Recovery point: {what}")?;
        writeln!(out, "  Restore with: {restore}")?;
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
            if let Some(n) = m.failed_statement {
                writeln!(
                    out,
                    "    failed statement: {n} (its line and text are in the error)"
                )?;
            }
            if let Some(committed) = &m.committed_statements
                && !committed.is_empty()
            {
                let committed: Vec<String> = committed.iter().map(ToString::to_string).collect();
                writeln!(
                    out,
                    "    statements committed before the failure: {}",
                    committed.join(", ")
                )?;
            }
        }
    }
    if let Some(r) = &o.resolved {
        writeln!(out, "Resolve: {} as {}", r.name, resolved_as(r.kind))?;
    }
    write_findings(out, o)?;
    if let Some(line) = accepted_line(o) {
        writeln!(out, "{line}")?;
    }
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
