//! The engine's rules in process: a fake dialect ([`fake::Fake`], `_prisma_migrations` in
//! memory) and a fixed clock. Each test states what the engine does today — the outcome's
//! status and error code, the rows it leaves and the calls it makes — so that a change to a
//! rule shows up here before it reaches a database suite.

mod fake;
mod recovery;

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

use super::{Request, ResolveTarget, Session, Settings, check_providers, run_connected};
use crate::checksum::sha256_hex;
use crate::clock::{Clock, FixedClock};
use crate::dialect::{Dialect, MigrationRow};
use crate::migration::{Lockfile, Migration, MigrationSet};
use crate::outcome::{Action, Execution, Outcome, ResolveKind, State, Status};
use fake::{BY_STATEMENT, Fake, failure, statement_failure};

// ---- the fixtures ----

/// The instant the fixed clock says.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

/// Earlier instants, for rows already in the table (`minutes` before [`now`]).
fn before(minutes: i64) -> DateTime<Utc> {
    now() - chrono::Duration::minutes(minutes)
}

fn migration(name: &str) -> Migration {
    let script = format!("CREATE TABLE t_{} (id INT);", name.replace('-', "_"));
    with_script(name, &script)
}

fn with_script(name: &str, script: &str) -> Migration {
    Migration {
        name: name.into(),
        script: Some(script.into()),
        checksum: Some(sha256_hex(script.as_bytes())),
    }
}

fn scriptless(name: &str) -> Migration {
    Migration {
        name: name.into(),
        script: None,
        checksum: None,
    }
}

fn set(migrations: Vec<Migration>) -> MigrationSet {
    MigrationSet {
        path: "prisma/migrations".into(),
        migrations,
        lockfile: None,
        schema_provider: None,
        warnings: vec![],
    }
}

fn names(list: &[&str]) -> Vec<Migration> {
    list.iter().map(|n| migration(n)).collect()
}

/// A finished row for `m`, started `minutes` before now.
fn applied(m: &Migration, minutes: i64) -> MigrationRow {
    MigrationRow {
        id: format!("row-{}-{minutes}", m.name),
        checksum: m.checksum.clone().unwrap_or_default(),
        finished_at: Some(before(minutes)),
        migration_name: m.name.clone(),
        logs: None,
        rolled_back_at: None,
        started_at: before(minutes),
        applied_steps_count: 1,
    }
}

/// A row Prisma calls failed: neither finished nor rolled back.
fn failed(m: &Migration, minutes: i64) -> MigrationRow {
    MigrationRow {
        finished_at: None,
        logs: Some("boom".into()),
        applied_steps_count: 0,
        ..applied(m, minutes)
    }
}

fn rolled_back(m: &Migration, minutes: i64) -> MigrationRow {
    MigrationRow {
        rolled_back_at: Some(before(minutes - 1)),
        ..failed(m, minutes)
    }
}

fn request(action: Action, confirm: bool) -> Request {
    Request::for_tests(action, confirm, None)
}

fn deploy() -> Request {
    request(Action::Deploy, true)
}

fn resolve(name: &str, kind: ResolveKind, confirm: bool) -> Request {
    let target = ResolveTarget {
        name: name.into(),
        kind,
    };
    Request::for_tests(Action::Resolve, confirm, Some(target))
}

/// What `run` does once connected, over the fake: the provider checks, the rules, the flush
/// and unlock, and the error recorded in the outcome.
async fn run_with(
    request: &Request,
    set: &MigrationSet,
    fake: &mut Fake,
    settings: &Settings,
) -> Outcome {
    let clock = FixedClock(now());
    let mut outcome = Outcome::new(request.action, clock.now());
    outcome.confirmed = request.confirmed();
    let result = match check_providers(request, set, fake.provider()) {
        Ok(()) => {
            let mut session = Session {
                set,
                dialect: fake,
                settings,
                clock: &clock,
                outcome: &mut outcome,
            };
            run_connected(request, &mut session).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        e.record(&mut outcome, settings.wording.as_ref());
    }
    outcome
}

async fn run(request: &Request, set: &MigrationSet, fake: &mut Fake) -> Outcome {
    run_with(request, set, fake, &Settings::default()).await
}

fn code(outcome: &Outcome) -> Option<&str> {
    outcome.error.as_ref().and_then(|e| e.code.as_deref())
}

fn message(outcome: &Outcome) -> &str {
    outcome.error.as_ref().map_or("", |e| e.message.as_str())
}

fn applied_names(outcome: &Outcome) -> Vec<&str> {
    outcome.applied.iter().map(|a| a.name.as_str()).collect()
}

fn pending_names(outcome: &Outcome) -> Vec<&str> {
    outcome.pending.iter().map(|p| p.name.as_str()).collect()
}

fn calls(fake: &Fake) -> Vec<&str> {
    fake.calls.iter().map(String::as_str).collect()
}

// ---- deploy ----

#[tokio::test]
async fn deploy_on_an_empty_database_creates_the_table_and_applies_in_order() {
    let s = set(names(&["1_a", "2_b"]));
    let mut fake = Fake::empty();
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Applied);
    assert_eq!(applied_names(&outcome), ["1_a", "2_b"]);
    assert!(outcome.pending.is_empty());
    assert_eq!(
        calls(&fake),
        [
            "lock",
            "tables",
            "prepare_namespace",
            "create_migrations_table",
            "rows",
            "apply_in_transaction 1_a",
            "apply_in_transaction 2_b",
            "unlock"
        ]
    );
    for m in &s.migrations {
        let row = fake.row(&m.name);
        assert_eq!(Some(&row.checksum), m.checksum.as_ref());
        assert_eq!(row.started_at, now());
        assert_eq!(row.finished_at, Some(now()));
        assert_eq!(row.applied_steps_count, 1);
        assert_eq!(row.rolled_back_at, None);
    }
}

