//! Compatibility with the real Prisma CLI (the oracle of `tests/oracle/`, pinned in its lockfile):
//! a database migrated by one tool must read, and be written, identically by the other.
//!
//! The oracle runs Prisma's own CLI and engine (compiled to WebAssembly) in `simple` mode, like
//! the native engine. Its error wording (no P3018 code) and its timestamps (ms precision) differ
//! from the native CLI, so neither is compared byte for byte (see `docs/src/internals/prisma-observed.md`).
//!
//! Every test uses its own database; every assertion message carries the transcript of both
//! tools' runs. If the oracle cannot be installed (no node/npm, no registry), the tests FAIL.

use std::fmt;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use migrator_e2e::{Migrations, PgDb, Run, migrator, prisma, prisma_script, text};
use serde_json::Value;

/// Prisma's PostgreSQL advisory lock key.
const LOCK_KEY: i64 = 72707369;

const ENUM_AND_USER: &str = r#"-- CreateEnum
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');

-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "role" "Role" NOT NULL DEFAULT 'USER',

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
"#;

const POST_WITH_FK: &str = r#"-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" TEXT NOT NULL,
    "authorId" INTEGER NOT NULL,

    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);

-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"#;

const INDEXES: &str = r#"-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

-- CreateIndex
CREATE INDEX "Post_authorId_idx" ON "Post"("authorId");
"#;

/// Creates a table, then fails: one implicit transaction in both tools, so nothing stays.
const FAILING: &str =
    "CREATE TABLE \"Half\" (\"id\" INTEGER);\nSELECT * FROM \"does_not_exist\";\n";
/// What the failing migration becomes once fixed.
const FIXED: &str = "CREATE TABLE \"Half\" (\"id\" INTEGER);\n";

const M1: &str = "20240101000000_enum_and_user";
const M2: &str = "20240102000000_post_with_fk";
const M3: &str = "20240103000000_indexes";
const BAD: &str = "20240104000000_fails";

/// The three-migration history: an enum type, a table with a foreign key, indexes.
fn three_migrations() -> Migrations {
    let m = Migrations::new().with_lock("postgresql");
    m.add(M1, ENUM_AND_USER)
        .add(M2, POST_WITH_FK)
        .add(M3, INDEXES);
    m
}

/// One good migration, then one that fails.
fn good_then_failing() -> Migrations {
    let m = Migrations::new().with_lock("postgresql");
    m.add(M1, ENUM_AND_USER).add(BAD, FAILING);
    m
}

// ---------------------------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------------------------

/// Installs the oracle once per process (prisma.sh does it on its first call, under a flock)
/// and panics with a clear message when that is impossible.
fn ensure_oracle() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let script = prisma_script();
        if !script.is_file() {
            return Err(format!(
                "the Prisma oracle script {} does not exist",
                script.display()
            ));
        }
        // `prisma --version` exits 1 here (no native query engine), but it installs the oracle
        // when needed and names the wasm schema engine it runs.
        let empty = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = prisma(
            &["--version"],
            empty.path(),
            &format!("{}/postgres", migrator_e2e::pg_server()),
        );
        if text(&out).contains("Schema Engine") {
            Ok(())
        } else {
            Err(format!(
                "`{} --version` did not run the Prisma CLI (exit {:?}):\n{}",
                script.display(),
                out.status.code(),
                text(&out)
            ))
        }
    });
    if let Err(why) = ready {
        panic!(
            "The Prisma CLI oracle cannot be installed, so Prisma compatibility cannot be proven. \
             It needs node, npm and the npm registry or npm's cache (see tests/oracle/install.sh).\n{why}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A transcript of both tools' runs, printed with every failed assertion
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    fn new() -> Transcript {
        ensure_oracle();
        Transcript::default()
    }

    fn ours(&mut self, args: &[&str], m: &Migrations, db: &PgDb) -> Run {
        let (run, took) = timed(|| migrator(args, m.path(), &db.url));
        self.record_ours(args, db, &run, took);
        run
    }

    fn theirs(&mut self, args: &[&str], m: &Migrations, db: &PgDb) -> Output {
        let (out, took) = timed(|| prisma(args, m.path(), &db.url));
        self.record_theirs(args, db, &out, took);
        out
    }

    fn record_ours(&mut self, args: &[&str], db: &PgDb, run: &Run, took: Duration) {
        self.0.push(format!(
            "=== migrator {} on {} (exit {}, {took:.2?}) ===\n{}{}",
            args.join(" "),
            db.name,
            run.code(),
            run.stdout(),
            run.stderr()
        ));
    }

    fn record_theirs(&mut self, args: &[&str], db: &PgDb, out: &Output, took: Duration) {
        self.0.push(format!(
            "=== prisma {} on {} (exit {:?}, {took:.2?}) ===\n{}",
            args.join(" "),
            db.name,
            out.status.code(),
            text(out)
        ));
    }

    fn rows(&mut self, label: &str, db: &PgDb) -> Vec<Value> {
        let rows = db.rows();
        self.0.push(format!(
            "=== _prisma_migrations of {} ({label}) ===\n{}",
            db.name,
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        ));
        rows
    }
}

/// `ORACLE_TRANSCRIPT=1` prints every test's transcript, passing or not.
impl Drop for Transcript {
    fn drop(&mut self) {
        if std::env::var_os("ORACLE_TRANSCRIPT").is_some() && !std::thread::panicking() {
            eprintln!("{self}");
        }
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n---------------- transcript ----------------")?;
        for entry in &self.0 {
            writeln!(f, "{entry}")?;
        }
        write!(f, "--------------------------------------------")
    }
}

/// Runs our deploy on `ours` and Prisma's on `theirs` at the same time (each is its own database).
fn deploy_both(t: &mut Transcript, m: &Migrations, ours: &PgDb, theirs: &PgDb) -> (Run, Output) {
    let ((run, took), (out, their_took)) = std::thread::scope(|s| {
        let prisma_side =
            s.spawn(|| timed(|| prisma(&["migrate", "deploy"], m.path(), &theirs.url)));
        let ours = timed(|| migrator(&["deploy"], m.path(), &ours.url));
        (ours, prisma_side.join().expect("the oracle thread"))
    });
    t.record_ours(&["deploy"], ours, &run, took);
    t.record_theirs(&["migrate", "deploy"], theirs, &out, their_took);
    (run, out)
}

// ---------------------------------------------------------------------------------------------
// Row helpers
// ---------------------------------------------------------------------------------------------

/// Lowercase hyphenated UUID v4: 36 chars, hyphens at 8/13/18/23, version nibble 4, RFC variant.
fn is_uuid_v4(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

fn rows_named<'a>(rows: &'a [Value], name: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| r["migration_name"] == name)
        .collect()
}

