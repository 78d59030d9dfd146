//! What the supervising session does to the working one on MySQL / MariaDB: `KILL QUERY`,
//! `KILL CONNECTION`, and what it runs (`information_schema.PROCESSLIST`).

use super::*;
use crate::dialect::witness::Supervisor;

/// The supervising connection, lent for the time of one migration.
pub(super) struct MySupervisor<'a>(pub(super) &'a mut MySqlConnection);

#[async_trait]
impl Supervisor for MySupervisor<'_> {
    async fn cancel(&mut self, worker: i64) {
        let kill = format!("KILL QUERY {worker}");
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(kill))
            .execute(&mut *self.0)
            .await
        {
            tracing::warn!("cancelling the working statement failed: {e}");
        }
    }

    async fn terminate(&mut self, worker: i64) {
        let kill = format!("KILL CONNECTION {worker}");
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(kill))
            .execute(&mut *self.0)
            .await
        {
            tracing::warn!("terminating the working session failed: {e}");
        }
    }

    async fn running(&mut self, worker: i64) -> Option<String> {
        let query = sqlx::query_scalar::<_, Option<String>>(
            "SELECT CAST(INFO AS CHAR) FROM information_schema.PROCESSLIST WHERE ID = ?",
        )
        .bind(worker)
        .fetch_optional(&mut *self.0);
        match tokio::time::timeout(Duration::from_secs(2), query).await {
            Ok(Ok(Some(Some(text)))) => Some(without_literals(&text)),
            _ => None,
        }
    }
}
