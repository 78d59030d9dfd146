//! Reliability under faults and load (PostgreSQL): SIGKILL at random points of a deploy,
//! connections terminated mid-migration, the lock holder dying while another deploy waits,
//! concurrent deploys of one artifact and of older/newer artifacts, and the CLI never
//! printing a password.
//!
//! Knobs: `RELIABILITY_TRIALS` (crash trials, default 10), `SOAK_ROUNDS` (default 1),
//! `RELIABILITY_SEED` (default: from the clock; printed, and named in every failure).
//! Each test prints one machine-readable line `reliability: test=… trials=… faults=… failures=0`
//! (visible with `--nocapture`; tests/scripts/reliability.sh sums them).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use migrator_e2e::{
    Migrations, PgDb, Run, env_number, migrator, migrator_bin, migrator_command, patience,
    pg_server, seed, wait_until,
};

// ---------------------------------------------------------------------------------------------
// Small helpers

/// Feeds `sql` to psql on stdin: statement by statement, like a person would (so
/// `CREATE INDEX CONCURRENTLY` works), stopping at the first error.
fn psql_script(url: &str, sql: &str) {
    let mut child = Command::new("psql")
        .args([url, "-qAtX", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "psql script failed: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spawn_deploy(artifact: &Path, url: &str, extra: &[&str]) -> Child {
    let args: Vec<&str> = std::iter::once("deploy")
        .chain(extra.iter().copied())
        .collect();
    migrator_command(&args, artifact, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("migrator starts")
}

fn finish(child: Child) -> Run {
    Run::from_output(child.wait_with_output().expect("migrator ends"))
}

/// Waits until no session of the migrator is left on `db` (a killed client's backend lives
/// on until it notices, and may still be finishing a statement).
fn wait_for_no_migrator_backend(db: &PgDb) {
    let query = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'migrator'",
        db.name
    );
    wait_until(&format!("no migrator backend left on {}", db.name), || {
        db.sql(&query) == "0"
    });
}

fn has_migrations_table(db: &PgDb) -> bool {
    db.sql("SELECT to_regclass('public._prisma_migrations') IS NOT NULL") == "t"
}

/// `(migration_name, finished, rolled_back, logs_is_null)` per row, by start time.
fn row_states(db: &PgDb) -> Vec<(String, bool, bool, bool)> {
    if !has_migrations_table(db) {
        return Vec::new();
    }
    db.rows()
        .iter()
        .map(|r| {
            (
                r["migration_name"].as_str().unwrap_or("").to_string(),
                !r["finished_at"].is_null(),
                !r["rolled_back_at"].is_null(),
                r["logs"].is_null(),
            )
        })
        .collect()
}

fn no_panic(run: &Run) {
    assert!(
        !run.stderr().contains("panicked"),
        "migrator panicked: {}",
        run.stderr()
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Crash safety: SIGKILL at random points

const CRASH: [(&str, &str); 4] = [
    (
        "20240101000000_first",
        "CREATE TABLE a (id int PRIMARY KEY);\nSELECT pg_sleep(0.05);\nCREATE TABLE a2 (id int REFERENCES a(id));\n",
    ),
    (
        "20240102000000_second",
        "CREATE TABLE b (id int);\nSELECT pg_sleep(0.05);\nALTER TABLE b ADD COLUMN x text;\nSELECT pg_sleep(0.05);\nCREATE TABLE b2 (id int);\n",
    ),
    (
        // Statement by statement (no transaction): a kill may leave a started row.
        "20240103000000_concurrent",
        "CREATE INDEX CONCURRENTLY a2_id ON a2(id);\nSELECT pg_sleep(0.05);\nCREATE INDEX CONCURRENTLY b_x ON b(x);\n",
    ),
    (
        "20240104000000_fourth",
        "CREATE TABLE d (id int);\nSELECT pg_sleep(0.05);\nCREATE VIEW dv AS SELECT id FROM d;\n",
    ),
];
const CONCURRENT_INDEX: usize = 2;
const PARTIAL_CLEANUP: &str = "DROP INDEX IF EXISTS a2_id; DROP INDEX IF EXISTS b_x;";

fn crash_artifact() -> Migrations {
    let m = Migrations::new().with_lock("postgresql");
    for (name, sql) in CRASH {
        m.add(name, sql);
    }
    m
}

/// Schema dumps of a database where the first k migrations were applied by psql, k = 0..=4,
/// plus the dump of an empty database (killed before `_prisma_migrations` existed).
fn crash_references() -> (String, Vec<String>) {
    let empty = PgDb::fresh("rel_ref_empty").schema_dump();
    let mut dumps = Vec::new();
    for k in 0..=CRASH.len() {
        let db = PgDb::fresh("rel_ref");
        psql_script(
            &db.url,
            migrator_engine::dialect::postgres::CREATE_MIGRATIONS_TABLE,
        );
        for (_, sql) in &CRASH[..k] {
            psql_script(&db.url, sql);
        }
        dumps.push(db.schema_dump());
    }
    (empty, dumps)
}

#[test]
fn sigkill_at_random_points_never_leaves_a_partial_migration() {
    let trials = env_number("RELIABILITY_TRIALS", 10);
    let seed = seed("RELIABILITY_SEED");
    println!("crash safety: seed {seed} (RELIABILITY_SEED={seed} to replay)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (empty_dump, references) = crash_references();
    let artifact = crash_artifact();

    // Calibrate: how long does an unharmed deploy take?
    let calibration = PgDb::fresh("rel_calib");
    let started = Instant::now();
    let run = finish(spawn_deploy(artifact.path(), &calibration.url, &[]));
    let full = started.elapsed();
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(calibration.schema_dump(), references[CRASH.len()]);
    drop(calibration);
    let span_ms = (full.as_millis() as u64 * 11 / 10).max(50);

    let mut faults = 0;
    let mut partial = 0;
    let mut by_finished = [0u32; CRASH.len() + 1];
    for trial in 0..trials {
        let ctx = format!("trial {trial}, seed {seed}");
        let db = PgDb::fresh("rel_crash");
        let delay = Duration::from_millis(rng.u64(..=span_ms));
        let mut child = spawn_deploy(artifact.path(), &db.url, &[]);
        std::thread::sleep(delay);
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            child.kill().unwrap();
            faults += 1;
        }
        let run = finish(child);
        if !killed {
            assert_eq!(run.status(), "applied", "{ctx}: {}", run.stdout());
        }
        wait_for_no_migrator_backend(&db);

        // The rows: a prefix of the migrations finished, at most one started and unfinished
        // (only the statement-by-statement one), nothing twice.
        let rows = row_states(&db);
        let finished: Vec<&str> = rows.iter().filter(|r| r.1).map(|r| r.0.as_str()).collect();
        let expected_prefix: Vec<&str> = CRASH[..finished.len()].iter().map(|m| m.0).collect();
        assert_eq!(finished, expected_prefix, "{ctx}: rows {rows:?}");
        let unfinished: Vec<_> = rows.iter().filter(|r| !r.1).collect();
        let mut is_partial = false;
        match unfinished.as_slice() {
            [] => {}
            [(name, _, rolled_back, logs_null)] => {
                assert_eq!(
                    name, CRASH[CONCURRENT_INDEX].0,
                    "{ctx}: a transactional migration left a row behind: {rows:?}"
                );
                assert_eq!(finished.len(), CONCURRENT_INDEX, "{ctx}: {rows:?}");
                assert!(!rolled_back && *logs_null, "{ctx}: {rows:?}");
                is_partial = true;
            }
            more => panic!("{ctx}: several unfinished rows: {more:?}"),
        }
        by_finished[finished.len()] += 1;

        // The schema: exactly the finished migrations (the partial index aside).
        if !has_migrations_table(&db) {
            assert_eq!(
                db.schema_dump(),
                empty_dump,
                "{ctx}: killed before the table"
            );
        } else if is_partial {
            partial += 1;
            // Prisma's "failed": the next deploy refuses with P3009, naming it, logs NULL.
            let refused = migrator(&["deploy"], artifact.path(), &db.url);
            no_panic(&refused);
            assert_eq!(refused.error_code(), "P3009", "{ctx}: {}", refused.stdout());
            assert_eq!(
                refused.names("failed"),
                [CRASH[CONCURRENT_INDEX].0],
                "{ctx}"
            );
            assert!(refused.json["failed"][0]["logs"].is_null(), "{ctx}");
            assert_eq!(row_states(&db), rows, "{ctx}: P3009 changed rows");
            let resolved = migrator(
                &["resolve", "--rolled-back", CRASH[CONCURRENT_INDEX].0],
                artifact.path(),
                &db.url,
            );
            assert!(resolved.ok(), "{ctx}: {}", resolved.stdout());
            db.sql(PARTIAL_CLEANUP);
            assert_eq!(db.schema_dump(), references[finished.len()], "{ctx}");
        } else {
            assert_eq!(
                db.schema_dump(),
                references[finished.len()],
                "{ctx}: the schema is not that of the finished migrations {finished:?}"
            );
        }

        // The next deploy finishes the job; nothing is recorded twice.
        let next = migrator(&["deploy"], artifact.path(), &db.url);
        no_panic(&next);
        assert!(next.ok(), "{ctx}: {}{}", next.stdout(), next.stderr());
        let expected_applied: Vec<&str> = CRASH[finished.len()..].iter().map(|m| m.0).collect();
        assert_eq!(next.names("applied"), expected_applied, "{ctx}");
        assert_eq!(db.schema_dump(), references[CRASH.len()], "{ctx}");
        let live: Vec<String> = row_states(&db)
            .into_iter()
            .filter(|r| !r.2)
            .map(|r| {
                assert!(r.1, "{ctx}: unfinished row after recovery");
                r.0
            })
            .collect();
        let all: Vec<String> = CRASH.iter().map(|m| m.0.to_string()).collect();
        assert_eq!(live, all, "{ctx}: each migration exactly once");
    }
    println!(
        "crash safety: finished-migration counts at the kill {by_finished:?}, {partial} partial statement-by-statement runs recovered with resolve"
    );
    println!("reliability: test=crash trials={trials} faults={faults} failures=0");
}

// ---------------------------------------------------------------------------------------------
// 2. Connection faults

/// Waits for `ready`: at least `timeout`, and never less than the suite's patience, so a
/// loaded machine cannot fail a test that is only slow (see `migrator_e2e::patience`).
fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let limit = timeout.max(patience());
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A lock the test holds (advisory key 4242 on one database, from a psql session) that a
/// migration waits on with [`GATE_SQL`]: the migration stays exactly there, for as long as the
/// test needs, however slow the machine, until [`Gate::open`].
struct Gate<'a> {
    db: &'a PgDb,
    psql: Child,
}

/// What a migration runs to wait at the gate (released with its transaction).
const GATE_SQL: &str = "SELECT pg_advisory_xact_lock(4242);";

impl<'a> Gate<'a> {
    fn close(db: &'a PgDb) -> Gate<'a> {
        let psql = db.advisory_lock_session(4242, Duration::from_secs(3600), "reliability_gate");
        wait_until("the gate's lock", || db.advisory_lock_held(4242));
        Gate { db, psql }
    }

    /// A migrator session of the database waiting at the gate.
    fn waiter_pid(&self) -> String {
        self.db.sql(&format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'migrator' AND wait_event_type = 'Lock' AND query LIKE '%4242%'",
            self.db.name
        ))
    }

    fn is_closed(&self) -> bool {
        self.db.sql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'reliability_gate'",
            self.db.name
        )) == "1"
    }

    fn open(mut self) {
        self.db.sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'reliability_gate'",
            self.db.name
        ));
        let _ = self.psql.kill();
        let _ = self.psql.wait();
    }
}

