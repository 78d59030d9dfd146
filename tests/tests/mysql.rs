//! `migrator` against a real MySQL / MariaDB (`MIGRATOR_TEST_MYSQL`, default
//! `mysql://root@127.0.0.1:3306`): the PostgreSQL suite's scenarios where MySQL allows them,
//! each test on a fresh database.
//!
//! `GET_LOCK` names are server-wide, so the tests run one at a time (a test holding the lock,
//! or applying a long history, would otherwise make the others wait).

use std::process::Stdio;

use migrator_e2e::mariadb::{client, is_mariadb, server, sql_in};
use migrator_e2e::scenarios::{self, Schema};
use migrator_e2e::{Migrations, MyDb, MySql, migrator};

const INIT: &str = "-- CreateTable\nCREATE TABLE `User` (\n    `id` INTEGER NOT NULL AUTO_INCREMENT,\n    `email` VARCHAR(191) NOT NULL,\n    `role` ENUM('USER', 'ADMIN') NOT NULL DEFAULT 'USER',\n\n    UNIQUE INDEX `User_email_key`(`email`),\n    PRIMARY KEY (`id`)\n) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n";
const POSTS: &str = "-- CreateTable\nCREATE TABLE `Post` (\n    `id` INTEGER NOT NULL AUTO_INCREMENT,\n    `authorId` INTEGER NOT NULL,\n\n    PRIMARY KEY (`id`)\n) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n\n-- AddForeignKey\nALTER TABLE `Post` ADD CONSTRAINT `Post_authorId_fkey` FOREIGN KEY (`authorId`) REFERENCES `User`(`id`) ON DELETE RESTRICT ON UPDATE CASCADE;\n";

const SCHEMA: Schema = Schema {
    init: INIT,
    posts: POSTS,
};

fn two_migrations() -> Migrations {
    SCHEMA.two_migrations::<MySql>()
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
    let db = scenarios::deploy_applies_in_order_and_writes_prismas_rows::<MySql>(
        &SCHEMA,
        "statementByStatement",
    );
    // started_at is the UTC wall time of the client clock (like Prisma), not the session's zone.
    let skew: i64 = db
        .sql("SELECT MAX(ABS(TIMESTAMPDIFF(SECOND, started_at, UTC_TIMESTAMP()))) FROM _prisma_migrations")
        .parse()
        .unwrap();
    assert!(skew <= 5, "started_at is {skew} s away from UTC now");

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
    scenarios::second_deploy_is_up_to_date_and_writes_nothing::<MySql>(&SCHEMA);
}

#[test]
fn a_failure_mid_migration_names_the_committed_statements_then_p3009() {
    let (db, m, run) = scenarios::deploy_with_a_failing_migration::<MySql>(
        &SCHEMA,
        (
            "20240103000000_partial",
            "CREATE TABLE `A` (id int);\n# a MySQL comment\nCREATE TABLE `B` (id int) /*! ENGINE=InnoDB */;\n-- this one fails\nINSERT INTO `Missing` VALUES (1);\nCREATE TABLE `C` (id int);\n",
        ),
    );
    let failed = &run.json["failed"][0];
    assert_eq!(failed["failedStatement"], 3);
    assert_eq!(failed["committedStatements"], serde_json::json!([1, 2]));
    let tables = db.tables();
    assert!(tables.contains(&"A".to_string()) && tables.contains(&"B".to_string()));
    assert!(!tables.contains(&"C".to_string()) && !tables.contains(&"After".to_string()));

    let (logs, _) =
        scenarios::a_failed_row_blocks_deploys_with_p3009(&db, &m, "20240103000000_partial");
    assert!(logs.contains("Database error code: 1146"), "{logs}");
    assert!(
        logs.contains("Please check the query number 3 from the migration file (line 5):\nINSERT INTO `Missing` VALUES (1);"),
        "{logs}"
    );
    assert!(logs.contains("(they stay applied): 1-2."), "{logs}");
}

#[test]
fn resolve_rolled_back_then_deploy_applies_the_fixed_migration_as_a_new_row() {
    scenarios::resolve_rolled_back_then_deploy_applies_the_fixed_migration_as_a_new_row::<MySql>(
        &SCHEMA,
    );
}

#[test]
fn resolve_applied_baselines_a_non_empty_database_after_p3005() {
    scenarios::resolve_applied_baselines_a_non_empty_database::<MySql>(&SCHEMA);
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
    scenarios::a_lock_file_for_another_provider_is_rejected_with_p3019::<MySql>("postgresql");
}

#[test]
fn a_held_get_lock_times_out_with_p1002_and_applies_nothing() {
    let db = MyDb::fresh("lock");
    let holder = client()
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
    let run = scenarios::a_held_lock_times_out_with_p1002_and_applies_nothing(&SCHEMA, &db, holder);
    assert!(
        run.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GET_LOCK('prisma_migrate', 1)")
    );
}

#[test]
fn eight_concurrent_deploys_apply_each_migration_exactly_once() {
    scenarios::eight_concurrent_deploys_apply_each_migration_exactly_once::<MySql>(
        "DO SLEEP(0.01);",
    );
}

#[test]
fn a_thousand_migration_history_applies_and_then_is_a_fast_no_op() {
    scenarios::a_thousand_migration_history_applies_and_then_is_a_fast_no_op::<MySql>();
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
        &migrator_engine::dialect::ServerLogin {
            host: "127.0.0.1",
            port: 3306,
            user: "root",
            password: "not-a-token",
            database: &db.name,
            schema: None,
            ca_pem: b"",
        },
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
