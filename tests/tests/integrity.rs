//! The outcome is the truth (issue 10, issue 14 items 7–8): under hostile SQL, races,
//! deadlines and held locks, what the migrator reports is what the database holds.
//! PostgreSQL, MariaDB and SQLite, each case on a fresh database.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use migrator_e2e::mariadb::{client, server as my_server, sql_in};
use migrator_e2e::run_engine;
use migrator_e2e::{
    Migrations, MyDb, PgDb, Run, Serial, finished, migrator, migrator_bin, migrator_command,
    pg_server, psql,
};
use migrator_engine::engine::Settings;
use migrator_engine::outcome::Status;

/// Runs `migrator` like the harness, but kills it after `limit` (a hang is a failure, not a
/// stuck test run). The limit is generous: it only bounds a hang.
fn migrator_within(limit: Duration, args: &[&str], artifact: &Path, url: &str) -> Option<Run> {
    let mut child = migrator_command(args, artifact, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("migrator starts");
    let start = Instant::now();
    while child
        .try_wait()
        .expect("migrator can be waited for")
        .is_none()
    {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Run::from_output(
        child.wait_with_output().expect("migrator output"),
    ))
}

fn logs(run: &Run) -> String {
    run.json["failed"][0]["logs"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn message(run: &Run) -> String {
    run.json["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn hint(run: &Run) -> String {
    run.json["error"]["hint"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn has_table(db: &PgDb, schema: &str, table: &str) -> bool {
    db.sql(&format!(
        "SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}' AND tablename = '{table}'"
    )) == "1"
}

// ---------------------------------------------------------------- item 1: hidden COMMIT

#[test]
fn a_commit_hidden_from_the_splitter_by_a_function_named_begin_is_reported_truthfully() {
    let db = PgDb::fresh("hidden_commit");
    let m = Migrations::new();
    m.add("20240101000000_a", "CREATE TABLE one (id int);\n");
    m.add(
        "20240102000000_b",
        "CREATE TABLE a (id int);\nCREATE FUNCTION begin() RETURNS int LANGUAGE sql AS 'SELECT 1';\nCOMMIT;\nCREATE TABLE b (id int);\nSELECT 1/0;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(run.error_code(), "P3018");
    // The COMMIT made `a` and the row permanent; `b` went with the failing rest.
    assert!(has_table(&db, "public", "a"));
    assert!(!has_table(&db, "public", "b"));
    let logs = logs(&run);
    assert!(
        !logs.contains("none of its statements were applied"),
        "{logs}"
    );
    assert!(logs.contains("ended the migrator's transaction"), "{logs}");
    assert!(hint(&run).contains("resolve --applied"), "{}", hint(&run));
    // The database says the same: one failed row, holding those logs.
    let rows = db.rows();
    assert_eq!(rows.len(), 2);
    assert!(rows[1]["finished_at"].is_null());
    assert!(
        rows[1]["logs"]
            .as_str()
            .unwrap_or_default()
            .contains("ended the migrator's transaction")
    );
    let again = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(again.error_code(), "P3009");
}

#[test]
fn a_script_that_commits_itself_and_succeeds_is_applied_and_says_it_was_not_atomic() {
    let db = PgDb::fresh("hidden_commit_ok");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE a (id int);\nCREATE FUNCTION begin() RETURNS int LANGUAGE sql AS 'SELECT 1';\nCOMMIT;\nCREATE TABLE b (id int);\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert!(has_table(&db, "public", "a") && has_table(&db, "public", "b"));
    assert_eq!(finished(&db), [("20240101000000_a".to_string(), true)]);
    let warnings = run.json["warnings"].to_string();
    assert!(warnings.contains("not as one transaction"), "{warnings}");
    assert_eq!(
        migrator(&["deploy"], m.path(), &db.url).status(),
        "up-to-date"
    );
}

#[test]
fn the_splitter_follows_standard_conforming_strings_off() {
    let db = PgDb::fresh("scs_off");
    db.sql(&format!(
        "ALTER DATABASE \"{}\" SET standard_conforming_strings = off",
        db.name
    ));
    let m = Migrations::new();
    // With the setting off, '\'' is one string: the COMMIT after it is a statement.
    m.add(
        "20240101000000_a",
        "CREATE TABLE a (id int);\nSELECT '\\'';\nCOMMIT;\nCREATE TABLE b (id int);\nSELECT 1/0;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    // The COMMIT is seen (the script controls transactions): what ran up to it stands,
    // what followed it fell with the error, and the report names exactly that.
    let committed = run.json["failed"][0]["committedStatements"].clone();
    assert_eq!(committed, serde_json::json!([1, 2, 3]), "{}", run.stdout());
    assert!(has_table(&db, "public", "a") && !has_table(&db, "public", "b"));
    assert!(!logs(&run).contains("none of its statements were applied"));
}

// ---------------------------------------------------- item 2: a transaction left open

#[test]
fn a_migration_that_leaves_a_transaction_open_fails_clearly_on_postgres() {
    let db = PgDb::fresh("left_open");
    let m = Migrations::new();
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    m.add("20240102000000_b", "BEGIN;\nCREATE TABLE b (id int);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(!run.ok());
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(run.error_code(), "P3018");
    assert!(logs(&run).contains("left a transaction of its own open"));
    assert!(!has_table(&db, "public", "b"));
    assert_eq!(run.names("applied"), ["20240101000000_a"]);
    assert_eq!(
        finished(&db),
        [
            ("20240101000000_a".to_string(), true),
            ("20240102000000_b".to_string(), false)
        ]
    );
}

#[test]
fn a_migration_that_leaves_a_transaction_open_fails_clearly_on_mariadb() {
    let db = MyDb::fresh("left_open");
    let m = Migrations::new().with_lock("mysql");
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    m.add(
        "20240102000000_b",
        "START TRANSACTION;\nINSERT INTO a VALUES (1);\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(run.error_code(), "P3018");
    assert!(logs(&run).contains("left a transaction of its own open"));
    assert_eq!(db.sql("SELECT count(*) FROM a"), "0");
    let rows = db.rows();
    assert_eq!(rows.len(), 2);
    assert!(rows[1]["finished_at"].is_null());
    assert!(!rows[1]["logs"].is_null());
}

#[test]
fn a_migration_that_leaves_a_transaction_open_fails_clearly_on_sqlite() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("file:{}", dir.path().join("dev.db").display());
    let m = Migrations::new().with_lock("sqlite");
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    m.add("20240102000000_b", "BEGIN;\nCREATE TABLE b (id int);\n");
    let run = migrator(&["deploy"], m.path(), &url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(run.error_code(), "P3018");
    assert!(logs(&run).contains("left a transaction of its own open"));
    let status = migrator(&["status"], m.path(), &url);
    assert_eq!(
        status.names("failed"),
        ["20240102000000_b"],
        "{}",
        status.stdout()
    );
}

// ------------------------------------------------------------------ item 3: COPY

#[test]
fn copy_from_stdin_and_to_stdout_are_refused_before_anything_is_applied() {
    let db = PgDb::fresh("copy");
    for (copy, says) in [
        ("COPY t FROM STDIN;", "waits for data the client sends"),
        ("COPY t TO STDOUT;", "streams rows to the client"),
    ] {
        let m = Migrations::new();
        m.add("20240101000000_a", "CREATE TABLE first (id int);\n");
        m.add(
            "20240102000000_b",
            &format!("CREATE TABLE t (id int);\n{copy}\n"),
        );
        let run = migrator_within(Duration::from_secs(120), &["deploy"], m.path(), &db.url)
            .expect("a COPY never makes the deploy hang");
        assert_eq!(run.status(), "rejected", "{}", run.stdout());
        let message = message(&run);
        assert!(
            message.contains("COPY t") && message.contains(says),
            "{message}"
        );
        assert!(message.contains("20240102000000_b") && message.contains("line 2"));
        assert!(!has_table(&db, "public", "first"));
        assert!(!has_table(&db, "public", "_prisma_migrations"));
    }
}

// ------------------------------------------------------------ item 4: bookkeeping

#[test]
fn a_migration_that_empties_or_drops_prisma_migrations_is_rolled_back_and_said() {
    for (tag, sql, says) in [
        (
            "truncate",
            "CREATE TABLE t (id int);\nTRUNCATE _prisma_migrations;\n",
            "deleted its own row",
        ),
        (
            "delete",
            "CREATE TABLE t (id int);\nDELETE FROM _prisma_migrations WHERE finished_at IS NULL;\n",
            "deleted its own row",
        ),
        (
            "drop",
            "CREATE TABLE t (id int);\nDROP TABLE _prisma_migrations;\n",
            "no longer exists",
        ),
        (
            "move",
            "CREATE SCHEMA other;\nALTER TABLE _prisma_migrations SET SCHEMA other;\n",
            "no longer exists",
        ),
    ] {
        let db = PgDb::fresh(tag);
        let m = Migrations::new();
        m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
        m.add("20240102000000_b", sql);
        let run = migrator(&["deploy"], m.path(), &db.url);
        assert_eq!(run.status(), "failed", "{tag}: {}", run.stdout());
        assert_eq!(run.error_code(), "P3018", "{tag}");
        let message = message(&run);
        assert!(message.contains("20240102000000_b"), "{tag}: {message}");
        assert!(message.contains(says), "{tag}: {message}");
        assert!(message.contains("rolled back"), "{tag}: {message}");
        assert!(!has_table(&db, "public", "t"), "{tag}");
        assert_eq!(run.names("applied"), ["20240101000000_a"], "{tag}");
        // The first migration's row stands; the second left nothing.
        assert_eq!(
            finished(&db),
            [("20240101000000_a".to_string(), true)],
            "{tag}"
        );
    }
}

#[test]
fn a_statement_by_statement_migration_that_deletes_its_row_is_not_reported_applied() {
    let db = PgDb::fresh("sbs_delete");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nDELETE FROM _prisma_migrations;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert!(run.names("applied").is_empty());
    let message = message(&run);
    assert!(message.contains("20240101000000_a") && message.contains("row is gone"));
    assert!(message.contains("stays applied"), "{message}");
}

#[test]
fn another_applications_migrations_table_is_never_written() {
    let db = PgDb::fresh("other_app");
    // Another application's history in `public`.
    db.sql("CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0)");
    db.sql("INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ('other', 'x', now(), 'their_migration', 1)");
    let before = db.sql("SELECT id, checksum, finished_at, migration_name, logs, applied_steps_count FROM public._prisma_migrations");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE t1 (id int);\nRESET search_path;\n",
    );
    m.add("20240102000000_b", "CREATE TABLE t2 (id int);\n");
    m.add(
        "20240103000000_c",
        "SET search_path = public;\nCREATE TABLE t3 (id int);\n",
    );
    m.add("20240104000000_d", "CREATE TABLE t4 (id int);\n");
    let url = format!("{}?schema=app", db.url);
    let run = migrator(&["deploy"], m.path(), &url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    let after = db.sql("SELECT id, checksum, finished_at, migration_name, logs, applied_steps_count FROM public._prisma_migrations");
    assert_eq!(before, after, "the other application's table was written");
    let ours = db.sql("SELECT migration_name, finished_at IS NOT NULL FROM app._prisma_migrations ORDER BY migration_name");
    assert_eq!(
        ours,
        "20240101000000_a|t\n20240102000000_b|t\n20240103000000_c|t\n20240104000000_d|t"
    );
    // Each migration starts in the URL's schema, whatever the one before set.
    for t in ["t1", "t2", "t4"] {
        assert!(has_table(&db, "app", t), "{t}");
    }
    assert!(has_table(&db, "public", "t3"));
    assert_eq!(migrator(&["deploy"], m.path(), &url).status(), "up-to-date");
}

// -------------------------------------------------------- item 5: session settings

#[test]
fn a_setting_made_by_one_migration_stays_for_the_next_as_in_prisma_but_never_reaches_our_bookkeeping()
 {
    let db = PgDb::fresh("settings");
    let m = Migrations::new();
    // triggerdev's pattern: a lock timeout set once holds for the later migrations.
    m.add("20240101000000_a", "SET lock_timeout = '5s';\n");
    m.add(
        "20240102000000_b",
        "CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock_timeout;\n",
    );
    m.add(
        "20240103000000_c",
        "CREATE INDEX CONCURRENTLY seen_lt ON seen (lock_timeout);\nSET statement_timeout = 1;\n",
    );
    // A 1 ms statement timeout left for our finishing block does not cancel it.
    m.add("20240104000000_d", "SET statement_timeout = 1;\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(run.names("applied").len(), 4);
    assert!(finished(&db).iter().all(|(_, done)| *done));
    assert_eq!(db.sql("SELECT lock_timeout FROM seen"), "5s");
    // A new deploy is a new session: nothing of the last one's settings.
    m.add("20240105000000_e", "SELECT pg_sleep(0.2);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
}

#[test]
fn a_mariadb_migration_that_turns_autocommit_off_does_not_swallow_the_bookkeeping() {
    let db = MyDb::fresh("autocommit");
    let m = Migrations::new().with_lock("mysql");
    m.add(
        "20240101000000_a",
        "CREATE TABLE t (id int);\nSET autocommit = 0;\n",
    );
    m.add("20240102000000_b", "INSERT INTO t VALUES (1);\n");
    m.add(
        "20240103000000_c",
        "SET SESSION max_statement_time = 0.001;\n",
    );
    m.add("20240104000000_d", "SELECT SLEEP(0.2);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    // What was reported is what another session sees.
    assert_eq!(db.sql("SELECT count(*) FROM t"), "1");
    let rows = db.rows();
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| !r["finished_at"].is_null()), "{rows:?}");
}

// --------------------------------------------- item 6: scripts with their own BEGIN

#[test]
fn the_committed_list_of_a_script_with_its_own_transaction_is_what_the_server_kept() {
    let db = PgDb::fresh("own_tx");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE a (id int);\nBEGIN;\nCREATE TABLE b (id int);\nSELECT 1/0;\nCOMMIT;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    // As in Prisma's single message, `a` (before the script's BEGIN) fell with its
    // transaction, and so did `b`: nothing stands, and the report says so.
    assert!(!has_table(&db, "public", "a") && !has_table(&db, "public", "b"));
    assert_eq!(
        run.json["failed"][0]["committedStatements"],
        serde_json::json!([]),
        "{}",
        run.stdout()
    );
    assert_eq!(run.json["failed"][0]["failedStatement"], 4);
    // After its COMMIT, the rest is one more all-or-nothing group.
    let db = PgDb::fresh("own_tx_after");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\nSELECT 1/0;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(
        run.json["failed"][0]["committedStatements"],
        serde_json::json!([1, 2, 3]),
        "{}",
        run.stdout()
    );
    assert!(has_table(&db, "public", "a") && !has_table(&db, "public", "b"));
}

// ----------------------------------------------------- item 7: deadline cancellation

#[test]
fn a_statement_cancelled_by_our_deadline_is_incomplete_and_leaves_no_failed_row() {
    let db = PgDb::fresh("deadline");
    let m = Migrations::new();
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    m.add("20240102000000_b", "SELECT pg_sleep(120);\n");
    let settings = Settings {
        deadline: Some(Instant::now() + Duration::from_secs(12)),
        deadline_margin: Duration::from_secs(2),
        ..Settings::default()
    };
    let outcome = run_engine(m.path(), &db.url, settings);
    assert_eq!(outcome.status, Status::Incomplete, "{outcome:?}");
    let error = outcome.error.expect("an error says why");
    assert!(error.message.contains("20240102000000_b") && error.message.contains("deadline"));
    assert!(error.hint.unwrap_or_default().contains("MAX_DURATION"));
    assert!(outcome.failed.is_empty());
    assert_eq!(finished(&db), [("20240101000000_a".to_string(), true)]);
}

#[test]
fn a_statement_cancelled_by_our_deadline_on_mariadb_leaves_no_failed_row() {
    let db = MyDb::fresh("deadline");
    let m = Migrations::new().with_lock("mysql");
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    m.add("20240102000000_b", "SELECT SLEEP(120);\n");
    let settings = Settings {
        deadline: Some(Instant::now() + Duration::from_secs(12)),
        deadline_margin: Duration::from_secs(2),
        ..Settings::default()
    };
    let outcome = run_engine(m.path(), &db.url, settings);
    // MariaDB ends the statement with 1969 (max_statement_time exceeded).
    assert_eq!(outcome.status, Status::Incomplete, "{outcome:?}");
    let error = outcome.error.expect("an error says why");
    assert!(error.message.contains("20240102000000_b") && error.message.contains("deadline"));
    assert!(outcome.failed.is_empty());
    let rows = db.rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows.iter().all(|r| !r["finished_at"].is_null()), "{rows:?}");
}

// -------------------------------------------- item 8: a killed deploy frees the lock

#[test]
fn a_killed_deploys_backend_is_cancelled_and_the_next_deploy_gets_the_lock() {
    let db = PgDb::fresh("killed");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE flag (x int);\nINSERT INTO flag VALUES (1);\n",
    );
    m.add(
        "20240102000000_b",
        "SELECT pg_sleep(CASE WHEN EXISTS (SELECT 1 FROM flag) THEN 600 ELSE 0 END);\n",
    );
    let mut child = Command::new(migrator_bin())
        .args(["deploy", "--artifact"])
        .arg(m.path())
        .args(["--database-url", &db.url])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("migrator starts");
    let sleeping = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE '%SELECT pg_sleep(CASE%' AND pid <> pg_backend_pid()",
        db.name
    );
    let start = Instant::now();
    while psql(&db.url, &sleeping) != "1" {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the migration never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    db.sql("DELETE FROM flag");
    // A generous lock wait: the orphaned backend must go long before its 600 s sleep ends.
    let run = migrator(&["deploy", "--lock-timeout", "90s"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(run.names("applied"), ["20240102000000_b"]);
}

// -------------------------------------- item 9: two first deploys to a missing database

/// Both deploys start together; the second waits for the first's migration lock. That wait is
/// what is tested, so it may last as long as the suite's patience: Prisma's 10 s default is
/// shorter than a loaded machine needs to create a database and apply a migration.
fn concurrent_first_deploys(m: &Migrations, url: &str) -> Vec<Run> {
    let wait = format!("{}s", migrator_e2e::patience().as_secs());
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let path = m.path().to_path_buf();
            let url = url.to_string();
            let wait = wait.clone();
            std::thread::spawn(move || migrator(&["deploy", "--lock-timeout", &wait], &path, &url))
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("a deploy thread"))
        .collect()
}

#[test]
fn two_first_deploys_to_a_missing_postgres_database_both_succeed() {
    let m = Migrations::new();
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    for trial in 0..5 {
        let name = format!("mt_race_{}_{trial}", std::process::id());
        let admin = format!("{}/postgres", pg_server());
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        );
        let url = format!("{}/{name}", pg_server());
        let runs = concurrent_first_deploys(&m, &url);
        for run in &runs {
            assert!(
                matches!(run.status(), "applied" | "up-to-date"),
                "trial {trial}: {}{}",
                run.stdout(),
                run.stderr()
            );
        }
        let applied: usize = runs.iter().map(|r| r.names("applied").len()).sum();
        assert_eq!(applied, 1, "trial {trial}");
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        );
    }
}

#[test]
fn two_first_deploys_to_a_missing_mariadb_database_both_succeed() {
    // GET_LOCK is server-wide: no other MariaDB test (in any process) runs meanwhile.
    let _serial = Serial::take();
    let m = Migrations::new().with_lock("mysql");
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    for trial in 0..5 {
        let name = format!("mt_race_{}_{trial}", std::process::id());
        sql_in(None, &format!("DROP DATABASE IF EXISTS `{name}`"));
        let url = format!("{}/{name}", my_server());
        let runs = concurrent_first_deploys(&m, &url);
        for run in &runs {
            assert!(
                matches!(run.status(), "applied" | "up-to-date"),
                "trial {trial}: {}{}",
                run.stdout(),
                run.stderr()
            );
        }
        sql_in(None, &format!("DROP DATABASE IF EXISTS `{name}`"));
    }
}

// -------------------------------------------- item 10: hints that fit the state

#[test]
fn a_statement_by_statement_failure_tells_what_to_undo_or_finish() {
    let db = PgDb::fresh("hint");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nSELECT 1/0;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.error_code(), "P3018");
    let hint = hint(&run);
    assert!(hint.contains("Statements 1-2"), "{hint}");
    assert!(hint.contains("undo them") && hint.contains("resolve --applied 20240101000000_a"));
}

// ---------------------------------- issue 14 item 7: a MariaDB metadata lock is held

#[test]
fn a_mariadb_metadata_lock_is_retried_then_blocked_with_no_failed_row() {
    let db = MyDb::fresh("mdl");
    db.sql("CREATE TABLE t (id int)");
    let m = Migrations::new().with_lock("mysql");
    m.add("20240101000000_a", "ALTER TABLE t ADD COLUMN c int;\n");
    // `_prisma_migrations` must exist for the schema not to be refused as non-empty.
    db.sql("CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at DATETIME(3), migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at DATETIME(3), started_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), applied_steps_count INTEGER UNSIGNED NOT NULL DEFAULT 0)");
    // Another session holds the table.
    let mut holder = client()
        .arg(&db.name)
        .args(["-e", "LOCK TABLES t WRITE; SELECT SLEEP(600);"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the mariadb client starts");
    let start = Instant::now();
    let started = format!(
        "SELECT count(*) FROM information_schema.processlist WHERE db = '{}' AND info LIKE 'SELECT SLEEP(600)%'",
        db.name
    );
    while !sql_in(None, &started).starts_with('1') {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the lock holder never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The CLI bounds the wait too.
    let run = migrator(
        &["deploy", "--statement-lock-timeout", "1s"],
        m.path(),
        &db.url,
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(run.status(), "blocked", "{}", run.stdout());
    assert_ne!(run.error_code(), "P3018");
    let message = message(&run);
    assert!(
        message.contains("20240101000000_a") && message.contains("1205"),
        "{message}"
    );
    assert!(run.names("failed").is_empty());
    assert!(db.rows().is_empty(), "no row may be left behind");
    // Once the lock is gone, the next deploy applies it.
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
}

// ------------------------------------------------ issue 14 item 8: SQLite messages

#[test]
fn sqlite_messages_name_the_file_and_its_result_codes() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let m = Migrations::new().with_lock("sqlite");
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    let url = format!("file:{}", dir.path().display());
    let run = migrator(&["deploy"], m.path(), &url);
    assert_eq!(run.status(), "failed");
    let text = format!("{} {}", message(&run), hint(&run));
    assert!(text.contains("is a directory"), "{text}");
    for word in ["host", "port", "TLS", "Can't reach"] {
        assert!(!text.contains(word), "{word}: {text}");
    }
    let garbage = dir.path().join("not-a-database.db");
    std::fs::write(&garbage, vec![b'x'; 4096]).expect("a file");
    let run = migrator(
        &["deploy"],
        m.path(),
        &format!("file:{}", garbage.display()),
    );
    let message = message(&run);
    assert!(!message.contains("SQLSTATE"), "{message}");
    assert!(message.contains("result code 26"), "{message}");
}

// --------------------------------------------------------- item 18: P1003's words

#[test]
fn a_missing_database_is_said_to_be_missing_not_unreachable() {
    let m = Migrations::new();
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    let url = format!("{}/mt_missing_{}", pg_server(), std::process::id());
    let run = migrator(&["status"], m.path(), &url);
    assert_eq!(run.error_code(), "P1003");
    let message = message(&run);
    assert!(message.contains("does not exist"), "{message}");
    assert!(!message.contains("Can't reach"), "{message}");
}

/// The tables of `public` (without the bookkeeping) and whether each row finished.
fn state(db: &PgDb) -> (Vec<String>, Vec<(String, bool)>) {
    let tables = db
        .tables()
        .into_iter()
        .filter(|t| t != "_prisma_migrations")
        .collect();
    (tables, finished(db))
}

#[test]
fn scripts_with_their_own_transactions_leave_the_state_prisma_leaves() {
    let oracle = migrator_e2e::prisma_script();
    assert!(
        oracle.is_file(),
        "the Prisma oracle's wrapper {} is missing",
        oracle.display()
    );
    for (tag, script) in [
        (
            "inside",
            "CREATE TABLE a (id int);\nBEGIN;\nCREATE TABLE b (id int);\nSELECT 1/0;\nCOMMIT;\nCREATE TABLE c (id int);\n",
        ),
        (
            "after",
            "CREATE TABLE a (id int);\nBEGIN;\nCREATE TABLE b (id int);\nCOMMIT;\nCREATE TABLE c (id int);\nSELECT 1/0;\n",
        ),
        (
            "two_blocks",
            "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\nBEGIN;\nCREATE TABLE c (id int);\nROLLBACK;\nCREATE TABLE d (id int);\nSELECT 1/0;\n",
        ),
        (
            "succeeds",
            "CREATE TABLE a (id int);\nBEGIN;\nCREATE TABLE b (id int);\nCOMMIT;\nCREATE TABLE c (id int);\n",
        ),
    ] {
        let ours = PgDb::fresh(&format!("own_ours_{tag}"));
        let theirs = PgDb::fresh(&format!("own_theirs_{tag}"));
        let m = Migrations::new().with_lock("postgresql");
        m.add("20240101000000_first", "CREATE TABLE first (id int);\n");
        m.add("20240102000000_own", script);
        let run = migrator(&["deploy"], m.path(), &ours.url);
        let out = migrator_e2e::prisma(&["migrate", "deploy"], m.path(), &theirs.url);
        assert_eq!(
            state(&ours),
            state(&theirs),
            "{tag}: ours {}\nPrisma's {}",
            run.stdout(),
            migrator_e2e::text(&out)
        );
        // And our report names exactly the statements that stand.
        if let Some(committed) = run.json["failed"][0]["committedStatements"].as_array() {
            let tables = state(&ours).0;
            for (n, table) in [(1, "a"), (3, "b"), (5, "c")] {
                let created =
                    script.lines().nth(n - 1) == Some(&*format!("CREATE TABLE {table} (id int);"));
                if created {
                    assert_eq!(
                        committed.contains(&serde_json::json!(n)),
                        tables.contains(&table.to_string()),
                        "{tag}: statement {n} ({table}): {}",
                        run.stdout()
                    );
                }
            }
        }
    }
}
