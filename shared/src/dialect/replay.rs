//! Naming the failed statement when the server does not: a migration that ran as one
//! transaction and failed, and whose transaction the server confirms rolled back, is run
//! again statement by statement in a transaction that is always rolled back, and the first
//! statement that fails with the same error is the one named. Nothing is guessed: a replay
//! that fails elsewhere, differently, or not at all names nothing. Written once here; each
//! dialect says how it opens the bounded transaction and what a script may not replay.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{FailedStatement, ScriptFailure};
use crate::sql::Statement;

/// The replay may take the failed run's time once more and half again, plus this (the
/// statements run one by one, each a round trip), and never past the run's deadline.
const REPLAY_SLACK: Duration = Duration::from_secs(5);
/// Less time than this before the deadline: no replay (it would only be cancelled).
const REPLAY_MINIMUM: Duration = Duration::from_secs(1);

/// How long a replay may run after a failed run that took `original`, and until when
/// (`None`: no time is left before `deadline`).
pub(crate) fn budget(original: Duration, deadline: Option<Instant>) -> Option<Duration> {
    let own = original + original / 2 + REPLAY_SLACK;
    let budget = match deadline {
        Some(deadline) => own.min(deadline.saturating_duration_since(Instant::now())),
        None => own,
    };
    (budget >= REPLAY_MINIMUM).then_some(budget)
}

/// What a working session does for a replay.
#[async_trait]
pub(crate) trait Replay: Send {
    /// Whether the server says a transaction is open on the session now.
    async fn transaction_open(&mut self) -> bool;
    /// Opens the transaction the replay runs in, bounded by `budget` where the server can
    /// bound it (the supervisor's deadline applies as well).
    async fn begin(&mut self, budget: Duration) -> Result<(), sqlx::Error>;
    /// Runs one statement.
    async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error>;
    /// The error as the failure reports it (code, message).
    fn said(&self, error: &sqlx::Error, statement: &str) -> ScriptFailure;
    /// Rolls the replay's transaction back (and returns the session to its known state).
    async fn rollback(&mut self);
}

/// Why a failure is not named by a replay, or the statement it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Replayed {
    Found(FailedStatement),
    NotIdentified(String),
}

/// The error's first line: what must be the same in the replay (the rest may hold
/// positions relative to what was sent).
fn headline(message: &str) -> &str {
    message.lines().next().unwrap_or_default().trim()
}

