//! The samples in `examples/` keep working: each PostgreSQL and MySQL sample deploys to a real
//! server and leaves the schema, data and bookkeeping its migrations describe, and each
//! committed `prisma.zip` is exactly what `examples/build_zip.py` makes of its folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use migrator_e2e::{MyDb, PgDb, Run, migrator, workspace};

const NAMES: [&str; 5] = [
    "20240105093000_init",
    "20240112141500_add_posts",
    "20240201103000_add_tags",
    "20240215160000_index_published_posts",
    "20240301120000_require_user_name",
];

fn sample(engine: &str) -> PathBuf {
    workspace().join("examples").join(engine)
}

/// The sample's migrations folder without its last migration (the backfill), in a temp dir.
fn without_the_backfill(engine: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = sample(engine).join("prisma/migrations");
    let dst = dir.path().join("migrations");
    std::fs::create_dir_all(&dst).expect("migrations dir");
    std::fs::copy(
        src.join("migration_lock.toml"),
        dst.join("migration_lock.toml"),
    )
    .expect("lock file");
    for name in &NAMES[..4] {
        std::fs::create_dir_all(dst.join(name)).expect("migration dir");
        std::fs::copy(
            src.join(name).join("migration.sql"),
            dst.join(name).join("migration.sql"),
        )
        .expect("migration.sql");
    }
    dir
}

fn assert_applied(run: &Run, names: &[&str]) {
    assert!(run.ok(), "{}{}", run.stdout(), run.stderr());
    assert_eq!(run.status(), "applied", "{}", run.stdout());
    assert_eq!(run.names("applied"), names, "{}", run.stdout());
}

