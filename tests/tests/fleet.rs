//! A fleet end to end: the construct's synthesized state machine, executed by
//! aws-local-stepfunctions (infra/scripts/run-fleet.ts), each child the real
//! `migrator handle-event` against its own database on the local PostgreSQL.

use migrator_e2e::fleet::{Fleet, MIGRATIONS, statuses};
use serde_json::Value;

/// `started_at`, `finished_at` of every migration of a database, as text (ISO timestamps sort).
fn times(db: &migrator_e2e::PgDb) -> Vec<(String, String)> {
    db.sql("SELECT to_char(started_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), to_char(finished_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') FROM _prisma_migrations ORDER BY started_at")
        .lines()
        .map(|l| {
            let (s, f) = l.split_once('|').unwrap_or((l, ""));
            (s.to_string(), f.to_string())
        })
        .collect()
}

fn applied(db: &migrator_e2e::PgDb) -> usize {
    db.sql("SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL")
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn twenty_databases_apply_canary_first_then_the_waves() {
    let fleet = Fleet::new("fleet_all", 20, &[], 2, 4);
    let run = fleet.rollout(&fleet.upload_event());
    let rollup = &run["rollup"];
    assert_eq!(run["execution"], "SUCCEEDED", "{run:#}");
    assert_eq!(rollup["status"], "applied", "{rollup:#}");
    assert_eq!(statuses(rollup), vec!["applied"; 20]);
    for db in &fleet.dbs {
        assert_eq!(applied(db), MIGRATIONS.len(), "{}", db.name);
    }
    // The canary (lines 1 and 2) finished before any wave target started.
    let canary_done = fleet.dbs[..2].iter().flat_map(times).map(|(_, f)| f).max().expect("canary rows");
    let waves_start = fleet.dbs[2..].iter().flat_map(times).map(|(s, _)| s).min().expect("wave rows");
    assert!(canary_done <= waves_start, "canary finished {canary_done}, a wave started {waves_start}");
    // One message, on the rollout's thread.
    let published = fleet.published(1);
    assert_eq!(published.len(), 1, "{published:#?}");
    let chat: Value = serde_json::from_str(published[0]["https"].as_str().unwrap_or_default()).expect("chatbot JSON");
    assert_eq!(chat["metadata"]["threadId"], rollup["threadId"]);
}

#[test]
fn a_poisoned_target_halts_the_rollout_and_a_rerun_finishes_it() {
    // Waves one at a time: "after the halt" is then every later line.
    let fleet = Fleet::new("fleet_halt", 20, &[7], 2, 1);
    let event = fleet.upload_event();
    let run = fleet.rollout(&event);
    let rollup = &run["rollup"];
    assert!(run["execution"].as_str().unwrap_or_default().starts_with("FAILED"), "{run:#}");
    assert_eq!(rollup["status"], "halted", "{rollup:#}");
    assert_eq!(rollup["haltedAt"]["line"], 7);
    assert_eq!(rollup["haltedAt"]["id"], "t07");
    let s = statuses(rollup);
    assert_eq!(s[..6], vec!["applied"; 6][..], "{s:?}");
    assert_eq!(s[6], "failed", "{s:?}");
    assert_eq!(s[7..], vec!["skipped"; 13][..], "{s:?}");
    for (i, db) in fleet.dbs.iter().enumerate() {
        match i + 1 {
            1..=6 => assert_eq!(applied(db), 2, "line {}", i + 1),
            // The first migration applied, the second failed on the existing table.
            7 => assert_eq!(applied(db), 1),
            // Untouched: not even the migrations table.
            _ => assert!(db.tables().is_empty(), "line {} was touched: {:?}", i + 1, db.tables()),
        }
    }
    assert_eq!(fleet.published(1).len(), 1);

    // Resolve target 7 as an operator would: drop the table, mark the failed migration rolled back.
    let t7 = &fleet.dbs[6];
    t7.sql("DROP TABLE orders;");
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = dir.path().join("prisma.zip");
    std::fs::write(&zip, fleet_artifact(&fleet)).expect("zip");
    let resolved = migrator_e2e::migrator(&["resolve", "--rolled-back", MIGRATIONS[1].0], &zip, &t7.url);
    assert!(resolved.ok(), "{}", resolved.stderr());

    // The same upload again: a new execution of the same rollout.
    let again = fleet.rollout(&event);
    let rollup2 = &again["rollup"];
    assert_eq!(again["execution"], "SUCCEEDED", "{again:#}");
    assert_eq!(rollup2["rolloutId"], rollup["rolloutId"], "the same artifact and targets: the same rollout");
    let s = statuses(rollup2);
    assert_eq!(s[..6], vec!["up-to-date"; 6][..], "{s:?}");
    assert_eq!(s[6..], vec!["applied"; 14][..], "{s:?}");
    for db in &fleet.dbs {
        assert_eq!(applied(db), 2, "{}", db.name);
    }
    let published = fleet.published(1);
    let chat: Value = serde_json::from_str(published[0]["https"].as_str().unwrap_or_default()).expect("chatbot JSON");
    assert_eq!(chat["metadata"]["threadId"], rollup["threadId"], "the re-run posts on the same thread");
}

#[test]
fn a_bad_target_line_rejects_the_rollout_and_touches_nothing() {
    let fleet = Fleet::new("fleet_bad", 3, &[], 1, 2);
    let lines = format!(
        "{}\n{}\n",
        serde_json::json!({"id": "t01", "auth": "url", "url": fleet.dbs[0].url}),
        serde_json::json!({"id": "t02", "auth": "url", "url": fleet.dbs[1].url, "port": 5432}),
    );
    fleet.aws.put_object(&fleet.bucket, migrator_e2e::fleet::TARGETS_KEY, lines.as_bytes());
    let run = fleet.rollout(&fleet.upload_event());
    let rollup = &run["rollup"];
    assert_eq!(rollup["status"], "rejected", "{run:#}");
    let reason = rollup["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("targets line 2 (t02): port: not used with auth=url"), "{reason}");
    for db in &fleet.dbs {
        assert!(db.tables().is_empty(), "{} was touched", db.name);
    }
}

/// The artifact's bytes (the zip the fleet uploaded).
fn fleet_artifact(fleet: &Fleet) -> Vec<u8> {
    let m = migrator_e2e::Migrations::new().with_lock("postgresql");
    for (name, sql) in MIGRATIONS {
        m.add(name, sql);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = dir.path().join("prisma.zip");
    m.zip(&zip);
    let _ = fleet;
    std::fs::read(zip).expect("zip")
}
