//! Preflight on PostgreSQL with seeded data: every rule fires on its case, and every
//! `willFail` prediction is checked against the truth by deploying the same migration with
//! the `migrator` binary to a copy of the same database (predicted failures fail, predicted
//! successes succeed), including the counter-cases: clean data, an empty table, a table
//! created earlier in the plan. Realistic histories planned against an empty database give
//! no `error`. `migrator lint` is run as CI runs it.

use std::path::Path;

use migrator_e2e::{Migrations, PgDb, migrator, migrator_bin, pg_server, psql, workspace};
use migrator_engine::dialect::postgres::PgProbe;
use migrator_engine::preflight::{
    self, BlockOn, Finding, LiveLimits, Options, Rule, Script, Severity, Thresholds,
};
use migrator_engine::sql::Flavor;
use serde_json::Value;
use sqlx::Connection;

const BASE: &str = r#"-- CreateEnum
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN', 'GUEST');

-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" "Role" NOT NULL DEFAULT 'USER',
    "age" INTEGER,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" TEXT NOT NULL,
    "authorId" INTEGER,

    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Tag" (
    "id" SERIAL NOT NULL,
    CONSTRAINT "Tag_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "_PostToTag" (
    "A" INTEGER NOT NULL,
    "B" INTEGER NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "_PostToTag_AB_unique" ON "_PostToTag"("A", "B");
"#;

/// Rows every rule is happy with.
const CLEAN: &str = r#"INSERT INTO "User" ("email", "name", "role", "age") VALUES ('a@x', 'A', 'USER', 30), ('b@x', 'B', 'ADMIN', 40);
INSERT INTO "Post" ("title", "authorId") VALUES ('p1', 1), ('p2', NULL);
INSERT INTO "Tag" DEFAULT VALUES;
INSERT INTO "_PostToTag" VALUES (1, 1);"#;

/// Rows that break: a duplicate email, a NULL name, a GUEST, a negative age, an orphan post.
const DIRTY: &str = r#"INSERT INTO "User" ("email", "name", "role", "age") VALUES ('a@x', 'A', 'USER', 30), ('a@x', NULL, 'GUEST', -1);
INSERT INTO "Post" ("title", "authorId") VALUES ('p1', 1), ('p2', 99);"#;

const EMPTY: &str = "";

const BASE_NAME: &str = "20240101000000_base";

/// A database with the base history applied (by `migrator deploy`) and seeded, and a
/// migrations folder to which the test adds pending migrations.
struct Case {
    db: PgDb,
    m: Migrations,
    scripts: Vec<(String, String, bool)>,
    thresholds: Thresholds,
}

impl Case {
    fn new(tag: &str, seed: &str) -> Case {
        let db = PgDb::fresh(&format!("pf_{tag}"));
        let m = Migrations::new().with_lock("postgresql");
        m.add(BASE_NAME, BASE);
        let run = migrator(&["deploy"], m.path(), &db.url);
        assert!(run.ok(), "base deploy: {}", run.stderr());
        if !seed.is_empty() {
            db.sql(seed);
        }
        db.sql("ANALYZE");
        Case {
            db,
            m,
            scripts: vec![(BASE_NAME.into(), BASE.into(), false)],
            thresholds: Thresholds::default(),
        }
    }

    fn pending(&mut self, name: &str, sql: &str) -> &mut Case {
        self.m.add(name, sql);
        self.scripts.push((name.into(), sql.into(), true));
        self
    }

    /// The findings of `check_live` against the database as it is.
    fn predict(&self) -> Vec<Finding> {
        let scripts: Vec<Script<'_>> = self
            .scripts
            .iter()
            .map(|(migration, sql, pending)| Script {
                migration,
                sql,
                pending: *pending,
            })
            .collect();
        let options = Options {
            thresholds: self.thresholds,
            ..Options::new(Flavor::Postgres)
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut conn = sqlx::postgres::PgConnection::connect(&self.db.url)
                .await
                .expect("connect");
            let limits = LiveLimits::default();
            let mut probe = PgProbe::new(&mut conn, limits);
            let findings = preflight::check_live(&scripts, &options, &mut probe, &limits).await;
            conn.close().await.expect("close");
            findings
        })
    }

    /// Deploys the pending migrations to a copy of the database; true when it succeeded.
    fn deploy_to_copy(&self) -> bool {
        let name = format!("{}_copy", self.db.name);
        let admin = format!("{}/postgres", pg_server());
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        );
        psql(
            &admin,
            &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{}\"", self.db.name),
        );
        let copy = PgDb::adopt(name);
        let run = migrator(&["deploy"], self.m.path(), &copy.url);
        run.ok()
    }

    /// Predicts, deploys to a copy, and checks every prediction against what happened: the
    /// deploy fails exactly when some finding said it will. Returns the findings.
    fn checked(&self) -> Vec<Finding> {
        let findings = self.predict();
        let predicted_failure = findings.iter().any(|f| f.will_fail);
        for f in &findings {
            if f.will_fail {
                assert_eq!(f.severity, Severity::Error, "{f:#?}");
            }
        }
        let succeeded = self.deploy_to_copy();
        assert_eq!(
            succeeded, !predicted_failure,
            "prediction (fails: {predicted_failure}) against the truth (deploy succeeded: {succeeded}):\n{findings:#?}"
        );
        findings
    }
}

fn find(findings: &[Finding], rule: Rule) -> &Finding {
    findings
        .iter()
        .find(|f| f.rule == rule)
        .unwrap_or_else(|| panic!("no {rule} finding in {findings:#?}"))
}

const P1: &str = "20240201000000_one";
const P2: &str = "20240202000000_two";
const P3: &str = "20240203000000_three";

/// One pending migration over `seed`: the finding for `rule`, checked against the truth.
fn single(tag: &str, seed: &str, sql: &str, rule: Rule, will_fail: bool) -> Finding {
    let mut case = Case::new(tag, seed);
    case.pending(P1, sql);
    let findings = case.checked();
    let finding = find(&findings, rule).clone();
    assert_eq!(finding.will_fail, will_fail, "{finding:#?}");
    assert_eq!(finding.migration, P1);
    finding
}

#[test]
fn not_null_without_default_fails_on_rows_and_not_on_an_empty_or_new_table() {
    let sql = "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"score\" INTEGER NOT NULL;\n";
    let f = single("nn_rows", CLEAN, sql, Rule::NotNullWithoutDefault, true);
    assert_eq!(f.line, 2);
    assert_eq!(f.table.as_deref(), Some("User"));
    assert_eq!(f.evidence.has_rows, Some(true));
    let f = single("nn_empty", EMPTY, sql, Rule::NotNullWithoutDefault, false);
    assert_eq!(f.severity, Severity::Info);
    assert_eq!(f.evidence.has_rows, Some(false));
    // A table created earlier in the plan has no rows, whatever the database holds.
    let mut case = Case::new("nn_plan", CLEAN);
    case.pending(P1, "CREATE TABLE \"Fresh\" (\"id\" SERIAL NOT NULL);")
        .pending(P2, "ALTER TABLE \"Fresh\" ADD COLUMN \"n\" TEXT NOT NULL;");
    // Nothing to say about a table that cannot have rows from before (what Prisma
    // generates for a new model stays quiet).
    let findings = case.checked();
    assert!(
        findings
            .iter()
            .all(|f| f.rule != Rule::NotNullWithoutDefault),
        "{findings:#?}"
    );
}

