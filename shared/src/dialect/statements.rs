//! A script run statement by statement: which of its statements are committed, the loop that
//! runs them one by one (one copy for every dialect), and what a transaction it left open means.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Executor};

use super::bookkeeping::{Conn, SqlBookkeeping};
use super::{FailedStatement, ScriptFailure, StatementLimits};
use crate::sql::Statement;

/// Which statements of a script run one by one are committed, following the script's own
/// `BEGIN` / `START TRANSACTION` / `COMMIT` / `ROLLBACK` and, on MySQL, the implicit commit
/// of DDL (`implicit_ddl_commit`).
#[derive(Debug, Default)]
pub(crate) struct Commits {
    pub(crate) committed: Vec<usize>,
    /// Statements run inside a transaction the script opened and has not ended yet.
    pub(crate) open: Option<Vec<usize>>,
    implicit_ddl_commit: bool,
}

impl Commits {
    pub(crate) fn new(implicit_ddl_commit: bool) -> Commits {
        Commits {
            implicit_ddl_commit,
            ..Commits::default()
        }
    }

    /// Whether a statement with these first words opens a transaction (the one a script
    /// that ends here leaves open).
    pub(crate) fn opens(&self, words: &[String]) -> bool {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        matches!(w.as_slice(), ["START", "TRANSACTION", ..] | ["BEGIN", ..])
            && (self.implicit_ddl_commit || self.open.is_none())
    }

    /// Statement `number`, whose first words are `words`, ran without error.
    pub(crate) fn ran(&mut self, number: usize, words: &[String]) {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["START", "TRANSACTION", ..] | ["BEGIN", ..] => {
                // MySQL commits an open transaction on BEGIN; PostgreSQL only warns.
                if self.implicit_ddl_commit || self.open.is_none() {
                    self.commit_open();
                    self.open = Some(Vec::new());
                }
                self.committed.push(number);
            }
            ["COMMIT" | "END", ..] => {
                self.commit_open();
                self.committed.push(number);
            }
            ["ROLLBACK" | "ABORT", ..] if !w.contains(&"TO") => {
                self.open = None;
                self.committed.push(number);
            }
            // Statements that commit implicitly (before and after themselves).
            [
                "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE" | "LOCK" | "UNLOCK",
                ..,
            ] if self.implicit_ddl_commit => {
                self.commit_open();
                self.committed.push(number);
            }
            _ => match &mut self.open {
                Some(open) => open.push(number),
                None => self.committed.push(number),
            },
        }
    }

    fn commit_open(&mut self) {
        if let Some(open) = self.open.take() {
            self.committed.extend(open);
            self.committed.sort_unstable();
        }
    }
}

/// What to say when a script leaves a transaction of its own open at its end (`BEGIN`
/// without `COMMIT`): the migrator rolls it back rather than commit it unasked.
pub(crate) fn left_open_failure(committed: Vec<usize>) -> ScriptFailure {
    ScriptFailure {
        code: None,
        message: "The migration script left a transaction of its own open (a `BEGIN` or `START TRANSACTION` without `COMMIT`). The migrator rolled that transaction back: the statements after that `BEGIN` were not applied.".into(),
        committed,
        ..ScriptFailure::default()
    }
}

/// What a dialect says for [`one_by_one`]: how a failed statement reads, how a transaction
/// the script opened is ended, and whether the script left one open after its last statement.
#[async_trait]
pub(crate) trait OneByOne: Send {
    /// The failure of statement `text`, as the dialect reports it.
    fn failure(&self, error: &sqlx::Error, text: &str, limits: StatementLimits) -> ScriptFailure;

    /// After a failed statement: ends a transaction the script opened, so the bookkeeping
    /// that follows can run (a no-op when none is open).
    async fn end_own_transaction(&mut self);

    /// Whether the script left a transaction open after its last statement (ended here).
    async fn left_open(&mut self, commits: &Commits) -> bool;

    /// A statement as `logs` quote it.
    fn quoted(text: &str) -> String {
        text.to_string()
    }
}

/// Runs the (non-blank) statements one by one, each committed as the script's own
/// transactions say; a failure names its statement and what was committed before it.
pub(crate) async fn one_by_one<D>(
    dialect: &mut D,
    statements: Vec<Statement<'_>>,
    mut commits: Commits,
    limits: StatementLimits,
) -> Result<usize, ScriptFailure>
where
    D: OneByOne + SqlBookkeeping + ?Sized,
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
{
    let mut number = 0;
    let mut opened = None;
    for statement in statements {
        number += 1;
        let quoted = FailedStatement {
            number,
            line: statement.line,
            text: D::quoted(statement.trimmed()),
        };
        let (conn, _) = dialect.bookkeeping();
        let ran = sqlx::raw_sql(AssertSqlSafe(statement.text.to_owned()))
            .execute(conn)
            .await;
        if let Err(e) = ran {
            dialect.end_own_transaction().await;
            let mut failure = dialect.failure(&e, statement.text, limits);
            failure.statement = Some(quoted);
            failure.committed = commits.committed;
            return Err(failure);
        }
        let words = statement.keywords(2);
        if commits.opens(&words) {
            opened = Some(quoted);
        }
        commits.ran(number, &words);
    }
    if dialect.left_open(&commits).await {
        let mut failure = left_open_failure(commits.committed);
        failure.statement = opened;
        return Err(failure);
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn postgres_commits_keep_a_scripts_transaction_together() {
        let mut c = Commits::new(false);
        c.ran(1, &words("CREATE TABLE"));
        c.ran(2, &words("BEGIN"));
        c.ran(3, &words("CREATE TABLE"));
        // Without an implicit DDL commit, the block is still open: 3 is not committed.
        assert_eq!(c.committed, [1, 2]);
        c.ran(4, &words("SAVEPOINT s"));
        c.ran(5, &words("ROLLBACK TO"));
        // ROLLBACK TO SAVEPOINT does not end the block.
        assert!(c.open.is_some());
        c.ran(6, &words("COMMIT"));
        assert_eq!(c.committed, [1, 2, 3, 4, 5, 6]);
        c.ran(7, &words("BEGIN"));
        c.ran(8, &words("INSERT INTO"));
        c.ran(9, &words("ROLLBACK"));
        assert_eq!(c.committed, [1, 2, 3, 4, 5, 6, 7, 9]);
        assert!(c.open.is_none());
    }

    #[test]
    fn a_transaction_left_open_names_what_stays() {
        let failure = left_open_failure(vec![1]);
        assert!(
            failure
                .message
                .contains("left a transaction of its own open")
        );
        assert_eq!(failure.committed, [1]);
        assert!(!failure.rolled_back);
    }
}
