//! The database is the witness (issue 19): a supervising session holds the lock, keeps the
//! deadline and reads every migration's row back; a script cannot change what we report by
//! changing its session, our bookkeeping or the transaction it runs in. Each test compares
//! the outcome with what the database holds (read with psql, mariadb, python's sqlite3).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use migrator_e2e::mariadb::sql_in;
use migrator_e2e::run_engine;
use migrator_e2e::{
    Migrations, MyDb, PgDb, Run, finished, migrator, migrator_bin, migrator_command, my_has,
    pg_has, sqlite,
};
use migrator_engine::engine::Settings;
use migrator_engine::outcome::Status;

fn deadline_in(seconds: u64) -> Settings {
    Settings {
        deadline: Some(Instant::now() + Duration::from_secs(seconds)),
        deadline_margin: Duration::from_secs(2),
        ..Settings::default()
    }
}

fn message(run: &Run) -> String {
    run.json["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn logs(run: &Run) -> String {
    run.json["failed"][0]["logs"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ------------------------------------------------ the deadline is kept from outside

#[test]
fn set_statement_timeout_zero_cannot_outlast_the_deadline_on_postgres() {
    for (tag, script) in [
        (
            "session",
            "SET statement_timeout = 0;\nSELECT pg_sleep(120);\n",
        ),
        (
            "local",
            "SET LOCAL statement_timeout = 0;\nSELECT pg_sleep(120);\n",
        ),
        (
            "by_statement",
            "SET statement_timeout = 0;\nCREATE INDEX CONCURRENTLY a_id ON a (id);\nSELECT pg_sleep(120);\n",
        ),
    ] {
        let db = PgDb::fresh(&format!("st0_{tag}"));
        let m = Migrations::new();
        m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
        m.add("20240102000000_b", script);
        let start = Instant::now();
        let outcome = run_engine(m.path(), &db.url, deadline_in(8));
        // A generous bound: 120 s of sleep would blow it.
        assert!(start.elapsed() < Duration::from_secs(60), "{tag}");
        if tag == "by_statement" {
            // Its index build was committed before the cancel: a failed row says so.
            assert_eq!(outcome.status, Status::Failed, "{tag}: {outcome:?}");
            assert_eq!(outcome.failed.len(), 1, "{tag}");
            assert_eq!(
                finished(&db),
                [
                    ("20240101000000_a".to_string(), true),
                    ("20240102000000_b".to_string(), false)
                ]
            );
            continue;
        }
        assert_eq!(outcome.status, Status::Incomplete, "{tag}: {outcome:?}");
        let error = outcome.error.expect("an error says why");
        assert!(error.message.contains("20240102000000_b") && error.message.contains("deadline"));
        assert!(outcome.failed.is_empty());
        assert_eq!(
            finished(&db),
            [("20240101000000_a".to_string(), true)],
            "{tag}"
        );
    }
}

#[test]
fn max_statement_time_zero_cannot_outlast_the_deadline_on_mariadb() {
    let db = MyDb::fresh("mst0");
    let m = Migrations::new().with_lock("mysql");
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    m.add(
        "20240102000000_b",
        "SET SESSION max_statement_time = 0;\nSELECT SLEEP(120);\n",
    );
    let start = Instant::now();
    let outcome = run_engine(m.path(), &db.url, deadline_in(8));
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_eq!(outcome.status, Status::Incomplete, "{outcome:?}");
    assert!(outcome.failed.is_empty());
    // No row of b is left behind (a SET changes nothing in the database).
    assert_eq!(finished(&db), [("20240101000000_a".to_string(), true)]);
}

#[test]
fn a_long_statement_is_reported_on_stderr_and_never_on_json_stdout() {
    let db = PgDb::fresh("progress");
    let m = Migrations::new();
    m.add("20240101000000_slow", "SELECT pg_sleep(10);\n");
    // Text mode: the progress line on stderr.
    let out = Command::new(migrator_bin())
        .args(["deploy", "--artifact"])
        .arg(m.path())
        .args(["--database-url", &db.url])
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .expect("migrator runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("`20240101000000_slow` still running after")
            && stderr.contains("pg_sleep ( ? )"),
        "{stderr}"
    );
    // JSON mode: stdout is the outcome and nothing else.
    m.add("20240102000000_slow", "SELECT pg_sleep(10);\n");
    let out = migrator_command(&["deploy"], m.path(), &db.url)
        .env_remove("RUST_LOG")
        .output()
        .expect("migrator runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is one JSON");
    assert_eq!(json["status"], "applied");
    assert!(!stdout.contains("still running"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("still running after"));
}

// ------------------------------------------------------ the lock is the supervisor's

#[test]
fn pg_advisory_unlock_all_in_a_script_cannot_free_the_lock_of_a_running_deploy() {
    for trial in 0..20 {
        let db = PgDb::fresh(&format!("unlock_all_{trial}"));
        let m = Migrations::new();
        m.add(
            "20240101000000_a",
            "SELECT pg_advisory_unlock_all();\nCREATE TABLE a (id int);\nSELECT pg_sleep(0.3);\n",
        );
        m.add("20240102000000_b", "CREATE TABLE b (id int);\n");
        let first = migrator_command(&["deploy"], m.path(), &db.url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("migrator starts");
        std::thread::sleep(Duration::from_millis(150));
        let second = migrator(&["deploy"], m.path(), &db.url);
        let first = Run::from_output(first.wait_with_output().expect("migrator ends"));
        for run in [&first, &second] {
            assert!(
                matches!(run.status(), "applied" | "up-to-date"),
                "trial {trial}: {}{}",
                run.stdout(),
                run.stderr()
            );
        }
        // Each migration applied exactly once, whoever applied it.
        let mut names = first.names("applied");
        names.extend(second.names("applied"));
        names.sort();
        assert_eq!(
            names,
            ["20240101000000_a", "20240102000000_b"],
            "trial {trial}"
        );
        assert_eq!(
            finished(&db),
            [
                ("20240101000000_a".to_string(), true),
                ("20240102000000_b".to_string(), true)
            ],
            "trial {trial}"
        );
    }
}

// ------------------------------------------- the bookkeeping is asked of the server

#[test]
fn a_trigger_on_prisma_migrations_is_refused_and_rolled_back_on_postgres() {
    for (tag, body) in [
        ("nulls", "NEW.finished_at := NULL; RETURN NEW;"),
        (
            "deletes",
            "DELETE FROM _prisma_migrations WHERE id = NEW.id; RETURN NULL;",
        ),
    ] {
        let db = PgDb::fresh(&format!("trigger_{tag}"));
        let m = Migrations::new();
        m.add(
            "20240101000000_a",
            &format!(
                "CREATE TABLE a (id int);\nCREATE FUNCTION pm_t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$;\nCREATE TRIGGER pm_t BEFORE UPDATE ON _prisma_migrations FOR EACH ROW EXECUTE FUNCTION pm_t();\n"
            ),
        );
        m.add("20240102000000_b", "CREATE TABLE b (id int);\n");
        let run = migrator(&["deploy"], m.path(), &db.url);
        assert_eq!(run.status(), "failed", "{tag}: {}", run.stdout());
        let message = message(&run);
        assert!(
            message.contains("a trigger on _prisma_migrations: pm_t")
                && message.contains("rolled back"),
            "{tag}: {message}"
        );
        assert!(run.names("applied").is_empty());
        // The database holds nothing of it: no table, no trigger, no row.
        assert!(!pg_has(&db, "a") && !pg_has(&db, "b"), "{tag}");
        assert_eq!(
            db.sql("SELECT count(*) FROM pg_trigger WHERE tgname = 'pm_t'"),
            "0"
        );
        assert!(db.rows().is_empty(), "{tag}");
    }
}

#[test]
fn a_trigger_on_prisma_migrations_is_seen_by_the_witness_on_mariadb() {
    let db = MyDb::fresh("trigger");
    let m = Migrations::new().with_lock("mysql");
    m.add(
        "20240101000000_a",
        "CREATE TABLE a (id int);\nCREATE TRIGGER pm_t BEFORE UPDATE ON _prisma_migrations FOR EACH ROW SET NEW.finished_at = NULL;\n",
    );
    m.add("20240102000000_b", "CREATE TABLE b (id int);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    let message = message(&run);
    assert!(
        message.contains("20240101000000_a") && message.contains("finished_at is NULL"),
        "{message}"
    );
    assert!(run.names("applied").is_empty());
    // What the outcome says is what the table holds: a's row unfinished, b not started.
    assert_eq!(finished(&db), [("20240101000000_a".to_string(), false)]);
    assert!(my_has(&db, "a") && !my_has(&db, "b"));
}

#[test]
fn a_changed_default_on_finished_at_is_refused_on_postgres() {
    let db = PgDb::fresh("default");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "ALTER TABLE _prisma_migrations ALTER finished_at SET DEFAULT now();\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    let message = message(&run);
    assert!(
        message.contains("the default of _prisma_migrations.finished_at was changed (to now())"),
        "{message}"
    );
    assert_eq!(
        db.sql("SELECT column_default IS NULL FROM information_schema.columns WHERE table_name = '_prisma_migrations' AND column_name = 'finished_at'"),
        "t"
    );
    assert!(db.rows().is_empty());
}

#[test]
fn a_harmless_lock_on_prisma_migrations_is_checked_in_full_and_applies() {
    // A strong lock on the table is how the finishing block knows to run every catalog check
    // (the cheap proof is "no lock stronger than a row write"); a lock that changed nothing
    // passes them, and the migrations after it take the cheap proof again.
    let db = PgDb::fresh("harmless_lock");
    let m = Migrations::new();
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    m.add(
        "20240102000000_b",
        "LOCK TABLE _prisma_migrations IN ACCESS EXCLUSIVE MODE;\nCOMMENT ON TABLE _prisma_migrations IS 'hello';\nCREATE TABLE b (id int);\n",
    );
    m.add("20240103000000_c", "CREATE TABLE c (id int);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(
        finished(&db),
        [
            ("20240101000000_a".to_string(), true),
            ("20240102000000_b".to_string(), true),
            ("20240103000000_c".to_string(), true),
        ]
    );
}

#[test]
fn a_default_changed_outside_a_transaction_is_still_seen_by_the_next_migration() {
    // A script run statement by statement (it holds CREATE INDEX CONCURRENTLY) changes a
    // default of _prisma_migrations and commits it; the next migration's transaction never
    // locks the table, so only the full check (taken after any script that ran outside our
    // transaction) can see the change.
    let db = PgDb::fresh("default_outside");
    let m = Migrations::new();
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    m.add(
        "20240102000000_b",
        "CREATE INDEX CONCURRENTLY a_id ON a (id);\nALTER TABLE _prisma_migrations ALTER finished_at SET DEFAULT now();\n",
    );
    m.add("20240103000000_c", "CREATE TABLE c (id int);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    let message = message(&run);
    assert!(
        message.contains("the default of _prisma_migrations.finished_at was changed (to now())"),
        "{message}"
    );
    // c is not recorded as applied and its table does not exist.
    assert!(
        !run.names("applied")
            .contains(&"20240103000000_c".to_string())
    );
    assert!(!pg_has(&db, "c"));
    assert!(
        !finished(&db)
            .iter()
            .any(|(name, done)| name == "20240103000000_c" && *done)
    );
}

#[test]
fn a_default_changed_between_deploys_is_seen_by_the_first_migration_of_the_next() {
    // The cheap proof of the finishing block starts from a transaction that passed the full
    // check: the first migration of a deploy always runs every check.
    let db = PgDb::fresh("default_between");
    let m = Migrations::new();
    m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
    assert_eq!(migrator(&["deploy"], m.path(), &db.url).status(), "applied");
    db.sql("ALTER TABLE _prisma_migrations ALTER finished_at SET DEFAULT now()");
    m.add("20240102000000_b", "CREATE TABLE b (id int);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    let message = message(&run);
    assert!(
        message.contains("the default of _prisma_migrations.finished_at was changed (to now())"),
        "{message}"
    );
    assert!(!pg_has(&db, "b"));
    assert_eq!(finished(&db), [("20240101000000_a".to_string(), true)]);
}

#[test]
fn a_view_replacing_the_renamed_table_is_refused_on_postgres() {
    let db = PgDb::fresh("view");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "ALTER TABLE _prisma_migrations RENAME TO pm_old;\nCREATE VIEW _prisma_migrations AS SELECT * FROM pm_old;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    let message = message(&run);
    assert!(message.contains("no longer a table"), "{message}");
    // Rolled back: the real table is there, no view, no pm_old.
    assert_eq!(
        db.sql("SELECT relkind FROM pg_class WHERE relname = '_prisma_migrations'"),
        "r"
    );
    assert!(!pg_has(&db, "pm_old"));
    assert!(db.rows().is_empty());
    assert_eq!(migrator(&["deploy"], m.path(), &db.url).status(), "failed");
}

#[test]
fn a_temporary_prisma_migrations_never_receives_our_rows() {
    // MariaDB: the bookkeeping is written by the supervising session.
    let db = MyDb::fresh("temp_pm");
    let m = Migrations::new().with_lock("mysql");
    m.add(
        "20240101000000_a",
        "CREATE TEMPORARY TABLE _prisma_migrations (id VARCHAR(36), checksum VARCHAR(64), finished_at DATETIME(3), migration_name VARCHAR(255), logs TEXT, rolled_back_at DATETIME(3), started_at DATETIME(3), applied_steps_count INT);\n",
    );
    m.add("20240102000000_b", "CREATE TABLE b (id int);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(
        finished(&db),
        [
            ("20240101000000_a".to_string(), true),
            ("20240102000000_b".to_string(), true)
        ]
    );
    // SQLite: the bookkeeping names main._prisma_migrations.
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("t.db");
    let m = Migrations::new().with_lock("sqlite");
    m.add(
        "20240101000000_a",
        "CREATE TEMP TABLE _prisma_migrations (id TEXT, checksum TEXT, finished_at INTEGER, migration_name TEXT, logs TEXT, rolled_back_at INTEGER, started_at INTEGER, applied_steps_count INTEGER);\n",
    );
    m.add("20240102000000_b", "CREATE TABLE b (id int);\n");
    let run = migrator(&["deploy"], m.path(), &format!("file:{}", file.display()));
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(
        sqlite(
            &file,
            "SELECT migration_name, finished_at IS NOT NULL FROM _prisma_migrations ORDER BY migration_name"
        ),
        "20240101000000_a|1\n20240102000000_b|1"
    );
}

// ------------------------------------------------ transaction control, judged by the server

#[test]
fn commit_and_chain_and_rollback_and_chain_are_judged_by_the_server() {
    let db = PgDb::fresh("chain");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE a (id int);\nCOMMIT AND CHAIN;\n",
    );
    m.add(
        "20240102000000_b",
        "CREATE TABLE b (id int);\nROLLBACK AND CHAIN;\n",
    );
    m.add(
        "20240103000000_c",
        "CREATE TABLE c (id int);\nCOMMIT AND CHAIN;\nCREATE TABLE c2 (id int);\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    // a and b ran every statement and left an empty chained transaction: applied, and the
    // finished rows are there (not lost in that transaction).
    assert_eq!(
        run.names("applied"),
        ["20240101000000_a", "20240102000000_b"],
        "{}",
        run.stdout()
    );
    assert!(pg_has(&db, "a"));
    assert!(!pg_has(&db, "b"), "ROLLBACK AND CHAIN undid it");
    // c left statements in the chained transaction: rolled back and said.
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert!(pg_has(&db, "c") && !pg_has(&db, "c2"));
    assert_eq!(
        run.json["failed"][0]["committedStatements"],
        serde_json::json!([1, 2])
    );
    assert_eq!(
        finished(&db),
        [
            ("20240101000000_a".to_string(), true),
            ("20240102000000_b".to_string(), true),
            ("20240103000000_c".to_string(), false)
        ]
    );
}

#[test]
fn rollback_to_savepoint_is_judged_by_the_server() {
    // Without the script's own BEGIN it stays in the migrator's one transaction.
    let db = PgDb::fresh("savepoint");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE k (id int);\nSAVEPOINT s;\nCREATE TABLE k2 (id int);\nROLLBACK WORK TO SAVEPOINT s;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(run.json["applied"][0]["execution"]["mode"], "transaction");
    assert!(pg_has(&db, "k") && !pg_has(&db, "k2"));
    assert_eq!(finished(&db), [("20240101000000_a".to_string(), true)]);
    // With its own BEGIN and no COMMIT, the transaction is left open: nothing stays.
    let db = PgDb::fresh("savepoint_open");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "BEGIN;\nCREATE TABLE s1 (id int);\nSAVEPOINT s;\nCREATE TABLE s2 (id int);\nROLLBACK WORK TO SAVEPOINT s;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert!(logs(&run).contains("left a transaction of its own open"));
    assert_eq!(
        run.json["failed"][0]["committedStatements"],
        serde_json::json!([])
    );
    assert!(!pg_has(&db, "s1") && !pg_has(&db, "s2"));
    assert_eq!(finished(&db), [("20240101000000_a".to_string(), false)]);
}

#[test]
fn a_commit_hidden_in_a_sqlite_trigger_body_is_judged_by_the_database() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("t.db");
    let m = Migrations::new().with_lock("sqlite");
    m.add(
        "20240101000000_a",
        "CREATE TABLE t (id int, begin int);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET begin = 1; END;\nCOMMIT;\nCREATE TABLE after_commit (id int);\nSELECT * FROM missing_table;\n",
    );
    let run = migrator(&["deploy"], m.path(), &format!("file:{}", file.display()));
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    let logs = logs(&run);
    assert!(
        !logs.contains("none of its statements were applied"),
        "{logs}"
    );
    assert!(logs.contains("ended the migrator's transaction"), "{logs}");
    // The database: t and the started row committed; the row holds the failure.
    assert_eq!(
        sqlite(&file, "SELECT count(*) FROM sqlite_master WHERE name = 't'"),
        "1"
    );
    assert_eq!(
        sqlite(
            &file,
            "SELECT finished_at IS NULL, logs LIKE '%ended the migrator%' FROM _prisma_migrations"
        ),
        "1|1"
    );
}

#[test]
fn mariadb_commits_are_what_the_server_says() {
    for (tag, script, committed, rows) in [
        (
            "temporary",
            "CREATE TABLE m (id int);\nSTART TRANSACTION;\nINSERT INTO m VALUES (1);\nCREATE TEMPORARY TABLE tmp (id int);\nINSERT INTO missing_table VALUES (1);\n",
            serde_json::json!([1, 2]),
            "0",
        ),
        (
            "analyze",
            "CREATE TABLE m (id int);\nSTART TRANSACTION;\nINSERT INTO m VALUES (1);\nANALYZE TABLE m;\nINSERT INTO missing_table VALUES (1);\n",
            serde_json::json!([1, 2, 3, 4]),
            "1",
        ),
        (
            "autocommit",
            "CREATE TABLE m (id int);\nSET autocommit = 0;\nINSERT INTO m VALUES (1);\nINSERT INTO missing_table VALUES (1);\n",
            serde_json::json!([1]),
            "0",
        ),
    ] {
        let db = MyDb::fresh(&format!("commits_{tag}"));
        let m = Migrations::new().with_lock("mysql");
        m.add("20240101000000_a", script);
        let run = migrator(&["deploy"], m.path(), &db.url);
        assert_eq!(run.status(), "failed", "{tag}: {}", run.stdout());
        assert_eq!(
            run.json["failed"][0]["committedStatements"],
            committed,
            "{tag}: {}",
            run.stdout()
        );
        assert_eq!(db.sql("SELECT count(*) FROM m"), rows, "{tag}");
        assert_eq!(finished(&db), [("20240101000000_a".to_string(), false)]);
    }
}

// -------------------------------------------- the working session is returned to a known state

#[test]
fn listen_and_notify_in_a_migration_are_reported_as_the_row_says() {
    let db = PgDb::fresh("notify");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "LISTEN x;\nNOTIFY x;\nCREATE TABLE n (id int);\n",
    );
    m.add(
        "20240102000000_b",
        "LISTEN y;\nNOTIFY y;\nCREATE INDEX CONCURRENTLY n_id ON n (id);\n",
    );
    m.add("20240103000000_c", "CREATE TABLE after_notify (id int);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(run.names("applied").len(), 3);
    assert!(finished(&db).iter().all(|(_, done)| *done));
    assert!(pg_has(&db, "n") && pg_has(&db, "n_id") && pg_has(&db, "after_notify"));
}

#[test]
fn set_role_authorization_and_read_only_do_not_reach_the_next_migration() {
    let db = PgDb::fresh("role");
    let role = format!("{}_app", db.name);
    db.sql(&format!("CREATE ROLE {role} NOLOGIN"));
    let m = Migrations::new();
    m.add("20240101000000_a", &format!("SET ROLE {role};\n"));
    m.add(
        "20240102000000_b",
        "CREATE TABLE who (name text);\nINSERT INTO who SELECT current_user;\n",
    );
    m.add(
        "20240103000000_c",
        &format!("SET SESSION AUTHORIZATION {role};\n"),
    );
    m.add(
        "20240104000000_d",
        "INSERT INTO who SELECT session_user;\nSET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;\n",
    );
    m.add(
        "20240105000000_e",
        "SET default_transaction_isolation = 'serializable';\nSET default_transaction_read_only = on;\n",
    );
    m.add(
        "20240106000000_f",
        "INSERT INTO who SELECT current_setting('transaction_isolation');\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    let _ = db.sql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(run.names("applied").len(), 6);
    assert!(finished(&db).iter().all(|(_, done)| *done));
    let login = db.sql("SELECT current_user");
    assert_eq!(
        db.sql("SELECT name FROM who ORDER BY ctid"),
        format!("{login}\n{login}\nread committed")
    );
}

#[test]
fn lock_tables_and_read_only_do_not_reach_our_bookkeeping_on_mariadb() {
    let db = MyDb::fresh("lock_tables");
    let m = Migrations::new().with_lock("mysql");
    m.add(
        "20240101000000_a",
        "CREATE TABLE lt (id int);\nLOCK TABLES lt WRITE;\n",
    );
    m.add("20240102000000_b", "SET SESSION TRANSACTION READ ONLY;\n");
    m.add(
        "20240103000000_c",
        "CREATE TABLE after_ro (id int);\nINSERT INTO lt VALUES (1);\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(run.names("applied").len(), 3);
    assert!(finished(&db).iter().all(|(_, done)| *done));
    assert_eq!(db.sql("SELECT count(*) FROM lt"), "1");
}

#[test]
fn a_prepared_xa_transaction_is_reported_and_stops_the_deploy() {
    let db = MyDb::fresh("xa");
    let xid = format!("{}_xa", db.name);
    let m = Migrations::new().with_lock("mysql");
    m.add(
        "20240101000000_a",
        &format!(
            "CREATE TABLE x1 (id int);\nXA START '{xid}';\nINSERT INTO x1 VALUES (1);\nXA END '{xid}';\nXA PREPARE '{xid}';\n"
        ),
    );
    m.add("20240102000000_b", "CREATE TABLE x2 (id int);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    let recovered = sql_in(None, "XA RECOVER");
    // Clean up the server-wide prepared transaction before asserting anything.
    let _ = sql_in(None, &format!("XA ROLLBACK '{xid}'"));
    assert!(recovered.contains(&xid), "{recovered}");
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    let logs = logs(&run);
    assert!(
        logs.contains("XA transaction") && logs.contains("XA ROLLBACK"),
        "{logs}"
    );
    assert!(run.names("applied").is_empty());
    assert_eq!(finished(&db), [("20240101000000_a".to_string(), false)]);
    assert!(!my_has(&db, "x2"));
}

// -------------------------------------------------------------- errors at COMMIT

#[test]
fn a_deferred_foreign_key_violated_at_commit_is_p3018_with_a_failed_row() {
    let db = PgDb::fresh("deferred");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE p (id int PRIMARY KEY);\nCREATE TABLE c (p int REFERENCES p DEFERRABLE INITIALLY DEFERRED);\nINSERT INTO c VALUES (1);\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(run.error_code(), "P3018");
    let message = message(&run);
    assert!(
        message.contains("Migration name: 20240101000000_a") && message.contains("23503"),
        "{message}"
    );
    assert!(!pg_has(&db, "p") && !pg_has(&db, "c"));
    let rows = db.rows();
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["finished_at"].is_null());
    assert!(
        rows[0]["logs"]
            .as_str()
            .unwrap_or_default()
            .contains("23503")
    );
    assert_eq!(
        migrator(&["deploy"], m.path(), &db.url).error_code(),
        "P3009"
    );
}

#[test]
fn a_leading_set_transaction_runs_first_in_the_transaction() {
    let db = PgDb::fresh("isolation");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE iso AS SELECT current_setting('transaction_isolation') AS level;\n",
    );
    m.add("20240102000000_b", "CREATE TABLE after_iso (id int);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(db.sql("SELECT level FROM iso"), "serializable");
    assert!(finished(&db).iter().all(|(_, done)| *done));
    assert_eq!(finished(&db).len(), 2);
}

// ------------------------------------------------------ a failed concurrent index build

#[test]
fn a_failed_create_unique_index_concurrently_names_the_invalid_index_and_how_to_drop_it() {
    let db = PgDb::fresh("invalid_index");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE u (v int);\nINSERT INTO u VALUES (1), (1);\n",
    );
    m.add(
        "20240102000000_b",
        "CREATE UNIQUE INDEX CONCURRENTLY u_v ON u (v);\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    let logs = logs(&run);
    assert!(
        logs.contains("DROP INDEX CONCURRENTLY public.u_v;"),
        "{logs}"
    );
    assert_eq!(
        db.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'u_v'::regclass"),
        "f"
    );
    // The quoted statement does what it says.
    db.sql("DROP INDEX CONCURRENTLY public.u_v;");
    assert!(!pg_has(&db, "u_v"));
}

// ------------------------------------------------ the splitter follows the server's lexing

#[test]
fn mariadb_statements_are_split_where_the_server_splits_them() {
    // An earlier migration's NO_BACKSLASH_ESCAPES stays for the session: `'a\'` is a string.
    let db = MyDb::fresh("no_backslash");
    let m = Migrations::new().with_lock("mysql");
    m.add(
        "20240101000000_a",
        "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES');\n",
    );
    m.add(
        "20240102000000_b",
        "CREATE TABLE p (v text);\nINSERT INTO p VALUES ('a\\');\nCREATE TABLE q (id int);\nINSERT INTO missing_table VALUES (1);\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(
        run.json["failed"][0]["failedStatement"],
        4,
        "{}",
        run.stdout()
    );
    assert_eq!(
        run.json["failed"][0]["committedStatements"],
        serde_json::json!([1, 2, 3])
    );
    assert_eq!(db.sql("SELECT v FROM p"), "a\\");
    assert!(my_has(&db, "q"));
    // A trigger body's `SET NEW.begin = 1` opens no block.
    let db = MyDb::fresh("new_begin");
    let m = Migrations::new().with_lock("mysql");
    m.add(
        "20240101000000_a",
        "CREATE TABLE tb (id int, `begin` int);\nCREATE TRIGGER tb_t BEFORE INSERT ON tb FOR EACH ROW SET NEW.begin = 1;\nINSERT INTO tb (id) VALUES (1);\nINSERT INTO missing_table VALUES (1);\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(
        run.json["failed"][0]["failedStatement"],
        4,
        "{}",
        run.stdout()
    );
    assert_eq!(
        run.json["failed"][0]["committedStatements"],
        serde_json::json!([1, 2, 3])
    );
    assert_eq!(db.sql("SELECT `begin` FROM tb"), "1");
}

// ------------------------------------------- a statement waiting for client data

#[test]
fn a_copy_from_stdin_hidden_from_the_splitter_does_not_hang_holding_the_lock() {
    let db = PgDb::fresh("hidden_copy");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE FUNCTION begin() RETURNS int LANGUAGE sql AS 'SELECT 1';\nCREATE TABLE cp (id int);\nCOPY cp FROM STDIN;\n",
    );
    m.add("20240102000000_b", "CREATE TABLE after_copy (id int);\n");
    let start = Instant::now();
    let run = migrator(&["deploy"], m.path(), &db.url);
    // A generous bound: without the supervisor it waits forever.
    assert!(start.elapsed() < Duration::from_secs(120));
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(run.error_code(), "P3018");
    assert!(
        logs(&run).contains("waited for data from the client"),
        "{}",
        logs(&run)
    );
    // Rolled back, and recorded as failed: the database says the same.
    assert!(!pg_has(&db, "cp") && !pg_has(&db, "after_copy"));
    assert_eq!(finished(&db), [("20240101000000_a".to_string(), false)]);
}

// ------------------------------------------------ SQLite: the deadline and the table

#[test]
fn a_long_sqlite_statement_is_interrupted_at_the_deadline_and_applied_by_the_next_run() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("t.db");
    let url = format!("file:{}", file.display());
    let m = Migrations::new().with_lock("sqlite");
    m.add(
        "20240101000000_a",
        "CREATE TABLE bound (n INTEGER);\nINSERT INTO bound VALUES (1000000000);\n",
    );
    // A billion rows counted one by one: far beyond the deadline, unless the bound is lowered.
    m.add(
        "20240102000000_b",
        "CREATE TABLE b (n INTEGER);\nINSERT INTO b WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < (SELECT n FROM bound)) SELECT count(*) FROM c;\n",
    );
    let start = Instant::now();
    let outcome = run_engine(m.path(), &url, deadline_in(12));
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_eq!(outcome.status, Status::Incomplete, "{outcome:?}");
    let error = outcome.error.expect("an error says why");
    assert!(
        error.message.contains("20240102000000_b") && error.message.contains("cancelled"),
        "{}",
        error.message
    );
    assert!(outcome.failed.is_empty());
    // Nothing of b stays, and no failed row: a finished, b not recorded.
    assert_eq!(
        sqlite(&file, "SELECT count(*) FROM sqlite_master WHERE name = 'b'"),
        "0"
    );
    assert_eq!(
        sqlite(
            &file,
            "SELECT migration_name, finished_at IS NOT NULL FROM _prisma_migrations ORDER BY started_at"
        ),
        "20240101000000_a|1"
    );
    // The next run, with a statement that fits its time, applies b.
    sqlite(&file, "UPDATE bound SET n = 1000");
    let again = migrator(&["deploy"], m.path(), &url);
    assert_eq!(again.status(), "applied", "{}", again.stdout());
    assert_eq!(sqlite(&file, "SELECT n FROM b"), "1000");
}

#[test]
fn a_trigger_on_prisma_migrations_is_refused_and_rolled_back_on_sqlite() {
    for (tag, create) in [("main", "CREATE TRIGGER"), ("temp", "CREATE TEMP TRIGGER")] {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("t.db");
        let m = Migrations::new().with_lock("sqlite");
        m.add(
            "20240101000000_a",
            &format!(
                "CREATE TABLE a (id int);\n{create} pm_t AFTER UPDATE ON _prisma_migrations BEGIN UPDATE _prisma_migrations SET finished_at = NULL WHERE id = NEW.id; END;\n"
            ),
        );
        let run = migrator(&["deploy"], m.path(), &format!("file:{}", file.display()));
        assert_eq!(run.status(), "failed", "{tag}: {}", run.stdout());
        let message = message(&run);
        assert!(
            message.contains("a trigger on _prisma_migrations: pm_t")
                && message.contains("rolled back"),
            "{tag}: {message}"
        );
        assert_eq!(
            sqlite(
                &file,
                "SELECT count(*) FROM sqlite_master WHERE name IN ('a', 'pm_t')"
            ),
            "0",
            "{tag}"
        );
        assert_eq!(
            sqlite(&file, "SELECT count(*) FROM _prisma_migrations"),
            "0",
            "{tag}"
        );
    }
}
