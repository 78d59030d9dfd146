//! The working session: the second connection, opened only when something is pending, that
//! runs the scripts. The supervisor (the first connection) holds the lock and reads back;
//! nothing a script does here can release the lock or change what the supervisor reads.

use super::*;

/// A script's session, checked and returned to a known state after every migration.
pub(super) struct Worker {
    pub(super) conn: PgConnection,
    /// The server's process id of this session (what the supervisor cancels).
    pub(super) pid: i32,
    standard_strings: bool,
    /// `"schema"."_prisma_migrations"`.
    pub(super) table: String,
    pub(super) schema: String,
    /// What every migration leaves behind is undone by this: the login user (a script's
    /// `SET ROLE` / `SET SESSION AUTHORIZATION`), read-write and default isolation for the
    /// next transactions, the URL's schema first in `search_path` (a migration's objects land
    /// in the same schema whether it is applied alone or after others), strings lexed as the
    /// splitter reads them (`standard_conforming_strings`), no `LISTEN`, and our
    /// connection check. Other plain settings a script made (`SET lock_timeout = '5s'`)
    /// stay for the next migrations, as they do in Prisma's one session.
    pub(super) reset: String,
    /// Whether the last transaction that could have touched `_prisma_migrations` on this
    /// session was one of ours that ended with every check of the finishing block passing (the
    /// full check, or the lock-based proof that nothing changed since one). Only then may the
    /// next finishing block take the lock-based proof ([`super::transaction::finishing_block`]);
    /// a new session, a script run outside one transaction, or any failure clears it.
    pub(super) table_verified: bool,
}