#[test]
fn the_committed_zips_are_what_build_zip_makes_of_the_folders() {
    for engine in ["postgres", "mysql"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("prisma.zip");
        let status = Command::new("python3")
            .arg(workspace().join("examples/build_zip.py"))
            .arg(sample(engine).join("prisma"))
            .arg(&out)
            .status()
            .expect("python3 runs");
        assert!(status.success());
        let built = std::fs::read(&out).expect("built zip");
        let committed = std::fs::read(sample(engine).join("prisma.zip")).expect("committed zip");
        assert!(
            built == committed,
            "examples/{engine}/prisma.zip is stale: run `make examples` and commit it"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[test]
fn the_postgres_sample_deploys_with_its_enums_relations_concurrent_index_and_data() {
    let db = PgDb::fresh("sample_pg");
    let zip = sample("postgres").join("prisma.zip");
    let run = migrator(&["deploy"], &zip, &db.url);
    assert_applied(&run, &NAMES);
    let index = &run.json["applied"][3];
    assert_eq!(
        index["execution"]["mode"], "statementByStatement",
        "CREATE INDEX CONCURRENTLY runs outside a transaction: {index:#}"
    );

    assert_eq!(
        db.tables(),
        ["Post", "Tag", "User", "_PostToTag", "_prisma_migrations"]
    );
    assert_eq!(
        db.sql("SELECT string_agg(typname, ',' ORDER BY typname) FROM pg_type WHERE typtype = 'e'"),
        "PostStatus,Role"
    );
    assert_eq!(
        db.sql("SELECT enum_range(NULL::\"Role\")::text"),
        "{USER,EDITOR,ADMIN}"
    );
    assert_eq!(
        db.sql(
            "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE contype = 'f'"
        ),
        "Post_authorId_fkey,_PostToTag_A_fkey,_PostToTag_B_fkey"
    );
    assert_eq!(
        db.sql(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'Post_status_publishedAt_idx'"
        ),
        "t",
        "the concurrent index exists and is valid"
    );
    assert_eq!(
        db.sql("SELECT string_agg(name, ',' ORDER BY name) FROM \"Tag\""),
        "announcement,release-notes"
    );
    assert_eq!(
        db.sql(
            "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'User' AND column_name = 'name'"
        ),
        "NO"
    );
    let rows = db.rows();
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter()
            .all(|r| !r["finished_at"].is_null() && r["applied_steps_count"] == 1),
        "{rows:#?}"
    );

    let again = migrator(&["deploy"], &zip, &db.url);
    assert!(again.ok(), "{}", again.stdout());
    assert_eq!(again.status(), "up-to-date");
}

#[test]
fn the_postgres_samples_backfill_names_existing_users_before_requiring_the_column() {
    let db = PgDb::fresh("sample_pg_backfill");
    let first = without_the_backfill("postgres");
    assert_applied(&migrator(&["deploy"], first.path(), &db.url), &NAMES[..4]);
    db.sql(
        "INSERT INTO \"User\" (\"email\", \"name\") VALUES ('ada@example.com', NULL), ('grace@example.com', ''), ('linus@example.com', 'Linus')",
    );

    let run = migrator(&["deploy"], &sample("postgres").join("prisma.zip"), &db.url);
    assert_applied(&run, &NAMES[4..]);
    assert_eq!(
        db.sql(
            "SELECT string_agg(\"email\" || '=' || \"name\", ',' ORDER BY \"email\") FROM \"User\""
        ),
        "ada@example.com=ada,grace@example.com=grace,linus@example.com=Linus"
    );
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB (`MIGRATOR_TEST_MYSQL`, default mysql://root@127.0.0.1:3306)

/// `GET_LOCK` names are server-wide: another deploy on the same server (another suite, another
/// checkout) may hold Prisma's lock for a while, so wait for it rather than fail.
const MY_DEPLOY: [&str; 3] = ["deploy", "--lock-timeout", "300s"];

fn schema_of(db: &MyDb, query: &str) -> String {
    db.sql(&query.replace("DB", &db.name))
}

#[test]
fn the_mysql_sample_deploys_with_its_enums_relations_online_index_and_backfill() {
    let db = MyDb::fresh("sample_my");
    let first = without_the_backfill("mysql");
    assert_applied(&migrator(&MY_DEPLOY, first.path(), &db.url), &NAMES[..4]);
    db.sql("INSERT INTO `User` (`email`, `name`) VALUES ('ada@example.com', NULL), ('linus@example.com', 'Linus')");

    let zip: &Path = &sample("mysql").join("prisma.zip");
    let run = migrator(&MY_DEPLOY, zip, &db.url);
    assert_applied(&run, &NAMES[4..]);

    assert_eq!(
        schema_of(
            &db,
            "SELECT GROUP_CONCAT(table_name ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'DB'"
        ),
        "Post,Tag,User,_PostToTag,_prisma_migrations"
    );
    assert_eq!(
        schema_of(
            &db,
            "SELECT column_type FROM information_schema.columns WHERE table_schema = 'DB' AND table_name = 'User' AND column_name = 'role'"
        ),
        "enum('USER','EDITOR','ADMIN')"
    );
    assert_eq!(
        schema_of(
            &db,
            "SELECT GROUP_CONCAT(constraint_name ORDER BY constraint_name) FROM information_schema.referential_constraints WHERE constraint_schema = 'DB'"
        ),
        "Post_authorId_fkey,_PostToTag_A_fkey,_PostToTag_B_fkey"
    );
    assert_eq!(
        schema_of(
            &db,
            "SELECT GROUP_CONCAT(column_name ORDER BY seq_in_index) FROM information_schema.statistics WHERE table_schema = 'DB' AND index_name = 'Post_status_publishedAt_idx'"
        ),
        "status,publishedAt"
    );
    assert_eq!(
        db.sql("SELECT GROUP_CONCAT(`name` ORDER BY `name`) FROM `Tag`"),
        "announcement,release-notes"
    );
    assert_eq!(
        db.sql("SELECT GROUP_CONCAT(CONCAT(`email`, '=', `name`) ORDER BY `email`) FROM `User`"),
        "ada@example.com=ada,linus@example.com=Linus"
    );
    assert_eq!(
        schema_of(
            &db,
            "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'DB' AND table_name = 'User' AND column_name = 'name'"
        ),
        "NO"
    );
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL"),
        "5"
    );

    // The whole zip on an empty database, as the README shows it.
    let fresh = MyDb::fresh("sample_my_zip");
    assert_applied(&migrator(&MY_DEPLOY, zip, &fresh.url), &NAMES);
    let again = migrator(&MY_DEPLOY, zip, &fresh.url);
    assert_eq!(again.status(), "up-to-date", "{}", again.stdout());
}
