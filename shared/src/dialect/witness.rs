//! The witness: a supervising session beside the working one. It holds the migration lock,
//! keeps the deadline by cancelling the working statement from outside, logs what a long
//! statement is doing, and reads every migration's row back after it ran. What it does is
//! written once here; each dialect says how its server cancels a session and shows what it runs.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;

use super::{MigrationRow, NewRow};
use crate::error::EngineError;

/// How long a cancelled statement may take to end before its session is terminated
/// (a `COPY … FROM STDIN` waiting for data ignores a cancel).
pub(crate) const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// When a running statement is first reported, then how often.
const FIRST_PROGRESS: Duration = Duration::from_secs(5);
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// How often a running statement is checked for waiting on client data.
const CLIENT_CHECK_EVERY: Duration = Duration::from_secs(1);

/// What the supervising session can do to the working one (identified by its server id).
#[async_trait]
pub(crate) trait Supervisor: Send {
    /// Cancels the working session's running statement (`pg_cancel_backend`, `KILL QUERY`).
    async fn cancel(&mut self, worker: i64);
    /// Ends the working session (`pg_terminate_backend`, `KILL CONNECTION`).
    async fn terminate(&mut self, worker: i64);
    /// What the working session is running now, without its literals (for progress lines).
    async fn running(&mut self, worker: i64) -> Option<String>;
    /// Whether the working statement waits for data from the client (`COPY … FROM STDIN`
    /// the splitter could not see): the migrator has none to send, so it would wait forever.
    async fn waits_for_client(&mut self, _worker: i64) -> bool {
        false
    }
}

/// How a supervised piece of work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Watched {
    /// The supervisor cancelled the working statement because the deadline came.
    pub(crate) cancelled: bool,
    /// It then had to terminate the working session (which must be reopened).
    pub(crate) terminated: bool,
    /// The statement waited for data from the client and was cancelled for it.
    pub(crate) waited_for_client: bool,
}

/// What a failure says when the supervisor cancelled a statement waiting for client data.
pub(crate) const WAITED_FOR_CLIENT: &str = "The statement waited for data from the client (a `COPY … FROM STDIN` or the like): the migrator has none to send, so the supervising session cancelled it instead of waiting forever with the migration lock held.";