#[test]
fn set_not_null_fails_on_nulls_and_on_a_column_the_plan_added_without_default() {
    let sql = "ALTER TABLE \"User\" ALTER COLUMN \"name\" SET NOT NULL;";
    let f = single("snn_dirty", DIRTY, sql, Rule::SetNotNull, true);
    assert_eq!(f.evidence.count, Some(1));
    assert_eq!(f.evidence.example_key.as_deref(), Some("id=2"));
    single("snn_clean", CLEAN, sql, Rule::SetNotNull, false);
    // Added by the plan without a default: every existing row holds NULL.
    let mut case = Case::new("snn_added", CLEAN);
    case.pending(P1, "ALTER TABLE \"User\" ADD COLUMN \"nick\" TEXT;")
        .pending(
            P2,
            "ALTER TABLE \"User\" ALTER COLUMN \"nick\" SET NOT NULL;",
        );
    assert!(find(&case.checked(), Rule::SetNotNull).will_fail);
    // Added with a default: no NULLs from before.
    let mut case = Case::new("snn_default", CLEAN);
    case.pending(
        P1,
        "ALTER TABLE \"User\" ADD COLUMN \"nick\" TEXT DEFAULT 'x';",
    )
    .pending(
        P2,
        "ALTER TABLE \"User\" ALTER COLUMN \"nick\" SET NOT NULL;",
    );
    assert!(!find(&case.checked(), Rule::SetNotNull).will_fail);
    // Backfilled by the plan in between: the catalog-only ADD COLUMN and the UPDATE are
    // rehearsed (and rolled back) before the NULLs are counted.
    let mut case = Case::new("snn_backfill", CLEAN);
    case.pending(P1, "ALTER TABLE \"User\" ADD COLUMN \"nick\" TEXT;")
        .pending(P2, "UPDATE \"User\" SET \"nick\" = \"email\";")
        .pending(
            P3,
            "ALTER TABLE \"User\" ALTER COLUMN \"nick\" SET NOT NULL;",
        );
    let findings = case.checked();
    let f = find(&findings, Rule::SetNotNull);
    assert!(!f.will_fail && f.evidence.unknown.is_none(), "{f:#?}");
    assert_eq!(f.evidence.rehearsed, 2, "{f:#?}");
    assert_eq!(f.severity, Severity::Info);
    // The rehearsal left nothing behind.
    let left = case.db.sql(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'User' AND column_name = 'nick'",
    );
    assert_eq!(left.trim(), "0", "{left}");
}

#[test]
fn unique_index_and_constraint_fail_on_duplicates_only() {
    let index = "CREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");";
    let f = single("uq_dirty", DIRTY, index, Rule::UniqueIndex, true);
    assert_eq!(f.evidence.example_key.as_deref(), Some("email=a@x"));
    assert_eq!(f.evidence.count, Some(1));
    single("uq_clean", CLEAN, index, Rule::UniqueIndex, false);
    let constraint = "ALTER TABLE \"User\" ADD CONSTRAINT \"User_email_uq\" UNIQUE (\"email\");";
    single("uqc_dirty", DIRTY, constraint, Rule::UniqueIndex, true);
    single("uqc_clean", CLEAN, constraint, Rule::UniqueIndex, false);
    // A partial index only counts the rows it covers.
    let partial = "CREATE UNIQUE INDEX \"u\" ON \"User\"(\"email\") WHERE \"role\" = 'GUEST';";
    single("uq_partial", DIRTY, partial, Rule::UniqueIndex, false);
}

#[test]
fn foreign_keys_fail_on_orphans_including_into_a_table_the_plan_creates() {
    let fk = "ALTER TABLE \"Post\" ADD CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") REFERENCES \"User\"(\"id\") ON DELETE RESTRICT ON UPDATE CASCADE;";
    let f = single("fk_dirty", DIRTY, fk, Rule::ForeignKeyValidation, true);
    assert_eq!(f.evidence.example_key.as_deref(), Some("authorId=99"));
    single("fk_clean", CLEAN, fk, Rule::ForeignKeyValidation, false);
    let f = single("fk_empty", EMPTY, fk, Rule::ForeignKeyValidation, false);
    assert_eq!(f.severity, Severity::Info);
    // The parent is created by the plan (empty): every non-NULL key is an orphan.
    let mut case = Case::new("fk_new_parent", CLEAN);
    case.pending(
        P1,
        "CREATE TABLE \"Author\" (\"id\" SERIAL NOT NULL, CONSTRAINT \"Author_pkey\" PRIMARY KEY (\"id\"));",
    )
    .pending(
        P2,
        "ALTER TABLE \"Post\" ADD CONSTRAINT \"Post_author_fkey\" FOREIGN KEY (\"authorId\") REFERENCES \"Author\"(\"id\");",
    );
    assert!(find(&case.checked(), Rule::ForeignKeyValidation).will_fail);
    // NOT VALID skips the check, so no finding at all.
    let mut case = Case::new("fk_not_valid", DIRTY);
    case.pending(P1, &fk.replace(';', " NOT VALID;"));
    assert!(
        case.checked()
            .iter()
            .all(|f| f.rule != Rule::ForeignKeyValidation)
    );
}

#[test]
fn check_constraints_fail_on_violating_rows() {
    let sql = "ALTER TABLE \"User\" ADD CONSTRAINT \"User_age_check\" CHECK (\"age\" > 0);";
    let f = single(
        "ck_dirty",
        DIRTY,
        sql,
        Rule::CheckConstraintValidation,
        true,
    );
    assert_eq!(f.evidence.example_key.as_deref(), Some("id=2"));
    single(
        "ck_clean",
        CLEAN,
        sql,
        Rule::CheckConstraintValidation,
        false,
    );
}

/// Prisma's migration for removing an enum value.
const REMOVE_GUEST: &str = r#"-- AlterEnum
BEGIN;
CREATE TYPE "Role_new" AS ENUM ('USER', 'ADMIN');
ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;
ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");
ALTER TYPE "Role" RENAME TO "Role_old";
ALTER TYPE "Role_new" RENAME TO "Role";
DROP TYPE "Role_old";
ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT 'USER';
COMMIT;
"#;

#[test]
fn removing_an_enum_value_fails_on_rows_holding_it() {
    let f = single(
        "enum_dirty",
        DIRTY,
        REMOVE_GUEST,
        Rule::EnumValueRemoved,
        true,
    );
    assert!(f.message.contains("GUEST"), "{}", f.message);
    assert_eq!(f.evidence.example_key.as_deref(), Some("id=2"));
    single(
        "enum_clean",
        CLEAN,
        REMOVE_GUEST,
        Rule::EnumValueRemoved,
        false,
    );
}

#[test]
fn blocking_builds_and_rewrites_are_graded_by_size() {
    let index = "CREATE INDEX \"Post_title_idx\" ON \"Post\"(\"title\");";
    // Large (over a lowered threshold): error, but the prediction is that it succeeds.
    let mut case = Case::new("big_index", CLEAN);
    case.db.sql(
        "INSERT INTO \"Post\" (\"title\") SELECT 't' || g FROM generate_series(1, 500) g; ANALYZE \"Post\";",
    );
    case.thresholds = Thresholds {
        large_rows: 100,
        ..Thresholds::default()
    };
    case.pending(P1, index);
    let findings = case.checked();
    let f = find(&findings, Rule::IndexNotConcurrent);
    assert_eq!(f.severity, Severity::Error, "{f:#?}");
    assert!(!f.will_fail);
    assert!(f.evidence.row_estimate.is_some_and(|n| n >= 500));
    assert_eq!(f.evidence.lock.as_deref(), Some("SHARE"));
    // Small: warning. Created in the plan: info. CONCURRENTLY: nothing.
    let f = single("small_index", CLEAN, index, Rule::IndexNotConcurrent, false);
    assert_eq!(f.severity, Severity::Warning);
    let mut case = Case::new("plan_index", CLEAN);
    case.pending(P1, "CREATE TABLE \"N\" (\"t\" TEXT);")
        .pending(P2, "CREATE INDEX \"N_t_idx\" ON \"N\"(\"t\");");
    assert!(
        case.checked()
            .iter()
            .all(|f| f.rule != Rule::IndexNotConcurrent)
    );
    let mut case = Case::new("conc_index", CLEAN);
    case.pending(
        P1,
        "CREATE INDEX CONCURRENTLY \"Post_title_idx\" ON \"Post\"(\"title\");",
    );
    assert!(
        case.checked()
            .iter()
            .all(|f| f.rule != Rule::IndexNotConcurrent)
    );

    let f = single(
        "type_change",
        CLEAN,
        "ALTER TABLE \"User\" ALTER COLUMN \"age\" SET DATA TYPE BIGINT;",
        Rule::ColumnTypeChange,
        false,
    );
    assert_eq!(f.severity, Severity::Warning);
    let f = single(
        "rewrite",
        CLEAN,
        "ALTER TABLE \"User\" ADD COLUMN \"uid\" UUID DEFAULT gen_random_uuid();",
        Rule::TableRewrite,
        false,
    );
    assert!(f.message.contains("gen_random_uuid"), "{}", f.message);
    // A constant default is no rewrite.
    let mut case = Case::new("no_rewrite", CLEAN);
    case.pending(
        P1,
        "ALTER TABLE \"User\" ADD COLUMN \"k\" TEXT NOT NULL DEFAULT 'k';",
    );
    assert!(case.checked().is_empty());
}

