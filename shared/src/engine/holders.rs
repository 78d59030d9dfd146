//! Who is in the way: after a P1002 or a table-lock timeout the engine asks the dialect who
//! holds the lock, lists the sessions in the outcome's `blockers` and names the one with the
//! oldest transaction in its messages. Asking is bounded, and a failure to tell is a warning.

use std::cmp::Reverse;
use std::time::Duration;

use crate::dialect::{Dialect, Held};
use crate::error::EngineError;
use crate::outcome::Outcome;
use crate::preflight::Blocker;

/// How long the engine waits for the answer (the dialect bounds its query on the server too).
const ASK_FOR: Duration = Duration::from_secs(10);

/// Takes the migration lock; a P1002 says who holds it, when the dialect can tell.
pub(super) async fn lock(
    dialect: &mut dyn Dialect,
    wait: Duration,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    match dialect.lock(wait).await {
        Err(e @ EngineError::LockTimeout { .. }) => {
            if let Some(who) = ask(dialect, Held::MigrationLock, outcome).await {
                outcome
                    .warnings
                    .push(format!("The migration lock is held by {who}."));
            }
            Err(e)
        }
        other => other,
    }
}

/// Asks who holds `held`, adds them to `outcome.blockers` and describes the first to name.
pub(super) async fn ask(
    dialect: &mut dyn Dialect,
    held: Held,
    outcome: &mut Outcome,
) -> Option<String> {
    let holders = match tokio::time::timeout(ASK_FOR, dialect.lock_holders(held)).await {
        Ok(Ok(holders)) => holders,
        Ok(Err(e)) => {
            outcome
                .warnings
                .push(format!("Could not tell who holds the lock ({e})."));
            return None;
        }
        Err(_) => {
            outcome.warnings.push(format!(
                "Could not tell who holds the lock (no answer within {} s).",
                ASK_FOR.as_secs()
            ));
            return None;
        }
    };
    let named = first(&holders).map(describe);
    for holder in holders {
        let known = outcome
            .blockers
            .iter()
            .any(|b| b.pid == holder.pid && b.holds == holder.holds && b.mode == holder.mode);
        if !known {
            outcome.blockers.push(holder);
        }
    }
    named
}

/// The session most likely in the way: the oldest transaction (the first listed among equals).
fn first(holders: &[Blocker]) -> Option<&Blocker> {
    holders
        .iter()
        .enumerate()
        .max_by_key(|(i, b)| (b.transaction_age_s.unwrap_or(0), Reverse(*i)))
        .map(|(_, b)| b)
}

/// `pid 123 (app `psql`, user `x`, idle in transaction for 40 s): `UPDATE … = ?``.
pub(super) fn describe(b: &Blocker) -> String {
    let mut about = Vec::new();
    if let Some(app) = &b.application_name {
        about.push(format!("app `{app}`"));
    }
    if let Some(user) = &b.user {
        about.push(format!("user `{user}`"));
    }
    match (&b.state, b.transaction_age_s) {
        (Some(state), Some(age)) => about.push(format!("{state} for {age} s")),
        (Some(state), None) => about.push(state.clone()),
        (None, Some(age)) => about.push(format!("in a transaction for {age} s")),
        (None, None) => {}
    }
    let mut text = format!("pid {}", b.pid);
    if !about.is_empty() {
        text.push_str(&format!(" ({})", about.join(", ")));
    }
    if let Some(query) = &b.query {
        text.push_str(&format!(": `{query}`"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocker(pid: i32, age: Option<u64>) -> Blocker {
        Blocker {
            pid,
            holds: "public.t".into(),
            mode: "AccessExclusiveLock".into(),
            application_name: Some("psql".into()),
            user: Some("x".into()),
            state: Some("idle in transaction".into()),
            transaction_age_s: age,
            query: Some("UPDATE t SET a = ?".into()),
        }
    }

    #[test]
    fn a_holder_is_named_with_what_a_person_needs() {
        assert_eq!(
            describe(&blocker(123, Some(40))),
            "pid 123 (app `psql`, user `x`, idle in transaction for 40 s): `UPDATE t SET a = ?`"
        );
        let bare = Blocker {
            application_name: None,
            user: None,
            state: None,
            transaction_age_s: None,
            query: None,
            ..blocker(7, None)
        };
        assert_eq!(describe(&bare), "pid 7");
    }

    #[test]
    fn the_oldest_transaction_is_named_first() {
        let holders = [
            blocker(1, Some(5)),
            blocker(2, Some(50)),
            blocker(3, Some(50)),
        ];
        assert_eq!(first(&holders).map(|b| b.pid), Some(2));
        assert_eq!(first(&[]).map(|b| b.pid), None);
    }
}