/// Runs `work` (on the working session) while the supervisor keeps the deadline and logs
/// progress. The supervisor never touches the working session's connection, only the server.
pub(crate) async fn supervise<T, S: Supervisor + ?Sized>(
    work: impl Future<Output = T>,
    supervisor: &mut S,
    worker: i64,
    deadline: Option<std::time::Instant>,
    migration: &str,
) -> (T, Watched) {
    // Tokio's clock throughout (the same as std's, except in tests with paused time).
    let deadline = deadline.map(Instant::from_std);
    let mut work = pin!(work);
    let start = Instant::now();
    let mut watched = Watched::default();
    let mut next_progress = start + FIRST_PROGRESS;
    let mut terminate_at: Option<Instant> = None;
    let mut next_client_check = start + CLIENT_CHECK_EVERY;
    loop {
        let cancel_at = deadline.filter(|_| !watched.cancelled);
        let wake = [
            Some(next_progress),
            Some(next_client_check),
            cancel_at,
            terminate_at,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(next_progress);
        tokio::select! {
            biased;
            result = &mut work => return (result, watched),
            _ = tokio::time::sleep_until(wake) => {}
        }
        let now = Instant::now();
        if let Some(at) = cancel_at
            && now >= at
        {
            tracing::warn!(
                migration,
                "the run's deadline came: cancelling the migration's running statement"
            );
            supervisor.cancel(worker).await;
            watched.cancelled = true;
            terminate_at = Some(now + CANCEL_GRACE);
        } else if let Some(at) = terminate_at
            && now >= at
        {
            tracing::warn!(
                migration,
                "the cancelled statement did not end: terminating the working session"
            );
            supervisor.terminate(worker).await;
            watched.terminated = true;
            terminate_at = None;
        }
        let check_client = now >= next_client_check;
        if check_client {
            // Always moved on, so the loop never wakes for a time already past.
            next_client_check = now + CLIENT_CHECK_EVERY;
        }
        if check_client
            && terminate_at.is_none()
            && !watched.terminated
            && supervisor.waits_for_client(worker).await
        {
            // The client side of that protocol is not ours to finish: a cancel would leave
            // the session waiting, so it is ended (and reopened for the next migration).
            tracing::warn!(
                migration,
                "the migration's statement waits for data from the client: ending the working session"
            );
            supervisor.terminate(worker).await;
            watched.waited_for_client = true;
            watched.terminated = true;
        }
        if now >= next_progress {
            let elapsed = now.duration_since(start).as_secs();
            match supervisor.running(worker).await {
                Some(statement) => tracing::info!(
                    "Migration `{migration}` still running after {elapsed} s: {statement}"
                ),
                None => tracing::info!("Migration `{migration}` still running after {elapsed} s"),
            }
            next_progress = now + PROGRESS_EVERY;
        }
    }
}

/// What the witness expects of a migration's row after a successful apply.
pub(crate) fn judge_applied(
    read: Option<MigrationRow>,
    intended: &NewRow,
) -> Result<(), EngineError> {
    let disagrees = |found: String| EngineError::Witness {
        migration: intended.migration_name.clone(),
        found,
    };
    let Some(row) = read else {
        return Err(disagrees(
            "no row with the migration's id exists in _prisma_migrations".into(),
        ));
    };
    let mut wrong = Vec::new();
    if row.finished_at.is_none() {
        wrong.push("finished_at is NULL");
    }
    if row.rolled_back_at.is_some() {
        wrong.push("rolled_back_at is set");
    }
    if row.checksum != intended.checksum {
        wrong.push("the checksum differs from the migration's");
    }
    if row.migration_name != intended.migration_name {
        wrong.push("migration_name differs");
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(disagrees(format!(
        "{} ({})",
        wrong.join(", "),
        describe(&row)
    )))
}

/// A row as the outcome quotes it.
pub(crate) fn describe(row: &MigrationRow) -> String {
    let time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or("NULL".to_string(), |t| t.to_rfc3339());
    format!(
        "row id {}: migration_name {}, checksum {}, started_at {}, finished_at {}, rolled_back_at {}, applied_steps_count {}",
        row.id,
        row.migration_name,
        row.checksum,
        row.started_at.to_rfc3339(),
        time(row.finished_at),
        time(row.rolled_back_at),
        row.applied_steps_count
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use std::sync::{Arc, Mutex};

    #[derive(Default, Clone)]
    struct Log(Arc<Mutex<Vec<&'static str>>>);

    #[async_trait]
    impl Supervisor for Log {
        async fn cancel(&mut self, _: i64) {
            self.0.lock().unwrap().push("cancel");
        }
        async fn terminate(&mut self, _: i64) {
            self.0.lock().unwrap().push("terminate");
        }
        async fn running(&mut self, _: i64) -> Option<String> {
            self.0.lock().unwrap().push("running");
            Some("SELECT pg_sleep ( ? )".into())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_cancels_then_terminates_work_that_does_not_end() {
        let mut log = Log::default();
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let (_, watched) = supervise(
            tokio::time::sleep(Duration::from_secs(60)),
            &mut log,
            7,
            Some(deadline),
            "m",
        )
        .await;
        assert!(watched.cancelled && watched.terminated);
        let seen = log.0.lock().unwrap().clone();
        assert_eq!(&seen[..3], ["cancel", "running", "terminate"]);
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_ends_in_time_is_left_alone() {
        let mut log = Log::default();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let (value, watched) = supervise(async { 5 }, &mut log, 7, Some(deadline), "m").await;
        assert_eq!(value, 5);
        assert_eq!(watched, Watched::default());
        assert!(log.0.lock().unwrap().is_empty());
    }

    fn row() -> (MigrationRow, NewRow) {
        let now = Utc::now();
        let intended = NewRow {
            id: "1".into(),
            checksum: "c".into(),
            migration_name: "m".into(),
            started_at: now,
        };
        let read = MigrationRow {
            id: "1".into(),
            checksum: "c".into(),
            finished_at: Some(now),
            migration_name: "m".into(),
            logs: None,
            rolled_back_at: None,
            started_at: now,
            applied_steps_count: 1,
        };
        (read, intended)
    }

    #[test]
    fn the_witness_names_what_differs() {
        let (read, intended) = row();
        assert!(judge_applied(Some(read.clone()), &intended).is_ok());
        let e = judge_applied(None, &intended).unwrap_err().to_string();
        assert!(e.contains("no row"), "{e}");
        let unfinished = MigrationRow {
            finished_at: None,
            ..read
        };
        let e = judge_applied(Some(unfinished), &intended)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("finished_at is NULL") && e.contains("row id 1"),
            "{e}"
        );
    }
}