#[test]
fn data_loss_and_renames_are_warnings_and_allow_comments_are_honoured() {
    let mut case = Case::new("loss", CLEAN);
    case.pending(
        P1,
        r#"ALTER TABLE "User" DROP COLUMN "age";
-- migrator:allow rename-column the app reads both names since v7
ALTER TABLE "User" RENAME COLUMN "name" TO "fullName";
UPDATE "User" SET "role" = 'USER';
DELETE FROM "Post";
TRUNCATE "Tag";
ALTER TABLE "Post" RENAME TO "Article";
DROP TABLE "Article";
"#,
    );
    let findings = case.checked();
    for (rule, statement) in [
        (Rule::DropColumn, 1),
        (Rule::RenameColumn, 2),
        (Rule::UpdateWithoutWhere, 3),
        (Rule::DeleteWithoutWhere, 4),
        (Rule::Truncate, 5),
        (Rule::RenameTable, 6),
    ] {
        let f = find(&findings, rule);
        assert_eq!(f.statement, statement, "{f:#?}");
        assert_eq!(f.severity, Severity::Warning, "{f:#?}");
    }
    // `Article` was emptied by the DELETE earlier in the plan: its drop loses no rows, but
    // the running application still uses the table.
    let drop = find(&findings, Rule::DropTable);
    assert_eq!(
        (drop.severity, drop.evidence.has_rows),
        (Severity::Warning, Some(false))
    );
    let rename = find(&findings, Rule::RenameColumn);
    assert_eq!(
        rename.allowed.as_deref(),
        Some("the app reads both names since v7")
    );
    assert_eq!(rename.line, 3);
    let blocking = BlockOn::Warning.blocking(&findings, &["truncate@20240201000000_one".into()]);
    let blocking: Vec<Rule> = blocking.iter().map(|f| f.rule).collect();
    assert!(!blocking.contains(&Rule::RenameColumn) && !blocking.contains(&Rule::Truncate));
    assert!(blocking.contains(&Rule::DropColumn));
    // A drop of a table with rows, not emptied first: warning.
    let f = single("drop", CLEAN, "DROP TABLE \"Tag\";", Rule::DropTable, false);
    assert_eq!(f.severity, Severity::Warning);
}

#[test]
fn prismas_implicit_many_to_many_churn_is_flagged() {
    let mut case = Case::new("m2m", CLEAN);
    case.pending(
        P1,
        "-- AlterTable\nALTER TABLE \"_PostToTag\" ADD CONSTRAINT \"_PostToTag_AB_pkey\" PRIMARY KEY (\"A\", \"B\");\n\n-- DropIndex\nDROP INDEX \"_PostToTag_AB_unique\";\n",
    );
    let findings = case.checked();
    let churn: Vec<_> = findings
        .iter()
        .filter(|f| f.rule == Rule::ImplicitM2mChurn)
        .map(|f| (f.statement, f.line))
        .collect();
    assert_eq!(churn, vec![(1, 2), (2, 5)]);
    assert!(!find(&findings, Rule::UniqueIndex).will_fail);
}

/// A Prisma-generated PostgreSQL history of the kind teams have: enums, relations, an
/// implicit many-to-many table, indexes, a required column with a default, an enum value
/// removed, a column type change.
fn prisma_history() -> Vec<(&'static str, String)> {
    vec![
        ("20240101000000_init", BASE.to_owned()),
        (
            "20240102000000_relations",
            r#"-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "_PostToTag" ADD CONSTRAINT "_PostToTag_A_fkey" FOREIGN KEY ("A") REFERENCES "Post"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

-- CreateIndex
CREATE INDEX "_PostToTag_B_index" ON "_PostToTag"("B");
"#
            .to_owned(),
        ),
        (
            "20240103000000_required_slug",
            "-- AlterTable\nALTER TABLE \"Post\" ADD COLUMN \"slug\" TEXT NOT NULL DEFAULT '', ADD COLUMN \"createdAt\" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;\nALTER TABLE \"User\" ALTER COLUMN \"name\" SET NOT NULL;\n".to_owned(),
        ),
        ("20240104000000_drop_guest", REMOVE_GUEST.to_owned()),
        (
            "20240105000000_widen",
            "-- AlterTable\nALTER TABLE \"User\" ALTER COLUMN \"age\" SET DATA TYPE BIGINT;\nALTER TABLE \"Post\" ADD CONSTRAINT \"Post_title_check\" CHECK (length(\"title\") > 0);\n".to_owned(),
        ),
    ]
}

#[test]
fn realistic_histories_against_an_empty_database_raise_no_error() {
    let db = PgDb::fresh("pf_history");
    let m = Migrations::new().with_lock("postgresql");
    let history = prisma_history();
    for (name, sql) in &history {
        m.add(name, sql);
    }
    let thousand: Vec<(String, String)> = (0..1000)
        .map(|i| {
            (
                format!("2025{i:06}_t{i}"),
                format!("-- CreateTable\nCREATE TABLE \"t_{i:06}\" (\n    \"id\" SERIAL NOT NULL,\n    \"name\" TEXT NOT NULL,\n\n    CONSTRAINT \"t_{i:06}_pkey\" PRIMARY KEY (\"id\")\n);\nCREATE INDEX \"t_{i:06}_name_idx\" ON \"t_{i:06}\"(\"name\");\n"),
            )
        })
        .collect();
    let histories: Vec<Vec<(String, String)>> = vec![
        history
            .iter()
            .map(|(n, s)| ((*n).to_owned(), s.clone()))
            .collect(),
        thousand,
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for scripts in &histories {
        let scripts: Vec<Script<'_>> = scripts
            .iter()
            .map(|(migration, sql)| Script {
                migration,
                sql,
                pending: true,
            })
            .collect();
        let findings = runtime.block_on(async {
            let mut conn = sqlx::postgres::PgConnection::connect(&db.url)
                .await
                .expect("connect");
            let limits = LiveLimits::default();
            let mut probe = PgProbe::new(&mut conn, limits);
            preflight::check_live(
                &scripts,
                &Options::new(Flavor::Postgres),
                &mut probe,
                &limits,
            )
            .await
        });
        let bad: Vec<_> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error || f.will_fail)
            .collect();
        assert!(bad.is_empty(), "{bad:#?}");
    }
    // And the history really deploys to the empty database.
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(run.ok(), "{}", run.stderr());
    // The example projects: PostgreSQL against the empty database, MySQL and SQLite statically.
    for (example, flavor) in [
        ("examples/postgres/prisma/migrations", Flavor::Postgres),
        ("examples/mysql/prisma/migrations", Flavor::MySql),
        ("examples/prisma/migrations", Flavor::Sqlite),
    ] {
        let sql = example_history(example);
        let scripts: Vec<Script<'_>> = sql
            .iter()
            .map(|(migration, sql)| Script {
                migration,
                sql,
                pending: true,
            })
            .collect();
        let findings = if flavor == Flavor::Postgres {
            let empty = PgDb::fresh("pf_example");
            runtime.block_on(async {
                let mut conn = sqlx::postgres::PgConnection::connect(&empty.url)
                    .await
                    .expect("connect");
                let limits = LiveLimits::default();
                let mut probe = PgProbe::new(&mut conn, limits);
                preflight::check_live(&scripts, &Options::new(flavor), &mut probe, &limits).await
            })
        } else {
            preflight::check_static(&scripts, &Options::new(flavor))
        };
        // Planned whole, every table is the plan's own: nothing to say. Migration by
        // migration (lint's view), the rules see the later ones alter earlier tables.
        let each = preflight::check_static(
            &scripts,
            &Options {
                scope: preflight::Scope::EachMigration,
                ..Options::new(flavor)
            },
        );
        assert!(!each.is_empty(), "{example}: the rules saw the history");
        // The PostgreSQL and MySQL samples are Prisma's output plus a backfill: lint says no
        // more than `info` (SQLite's table redefinitions are real rewrites).
        if flavor != Flavor::Sqlite {
            assert!(
                each.iter().all(|f| f.severity == Severity::Info),
                "{example}: lint stays quiet on the sample: {each:#?}"
            );
        }
        assert!(
            findings
                .iter()
                .all(|f| f.severity != Severity::Error && !f.will_fail),
            "{example}: {findings:#?}"
        );
    }
}

