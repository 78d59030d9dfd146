//! Engine rules that only a real database can show: what a refusal leaves behind.
//!
//! `rejected` means untouched: an artifact that deploy refuses must not create the database,
//! the `?schema=` namespace or `_prisma_migrations` on the way to refusing it.

use migrator_e2e::{Migrations, PgDb, migrator, pg_server, psql};

/// Two migrations, the second a folder without `migration.sql` (Prisma's P3015 while pending).
fn artifact_with_a_scriptless_folder(provider: &str) -> Migrations {
    let m = Migrations::new().with_lock(provider);
    m.add("20240101000000_init", "CREATE TABLE a (id INTEGER);");
    let folder = m.path().join("20240102000000_no_script");
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join("README.md"), "no script here").expect("readme");
    m
}

fn assert_p3015(run: &migrator_e2e::Run) {
    assert_eq!(run.status(), "rejected", "{}", run.stdout());
    assert_eq!(run.error_code(), "P3015", "{}", run.stdout());
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout().contains("20240102000000_no_script"),
        "{}",
        run.stdout()
    );
    assert!(run.names("applied").is_empty(), "{}", run.stdout());
}

fn database_exists(name: &str) -> bool {
    psql(
        &format!("{}/postgres", pg_server()),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    ) == "1"
}

#[test]
fn postgres_missing_database_and_a_scriptless_folder_is_rejected_without_creating_it() {
    // A database made and dropped at once gives a name that is free and cleaned up after.
    let name = {
        let probe = PgDb::fresh("p3015_missing");
        probe.name.clone()
    };
    assert!(!database_exists(&name));
    let url = format!("{}/{name}", pg_server());
    let run = migrator(
        &["deploy"],
        artifact_with_a_scriptless_folder("postgresql").path(),
        &url,
    );
    let created = database_exists(&name);
    if created {
        psql(
            &format!("{}/postgres", pg_server()),
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        );
    }
    assert_p3015(&run);
    assert!(!created, "the database was created: {}", run.stdout());
    assert!(
        !run.stdout().contains("created"),
        "no creation is reported: {}",
        run.stdout()
    );
    assert_eq!(
        run.names("pending"),
        ["20240101000000_init", "20240102000000_no_script"]
    );
}

#[test]
fn postgres_empty_database_and_a_scriptless_folder_gets_no_migrations_table() {
    let db = PgDb::fresh("p3015_empty");
    let run = migrator(
        &["deploy"],
        artifact_with_a_scriptless_folder("postgresql").path(),
        &db.url,
    );
    assert_p3015(&run);
    assert!(db.tables().is_empty(), "tables: {:?}", db.tables());
}

#[test]
fn postgres_missing_schema_and_a_scriptless_folder_is_not_created() {
    let db = PgDb::fresh("p3015_schema");
    let url = format!("{}?schema=tenant_x", db.url);
    let run = migrator(
        &["deploy"],
        artifact_with_a_scriptless_folder("postgresql").path(),
        &url,
    );
    assert_p3015(&run);
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_x'"),
        "0"
    );
}

#[test]
fn postgres_scriptless_folder_that_is_already_applied_does_not_stop_deploy() {
    // Prisma's rule is P3015 only while pending: the early refusal must not widen it.
    let db = PgDb::fresh("p3015_applied");
    let m = Migrations::new().with_lock("postgresql");
    m.add("20240101000000_init", "CREATE TABLE a (id INTEGER);");
    assert!(migrator(&["deploy"], m.path(), &db.url).ok());
    m.remove("20240101000000_init");
    std::fs::create_dir_all(m.path().join("20240101000000_init")).expect("folder");
    m.add("20240102000000_next", "CREATE TABLE b (id INTEGER);");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(run.ok(), "{}", run.stdout());
    assert_eq!(run.names("applied"), ["20240102000000_next"]);
}

/// The MariaDB/MySQL server the tests use, without a database.
fn mysql_server() -> String {
    std::env::var("MIGRATOR_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
        .trim_end_matches('/')
        .to_string()
}

/// Whether the MariaDB/MySQL server has database `name` (asked through the migrator itself:
/// `status` on a missing database is P1003).
fn mysql_database_exists(name: &str) -> bool {
    let probe = Migrations::new().with_lock("mysql");
    let run = migrator(
        &["status"],
        probe.path(),
        &format!("{}/{name}", mysql_server()),
    );
    run.error_code() != "P1003"
}

#[test]
fn mysql_missing_database_and_a_scriptless_folder_is_rejected_without_creating_it() {
    let name = format!("mt_p3015_missing_{}", std::process::id());
    assert!(
        !mysql_database_exists(&name),
        "{name} exists before the test"
    );
    let url = format!("{}/{name}", mysql_server());
    let run = migrator(
        &["deploy"],
        artifact_with_a_scriptless_folder("mysql").path(),
        &url,
    );
    let created = mysql_database_exists(&name);
    if created {
        // Best effort: a failed run should not leave the database behind.
        let _ = std::process::Command::new("mariadb")
            .args(["-h127.0.0.1", "-uroot", "--protocol=tcp", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{name}`"))
            .output();
    }
    assert_p3015(&run);
    assert!(!created, "the database was created: {}", run.stdout());
}

#[test]
fn sqlite_missing_file_and_a_scriptless_folder_is_rejected_without_creating_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("absent.db");
    let url = format!("file:{}", db.display());
    let run = migrator(
        &["deploy"],
        artifact_with_a_scriptless_folder("sqlite").path(),
        &url,
    );
    assert_p3015(&run);
    assert!(!db.exists(), "the SQLite file was created");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "files left: {leftovers:?}");
}

#[test]
fn postgres_a_name_recorded_in_nfc_and_shipped_in_nfd_is_refused_not_applied_twice() {
    let db = PgDb::fresh("nfd");
    let composed = "20240101000000_caf\u{e9}";
    let decomposed = "20240101000000_cafe\u{301}";
    let sql = "CREATE TABLE cafe (id INTEGER);";
    let first = Migrations::new().with_lock("postgresql");
    first.add(composed, sql);
    assert!(migrator(&["deploy"], first.path(), &db.url).ok());
    let rows_before = db.rows();

    let second = Migrations::new().with_lock("postgresql");
    second.add(decomposed, sql);
    for action in ["plan", "status", "deploy"] {
        let run = migrator(&[action], second.path(), &db.url);
        assert_eq!(run.status(), "rejected", "{action}: {}", run.stdout());
        assert_eq!(run.code(), 1, "{action}");
        let message = run.json["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains("differ only by Unicode normalisation"),
            "{action}: {message}"
        );
        assert!(
            message.contains("`20240101000000_cafe\\u{301}` (NFD)")
                && message.contains("`20240101000000_caf\\u{e9}` (NFC)"),
            "{action}: {message}"
        );
        assert!(
            run.json["warnings"]
                .to_string()
                .contains("Unicode normalisation"),
            "{action}: {}",
            run.stdout()
        );
    }
    assert_eq!(db.rows(), rows_before, "nothing was written");
}
