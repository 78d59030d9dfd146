//! The one-transaction apply (the started row, the script, the finishing block that checks the
//! script left our transaction alone) and what keeps a script out of a transaction.

use super::*;

/// What the logs say when a script committed the migrator's transaction itself.
pub(super) const ENDED_NOTE: &str = "The script ended the migrator's transaction itself (a COMMIT inside it that the migrator could not see as one): what ran up to that COMMIT is committed, together with this migration's row.";

/// Why a script cannot run in the migrator's one transaction.
pub(super) enum Leaves {
    /// A statement PostgreSQL refuses in a transaction block (`CREATE INDEX CONCURRENTLY` …).
    Statement(String),
    /// Only the script's own `BEGIN` / `COMMIT` / `ROLLBACK`.
    OwnTransactions(String),
}

impl Postgres {
    pub(super) fn leaves_transaction(&self, script: &str) -> Option<Leaves> {
        let mut own = None;
        for statement in self.statements(script) {
            if statement.is_blank() {
                continue;
            }
            let words = statement.keywords(6);
            let Some(reason) = non_transactional_reason(&words, statement.trimmed()) else {
                continue;
            };
            let plain_control = matches!(
                words.first().map(String::as_str),
                Some("BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT")
            );
            if !plain_control {
                return Some(Leaves::Statement(reason));
            }
            own.get_or_insert(reason);
        }
        own.map(Leaves::OwnTransactions)
    }

    /// A script whose only transaction statements are its own, run the way Prisma's single
    /// simple-query message runs it: statements before its `BEGIN` belong to that
    /// transaction, everything up to a `COMMIT` stands or falls together, and statements
    /// after its last `COMMIT` are one more all-or-nothing group. Run one by one inside such
    /// groups, a failure names its statement and exactly what was committed.
    pub(super) async fn run_in_blocks(
        &mut self,
        script: &str,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure> {
        let mut number = 0;
        let mut committed: Vec<usize> = Vec::new();
        let mut group: Vec<usize> = Vec::new();
        let mut opened: Option<FailedStatement> = None;
        let mut group_open = false;
        for statement in self.statements(script) {
            if statement.is_blank() {
                continue;
            }
            number += 1;
            let words = statement.keywords(2);
            let first = words.first().map(String::as_str);
            let to_savepoint = words.get(1).map(String::as_str) == Some("TO");
            if !group_open {
                // The group a single message would run in (a script's BEGIN inside it only
                // warns that a transaction is already open, as it does there).
                if let Err(e) = sqlx::raw_sql("BEGIN").execute(&mut self.conn).await {
                    let mut failure = script_failure(&e, script, limits);
                    failure.committed = committed;
                    return Err(failure);
                }
                group_open = true;
            }
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(statement.text.to_owned()))
                .execute(&mut self.conn)
                .await
            {
                self.rollback().await;
                let mut failure = script_failure(&e, statement.text, limits);
                failure.statement = Some(failed_statement(number, &statement));
                failure.committed = committed;
                return Err(failure);
            }
            group.push(number);
            match first {
                Some("BEGIN" | "START") if opened.is_none() => {
                    opened = Some(failed_statement(number, &statement));
                }
                Some("COMMIT" | "END") => {
                    committed.append(&mut group);
                    opened = None;
                    group_open = false;
                }
                Some("ROLLBACK" | "ABORT") if !to_savepoint => {
                    group.clear();
                    committed.push(number);
                    opened = None;
                    group_open = false;
                }
                _ => {}
            }
        }
        if let Some(begin) = opened {
            self.rollback().await;
            let mut failure = left_open_failure(committed);
            failure.statement = Some(begin);
            return Err(failure);
        }
        if group_open && let Err(e) = sqlx::raw_sql("COMMIT").execute(&mut self.conn).await {
            self.rollback().await;
            let mut failure = script_failure(&e, script, limits);
            failure.committed = committed;
            return Err(failure);
        }
        Ok(number)
    }
}

pub(super) fn failed_statement(number: usize, statement: &Statement<'_>) -> FailedStatement {
    FailedStatement {
        number,
        line: statement.line,
        text: statement.trimmed().to_string(),
    }
}

