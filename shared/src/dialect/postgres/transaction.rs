//! The one-transaction apply on the working session: the started row, the script, then the
//! finishing block that asks the server whether the transaction is still ours and whether
//! `_prisma_migrations` is still Prisma's table before it writes the finished row and commits.

use sqlx::Either;

use super::*;

/// What the logs say when a script committed the migrator's transaction itself.
pub(super) const ENDED_NOTE: &str = "The script ended the migrator's transaction itself (a COMMIT inside it that the migrator could not see as one): what ran up to that COMMIT is committed, together with this migration's row.";

/// What the logs say when a script ended the migrator's transaction and opened another.
pub(super) const CHAINED_NOTE: &str = "The script ended the migrator's transaction itself and left another one open (`COMMIT AND CHAIN`, `ROLLBACK AND CHAIN`, or a `BEGIN` the migrator could not see): the migrator rolled that open transaction back.";

/// What the logs say when the error came at COMMIT.
pub(super) const AT_COMMIT_NOTE: &str = "The error came when the migrator committed the migration's transaction (a deferred constraint, a serialization failure …): the transaction was rolled back.";

/// Where our statements end and the script begins in the message that carries both (what
/// `pg_stat_activity` shows; the progress lines show what follows it).
pub(super) const SCRIPT_FOLLOWS: &str = "/* migrator: the migration's script follows */";

/// SQLSTATEs our own finishing block raises (class `MG` is not used by PostgreSQL).
pub(super) const ENDED_BY_SCRIPT: &str = "MGR01";
pub(super) const LEFT_OPEN_BY_SCRIPT: &str = "MGR02";
pub(super) const ROW_GONE: &str = "MGR03";
pub(super) const READ_ONLY: &str = "MGR04";
pub(super) const TABLE_CHANGED: &str = "MGR05";

/// Why a script cannot run in the migrator's one transaction.
pub(super) enum Leaves {
    /// A statement PostgreSQL refuses in a transaction block (`CREATE INDEX CONCURRENTLY` …).
    Statement(String),
    /// Only the script's own `BEGIN` / `COMMIT` / `ROLLBACK`.
    OwnTransactions(String),
}