impl Worker {
    pub(super) async fn open(target: &Target, table: String) -> Result<Worker, EngineError> {
        let mut conn = target.read_connection().await?;
        let (pid, standard, checks): (i32, bool, bool) = sqlx::query_as(
            "SELECT pg_backend_pid(), current_setting('standard_conforming_strings') = 'on', current_setting('server_version_num')::int >= 140000",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(EngineError::database("opening the working session"))?;
        let mut defaults = String::new();
        if checks {
            // The server cancels the statement of a deploy that was killed (14+).
            let set =
                format!("SET client_connection_check_interval = {CONNECTION_CHECK_INTERVAL_MS}; ");
            match sqlx::raw_sql(AssertSqlSafe(set.clone()))
                .execute(&mut conn)
                .await
            {
                Ok(_) => defaults = set,
                Err(e) => tracing::debug!("client_connection_check_interval not set: {e}"),
            }
        }
        Ok(Worker {
            conn,
            pid,
            standard_strings: standard,
            table,
            schema: target.schema.clone(),
            reset: format!(
                "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET default_transaction_read_only; RESET default_transaction_isolation; RESET default_transaction_deferrable; RESET search_path; RESET standard_conforming_strings; UNLISTEN *; {defaults}"
            ),
            table_verified: false,
        })
    }

    /// Ends whatever transaction is open and returns the session to a known state; the
    /// connection may already be gone, which ends it too.
    pub(super) async fn rollback(&mut self) {
        let sql = format!("ROLLBACK; {}", self.reset);
        let _ = sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await;
    }

    /// Returns the session to a known state after a migration's statements.
    pub(super) async fn reset(&mut self) {
        let _ = sqlx::raw_sql(AssertSqlSafe(self.reset.clone()))
            .execute(&mut self.conn)
            .await;
    }

    pub(super) fn statements<'s>(&self, script: &'s str) -> Vec<Statement<'s>> {
        split_pg(script, self.standard_strings)
    }

    /// Whether the server has a transaction block open on this session: `SAVEPOINT` is
    /// refused outside one (25P01). It takes no snapshot, so a script's `SET TRANSACTION`
    /// after its `BEGIN` still works.
    pub(super) async fn transaction_open(&mut self) -> bool {
        sqlx::raw_sql("SAVEPOINT migrator_probe; RELEASE SAVEPOINT migrator_probe")
            .execute(&mut self.conn)
            .await
            .is_ok()
    }

    /// Runs a script's statements one by one (the migration cannot be one transaction),
    /// under our lock timeout if one is set; the session's own value comes back after.
    pub(super) async fn run_each_statement(
        &mut self,
        script: &str,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure> {
        self.table_verified = false;
        let ours = limits
            .lock_timeout
            .map(|t| format!("{}ms", t.as_millis().max(1)));
        let mut before = None;
        if let Some(ours) = &ours {
            let read = sqlx::query_scalar::<_, String>("SELECT current_setting('lock_timeout')")
                .fetch_one(&mut self.conn)
                .await;
            let set = match read {
                Ok(value) => {
                    before = Some(value);
                    sqlx::query("SELECT set_config('lock_timeout', $1, false)")
                        .bind(ours)
                        .execute(&mut self.conn)
                        .await
                        .map(|_| ())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = set {
                return Err(script_failure(&e, script, limits));
            }
        }
        let statements = self.statements(script);
        let result = match leaves_transaction(&statements) {
            Some(Leaves::OwnTransactions(_)) => self.run_in_blocks(statements, limits).await,
            _ => {
                let statements = statements.into_iter().filter(|s| !s.is_blank()).collect();
                one_by_one(self, statements, Commits::new(false), limits).await
            }
        };
        // Our lock timeout off again, unless the script set its own.
        if let (Some(ours), Some(before)) = (ours, before) {
            let _ = sqlx::query(
                "SELECT set_config('lock_timeout', $1, false) WHERE current_setting('lock_timeout') = $2",
            )
            .bind(before)
            .bind(ours)
            .execute(&mut self.conn)
            .await;
        }
        self.reset().await;
        result
    }

    /// A script whose only transaction statements are its own, run the way Prisma's single
    /// simple-query message runs it: statements before its `BEGIN` belong to that
    /// transaction, everything up to a `COMMIT` stands or falls together, and statements
    /// after its last `COMMIT` are one more all-or-nothing group. Run one by one inside such
    /// groups; after each statement the server says whether a transaction is still open, so
    /// a `COMMIT AND CHAIN`, a `ROLLBACK … TO SAVEPOINT` or a COMMIT the splitter could not
    /// see is judged by the server.
    pub(super) async fn run_in_blocks(
        &mut self,
        statements: Vec<Statement<'_>>,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure> {
        self.table_verified = false;
        let mut number = 0;
        let mut committed: Vec<usize> = Vec::new();
        let mut group: Vec<usize> = Vec::new();
        let mut opened: Option<FailedStatement> = None;
        let mut group_open = false;
        // The transaction open now was started by the script's `… AND CHAIN`.
        let mut chained = false;
        for statement in statements {
            if statement.is_blank() {
                continue;
            }
            number += 1;
            let words = statement.keywords(5);
            let first = words.first().map(String::as_str);
            let to_savepoint = words.iter().any(|w| w == "TO");
            if !group_open {
                // The group a single message would run in (a script's BEGIN inside it only
                // warns that a transaction is already open, as it does there).
                if let Err(e) = sqlx::raw_sql("BEGIN").execute(&mut self.conn).await {
                    let mut failure = script_failure(&e, statement.text, limits);
                    failure.committed = committed;
                    return Err(failure);
                }
                group_open = true;
            }
            if let Err(e) = self.execute(statement.text).await {
                self.rollback().await;
                let mut failure = script_failure(&e, statement.text, limits);
                failure.statement = Some(failed_statement(number, &statement));
                failure.committed = committed;
                return Err(failure);
            }
            group.push(number);
            let commit =
                matches!(first, Some("COMMIT" | "END")) && !words.iter().any(|w| w == "PREPARED");
            let rollback = matches!(first, Some("ROLLBACK" | "ABORT")) && !to_savepoint;
            if matches!(first, Some("BEGIN" | "START")) && opened.is_none() {
                opened = Some(failed_statement(number, &statement));
            }
            if commit {
                committed.append(&mut group);
            } else if rollback {
                group.clear();
                committed.push(number);
            }
            let open = self.transaction_open().await;
            if !open {
                // The server has no transaction open: what ran is committed (a COMMIT the
                // splitter could not see as one commits it just the same).
                committed.append(&mut group);
                committed.sort_unstable();
                group_open = false;
                opened = None;
                chained = false;
            } else if commit || rollback {
                // AND CHAIN: the transaction open now is the script's own.
                opened = Some(failed_statement(number, &statement));
                chained = true;
            }
        }
        if chained && group.is_empty() {
            // A trailing `COMMIT AND CHAIN` / `ROLLBACK AND CHAIN` left an empty transaction:
            // nothing is in it, so ending it loses nothing.
            self.rollback().await;
            return Ok(number);
        }
        if let Some(begin) = opened.filter(|_| group_open) {
            self.rollback().await;
            let mut failure = left_open_failure(committed);
            failure.statement = Some(begin);
            return Err(failure);
        }
        if group_open && let Err(e) = sqlx::raw_sql("COMMIT").execute(&mut self.conn).await {
            self.rollback().await;
            let mut failure = script_failure(&e, "", limits);
            failure.note = Some(AT_COMMIT_NOTE.into());
            failure.committed = committed;
            return Err(failure);
        }
        Ok(number)
    }
}

#[async_trait]
impl OneByOne for Worker {
    /// A notification the script made the server deliver to this session (`LISTEN x;
    /// NOTIFY x`) arrives after its statement completed; the statement stands, and the session
    /// stops listening.
    async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error> {
        match sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
            .execute(&mut self.conn)
            .await
        {
            Err(sqlx::Error::Protocol(message)) if message.contains("NotificationResponse") => {
                tracing::debug!("a notification reached the working session: {message}");
                let _ = sqlx::raw_sql("UNLISTEN *").execute(&mut self.conn).await;
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    fn failure(&self, error: &sqlx::Error, text: &str, limits: StatementLimits) -> ScriptFailure {
        script_failure(error, text, limits)
    }

    /// A script that opened its own transaction leaves it aborted.
    async fn end_own_transaction(&mut self) {
        self.rollback().await;
    }

    async fn in_transaction(&mut self) -> Option<bool> {
        Some(self.transaction_open().await)
    }

    async fn left_open(&mut self, _commits: &Commits) -> bool {
        let open = self.transaction_open().await;
        if open {
            self.rollback().await;
        }
        open
    }
}

pub(super) fn failed_statement(number: usize, statement: &Statement<'_>) -> FailedStatement {
    FailedStatement {
        number,
        line: statement.line,
        text: statement.trimmed().to_string(),
    }
}
