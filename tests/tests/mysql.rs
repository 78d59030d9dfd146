//! `migrator` against a real MySQL / MariaDB (`MIGRATOR_TEST_MYSQL`, default
//! `mysql://root@127.0.0.1:3306`): the PostgreSQL suite's scenarios where MySQL allows them,
//! each test on a fresh database.
//!
//! `GET_LOCK` names are server-wide, so the tests run one at a time (a test holding the lock,
//! or applying a long history, would otherwise make the others wait).

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use migrator_e2e::mariadb::{client, is_mariadb, server, sql_in};
use migrator_e2e::{Migrations, MyDb, migrator};
use migrator_engine::checksum::sha256_hex;
use serde_json::Value;

const INIT: &str = "-- CreateTable\nCREATE TABLE `User` (\n    `id` INTEGER NOT NULL AUTO_INCREMENT,\n    `email` VARCHAR(191) NOT NULL,\n    `role` ENUM('USER', 'ADMIN') NOT NULL DEFAULT 'USER',\n\n    UNIQUE INDEX `User_email_key`(`email`),\n    PRIMARY KEY (`id`)\n) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n";
const POSTS: &str = "-- CreateTable\nCREATE TABLE `Post` (\n    `id` INTEGER NOT NULL AUTO_INCREMENT,\n    `authorId` INTEGER NOT NULL,\n\n    PRIMARY KEY (`id`)\n) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n\n-- AddForeignKey\nALTER TABLE `Post` ADD CONSTRAINT `Post_authorId_fkey` FOREIGN KEY (`authorId`) REFERENCES `User`(`id`) ON DELETE RESTRICT ON UPDATE CASCADE;\n";

fn two_migrations() -> Migrations {
    let m = Migrations::new().with_lock("mysql");
    m.add("20240101000000_init", INIT);
    m.add("20240102000000_posts", POSTS);
    m
}

