//! What the supervising session does to the working one on PostgreSQL: cancel its statement
//! (`pg_cancel_backend`), end it (`pg_terminate_backend`), and say what it runs
//! (`pg_stat_activity`), for the deadline and the progress lines.

use super::transaction::SCRIPT_FOLLOWS;
use super::*;
use crate::dialect::witness::Supervisor;
use crate::sql::without_literals;

/// The supervising connection, lent for the time of one migration.
pub(super) struct PgSupervisor<'a>(pub(super) &'a mut PgConnection);

#[async_trait]
impl Supervisor for PgSupervisor<'_> {
    async fn cancel(&mut self, worker: i64) {
        if let Err(e) = sqlx::query("SELECT pg_cancel_backend($1)")
            .bind(worker as i32)
            .execute(&mut *self.0)
            .await
        {
            tracing::warn!("cancelling the working statement failed: {e}");
        }
    }

    async fn terminate(&mut self, worker: i64) {
        if let Err(e) = sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(worker as i32)
            .execute(&mut *self.0)
            .await
        {
            tracing::warn!("terminating the working session failed: {e}");
        }
    }

    async fn waits_for_client(&mut self, worker: i64) -> bool {
        let query = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS(SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND wait_event_type = 'Client' AND wait_event = 'ClientRead')",
        )
        .bind(worker as i32)
        .fetch_one(&mut *self.0);
        matches!(
            tokio::time::timeout(Duration::from_secs(2), query).await,
            Ok(Ok(true))
        )
    }

    async fn running(&mut self, worker: i64) -> Option<String> {
        let query = sqlx::query_scalar::<_, Option<String>>(
            "SELECT query FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
        )
        .bind(worker as i32)
        .fetch_optional(&mut *self.0);
        match tokio::time::timeout(Duration::from_secs(2), query).await {
            // The script alone, not our statements sent before it in the same message.
            Ok(Ok(Some(Some(text)))) => Some(without_literals(
                text.split_once(SCRIPT_FOLLOWS)
                    .map_or(text.as_str(), |(_, s)| s),
            )),
            _ => None,
        }
    }
}
