//! Errors name the statement and its line whenever the server does not (issues 19 and 21):
//! a one-transaction migration that failed without a position is run again statement by
//! statement in a transaction that is always rolled back, and the statement that fails the
//! same way is named; anything else is "statement not identified", never a guess. Each test
//! also reads the database: nothing of the replay stays, and the failed row is Prisma's.

use std::process::Command;
use std::time::{Duration, Instant};

use migrator_e2e::{
    Migrations, MyDb, PgDb, Run, migrator, migrator_bin, pg_has, run_engine, sqlite,
};
use migrator_engine::engine::Settings;
use migrator_engine::outcome::Status;

fn logs(run: &Run) -> String {
    run.json["failed"][0]["logs"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The failed row as Prisma records a failure: unfinished, not rolled back, no step, the
/// P3018 text in `logs`.
fn assert_prismas_failed_row(rows: &[serde_json::Value], name: &str) {
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["migration_name"], name);
    assert!(row["finished_at"].is_null() && row["rolled_back_at"].is_null());
    assert_eq!(row["applied_steps_count"].as_i64(), Some(0));
    assert!(
        row["logs"]
            .as_str()
            .unwrap_or_default()
            .starts_with("A migration failed to apply."),
        "{row}"
    );
}

const MISSING_COLUMN: &str = "CREATE TABLE \"t\" (\"id\" INT);\n\n-- the index\nCREATE INDEX \"t_x_idx\"\n  ON \"t\"(\"missing\");\n";

#[test]
fn a_create_index_on_a_missing_column_is_named_with_its_first_line_on_postgres() {
    let db = PgDb::fresh("name_index");
    let m = Migrations::new();
    m.add("20240101000000_a", MISSING_COLUMN);
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(run.json["error"]["code"], "P3018");
    assert_eq!(run.json["failed"][0]["failedStatement"], 2);
    // A transaction rolled back lists nothing as committed.
    assert!(run.json["failed"][0]["committedStatements"].is_null());
    let logs = logs(&run);
    assert!(logs.contains("Database error code: 42703"), "{logs}");
    assert!(
        logs.contains("query number 2 from the migration file (line 4):\nCREATE INDEX \"t_x_idx\"\n  ON \"t\"(\"missing\");"),
        "{logs}"
    );
    assert!(logs.contains("in a transaction it rolled back"), "{logs}");
    // Nothing of the migration or of its replay stays; the row is Prisma's failed row.
    assert!(!pg_has(&db, "t") && !pg_has(&db, "t_x_idx"));
    assert_prismas_failed_row(&db.rows(), "20240101000000_a");
    assert_eq!(db.rows()[0]["logs"].as_str(), Some(logs.as_str()));
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"),
        "0"
    );

    // The command line's text shows the statement and its line.
    let db2 = PgDb::fresh("name_index_text");
    let out = Command::new(migrator_bin())
        .args(["deploy", "--artifact"])
        .arg(m.path())
        .args(["--database-url", &db2.url])
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("migrator runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("failed statement: 2")
            && text.contains("Please check the query number 2 from the migration file (line 4):"),
        "{text}"
    );
}

#[test]
fn the_failure_after_a_long_statement_is_named_within_the_deadline() {
    let db = PgDb::fresh("name_after_long");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 200000) g;\nSELECT pg_sleep(2);\nCREATE INDEX big_idx ON big (missing);\n",
    );
    let settings = Settings {
        deadline: Some(Instant::now() + Duration::from_secs(600)),
        deadline_margin: Duration::from_secs(2),
        ..Settings::default()
    };
    let outcome = run_engine(m.path(), &db.url, settings);
    assert_eq!(outcome.status, Status::Failed, "{outcome:?}");
    assert_eq!(outcome.failed[0].failed_statement, Some(3));
    let logs = outcome.failed[0].logs.clone().unwrap_or_default();
    assert!(
        logs.contains("query number 3 from the migration file (line 3):\nCREATE INDEX big_idx ON big (missing);"),
        "{logs}"
    );
    assert!(!pg_has(&db, "big"));
    assert_prismas_failed_row(&db.rows(), "20240101000000_a");
}

