//! `migrator` against a real PostgreSQL: every path of the spec (prisma-semantics.md §1–6),
//! each test on a fresh database.

use std::time::Duration;

use migrator_e2e::scenarios::{self, Schema};
use migrator_e2e::{Migrations, PgDb, Postgres, migrator, psql};
use migrator_engine::checksum::sha256_hex;
use serde_json::Value;

const INIT: &str = "-- CreateEnum\nCREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN');\n\n-- CreateTable\nCREATE TABLE \"User\" (\n    \"id\" SERIAL NOT NULL,\n    \"email\" TEXT NOT NULL,\n    \"role\" \"Role\" NOT NULL DEFAULT 'USER',\n    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- CreateIndex\nCREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");\n";
const POSTS: &str = "-- CreateTable\nCREATE TABLE \"Post\" (\n    \"id\" SERIAL NOT NULL,\n    \"authorId\" INTEGER NOT NULL,\n    CONSTRAINT \"Post_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- AddForeignKey\nALTER TABLE \"Post\" ADD CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") REFERENCES \"User\"(\"id\") ON DELETE RESTRICT ON UPDATE CASCADE;\n";

const SCHEMA: Schema = Schema {
    init: INIT,
    posts: POSTS,
};

fn two_migrations() -> Migrations {
    SCHEMA.two_migrations::<Postgres>()
}