/// `(name, migration.sql)` of each migration folder under `dir` (relative to the workspace).
fn example_history(dir: &str) -> Vec<(String, String)> {
    let mut paths: Vec<_> = std::fs::read_dir(workspace().join(dir))
        .expect("example migrations")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            (
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                std::fs::read_to_string(p.join("migration.sql")).expect("migration.sql"),
            )
        })
        .collect()
}

fn lint(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(migrator_bin())
        .arg("lint")
        .arg("--artifact")
        .arg(dir)
        .args(args)
        .output()
        .expect("migrator lint runs")
}

#[test]
fn lint_annotates_the_pull_request_and_exits_by_severity() {
    let m = Migrations::new().with_lock("postgresql");
    m.add(BASE_NAME, BASE).add(
        P1,
        "-- AlterTable\nALTER TABLE \"User\" DROP COLUMN \"age\";\n\n-- migrator:allow truncate fixture table, never holds data\nTRUNCATE \"Tag\";\nALTER TABLE \"User\" ADD COLUMN \"x\" INTEGER NOT NULL;\n",
    );
    let out = lint(m.path(), &["--format", "github", "--from", P1]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let file = format!("{}/{P1}/migration.sql", m.path().display());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "the allowed truncate is not annotated: {stdout}"
    );
    assert!(
        lines[0].starts_with(&format!(
            "::warning file={file},line=2,title=drop-column::Dropping `User`.`age`"
        )),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "::warning file={file},line=6,title=not-null-without-default::"
        )),
        "{stdout}"
    );
    // Only errors fail with --fail-on error; statically nothing is known to fail.
    assert_eq!(
        lint(m.path(), &["--fail-on", "error"]).status.code(),
        Some(0)
    );
    // JSON carries the findings with their files.
    let out = lint(m.path(), &["--format", "json"]);
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    let rules: Vec<&str> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert!(
        rules.contains(&"drop-column") && rules.contains(&"truncate"),
        "{json}"
    );
    assert_eq!(json["highest"], "warning");
    // A clean history exits 0; an unreadable artifact exits 2.
    let clean = Migrations::new().with_lock("postgresql");
    clean.add(BASE_NAME, "CREATE TABLE \"A\" (\"id\" INTEGER);\n");
    assert_eq!(lint(clean.path(), &[]).status.code(), Some(0));
    assert_eq!(lint(&m.path().join("missing"), &[]).status.code(), Some(2));
}

