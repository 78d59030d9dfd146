//! Naming the failed statement on PostgreSQL when the server gives no position (a
//! `CREATE INDEX` on a missing column): the server's position when it gives one, else a
//! replay of the statements in a transaction that is rolled back (see `dialect::replay`),
//! on the working session and under the supervisor's deadline.

use std::time::Instant;

use super::*;
use crate::dialect::replay::{self, Replay, Replayed, named_in};

/// Functions whose effect a rollback does not undo (a sequence advanced, a lock or a
/// connection elsewhere, a file, a signal to another session): a script naming one is not
/// replayed. A sequence a column default advances (`serial`, identity) is not named and is
/// advanced again, like by any transaction that is rolled back.
const NOT_UNDONE: [&str; 21] = [
    "nextval",
    "setval",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_drop_replication_slot",
    "pg_logical_emit_message",
    "pg_file_write",
    "lo_import",
    "lo_export",
    "http",
    "http_get",
    "http_post",
    "http_put",
    "http_delete",
    "http_patch",
];
const NOT_UNDONE_PREFIXES: [&str; 4] =
    ["pg_advisory", "pg_try_advisory", "dblink", "pg_stat_reset"];

/// Why `statements` must not run a second time, if they must not: a function whose effect a
/// rollback does not undo, `COPY` (files, programs), `PREPARE` (a session object that
/// outlives the transaction).
pub(super) fn replay_refused(script: &str, statements: &[Statement<'_>]) -> Option<String> {
    if let Some(word) = named_in(script, &NOT_UNDONE, &NOT_UNDONE_PREFIXES) {
        return Some(format!(
            "the script calls `{word}`, whose effect a rollback does not undo, so it is not run again"
        ));
    }
    statements.iter().find_map(|s| {
        let first = s.keywords(1);
        match first.first().map(String::as_str) {
            Some(w @ ("COPY" | "PREPARE")) => Some(format!(
                "the script holds `{w}`, whose effect a rollback does not undo, so it is not run again"
            )),
            _ => None,
        }
    })
}

/// The statement holding the server's error position (1-based characters of the script).
pub(super) fn statement_at(
    statements: &[Statement<'_>],
    script: &str,
    error: &sqlx::Error,
    skip: usize,
) -> Option<FailedStatement> {
    let sqlx::Error::Database(db) = error else {
        return None;
    };
    let Some(PgErrorPosition::Original(position)) =
        db.try_downcast_ref::<PgDatabaseError>()?.position()
    else {
        return None;
    };
    let byte = script
        .char_indices()
        .nth(position.checked_sub(skip + 1)?)
        .map(|(i, _)| i)?;
    statements
        .iter()
        .filter(|s| !s.is_blank())
        .enumerate()
        .find(|(_, s)| s.offset <= byte && byte < s.offset + s.text.len())
        .map(|(i, s)| worker::failed_statement(i + 1, s))
}

/// The working session replaying a script.
struct Replaying<'a> {
    worker: &'a mut Worker,
    lock_timeout: Option<Duration>,
}

#[async_trait]
impl Replay for Replaying<'_> {
    async fn transaction_open(&mut self) -> bool {
        self.worker.transaction_open().await
    }

    /// The replay's statements are bounded by the server too (`SET LOCAL`, gone with the
    /// rollback); a script's own `SET statement_timeout = 0` is kept in check by the
    /// supervisor's deadline.
    async fn begin(&mut self, budget: Duration) -> Result<(), sqlx::Error> {
        let ms = budget.as_millis().max(1);
        let lock = self.lock_timeout.map_or(ms, |t| t.as_millis().clamp(1, ms));
        let sql = format!(
            "BEGIN; SET LOCAL statement_timeout = '{ms}ms'; SET LOCAL lock_timeout = '{lock}ms'"
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut self.worker.conn)
            .await
            .map(|_| ())
    }

    async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error> {
        OneByOne::execute(self.worker, statement).await
    }

    fn said(&self, error: &sqlx::Error, statement: &str) -> ScriptFailure {
        script_failure(error, statement, StatementLimits::default())
    }

    async fn rollback(&mut self) {
        self.worker.rollback().await;
    }
}

impl Postgres {
    /// Names the statement of a failed one-transaction migration the server did not name:
    /// when its transaction rolled back (the supervisor read no row, nothing cancelled it),
    /// the script may run again (see [`replay_refused`]) and time is left, its statements
    /// run again in a transaction that is rolled back, under the supervisor.
    pub(super) async fn name_failed_statement(
        &mut self,
        m: &Migrating<'_>,
        failure: &mut ScriptFailure,
        took: Duration,
    ) {
        let statements = self.statements(m.script);
        if let Some(why) = replay_refused(m.script, &statements) {
            return replay::report(failure, Replayed::NotIdentified(why));
        }
        let Some(budget) = replay::budget(took, m.limits.deadline) else {
            return replay::report(
                failure,
                Replayed::NotIdentified("no time was left before the run's deadline".into()),
            );
        };
        let mut w = match self.take_worker().await {
            Ok(w) => w,
            Err(e) => {
                return replay::report(
                    failure,
                    Replayed::NotIdentified(format!("the working session could not open ({e})")),
                );
            }
        };
        let pid = i64::from(w.pid);
        let until = Instant::now() + budget;
        let deadline = Some(m.limits.deadline.map_or(until, |d| d.min(until)));
        let original = failure.clone();
        let work = async {
            let mut session = Replaying {
                worker: &mut w,
                lock_timeout: m.limits.lock_timeout,
            };
            replay::replay(&mut session, &statements, &original, budget).await
        };
        let (replayed, watched) = supervise(
            work,
            &mut PgSupervisor(&mut self.conn),
            pid,
            deadline,
            &m.row.migration_name,
        )
        .await;
        if !watched.terminated {
            self.worker = Some(w);
        }
        let replayed = match watched.cancelled {
            true => {
                Replayed::NotIdentified("the replay was cancelled when its time ran out".into())
            }
            false => replayed,
        };
        tracing::debug!(migration = %m.row.migration_name, "replay: {replayed:?}");
        replay::report(failure, replayed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_a_rollback_does_not_undo_are_not_replayed() {
        for script in [
            "SELECT setval('s', 5);",
            "INSERT INTO t VALUES (nextval('s'));",
            "SELECT pg_advisory_xact_lock(1);",
            "SELECT dblink_exec('db', 'x');",
            "COPY t TO '/tmp/x';",
            "PREPARE q AS SELECT 1;",
        ] {
            let statements = split_pg(script, true);
            assert!(replay_refused(script, &statements).is_some(), "{script}");
        }
        let script = "CREATE TABLE t (id serial);\nCREATE INDEX i ON t (missing);";
        assert!(replay_refused(script, &split_pg(script, true)).is_none());
    }
}