fn is_uuid_v4(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            14 => c == '4',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// The MariaDB 10.11 `SHOW CREATE TABLE` of Prisma's DDL (prisma-observed.md).
const MARIADB_SHOW_CREATE: &str = "CREATE TABLE `_prisma_migrations` (
  `id` varchar(36) NOT NULL,
  `checksum` varchar(64) NOT NULL,
  `finished_at` datetime(3) DEFAULT NULL,
  `migration_name` varchar(255) NOT NULL,
  `logs` text DEFAULT NULL,
  `rolled_back_at` datetime(3) DEFAULT NULL,
  `started_at` datetime(3) NOT NULL DEFAULT current_timestamp(3),
  `applied_steps_count` int(10) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

#[test]
fn deploy_applies_in_order_and_writes_prismas_rows() {
    let db = MyDb::fresh("deploy");
    let m = two_migrations();
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(run.ok(), "{}{}", run.stdout(), run.stderr());
    assert_eq!(run.status(), "applied");
    assert_eq!(
        run.names("applied"),
        ["20240101000000_init", "20240102000000_posts"]
    );
    assert_eq!(run.json["database"]["engine"], "mysql");
    assert_eq!(
        run.json["applied"][0]["execution"]["mode"],
        "statementByStatement"
    );

    let rows = db.rows();
    assert_eq!(rows.len(), 2);
    for (row, script) in rows.iter().zip([INIT, POSTS]) {
        assert!(is_uuid_v4(row["id"].as_str().unwrap()), "{row}");
        assert_eq!(row["checksum"], Value::from(sha256_hex(script.as_bytes())));
        assert_eq!(row["applied_steps_count"], 1);
        assert!(row["logs"].is_null());
        assert!(row["rolled_back_at"].is_null());
        assert!(!row["finished_at"].is_null());
    }
    // started_at is the UTC wall time of the client clock (like Prisma), not the session's zone.
    let skew: i64 = db
        .sql("SELECT MAX(ABS(TIMESTAMPDIFF(SECOND, started_at, UTC_TIMESTAMP()))) FROM _prisma_migrations")
        .parse()
        .unwrap();
    assert!(skew <= 5, "started_at is {skew} s away from UTC now");
    assert!(db.tables().contains(&"Post".to_string()));

    let create = db.sql("SHOW CREATE TABLE _prisma_migrations");
    let create = create.split_once('\t').unwrap().1;
    if is_mariadb() {
        assert_eq!(create, MARIADB_SHOW_CREATE);
    } else {
        assert!(create.contains("utf8mb4_unicode_ci") && create.contains("datetime(3)"));
    }
}

#[test]
fn second_deploy_is_up_to_date_and_writes_nothing() {
    let db = MyDb::fresh("noop");
    let m = two_migrations();
    assert!(migrator(&["deploy"], m.path(), &db.url).ok());
    let rows = db.rows();
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(run.ok());
    assert_eq!(run.status(), "up-to-date");
    assert!(run.names("applied").is_empty());
    assert_eq!(db.rows(), rows);
    assert!(migrator(&["status"], m.path(), &db.url).ok());
}

#[test]
fn a_failure_mid_migration_names_the_committed_statements_then_p3009() {
    let db = MyDb::fresh("fail");
    let m = two_migrations();
    m.add(
        "20240103000000_partial",
        "CREATE TABLE `A` (id int);\n# a MySQL comment\nCREATE TABLE `B` (id int) /*! ENGINE=InnoDB */;\n-- this one fails\nINSERT INTO `Missing` VALUES (1);\nCREATE TABLE `C` (id int);\n",
    );
    m.add("20240104000000_after", "CREATE TABLE `After` (id int);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.code(), 1);
    assert_eq!(run.status(), "failed");
    assert_eq!(run.error_code(), "P3018");
    assert_eq!(run.names("failed"), ["20240103000000_partial"]);
    assert_eq!(run.names("pending"), ["20240104000000_after"]);
    let failed = &run.json["failed"][0];
    assert_eq!(failed["failedStatement"], 3);
    assert_eq!(failed["committedStatements"], serde_json::json!([1, 2]));
    let tables = db.tables();
    assert!(tables.contains(&"A".to_string()) && tables.contains(&"B".to_string()));
    assert!(!tables.contains(&"C".to_string()) && !tables.contains(&"After".to_string()));

    let rows = db.rows();
    let row = rows
        .iter()
        .find(|r| r["migration_name"] == "20240103000000_partial")
        .unwrap();
    assert!(row["finished_at"].is_null() && row["rolled_back_at"].is_null());
    assert_eq!(row["applied_steps_count"], 0);
    let logs = row["logs"].as_str().unwrap();
    assert!(logs.starts_with("A migration failed to apply. New migrations cannot be applied before the error is recovered from."), "{logs}");
    assert!(logs.contains("Database error code: 1146"), "{logs}");
    assert!(
        logs.contains("Please check the query number 3 from the migration file (line 5):\nINSERT INTO `Missing` VALUES (1);"),
        "{logs}"
    );
    assert!(logs.contains("(they stay applied): 1-2."), "{logs}");

    let blocked = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(blocked.code(), 1);
    assert_eq!(blocked.status(), "blocked");
    assert_eq!(blocked.error_code(), "P3009");
    assert!(
        blocked.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("The `20240103000000_partial` migration started at")
    );
    assert_eq!(db.rows(), rows, "refusals write nothing");
}

#[test]
fn resolve_rolled_back_then_deploy_applies_the_fixed_migration_as_a_new_row() {
    let db = MyDb::fresh("rollback");
    let m = two_migrations();
    m.add("20240103000000_fix", "SELECT * FROM nowhere;\n");
    assert_eq!(
        migrator(&["deploy"], m.path(), &db.url).error_code(),
        "P3018"
    );
    let resolved = migrator(
        &["resolve", "--rolled-back", "20240103000000_fix"],
        m.path(),
        &db.url,
    );
    assert!(resolved.ok(), "{}", resolved.stdout());
    m.add("20240103000000_fix", "CREATE TABLE `Fixed` (id int);\n");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(run.ok(), "{}", run.stdout());
    assert_eq!(run.names("applied"), ["20240103000000_fix"]);
    let rows: Vec<Value> = db
        .rows()
        .into_iter()
        .filter(|r| r["migration_name"] == "20240103000000_fix")
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(!rows[0]["rolled_back_at"].is_null() && rows[0]["finished_at"].is_null());
    assert!(rows[1]["rolled_back_at"].is_null() && !rows[1]["finished_at"].is_null());
    let status = migrator(&["status"], m.path(), &db.url);
    assert!(status.ok(), "{}", status.stdout());
}

#[test]
fn resolve_applied_baselines_a_non_empty_database_after_p3005() {
    let db = MyDb::fresh("baseline");
    db.sql(INIT);
    let m = two_migrations();
    let refused = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(refused.error_code(), "P3005", "{}", refused.stdout());
    assert_eq!(refused.status(), "blocked");
    assert!(!db.tables().contains(&"_prisma_migrations".to_string()));

    let run = migrator(
        &["resolve", "--applied", "20240101000000_init"],
        m.path(),
        &db.url,
    );
    assert!(run.ok(), "{}", run.stdout());
    let rows = db.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["logs"], "");
    assert_eq!(rows[0]["applied_steps_count"], 0);
    assert_eq!(rows[0]["started_at"], rows[0]["finished_at"]);
    assert_eq!(
        rows[0]["checksum"],
        Value::from(sha256_hex(INIT.as_bytes()))
    );
    let deploy = migrator(&["deploy"], m.path(), &db.url);
    assert!(deploy.ok(), "{}", deploy.stdout());
    assert_eq!(deploy.names("applied"), ["20240102000000_posts"]);
}

#[test]
fn views_do_not_make_a_database_non_empty() {
    let db = MyDb::fresh("views");
    db.sql("CREATE VIEW v AS SELECT 1 AS one");
    let run = migrator(&["deploy"], two_migrations().path(), &db.url);
    assert!(run.ok(), "{}", run.stdout());
}

#[test]
fn system_databases_are_refused_with_p3004() {
    let m = two_migrations();
    for name in ["mysql", "information_schema", "Performance_Schema", "sys"] {
        let run = migrator(&["deploy"], m.path(), &format!("{}/{name}", server()));
        assert_eq!(run.error_code(), "P3004", "{name}: {}", run.stdout());
        assert_eq!(run.status(), "rejected");
    }
}

#[test]
fn a_lock_file_for_another_provider_is_rejected_with_p3019() {
    let db = MyDb::fresh("provider");
    let m = Migrations::new().with_lock("postgresql");
    m.add("1_init", "CREATE TABLE t (id int);");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.error_code(), "P3019", "{}", run.stdout());
    assert!(db.tables().is_empty());
}