impl Postgres {
    pub(super) async fn apply_in_transaction(
        &mut self,
        m: &Migrating<'_>,
    ) -> Result<(), TransactionError> {
        let Migrating {
            row,
            script,
            limits,
            clock,
        } = *m;
        // Three round trips: open the transaction with its limits and the started row; the
        // script alone (so error positions are the script's); the finished row and COMMIT.
        // The commit does not wait for the WAL flush: the migration and its row stand or fall
        // together, and `flush` makes them durable before any outcome reports them.
        let begin = format!(
            "BEGIN; SET LOCAL synchronous_commit = off; {}INSERT INTO {} (id, checksum, started_at, migration_name) VALUES ({}, {}, {}, {}); SELECT txid_current();",
            set_limits("SET LOCAL", limits),
            self.sql.table(),
            literal(&row.id),
            literal(&row.checksum),
            timestamp(row.started_at),
            literal(&row.migration_name),
        );
        let xid: i64 = match sqlx::raw_sql(AssertSqlSafe(begin))
            .fetch_all(&mut self.conn)
            .await
            .and_then(|rows| match rows.last() {
                Some(row) => row.try_get(0),
                None => Err(sqlx::Error::RowNotFound),
            }) {
            Ok(xid) => xid,
            Err(e) => {
                self.rollback().await;
                return Err(TransactionError::Bookkeeping(EngineError::database(
                    "recording the migration start",
                )(e)));
            }
        };
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(script.to_owned()))
            .execute(&mut self.conn)
            .await
        {
            self.rollback().await;
            let mut failure = script_failure(&e, script, limits);
            if self.row_committed(&row.id).await {
                // The script committed our transaction itself (a COMMIT the splitter did
                // not see as one): what ran before it stays, as it would with Prisma.
                failure.row_recorded = true;
                failure.note = Some(ENDED_NOTE.into());
            } else {
                failure.rolled_back = true;
            }
            return Err(TransactionError::Script(failure));
        }
        // Finish only if the transaction is still the one we opened and our row is still
        // there; all under our own settings, whatever the script set.
        let body = format!(
            "BEGIN IF txid_current_if_assigned() IS DISTINCT FROM {xid} THEN IF now() = statement_timestamp() THEN RAISE EXCEPTION 'the script ended the transaction' USING ERRCODE = '{ENDED_BY_SCRIPT}'; END IF; RAISE EXCEPTION 'the script left a transaction open' USING ERRCODE = '{LEFT_OPEN_BY_SCRIPT}'; END IF; UPDATE {} SET applied_steps_count = applied_steps_count + 1, finished_at = {} WHERE id = {}; IF NOT FOUND THEN RAISE EXCEPTION 'the row is gone' USING ERRCODE = '{ROW_GONE}'; END IF; END",
            self.sql.table(),
            timestamp(clock.now()),
            literal(&row.id),
        );
        let finish = format!(
            "{}SET LOCAL synchronous_commit = off; {}DO {}; COMMIT;",
            self.reset_sql(),
            set_limits("SET LOCAL", limits),
            literal(&body)
        );
        match sqlx::raw_sql(AssertSqlSafe(finish))
            .execute(&mut self.conn)
            .await
        {
            Ok(_) => {
                self.unflushed = true;
                Ok(())
            }
            Err(e) => {
                self.rollback().await;
                let code = match &e {
                    sqlx::Error::Database(db) => db.code().map(|c| c.to_string()),
                    _ => None,
                };
                match code.as_deref() {
                    Some(ENDED_BY_SCRIPT) => {
                        // Every statement ran and is committed (the part after the script's
                        // COMMIT in an implicit transaction of its own): record it as
                        // applied, as Prisma does, and say it was not atomic.
                        self.mark_finished(&row.id, clock.now())
                            .await
                            .map_err(|e| {
                                TransactionError::Bookkeeping(match e {
                                    // Its statements are committed: nothing was rolled back.
                                    EngineError::RowMissing { what } => EngineError::Bookkeeping {
                                        migration: row.migration_name.clone(),
                                        what,
                                        rolled_back: false,
                                    },
                                    other => other,
                                })
                            })?;
                        self.warnings.push(format!(
                            "Migration `{}` ended the migrator's transaction itself (a COMMIT inside the script): all its statements ran and are committed, but not as one transaction.",
                            row.migration_name
                        ));
                        Ok(())
                    }
                    Some(LEFT_OPEN_BY_SCRIPT) => Err(TransactionError::Script(ScriptFailure {
                        row_recorded: true,
                        note: Some(format!(
                            "{ENDED_NOTE} After it, the script opened a transaction it never committed; the migrator rolled that one back."
                        )),
                        ..left_open_failure(Vec::new())
                    })),
                    Some(ROW_GONE) => Err(TransactionError::Bookkeeping(EngineError::RowMissing {
                        what: format!(
                            "it deleted its own row from {} (DELETE or TRUNCATE)",
                            self.sql.table()
                        ),
                    })),
                    Some(UNDEFINED_TABLE) => {
                        Err(TransactionError::Bookkeeping(EngineError::RowMissing {
                            what: table_gone(self.sql.table(), Self::REMOVED_TABLE),
                        }))
                    }
                    _ => Err(TransactionError::Bookkeeping(EngineError::database(
                        "committing the migration",
                    )(e))),
                }
            }
        }
    }
}

