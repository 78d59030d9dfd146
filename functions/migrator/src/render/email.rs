//! Plain text for the topic's e-mail subscribers.

use migrator_engine::outcome::Outcome;

use super::{apply_step, escape, headline};

/// Plain text for e-mail subscribers: the error first, then the terminal rendering; every
/// control and invisible character shown as `\u{…}` ([`escape::plain`]).
pub fn email(o: &Outcome, function: Option<&str>) -> String {
    let mut out = format!("{}\n\n", headline(o));
    let first = super::recovery_point(o).filter(|_| super::recovery_first(o));
    if let Some((what, restore)) = &first {
        out.push_str(&format!(
            "Recovery point: {what}\nRestore with: {restore}\n\n"
        ));
    }
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
    out.push_str(&super::text::text_with(o, first.is_none()));
    escape::plain(&out)
}
