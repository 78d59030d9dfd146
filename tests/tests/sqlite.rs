//! `migrator` against SQLite files: the embedded default used by `make demo` and local work.

use std::path::Path;

use migrator_e2e::{Migrations, migrator, sqlite, workspace};

fn url(db: &Path) -> String {
    format!("file:{}", db.display())
}

#[test]
fn the_example_zip_applies_once_then_is_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let zip = workspace().join("examples/prisma.zip");
    let run = migrator(&["deploy"], &zip, &url(&db));
    assert!(run.ok(), "{}{}", run.stdout(), run.stderr());
    assert_eq!(run.status(), "applied");
    assert_eq!(run.names("applied").len(), 6);
    assert_eq!(run.json["artifact"]["lockProvider"], "sqlite");
    assert_eq!(run.json["artifact"]["schemaProvider"], "sqlite");
    // The table redefinition turns foreign keys off: it runs outside a transaction, like Prisma.
    assert_eq!(
        run.json["applied"][5]["execution"]["mode"],
        "statementByStatement"
    );
    assert_eq!(run.json["applied"][0]["execution"]["mode"], "transaction");

    // Prisma writes SQLite timestamps as integer epoch milliseconds.
    assert_eq!(
        sqlite(
            &db,
            "SELECT DISTINCT typeof(started_at), typeof(finished_at), applied_steps_count FROM _prisma_migrations"
        ),
        "integer|integer|1"
    );
    assert_eq!(
        sqlite(
            &db,
            "SELECT count(*) FROM sqlite_master WHERE name IN ('User', 'Post', 'Tag', '_PostToTag')"
        ),
        "4"
    );
    assert_eq!(
        sqlite(
            &db,
            "SELECT \"notnull\" FROM pragma_table_info('User') WHERE name = 'name'"
        ),
        "1"
    );

    let again = migrator(&["deploy"], &zip, &url(&db));
    assert!(again.ok());
    assert_eq!(again.status(), "up-to-date");
    assert!(migrator(&["status"], &zip, &url(&db)).ok());
}

#[test]
fn the_ddl_is_prismas() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ddl.db");
    let m = Migrations::new().with_lock("sqlite");
    m.add("1_init", "CREATE TABLE a (id INTEGER);");
    assert!(migrator(&["deploy"], m.path(), &url(&db)).ok());
    let ddl = sqlite(
        &db,
        "SELECT sql FROM sqlite_master WHERE name = '_prisma_migrations'",
    );
    assert_eq!(
        format!("{ddl};"),
        migrator_engine::dialect::sqlite::CREATE_MIGRATIONS_TABLE
    );
}

#[test]
fn a_failing_migration_is_rolled_back_and_recorded_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fail.db");
    let m = Migrations::new().with_lock("sqlite");
    m.add("1_ok", "CREATE TABLE a (id INTEGER);");
    m.add(
        "2_bad",
        "CREATE TABLE b (id INTEGER);\nINSERT INTO missing VALUES (1);",
    );
    let run = migrator(&["deploy"], m.path(), &url(&db));
    assert_eq!(run.error_code(), "P3018");
    assert_eq!(
        sqlite(&db, "SELECT count(*) FROM sqlite_master WHERE name = 'b'"),
        "0"
    );
    assert_eq!(
        sqlite(
            &db,
            "SELECT migration_name, finished_at IS NULL, applied_steps_count, logs LIKE 'A migration failed to apply.%' FROM _prisma_migrations WHERE migration_name = '2_bad'"
        ),
        "2_bad|1|0|1"
    );
    let blocked = migrator(&["deploy"], m.path(), &url(&db));
    assert_eq!(blocked.error_code(), "P3009");

    m.add("2_bad", "CREATE TABLE b (id INTEGER);");
    assert!(migrator(&["resolve", "--rolled-back", "2_bad"], m.path(), &url(&db)).ok());
    let fixed = migrator(&["deploy"], m.path(), &url(&db));
    assert!(fixed.ok(), "{}", fixed.stdout());
    assert_eq!(fixed.names("applied"), ["2_bad"]);
}

#[test]
fn read_only_commands_never_create_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("absent.db");
    let m = Migrations::new().with_lock("sqlite");
    m.add("1_init", "CREATE TABLE a (id INTEGER);");
    let plan = migrator(&["plan"], m.path(), &url(&db));
    assert!(plan.ok(), "{}", plan.stdout());
    assert_eq!(plan.names("pending"), ["1_init"]);
    assert_eq!(migrator(&["status"], m.path(), &url(&db)).code(), 1);
    assert!(!db.exists());
}

#[test]
fn baseline_with_resolve_applied_then_deploy_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("base.db");
    let m = Migrations::new().with_lock("sqlite");
    m.add("1_init", "CREATE TABLE a (id INTEGER);");
    m.add("2_more", "CREATE TABLE b (id INTEGER);");
    sqlite(&db, "CREATE TABLE a (id INTEGER)");
    assert_eq!(
        migrator(&["deploy"], m.path(), &url(&db)).error_code(),
        "P3005"
    );
    assert!(migrator(&["resolve", "--applied", "1_init"], m.path(), &url(&db)).ok());
    assert_eq!(
        sqlite(
            &db,
            "SELECT logs, applied_steps_count, started_at = finished_at, typeof(started_at) FROM _prisma_migrations"
        ),
        "|0|1|integer"
    );
    let run = migrator(&["deploy"], m.path(), &url(&db));
    assert_eq!(run.names("applied"), ["2_more"]);
}

#[test]
fn a_postgresql_artifact_is_refused_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p3019.db");
    let m = Migrations::new().with_lock("postgresql");
    m.add("1_init", "CREATE TABLE a (id INTEGER);");
    let run = migrator(&["deploy"], m.path(), &url(&db));
    assert_eq!(run.error_code(), "P3019");
    assert!(
        !db.exists(),
        "a rejected artifact never creates the database file"
    );
}

#[test]
fn unsafe_artifacts_are_rejected_without_opening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never.db");
    let zip_path = dir.path().join("slip.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        zip.start_file(
            "prisma/migrations/1_init/migration.sql",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        std::io::Write::write_all(&mut zip, b"CREATE TABLE a (id INTEGER);").unwrap();
        zip.start_file(
            "prisma/migrations/../../../etc/evil",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.finish().unwrap();
    }
    let run = migrator(&["deploy"], &zip_path, &url(&db));
    assert_eq!(run.status(), "rejected");
    assert!(
        run.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains(".."),
        "{}",
        run.json
    );
    assert!(!db.exists());
}