#[test]
fn a_terminated_backend_mid_migration_fails_clearly_and_the_next_deploy_recovers() {
    let db = PgDb::fresh("rel_terminate");
    let m = Migrations::new().with_lock("postgresql");
    m.add("20240101000000_fast", "CREATE TABLE fast (id int);");
    m.add(
        "20240102000000_slow",
        &format!("CREATE TABLE slow1 (id int);\n{GATE_SQL}\nCREATE TABLE slow2 (id int);\n"),
    );
    m.add("20240103000000_after", "CREATE TABLE after (id int);");
    let gate = Gate::close(&db);
    let child = spawn_deploy(m.path(), &db.url, &[]);
    let mut pid = String::new();
    wait_for("the slow migration", Duration::from_secs(20), || {
        pid = gate.waiter_pid();
        !pid.is_empty()
    });
    assert_eq!(db.sql(&format!("SELECT pg_terminate_backend({pid})")), "t");
    let run = finish(child);
    no_panic(&run);
    // It ended because of the termination: the migration it was in still waits at the gate.
    assert!(gate.is_closed(), "not promptly: the gate was opened first");
    gate.open();
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(run.names("applied"), ["20240101000000_fast"]);
    let message = run.json["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("20240102000000_slow") && message.to_lowercase().contains("terminat"),
        "unclear message: {message}"
    );
    println!("terminated backend: {message}");
    // No partial schema: slow1 was rolled back with its transaction; no row, so not "failed".
    assert_eq!(db.tables(), ["_prisma_migrations", "fast"]);
    let rows = row_states(&db);
    assert!(
        rows.iter().all(|r| r.1),
        "a row that Prisma calls failed although no statement failed: {rows:?}"
    );
    let next = migrator(&["deploy"], m.path(), &db.url);
    assert!(next.ok(), "{}", next.stdout());
    assert_eq!(
        next.names("applied"),
        ["20240102000000_slow", "20240103000000_after"]
    );
    let names: Vec<String> = row_states(&db).into_iter().map(|r| r.0).collect();
    assert_eq!(
        names,
        [
            "20240101000000_fast",
            "20240102000000_slow",
            "20240103000000_after"
        ]
    );
    println!("reliability: test=terminate trials=1 faults=1 failures=0");
}

