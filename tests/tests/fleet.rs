//! A fleet end to end: the construct's synthesized state machine, executed by
//! aws-local-stepfunctions (infra/scripts/run-fleet.ts), each child the real
//! `migrator handle-event` against its own database on the local PostgreSQL.

use migrator_e2e::fleet::{Fleet, MIGRATIONS, statuses};

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
    let fleet = Fleet::new("fleet_all", 20, 2, 4);
    let run = fleet.rollout(&fleet.upload_event());
    let rollup = &run["rollup"];
    assert_eq!(run["execution"], "SUCCEEDED", "{run:#}");
    assert_eq!(rollup["status"], "applied", "{rollup:#}");
    assert_eq!(statuses(rollup), vec!["applied"; 20]);
    for db in &fleet.dbs {
        assert_eq!(applied(db), MIGRATIONS.len(), "{}", db.name);
    }
    // The canary (lines 1 and 2) finished before any wave target started.
    let canary_done = fleet.dbs[..2]
        .iter()
        .flat_map(times)
        .map(|(_, f)| f)
        .max()
        .expect("canary rows");
    let waves_start = fleet.dbs[2..]
        .iter()
        .flat_map(times)
        .map(|(s, _)| s)
        .min()
        .expect("wave rows");
    assert!(
        canary_done <= waves_start,
        "canary finished {canary_done}, a wave started {waves_start}"
    );
    // One message, on the rollout's thread.
    let published = fleet.published(1);
    assert_eq!(published.len(), 1, "{published:#?}");
    // A queue subscriber reads the rollup document (the message's `default`); Chatbot reads
    // the `https` rendering with the same threadId (fleet::rollup's unit test).
    assert_eq!(published[0]["kind"], "fleet-rollup");
    assert_eq!(published[0]["threadId"], rollup["threadId"]);
    assert_eq!(published[0]["targets"].as_array().map(Vec::len), Some(20));
}

#[test]
fn a_poisoned_target_halts_the_rollout_and_a_rerun_finishes_it() {
    // Waves one at a time: "after the halt" is then every later line.
    let fleet = Fleet::new("fleet_halt", 20, 2, 1);
    // Every database has the first migration from an earlier rollout; target 7 then got an
    // `orders` table by hand, which the second migration creates: it fails there.
    fleet.baseline();
    fleet.dbs[6].sql("CREATE TABLE orders (id integer PRIMARY KEY);");
    let event = fleet.upload_event();
    let run = fleet.rollout(&event);
    let rollup = &run["rollup"];
    assert!(
        run["execution"]
            .as_str()
            .unwrap_or_default()
            .starts_with("FAILED"),
        "{run:#}"
    );
    assert_eq!(rollup["status"], "halted", "{rollup:#}");
    assert_eq!(rollup["haltedAt"]["line"], 7);
    assert_eq!(rollup["haltedAt"]["id"], "t07");
    let s = statuses(rollup);
    assert_eq!(s[..6], vec!["applied"; 6][..], "{s:?}");
    assert_eq!(s[6], "failed", "{s:?}");
    assert_eq!(s[7..], vec!["skipped"; 13][..], "{s:?}");
    let rows = |db: &migrator_e2e::PgDb| {
        db.sql("SELECT count(*) FROM _prisma_migrations")
            .trim()
            .to_string()
    };
    for (i, db) in fleet.dbs.iter().enumerate() {
        match i + 1 {
            1..=6 => assert_eq!(applied(db), 2, "line {}", i + 1),
            // The second migration failed on the existing table: its row says so.
            7 => {
                assert_eq!(applied(db), 1);
                assert_eq!(rows(db), "2");
            }
            // Untouched by this rollout: the earlier migration only, no `orders`.
            _ => {
                assert_eq!(rows(db), "1", "line {} was touched", i + 1);
                assert!(
                    !db.tables().contains(&"orders".to_string()),
                    "line {} was touched: {:?}",
                    i + 1,
                    db.tables()
                );
            }
        }
    }
    assert_eq!(fleet.published(1).len(), 1);

    // Resolve target 7 as an operator would: drop the table, mark the failed migration rolled back.
    let t7 = &fleet.dbs[6];
    t7.sql("DROP TABLE orders;");
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = dir.path().join("prisma.zip");
    fleet.artifact_zip(&zip);
    let resolved = migrator_e2e::migrator(
        &["resolve", "--rolled-back", MIGRATIONS[1].0],
        &zip,
        &t7.url,
    );
    assert!(resolved.ok(), "{}", resolved.stderr());

    // The same upload again: a new execution of the same rollout.
    let again = fleet.rollout(&event);
    let rollup2 = &again["rollup"];
    assert_eq!(again["execution"], "SUCCEEDED", "{again:#}");
    assert_eq!(
        rollup2["rolloutId"], rollup["rolloutId"],
        "the same artifact and targets: the same rollout"
    );
    let s = statuses(rollup2);
    assert_eq!(s[..6], vec!["up-to-date"; 6][..], "{s:?}");
    assert_eq!(s[6..], vec!["applied"; 14][..], "{s:?}");
    assert_eq!(rollup2["status"], "applied");
    for db in &fleet.dbs {
        assert_eq!(applied(db), 2, "{}", db.name);
    }
    let published = fleet.published(1);
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0]["threadId"], rollup["threadId"],
        "the re-run posts on the same thread"
    );
}

#[test]
fn a_bad_target_line_rejects_the_rollout_and_touches_nothing() {
    let fleet = Fleet::new("fleet_bad", 3, 1, 2);
    let lines = format!(
        "{}\n{}\n",
        serde_json::json!({"id": "t01", "auth": "url", "url": fleet.dbs[0].url}),
        serde_json::json!({"id": "t02", "auth": "url", "url": fleet.dbs[1].url, "port": 5432}),
    );
    fleet.aws.put_object(
        &fleet.bucket,
        migrator_e2e::fleet::TARGETS_KEY,
        lines.as_bytes(),
    );
    let run = fleet.rollout(&fleet.upload_event());
    let rollup = &run["rollup"];
    assert_eq!(rollup["status"], "rejected", "{run:#}");
    let reason = rollup["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("targets line 2 (t02): port: not used with auth=url"),
        "{reason}"
    );
    for db in &fleet.dbs {
        assert!(db.tables().is_empty(), "{} was touched", db.name);
    }
}
