//! A script run statement by statement: which of its statements are committed, the loop that
//! runs them one by one (one copy for every dialect), and what a transaction it left open means.

use async_trait::async_trait;

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
    /// Some statement's commit was inferred from the script's words, not said by the server.
    pub(crate) inferred: bool,
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

    /// Statement `number` ran without error and the server says whether a transaction is
    /// open now (`None`: it cannot tell, the script's words are followed).
    pub(crate) fn observed(&mut self, number: usize, words: &[String], open: Option<bool>) {
        let Some(open) = open else {
            self.inferred = true;
            return self.ran(number, words);
        };
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        if w.first() == Some(&"SET") && !open {
            // A session setting changes nothing in the database; an open transaction it
            // ended (`SET autocommit = 1`) is committed all the same.
            return self.commit_open();
        }
        let rollback = matches!(w.as_slice(), ["ROLLBACK" | "ABORT", ..]) && !w.contains(&"TO");
        if rollback {
            // What was open is gone; the ROLLBACK itself "ran" (a chained one opens anew).
            self.open = None;
            self.committed.push(number);
            if open {
                self.open = Some(Vec::new());
            }
            return;
        }
        let begins = matches!(w.as_slice(), ["START", "TRANSACTION", ..] | ["BEGIN", ..]);
        if begins && open && (self.implicit_ddl_commit || self.open.is_none()) {
            // MySQL commits an open transaction before it starts another; the BEGIN itself
            // counts as run, like the script's own transaction statements.
            self.commit_open();
            self.open = Some(Vec::new());
            self.committed.push(number);
            return;
        }
        self.open.get_or_insert_with(Vec::new).push(number);
        if !open {
            self.commit_open();
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

/// What a working session says for [`one_by_one`]: how it runs a statement, how a failed
/// statement reads, how a transaction the script opened is ended, and what the server says
/// about the transaction after each statement.
#[async_trait]
pub(crate) trait OneByOne: Send {
    /// Runs one statement of the script as it is written.
    async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error>;

    /// The failure of statement `text`, as the dialect reports it.
    fn failure(&self, error: &sqlx::Error, text: &str, limits: StatementLimits) -> ScriptFailure;

    /// After a failed statement: ends a transaction the script opened, so the bookkeeping
    /// that follows can run (a no-op when none is open).
    async fn end_own_transaction(&mut self);

    /// Whether the server says a transaction is open now (`None`: it cannot tell, and the
    /// script's own words are followed instead).
    async fn in_transaction(&mut self) -> Option<bool> {
        None
    }

    /// Whether the script left a transaction open after its last statement (ended here).
    async fn left_open(&mut self, commits: &Commits) -> bool;

    /// A statement as `logs` quote it.
    fn quoted(text: &str) -> String {
        text.to_string()
    }
}

/// Runs the (non-blank) statements one by one, each committed as the server says (or, where
/// it cannot tell, as the script's own transactions say); a failure names its statement and
/// what was committed before it.
pub(crate) async fn one_by_one<D>(
    dialect: &mut D,
    statements: Vec<Statement<'_>>,
    mut commits: Commits,
    limits: StatementLimits,
) -> Result<usize, ScriptFailure>
where
    D: OneByOne + ?Sized,
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
        if let Err(e) = dialect.execute(statement.text).await {
            dialect.end_own_transaction().await;
            let mut failure = dialect.failure(&e, statement.text, limits);
            failure.statement = Some(quoted);
            failure.committed = commits.committed;
            failure.inferred = commits.inferred;
            return Err(failure);
        }
        let words = statement.keywords(2);
        if commits.opens(&words) {
            opened = Some(quoted);
        }
        let open = dialect.in_transaction().await;
        commits.observed(number, &words, open);
    }
    if dialect.left_open(&commits).await {
        let mut failure = left_open_failure(commits.committed);
        failure.statement = opened;
        failure.inferred = commits.inferred;
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
    fn the_server_says_what_is_committed() {
        let mut c = Commits::new(true);
        c.observed(1, &words("CREATE TABLE"), Some(false));
        c.observed(2, &words("START TRANSACTION"), Some(true));
        c.observed(3, &words("INSERT INTO"), Some(true));
        // CREATE TEMPORARY TABLE does not commit on MariaDB: the server says so.
        c.observed(4, &words("CREATE TEMPORARY"), Some(true));
        assert_eq!(c.committed, [1, 2]);
        // ANALYZE TABLE commits.
        c.observed(5, &words("ANALYZE TABLE"), Some(false));
        assert_eq!(c.committed, [1, 2, 3, 4, 5]);
        c.observed(6, &words("SET autocommit"), Some(false));
        c.observed(7, &words("INSERT INTO"), Some(true));
        c.observed(8, &words("ROLLBACK"), Some(false));
        // A session setting is not a committed change.
        assert_eq!(c.committed, [1, 2, 3, 4, 5, 8]);
        assert!(!c.inferred);
        c.observed(9, &words("INSERT INTO"), None);
        assert!(c.inferred);
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