/// `SET [LOCAL] statement_timeout …; SET [LOCAL] lock_timeout …;` for the limits given.
pub(super) fn set_limits(set: &str, limits: StatementLimits) -> String {
    let mut sql = String::new();
    if let Some(t) = limits.statement_timeout {
        sql.push_str(&format!(
            "{set} statement_timeout = '{}ms'; ",
            t.as_millis().max(1)
        ));
    }
    if let Some(t) = limits.lock_timeout {
        sql.push_str(&format!(
            "{set} lock_timeout = '{}ms'; ",
            t.as_millis().max(1)
        ));
    }
    sql
}

/// A string literal that means the same whatever `standard_conforming_strings` says: dollar
/// quoting with a tag the text does not contain.
pub(super) fn literal(text: &str) -> String {
    let mut tag = String::from("$m$");
    let mut n = 0;
    // The closing tag must first appear where we put it: not inside the text, nor
    // straddling its end.
    while format!("{text}{tag}").find(&tag) != Some(text.len()) {
        n += 1;
        tag = format!("$m{n}$");
    }
    format!("{tag}{text}{tag}")
}

/// A `timestamptz` literal with microseconds, in UTC.
pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    format!("'{}'::timestamptz", at.format("%Y-%m-%d %H:%M:%S%.6f+00"))
}

/// Why a statement cannot run inside a transaction block, if it cannot.
pub(super) fn non_transactional_reason(words: &[String], text: &str) -> Option<String> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let says = |what: &str| {
        Some(format!(
            "it holds `{what}`, which PostgreSQL cannot run inside a transaction block"
        ))
    };
    match w.as_slice() {
        ["CREATE", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => says("CREATE INDEX CONCURRENTLY"),
        ["DROP", "INDEX", "CONCURRENTLY", ..] => says("DROP INDEX CONCURRENTLY"),
        ["REINDEX", ..] if contains_word(text, "CONCURRENTLY") => says("REINDEX CONCURRENTLY"),
        ["REINDEX", "DATABASE" | "SYSTEM", ..] => says("REINDEX DATABASE"),
        ["VACUUM", ..] => says("VACUUM"),
        ["ALTER", "SYSTEM", ..] => says("ALTER SYSTEM"),
        ["CREATE" | "DROP", "DATABASE", ..] => says(&format!("{} DATABASE", w[0])),
        ["CREATE" | "DROP", "TABLESPACE", ..] => says(&format!("{} TABLESPACE", w[0])),
        ["CREATE" | "DROP", "SUBSCRIPTION", ..] => says(&format!("{} SUBSCRIPTION", w[0])),
        ["ALTER", "TABLE", ..]
            if contains_word(text, "DETACH") && contains_word(text, "CONCURRENTLY") =>
        {
            says("ALTER TABLE … DETACH PARTITION … CONCURRENTLY")
        }
        ["PREPARE", "TRANSACTION", ..] | ["COMMIT" | "ROLLBACK", "PREPARED", ..] => {
            transaction_control_reason(words)
        }
        ["PREPARE", ..] => None,
        _ => transaction_control_reason(words),
    }
}

pub(super) fn contains_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn concurrently_and_friends_leave_the_transaction() {
        for w in [
            &["CREATE", "INDEX", "CONCURRENTLY"][..],
            &["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"],
            &["DROP", "INDEX", "CONCURRENTLY"],
            &["VACUUM"],
            &["ALTER", "SYSTEM", "SET"],
            &["CREATE", "DATABASE"],
            &["COMMIT"],
            &["BEGIN"],
        ] {
            assert!(non_transactional_reason(&words(w), "").is_some(), "{w:?}");
        }
        assert!(
            non_transactional_reason(
                &words(&["REINDEX", "TABLE"]),
                "REINDEX TABLE CONCURRENTLY x"
            )
            .is_some()
        );
        assert!(non_transactional_reason(&words(&["CREATE", "INDEX", "x"]), "").is_none());
        assert!(non_transactional_reason(&words(&["PREPARE", "q"]), "").is_none());
        assert!(
            non_transactional_reason(
                &words(&["ALTER", "TABLE"]),
                "ALTER TABLE x ADD COLUMN y int"
            )
            .is_none()
        );
    }

    #[test]
    fn literals_survive_any_text() {
        assert_eq!(literal("20240101_init"), "$m$20240101_init$m$");
        assert_eq!(literal("a$m$b"), "$m1$a$m$b$m1$");
        assert_eq!(literal("ends with $m"), "$m1$ends with $m$m1$");
        assert_eq!(literal("it's"), "$m$it's$m$");
    }
}
