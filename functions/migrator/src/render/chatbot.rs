//! The AWS Chatbot custom notification (Slack, Teams).

use migrator_engine::outcome::{Outcome, Status};
use migrator_engine::preflight::Severity;
use migrator_engine::text::clip_bytes;

use super::escape::{block, code, prose, with_code};
use super::{Channel, accepted_by, apply_step, blocker_line, buttons, headline, resolved_as};

/// An AWS Chatbot custom notification (Slack reads it with no code of ours): the error
/// and the failures first (the database's message, the failing statement and line, what
/// was committed), then the lists, cut with counts. Every outside string goes through
/// `escape` for mrkdwn as it is inserted: names and keys as code spans, messages as a code
/// block, the rest as prose.
///
/// `channel`: what the channel knows beyond the outcome: the function, the buttons' variables
/// (where the stage has a confirm door), and the door this run came through; the thread is
/// the object version's.
pub fn chatbot(o: &Outcome, channel: &Channel) -> serde_json::Value {
    let function = channel.function;
    const LIMIT: usize = 3500;
    const ERROR_LIMIT: usize = 1500;
    let mut lines = Vec::new();
    let recovery = super::recovery_point(o).map(|(what, restore)| {
        format!(
            ":rewind: *Recovery point:* {}\nRestore with:\n{}",
            prose(&what),
            block(&restore)
        )
    });
    if super::recovery_first(o) {
        lines.extend(recovery.clone());
    }
    if let Some(e) = &o.error {
        lines.push(format!(
            "*Error {}:*\n{}",
            prose(e.code.as_deref().unwrap_or("")),
            block(clip_bytes(e.message.trim_end(), ERROR_LIMIT))
        ));
    }
    for m in &o.failed {
        let mut line = format!("*Failed:* {}", code(&m.name));
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
            "*Resolved:* {} as {}",
            code(&r.name),
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
            .map(|r| format!(" ({})", prose(r)))
            .unwrap_or_default();
        lines.push(format!(
            "{} {} in {} line {}{evidence}",
            if f.severity == Severity::Error {
                ":x:"
            } else {
                ":warning:"
            },
            code(&f.rule.to_string()),
            code(&f.migration),
            f.line
        ));
    }
    if let Some(by) = accepted_by(o, prose) {
        let accepted: Vec<String> = o.accepted.iter().map(|a| code(a)).collect();
        lines.push(format!(
            ":white_check_mark: Accepted by {by}: {}",
            accepted.join(", ")
        ));
    }
    for b in o.blockers.iter().take(5) {
        lines.push(format!(":lock: {}", prose(&blocker_line(b))));
    }
    if let Some(door) = channel.door {
        let request = o
            .invoked_by
            .as_ref()
            .and_then(|b| b.request_id.as_deref())
            .map(|id| {
                format!(
                    " (CloudTrail's Invoke record of request {} names who)",
                    code(id)
                )
            })
            .unwrap_or_default();
        lines.push(format!(
            "*Confirmed through:* the {} qualifier{request}",
            code(door)
        ));
    }
    if !super::recovery_first(o) {
        lines.extend(recovery);
    }
    if let Some(a) = &o.artifact {
        lines.push(format!("*Artifact:* {}", code(&a.location)));
    }
    if let Some(db) = &o.database {
        lines.push(format!("*Database:* {} {}", db.engine, code(&db.name)));
    }
    let list = |title: &str, names: Vec<String>, lines: &mut Vec<String>| {
        if !names.is_empty() {
            lines.push(format!("*{title} ({}):*", names.len()));
            lines.extend(names.iter().take(20).map(|n| format!("• {}", code(n))));
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
        lines.push(format!(":warning: {}", prose(clip_bytes(w, 400))));
    }
    if o.warnings.len() > 5 {
        lines.push(format!("… and {} more warnings", o.warnings.len() - 5));
    }
    let mut description = lines.join("\n");
    if description.len() > LIMIT {
        description = format!("{}\n…", clip_bytes(&description, LIMIT));
    }
    let mut next_steps: Vec<String> = Vec::new();
    if let Some(hint) = o.error.as_ref().and_then(|e| e.hint.as_deref()) {
        next_steps.push(with_code(hint));
    }
    if let Some(payload) = &o.confirm_payload {
        next_steps.push(with_code(&apply_step(payload, function)));
        if let Some(q) = channel.confirm_qualifier {
            next_steps.push(with_code(&format!(
                "A confirmation is honoured only through the `{q}` alias (`--qualifier {q}`): `migrator invoke --confirm` and this message's button use it."
            )));
        }
    }
    let headline = prose(&headline(o));
    let mut context = serde_json::Map::new();
    context.insert("stage".into(), serde_json::json!(o.stage));
    context.insert("status".into(), serde_json::json!(o.status_text()));
    context.insert("durationMs".into(), serde_json::json!(o.duration_ms));
    if let Some(door) = channel.door {
        context.insert("door".into(), serde_json::json!(door));
    }
    buttons::insert(
        &mut context,
        buttons::context(o, function, channel.confirm_qualifier),
    );
    let mut metadata = serde_json::json!({
        "summary": prose(&summary(o)),
        "eventType": format!("migrator.{}", o.status_text()),
        "additionalContext": context,
    });
    if let Some(thread) = buttons::thread_id(o) {
        metadata["threadId"] = serde_json::json!(thread);
    }
    serde_json::json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": format!("{} {headline}", emoji(o.status)),
            "description": description,
            "nextSteps": next_steps,
        },
        "metadata": metadata,
    })
}

/// The thread's summary line: stage, status and how many migrations.
fn summary(o: &Outcome) -> String {
    let n = o.applied.len() + o.pending.len() + o.failed.len();
    format!(
        "{}: {}, {n} migration{}",
        o.stage.as_deref().unwrap_or("migrator"),
        o.status_text(),
        super::plural(n)
    )
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

fn list_numbers(numbers: &[usize]) -> String {
    let shown: Vec<String> = numbers.iter().take(20).map(ToString::to_string).collect();
    let more = if numbers.len() > 20 {
        format!(" and {} more", numbers.len() - 20)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use migrator_engine::chrono;
    use migrator_engine::outcome::{Action, ResolveKind, Resolved};

    use super::*;

    #[test]
    fn a_resolved_message_names_the_migration_and_how() {
        let mut o = Outcome::new(Action::Resolve, chrono::Utc::now());
        o.status = Status::Applied;
        o.stage = Some("PROD".into());
        o.resolved = Some(Resolved {
            name: "20240101_x".into(),
            kind: ResolveKind::RolledBack,
        });
        let chatbot = chatbot(&o, &Channel::of(Some("migrator-PROD")));
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
}