#[test]
fn a_lock_holder_terminated_while_a_deploy_waits_lets_it_proceed() {
    let db = PgDb::fresh("rel_lock_holder");
    let m = Migrations::new().with_lock("postgresql");
    m.add("20240101000000_init", "CREATE TABLE t (id int);");
    let mut holder =
        db.advisory_lock_session(72707369, Duration::from_secs(3600), "rel_lock_holder");
    wait_for("the holder's lock", Duration::from_secs(10), || {
        db.advisory_lock_held(72707369)
    });
    // The holder sleeps far longer than the waiter's lock timeout: the deploy can only succeed
    // because the holder was terminated.
    let waiter = spawn_deploy(m.path(), &db.url, &["--lock-timeout", "600s"]);
    wait_for("the deploy to wait", Duration::from_secs(10), || {
        db.sql(&format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'migrator' AND wait_event_type = 'Lock'", db.name)) == "1"
    });
    let started = Instant::now();
    db.sql(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'rel_lock_holder'", db.name));
    let run = finish(waiter);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(run.ok(), "{}", run.stdout());
    assert_eq!(run.names("applied"), ["20240101000000_init"]);
    assert!(started.elapsed() < Duration::from_secs(600));
    println!("reliability: test=lock-holder-terminated trials=1 faults=1 failures=0");
}

#[test]
fn a_migrator_killed_while_holding_the_lock_lets_the_waiting_one_finish_the_job() {
    let db = PgDb::fresh("rel_holder_killed");
    let m = Migrations::new().with_lock("postgresql");
    m.add("20240101000000_init", "CREATE TABLE t (id int);");
    m.add(
        "20240102000000_slow",
        &format!("CREATE TABLE s1 (id int);\n{GATE_SQL}\nCREATE TABLE s2 (id int);\n"),
    );
    m.add("20240103000000_last", "CREATE TABLE last (id int);");
    let gate = Gate::close(&db);
    let mut first = spawn_deploy(m.path(), &db.url, &[]);
    wait_for("the slow migration", Duration::from_secs(20), || {
        !gate.waiter_pid().is_empty()
    });
    let second = spawn_deploy(m.path(), &db.url, &["--lock-timeout", "600s"]);
    wait_for("the second deploy to wait", Duration::from_secs(10), || {
        db.sql(&format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'migrator' AND wait_event_type = 'Lock' AND query LIKE '%72707369%'", db.name)) == "1"
    });
    first.kill().unwrap();
    let _ = first.wait();
    // The killed deploy's backend finishes the statement it was in (the gate) and then notices
    // its client is gone: its transaction rolls back and the lock is free.
    gate.open();
    let run = finish(second);
    no_panic(&run);
    assert!(run.ok(), "{}", run.stdout());
    assert_eq!(
        run.names("applied"),
        ["20240102000000_slow", "20240103000000_last"]
    );
    let rows = row_states(&db);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "20240101000000_init",
            "20240102000000_slow",
            "20240103000000_last"
        ]
    );
    assert!(rows.iter().all(|r| r.1 && !r.2));
    assert_eq!(db.tables(), ["_prisma_migrations", "last", "s1", "s2", "t"]);
    println!("reliability: test=holder-killed trials=1 faults=1 failures=0");
}

// ---------------------------------------------------------------------------------------------
// 3. Concurrency soak

fn soak_migrations(count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| {
            (
                format!("2024020100{i:04}_soak{i}"),
                format!("CREATE TABLE soak{i} (id int);\nSELECT pg_sleep(0.01);\nALTER TABLE soak{i} ADD COLUMN v text;\n"),
            )
        })
        .collect()
}