#[tokio::test]
async fn deploy_when_up_to_date_reads_and_writes_nothing() {
    let s = set(names(&["1_a", "2_b"]));
    let rows = vec![applied(&s.migrations[0], 20), applied(&s.migrations[1], 10)];
    let mut fake = Fake::with_rows(rows.clone());
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::UpToDate);
    assert_eq!(calls(&fake), ["lock", "tables", "rows", "unlock"]);
    assert_eq!(fake.rows, rows);
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
}

#[tokio::test]
async fn p3005_tables_without_prisma_migrations_block_and_create_nothing() {
    let mut fake = Fake {
        others: vec!["users".into()],
        ..Fake::empty()
    };
    let outcome = run(&deploy(), &set(names(&["1_a"])), &mut fake).await;
    assert_eq!(outcome.status, Status::Blocked);
    assert_eq!(code(&outcome), Some("P3005"));
    assert!(fake.writes().is_empty(), "{:?}", fake.calls);
    let hint = outcome.error.as_ref().and_then(|e| e.hint.clone()).unwrap();
    assert!(hint.contains("users"), "{hint}");
}

#[tokio::test]
async fn p3009_a_failed_row_blocks_every_pending_migration() {
    let s = set(names(&["1_a", "2_b", "3_c"]));
    let mut fake = Fake::with_rows(vec![
        applied(&s.migrations[0], 20),
        failed(&s.migrations[1], 10),
    ]);
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Blocked);
    assert_eq!(code(&outcome), Some("P3009"));
    assert!(outcome.applied.is_empty());
    assert!(fake.writes().is_empty(), "{:?}", fake.calls);
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(outcome.failed[0].name, "2_b");
    assert_eq!(outcome.failed[0].logs.as_deref(), Some("boom"));
    // Deploy refuses before it lists what is pending; plan lists it (see below).
    assert!(outcome.pending.is_empty());
    assert!(
        message(&outcome).contains(
            "The `2_b` migration started at 2024-05-01 11:50:00 UTC failed with the following logs:\nboom"
        ),
        "{}",
        message(&outcome)
    );
}

#[tokio::test]
async fn p3009_in_plan_lists_the_pending_migrations_too() {
    let s = set(names(&["1_a", "2_b", "3_c"]));
    let mut fake = Fake::with_rows(vec![
        applied(&s.migrations[0], 20),
        failed(&s.migrations[1], 10),
    ]);
    let outcome = run(&request(Action::Plan, true), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Blocked);
    assert_eq!(code(&outcome), Some("P3009"));
    assert_eq!(pending_names(&outcome), ["3_c"]);
    assert_eq!(calls(&fake), ["tables", "rows"]);
}

#[tokio::test]
async fn p3015_a_pending_folder_without_script_stops_before_anything_is_applied() {
    // Prisma applies 1_a and then fails; we refuse before touching anything.
    let s = set(vec![migration("1_a"), scriptless("2_b"), migration("3_c")]);
    let mut fake = Fake::with_rows(vec![]);
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Rejected);
    assert_eq!(code(&outcome), Some("P3015"));
    assert!(message(&outcome).contains("(migration `2_b`)"));
    assert!(outcome.applied.is_empty());
    assert_eq!(pending_names(&outcome), ["1_a", "2_b", "3_c"]);
    assert!(fake.writes().is_empty(), "{:?}", fake.calls);
}

#[tokio::test]
async fn p3015_does_not_apply_to_a_folder_without_script_that_is_already_applied() {
    let first = migration("1_a");
    let s = set(vec![scriptless("1_a"), migration("2_b")]);
    let mut fake = Fake::with_rows(vec![applied(&first, 10)]);
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Applied);
    assert_eq!(applied_names(&outcome), ["2_b"]);
    assert!(outcome.drift.edited.is_empty());
}

#[tokio::test]
async fn p3018_a_failing_migration_is_recorded_failed_and_stops_the_run() {
    let s = set(names(&["1_a", "2_b", "3_c"]));
    let mut fake = Fake::with_rows(vec![]);
    fake.fail(
        "2_b",
        failure("42601", "syntax error at or near \"CREAT\""),
        1,
    );
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Failed);
    assert_eq!(code(&outcome), Some("P3018"));
    assert_eq!(applied_names(&outcome), ["1_a"]);
    assert_eq!(pending_names(&outcome), ["3_c"]);
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(outcome.failed[0].name, "2_b");
    assert_eq!(outcome.failed[0].committed_statements, None);
    assert_eq!(outcome.failed[0].failed_statement, None);
    assert_eq!(
        calls(&fake),
        [
            "lock",
            "tables",
            "rows",
            "apply_in_transaction 1_a",
            "apply_in_transaction 2_b",
            "insert_failed_row 2_b",
            "unlock"
        ]
    );
    let row = fake.row("2_b");
    assert_eq!((row.finished_at, row.rolled_back_at), (None, None));
    assert_eq!(row.applied_steps_count, 0);
    assert_eq!(row.started_at, now());
    let logs = row.logs.as_deref().unwrap();
    assert!(
        logs.contains("Migration name: 2_b\n\nDatabase error code: 42601"),
        "{logs}"
    );
    assert_eq!(
        message(&outcome),
        logs,
        "the error is the logs, as Prisma's P3018"
    );
    let hint = outcome.error.as_ref().and_then(|e| e.hint.clone()).unwrap();
    assert!(hint.contains("resolve --rolled-back 2_b"), "{hint}");
}