fn one_row<'a>(rows: &'a [Value], name: &str, t: &Transcript) -> &'a Value {
    let found = rows_named(rows, name);
    assert_eq!(found.len(), 1, "expected exactly one row for {name}{t}");
    found[0]
}

/// Per-row invariants every row either tool writes must hold.
fn assert_row_shape(row: &Value, t: &Transcript) {
    let id = row["id"].as_str().unwrap_or_default();
    assert!(
        is_uuid_v4(id),
        "id {id:?} is not a lowercase UUID v4 in {row}{t}"
    );
    let checksum = row["checksum"].as_str().unwrap_or_default();
    assert!(
        checksum.len() == 64
            && checksum
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        "checksum {checksum:?} is not 64 lowercase hex chars in {row}{t}"
    );
}

/// A successfully deployed row.
fn assert_deployed_row(row: &Value, t: &Transcript) {
    assert_row_shape(row, t);
    assert!(
        !row["finished_at"].is_null(),
        "finished_at must be set: {row}{t}"
    );
    assert!(
        row["rolled_back_at"].is_null(),
        "rolled_back_at must be NULL: {row}{t}"
    );
    assert!(
        row["logs"].is_null(),
        "logs must be NULL after a successful deploy: {row}{t}"
    );
    assert_eq!(
        row["applied_steps_count"], 1,
        "applied_steps_count: {row}{t}"
    );
}

/// A row left by a failed deploy.
fn assert_failed_row(row: &Value, t: &Transcript) {
    assert_row_shape(row, t);
    assert!(
        row["finished_at"].is_null(),
        "a failed row has no finished_at: {row}{t}"
    );
    assert!(
        row["rolled_back_at"].is_null(),
        "a failed row has no rolled_back_at: {row}{t}"
    );
    assert_eq!(
        row["applied_steps_count"], 0,
        "a failed row has applied_steps_count 0: {row}{t}"
    );
    let logs = row["logs"].as_str().unwrap_or_default();
    assert!(
        !logs.is_empty(),
        "a failed row has the error in logs: {row}{t}"
    );
    assert!(
        logs.contains("does_not_exist"),
        "the logs name the database error: {row}{t}"
    );
}

/// A row written by `resolve --applied`.
fn assert_baseline_row(db: &PgDb, row: &Value, t: &Transcript) {
    assert_row_shape(row, t);
    assert_eq!(
        row["logs"], "",
        "resolve --applied writes logs = '' (not NULL): {row}{t}"
    );
    assert_eq!(
        row["applied_steps_count"], 0,
        "resolve --applied leaves applied_steps_count 0: {row}{t}"
    );
    assert!(row["rolled_back_at"].is_null(), "{row}{t}");
    let same = db.sql(&format!(
        "SELECT finished_at IS NOT NULL AND finished_at = started_at FROM _prisma_migrations WHERE id = '{}'",
        row["id"].as_str().unwrap_or_default()
    ));
    assert_eq!(
        same, "t",
        "resolve --applied writes finished_at == started_at: {row}{t}"
    );
}

/// started_at ≤ finished_at wherever finished_at is set (checked by PostgreSQL, not by text).
fn assert_time_order(db: &PgDb, t: &Transcript) {
    let bad = db.sql("SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL AND started_at > finished_at");
    assert_eq!(
        bad, "0",
        "rows with started_at > finished_at in {}{t}",
        db.name
    );
}