fn artifact_of(migrations: &[(String, String)]) -> Migrations {
    let m = Migrations::new().with_lock("postgresql");
    for (name, sql) in migrations {
        m.add(name, sql);
    }
    m
}

/// Starts all deploys at once, waits for all, then checks exactly-once and that each
/// outcome agrees with the database.
fn soak(db: &PgDb, artifacts: &[(&Migrations, Vec<String>)], n: usize) -> usize {
    let children: Vec<(usize, Child)> = (0..n)
        .map(|i| {
            let which = i % artifacts.len();
            (
                which,
                spawn_deploy(
                    artifacts[which].0.path(),
                    &db.url,
                    &["--lock-timeout", "120s"],
                ),
            )
        })
        .collect();
    let runs: Vec<(usize, Run)> = children.into_iter().map(|(w, c)| (w, finish(c))).collect();
    let rows = row_states(db);
    let mut applied_total = Vec::new();
    for (which, run) in &runs {
        no_panic(run);
        assert!(run.ok(), "{}{}", run.stdout(), run.stderr());
        assert!(
            ["applied", "up-to-date"].contains(&run.status()),
            "{}",
            run.stdout()
        );
        let names = run.names("applied");
        assert_eq!(run.status() == "applied", !names.is_empty());
        for name in &names {
            assert!(
                artifacts[*which].1.contains(name),
                "applied {name} not in its artifact"
            );
            assert!(
                rows.iter().any(|r| &r.0 == name && r.1),
                "{name} reported applied but not finished in the database"
            );
        }
        assert!(run.names("pending").is_empty(), "{}", run.stdout());
        applied_total.extend(names);
    }
    let mut sorted = applied_total.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        applied_total.len(),
        "applied twice: {applied_total:?}"
    );
    // Every row is finished, unique, and was reported by exactly one run in this round
    // (or an earlier round).
    let mut names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert!(rows.iter().all(|r| r.1 && !r.2), "{rows:?}");
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a migration recorded twice: {rows:?}");
    runs.len()
}