#[tokio::test]
async fn p3018_after_a_recorded_failure_the_next_deploy_is_p3009() {
    let s = set(names(&["1_a"]));
    let mut fake = Fake::with_rows(vec![]);
    fake.fail("1_a", failure("42601", "syntax error"), 1);
    assert_eq!(code(&run(&deploy(), &s, &mut fake).await), Some("P3018"));
    let again = run(&deploy(), &s, &mut fake).await;
    assert_eq!(again.status, Status::Blocked);
    assert_eq!(code(&again), Some("P3009"));
    assert_eq!(fake.rows.len(), 1);
}

#[tokio::test]
async fn a_failure_that_cannot_be_recorded_says_the_next_deploy_retries() {
    let s = set(names(&["1_a"]));
    let mut fake = Fake {
        failed_row_write_fails: true,
        ..Fake::with_rows(vec![])
    };
    fake.fail("1_a", failure("42601", "syntax error"), 1);
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(code(&outcome), Some("P3018"));
    assert!(fake.rows.is_empty());
    assert!(
        outcome.warnings.iter().any(|w| w.starts_with(
            "The failure could not be recorded in _prisma_migrations (Invalid request: fake: the connection is gone); nothing of the migration was applied, so the next deploy will try it again."
        )),
        "{:?}",
        outcome.warnings
    );
}

#[tokio::test]
async fn statement_by_statement_success_writes_started_then_finished() {
    let m = with_script("1_a", &format!("{BY_STATEMENT}\nCREATE INDEX i ON t (id);"));
    let mut fake = Fake::with_rows(vec![]);
    let outcome = run(&deploy(), &set(vec![m]), &mut fake).await;
    assert_eq!(outcome.status, Status::Applied);
    assert_eq!(fake.writes(), ["insert_started_row 1_a", "mark_finished"]);
    assert_eq!(fake.row("1_a").finished_at, Some(now()));
    assert_eq!(fake.row("1_a").applied_steps_count, 1);
    assert_eq!(
        outcome.applied[0].execution,
        Execution::StatementByStatement {
            reason: "the fake says so".into()
        }
    );
    assert!(outcome.warnings.contains(
        &"1 migration(s) ran statement by statement, without a transaction, because the fake says so: `1_a`.".to_string()
    ));
}

#[tokio::test]
async fn statement_by_statement_failure_keeps_the_row_and_names_what_was_committed() {
    let m = with_script("1_a", &format!("{BY_STATEMENT}\nA;B;C;"));
    let mut fake = Fake::with_rows(vec![]);
    fake.fail("1_a", statement_failure(3, vec![1, 2]), 1);
    let outcome = run(&deploy(), &set(vec![m]), &mut fake).await;
    assert_eq!(outcome.status, Status::Failed);
    assert_eq!(code(&outcome), Some("P3018"));
    assert_eq!(fake.writes(), ["insert_started_row 1_a", "set_logs"]);
    let row = fake.row("1_a");
    assert_eq!(row.finished_at, None);
    assert!(
        row.logs
            .as_deref()
            .unwrap()
            .contains("Statements committed before the failure (they stay applied): 1-2.")
    );
    assert_eq!(outcome.failed[0].committed_statements, Some(vec![1, 2]));
    assert_eq!(outcome.failed[0].failed_statement, Some(3));
}

// ---- the lock ----

#[tokio::test]
async fn p1002_a_held_lock_blocks_before_anything_is_read() {
    let mut fake = Fake {
        lock_held: true,
        ..Fake::with_rows(vec![])
    };
    let outcome = run(&deploy(), &set(names(&["1_a"])), &mut fake).await;
    assert_eq!(outcome.status, Status::Blocked);
    assert_eq!(code(&outcome), Some("P1002"));
    assert_eq!(calls(&fake), ["lock"]);
    assert_eq!(fake.lock_waits, [Duration::from_secs(10)]);
    assert!(message(&outcome).contains("Timed out trying to acquire a fake advisory lock"));
}

fn psql_session(pid: i32) -> crate::preflight::Blocker {
    crate::preflight::Blocker {
        pid,
        holds: "migration lock".into(),
        mode: "ExclusiveLock".into(),
        application_name: Some("psql".into()),
        user: Some("ops".into()),
        state: Some("idle in transaction".into()),
        transaction_age_s: Some(40),
        query: Some("SELECT pg_advisory_lock(?)".into()),
    }
}