/// `\d _prisma_migrations` as data: columns (name, type, length, nullability, default), constraints, indexes.
fn table_structure(db: &PgDb) -> String {
    let columns = db.sql(
        "SELECT ordinal_position, column_name, data_type, coalesce(character_maximum_length::text, '-'), \
         is_nullable, coalesce(column_default, '-'), coalesce(collation_name, '-') \
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '_prisma_migrations' \
         ORDER BY ordinal_position",
    );
    let constraints = db.sql(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = 'public._prisma_migrations'::regclass ORDER BY conname",
    );
    let indexes = db.sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = '_prisma_migrations' ORDER BY 1");
    format!("columns:\n{columns}\nconstraints:\n{constraints}\nindexes:\n{indexes}")
}

/// What Prisma's `\d _prisma_migrations` shows (docs/src/internals/prisma-observed.md §3), as `table_structure` renders it.
const PRISMA_TABLE_STRUCTURE: &str = "columns:
1|id|character varying|36|NO|-|-
2|checksum|character varying|64|NO|-|-
3|finished_at|timestamp with time zone|-|YES|-|-
4|migration_name|character varying|255|NO|-|-
5|logs|text|-|YES|-|-
6|rolled_back_at|timestamp with time zone|-|YES|-|-
7|started_at|timestamp with time zone|-|NO|now()|-
8|applied_steps_count|integer|-|NO|0|-
constraints:
_prisma_migrations_pkey|p|PRIMARY KEY (id)
indexes:
_prisma_migrations_pkey|CREATE UNIQUE INDEX _prisma_migrations_pkey ON public._prisma_migrations USING btree (id)";

