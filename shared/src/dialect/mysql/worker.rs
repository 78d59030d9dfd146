//! The working session on MySQL / MariaDB: the second connection, opened only when something
//! is pending, that runs the scripts statement by statement. The supervisor holds `GET_LOCK`,
//! writes the bookkeeping and reads it back; after every script this session is checked
//! (an XA transaction, a transaction left open) and returned to a known state.

use super::*;
use crate::sql::split_mysql;

/// MySQL's `XAER_RMFAIL`: the session is inside an XA transaction (active, idle or prepared).
const XAER_RMFAIL: u16 = 1399;

/// A script's session.
pub(super) struct Worker {
    pub(super) conn: MySqlConnection,
    /// `CONNECTION_ID()`, what the supervisor's `KILL QUERY` names.
    pub(super) id: u64,
    mariadb: bool,
}

impl Worker {
    pub(super) async fn open(target: &Target, mariadb: bool) -> Result<Worker, EngineError> {
        let mut conn = target.read_connection().await?;
        let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
            .fetch_one(&mut conn)
            .await
            .map_err(EngineError::database("opening the working session"))?;
        Ok(Worker { conn, id, mariadb })
    }

    /// Session limits for the statements of one migration: `lock_wait_timeout` (metadata
    /// locks, whole seconds). The deadline is kept by the supervisor, not by a setting.
    fn set_limits(limits: StatementLimits) -> Option<String> {
        limits.lock_timeout.map(|t| {
            format!(
                "SET SESSION lock_wait_timeout = {}",
                t.as_secs_f64().ceil().max(1.0) as u64
            )
        })
    }

    pub(super) async fn run_each_statement(
        &mut self,
        script: &str,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure> {
        if let Some(set) = Self::set_limits(limits)
            && let Err(e) = sqlx::raw_sql(AssertSqlSafe(set))
                .execute(&mut self.conn)
                .await
        {
            return Err(script_failure(&e, limits));
        }
        // How the server lexes strings now (an earlier migration may have set
        // NO_BACKSLASH_ESCAPES for the session): the splitter follows it.
        let backslash = sqlx::query_scalar::<_, i64>(
            "SELECT CAST(FIND_IN_SET('NO_BACKSLASH_ESCAPES', @@SESSION.sql_mode) = 0 AS SIGNED)",
        )
        .fetch_one(&mut self.conn)
        .await
        .map_or(true, |v| v != 0);
        let statements: Vec<_> = split_mysql(script, backslash)
            .into_iter()
            .filter(|s| !s.is_blank())
            .collect();
        if statements.is_empty() {
            // Prisma sends the whole (empty or comment-only) script and MySQL answers
            // ER_EMPTY_QUERY, so the migration fails (spec 4.5); we say the same.
            Err(ScriptFailure {
                code: Some(ER_EMPTY_QUERY.to_string()),
                message: "Query was empty".into(),
                ..ScriptFailure::default()
            })
        } else {
            one_by_one(self, statements, Commits::new(true), limits).await
        }
    }

    /// The script left the session inside an XA transaction: what the server says of it.
    /// Any other transaction was already ended (rolled back) by then, so the ROLLBACK asked
    /// here is refused only inside an XA transaction (XAER_RMFAIL).
    pub(super) async fn xa_state(&mut self) -> Option<String> {
        match sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await {
            Err(sqlx::Error::Database(e)) if error_number(e.as_ref()) == Some(XAER_RMFAIL) => {
                Some(e.message().to_string())
            }
            _ => None,
        }
    }

    /// Back to a known state: no table locks, autocommit on, read-write, no statement limits
    /// of ours or the script's. The session user cannot change on MySQL.
    pub(super) async fn reset(&mut self) {
        let reset = if self.mariadb {
            "UNLOCK TABLES; SET SESSION autocommit = 1, lock_wait_timeout = DEFAULT, max_statement_time = DEFAULT; SET SESSION TRANSACTION READ WRITE"
        } else {
            "UNLOCK TABLES; SET SESSION autocommit = 1, lock_wait_timeout = DEFAULT; SET SESSION TRANSACTION READ WRITE"
        };
        let _ = sqlx::raw_sql(reset).execute(&mut self.conn).await;
    }
}

/// An XA transaction the script left: the migration fails with what the server said, and
/// the deploy stops (the working session is closed; a prepared XA transaction survives that
/// and holds its locks until someone commits or rolls it back).
pub(super) fn xa_failure(result: Result<usize, ScriptFailure>, xa: String) -> ScriptFailure {
    let mut failure = match result {
        Ok(_) => ScriptFailure {
            code: Some(XAER_RMFAIL.to_string()),
            message: xa.clone(),
            ..ScriptFailure::default()
        },
        Err(f) => f,
    };
    let note = format!(
        "The script left its session inside an XA transaction ({xa}). Its statements inside that XA transaction are not committed; a PREPARED XA transaction keeps its locks after the session ends. Run `XA RECOVER FORMAT='SQL'` and end it with `XA COMMIT <xid>` or `XA ROLLBACK <xid>`."
    );
    failure.note = Some(match failure.note.take() {
        Some(n) => format!("{n}\n{note}"),
        None => note,
    });
    failure
}

#[async_trait]
impl OneByOne for Worker {
    async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
            .execute(&mut self.conn)
            .await
            .map(|_| ())
    }

    fn failure(&self, error: &sqlx::Error, _text: &str, limits: StatementLimits) -> ScriptFailure {
        script_failure(error, limits)
    }

    /// A script's own transaction is rolled back (what it held is not committed).
    async fn end_own_transaction(&mut self) {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
    }

    /// MariaDB says whether a transaction is open (`@@in_transaction`); MySQL cannot.
    async fn in_transaction(&mut self) -> Option<bool> {
        if !self.mariadb {
            return None;
        }
        sqlx::query_scalar::<_, i64>("SELECT CAST(@@in_transaction AS SIGNED)")
            .fetch_one(&mut self.conn)
            .await
            .ok()
            .map(|open| open != 0)
    }

    /// Whether the script left a transaction open: MariaDB says so (`@@in_transaction`);
    /// on MySQL the script's own `START TRANSACTION` / `COMMIT` tell.
    async fn left_open(&mut self, commits: &Commits) -> bool {
        let open = self
            .in_transaction()
            .await
            .unwrap_or(commits.open.is_some());
        if open {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        }
        open
    }

    fn quoted(text: &str) -> String {
        shorten(text)
    }
}