#[test]
fn concurrency_soak_same_and_alternating_artifacts_apply_each_migration_once() {
    let rounds = env_number("SOAK_ROUNDS", 1);
    let all = soak_migrations(8);
    let older = artifact_of(&all[..5]);
    let newer = artifact_of(&all);
    let names = |m: &[(String, String)]| m.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    let mut invocations = 0;
    for round in 0..rounds {
        // 20 deploys of the same artifact on a fresh database.
        let db = PgDb::fresh("rel_soak_same");
        invocations += soak(&db, &[(&newer, names(&all))], 20);
        assert_eq!(db.tables().len(), all.len() + 1, "round {round}");

        // 20 deploys alternating an older and a newer artifact on a fresh database.
        let db = PgDb::fresh("rel_soak_mixed");
        invocations += soak(
            &db,
            &[(&older, names(&all[..5])), (&newer, names(&all))],
            20,
        );
        let rows = row_states(&db);
        assert_eq!(rows.len(), all.len(), "round {round}: {rows:?}");
        // The newer artifact's migrations come after the older's: order is kept.
        let order: Vec<String> = rows.into_iter().map(|r| r.0).collect();
        assert_eq!(order, names(&all), "round {round}");
    }
    println!("reliability: test=soak rounds={rounds} invocations={invocations} failures=0");
}