/// Whether (and why) `statements` cannot run in the migrator's one transaction.
pub(super) fn leaves_transaction(statements: &[Statement<'_>]) -> Option<Leaves> {
    let mut own = None;
    for statement in statements {
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

/// Whether the script's first statement is `SET TRANSACTION …`, which must be the first
/// statement of its transaction (then our row is written at the end, not at the start).
pub(super) fn leads_with_set_transaction(statements: &[Statement<'_>]) -> bool {
    statements
        .iter()
        .find(|s| !s.is_blank())
        .is_some_and(|s| s.keywords(2) == ["SET", "TRANSACTION"])
}

/// How a transactional apply ended on the working session.
pub(super) enum Finished {
    /// Committed with its finished row.
    Done,
    /// Every statement ran, but the script ended the migrator's transaction itself: its row
    /// is written by the supervisor.
    EndedByScript,
}

/// The checks and the write of the finishing block, in PL/pgSQL: the transaction is still
/// ours (`still_ours`), it is not read-only, `_prisma_migrations` is still the permanent base
/// table of `schema` with Prisma's defaults and nullability and no trigger or rule, then
/// `write` (which must touch exactly one row).
///
/// `table_oid` is the relation the transaction wrote its started row into, read by the server
/// in the same transaction before the script ran; it is given only when the previous
/// transaction on this session passed every check ([`Worker::table_verified`]), so the table
/// was intact when this one began. When the same name still resolves to that
/// relation and this transaction holds no lock on it stronger than a row write's
/// (`RowExclusiveLock`), the script altered nothing of it: every `ALTER TABLE`, `CREATE
/// TRIGGER`, `CREATE RULE`, `DROP`, `RENAME`, `TRUNCATE` or `CREATE POLICY` on a table takes a
/// stronger lock, held until the transaction ends, so the catalog checks are skipped (they cost
/// the server about a millisecond of planning per migration). Otherwise, or with no `table_oid`,
/// every check runs.
pub(super) fn finishing_block(
    still_ours: &str,
    schema: &str,
    table: &str,
    table_oid: Option<i64>,
    write: &str,
) -> String {
    let qualified = literal(table);
    let schema = literal(schema);
    let untouched = match table_oid {
        Some(oid) => format!(
            "to_regclass({qualified}) IS NOT DISTINCT FROM {oid}::oid::regclass AND NOT EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation' AND relation = {oid}::oid AND mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock'))"
        ),
        None => "false".to_owned(),
    };
    format!(
        "DECLARE t oid; found_name text; c record; n int := 0; expected text; \
BEGIN \
IF NOT ({still_ours}) THEN \
  IF now() = statement_timestamp() THEN RAISE EXCEPTION 'the script ended the transaction' USING ERRCODE = '{ENDED_BY_SCRIPT}'; END IF; \
  RAISE EXCEPTION 'the script left a transaction open' USING ERRCODE = '{LEFT_OPEN_BY_SCRIPT}'; \
END IF; \
IF current_setting('transaction_read_only') = 'on' THEN RAISE EXCEPTION 'the script made the migrator''s transaction read-only (SET TRANSACTION READ ONLY)' USING ERRCODE = '{READ_ONLY}'; END IF; \
IF NOT ({untouched}) THEN \
SELECT cl.oid INTO t FROM pg_class cl JOIN pg_namespace ns ON ns.oid = cl.relnamespace WHERE ns.nspname = {schema} AND cl.relname = '_prisma_migrations'; \
IF t IS NULL THEN RAISE EXCEPTION '_prisma_migrations no longer exists in schema % (the script dropped, renamed or moved it)', {schema} USING ERRCODE = '{TABLE_CHANGED}'; END IF; \
IF (SELECT relkind FROM pg_class WHERE oid = t) <> 'r' THEN RAISE EXCEPTION '_prisma_migrations is no longer a table (the script replaced it with a % relation: a view or the like)', (SELECT relkind FROM pg_class WHERE oid = t) USING ERRCODE = '{TABLE_CHANGED}'; END IF; \
IF (SELECT relpersistence FROM pg_class WHERE oid = t) <> 'p' THEN RAISE EXCEPTION '_prisma_migrations is no longer a permanent table (UNLOGGED or the like)' USING ERRCODE = '{TABLE_CHANGED}'; END IF; \
SELECT tgname INTO found_name FROM pg_trigger WHERE tgrelid = t AND NOT tgisinternal LIMIT 1; \
IF found_name IS NOT NULL THEN RAISE EXCEPTION 'a trigger on _prisma_migrations: %', found_name USING ERRCODE = '{TABLE_CHANGED}'; END IF; \
SELECT rulename INTO found_name FROM pg_rewrite WHERE ev_class = t LIMIT 1; \
IF found_name IS NOT NULL THEN RAISE EXCEPTION 'a rule on _prisma_migrations: %', found_name USING ERRCODE = '{TABLE_CHANGED}'; END IF; \
FOR c IN SELECT a.attname::text AS name, a.attnotnull AS not_null, coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS def FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = t AND a.attnum > 0 AND NOT a.attisdropped AND a.attname IN ('id', 'checksum', 'finished_at', 'migration_name', 'logs', 'rolled_back_at', 'started_at', 'applied_steps_count') LOOP \
  n := n + 1; \
  expected := CASE c.name WHEN 'started_at' THEN 'now()' WHEN 'applied_steps_count' THEN '0' ELSE '' END; \
  IF c.def <> expected THEN \
    RAISE EXCEPTION 'the default of %.% was changed (to %)', '_prisma_migrations', c.name, c.def USING ERRCODE = '{TABLE_CHANGED}'; END IF; \
  IF c.not_null <> (c.name NOT IN ('finished_at', 'logs', 'rolled_back_at')) THEN \
    RAISE EXCEPTION 'the nullability of %.% was changed', '_prisma_migrations', c.name USING ERRCODE = '{TABLE_CHANGED}'; END IF; \
END LOOP; \
IF n <> 8 THEN RAISE EXCEPTION 'a column of _prisma_migrations was dropped or renamed' USING ERRCODE = '{TABLE_CHANGED}'; END IF; \
END IF; \
{write}; \
IF NOT FOUND THEN RAISE EXCEPTION 'the row is gone' USING ERRCODE = '{ROW_GONE}'; END IF; \
END"
    )
}

impl Worker {
    /// The migration and its row in one transaction, in two round trips: the transaction
    /// opened with the started row followed by the script, in one message ([`Ran`] says which
    /// part failed); the finishing block and COMMIT. A script whose first statement is `SET
    /// TRANSACTION` runs first in the transaction (a third round trip) and its row is
    /// inserted, finished, at the end. The commit does not
    /// wait for the WAL flush: [`Dialect::flush`] makes it durable before an outcome says so.
    pub(super) async fn apply_in_transaction(
        &mut self,
        m: &Migrating<'_>,
        leads_with_set_transaction: bool,
    ) -> Result<Finished, TransactionError> {
        let Migrating {
            row,
            script,
            limits,
            clock,
        } = *m;
        let lock = match limits.lock_timeout {
            Some(t) => format!("SET LOCAL lock_timeout = '{}ms'", t.as_millis().max(1)),
            None => String::new(),
        };
        let table = self.table.clone();
        let insert = |finished: Option<DateTime<Utc>>| {
            format!(
                "INSERT INTO {} (id, checksum, started_at, migration_name, finished_at, applied_steps_count) VALUES ({}, {}, {}, {}, {}, {})",
                table,
                literal(&row.id),
                literal(&row.checksum),
                timestamp(row.started_at),
                literal(&row.migration_name),
                finished.map_or("NULL".into(), timestamp),
                u8::from(finished.is_some()),
            )
        };
        // The lock-based proof holds only from a transaction that passed every check.
        let verified = std::mem::replace(&mut self.table_verified, false);
        let (still_ours, table_oid) = if leads_with_set_transaction {
            // Nothing that takes a snapshot may precede the script's SET TRANSACTION: the
            // transaction is marked with a setting that ends with it (even AND CHAIN).
            let begin = format!(
                "BEGIN; SET LOCAL migrator.transaction = {}; SET LOCAL synchronous_commit = off; {lock};",
                literal(&row.id)
            );
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(begin))
                .execute(&mut self.conn)
                .await
            {
                self.rollback().await;
                return Err(TransactionError::Bookkeeping(EngineError::database(
                    "opening the migration's transaction",
                )(e)));
            }
            (
                format!(
                    "current_setting('migrator.transaction', true) IS NOT DISTINCT FROM {}",
                    literal(&row.id)
                ),
                None,
            )
        } else {
            // One message: our transaction and row, then the script (one round trip). Our
            // row is written under no statement timeout (a setting an earlier script left),
            // then the script gets the session's own value back.
            let ours = [
                "BEGIN".to_string(),
                "SELECT set_config('migrator.statement_timeout', current_setting('statement_timeout'), true)".into(),
                "SET LOCAL statement_timeout = 0".into(),
                "SET LOCAL synchronous_commit = off".into(),
                lock,
                insert(None),
                format!("SELECT txid_current(), to_regclass({})::oid::bigint, set_config('statement_timeout', current_setting('migrator.statement_timeout'), true)", literal(&self.table)),
            ];
            let ours: Vec<String> = ours.into_iter().filter(|s| !s.is_empty()).collect();
            let prefix = format!("{}; {SCRIPT_FOLLOWS}\n", ours.join("; "));
            match self.run_after(&prefix, ours.len(), script).await {
                Ok((xid, oid)) => (
                    format!("txid_current_if_assigned() IS NOT DISTINCT FROM {xid}"),
                    oid.filter(|_| verified),
                ),
                Err(Ran::Ours(e)) => {
                    self.rollback().await;
                    return Err(TransactionError::Bookkeeping(EngineError::database(
                        "recording the migration start",
                    )(e)));
                }
                Err(Ran::Script(e)) => {
                    self.rollback().await;
                    let skip = prefix.chars().count();
                    let mut failure = script_failure_after(&e, script, skip);
                    // The server's position names the statement (relative to the script).
                    failure.statement =
                        replay::statement_at(&self.statements(script), script, &e, skip);
                    // The supervisor reads whether the row stayed (a COMMIT the script hid).
                    failure.rolled_back = true;
                    return Err(TransactionError::Script(failure));
                }
            }
        };
        if leads_with_set_transaction
            && let Err(e) = sqlx::raw_sql(AssertSqlSafe(script.to_owned()))
                .execute(&mut self.conn)
                .await
        {
            self.rollback().await;
            let mut failure = script_failure(&e, script, limits);
            // The server's position names the statement (relative to the script alone).
            failure.statement = replay::statement_at(&self.statements(script), script, &e, 0);
            // The supervisor reads whether the row stayed (a COMMIT the script hid).
            failure.rolled_back = true;
            return Err(TransactionError::Script(failure));
        }
        let write = if leads_with_set_transaction {
            insert(Some(clock.now()))
        } else {
            format!(
                "UPDATE {} SET applied_steps_count = applied_steps_count + 1, finished_at = {} WHERE id = {}",
                self.table,
                timestamp(clock.now()),
                literal(&row.id),
            )
        };
        tracing::debug!(
            migration = %row.migration_name,
            catalog_checks = if table_oid.is_some() { "lock-based proof" } else { "full" },
            "finishing the migration's transaction"
        );
        // The session is returned to the login user, read-write defaults and no LISTEN before
        // the checks and the write (a NOTIFY the script sent is then not delivered to us).
        let finish = format!(
            "{}SET LOCAL statement_timeout = 0; SET LOCAL synchronous_commit = off; DO {}; COMMIT;",
            self.reset,
            literal(&finishing_block(
                &still_ours,
                &self.schema,
                &self.table,
                table_oid,
                &write
            ))
        );
        match sqlx::raw_sql(AssertSqlSafe(finish))
            .execute(&mut self.conn)
            .await
        {
            Ok(_) => {
                self.table_verified = true;
                Ok(Finished::Done)
            }
            Err(e) => {
                self.rollback().await;
                let (code, message) = match &e {
                    sqlx::Error::Database(db) => {
                        (db.code().map(|c| c.to_string()), db.message().to_string())
                    }
                    _ => (None, String::new()),
                };
                match code.as_deref() {
                    Some(ENDED_BY_SCRIPT) => Ok(Finished::EndedByScript),
                    Some(LEFT_OPEN_BY_SCRIPT) => Err(TransactionError::Script(ScriptFailure {
                        note: Some(CHAINED_NOTE.into()),
                        ..left_open_failure(Vec::new())
                    })),
                    Some(ROW_GONE) => Err(TransactionError::Bookkeeping(EngineError::RowMissing {
                        what: format!(
                            "it deleted its own row from {} (DELETE or TRUNCATE)",
                            self.table
                        ),
                    })),
                    Some(READ_ONLY | TABLE_CHANGED) => {
                        Err(TransactionError::Bookkeeping(EngineError::RowMissing {
                            what: message,
                        }))
                    }
                    Some(_) => {
                        // The script's own doing, found at COMMIT: P3018 for this migration.
                        let mut failure = script_failure(&e, "", limits);
                        failure.rolled_back = true;
                        failure.note = Some(AT_COMMIT_NOTE.into());
                        Err(TransactionError::Script(failure))
                    }
                    None => Err(TransactionError::Bookkeeping(EngineError::database(
                        "committing the migration",
                    )(e))),
                }
            }
        }
    }
}

/// Which part of a message ending in the script failed.
pub(super) enum Ran {
    /// One of our statements before the script.
    Ours(sqlx::Error),
    /// The script (or, for a syntax error, the server's parse of it: nothing ran).
    Script(sqlx::Error),
}

impl Worker {
    /// Sends `prefix` (`count` statements of ours, the last returning the transaction id and
    /// the oid of `_prisma_migrations`)
    /// and the script as one simple-query message, and tells from the results which part
    /// failed: each statement answers once (CommandComplete), so an error after our `count`
    /// answers is the script's; a parse error (nothing runs) is placed by its position.
    async fn run_after(
        &mut self,
        prefix: &str,
        count: usize,
        script: &str,
    ) -> Result<(i64, Option<i64>), Ran> {
        let message = format!("{prefix}{script}");
        let skip = prefix.chars().count();
        let mut stream = sqlx::raw_sql(AssertSqlSafe(message)).fetch_many(&mut self.conn);
        let mut answered = 0;
        let mut xid = None;
        let failed = loop {
            match std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                None => break None,
                Some(Ok(Either::Left(_))) => answered += 1,
                Some(Ok(Either::Right(row))) => {
                    if answered + 1 == count && xid.is_none() {
                        xid = row
                            .try_get::<i64, _>(0)
                            .ok()
                            .map(|x| (x, row.try_get::<Option<i64>, _>(1).ok().flatten()));
                    }
                }
                Some(Err(e)) => break Some(e),
            }
        };
        drop(stream);
        match failed {
            Some(e) => {
                let position =
                    match &e {
                        sqlx::Error::Database(db) => db
                            .try_downcast_ref::<PgDatabaseError>()
                            .and_then(|pg| match pg.position() {
                                Some(PgErrorPosition::Original(p)) => Some(p),
                                _ => None,
                            }),
                        _ => None,
                    };
                let ours = match position {
                    Some(p) => p <= skip,
                    None => answered < count,
                };
                Err(if ours { Ran::Ours(e) } else { Ran::Script(e) })
            }
            None => xid.ok_or(Ran::Ours(sqlx::Error::RowNotFound)),
        }
    }
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
        // `ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] s` stays inside the transaction (the
        // server says afterwards that it is still ours), like `SAVEPOINT` and `RELEASE`.
        ["ROLLBACK", ..] if words.iter().any(|w| w == "TO") => None,
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
            non_transactional_reason(&words(&["ROLLBACK", "WORK", "TO", "SAVEPOINT"]), "")
                .is_none()
        );
        assert!(non_transactional_reason(&words(&["ROLLBACK", "AND", "CHAIN"]), "").is_some());
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