#[test]
fn plan_reports_findings_and_deploy_block_on_writes_nothing() {
    let mut case = Case::new("block", DIRTY);
    case.pending(
        P1,
        "-- AlterTable\nALTER TABLE \"User\" ALTER COLUMN \"name\" SET NOT NULL;\n",
    );
    let plan = migrator(&["plan"], case.m.path(), &case.db.url);
    assert!(plan.ok(), "{}", plan.stderr());
    let findings = plan.json["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let f = findings
        .iter()
        .find(|f| f["rule"] == "set-not-null")
        .unwrap_or_else(|| panic!("{}", plan.json));
    assert_eq!(
        (f["willFail"].as_bool(), f["severity"].as_str()),
        (Some(true), Some("error"))
    );
    assert_eq!(f["evidence"]["exampleKey"], "id=2");
    let text = migrator_text(&["plan"], case.m.path(), &case.db.url);
    assert!(
        text.contains(
            "Findings:\n  20240201000000_one\n    error   set-not-null (statement 1, line 2)"
        ),
        "{text}"
    );

    let blocked = migrator(
        &["deploy", "--block-on", "error"],
        case.m.path(),
        &case.db.url,
    );
    assert_eq!(blocked.status(), "blocked", "{}", blocked.json);
    assert!(!blocked.ok());
    assert_eq!(blocked.names("pending"), vec![P1.to_owned()]);
    assert!(
        blocked.json["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("set-not-null@20240201000000_one")
    );
    assert_eq!(
        case.db.sql("SELECT count(*) FROM _prisma_migrations"),
        "1",
        "nothing written"
    );
    // The default (`never`) stays a drop-in for `prisma migrate deploy`: it tries, and fails
    // as predicted.
    let run = migrator(&["deploy"], case.m.path(), &case.db.url);
    assert_eq!(run.error_code(), "P3018", "{}", run.json);
}

#[test]
fn block_on_warning_honours_allow_comments() {
    let mut case = Case::new("block_warn", CLEAN);
    case.pending(P1, "ALTER TABLE \"User\" DROP COLUMN \"age\";\n");
    let blocked = migrator(
        &["deploy", "--block-on", "warning"],
        case.m.path(),
        &case.db.url,
    );
    assert_eq!(blocked.status(), "blocked", "{}", blocked.json);
    // Error-level blocking lets a warning through.
    let copy_ok = {
        let mut allowed = Case::new("block_allow", CLEAN);
        allowed.pending(
            P1,
            "-- migrator:allow drop-column unused since v12\nALTER TABLE \"User\" DROP COLUMN \"age\";\n",
        );
        let run = migrator(
            &["deploy", "--block-on", "warning"],
            allowed.m.path(),
            &allowed.db.url,
        );
        assert_eq!(
            run.json["findings"][0]["allowed"], "unused since v12",
            "{}",
            run.json
        );
        run.ok()
    };
    assert!(copy_ok);
    let run = migrator(
        &["deploy", "--block-on", "error"],
        case.m.path(),
        &case.db.url,
    );
    assert_eq!(run.status(), "applied", "{}", run.json);
}

/// `migrator ARGS` without `--json`: the text rendering.
fn migrator_text(args: &[&str], artifact: &Path, url: &str) -> String {
    let out = std::process::Command::new(migrator_bin())
        .args(args)
        .arg("--artifact")
        .arg(artifact)
        .args(["--database-url", url])
        .env_remove("DATABASE_URL")
        .output()
        .expect("migrator runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The function's rules through `migrator handle-event` (the same handler as the Lambda)
/// against moto: an upload with a blocking finding writes nothing and publishes `blocked`
/// with the findings; a manual payload accepting them applies, and the outcome records it.
#[test]
fn the_function_blocks_on_errors_and_applies_what_a_person_accepts() {
    use migrator_e2e::local_aws::{Moto, s3_event};
    let mut case = Case::new("fn_block", DIRTY);
    case.pending(
        P1,
        "ALTER TABLE \"User\" ALTER COLUMN \"name\" SET NOT NULL;\n",
    )
    .pending(P2, "ALTER TABLE \"User\" DROP COLUMN \"age\";\n");
    let moto = Moto::shared();
    let aws = moto.aws();
    let unique = format!("pf-block-{}", std::process::id());
    aws.create_versioned_bucket(&unique);
    let topic = aws.create_topic(&unique);
    let queue = aws.subscribed_queue(&topic, &unique);
    let zip = tempfile::NamedTempFile::new().expect("zip file");
    case.m.zip(zip.path());
    let put = aws.put_object(
        &unique,
        "deploy/prisma.zip",
        &std::fs::read(zip.path()).expect("zip"),
    );
    let mut env = moto.client_env();
    env.extend([
        ("STAGE".to_owned(), "PROD".to_owned()),
        ("DB_AUTH".to_owned(), "url".to_owned()),
        ("DATABASE_URL".to_owned(), case.db.url.clone()),
        ("ARTIFACT_BUCKET".to_owned(), unique.clone()),
        ("ARTIFACT_KEY".to_owned(), "deploy/prisma.zip".to_owned()),
        ("TOPIC_ARN".to_owned(), topic.clone()),
    ]);
    let handle = |event: &Value| {
        let out = std::process::Command::new(migrator_bin())
            .args(["handle-event", "--event-json", &event.to_string()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("handle-event runs");
        let outcome: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), outcome)
    };
    // BLOCK_ON defaults to error: the upload is blocked, nothing is written.
    let (code, o) = handle(&s3_event(&put));
    assert_eq!(
        (code, o["status"].as_str()),
        (Some(1), Some("blocked")),
        "{o:#}"
    );
    assert!(
        o["findings"].as_array().is_some_and(|f| f
            .iter()
            .any(|f| f["rule"] == "set-not-null" && f["willFail"] == true)),
        "{o:#}"
    );
    assert_eq!(case.db.sql("SELECT count(*) FROM _prisma_migrations"), "1");
    let published = aws.receive(&queue, 1, std::time::Duration::from_secs(10));
    assert_eq!(published.len(), 1);
    let envelope: Value = serde_json::from_str(&published[0]).expect("SNS envelope");
    assert_eq!(
        envelope["MessageAttributes"]["findings"]["Value"], "error",
        "{envelope:#}"
    );
    assert_eq!(envelope["MessageAttributes"]["status"]["Value"], "blocked");
    // A person accepts the error: the deploy goes ahead (and fails as predicted), and the
    // outcome records what was accepted.
    let (code, o) = handle(&json_payload(&["set-not-null@20240201000000_one"]));
    assert_eq!(
        (code, o["error"]["code"].as_str()),
        (Some(1), Some("P3018")),
        "{o:#}"
    );
    assert_eq!(
        o["accepted"],
        serde_json::json!(["set-not-null@20240201000000_one"])
    );
    aws.receive(&queue, 1, std::time::Duration::from_secs(10));
    // Repaired and resolved, the same deploy applies; the drop-column warning does not block
    // at `error`.
    case.db
        .sql("UPDATE \"User\" SET \"name\" = 'repaired' WHERE \"name\" IS NULL");
    let resolve =
        serde_json::json!({"action": "resolve", "confirm": true, "resolve": {"rolledBack": P1}});
    assert_eq!(handle(&resolve).1["status"], "applied");
    let (code, o) = handle(&json_payload(&[]));
    assert_eq!(
        (code, o["status"].as_str()),
        (Some(0), Some("applied")),
        "{o:#}"
    );
    assert_eq!(o["findings"].as_array().map(Vec::len), Some(2), "{o:#}");
}

fn json_payload(accept: &[&str]) -> Value {
    // `accept` names who accepts (`by`): without it the payload is rejected.
    serde_json::json!({"action": "deploy", "confirm": true, "accept": accept, "by": "preflight-test"})
}

/// Item 7: a session holding a lock on a table the plan will lock is named, with its query
/// stripped of literals.
#[test]
fn plan_names_the_sessions_in_the_way() {
    use std::io::Write as _;
    let mut case = Case::new("in_the_way", CLEAN);
    case.pending(
        P1,
        "CREATE INDEX \"User_email_idx\" ON \"User\"(\"email\");\n",
    );
    let mut holder = std::process::Command::new("psql")
        .args([case.db.url.as_str(), "-qAtX"])
        .env("PGAPPNAME", "nightly-report")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql starts");
    let mut stdin = holder.stdin.take().expect("psql stdin");
    writeln!(
        stdin,
        "BEGIN; UPDATE \"User\" SET \"name\" = 'secret-value' WHERE \"id\" = 1;"
    )
    .expect("write");
    stdin.flush().expect("flush");
    // Wait (bounded, patient on a loaded machine) until the lock is held.
    let mut held = false;
    for _ in 0..300 {
        if case.db.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'nightly-report' AND state = 'idle in transaction'") == "1" {
            held = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(held, "the holding session never became idle in transaction");
    let plan = migrator(&["plan"], case.m.path(), &case.db.url);
    let _ = holder.kill();
    let _ = holder.wait();
    let blockers = plan.json["blockers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let b = blockers
        .iter()
        .find(|b| b["applicationName"] == "nightly-report")
        .unwrap_or_else(|| panic!("{:#}", plan.json));
    assert_eq!(b["holds"], "\"User\"");
    assert_eq!(b["mode"], "RowExclusiveLock");
    assert_eq!(b["state"], "idle in transaction");
    assert_eq!(b["user"], "postgres");
    assert_eq!(
        b["query"],
        "UPDATE \"User\" SET \"name\" = ? WHERE \"id\" = ?"
    );
    assert!(!plan.stdout().contains("secret-value"));
}

/// One case of the table: a seeded database (the base history, then `applied` migrations
/// deployed, then `seed`), the pending migrations, and the live thresholds.
struct TableCase {
    tag: &'static str,
    applied: &'static [&'static str],
    seed: &'static str,
    pending: &'static [&'static str],
    large_rows: Option<u64>,
}

const fn case(
    tag: &'static str,
    applied: &'static [&'static str],
    seed: &'static str,
    pending: &'static [&'static str],
) -> TableCase {
    TableCase {
        tag,
        applied,
        seed,
        pending,
        large_rows: None,
    }
}

const NULL_NAME: &str = r#"INSERT INTO "User" ("email", "name", "role", "age") VALUES ('a@x', 'A', 'USER', 30), ('b@x', NULL, 'USER', -1);"#;
const DUP_EMAIL: &str = r#"INSERT INTO "User" ("email", "name", "role", "age") VALUES ('a@x', 'A', 'USER', 30), ('a@x', 'B', 'USER', 31), ('c@x', 'C', 'USER', 32);"#;
const ORPHAN: &str = r#"INSERT INTO "User" ("email") VALUES ('a@x'); INSERT INTO "Post" ("title", "authorId") VALUES ('p1', 1), ('p2', 99);"#;
const ENUM_RECREATE: &str = r#"-- AlterEnum
BEGIN;
CREATE TYPE "public"."Role_new" AS ENUM ('USER', 'ADMIN');
ALTER TABLE "public"."User" ALTER COLUMN "role" DROP DEFAULT;
ALTER TABLE "public"."User" ALTER COLUMN "role" TYPE "public"."Role_new" USING ("role"::text::"public"."Role_new");
ALTER TYPE "public"."Role" RENAME TO "Role_old";
ALTER TYPE "public"."Role_new" RENAME TO "Role";
DROP TYPE "public"."Role_old";
ALTER TABLE "public"."User" ALTER COLUMN "role" SET DEFAULT 'USER';
COMMIT;"#;
const PERMS: &str = r#"CREATE TYPE "Perm" AS ENUM ('READ', 'WRITE', 'ADMIN');
ALTER TABLE "User" ADD COLUMN "perms" "Perm"[];"#;
const PERMS_RECREATE: &str = r#"-- AlterEnum
BEGIN;
CREATE TYPE "Perm_new" AS ENUM ('READ', 'WRITE');
ALTER TABLE "User" ALTER COLUMN "perms" TYPE "Perm_new"[] USING ("perms"::text::"Perm_new"[]);
ALTER TYPE "Perm" RENAME TO "Perm_old";
ALTER TYPE "Perm_new" RENAME TO "Perm";
DROP TYPE "Perm_old";
COMMIT;"#;
const SET_NAME_NOT_NULL: &str = r#"ALTER TABLE "User" ALTER COLUMN "name" SET NOT NULL;"#;
const POST_FK: &str = r#"-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;"#;
const EMAIL_KEY: &str = r#"-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");"#;
const POST_FK_RESTRICT: &str = r#"ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;"#;
const ORPHAN_FREE: &str = r#"INSERT INTO "User" ("email") VALUES ('a@x'); INSERT INTO "Post" ("title", "authorId") VALUES ('p1', 1);"#;
const EXTRA: &str = r#"ALTER TABLE "Post" ADD COLUMN "qty" TEXT, ADD COLUMN "big" BIGINT, ADD COLUMN "price" DECIMAL(65,30);"#;

/// The case table: the classes of issue 22 on PostgreSQL, each with a counter-case.
fn pg_cases() -> Vec<TableCase> {
    vec![
        // 1. Data fixed earlier in the pending set.
        case(
            "bf_update",
            &[],
            NULL_NAME,
            &[
                r#"UPDATE "User" SET "name" = 'anonymous' WHERE "name" IS NULL;
ALTER TABLE "User" ALTER COLUMN "name" SET NOT NULL;"#,
            ],
        ),
        case(
            "bf_update_partial",
            &[],
            NULL_NAME,
            &[r#"UPDATE "User" SET "name" = 'x' WHERE "email" = 'nobody';
ALTER TABLE "User" ALTER COLUMN "name" SET NOT NULL;"#],
        ),
        case(
            "bf_delete_nulls",
            &[],
            NULL_NAME,
            &[
                r#"DELETE FROM "User" WHERE "name" IS NULL;"#,
                SET_NAME_NOT_NULL,
            ],
        ),
        case(
            "bf_split",
            &[],
            NULL_NAME,
            &[
                r#"UPDATE "User" SET "name" = "email" WHERE "name" IS NULL;"#,
                SET_NAME_NOT_NULL,
            ],
        ),
        case(
            "bf_cte_dups",
            &[],
            DUP_EMAIL,
            &[
                r#"WITH ranked AS (SELECT "id", row_number() OVER (PARTITION BY "email" ORDER BY "id") AS n FROM "User")
DELETE FROM "User" WHERE "id" IN (SELECT "id" FROM ranked WHERE n > 1);
-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");"#,
            ],
        ),
        case(
            "bf_delete_using_dups",
            &[],
            DUP_EMAIL,
            &[
                r#"DELETE FROM "User" a USING "User" b WHERE a."email" = b."email" AND a."id" > b."id";"#,
                EMAIL_KEY,
            ],
        ),
        case(
            "bf_orphans",
            &[],
            ORPHAN,
            &[
                r#"DELETE FROM "Post" p WHERE NOT EXISTS (SELECT 1 FROM "User" u WHERE u."id" = p."authorId") AND p."authorId" IS NOT NULL;"#,
                POST_FK,
            ],
        ),
        case("bf_orphans_kept", &[], ORPHAN, &[POST_FK]),
        case(
            "bf_bool_using",
            &[],
            NULL_NAME,
            &[
                r#"ALTER TABLE "User" ALTER COLUMN "age" SET DATA TYPE BOOLEAN USING ("age" IS NOT NULL);
ALTER TABLE "User" ALTER COLUMN "age" SET NOT NULL;"#,
            ],
        ),
        case(
            "bf_bool_using_nulls",
            &[],
            NULL_NAME,
            &[
                r#"ALTER TABLE "User" ALTER COLUMN "age" SET DATA TYPE BOOLEAN USING (CASE WHEN "age" > 0 THEN true END);
ALTER TABLE "User" ALTER COLUMN "age" SET NOT NULL;"#,
            ],
        ),
        case(
            "bf_add_fill_require",
            &[],
            NULL_NAME,
            &[r#"ALTER TABLE "User" ADD COLUMN "nick" TEXT;
UPDATE "User" SET "nick" = split_part("email", '@', 1);
ALTER TABLE "User" ALTER COLUMN "nick" SET NOT NULL;"#],
        ),
        // 2. The live names after applied renames, enum values added by ALTER TYPE.
        case(
            "live_table_rename",
            &[r#"ALTER TABLE "Post" RENAME TO "Article";"#],
            r#"INSERT INTO "Article" ("title") VALUES ('t'), ('t');"#,
            &[r#"CREATE UNIQUE INDEX "Article_title_key" ON "Article"("title");"#],
        ),
        case(
            "live_column_rename",
            &[r#"ALTER TABLE "User" RENAME COLUMN "name" TO "fullName";"#],
            r#"INSERT INTO "User" ("email") VALUES ('a@x');"#,
            &[r#"ALTER TABLE "User" ALTER COLUMN "fullName" SET NOT NULL;"#],
        ),
        case(
            "live_enum_value",
            &[r#"ALTER TYPE "Role" ADD VALUE 'OWNER';"#],
            r#"INSERT INTO "User" ("email", "role") VALUES ('a@x', 'OWNER');"#,
            &[r#"BEGIN;
CREATE TYPE "Role_new" AS ENUM ('USER', 'ADMIN', 'GUEST');
ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;
ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");
ALTER TYPE "Role" RENAME TO "Role_old";
ALTER TYPE "Role_new" RENAME TO "Role";
DROP TYPE "Role_old";
ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT 'USER';
COMMIT;"#],
        ),
        // 3. Prisma's current shapes.
        case(
            "enum_qualified_used",
            &[],
            r#"INSERT INTO "User" ("email", "role") VALUES ('a@x', 'GUEST');"#,
            &[ENUM_RECREATE],
        ),
        case("enum_qualified_unused", &[], CLEAN, &[ENUM_RECREATE]),
        case(
            "enum_array_used",
            &[PERMS],
            r#"INSERT INTO "User" ("email", "perms") VALUES ('a@x', '{READ,ADMIN}');"#,
            &[PERMS_RECREATE],
        ),
        case(
            "enum_array_unused",
            &[PERMS],
            r#"INSERT INTO "User" ("email", "perms") VALUES ('a@x', '{READ,WRITE}'), ('b@x', NULL);"#,
            &[PERMS_RECREATE],
        ),
        case(
            "nulls_not_distinct",
            &[],
            r#"INSERT INTO "User" ("email") VALUES ('a@x'), ('b@x');"#,
            &[r#"CREATE UNIQUE INDEX "User_name_key" ON "User"("name") NULLS NOT DISTINCT;"#],
        ),
        case(
            "nulls_distinct",
            &[],
            r#"INSERT INTO "User" ("email") VALUES ('a@x'), ('b@x');"#,
            &[r#"CREATE UNIQUE INDEX "User_name_key" ON "User"("name");"#],
        ),
        case(
            "check_not_valid_validate",
            &[],
            NULL_NAME,
            &[
                r#"ALTER TABLE "User" ADD CONSTRAINT "User_age_check" CHECK ("age" >= 0) NOT VALID;
ALTER TABLE "User" VALIDATE CONSTRAINT "User_age_check";"#,
            ],
        ),
        case(
            "check_validate_later",
            &[],
            NULL_NAME,
            &[
                r#"ALTER TABLE "User" ADD CONSTRAINT "User_age_check" CHECK ("age" >= 0) NOT VALID;"#,
                r#"ALTER TABLE "User" VALIDATE CONSTRAINT "User_age_check";"#,
            ],
        ),
        case(
            "check_validate_clean",
            &[],
            CLEAN,
            &[
                r#"ALTER TABLE "User" ADD CONSTRAINT "User_age_check" CHECK ("age" >= 0) NOT VALID;"#,
                r#"ALTER TABLE "User" VALIDATE CONSTRAINT "User_age_check";"#,
            ],
        ),
        case(
            "unique_lower",
            &[],
            r#"INSERT INTO "User" ("email") VALUES ('A@x'), ('a@x');"#,
            &[r#"CREATE UNIQUE INDEX "User_email_lower_key" ON "User"(lower("email"));"#],
        ),
        case(
            "unique_lower_clean",
            &[],
            CLEAN,
            &[r#"CREATE UNIQUE INDEX "User_email_lower_key" ON "User"(lower("email"));"#],
        ),
        case(
            "unique_added_default",
            &[],
            CLEAN,
            &[
                r#"ALTER TABLE "User" ADD COLUMN "code" TEXT NOT NULL DEFAULT 'x';
CREATE UNIQUE INDEX "User_code_key" ON "User"("code");"#,
            ],
        ),
        case(
            "unique_composite_added_default",
            &[],
            CLEAN,
            &[
                r#"ALTER TABLE "User" ADD COLUMN "code" TEXT NOT NULL DEFAULT 'x';
CREATE UNIQUE INDEX "User_email_code_key" ON "User"("email", "code");"#,
            ],
        ),
        case(
            "fk_added_default",
            &[],
            CLEAN,
            &[
                r#"ALTER TABLE "Post" ADD COLUMN "tagId" INTEGER NOT NULL DEFAULT 1;
ALTER TABLE "Post" ADD CONSTRAINT "Post_tagId_fkey" FOREIGN KEY ("tagId") REFERENCES "Tag"("id") ON DELETE RESTRICT ON UPDATE CASCADE;"#,
            ],
        ),
        case(
            "fk_added_default_orphan",
            &[],
            r#"INSERT INTO "Post" ("title") VALUES ('p');"#,
            &[
                r#"ALTER TABLE "Post" ADD COLUMN "tagId" INTEGER NOT NULL DEFAULT 1;
ALTER TABLE "Post" ADD CONSTRAINT "Post_tagId_fkey" FOREIGN KEY ("tagId") REFERENCES "Tag"("id") ON DELETE RESTRICT ON UPDATE CASCADE;"#,
            ],
        ),
        // 4. Conversions, narrowing, dependents, index expressions.
        case(
            "cast_text_int",
            &[EXTRA],
            r#"INSERT INTO "Post" ("title", "qty") VALUES ('p', '12'), ('q', 'abc');"#,
            &[
                r#"ALTER TABLE "Post" ALTER COLUMN "qty" SET DATA TYPE INTEGER USING ("qty"::integer);"#,
            ],
        ),
        case(
            "cast_text_int_clean",
            &[EXTRA],
            r#"INSERT INTO "Post" ("title", "qty") VALUES ('p', '12'), ('q', NULL);"#,
            &[
                r#"ALTER TABLE "Post" ALTER COLUMN "qty" SET DATA TYPE INTEGER USING ("qty"::integer);"#,
            ],
        ),
        // umami's report parameters: text to JSONB, refused where a value is not JSON.
        case(
            "cast_text_jsonb",
            &[EXTRA],
            r#"INSERT INTO "Post" ("title", "qty") VALUES ('p', '{"a": 1}'), ('q', 'alpha');"#,
            &[r#"-- AlterTable
ALTER TABLE "Post"
ALTER COLUMN "qty" SET DATA TYPE JSONB USING qty::JSONB;"#],
        ),
        case(
            "cast_text_jsonb_clean",
            &[EXTRA],
            r#"INSERT INTO "Post" ("title", "qty") VALUES ('p', '{"a": 1}'), ('q', '[1, 2]');"#,
            &[r#"-- AlterTable
ALTER TABLE "Post"
ALTER COLUMN "qty" SET DATA TYPE JSONB USING qty::JSONB;"#],
        ),
        case(
            "varchar_narrow",
            &[],
            r#"INSERT INTO "Post" ("title") VALUES ('short'), ('a much longer title');"#,
            &[r#"ALTER TABLE "Post" ALTER COLUMN "title" SET DATA TYPE VARCHAR(10);"#],
        ),
        case(
            "varchar_narrow_fits",
            &[],
            r#"INSERT INTO "Post" ("title") VALUES ('short'), ('ten chars!');"#,
            &[r#"ALTER TABLE "Post" ALTER COLUMN "title" SET DATA TYPE VARCHAR(10);"#],
        ),
        case(
            "bigint_int",
            &[EXTRA],
            r#"INSERT INTO "Post" ("title", "big") VALUES ('p', 5000000000);"#,
            &[r#"ALTER TABLE "Post" ALTER COLUMN "big" SET DATA TYPE INTEGER;"#],
        ),
        case(
            "bigint_int_fits",
            &[EXTRA],
            r#"INSERT INTO "Post" ("title", "big") VALUES ('p', 5);"#,
            &[r#"ALTER TABLE "Post" ALTER COLUMN "big" SET DATA TYPE INTEGER;"#],
        ),
        case(
            "decimal_narrow",
            &[EXTRA],
            r#"INSERT INTO "Post" ("title", "price") VALUES ('p', 123456789012.5);"#,
            &[r#"ALTER TABLE "Post" ALTER COLUMN "price" SET DATA TYPE DECIMAL(10,2);"#],
        ),
        case(
            "decimal_narrow_fits",
            &[EXTRA],
            r#"INSERT INTO "Post" ("title", "price") VALUES ('p', 12.5);"#,
            &[r#"ALTER TABLE "Post" ALTER COLUMN "price" SET DATA TYPE DECIMAL(10,2);"#],
        ),
        case(
            "drop_column_view",
            &[r#"CREATE VIEW "UserEmails" AS SELECT "email" FROM "User";"#],
            CLEAN,
            &[r#"ALTER TABLE "User" DROP COLUMN "email";"#],
        ),
        case(
            "drop_column_view_dropped",
            &[r#"CREATE VIEW "UserEmails" AS SELECT "email" FROM "User";"#],
            CLEAN,
            &[r#"DROP VIEW "UserEmails";
ALTER TABLE "User" DROP COLUMN "email";"#],
        ),
        case(
            "index_expression_fails",
            &[],
            r#"INSERT INTO "Post" ("title") VALUES ('12'), ('p1');"#,
            &[r#"CREATE INDEX "Post_title_num_idx" ON "Post"((("title")::integer));"#],
        ),
        case(
            "index_expression_clean",
            &[],
            r#"INSERT INTO "Post" ("title") VALUES ('12'), ('13');"#,
            &[r#"CREATE INDEX "Post_title_num_idx" ON "Post"((("title")::integer));"#],
        ),
        // A data change of the plan that the live rows refuse (a data migration deleting
        // rows still referenced), and the same after the plan drops the constraint first.
        case(
            "dml_fk_violation",
            &[POST_FK_RESTRICT],
            ORPHAN_FREE,
            &[r#"DELETE FROM "User" WHERE "email" = 'a@x';"#],
        ),
        case(
            "dml_fk_dropped_first",
            &[POST_FK_RESTRICT],
            ORPHAN_FREE,
            &[
                r#"ALTER TABLE "Post" DROP CONSTRAINT "Post_authorId_fkey";"#,
                r#"DELETE FROM "User" WHERE "email" = 'a@x';"#,
            ],
        ),
        case(
            "dml_unique_violation",
            &[EMAIL_KEY],
            CLEAN,
            &[r#"UPDATE "User" SET "email" = 'same@x';"#],
        ),
        case(
            "dml_parent_then_child",
            &[POST_FK_RESTRICT],
            ORPHAN_FREE,
            &[r#"INSERT INTO "User" ("id", "email") VALUES (500, 'new@x');
INSERT INTO "Post" ("title", "authorId") VALUES ('child', 500);"#],
        ),
        case(
            "dml_fine",
            &[EMAIL_KEY],
            CLEAN,
            &[r#"UPDATE "User" SET "email" = lower("email") || '.old';"#],
        ),
        // 5. A large table: an index on the column answers exactly.
        TableCase {
            large_rows: Some(100),
            ..case(
                "large_indexed_null",
                &[r#"CREATE INDEX "User_name_idx" ON "User"("name");"#],
                r#"INSERT INTO "User" ("email", "name") SELECT 'u' || g || '@x', CASE WHEN g = 4321 THEN NULL ELSE 'n' END FROM generate_series(1, 5000) g;"#,
                &[SET_NAME_NOT_NULL],
            )
        },
        TableCase {
            large_rows: Some(100),
            ..case(
                "large_indexed_clean",
                &[r#"CREATE INDEX "User_name_idx" ON "User"("name");"#],
                r#"INSERT INTO "User" ("email", "name") SELECT 'u' || g || '@x', 'n' FROM generate_series(1, 5000) g;"#,
                &[SET_NAME_NOT_NULL],
            )
        },
        // 1. Real histories: a data migration whose statements need a table or column the
        // same plan creates (documenso's organisations). The whole plan is rehearsed in a
        // rolled-back transaction, so its INSERT runs after the CREATE TABLE it needs.
        case(
            "plan_table_then_insert_dup",
            &[],
            DUP_EMAIL,
            &[TEAM_PER_USER],
        ),
        case("plan_table_then_insert_clean", &[], CLEAN, &[TEAM_PER_USER]),
        case(
            "plan_table_then_insert_null",
            &[],
            NULL_NAME,
            &[PROFILE_PER_USER],
        ),
        case(
            "plan_table_then_insert_filled",
            &[],
            CLEAN,
            &[PROFILE_PER_USER],
        ),
        // 3. An enum recreate whose `USING` maps old values to new ones with a CASE (rallly's
        // poll status): asked with the mapping evaluated over the rows, as text.
        case("enum_case_mapping", &[], DIRTY, &[ROLE_MAPPED]),
        case(
            "enum_case_mapping_incomplete",
            &[],
            DIRTY,
            &[ROLE_HALF_MAPPED],
        ),
        // 5. A large table, a question on one indexed column other than NULLs or duplicates:
        // the index's distinct values are walked (a 1 % sample of 5,000 rows would miss the
        // one offender).
        TableCase {
            large_rows: Some(100),
            ..case(
                "large_indexed_orphan",
                &[POST_AUTHOR_IDX],
                r#"INSERT INTO "User" ("email") VALUES ('a@x');
INSERT INTO "Post" ("title", "authorId") SELECT 'p' || g, CASE WHEN g = 3217 THEN 99 ELSE 1 END FROM generate_series(1, 5000) g;"#,
                &[POST_FK],
            )
        },
        TableCase {
            large_rows: Some(100),
            ..case(
                "large_indexed_orphan_clean",
                &[POST_AUTHOR_IDX],
                r#"INSERT INTO "User" ("email") VALUES ('a@x');
INSERT INTO "Post" ("title", "authorId") SELECT 'p' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 1 END FROM generate_series(1, 5000) g;"#,
                &[POST_FK],
            )
        },
        TableCase {
            large_rows: Some(100),
            ..case(
                "large_indexed_enum_removed",
                &[r#"CREATE INDEX "User_role_idx" ON "User"("role");"#],
                r#"INSERT INTO "User" ("email", "role") SELECT 'u' || g || '@x', CASE WHEN g = 2345 THEN 'GUEST'::"Role" ELSE 'USER'::"Role" END FROM generate_series(1, 5000) g;"#,
                &[ENUM_RECREATE],
            )
        },
        TableCase {
            large_rows: Some(100),
            ..case(
                "large_indexed_narrowing",
                &[EXTRA, r#"CREATE INDEX "Post_big_idx" ON "Post"("big");"#],
                r#"INSERT INTO "Post" ("title", "big") SELECT 'p' || g, CASE WHEN g = 4444 THEN 5000000000 ELSE g END FROM generate_series(1, 5000) g;"#,
                &[r#"-- AlterTable
ALTER TABLE "Post" ALTER COLUMN "big" SET DATA TYPE INTEGER;"#],
            )
        },
    ]
}

/// Prisma's new model, filled from the users by a data migration in the same file.
const TEAM_PER_USER: &str = r#"-- CreateTable
CREATE TABLE "Team" (
    "id" SERIAL NOT NULL,
    "url" TEXT NOT NULL,
    "ownerId" INTEGER NOT NULL,

    CONSTRAINT "Team_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Team_url_key" ON "Team"("url");

-- AddForeignKey
ALTER TABLE "Team" ADD CONSTRAINT "Team_ownerId_fkey" FOREIGN KEY ("ownerId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- A personal team for every user
INSERT INTO "Team" ("url", "ownerId") SELECT lower("email"), "id" FROM "User";"#;
const PROFILE_PER_USER: &str = r#"-- CreateTable
CREATE TABLE "Profile" (
    "id" SERIAL NOT NULL,
    "userId" INTEGER NOT NULL,
    "displayName" TEXT NOT NULL,

    CONSTRAINT "Profile_pkey" PRIMARY KEY ("id")
);

-- Copy the names over
INSERT INTO "Profile" ("userId", "displayName") SELECT "id", "name" FROM "User";"#;
/// Prisma's enum recreate, edited to map the removed GUEST to a new MEMBER.
const ROLE_MAPPED: &str = r#"-- AlterEnum
BEGIN;
CREATE TYPE "Role_new" AS ENUM ('USER', 'ADMIN', 'MEMBER');
ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;
ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING (
  CASE "role"::text
    WHEN 'GUEST' THEN 'MEMBER'::"Role_new"
    ELSE "role"::text::"Role_new"
  END
);
ALTER TYPE "Role" RENAME TO "Role_old";
ALTER TYPE "Role_new" RENAME TO "Role";
DROP TYPE "Role_old";
ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT 'USER';
COMMIT;"#;
/// The same, with a mapping that forgets GUEST.
const ROLE_HALF_MAPPED: &str = r#"-- AlterEnum
BEGIN;
CREATE TYPE "Role_new" AS ENUM ('USER', 'ADMIN', 'MEMBER');
ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;
ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING (
  CASE "role"::text
    WHEN 'ADMIN' THEN 'ADMIN'::"Role_new"
    ELSE "role"::text::"Role_new"
  END
);
ALTER TYPE "Role" RENAME TO "Role_old";
ALTER TYPE "Role_new" RENAME TO "Role";
DROP TYPE "Role_old";
ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT 'USER';
COMMIT;"#;
const POST_AUTHOR_IDX: &str = r#"-- CreateIndex
CREATE INDEX "Post_authorId_idx" ON "Post"("authorId");"#;

/// Counts of predictions against what deploy then did.
#[derive(Default, Debug)]
struct Tally {
    true_fail: u32,
    false_alarm: u32,
    missed: u32,
    true_pass: u32,
}

impl Tally {
    fn precision(&self) -> f64 {
        let predicted = self.true_fail + self.false_alarm;
        if predicted == 0 {
            1.0
        } else {
            f64::from(self.true_fail) / f64::from(predicted)
        }
    }

    fn recall(&self) -> f64 {
        let failed = self.true_fail + self.missed;
        if failed == 0 {
            1.0
        } else {
            f64::from(self.true_fail) / f64::from(failed)
        }
    }
}

#[test]
fn the_case_table_predicts_what_deploy_does() {
    let mut tally = Tally::default();
    let mut report = Vec::new();
    for c in pg_cases() {
        let mut case = Case::new(&format!("t_{}", c.tag), "");
        for (i, sql) in c.applied.iter().enumerate() {
            let name = format!("20240115000{i:03}_applied");
            case.m.add(&name, sql);
            let run = migrator(&["deploy"], case.m.path(), &case.db.url);
            assert!(run.ok(), "{}: applied: {}", c.tag, run.stderr());
            case.scripts.push((name, (*sql).into(), false));
        }
        if !c.seed.is_empty() {
            case.db.sql(c.seed);
        }
        case.db.sql("ANALYZE");
        if let Some(large_rows) = c.large_rows {
            case.thresholds.large_rows = large_rows;
        }
        for (i, sql) in c.pending.iter().enumerate() {
            case.pending(&format!("20240201000{i:03}_pending"), sql);
        }
        let findings = case.predict();
        let predicted = findings.iter().any(|f| f.will_fail);
        let failed = !case.deploy_to_copy();
        let unknown: Vec<String> = findings
            .iter()
            .filter_map(|f| {
                f.evidence
                    .unknown
                    .clone()
                    .map(|u| format!("{}: {u}", f.rule))
            })
            .collect();
        report.push(format!(
            "{:32} predicted {:5} deploy {:5} {}",
            c.tag,
            if predicted { "fail" } else { "ok" },
            if failed { "fail" } else { "ok" },
            unknown.join("; ")
        ));
        match (predicted, failed) {
            (true, true) => tally.true_fail += 1,
            (true, false) => tally.false_alarm += 1,
            (false, true) => tally.missed += 1,
            (false, false) => tally.true_pass += 1,
        }
        if !failed {
            let errors: Vec<&Finding> = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .collect();
            assert!(
                errors.is_empty(),
                "{}: an error on a migration that deploys fine: {errors:#?}",
                c.tag
            );
        }
    }
    println!("{}", report.join("\n"));
    println!(
        "PostgreSQL case table: {tally:?}; precision {:.2}, recall {:.2}",
        tally.precision(),
        tally.recall()
    );
    assert_eq!(tally.false_alarm, 0, "{}", report.join("\n"));
    assert!(tally.recall() >= 0.95, "{}", report.join("\n"));
}