#[tokio::test]
async fn p1002_names_who_holds_the_migration_lock() {
    let mut fake = Fake {
        lock_held: true,
        holders: vec![psql_session(123)],
        ..Fake::with_rows(vec![])
    };
    let outcome = run(&deploy(), &set(names(&["1_a"])), &mut fake).await;
    assert_eq!(code(&outcome), Some("P1002"));
    assert_eq!(calls(&fake), ["lock"], "asking writes nothing");
    assert_eq!(fake.asked, [crate::dialect::Held::MigrationLock]);
    assert_eq!(outcome.blockers, [psql_session(123)]);
    assert_eq!(
        outcome.warnings,
        [
            "The migration lock is held by pid 123 (app `psql`, user `ops`, idle in transaction for 40 s): `SELECT pg_advisory_lock(?)`."
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn table_lock_timeouts_name_who_held_the_table_each_time() {
    let holder = crate::preflight::Blocker {
        holds: "public.users".into(),
        mode: "AccessExclusiveLock".into(),
        query: Some("LOCK TABLE users IN ACCESS EXCLUSIVE MODE".into()),
        ..psql_session(77)
    };
    let settings = Settings {
        statement_lock_retries: 1,
        ..Settings::default()
    };
    let mut fake = Fake {
        holders: vec![holder.clone()],
        ..Fake::with_rows(vec![])
    };
    fake.fail("1_a", failure("55P03", "lock timeout"), 2);
    let outcome = run_with(&deploy(), &set(names(&["1_a"])), &mut fake, &settings).await;
    assert_eq!(outcome.status, Status::Blocked);
    assert_eq!(
        fake.asked,
        [crate::dialect::Held::Tables, crate::dialect::Held::Tables]
    );
    let who = "pid 77 (app `psql`, user `ops`, idle in transaction for 40 s): `LOCK TABLE users IN ACCESS EXCLUSIVE MODE`";
    assert_eq!(
        outcome.warnings,
        [
            format!(
                "Migration `1_a` timed out waiting for a table lock (55P03) and was rolled back; trying again in 500 ms (attempt 2 of 2). The lock was held by {who}."
            ),
            format!("The table lock was held by {who}."),
        ]
    );
    let error = outcome.error.as_ref().expect("the error");
    assert!(
        error.message.contains(&format!("(held by {who})")),
        "{}",
        error.message
    );
    assert_eq!(outcome.blockers, [holder], "listed once");
    assert!(fake.rows.is_empty());
}

#[tokio::test]
async fn without_the_advisory_lock_nothing_is_locked() {
    let settings = Settings {
        use_lock: false,
        ..Settings::default()
    };
    let mut fake = Fake::with_rows(vec![]);
    let outcome = run_with(&deploy(), &set(names(&["1_a"])), &mut fake, &settings).await;
    assert_eq!(outcome.status, Status::Applied);
    assert!(!fake.was_called("lock"));
    assert_eq!(calls(&fake), ["tables", "rows", "apply_in_transaction 1_a"]);
}

#[tokio::test]
async fn the_lock_wait_never_reaches_past_the_deadline_margin() {
    let settings = Settings {
        lock_wait: Duration::from_secs(600),
        deadline: Some(Instant::now() + Duration::from_secs(300)),
        deadline_margin: Duration::from_secs(100),
        ..Settings::default()
    };
    let mut fake = Fake::with_rows(vec![]);
    run_with(&deploy(), &set(names(&["1_a"])), &mut fake, &settings).await;
    let wait = fake.lock_waits[0];
    assert!(wait <= Duration::from_secs(200), "{wait:?}");
    assert!(wait > Duration::from_secs(100), "{wait:?}");
}

#[tokio::test(start_paused = true)]
async fn a_table_lock_timeout_is_retried_and_then_applies() {
    let mut fake = Fake::with_rows(vec![]);
    fake.fail(
        "1_a",
        failure("55P03", "canceling statement due to lock timeout"),
        2,
    );
    let outcome = run(&deploy(), &set(names(&["1_a"])), &mut fake).await;
    assert_eq!(outcome.status, Status::Applied);
    assert_eq!(
        fake.writes(),
        [
            "apply_in_transaction 1_a",
            "apply_in_transaction 1_a",
            "apply_in_transaction 1_a"
        ]
    );
    assert_eq!(
        outcome.warnings,
        [
            "Migration `1_a` timed out waiting for a table lock (55P03) and was rolled back; trying again in 500 ms (attempt 2 of 4).",
            "Migration `1_a` timed out waiting for a table lock (55P03) and was rolled back; trying again in 1000 ms (attempt 3 of 4)."
        ]
    );
    assert_eq!(fake.rows.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn table_lock_timeouts_past_the_retries_are_blocked_without_a_failed_row() {
    let mut fake = Fake::with_rows(vec![]);
    fake.fail(
        "1_a",
        failure("55P03", "canceling statement due to lock timeout"),
        4,
    );
    let outcome = run(&deploy(), &set(names(&["1_a"])), &mut fake).await;
    // Someone else's lock is not a broken migration (issue 14 item 7).
    assert_eq!(outcome.status, Status::Blocked);
    assert_ne!(code(&outcome), Some("P3018"));
    assert_eq!(
        fake.writes()
            .iter()
            .filter(|c| c.starts_with("apply"))
            .count(),
        4
    );
    assert_eq!(outcome.warnings.len(), 3);
    assert!(fake.rows.is_empty());
    assert!(!fake.was_called("insert_failed_row"));
}

#[tokio::test]
async fn with_no_retries_the_first_table_lock_timeout_is_blocked() {
    let settings = Settings {
        statement_lock_retries: 0,
        ..Settings::default()
    };
    let mut fake = Fake::with_rows(vec![]);
    fake.fail("1_a", failure("55P03", "lock timeout"), 1);
    let outcome = run_with(&deploy(), &set(names(&["1_a"])), &mut fake, &settings).await;
    assert_eq!(outcome.status, Status::Blocked);
    assert_ne!(code(&outcome), Some("P3018"));
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    assert!(!fake.was_called("insert_failed_row"));
}

// ---- the deadline ----

#[tokio::test]
async fn inside_the_deadline_margin_no_migration_starts() {
    let settings = Settings {
        deadline: Some(Instant::now()),
        deadline_margin: Duration::from_secs(30),
        ..Settings::default()
    };
    let mut fake = Fake::with_rows(vec![]);
    let outcome = run_with(
        &deploy(),
        &set(names(&["1_a", "2_b"])),
        &mut fake,
        &settings,
    )
    .await;
    assert_eq!(outcome.status, Status::Incomplete);
    assert_eq!(outcome.error, None);
    assert!(outcome.applied.is_empty());
    assert_eq!(pending_names(&outcome), ["1_a", "2_b"]);
    assert!(!fake.was_called("apply_in_transaction"));
    assert_eq!(fake.lock_waits, [Duration::ZERO]);
    assert_eq!(
        outcome.warnings,
        [
            "Stopped before `1_a`: less than 30 s were left before the deadline. The next run applies what remains."
        ]
    );
}

#[tokio::test]
async fn statements_get_the_time_left_before_the_margin_and_the_lock_timeout() {
    let settings = Settings {
        deadline: Some(Instant::now() + Duration::from_secs(3600)),
        deadline_margin: Duration::from_secs(60),
        statement_lock_timeout: Some(Duration::from_secs(5)),
        ..Settings::default()
    };
    let mut fake = Fake::with_rows(vec![]);
    run_with(&deploy(), &set(names(&["1_a"])), &mut fake, &settings).await;
    let limits = fake.limits[0];
    let timeout = limits
        .deadline
        .unwrap()
        .saturating_duration_since(Instant::now());
    assert!(timeout <= Duration::from_secs(3540), "{timeout:?}");
    assert!(timeout > Duration::from_secs(3000), "{timeout:?}");
    assert_eq!(limits.lock_timeout, Some(Duration::from_secs(5)));
}

#[tokio::test]
async fn without_a_deadline_statements_have_no_timeout() {
    let mut fake = Fake::with_rows(vec![]);
    run(&deploy(), &set(names(&["1_a"])), &mut fake).await;
    assert_eq!(fake.limits[0].deadline, None);
    assert_eq!(fake.limits[0].lock_timeout, None);
}

// ---- history and drift ----

#[tokio::test]
async fn a_rolled_back_migration_is_applied_again_beside_its_old_row() {
    let s = set(names(&["1_a"]));
    let old = rolled_back(&s.migrations[0], 10);
    let mut fake = Fake::with_rows(vec![old.clone()]);
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Applied);
    assert_eq!(applied_names(&outcome), ["1_a"]);
    assert!(outcome.failed.is_empty());
    assert_eq!(fake.rows.len(), 2);
    assert_eq!(fake.rows[0], old);
    assert_eq!(fake.rows[1].finished_at, Some(now()));
}

#[tokio::test]
async fn missing_locally_is_reported_and_the_rest_applied() {
    let gone = migration("0_gone");
    let s = set(names(&["1_a", "2_b"]));
    let mut fake = Fake::with_rows(vec![applied(&gone, 30), applied(&s.migrations[0], 20)]);
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Applied);
    assert_eq!(applied_names(&outcome), ["2_b"]);
    assert_eq!(outcome.drift.missing_locally, ["0_gone"]);
    assert_eq!(
        outcome.warnings,
        ["The database has 1 migration(s) that this artifact does not have: 0_gone."]
    );
}

#[tokio::test]
async fn an_artifact_older_than_the_database_applies_nothing_and_says_so() {
    let s = set(names(&["1_a"]));
    let newer = migration("2_b");
    let mut fake = Fake::with_rows(vec![applied(&s.migrations[0], 20), applied(&newer, 10)]);
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::UpToDate);
    assert!(fake.writes().is_empty());
    assert_eq!(
        outcome.warnings,
        [
            "The database has 1 migration(s) that this artifact does not have (2_b): the artifact looks older than the database. Nothing of it is applied."
        ]
    );
}

#[tokio::test]
async fn an_edited_migration_is_reported_and_not_applied_again() {
    let recorded = with_script("1_a", "CREATE TABLE a (id INT);");
    let s = set(vec![with_script("1_a", "CREATE TABLE a (id BIGINT);")]);
    let mut fake = Fake::with_rows(vec![applied(&recorded, 10)]);
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::UpToDate);
    assert_eq!(outcome.drift.edited, ["1_a"]);
    assert!(fake.writes().is_empty());
    assert_eq!(
        outcome.warnings,
        [
            "Migration `1_a` was edited after it was applied (its checksum differs); the change is not applied."
        ]
    );
}

#[tokio::test]
async fn an_out_of_order_migration_is_applied_with_a_warning() {
    let s = set(names(&["1_a", "2_b"]));
    let mut fake = Fake::with_rows(vec![applied(&s.migrations[1], 10)]);
    let plan = run(&request(Action::Plan, true), &s, &mut fake).await;
    assert_eq!(pending_names(&plan), ["1_a"]);
    assert!(plan.pending[0].out_of_order);
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(applied_names(&outcome), ["1_a"]);
    assert_eq!(
        outcome.warnings,
        [
            "Migration `1_a` sorts before migrations the database already has (out of order); Prisma applies it anyway."
        ]
    );
}

#[tokio::test]
async fn a_name_recorded_in_nfc_and_pending_in_nfd_is_refused_everywhere() {
    let recorded = migration("1_caf\u{e9}");
    let s = set(vec![migration("1_cafe\u{301}")]);
    for req in [
        deploy(),
        request(Action::Plan, true),
        request(Action::Status, true),
    ] {
        let mut fake = Fake::with_rows(vec![applied(&recorded, 10)]);
        let outcome = run(&req, &s, &mut fake).await;
        assert_eq!(outcome.status, Status::Rejected, "{:?}", req.action);
        assert_eq!(code(&outcome), None);
        assert!(
            message(&outcome).contains("`1_cafe\\u{301}` (NFD)")
                && message(&outcome).contains("`1_caf\\u{e9}` (NFC)"),
            "{}",
            message(&outcome)
        );
        assert!(fake.writes().is_empty(), "{:?}", fake.calls);
        assert!(
            outcome
                .warnings
                .iter()
                .any(|w| w.contains("differ only by Unicode normalisation")),
            "{:?}",
            outcome.warnings
        );
    }
}

// ---- plan, status and an unconfirmed deploy ----

#[tokio::test]
async fn plan_lists_what_deploy_would_apply_without_locking_or_writing() {
    let s = set(names(&["1_a", "2_b"]));
    let mut fake = Fake::with_rows(vec![applied(&s.migrations[0], 10)]);
    let outcome = run(&request(Action::Plan, true), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Planned);
    assert_eq!(pending_names(&outcome), ["2_b"]);
    assert_eq!(outcome.pending[0].execution, Some(Execution::Transaction));
    assert_eq!(outcome.pending[0].checksum, s.migrations[1].checksum);
    assert_eq!(calls(&fake), ["tables", "rows"]);
}

#[tokio::test]
async fn plan_on_a_database_without_the_table_lists_everything() {
    let mut fake = Fake::empty();
    let outcome = run(
        &request(Action::Plan, true),
        &set(names(&["1_a"])),
        &mut fake,
    )
    .await;
    assert_eq!(outcome.status, Status::Planned);
    assert_eq!(pending_names(&outcome), ["1_a"]);
    assert_eq!(calls(&fake), ["tables"]);
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
}

#[tokio::test]
async fn plan_on_a_non_empty_schema_is_p3005() {
    let mut fake = Fake {
        others: vec!["users".into()],
        ..Fake::empty()
    };
    let outcome = run(
        &request(Action::Plan, true),
        &set(names(&["1_a"])),
        &mut fake,
    )
    .await;
    assert_eq!(outcome.status, Status::Blocked);
    assert_eq!(code(&outcome), Some("P3005"));
}

#[tokio::test]
async fn an_unconfirmed_deploy_is_a_plan_that_says_so() {
    let s = set(names(&["1_a"]));
    let mut fake = Fake::with_rows(vec![]);
    let outcome = run(&request(Action::Deploy, false), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Planned);
    assert!(!outcome.confirmed);
    assert_eq!(pending_names(&outcome), ["1_a"]);
    assert!(fake.writes().is_empty());
    assert!(!fake.was_called("lock"));
    assert_eq!(
        outcome.warnings,
        ["Not confirmed: nothing was applied. Confirm to apply the pending migrations."]
    );
}

#[tokio::test]
async fn status_lists_every_migration_with_its_state() {
    let old_b = with_script("2_b", "old");
    let gone = migration("9_gone");
    let s = set(vec![
        migration("1_a"),
        with_script("2_b", "new"),
        migration("3_c"),
    ]);
    let mut fake = Fake::with_rows(vec![
        applied(&s.migrations[0], 30),
        applied(&old_b, 20),
        applied(&gone, 10),
    ]);
    let outcome = run(&request(Action::Status, true), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Planned);
    let states: Vec<(&str, State, bool)> = outcome
        .migrations
        .iter()
        .map(|m| (m.name.as_str(), m.state, m.edited))
        .collect();
    assert_eq!(
        states,
        [
            ("1_a", State::Applied, false),
            ("2_b", State::Applied, true),
            ("3_c", State::Pending, false),
            ("9_gone", State::MissingLocally, false),
        ]
    );
    assert_eq!(outcome.migrations[0].finished_at, Some(before(30)));
    assert!(fake.writes().is_empty());
}

#[tokio::test]
async fn status_reads_the_newest_row_that_was_not_rolled_back() {
    let s = set(names(&["1_a", "2_b"]));
    let mut fake = Fake::with_rows(vec![
        // 1_a failed, was rolled back, then applied: applied, with the later finish.
        rolled_back(&s.migrations[0], 50),
        applied(&s.migrations[0], 40),
        // 2_b applied, and a newer rolled-back attempt is ignored.
        applied(&s.migrations[1], 30),
        rolled_back(&s.migrations[1], 20),
    ]);
    let outcome = run(&request(Action::Status, true), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::UpToDate, "{outcome:?}");
    let states: Vec<(&str, State, _)> = outcome
        .migrations
        .iter()
        .map(|m| (m.name.as_str(), m.state, m.finished_at))
        .collect();
    assert_eq!(
        states,
        [
            ("1_a", State::Applied, Some(before(40))),
            ("2_b", State::Applied, Some(before(30))),
        ]
    );
}

#[tokio::test]
async fn status_with_a_failed_row_shows_it_and_is_p3009() {
    let s = set(names(&["1_a"]));
    let mut fake = Fake::with_rows(vec![failed(&s.migrations[0], 10)]);
    let outcome = run(&request(Action::Status, true), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Blocked);
    assert_eq!(code(&outcome), Some("P3009"));
    assert_eq!(outcome.migrations[0].state, State::Failed);
}

#[tokio::test]
async fn status_of_a_database_prisma_does_not_manage() {
    let mut fake = Fake::empty();
    let outcome = run(
        &request(Action::Status, true),
        &set(names(&["1_a"])),
        &mut fake,
    )
    .await;
    assert_eq!(outcome.status, Status::Planned);
    assert_eq!(
        outcome.warnings,
        ["The current database is not managed by Prisma Migrate."]
    );
    assert_eq!(outcome.migrations[0].state, State::Pending);
}

// ---- resolve ----

#[tokio::test]
async fn resolve_applied_rolls_the_failed_row_back_and_records_a_resolved_row() {
    let s = set(names(&["1_a"]));
    let mut fake = Fake::with_rows(vec![failed(&s.migrations[0], 10)]);
    let outcome = run(&resolve("1_a", ResolveKind::Applied, true), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Applied);
    assert_eq!(
        calls(&fake),
        [
            "lock",
            "tables",
            "rows",
            "mark_rolled_back 1",
            "insert_resolved_row 1_a",
            "unlock"
        ]
    );
    assert_eq!(fake.rows[0].rolled_back_at, Some(now()));
    let resolved = &fake.rows[1];
    assert_eq!(resolved.finished_at, Some(resolved.started_at));
    assert_eq!(resolved.started_at, now());
    assert_eq!(resolved.logs.as_deref(), Some(""));
    assert_eq!(resolved.applied_steps_count, 0);
    assert_eq!(Some(&resolved.checksum), s.migrations[0].checksum.as_ref());
}

#[tokio::test]
async fn resolve_applied_baselines_a_database_without_the_table() {
    let mut fake = Fake {
        others: vec!["users".into()],
        ..Fake::empty()
    };
    let outcome = run(
        &resolve("1_a", ResolveKind::Applied, true),
        &set(names(&["1_a"])),
        &mut fake,
    )
    .await;
    assert_eq!(outcome.status, Status::Applied);
    assert_eq!(
        fake.writes(),
        [
            "prepare_namespace",
            "create_migrations_table",
            "insert_resolved_row 1_a"
        ]
    );
}

#[tokio::test]
async fn resolve_applied_refusals_p3008_and_p3017() {
    let s = set(vec![migration("1_a"), scriptless("2_b")]);
    let cases = [
        ("1_a", "P3008", Status::Blocked),
        ("9_unknown", "P3017", Status::Rejected),
        // A folder without migration.sql has no checksum to record.
        ("2_b", "P3017", Status::Rejected),
    ];
    for (name, expected, status) in cases {
        let mut fake = Fake::with_rows(vec![applied(&s.migrations[0], 10)]);
        let outcome = run(&resolve(name, ResolveKind::Applied, true), &s, &mut fake).await;
        assert_eq!(code(&outcome), Some(expected), "{name}");
        assert_eq!(outcome.status, status, "{name}");
        assert!(fake.writes().is_empty(), "{name}: {:?}", fake.calls);
    }
}

#[tokio::test]
async fn resolve_rolled_back_marks_the_failed_rows() {
    let s = set(names(&["1_a"]));
    let mut fake = Fake::with_rows(vec![failed(&s.migrations[0], 10)]);
    let outcome = run(
        &resolve("1_a", ResolveKind::RolledBack, true),
        &s,
        &mut fake,
    )
    .await;
    assert_eq!(outcome.status, Status::Applied);
    assert_eq!(fake.writes(), ["mark_rolled_back 1"]);
    assert_eq!(fake.rows[0].rolled_back_at, Some(now()));
    // And deploy applies it again.
    let again = run(&deploy(), &s, &mut fake).await;
    assert_eq!(applied_names(&again), ["1_a"]);
}

#[tokio::test]
async fn resolve_rolled_back_refusals_p3011_p3012_and_no_table() {
    let s = set(names(&["1_a", "2_b"]));
    let rows = vec![applied(&s.migrations[0], 10)];
    let mut fake = Fake::with_rows(rows.clone());
    let never = run(
        &resolve("2_b", ResolveKind::RolledBack, true),
        &s,
        &mut fake,
    )
    .await;
    assert_eq!(
        (code(&never), never.status),
        (Some("P3011"), Status::Blocked)
    );
    let finished = run(
        &resolve("1_a", ResolveKind::RolledBack, true),
        &s,
        &mut fake,
    )
    .await;
    assert_eq!(
        (code(&finished), finished.status),
        (Some("P3012"), Status::Blocked)
    );
    assert_eq!(fake.rows, rows);

    let mut empty = Fake::empty();
    let no_table = run(
        &resolve("1_a", ResolveKind::RolledBack, true),
        &s,
        &mut empty,
    )
    .await;
    assert_eq!((code(&no_table), no_table.status), (None, Status::Blocked));
    assert!(message(&no_table).contains("no `_prisma_migrations` table"));
}

#[tokio::test]
async fn resolve_rolled_back_with_nothing_failed_left_is_a_said_no_op() {
    let s = set(names(&["1_a"]));
    let mut fake = Fake::with_rows(vec![
        rolled_back(&s.migrations[0], 20),
        applied(&s.migrations[0], 10),
    ]);
    let outcome = run(
        &resolve("1_a", ResolveKind::RolledBack, true),
        &s,
        &mut fake,
    )
    .await;
    assert_eq!(outcome.status, Status::UpToDate);
    assert!(fake.writes().is_empty());
    assert_eq!(
        outcome.warnings,
        ["Migration `1_a` has no failed row left to mark: nothing to do."]
    );
}

#[tokio::test]
async fn an_unconfirmed_resolve_says_what_it_would_write() {
    let s = set(names(&["1_a"]));
    let mut fake = Fake::with_rows(vec![failed(&s.migrations[0], 10)]);
    let applied_plan = run(&resolve("1_a", ResolveKind::Applied, false), &s, &mut fake).await;
    assert_eq!(applied_plan.status, Status::Planned);
    assert_eq!(
        applied_plan.warnings,
        [
            "Not confirmed: nothing was written (would record `1_a` as applied after marking 1 failed row(s) as rolled back)."
        ]
    );
    let rolled_plan = run(
        &resolve("1_a", ResolveKind::RolledBack, false),
        &s,
        &mut fake,
    )
    .await;
    assert_eq!(
        rolled_plan.warnings,
        [
            "Not confirmed: nothing was written (would mark 1 failed row(s) of `1_a` as rolled back)."
        ]
    );
    assert!(fake.writes().is_empty());
    assert!(!fake.was_called("lock"));
}

#[tokio::test]
async fn resolve_without_a_migration_name_is_an_invalid_request() {
    let mut fake = Fake::with_rows(vec![]);
    let outcome = run(
        &request(Action::Resolve, true),
        &set(names(&["1_a"])),
        &mut fake,
    )
    .await;
    assert_eq!(outcome.status, Status::Rejected);
    assert_eq!(code(&outcome), None);
    assert!(fake.calls.is_empty(), "{:?}", fake.calls);
}

// ---- providers ----

#[tokio::test]
async fn p3019_a_lock_file_for_another_provider_never_reaches_the_database() {
    let mut s = set(names(&["1_a"]));
    s.lockfile = Some(Lockfile {
        provider: "mysql".into(),
    });
    let mut fake = Fake::with_rows(vec![]);
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(
        (code(&outcome), outcome.status),
        (Some("P3019"), Status::Rejected)
    );
    assert!(fake.calls.is_empty());
    // Except `resolve --rolled-back`, as in Prisma.
    let rolled = run(
        &resolve("1_a", ResolveKind::RolledBack, true),
        &s,
        &mut fake,
    )
    .await;
    assert_eq!(code(&rolled), Some("P3011"));
}

#[tokio::test]
async fn schema_provider_must_match_the_database_cockroachdb_passes_as_postgresql() {
    let mut s = set(names(&["1_a"]));
    s.schema_provider = Some("sqlite".into());
    let mut fake = Fake::with_rows(vec![]);
    let outcome = run(&deploy(), &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Rejected);
    assert!(message(&outcome).contains("provider = \"sqlite\""));
    assert!(fake.calls.is_empty());
    s.schema_provider = Some("cockroachdb".into());
    assert_eq!(run(&deploy(), &s, &mut fake).await.status, Status::Applied);
}

// ---- the confirmed plan (planHash) ----

/// The plan hash of applying all of `s` from an artifact whose hash is unknown (the harness
/// sets no artifact).
fn hash_of_all(s: &MigrationSet) -> String {
    let pending: Vec<crate::outcome::PendingMigration> = s
        .migrations
        .iter()
        .map(|m| crate::outcome::PendingMigration {
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            out_of_order: false,
            execution: None,
        })
        .collect();
    super::plan_hash::plan_hash("", &pending)
}

#[tokio::test]
async fn a_confirmed_plan_applies_only_while_it_is_what_would_be_applied() {
    let s = set(names(&["1_a", "2_b"]));
    let mut confirmed = deploy();
    confirmed.expected_plan = Some(hash_of_all(&s));
    let mut fake = Fake::empty();
    let outcome = run(&confirmed, &s, &mut fake).await;
    assert_eq!(outcome.status, Status::Applied, "{outcome:#?}");
    assert_eq!(outcome.applied.len(), 2);

    // The same confirmation once the database has moved on (or for another plan): refused
    // after the lock, before anything is written (not even `_prisma_migrations`).
    let grown = set(names(&["1_a", "2_b", "3_c"]));
    let mut fake = Fake::empty();
    let outcome = run(&confirmed, &grown, &mut fake).await;
    assert_eq!(outcome.status, Status::Rejected, "{outcome:#?}");
    let message = &outcome.error.as_ref().expect("an error").message;
    assert!(message.contains("3_c"), "{message}");
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    assert!(fake.was_called("lock"), "checked under the lock");
}
