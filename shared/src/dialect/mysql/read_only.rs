//! A MySQL or MariaDB server a migration must not write: one in read-only mode
//! (`@@read_only`, as RDS sets it on read replicas; `@@innodb_read_only`, as Aurora readers
//! run), or a replica (a replica status: `SHOW REPLICA STATUS`, `SHOW SLAVE STATUS` before
//! MySQL 8.0.22 / MariaDB 10.5). Asked before the migration lock.

use sqlx::{AssertSqlSafe, MySqlConnection, Row};

use crate::error::EngineError;

/// What the server said.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Answers {
    pub read_only: bool,
    pub innodb_read_only: bool,
    /// The source host of a replica status, when the server has one (`Some("")`: a replica
    /// whose source is not named).
    pub replica_of: Option<String>,
}

/// Asks the server; `Err(WrongDatabase)` names what it found.
pub(super) async fn refuse(conn: &mut MySqlConnection) -> Result<(), EngineError> {
    let (read_only, innodb_read_only): (i64, i64) = sqlx::query_as(
        "SELECT CAST(@@global.read_only AS SIGNED), CAST(@@global.innodb_read_only AS SIGNED)",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(EngineError::database(
        "asking whether the server is read-only",
    ))?;
    let mut answers = Answers {
        read_only: read_only != 0,
        innodb_read_only: innodb_read_only != 0,
        replica_of: None,
    };
    // A replica status needs REPLICATION CLIENT (MySQL) or REPLICA MONITOR (MariaDB); a user
    // without it is not told, and read_only (which RDS sets on every replica) still speaks.
    for statement in ["SHOW REPLICA STATUS", "SHOW SLAVE STATUS"] {
        match sqlx::raw_sql(AssertSqlSafe(statement))
            .fetch_all(&mut *conn)
            .await
        {
            Ok(rows) => {
                answers.replica_of = rows.first().map(|row| {
                    ["Source_Host", "Master_Host"]
                        .iter()
                        .find_map(|column| row.try_get::<String, _>(*column).ok())
                        .unwrap_or_default()
                });
                break;
            }
            Err(e) => tracing::debug!("{statement}: {e}"),
        }
    }
    judge(&answers)
}

/// What the answers mean. The one rule.
pub(super) fn judge(answers: &Answers) -> Result<(), EngineError> {
    let found = if let Some(source) = &answers.replica_of {
        let of = match source.is_empty() {
            true => String::new(),
            false => format!(" of {source}"),
        };
        format!(
            "the server is a replica{of} (it has a replica status): migrations go to the source"
        )
    } else if answers.read_only {
        "the server is read-only (@@read_only = 1, as on a read replica)".into()
    } else if answers.innodb_read_only {
        "the server's storage is read-only (@@innodb_read_only = 1, as on an Aurora reader)".into()
    } else {
        return Ok(());
    };
    Err(EngineError::WrongDatabase { found })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_servers_and_replicas_are_refused() {
        assert!(judge(&Answers::default()).is_ok());
        let read_only = Answers {
            read_only: true,
            ..Answers::default()
        };
        assert!(
            judge(&read_only)
                .unwrap_err()
                .to_string()
                .contains("@@read_only")
        );
        let innodb = Answers {
            innodb_read_only: true,
            ..Answers::default()
        };
        assert!(
            judge(&innodb)
                .unwrap_err()
                .to_string()
                .contains("@@innodb_read_only")
        );
        let replica = Answers {
            replica_of: Some("10.0.0.5".into()),
            ..Answers::default()
        };
        let text = judge(&replica).unwrap_err().to_string();
        assert!(text.contains("replica of 10.0.0.5"), "{text}");
    }
}
