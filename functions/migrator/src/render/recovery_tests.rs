//! The recovery point in every rendering: present on an outcome that carries one, first
//! when the run failed, the restore command whole and quoted.

use migrator_engine::chrono::{TimeZone, Utc};
use migrator_engine::outcome::{
    Action, DatabaseInfo, ErrorInfo, Outcome, RecoveryKind, RecoveryPoint, Status,
};

use super::{Channel, chatbot, email, text};

const RESTORE: &str = "aws rds restore-db-instance-from-db-snapshot --db-instance-identifier orders-before-202503040506 --db-snapshot-identifier migrator-prod-20250304050607-abcdef01";

fn outcome(status: Status) -> Outcome {
    let at = Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap();
    let mut o = Outcome::new(Action::Deploy, at);
    o.stage = Some("PROD".into());
    o.database = Some(DatabaseInfo {
        engine: "postgresql".into(),
        host: Some("orders.abc.eu-west-1.rds.amazonaws.com".into()),
        port: Some(5432),
        name: "app".into(),
        schema: Some("public".into()),
    });
    o.status = status;
    o.recovery_point = Some(RecoveryPoint {
        kind: RecoveryKind::Snapshot,
        resource: "db-instance".into(),
        identifier: "orders".into(),
        restorable_time: None,
        latest_restorable_time: None,
        snapshot_id: Some("migrator-prod-20250304050607-abcdef01".into()),
        taken_at: at,
        restore_command: RESTORE.into(),
    });
    if status == Status::Failed {
        o.error = Some(ErrorInfo {
            code: Some("P3018".into()),
            message: "A migration failed to apply.".into(),
            hint: None,
        });
    }
    o
}

fn channel() -> Channel<'static> {
    Channel::of(Some("migrator-PROD"))
}

#[test]
fn a_failure_shows_the_recovery_point_first() {
    let failed = outcome(Status::Failed);
    let text = text(&failed);
    assert!(
        text.starts_with("Recovery point: snapshot migrator-prod-"),
        "{text}"
    );
    assert!(text.contains(RESTORE), "{text}");
    let mail = email(&failed, None);
    let recovery_at = mail.find("Recovery point:").expect("in the e-mail");
    assert!(
        recovery_at < mail.find("Error P3018").expect("the error"),
        "{mail}"
    );
    assert_eq!(mail.matches("Recovery point:").count(), 1, "{mail}");
    let slack = chatbot(&failed, &channel()).to_string();
    let recovery_at = slack.find("Recovery point").expect("in the message");
    assert!(
        recovery_at < slack.find("Error").expect("the error"),
        "{slack}"
    );
    assert!(
        slack.contains("restore-db-instance-from-db-snapshot"),
        "{slack}"
    );
}

#[test]
fn an_applied_run_shows_it_after_the_database() {
    let applied = outcome(Status::Applied);
    let text = text(&applied);
    assert!(text.contains("Recovery point: snapshot"), "{text}");
    assert!(!text.starts_with("Recovery point"), "{text}");
    let mut none = applied.clone();
    none.recovery_point = None;
    assert!(!super::text(&none).contains("Recovery point"));
}
