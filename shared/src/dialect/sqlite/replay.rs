//! Naming the failed statement on SQLite, which never gives a position: the statements run
//! again in a transaction that is rolled back (see `dialect::replay`), under the deadline's
//! progress handler. SQLite undoes everything a transaction did, schema included; only a
//! script loading an extension is not run again.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::AssertSqlSafe;

use super::deadline::Watch;
use super::{Sqlite, script_failure};
use crate::dialect::replay::{self, Replay, Replayed, named_in};
use crate::dialect::{Migrating, ScriptFailure};
use crate::sql::{Flavor, split};

#[async_trait]
impl Replay for Sqlite {
    async fn transaction_open(&mut self) -> bool {
        Sqlite::transaction_open(self).await
    }

    async fn begin(&mut self, _budget: Duration) -> Result<(), sqlx::Error> {
        sqlx::raw_sql("BEGIN")
            .execute(&mut self.conn)
            .await
            .map(|_| ())
    }

    async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
            .execute(&mut self.conn)
            .await
            .map(|_| ())
    }

    fn said(&self, error: &sqlx::Error, _: &str) -> ScriptFailure {
        script_failure(error)
    }

    async fn rollback(&mut self) {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
    }
}

impl Sqlite {
    /// Names the statement of a failed one-transaction migration whose transaction the
    /// database rolled back, when time is left before the deadline.
    pub(super) async fn name_failed_statement(
        &mut self,
        m: &Migrating<'_>,
        failure: &mut ScriptFailure,
        took: Duration,
    ) {
        if let Some(word) = named_in(m.script, &["load_extension"], &[]) {
            return replay::report(
                failure,
                Replayed::NotIdentified(format!(
                    "the script calls `{word}`, whose effect a rollback does not undo, so it is not run again"
                )),
            );
        }
        let Some(budget) = replay::budget(took, m.limits.deadline) else {
            return replay::report(
                failure,
                Replayed::NotIdentified("no time was left before the run's deadline".into()),
            );
        };
        let statements = split(m.script, Flavor::Sqlite);
        let until = Instant::now() + budget;
        let deadline = m.limits.deadline.map_or(until, |d| d.min(until));
        let watch = Watch::set(&mut self.conn, Some(deadline)).await;
        let original = failure.clone();
        let replayed = replay::replay(self, &statements, &original, budget).await;
        let replayed = match watch.clear(&mut self.conn).await {
            true => {
                Replayed::NotIdentified("the replay was interrupted when its time ran out".into())
            }
            false => replayed,
        };
        tracing::debug!(migration = %m.row.migration_name, "replay: {replayed:?}");
        replay::report(failure, replayed);
    }
}
