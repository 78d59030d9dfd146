//! The recovery-point port: called once, under the lock, before the first write, and only
//! when something is pending; its refusal stops the deploy with nothing written.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::*;
use crate::engine::{RecoveryNeed, RecoveryPoints};
use crate::error::EngineError;
use crate::outcome::{RecoveryKind, RecoveryPoint};

/// A port that records what it was asked and answers as told.
#[derive(Debug)]
struct Port {
    asked: Mutex<Vec<(Vec<String>, String)>>,
    answer: fn() -> Result<Option<RecoveryPoint>, EngineError>,
}

#[async_trait]
impl RecoveryPoints for Port {
    async fn before_first_write(
        &self,
        need: &RecoveryNeed<'_>,
    ) -> Result<Option<RecoveryPoint>, EngineError> {
        let names = need.pending.iter().map(|p| p.name.clone()).collect();
        self.asked
            .lock()
            .unwrap()
            .push((names, need.plan_hash.clone()));
        (self.answer)()
    }
}

fn snapshot() -> Result<Option<RecoveryPoint>, EngineError> {
    Ok(Some(RecoveryPoint {
        kind: RecoveryKind::Snapshot,
        resource: "db-instance".into(),
        identifier: "db1".into(),
        restorable_time: None,
        latest_restorable_time: None,
        snapshot_id: Some("migrator-prod-1".into()),
        taken_at: now(),
        restore_command: "aws rds restore-db-instance-from-db-snapshot …".into(),
    }))
}

fn settings(answer: fn() -> Result<Option<RecoveryPoint>, EngineError>) -> (Settings, Arc<Port>) {
    let port = Arc::new(Port {
        asked: Mutex::new(Vec::new()),
        answer,
    });
    let settings = Settings {
        recovery: Some(port.clone()),
        ..Settings::default()
    };
    (settings, port)
}

#[tokio::test]
async fn the_point_is_taken_once_before_the_first_write_and_reported() {
    let s = set(names(&["1_a", "2_b"]));
    let mut fake = Fake::empty();
    let (settings, port) = settings(snapshot);
    let outcome = run_with(&deploy(), &s, &mut fake, &settings).await;
    assert_eq!(outcome.status, Status::Applied);
    let asked = port.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].0, ["1_a", "2_b"]);
    assert_eq!(
        outcome
            .recovery_point
            .as_ref()
            .and_then(|p| p.snapshot_id.as_deref()),
        Some("migrator-prod-1")
    );
}

#[tokio::test]
async fn nothing_pending_takes_nothing() {
    let s = set(names(&["1_a"]));
    let mut fake = Fake::with_rows(vec![applied(&s.migrations[0], 10)]);
    let (settings, port) = settings(snapshot);
    let outcome = run_with(&deploy(), &s, &mut fake, &settings).await;
    assert_eq!(outcome.status, Status::UpToDate);
    assert!(port.asked.lock().unwrap().is_empty());
    assert_eq!(outcome.recovery_point, None);
}

#[tokio::test]
async fn a_plan_takes_nothing() {
    let s = set(names(&["1_a"]));
    let mut fake = Fake::empty();
    let (settings, port) = settings(snapshot);
    let outcome = run_with(&request(Action::Deploy, false), &s, &mut fake, &settings).await;
    assert_eq!(outcome.status, Status::Planned);
    assert!(port.asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn without_the_point_nothing_is_written() {
    fn unavailable() -> Result<Option<RecoveryPoint>, EngineError> {
        Err(EngineError::RecoveryPointUnavailable {
            reason: "automated backups are off".into(),
        })
    }
    fn api_down() -> Result<Option<RecoveryPoint>, EngineError> {
        Err(EngineError::RecoveryPointFailed {
            call: "CreateDBSnapshot".into(),
            reason: "Throttling".into(),
        })
    }
    for (answer, status, says) in [
        (
            unavailable as fn() -> _,
            Status::Blocked,
            "No recovery point",
        ),
        (
            api_down as fn() -> _,
            Status::Failed,
            "RDS CreateDBSnapshot failed before anything was written",
        ),
    ] {
        // A fresh database (before `_prisma_migrations` is created) and one with history.
        let s = set(names(&["1_a", "2_b"]));
        for mut fake in [
            Fake::empty(),
            Fake::with_rows(vec![applied(&s.migrations[0], 10)]),
        ] {
            let (settings, port) = settings(answer);
            let outcome = run_with(&deploy(), &s, &mut fake, &settings).await;
            assert_eq!(outcome.status, status, "{:?}", outcome.error);
            assert!(fake.writes().is_empty(), "{:?}", fake.calls);
            assert!(fake.was_called("unlock"), "{:?}", fake.calls);
            assert_eq!(port.asked.lock().unwrap().len(), 1);
            assert!(message(&outcome).starts_with(says), "{}", message(&outcome));
        }
    }
}
