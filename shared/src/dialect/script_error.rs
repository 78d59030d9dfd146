//! A failed migration script, as the engine reports it.

use crate::error::ROLLED_BACK_LOGS;

/// The statement that failed, when the script ran statement by statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStatement {
    /// 1-based among the non-blank statements of the script.
    pub number: usize,
    /// 1-based line of the statement in `migration.sql`.
    pub line: usize,
    pub text: String,
}

/// A failure the database caused on our behalf, not the script's own error: the engine
/// decides what it means (retry, incomplete) without knowing the database's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// A lock wait hit the statement lock timeout we set (PostgreSQL 55P03, MySQL 1205).
    LockTimeout,
    /// The supervising session cancelled the working statement because the run's deadline
    /// came (`pg_cancel_backend`, `KILL QUERY`, `sqlite3_interrupt`).
    Deadline,
    /// The working session ended under the statement (terminated by an administrator, the
    /// server restarting, the network): the server rolled back what was open.
    SessionLost,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptFailure {
    /// SQLSTATE, MySQL error number or SQLite extended code, when the database gave one.
    pub code: Option<String>,
    /// The database's error, rendered for people (may span lines).
    pub message: String,
    pub statement: Option<FailedStatement>,
    /// Statements (1-based numbers) committed before the failure.
    pub committed: Vec<usize>,
    /// True when the whole script ran in a transaction that was rolled back.
    pub rolled_back: bool,
    /// Set when the failure is a limit of ours taking effect (see [`Interruption`]).
    pub interruption: Option<Interruption>,
    /// The migration's started row is already committed (the script committed it itself),
    /// so the failure is written into it rather than inserted.
    pub row_recorded: bool,
    /// What else a person must know (the script ended our transaction, left one open …).
    pub note: Option<String>,
    /// `committed` follows the script's words where the server could not say (MySQL).
    pub inferred: bool,
}

impl ScriptFailure {
    /// A statement's failure from its sqlx error: `said` gives a server error's code and text
    /// (as the dialect renders them); anything else is the connection failing.
    pub(crate) fn from_sqlx(
        error: &sqlx::Error,
        interruption: Option<Interruption>,
        said: impl FnOnce(&(dyn sqlx::error::DatabaseError + 'static)) -> (Option<String>, String),
    ) -> ScriptFailure {
        let (code, message) = match error {
            sqlx::Error::Database(db) => said(db.as_ref()),
            other => (
                None,
                format!("{other} (the connection to the database was lost or failed)"),
            ),
        };
        let lost = match error {
            // PostgreSQL's class 57P: the session was terminated or the server is going away.
            sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("57P")),
            sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) => true,
            _ => false,
        };
        ScriptFailure {
            code,
            message,
            interruption: interruption.or(lost.then_some(Interruption::SessionLost)),
            ..ScriptFailure::default()
        }
    }

    /// Prisma's P3018 text, which is also what goes into the `logs` column, followed by
    /// what we know beyond Prisma (statement number, what was committed or rolled back).
    pub fn logs(&self, migration_name: &str) -> String {
        let mut text = format!(
            "A migration failed to apply. New migrations cannot be applied before the error is recovered from. Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n\nMigration name: {migration_name}\n\nDatabase error code: {}\n\nDatabase error:\n{}\n",
            self.code.as_deref().unwrap_or("none"),
            self.message
        );
        if let Some(statement) = &self.statement {
            text.push_str(&format!(
                "\nPlease check the query number {} from the migration file (line {}):\n{}\n",
                statement.number, statement.line, statement.text
            ));
        }
        if let Some(note) = &self.note {
            text.push_str(&format!("\n{note}\n"));
        }
        if self.rolled_back {
            text.push_str(&format!("\n{ROLLED_BACK_LOGS}\n"));
        } else if self.statement.is_some() {
            if self.committed.is_empty() {
                text.push_str("\nNo statement of this migration had been committed.\n");
            } else {
                let inferred = match self.inferred {
                    true => "; inferred from the script's own words, as this server cannot say",
                    false => "",
                };
                text.push_str(&format!(
                    "\nStatements committed before the failure (they stay applied{inferred}): {}.\n",
                    crate::error::numbers(&self.committed)
                ));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_start_with_prismas_p3018_text() {
        let failure = ScriptFailure {
            code: Some("42P01".into()),
            message: "ERROR: relation \"x\" does not exist".into(),
            statement: None,
            committed: vec![],
            rolled_back: true,
            ..ScriptFailure::default()
        };
        let logs = failure.logs("20240101000000_init");
        assert!(logs.starts_with("A migration failed to apply. New migrations cannot be applied before the error is recovered from. Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n\nMigration name: 20240101000000_init\n\nDatabase error code: 42P01\n\nDatabase error:\nERROR: relation \"x\" does not exist\n"));
        assert!(logs.contains("rolled back"));
    }

    #[test]
    fn statement_runs_name_what_was_committed() {
        let failure = ScriptFailure {
            code: None,
            message: "boom".into(),
            statement: Some(FailedStatement {
                number: 6,
                line: 12,
                text: "DROP TABLE x;".into(),
            }),
            committed: vec![1, 2, 3, 5],
            rolled_back: false,
            ..ScriptFailure::default()
        };
        let logs = failure.logs("m");
        assert!(logs.contains("Database error code: none"));
        assert!(logs.contains("query number 6 from the migration file (line 12):\nDROP TABLE x;"));
        assert!(logs.contains("(they stay applied): 1-3, 5."));
    }
}