#[test]
fn a_held_get_lock_times_out_with_p1002_and_applies_nothing() {
    let db = MyDb::fresh("lock");
    let mut holder: Child = client()
        .args([
            "-e",
            "SELECT GET_LOCK('prisma_migrate', 0); SELECT SLEEP(3600);",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    migrator_e2e::wait_until("the holder's lock", || {
        db.sql("SELECT IS_USED_LOCK('prisma_migrate') IS NOT NULL") == "1"
    });
    let started = Instant::now();
    let run = migrator(
        &["deploy", "--lock-timeout", "1s"],
        two_migrations().path(),
        &db.url,
    );
    let waited = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(run.error_code(), "P1002", "{}", run.stdout());
    assert_eq!(run.status(), "blocked");
    assert!(
        run.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GET_LOCK('prisma_migrate', 1)")
    );
    // The holder sleeps an hour: P1002 at all means the wait ended by itself, and the message
    // names the 1 s asked for (not the 10 s default). The bound only catches a hang.
    assert!(
        run.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Timeout: 1000ms")),
        "{}",
        run.stdout()
    );
    assert!(waited < Duration::from_secs(600), "waited {waited:?}");
    assert!(!db.tables().contains(&"User".to_string()));
}

#[test]
fn eight_concurrent_deploys_apply_each_migration_exactly_once() {
    let db = MyDb::fresh("concurrent");
    let m = Migrations::new().with_lock("mysql");
    for i in 0..20 {
        m.add(
            &format!("2024010100{i:04}_m{i}"),
            &format!("CREATE TABLE t{i} (id int); DO SLEEP(0.01);"),
        );
    }
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(migrator_e2e::migrator_bin())
                .args([
                    "deploy",
                    "--json",
                    "--lock-timeout",
                    "60s",
                    "--database-url",
                    &db.url,
                    "--artifact",
                ])
                .arg(m.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied_total = 0;
    for child in children {
        let out: Output = child.wait_with_output().unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(out.status.success(), "{json}");
        applied_total += json["applied"].as_array().unwrap().len();
    }
    assert_eq!(applied_total, 20, "every migration applied by one process");
    assert_eq!(
        db.sql("SELECT COUNT(*), COUNT(DISTINCT migration_name), COUNT(finished_at) FROM _prisma_migrations"),
        "20\t20\t20"
    );
}

#[test]
fn a_thousand_migration_history_applies_and_then_is_a_fast_no_op() {
    let db = MyDb::fresh("thousand");
    let m = Migrations::new().with_lock("mysql");
    for i in 0..1000 {
        m.add(
            &format!("20240101{i:06}_m{i}"),
            &format!("CREATE TABLE t{i} (id int);"),
        );
    }
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(run.ok(), "{}", run.stderr());
    assert_eq!(run.names("applied").len(), 1000);
    let started = Instant::now();
    let again = migrator(&["deploy"], m.path(), &db.url);
    let took = started.elapsed();
    assert_eq!(again.status(), "up-to-date");
    // Speed is `make bench`'s; with room for a loaded machine, this only catches a no-op that
    // hangs or does something far heavier than reading the table.
    assert!(took < Duration::from_secs(60), "the no-op took {took:?}");
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL"),
        "1000"
    );
    assert!(migrator(&["status"], m.path(), &db.url).ok());
}

#[test]
fn mysql_quoting_routines_and_executable_comments_split_correctly() {
    let db = MyDb::fresh("quoting");
    let m = Migrations::new().with_lock("mysql");
    m.add(
        "1_quoting",
        "# hash comment; with a semicolon\nCREATE TABLE `we;ird``name` (`a;b` varchar(20) DEFAULT 'x;y', c varchar(20) DEFAULT \"p;q\");\n/*!40101 SET @saved = @@session.sql_mode */;\nINSERT INTO `we;ird``name` VALUES ('it''s; fine', 'back\\\\slash;');\n-- a routine body holds semicolons\nCREATE PROCEDURE p()\nBEGIN\n  DECLARE x INT;\n  SET x = 1;\n  SELECT x;\nEND;\nCREATE TRIGGER trg BEFORE INSERT ON `we;ird``name` FOR EACH ROW BEGIN\n  IF NEW.c IS NULL THEN SET NEW.c = 'z;'; END IF;\nEND;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(run.ok(), "{}", run.stdout());
    assert_eq!(
        db.sql("SELECT `a;b`, c FROM `we;ird``name`"),
        "it's; fine\tback\\slash;"
    );
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = DATABASE() AND routine_name = 'p'"),
        "1"
    );
}

#[test]
fn empty_and_comment_only_migrations_fail_like_prismas_mysql_connector() {
    let db = MyDb::fresh("empty");
    let m = Migrations::new().with_lock("mysql");
    m.add("1_empty", "-- This is an empty migration.");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.error_code(), "P3018", "{}", run.stdout());
    let rows = db.rows();
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["finished_at"].is_null());
    let logs = rows[0]["logs"].as_str().unwrap();
    assert!(logs.contains("Database error code: 1065"), "{logs}");
    assert!(logs.contains("Query was empty"), "{logs}");

    // The same for a zero-byte file; resolving it as applied is the way forward.
    let db = {
        drop(db);
        MyDb::fresh("empty0")
    };
    let m = Migrations::new().with_lock("mysql");
    m.add("1_zero", "");
    assert_eq!(
        migrator(&["deploy"], m.path(), &db.url).error_code(),
        "P3018"
    );
    let resolved = migrator(&["resolve", "--applied", "1_zero"], m.path(), &db.url);
    assert!(resolved.ok(), "{}", resolved.stdout());
    assert!(migrator(&["status"], m.path(), &db.url).ok());
}

