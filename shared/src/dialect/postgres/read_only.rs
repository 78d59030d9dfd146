//! A PostgreSQL server a migration must not write: a hot standby (a streaming or log-shipping
//! replica, an RDS read replica: `pg_is_in_recovery()`), or a session that is read-only by
//! default (`default_transaction_read_only`, as some poolers and reader endpoints set it).
//! Asked before the migration lock.

use sqlx::PgConnection;

use crate::error::EngineError;

/// Asks the server; `Err(WrongDatabase)` names what it found.
pub(super) async fn refuse(conn: &mut PgConnection) -> Result<(), EngineError> {
    let (in_recovery, read_only): (bool, String) = sqlx::query_as(
        "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')",
    )
    .fetch_one(conn)
    .await
    .map_err(EngineError::database(
        "asking whether the server is a standby",
    ))?;
    judge(in_recovery, &read_only)
}

/// What the answers mean. The one rule.
pub(super) fn judge(in_recovery: bool, default_read_only: &str) -> Result<(), EngineError> {
    let found = if in_recovery {
        "the server is a hot standby or read replica (pg_is_in_recovery() is true): migrations go to the primary"
    } else if default_read_only.eq_ignore_ascii_case("on") {
        "the session is read-only by default (default_transaction_read_only = on): this is a reader endpoint or a read-only role"
    } else {
        return Ok(());
    };
    Err(EngineError::WrongDatabase {
        found: found.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_and_read_only_sessions_are_refused() {
        assert!(judge(false, "off").is_ok());
        let standby = judge(true, "off").unwrap_err().to_string();
        assert!(standby.contains("pg_is_in_recovery()"), "{standby}");
        let reader = judge(false, "on").unwrap_err().to_string();
        assert!(reader.contains("default_transaction_read_only"), "{reader}");
    }
}