#[test]
fn deploy_applies_in_order_and_writes_prismas_rows() {
    let before = chrono_now_ms();
    let db = scenarios::deploy_applies_in_order_and_writes_prismas_rows::<Postgres>(
        &SCHEMA,
        "transaction",
    );
    // Timestamps come from the client clock, like Prisma's.
    let started: i64 = db
        .sql("SELECT (extract(epoch FROM min(started_at)) * 1000)::bigint FROM _prisma_migrations")
        .parse()
        .unwrap();
    assert!(
        started >= before - 1000,
        "started_at {started} before the run began {before}"
    );
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn second_deploy_is_up_to_date_and_writes_nothing() {
    scenarios::second_deploy_is_up_to_date_and_writes_nothing::<Postgres>(&SCHEMA);
}

#[test]
fn deploy_from_a_zip_equals_deploy_from_a_folder() {
    let db = PgDb::fresh("zip");
    let m = two_migrations();
    let zip = tempfile::NamedTempFile::new().unwrap();
    m.zip(zip.path());
    let run = migrator(&["deploy"], zip.path(), &db.url);
    assert!(run.ok(), "{}", run.stdout());
    assert_eq!(run.json["artifact"]["migrationsPath"], "prisma/migrations");
    assert_eq!(
        run.json["artifact"]["sha256"],
        sha256_hex(&std::fs::read(zip.path()).unwrap())
    );
    let again = migrator(&["status"], m.path(), &db.url);
    assert!(again.ok(), "{}", again.stdout());
}

#[test]
fn a_failing_migration_leaves_no_partial_change_and_a_prisma_failed_row() {
    let (db, m, _) = scenarios::deploy_with_a_failing_migration::<Postgres>(
        &SCHEMA,
        (
            "20240103000000_broken",
            "CREATE TABLE \"Kept\" (id int);\nINSERT INTO \"Missing\" VALUES (1);\n",
        ),
    );
    let tables = db.tables();
    assert!(
        !tables.contains(&"Kept".to_string()),
        "the failed migration's first statement was rolled back"
    );
    assert!(!tables.contains(&"After".to_string()));

    let (logs, blocked) =
        scenarios::a_failed_row_blocks_deploys_with_p3009(&db, &m, "20240103000000_broken");
    assert!(logs.contains("Migration name: 20240103000000_broken"));
    assert!(logs.contains("Database error code: 42P01"));
    assert!(
        blocked.json["failed"][0]["logs"]
            .as_str()
            .unwrap()
            .contains("42P01")
    );
    let rows = db.rows();
    let plan = migrator(&["plan"], m.path(), &db.url);
    assert_eq!(plan.error_code(), "P3009");
    let status = migrator(&["status"], m.path(), &db.url);
    assert_eq!(status.code(), 1);
    assert_eq!(db.rows(), rows, "refusals write nothing");
}

#[test]
fn resolve_rolled_back_then_deploy_applies_the_fixed_migration_as_a_new_row() {
    scenarios::resolve_rolled_back_then_deploy_applies_the_fixed_migration_as_a_new_row::<Postgres>(
        &SCHEMA,
    );
}

#[test]
fn resolve_errors_carry_prismas_codes() {
    let db = PgDb::fresh("resolve_errors");
    let m = two_migrations();
    // No table yet: rolled-back has nothing to work on.
    let none = migrator(
        &["resolve", "--rolled-back", "20240101000000_init"],
        m.path(),
        &db.url,
    );
    assert_eq!(none.status(), "blocked");
    assert!(migrator(&["deploy"], m.path(), &db.url).ok());
    let cases = [
        (
            &["resolve", "--applied", "20240101000000_init"][..],
            "P3008",
        ),
        (&["resolve", "--applied", "20240101000000"], "P3017"),
        (
            &["resolve", "--rolled-back", "20240109000000_never"],
            "P3011",
        ),
        (
            &["resolve", "--rolled-back", "20240101000000_init"],
            "P3012",
        ),
    ];
    let rows = db.rows();
    for (args, code) in cases {
        let run = migrator(args, m.path(), &db.url);
        assert_eq!(run.code(), 1, "{args:?}");
        assert_eq!(run.error_code(), code, "{args:?}: {}", run.stdout());
    }
    assert_eq!(db.rows(), rows);
}

#[test]
fn resolve_applied_baselines_a_non_empty_database() {
    scenarios::resolve_applied_baselines_a_non_empty_database::<Postgres>(&SCHEMA);
}

#[test]
fn resolve_applied_on_a_failed_migration_rolls_the_failure_back_first() {
    let db = PgDb::fresh("resolve_failed");
    let m = Migrations::new();
    m.add("1_bad", "SELECT 1/0;");
    assert_eq!(
        migrator(&["deploy"], m.path(), &db.url).error_code(),
        "P3018"
    );
    let run = migrator(&["resolve", "--applied", "1_bad"], m.path(), &db.url);
    assert!(run.ok(), "{}", run.stdout());
    let rows = db.rows();
    assert_eq!(rows.len(), 2);
    assert!(!rows[0]["rolled_back_at"].is_null());
    assert_eq!(rows[1]["logs"], "");
    assert!(migrator(&["status"], m.path(), &db.url).ok());
}

#[test]
fn a_non_empty_schema_is_refused_with_p3005_and_left_untouched() {
    let db = PgDb::fresh("p3005");
    db.sql("CREATE TABLE customers (id int); CREATE VIEW v AS SELECT 1 AS one;");
    let before = db.schema_dump();
    let run = migrator(&["deploy"], two_migrations().path(), &db.url);
    assert_eq!(run.error_code(), "P3005");
    assert!(
        run.json["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("customers")
    );
    assert_eq!(db.schema_dump(), before);
}

#[test]
fn views_enums_and_postgis_tables_do_not_make_a_schema_non_empty() {
    let db = PgDb::fresh("empty_enough");
    db.sql("CREATE VIEW v AS SELECT 1 AS one; CREATE TYPE mood AS ENUM ('ok'); CREATE TABLE spatial_ref_sys (srid int); CREATE SCHEMA other; CREATE TABLE other.t (id int);");
    let run = migrator(&["deploy"], two_migrations().path(), &db.url);
    assert!(run.ok(), "{}", run.stdout());
}

#[test]
fn a_lock_file_for_another_provider_is_rejected_before_touching_the_database() {
    scenarios::a_lock_file_for_another_provider_is_rejected_with_p3019::<Postgres>("mysql");
}

#[test]
fn a_pending_folder_without_migration_sql_is_refused_before_anything_is_applied() {
    let db = PgDb::fresh("p3015");
    let m = two_migrations();
    std::fs::create_dir_all(m.path().join("20240103000000_empty_dir")).unwrap();
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.error_code(), "P3015");
    assert_eq!(run.status(), "rejected");
    assert!(run.names("applied").is_empty());
    // Rejected means untouched: not even `_prisma_migrations` is created.
    assert!(db.tables().is_empty(), "{:?}", db.tables());
}

#[test]
fn concurrently_runs_statement_by_statement_and_reports_it() {
    let db = PgDb::fresh("concurrently");
    let m = two_migrations();
    m.add(
        "20240103000000_indexes",
        "-- CreateIndex\nCREATE INDEX CONCURRENTLY \"Post_authorId_idx\" ON \"Post\"(\"authorId\");\nCREATE FUNCTION touch() RETURNS trigger AS $$ BEGIN NEW.id := NEW.id; RETURN NEW; END; $$ LANGUAGE plpgsql;\nDROP INDEX CONCURRENTLY \"User_email_key\";\nCREATE UNIQUE INDEX CONCURRENTLY \"User_email_key\" ON \"User\"(\"email\");\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(run.ok(), "{}", run.stdout());
    let applied = &run.json["applied"][2];
    assert_eq!(applied["execution"]["mode"], "statementByStatement");
    assert!(
        applied["execution"]["reason"]
            .as_str()
            .unwrap()
            .contains("CREATE INDEX CONCURRENTLY")
    );
    assert!(
        run.json["warnings"]
            .to_string()
            .contains("statement by statement")
    );
    assert_eq!(db.sql("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN ('Post_authorId_idx', 'User_email_key') AND i.indisvalid"), "2");
    assert_eq!(db.rows()[2]["applied_steps_count"], 1);
}

#[test]
fn a_statement_by_statement_failure_names_what_was_committed() {
    let db = PgDb::fresh("partial");
    let m = two_migrations();
    m.add(
        "20240103000000_partial",
        "CREATE TABLE \"A\" (id int);\nCREATE INDEX CONCURRENTLY \"A_idx\" ON \"A\"(id);\n-- this one fails\nCREATE INDEX CONCURRENTLY \"B_idx\" ON \"Nope\"(id);\nCREATE TABLE \"C\" (id int);\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.error_code(), "P3018");
    let failed = &run.json["failed"][0];
    assert_eq!(failed["failedStatement"], 3);
    assert_eq!(failed["committedStatements"], serde_json::json!([1, 2]));
    let logs = failed["logs"].as_str().unwrap();
    assert!(
        logs.contains("Please check the query number 3 from the migration file (line 4)"),
        "{logs}"
    );
    assert!(logs.contains("(they stay applied): 1-2."), "{logs}");
    let tables = db.tables();
    assert!(tables.contains(&"A".to_string()) && !tables.contains(&"C".to_string()));
    let row = db
        .rows()
        .into_iter()
        .find(|r| r["migration_name"] == "20240103000000_partial")
        .unwrap();
    assert!(row["finished_at"].is_null() && row["applied_steps_count"] == 0);
}

#[test]
fn crlf_files_get_the_checksum_of_their_bytes_and_are_not_edits_when_normalised() {
    let db = PgDb::fresh("crlf");
    let m = Migrations::new().with_lock("postgresql");
    let crlf = INIT.replace('\n', "\r\n");
    m.add("20240101000000_init", &crlf);
    assert!(migrator(&["deploy"], m.path(), &db.url).ok());
    assert_eq!(
        db.rows()[0]["checksum"],
        Value::from(sha256_hex(crlf.as_bytes()))
    );
    m.add("20240101000000_init", INIT); // a checkout with LF endings
    let status = migrator(&["status"], m.path(), &db.url);
    assert!(status.ok(), "{}", status.stdout());
    assert_eq!(status.json["drift"]["edited"], Value::Array(vec![]));
}

#[test]
fn empty_and_comment_only_migrations_are_applied_like_prisma() {
    let db = PgDb::fresh("empty");
    let m = Migrations::new();
    m.add("1_empty", "");
    m.add("2_comment", "-- This is an empty migration.");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(run.ok(), "{}", run.stdout());
    assert_eq!(run.names("applied").len(), 2);
    assert!(
        db.rows()
            .iter()
            .all(|r| r["applied_steps_count"] == 1 && !r["finished_at"].is_null())
    );
}

#[test]
fn status_reports_pending_edited_missing_and_out_of_order() {
    let db = PgDb::fresh("status");
    let m = two_migrations();
    let pending = migrator(&["status"], m.path(), &db.url);
    assert_eq!(pending.code(), 1);
    assert_eq!(pending.status(), "planned");
    assert!(db.tables().is_empty(), "status creates nothing");

    assert!(migrator(&["deploy"], m.path(), &db.url).ok());
    m.add("20240101000000_init", &format!("{INIT}-- edited\n"));
    m.add("20231231000000_older", "SELECT 1;");
    m.remove("20240102000000_posts");
    let run = migrator(&["status"], m.path(), &db.url);
    assert_eq!(run.code(), 1);
    assert_eq!(
        run.json["drift"]["edited"],
        serde_json::json!(["20240101000000_init"])
    );
    assert_eq!(
        run.json["drift"]["missingLocally"],
        serde_json::json!(["20240102000000_posts"])
    );
    let states: Vec<(String, String)> = run.json["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("20231231000000_older".to_string(), "pending".to_string()),
            ("20240101000000_init".to_string(), "applied".to_string()),
            (
                "20240102000000_posts".to_string(),
                "missing-locally".to_string()
            ),
        ]
    );
    assert_eq!(run.json["migrations"][0]["outOfOrder"], true);
    assert_eq!(run.json["migrations"][1]["edited"], true);
    let human = migrator_e2e::text(&run.output);
    assert!(human.contains("20231231000000_older"));
}

#[test]
fn plan_shows_what_deploy_would_do_and_writes_nothing() {
    let db = PgDb::fresh("plan");
    let m = two_migrations();
    let run = migrator(&["plan"], m.path(), &db.url);
    assert!(run.ok(), "{}", run.stdout());
    assert_eq!(run.status(), "planned");
    assert_eq!(
        run.names("pending"),
        ["20240101000000_init", "20240102000000_posts"]
    );
    assert!(db.tables().is_empty());
}

#[test]
fn prisma_schema_parameter_selects_and_creates_the_schema() {
    let db = PgDb::fresh("schema");
    let url = format!("{}?schema=tenant_a", db.url);
    let run = migrator(&["deploy"], two_migrations().path(), &url);
    assert!(run.ok(), "{}", run.stdout());
    assert_eq!(run.json["database"]["schema"], "tenant_a");
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'tenant_a'"),
        "3"
    );
    assert!(db.tables().is_empty(), "public untouched");
    assert!(migrator(&["status"], two_migrations().path(), &url).ok());
}

#[test]
fn deploy_creates_a_missing_database_like_prisma() {
    let db = PgDb::fresh("create");
    db.sql("SELECT 1");
    let url = format!("{}_new", db.url);
    let name = format!("{}_new", db.name);
    let run = migrator(&["deploy"], two_migrations().path(), &url);
    let cleanup = || {
        psql(
            &format!("{}/postgres", migrator_e2e::pg_server()),
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
    };
    let ok = run.ok();
    let warned = run.json["warnings"].to_string().contains("created");
    cleanup();
    assert!(ok && warned, "{}", run.stdout());
}

#[test]
fn a_held_lock_times_out_with_p1002_and_applies_nothing() {
    let db = PgDb::fresh("lock");
    let holder = db.advisory_lock_session(72707369, Duration::from_secs(3600), "psql");
    migrator_e2e::wait_until("the holder's lock", || db.advisory_lock_held(72707369));
    scenarios::a_held_lock_times_out_with_p1002_and_applies_nothing(&SCHEMA, &db, holder);
}

#[test]
fn eight_concurrent_deploys_apply_each_migration_exactly_once() {
    scenarios::eight_concurrent_deploys_apply_each_migration_exactly_once::<Postgres>(
        "SELECT pg_sleep(0.01);",
    );
}

#[test]
fn a_thousand_migration_history_applies_and_then_is_a_fast_no_op() {
    scenarios::a_thousand_migration_history_applies_and_then_is_a_fast_no_op::<Postgres>();
}

#[test]
fn bad_urls_and_unreachable_servers_fail_clearly() {
    let m = two_migrations();
    let run = migrator(&["deploy"], m.path(), "mysql2://nope");
    assert_eq!(run.error_code(), "P1013");
    assert_eq!(run.status(), "rejected");
    let run = migrator(
        &["deploy"],
        m.path(),
        "postgresql://postgres:hunter2@127.0.0.1:1/db?connect_timeout=2",
    );
    assert_eq!(run.error_code(), "P1001");
    assert_eq!(run.status(), "failed");
    assert!(!run.stdout().contains("hunter2") && !run.stderr().contains("hunter2"));
}