#[test]
fn deploy_creates_a_missing_database_like_prisma() {
    let db = MyDb::fresh("create");
    let name = format!("{}_new", db.name);
    let run = migrator(
        &["deploy"],
        two_migrations().path(),
        &format!("{}/{name}", server()),
    );
    sql_in(None, &format!("DROP DATABASE IF EXISTS `{name}`"));
    assert!(run.ok(), "{}", run.stdout());
    assert!(
        run.json["warnings"]
            .to_string()
            .contains(&format!("MySQL database {name} created at"))
    );
}

#[test]
fn bad_urls_and_wrong_passwords_fail_clearly() {
    let m = two_migrations();
    let run = migrator(&["deploy"], m.path(), &format!("{}/db?bogus=1", server()));
    assert_eq!(run.error_code(), "P1013");
    let run = migrator(&["deploy"], m.path(), "mysql://root@127.0.0.1:3306");
    assert_eq!(run.error_code(), "P1013");
    let run = migrator(
        &["deploy"],
        m.path(),
        "mysql://nobody:hunter2@127.0.0.1:3306/db",
    );
    assert_eq!(run.error_code(), "P1000", "{}", run.stdout());
    assert!(!run.stdout().contains("hunter2") && !run.stderr().contains("hunter2"));
}

#[test]
fn the_functions_target_never_sends_a_password_without_verified_tls() {
    // The local server has no TLS: VerifyIdentity (used for IAM tokens with the cleartext
    // plugin, and for secrets) must refuse to connect rather than fall back to plaintext.
    let db = MyDb::fresh("tls");
    let target = migrator_engine::dialect::mysql::Target::from_parts(
        "127.0.0.1",
        3306,
        "root",
        "not-a-token",
        &db.name,
        b"",
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(target.connect(false));
    let Err(error) = result else {
        panic!("connected without TLS");
    };
    assert_eq!(error.code(), Some("P1001"), "{error}");
    assert!(error.to_string().to_lowercase().contains("tls"), "{error}");
}

#[test]
fn a_failure_inside_the_scripts_own_transaction_is_still_recorded() {
    let db = MyDb::fresh("own_tx");
    let m = Migrations::new().with_lock("mysql");
    m.add(
        "1_tx",
        "CREATE TABLE t (id int);\nSTART TRANSACTION;\nINSERT INTO t VALUES (1);\nINSERT INTO nope VALUES (1);\nCOMMIT;\n",
    );
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.error_code(), "P3018", "{}", run.stdout());
    assert_eq!(
        run.json["failed"][0]["committedStatements"],
        serde_json::json!([1, 2]),
        "the INSERT inside the script's transaction was not committed"
    );
    let rows = db.rows();
    assert!(
        rows[0]["logs"]
            .as_str()
            .unwrap_or_default()
            .contains("query number 4"),
        "{rows:?}"
    );
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM t"),
        "0",
        "the open transaction was rolled back"
    );
}