fn sha256sum(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("f");
    std::fs::write(&file, bytes).expect("write");
    let out = Command::new("sha256sum")
        .arg(&file)
        .output()
        .expect("sha256sum runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn migration_file(m: &Migrations, name: &str) -> PathBuf {
    m.path().join(name).join("migration.sql")
}

fn states(run: &Run) -> Vec<(String, String)> {
    run.json["migrations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or("").to_string(),
                        m["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn all_applied(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| (n.to_string(), "applied".to_string()))
        .collect()
}

fn assert_prisma_up_to_date(out: &Output, t: &Transcript) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "prisma migrate status must exit 0{t}"
    );
    assert!(
        text(out).contains("Database schema is up to date!"),
        "prisma migrate status must say up to date{t}"
    );
}

fn assert_ours_up_to_date(run: &Run, t: &Transcript) {
    assert_eq!(run.code(), 0, "migrator status must exit 0{t}");
    assert_eq!(run.status(), "up-to-date", "{t}");
    assert_eq!(run.json["pending"], serde_json::json!([]), "{t}");
    assert_eq!(run.json["failed"], serde_json::json!([]), "{t}");
    assert_eq!(run.json["drift"]["edited"], serde_json::json!([]), "{t}");
    assert_eq!(
        run.json["drift"]["missingLocally"],
        serde_json::json!([]),
        "{t}"
    );
}

// ---------------------------------------------------------------------------------------------
// 1 and 2: each tool sees the other's deploy as complete
// ---------------------------------------------------------------------------------------------

#[test]
fn prisma_sees_our_deploy_as_up_to_date_and_applies_nothing() {
    let mut t = Transcript::new();
    let db = PgDb::fresh("oracle_ours_first");
    let m = three_migrations();

    let run = t.ours(&["deploy"], &m, &db);
    assert_eq!(run.code(), 0, "{t}");
    assert_eq!(run.names("applied"), [M1, M2, M3], "{t}");
    let before = t.rows("after our deploy", &db);
    assert_eq!(before.len(), 3, "{t}");

    let status = t.theirs(&["migrate", "status"], &m, &db);
    assert!(text(&status).contains("3 migrations found"), "{t}");
    assert_prisma_up_to_date(&status, &t);

    let deploy = t.theirs(&["migrate", "deploy"], &m, &db);
    assert_eq!(
        deploy.status.code(),
        Some(0),
        "prisma migrate deploy must succeed{t}"
    );
    assert!(
        text(&deploy).contains("No pending migrations to apply."),
        "{t}"
    );
    let after = t.rows("after prisma deploy", &db);
    assert_eq!(after, before, "Prisma's deploy must not touch our rows{t}");
}

#[test]
fn we_see_prismas_deploy_as_up_to_date_and_apply_nothing() {
    let mut t = Transcript::new();
    let db = PgDb::fresh("oracle_prisma_first");
    let m = three_migrations();

    let deploy = t.theirs(&["migrate", "deploy"], &m, &db);
    assert_eq!(deploy.status.code(), Some(0), "{t}");
    assert!(
        text(&deploy).contains("All migrations have been successfully applied."),
        "{t}"
    );
    let before = t.rows("after prisma deploy", &db);
    assert_eq!(before.len(), 3, "{t}");

    let status = t.ours(&["status"], &m, &db);
    assert_ours_up_to_date(&status, &t);
    assert_eq!(states(&status), all_applied(&[M1, M2, M3]), "{t}");

    let run = t.ours(&["deploy"], &m, &db);
    assert_eq!(run.code(), 0, "{t}");
    assert_eq!(run.status(), "up-to-date", "{t}");
    assert!(run.names("applied").is_empty(), "{t}");
    assert!(run.names("pending").is_empty(), "{t}");
    let after = t.rows("after our deploy", &db);
    assert_eq!(after, before, "our deploy must not touch Prisma's rows{t}");
}

// ---------------------------------------------------------------------------------------------
// 3: the rows and the table, column by column
// ---------------------------------------------------------------------------------------------

#[test]
fn both_tools_write_the_same_rows_and_the_same_table() {
    let mut t = Transcript::new();
    let ours = PgDb::fresh("oracle_rows_ours");
    let theirs = PgDb::fresh("oracle_rows_prisma");
    let m = three_migrations();

    let (run, out) = deploy_both(&mut t, &m, &ours, &theirs);
    assert_eq!(run.code(), 0, "{t}");
    assert_eq!(out.status.code(), Some(0), "{t}");
    let our_rows = t.rows("ours", &ours);
    let their_rows = t.rows("prisma", &theirs);
    assert_eq!(our_rows.len(), 3, "{t}");
    assert_eq!(their_rows.len(), 3, "{t}");

    // Same order (by started_at) and same names.
    let names = |rows: &[Value]| {
        rows.iter()
            .map(|r| r["migration_name"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&our_rows), [M1, M2, M3], "{t}");
    assert_eq!(names(&their_rows), names(&our_rows), "{t}");

    for name in [M1, M2, M3] {
        let a = one_row(&our_rows, name, &t);
        let b = one_row(&their_rows, name, &t);
        assert_deployed_row(a, &t);
        assert_deployed_row(b, &t);
        assert_eq!(a["checksum"], b["checksum"], "checksum of {name}{t}");
        let expected = sha256sum(&std::fs::read(migration_file(&m, name)).unwrap());
        assert_eq!(
            b["checksum"],
            Value::from(expected),
            "Prisma's checksum is sha256 of the file{t}"
        );
        for column in ["applied_steps_count", "logs", "rolled_back_at"] {
            assert_eq!(a[column], b[column], "{column} of {name}{t}");
        }
        assert_ne!(a["id"], b["id"], "ids are random{t}");
    }
    assert_time_order(&ours, &t);
    assert_time_order(&theirs, &t);

    // The table itself: our DDL against Prisma's.
    let our_table = table_structure(&ours);
    let their_table = table_structure(&theirs);
    assert_eq!(
        our_table, their_table,
        "_prisma_migrations differs (ours left, Prisma's right){t}"
    );
    assert_eq!(
        their_table, PRISMA_TABLE_STRUCTURE,
        "Prisma's table is not what docs/src/internals/prisma-observed.md describes{t}"
    );

    // And the migrated schema as a whole (tables, enum, FK, indexes, the bookkeeping table).
    assert_eq!(
        ours.schema_dump(),
        theirs.schema_dump(),
        "schemas differ after the same migrations{t}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4: failures recorded by one tool block the other
// ---------------------------------------------------------------------------------------------

#[test]
fn a_failure_we_record_blocks_prisma_with_p3009() {
    let mut t = Transcript::new();
    let db = PgDb::fresh("oracle_fail_ours");
    let m = good_then_failing();

    let run = t.ours(&["deploy"], &m, &db);
    assert_ne!(run.code(), 0, "{t}");
    assert_eq!(run.status(), "failed", "{t}");
    assert_eq!(run.error_code(), "P3018", "{t}");
    assert_eq!(run.names("applied"), [M1], "{t}");
    assert_eq!(run.names("failed"), [BAD], "{t}");
    let before = t.rows("after our failed deploy", &db);
    assert_deployed_row(one_row(&before, M1, &t), &t);
    assert_failed_row(one_row(&before, BAD, &t), &t);
    assert!(
        !db.tables().contains(&"Half".to_string()),
        "the failed migration left nothing behind{t}"
    );

    let deploy = t.theirs(&["migrate", "deploy"], &m, &db);
    assert_ne!(
        deploy.status.code(),
        Some(0),
        "Prisma must refuse to deploy over our failed row{t}"
    );
    let said = text(&deploy);
    assert!(
        said.contains("P3009") || said.contains("failed migrations"),
        "Prisma must answer P3009{t}"
    );
    assert!(
        said.contains(&format!("The `{BAD}` migration started at")),
        "Prisma names our failed migration{t}"
    );

    let status = t.theirs(&["migrate", "status"], &m, &db);
    assert_eq!(status.status.code(), Some(1), "{t}");
    assert!(
        text(&status).contains("have failed") && text(&status).contains(BAD),
        "prisma status lists our failure{t}"
    );

    assert_eq!(
        t.rows("after prisma's refusal", &db),
        before,
        "Prisma changed nothing{t}"
    );
}

#[test]
fn a_failure_prisma_records_blocks_us_with_p3009_and_we_show_its_logs() {
    let mut t = Transcript::new();
    let ours = PgDb::fresh("oracle_fail_cmp_ours");
    let theirs = PgDb::fresh("oracle_fail_prisma");
    let m = good_then_failing();

    let (run, out) = deploy_both(&mut t, &m, &ours, &theirs);
    assert_ne!(run.code(), 0, "{t}");
    assert_ne!(
        out.status.code(),
        Some(0),
        "Prisma's deploy of a failing migration must fail{t}"
    );
    let our_rows = t.rows("ours", &ours);
    let their_rows = t.rows("prisma", &theirs);

    // The rows both tools leave behind, side by side.
    for (rows, who) in [(&our_rows, "ours"), (&their_rows, "prisma")] {
        assert_eq!(
            rows.len(),
            2,
            "{who}: one applied row and one failed row{t}"
        );
        assert_deployed_row(one_row(rows, M1, &t), &t);
        assert_failed_row(one_row(rows, BAD, &t), &t);
    }
    for column in [
        "checksum",
        "applied_steps_count",
        "finished_at",
        "rolled_back_at",
    ] {
        assert_eq!(
            one_row(&our_rows, BAD, &t)[column],
            one_row(&their_rows, BAD, &t)[column],
            "failed row: {column}{t}"
        );
    }
    assert_eq!(
        one_row(&our_rows, M1, &t)["checksum"],
        one_row(&their_rows, M1, &t)["checksum"],
        "{t}"
    );
    // Both ran the failing script as one implicit transaction: its table is gone in both.
    assert_eq!(ours.tables(), theirs.tables(), "{t}");
    assert!(!theirs.tables().contains(&"Half".to_string()), "{t}");

    // Our deploy over Prisma's failure.
    let deploy = t.ours(&["deploy"], &m, &theirs);
    assert_ne!(deploy.code(), 0, "{t}");
    assert_eq!(deploy.error_code(), "P3009", "{t}");
    assert_eq!(deploy.status(), "blocked", "{t}");
    assert!(deploy.names("applied").is_empty(), "{t}");
    assert_eq!(deploy.names("failed"), [BAD], "{t}");
    let logs = deploy.json["failed"][0]["logs"]
        .as_str()
        .unwrap_or_default();
    assert!(!logs.is_empty(), "we show the failed row's logs{t}");
    assert_eq!(
        logs,
        one_row(&their_rows, BAD, &t)["logs"]
            .as_str()
            .unwrap_or_default(),
        "we show Prisma's logs verbatim{t}"
    );
    assert!(
        deploy.json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("The `{BAD}` migration started at")),
        "our P3009 message has Prisma's per-migration line{t}"
    );

    let status = t.ours(&["status"], &m, &theirs);
    assert_ne!(status.code(), 0, "{t}");
    assert_eq!(status.error_code(), "P3009", "{t}");
    assert_eq!(
        states(&status),
        [
            (M1.to_string(), "applied".to_string()),
            (BAD.to_string(), "failed".to_string())
        ],
        "{t}"
    );

    assert_eq!(
        t.rows("after our refusal", &theirs),
        their_rows,
        "we changed nothing{t}"
    );

    // Fixed by hand, then recorded as applied by us: Prisma sees a clean history.
    theirs.sql(FIXED);
    let resolve = t.ours(&["resolve", "--applied", BAD], &m, &theirs);
    assert_eq!(resolve.code(), 0, "{t}");
    assert_eq!(resolve.status(), "applied", "{t}");
    let rows = t.rows("after our resolve --applied", &theirs);
    let bad = rows_named(&rows, BAD);
    assert_eq!(bad.len(), 2, "the failed row plus a new applied row{t}");
    assert!(
        !bad[0]["rolled_back_at"].is_null() && bad[0]["finished_at"].is_null(),
        "resolve --applied first rolls Prisma's failed row back{t}"
    );
    assert_eq!(bad[0]["logs"], one_row(&their_rows, BAD, &t)["logs"], "{t}");
    assert_baseline_row(&theirs, bad[1], &t);
    let status = t.theirs(&["migrate", "status"], &m, &theirs);
    assert_prisma_up_to_date(&status, &t);
}

// ---------------------------------------------------------------------------------------------
// 5: resolve, both ways
// ---------------------------------------------------------------------------------------------

/// Two rows for `BAD`: the old failed one rolled back, the new one finished.
fn assert_rolled_back_and_reapplied(rows: &[Value], m: &Migrations, t: &Transcript) {
    let bad = rows_named(rows, BAD);
    assert_eq!(
        bad.len(),
        2,
        "two rows for {BAD}: the rolled-back one and the re-applied one{t}"
    );
    let (old, new) = (bad[0], bad[1]);
    assert!(
        !old["rolled_back_at"].is_null(),
        "the old row is rolled back: {old}{t}"
    );
    assert!(old["finished_at"].is_null(), "{t}");
    assert_eq!(old["applied_steps_count"], 0, "{t}");
    assert_eq!(
        old["checksum"],
        Value::from(sha256sum(FAILING.as_bytes())),
        "the old row keeps the failing file's checksum{t}"
    );
    assert_deployed_row(new, t);
    assert_eq!(
        new["checksum"],
        Value::from(sha256sum(&std::fs::read(migration_file(m, BAD)).unwrap())),
        "{t}"
    );
    assert_ne!(old["id"], new["id"], "{t}");
}

#[test]
fn prisma_resolves_our_failure_and_we_reapply_it() {
    let mut t = Transcript::new();
    let db = PgDb::fresh("oracle_resolve_by_prisma");
    let m = good_then_failing();

    let run = t.ours(&["deploy"], &m, &db);
    assert_eq!(run.error_code(), "P3018", "{t}");

    let resolve = t.theirs(&["migrate", "resolve", "--rolled-back", BAD], &m, &db);
    assert_eq!(resolve.status.code(), Some(0), "{t}");
    assert!(
        text(&resolve).contains(&format!("Migration {BAD} marked as rolled back.")),
        "{t}"
    );
    let rows = t.rows("after prisma resolve --rolled-back", &db);
    let row = one_row(&rows, BAD, &t);
    assert!(
        !row["rolled_back_at"].is_null() && row["finished_at"].is_null(),
        "{t}"
    );

    m.add(BAD, FIXED);
    let plan = t.ours(&["status"], &m, &db);
    assert_eq!(
        plan.names("pending"),
        [BAD],
        "a rolled-back migration is pending again{t}"
    );

    let deploy = t.ours(&["deploy"], &m, &db);
    assert_eq!(deploy.code(), 0, "{t}");
    assert_eq!(deploy.status(), "applied", "{t}");
    assert_eq!(deploy.names("applied"), [BAD], "{t}");
    let rows = t.rows("after our re-deploy", &db);
    assert_eq!(rows.len(), 3, "{t}");
    assert_rolled_back_and_reapplied(&rows, &m, &t);
    assert!(db.tables().contains(&"Half".to_string()), "{t}");

    // Both tools agree the history is complete now.
    let status = t.theirs(&["migrate", "status"], &m, &db);
    assert_prisma_up_to_date(&status, &t);
    let ours = t.ours(&["status"], &m, &db);
    assert_ours_up_to_date(&ours, &t);
}

#[test]
fn we_resolve_prismas_failure_and_prisma_reapplies_it() {
    let mut t = Transcript::new();
    let db = PgDb::fresh("oracle_resolve_by_us");
    let m = good_then_failing();

    let deploy = t.theirs(&["migrate", "deploy"], &m, &db);
    assert_ne!(deploy.status.code(), Some(0), "{t}");

    let resolve = t.ours(&["resolve", "--rolled-back", BAD], &m, &db);
    assert_eq!(resolve.code(), 0, "{t}");
    assert_eq!(resolve.status(), "applied", "{t}");
    assert_eq!(
        resolve.json["resolved"],
        serde_json::json!({"name": BAD, "as": "rolled-back"}),
        "{t}"
    );
    let rows = t.rows("after our resolve --rolled-back", &db);
    let row = one_row(&rows, BAD, &t);
    assert!(
        !row["rolled_back_at"].is_null() && row["finished_at"].is_null(),
        "{t}"
    );
    assert_eq!(row["applied_steps_count"], 0, "{t}");

    m.add(BAD, FIXED);
    let deploy = t.theirs(&["migrate", "deploy"], &m, &db);
    assert_eq!(
        deploy.status.code(),
        Some(0),
        "Prisma must re-apply the migration we marked rolled back{t}"
    );
    assert!(text(&deploy).contains(BAD), "{t}");
    let rows = t.rows("after prisma's re-deploy", &db);
    assert_eq!(rows.len(), 3, "{t}");
    assert_rolled_back_and_reapplied(&rows, &m, &t);

    let ours = t.ours(&["status"], &m, &db);
    assert_ours_up_to_date(&ours, &t);
    assert_eq!(states(&ours), all_applied(&[M1, BAD]), "{t}");
}

#[test]
fn a_baseline_by_either_tool_is_applied_for_the_other() {
    let mut t = Transcript::new();
    let by_prisma = PgDb::fresh("oracle_baseline_prisma");
    let by_us = PgDb::fresh("oracle_baseline_ours");
    let m = Migrations::new().with_lock("postgresql");
    m.add(M1, ENUM_AND_USER);
    // Production databases that predate migrations: the schema exists, the table does not.
    for db in [&by_prisma, &by_us] {
        db.sql(ENUM_AND_USER);
    }

    let ((ours, took), (theirs, their_took)) = std::thread::scope(|s| {
        let prisma_side = s.spawn(|| {
            timed(|| {
                prisma(
                    &["migrate", "resolve", "--applied", M1],
                    m.path(),
                    &by_prisma.url,
                )
            })
        });
        let ours = timed(|| migrator(&["resolve", "--applied", M1], m.path(), &by_us.url));
        (ours, prisma_side.join().expect("the oracle thread"))
    });
    t.record_ours(&["resolve", "--applied", M1], &by_us, &ours, took);
    t.record_theirs(
        &["migrate", "resolve", "--applied", M1],
        &by_prisma,
        &theirs,
        their_took,
    );
    assert_eq!(theirs.status.code(), Some(0), "{t}");
    assert!(
        text(&theirs).contains(&format!("Migration {M1} marked as applied.")),
        "{t}"
    );
    assert_eq!(ours.code(), 0, "{t}");
    assert_eq!(ours.status(), "applied", "{t}");

    let their_rows = t.rows("baselined by prisma", &by_prisma);
    let our_rows = t.rows("baselined by us", &by_us);
    assert_eq!(their_rows.len(), 1, "{t}");
    assert_eq!(our_rows.len(), 1, "{t}");
    assert_baseline_row(&by_prisma, &their_rows[0], &t);
    assert_baseline_row(&by_us, &our_rows[0], &t);
    for column in [
        "migration_name",
        "checksum",
        "logs",
        "applied_steps_count",
        "rolled_back_at",
    ] {
        assert_eq!(
            our_rows[0][column], their_rows[0][column],
            "baseline row: {column}{t}"
        );
    }
    assert_eq!(
        table_structure(&by_us),
        table_structure(&by_prisma),
        "the table created by resolve --applied{t}"
    );

    // Each tool sees the other's baseline as applied.
    let status = t.ours(&["status"], &m, &by_prisma);
    assert_ours_up_to_date(&status, &t);
    assert_eq!(states(&status), all_applied(&[M1]), "{t}");
    let status = t.theirs(&["migrate", "status"], &m, &by_us);
    assert_prisma_up_to_date(&status, &t);

    // And our deploy applies nothing over Prisma's baseline.
    let deploy = t.ours(&["deploy"], &m, &by_prisma);
    assert_eq!(deploy.code(), 0, "{t}");
    assert_eq!(deploy.status(), "up-to-date", "{t}");
    assert_eq!(t.rows("after our deploy", &by_prisma), their_rows, "{t}");
}

// ---------------------------------------------------------------------------------------------
// 6: P3005
// ---------------------------------------------------------------------------------------------

#[test]
fn a_non_empty_schema_without_the_table_is_refused_by_both_with_p3005() {
    let mut t = Transcript::new();
    let db = PgDb::fresh("oracle_p3005");
    let m = three_migrations();
    db.sql("CREATE TABLE legacy (id INTEGER PRIMARY KEY, name TEXT)");
    let before = db.schema_dump();

    let run = t.ours(&["deploy"], &m, &db);
    assert_ne!(run.code(), 0, "{t}");
    assert_eq!(run.error_code(), "P3005", "{t}");
    assert_eq!(run.status(), "blocked", "{t}");
    assert!(run.names("applied").is_empty(), "{t}");
    assert_eq!(
        db.schema_dump(),
        before,
        "our refused deploy changed the database{t}"
    );
    assert_eq!(db.tables(), ["legacy"], "{t}");

    let deploy = t.theirs(&["migrate", "deploy"], &m, &db);
    assert_ne!(deploy.status.code(), Some(0), "{t}");
    let said = text(&deploy);
    assert!(
        said.contains("P3005") && said.contains("The database schema is not empty."),
        "Prisma answers P3005{t}"
    );
    assert_eq!(
        db.schema_dump(),
        before,
        "Prisma's refused deploy changed the database{t}"
    );

    // Neither status calls this database clean, and neither writes to it.
    let ours = t.ours(&["status"], &m, &db);
    assert_ne!(ours.code(), 0, "{t}");
    let theirs = t.theirs(&["migrate", "status"], &m, &db);
    assert_ne!(theirs.status.code(), Some(0), "{t}");
    assert!(
        !text(&theirs).contains("Database schema is up to date!"),
        "{t}"
    );
    assert_eq!(
        db.schema_dump(),
        before,
        "a status wrote to the database{t}"
    );
}

#[test]
fn views_and_enums_alone_do_not_make_the_schema_non_empty_for_either_tool() {
    let mut t = Transcript::new();
    let ours = PgDb::fresh("oracle_view_ours");
    let theirs = PgDb::fresh("oracle_view_prisma");
    let m = Migrations::new().with_lock("postgresql");
    m.add(M2, "CREATE TABLE \"Other\" (\"id\" INTEGER);\n");
    for db in [&ours, &theirs] {
        db.sql(
            "CREATE TYPE mood AS ENUM ('ok'); CREATE VIEW v AS SELECT 1 AS one; CREATE SEQUENCE s;",
        );
    }
    let (run, out) = deploy_both(&mut t, &m, &ours, &theirs);
    assert_eq!(
        out.status.code(),
        Some(0),
        "Prisma deploys over views, enums and sequences{t}"
    );
    assert_eq!(run.code(), 0, "so must we{t}");
    assert_eq!(run.names("applied"), [M2], "{t}");
    assert_eq!(ours.tables(), theirs.tables(), "{t}");
}

// ---------------------------------------------------------------------------------------------
// 7: checksums of CRLF and multi-byte files
// ---------------------------------------------------------------------------------------------

#[test]
fn crlf_and_utf8_files_get_the_same_checksums_and_prismas_are_accepted() {
    let mut t = Transcript::new();
    let ours = PgDb::fresh("oracle_crlf_ours");
    let theirs = PgDb::fresh("oracle_crlf_prisma");
    const CRLF: &str = "20240101000000_crlf";
    const UTF8: &str = "20240102000000_utf8";
    let crlf: &[u8] =
        b"-- CreateTable\r\nCREATE TABLE \"crlf\" (\r\n    \"id\" INTEGER NOT NULL\r\n);\r\n";
    let utf8 = "-- Caf\u{e9} \u{2615} \u{1F680} \u{dc}n\u{ef}c\u{f6}d\u{e9}\nCREATE TABLE \"utf8\" (\"name\" TEXT NOT NULL DEFAULT 'h\u{e9}llo \u{2615}');\n";
    assert!(
        utf8.len() > utf8.chars().count(),
        "the file really has multi-byte characters"
    );
    let m = Migrations::new().with_lock("postgresql");
    m.add_bytes(CRLF, crlf).add(UTF8, utf8);

    let (run, out) = deploy_both(&mut t, &m, &ours, &theirs);
    assert_eq!(run.code(), 0, "{t}");
    assert_eq!(out.status.code(), Some(0), "{t}");
    let our_rows = t.rows("ours", &ours);
    let their_rows = t.rows("prisma", &theirs);
    for (name, bytes) in [(CRLF, crlf), (UTF8, utf8.as_bytes())] {
        let a = one_row(&our_rows, name, &t);
        let b = one_row(&their_rows, name, &t);
        assert_eq!(a["checksum"], b["checksum"], "checksum of {name}{t}");
        assert_eq!(
            b["checksum"],
            Value::from(sha256sum(bytes)),
            "Prisma hashes the raw bytes of {name}{t}"
        );
    }
    let lf = String::from_utf8(crlf.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    assert_ne!(
        one_row(&their_rows, CRLF, &t)["checksum"],
        Value::from(sha256sum(lf.as_bytes())),
        "no line-ending normalisation before hashing{t}"
    );
    assert_eq!(
        ours.sql("SELECT column_default FROM information_schema.columns WHERE table_name = 'utf8'"),
        theirs
            .sql("SELECT column_default FROM information_schema.columns WHERE table_name = 'utf8'"),
        "the multi-byte default reached the database alike{t}"
    );

    // Our status accepts Prisma's checksums for the same files…
    let status = t.ours(&["status"], &m, &theirs);
    assert_ours_up_to_date(&status, &t);
    assert_eq!(states(&status), all_applied(&[CRLF, UTF8]), "{t}");

    // …and, like Prisma, the same files with their line endings flipped (a Windows checkout).
    m.add(CRLF, &lf);
    m.add(UTF8, &utf8.replace('\n', "\r\n"));
    let status = t.ours(&["status"], &m, &theirs);
    assert_ours_up_to_date(&status, &t);

    // A real edit is still seen (so the check above is not vacuous).
    m.add(UTF8, &format!("{utf8}-- edited\n"));
    let status = t.ours(&["status"], &m, &theirs);
    assert_eq!(
        status.json["drift"]["edited"],
        serde_json::json!([UTF8]),
        "{t}"
    );
}

// ---------------------------------------------------------------------------------------------
// 8: the advisory lock is Prisma's
// ---------------------------------------------------------------------------------------------

/// A `psql` session holding Prisma's advisory lock; killed and reaped on drop.
struct LockHolder {
    child: Child,
}

impl LockHolder {
    fn hold(db: &PgDb) -> LockHolder {
        let child = db.advisory_lock_session(LOCK_KEY, Duration::from_secs(8), "psql");
        let holder = LockHolder { child };
        let deadline = Instant::now() + Duration::from_secs(5);
        while holder.holders(db) != "1" {
            assert!(
                Instant::now() < deadline,
                "the psql session never got the advisory lock"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        holder
    }

    fn holders(&self, db: &PgDb) -> String {
        db.sql(&format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = {LOCK_KEY} AND l.objsubid = 1 \
             AND l.granted AND d.datname = current_database()"
        ))
    }

    /// Ends the holder's session (so the test does not wait out the pg_sleep).
    fn release(&mut self, db: &PgDb) {
        db.sql(&format!(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND l.objid = {LOCK_KEY} AND l.granted AND d.datname = current_database()"
        ));
        let _ = self.child.wait();
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_session_holding_prismas_advisory_lock_blocks_our_deploy_with_p1002() {
    let mut t = Transcript::new();
    let db = PgDb::fresh("oracle_lock");
    let m = three_migrations();

    let mut holder = LockHolder::hold(&db);
    let started = Instant::now();
    let run = t.ours(&["deploy", "--lock-timeout", "1s"], &m, &db);
    let waited = started.elapsed();
    assert_ne!(run.code(), 0, "{t}");
    assert_eq!(run.error_code(), "P1002", "{t}");
    assert_eq!(run.status(), "blocked", "{t}");
    assert!(run.names("applied").is_empty(), "{t}");
    assert!(
        run.json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("pg_advisory_lock({LOCK_KEY})")),
        "the message names Prisma's lock statement{t}"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "we gave up before the 1 s timeout ({waited:?}){t}"
    );
    assert!(
        waited < Duration::from_secs(6),
        "we did not honour --lock-timeout 1s ({waited:?}){t}"
    );
    assert!(
        db.tables().is_empty(),
        "nothing was written under the held lock, not even _prisma_migrations{t}"
    );
    assert_eq!(holder.holders(&db), "1", "the holder still has the lock{t}");

    // The lock was the only obstacle.
    holder.release(&db);
    let run = t.ours(&["deploy", "--lock-timeout", "1s"], &m, &db);
    assert_eq!(run.code(), 0, "{t}");
    assert_eq!(run.names("applied"), [M1, M2, M3], "{t}");
    assert_eq!(
        holder.holders(&db),
        "0",
        "our lock is gone with our session{t}"
    );
}