/// Runs `statements` again in a transaction that is rolled back whatever happens, stops at
/// the first that fails, and names it when it failed with the same code and message as
/// `original`. The server must say no transaction is open before and after.
pub(crate) async fn replay<R: Replay + ?Sized>(
    session: &mut R,
    statements: &[Statement<'_>],
    original: &ScriptFailure,
    budget: Duration,
) -> Replayed {
    let not = |why: &str| Replayed::NotIdentified(why.to_string());
    if session.transaction_open().await {
        return not("the working session was still in a transaction");
    }
    if let Err(e) = session.begin(budget).await {
        session.rollback().await;
        return Replayed::NotIdentified(format!("the replay's transaction could not open ({e})"));
    }
    let mut number = 0;
    let mut found = not("every statement ran without error when run one by one");
    for statement in statements.iter().filter(|s| !s.is_blank()) {
        number += 1;
        let Err(e) = session.execute(statement.text).await else {
            continue;
        };
        let again = session.said(&e, statement.text);
        found = if again.interruption.is_some() {
            not("the replay was interrupted before it reached the failure")
        } else if again.code != original.code
            || headline(&again.message) != headline(&original.message)
        {
            Replayed::NotIdentified(format!(
                "statement {number} failed with another error when run alone ({})",
                again.code.as_deref().unwrap_or("no code")
            ))
        } else {
            Replayed::Found(FailedStatement {
                number,
                line: statement.line,
                text: statement.trimmed().to_string(),
            })
        };
        break;
    }
    session.rollback().await;
    if session.transaction_open().await {
        // Not expected: the session is left to the caller, which closes it.
        return not("the replay's transaction did not end when rolled back");
    }
    found
}

/// Writes what the replay found into the failure: the statement, and how it was found.
pub(crate) fn report(failure: &mut ScriptFailure, replayed: Replayed) {
    let note = match replayed {
        Replayed::Found(statement) => {
            let note = format!(
                "The database did not say which statement failed: the migrator ran the statements again one by one in a transaction it rolled back, and statement {} failed there with the same error.",
                statement.number
            );
            failure.statement = Some(statement);
            note
        }
        Replayed::NotIdentified(why) => {
            format!(
                "The database did not say which statement failed; statement not identified: {why}."
            )
        }
    };
    failure.note = Some(match failure.note.take() {
        Some(n) => format!("{n}\n{note}"),
        None => note,
    });
}

/// The first word of `script` (outside nothing: strings and bodies included, which only
/// makes the rule stricter) that names something in `names`, or starts with one of
/// `prefixes`, lowercased.
pub(crate) fn named_in(script: &str, names: &[&str], prefixes: &[&str]) -> Option<String> {
    script
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map(str::to_ascii_lowercase)
        .find(|w| names.contains(&w.as_str()) || prefixes.iter().any(|p| w.starts_with(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{Flavor, split};

    /// A session that fails statements holding a given word, with a given code.
    struct Fake {
        fails_on: &'static str,
        code: &'static str,
        open: bool,
        ran: Vec<String>,
    }

    #[async_trait]
    impl Replay for Fake {
        async fn transaction_open(&mut self) -> bool {
            self.open
        }
        async fn begin(&mut self, _: Duration) -> Result<(), sqlx::Error> {
            self.open = true;
            Ok(())
        }
        async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error> {
            self.ran.push(statement.trim().to_string());
            match statement.contains(self.fails_on) {
                true => Err(sqlx::Error::RowNotFound),
                false => Ok(()),
            }
        }
        fn said(&self, _: &sqlx::Error, _: &str) -> ScriptFailure {
            ScriptFailure {
                code: Some(self.code.into()),
                message: "ERROR: boom\nPosition: 3".into(),
                ..ScriptFailure::default()
            }
        }
        async fn rollback(&mut self) {
            self.open = false;
        }
    }

    fn original(code: &str) -> ScriptFailure {
        ScriptFailure {
            code: Some(code.into()),
            message: "ERROR: boom\nPosition: 90".into(),
            ..ScriptFailure::default()
        }
    }

    const SCRIPT: &str =
        "CREATE TABLE t (id int);\n\nCREATE INDEX i\n  ON t (missing);\nSELECT 1;\n";

    #[tokio::test]
    async fn the_first_statement_failing_the_same_way_is_named_and_nothing_after_it_runs() {
        let statements = split(SCRIPT, Flavor::Postgres);
        let mut fake = Fake {
            fails_on: "missing",
            code: "42703",
            open: false,
            ran: Vec::new(),
        };
        let found = replay(
            &mut fake,
            &statements,
            &original("42703"),
            Duration::from_secs(9),
        )
        .await;
        let Replayed::Found(statement) = found else {
            panic!("{found:?}")
        };
        assert_eq!((statement.number, statement.line), (2, 3));
        assert_eq!(statement.text, "CREATE INDEX i\n  ON t (missing);");
        assert_eq!(fake.ran.len(), 2);
        assert!(!fake.open);
    }

    #[tokio::test]
    async fn another_error_or_none_names_nothing() {
        let statements = split(SCRIPT, Flavor::Postgres);
        let mut fake = Fake {
            fails_on: "missing",
            code: "42P01",
            open: false,
            ran: Vec::new(),
        };
        let found = replay(
            &mut fake,
            &statements,
            &original("42703"),
            Duration::from_secs(9),
        )
        .await;
        assert!(
            matches!(found, Replayed::NotIdentified(ref w) if w.contains("another error")),
            "{found:?}"
        );
        fake.fails_on = "nowhere";
        let found = replay(
            &mut fake,
            &statements,
            &original("42703"),
            Duration::from_secs(9),
        )
        .await;
        assert!(
            matches!(found, Replayed::NotIdentified(ref w) if w.contains("without error")),
            "{found:?}"
        );
        // A session still in a transaction is not replayed on.
        fake.open = true;
        let found = replay(
            &mut fake,
            &statements,
            &original("42703"),
            Duration::from_secs(9),
        )
        .await;
        assert!(
            matches!(found, Replayed::NotIdentified(ref w) if w.contains("still in a transaction")),
            "{found:?}"
        );
    }

    #[test]
    fn the_budget_is_the_failed_runs_time_and_half_again_within_the_deadline() {
        assert_eq!(
            budget(Duration::from_secs(10), None),
            Some(Duration::from_secs(20))
        );
        let soon = Instant::now() + Duration::from_millis(500);
        assert_eq!(budget(Duration::from_secs(10), Some(soon)), None);
        let later = Instant::now() + Duration::from_secs(3600);
        assert_eq!(budget(Duration::ZERO, Some(later)), Some(REPLAY_SLACK));
    }

    #[test]
    fn words_are_found_anywhere_in_the_script() {
        let names = ["nextval"];
        assert_eq!(
            named_in("INSERT INTO t VALUES (NEXTVAL('s'))", &names, &[]),
            Some("nextval".into())
        );
        assert_eq!(named_in("SELECT my_nextval_x()", &names, &[]), None);
        assert_eq!(
            named_in("SELECT dblink_exec('x')", &[], &["dblink"]),
            Some("dblink_exec".into())
        );
    }
}