#[test]
fn a_position_from_the_server_names_the_statement_without_a_replay() {
    let db = PgDb::fresh("name_position");
    let m = Migrations::new();
    m.add(
        "20240101000000_a",
        "CREATE TABLE a (id int);\nSELECT nextval('nothing_to_see');\nSELECT * FROM missing_table;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    let logs = logs(&run);
    // The server's position (statement 2's missing sequence); no replay note.
    assert_eq!(run.json["failed"][0]["failedStatement"], 2, "{logs}");
    assert!(logs.contains("Position: line 2"), "{logs}");
    assert!(!logs.contains("ran the statements again"), "{logs}");
}

#[test]
fn a_script_whose_effects_a_rollback_does_not_undo_is_not_replayed() {
    let db = PgDb::fresh("name_unsafe");
    let m = Migrations::new();
    m.add("20240101000000_a", "CREATE SEQUENCE s0;\n");
    m.add(
        "20240102000000_b",
        "CREATE TABLE t (id int);\nSELECT nextval('s0');\nCREATE INDEX t_idx ON t (missing);\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    let logs = logs(&run);
    assert!(
        logs.contains("statement not identified") && logs.contains("`nextval`"),
        "{logs}"
    );
    assert!(run.json["failed"][0]["failedStatement"].is_null());
    assert!(!logs.contains("Please check the query number"), "{logs}");
    // The failed run advanced the sequence once; a replay would have advanced it again.
    assert_eq!(db.sql("SELECT last_value FROM s0"), "1");
    assert!(!pg_has(&db, "t"));
}

#[test]
fn a_replay_that_fails_otherwise_or_not_at_all_names_nothing() {
    for (tag, otherwise, why) in [
        (
            "other",
            "RAISE EXCEPTION USING ERRCODE = '22012', MESSAGE = 'only in a replay';",
            "failed with another error when run alone (22012)",
        ),
        ("none", "NULL;", "every statement ran without error"),
    ] {
        let db = PgDb::fresh(&format!("name_{tag}"));
        let m = Migrations::new();
        // The first run sees its own started row; a replay (which writes no row) does not.
        m.add(
            "20240101000000_a",
            &format!(
                "CREATE TABLE t (id int);\nDO $$ BEGIN IF (SELECT count(*) FROM _prisma_migrations) = 1 THEN RAISE EXCEPTION 'first run'; ELSE {otherwise} END IF; END $$;\n"
            ),
        );
        let run = migrator(&["deploy"], m.path(), &db.url);
        assert_eq!(run.status(), "failed", "{tag}: {}", run.stdout());
        let logs = logs(&run);
        assert!(logs.contains("Database error code: P0001"), "{tag}: {logs}");
        assert!(
            logs.contains("statement not identified") && logs.contains(why),
            "{tag}: {logs}"
        );
        assert!(run.json["failed"][0]["failedStatement"].is_null(), "{tag}");
        assert!(!pg_has(&db, "t"), "{tag}");
        assert_prismas_failed_row(&db.rows(), "20240101000000_a");
    }
}

#[test]
fn sqlite_failures_name_the_statement() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("t.db");
    let m = Migrations::new().with_lock("sqlite");
    // Unquoted: SQLite reads an unknown "missing" as a string literal.
    m.add(
        "20240101000000_a",
        "CREATE TABLE t (id INT);\n\n-- the index\nCREATE INDEX t_x_idx\n  ON t (missing);\n",
    );
    let run = migrator(&["deploy"], m.path(), &format!("file:{}", file.display()));
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(run.json["failed"][0]["failedStatement"], 2);
    let logs = logs(&run);
    assert!(
        logs.contains("no such column: missing")
            && logs.contains("query number 2 from the migration file (line 4):"),
        "{logs}"
    );
    // Nothing of the migration or its replay: no table, no index; Prisma's failed row.
    assert_eq!(
        sqlite(
            &file,
            "SELECT count(*) FROM sqlite_master WHERE name IN ('t', 't_x_idx')"
        ),
        "0"
    );
    assert_eq!(
        sqlite(
            &file,
            "SELECT migration_name, finished_at IS NULL, rolled_back_at IS NULL, applied_steps_count, logs LIKE 'A migration failed to apply.%' FROM _prisma_migrations"
        ),
        "20240101000000_a|1|1|0|1"
    );
}

#[test]
fn mariadb_failures_name_the_statement() {
    let db = MyDb::fresh("name_statement");
    let m = Migrations::new().with_lock("mysql");
    m.add(
        "20240101000000_a",
        "CREATE TABLE t (id int);\n\nCREATE INDEX t_idx\n  ON t (missing);\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.status(), "failed", "{}", run.stdout());
    assert_eq!(run.json["failed"][0]["failedStatement"], 2);
    let logs = logs(&run);
    assert!(
        logs.contains("query number 2 from the migration file (line 3):"),
        "{logs}"
    );
}