// ---------------------------------------------------------------------------------------------
// 6. Secrets hygiene over the CLI's output

#[test]
fn no_password_appears_in_any_cli_output() {
    const PASSWORD: &str = "Sekr3t-Rel-7f3a9c";
    let db = PgDb::fresh("rel_secret");
    let role = format!("rel_secret_{}", std::process::id());
    let admin = format!("{}/postgres", pg_server());
    migrator_e2e::psql(
        &admin,
        &format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{PASSWORD}'"
        ),
    );
    let server = pg_server();
    let host = server.rsplit('@').next().unwrap();
    let url = format!("postgresql://{role}:{PASSWORD}@{host}/{}", db.name);
    let encoded = format!(
        "postgresql://{role}:{}@{host}/{}",
        PASSWORD.replace('-', "%2D"),
        db.name
    );
    let wrong = format!("postgresql://{role}:{PASSWORD}x@{host}/{}", db.name);
    let refused = format!("postgresql://{role}:{PASSWORD}@127.0.0.1:1/{}", db.name);
    let bad_param = format!("{url}?sslmode=bogus&password={PASSWORD}");

    let good = Migrations::new().with_lock("postgresql");
    good.add("20240101000000_init", "CREATE TABLE t (id int);");
    let mut outputs = Vec::new();
    for args in [
        &["plan"][..],
        &["deploy"],
        &["status"],
        &["deploy"],
        &["resolve", "--applied", "20240109000000_nope"],
    ] {
        for target in [&url, &encoded, &wrong, &refused, &bad_param] {
            let run = migrator(args, good.path(), target);
            no_panic(&run);
            outputs.push((format!("{args:?} {target}"), run.stdout() + &run.stderr()));
        }
    }
    // Verbose logs too.
    let out = Command::new(migrator_bin())
        .args(["deploy", "--database-url", &wrong, "--artifact"])
        .arg(good.path())
        .env("RUST_LOG", "trace")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    outputs.push((
        "trace".into(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    ));
    // The URL from the environment, too.
    let out = Command::new(migrator_bin())
        .args(["status", "--json", "--artifact"])
        .arg(good.path())
        .env("DATABASE_URL", &wrong)
        .output()
        .unwrap();
    outputs.push((
        "env".into(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    ));
    migrator_e2e::psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", db.name),
    );
    for (what, text) in &outputs {
        for secret in [PASSWORD, "Sekr3t%2DRel"] {
            assert!(
                !text.contains(secret),
                "{what} printed the password:\n{text}"
            );
        }
    }
    migrator_e2e::psql(&admin, &format!("DROP ROLE IF EXISTS {role}"));
    println!(
        "reliability: test=secrets cases={} failures=0",
        outputs.len()
    );
}
