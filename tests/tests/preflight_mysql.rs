//! Preflight on MariaDB with seeded data: a table of cases (a required column added to a
//! table with rows, `MODIFY … NOT NULL` over NULLs and after a backfill, duplicate keys,
//! orphans, narrowing, enum values removed), each predicted by `MyProbe` on one database
//! and checked by deploying the same migrations with the `migrator` binary to a twin
//! database seeded the same way. Prints precision and recall; asserts no false alarm and
//! no `error` on a migration that deploys fine.

use migrator_e2e::{Migrations, MyDb, migrator};
use migrator_engine::dialect::mysql::MyProbe;
use migrator_engine::preflight::{self, Finding, LiveLimits, Options, Script, Severity};
use migrator_engine::sql::Flavor;
use sqlx::Connection;

const BASE: &str = r#"-- CreateTable
CREATE TABLE `User` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `email` VARCHAR(191) NOT NULL,
    `name` VARCHAR(191) NULL,
    `role` ENUM('USER', 'ADMIN', 'GUEST') NOT NULL DEFAULT 'USER',
    `big` BIGINT NULL,

    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `Post` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `title` VARCHAR(191) NOT NULL,
    `authorId` INTEGER NULL,

    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
"#;

const BASE_NAME: &str = "20240101000000_base";

const ROWS: &str = "INSERT INTO `User` (`email`, `name`, `role`, `big`) VALUES ('a@x', 'A', 'USER', 5), ('b@x', NULL, 'GUEST', 5000000000);
INSERT INTO `Post` (`title`, `authorId`) VALUES ('a short one', 1), ('a title longer than ten', 99);";
const CLEAN: &str = "INSERT INTO `User` (`email`, `name`, `role`, `big`) VALUES ('a@x', 'A', 'USER', 5), ('b@x', 'B', 'ADMIN', 6);
INSERT INTO `Post` (`title`, `authorId`) VALUES ('short', 1), ('tiny', NULL);";
const DUPS: &str = "INSERT INTO `User` (`email`) VALUES ('a@x'), ('A@x');";

const FK: &str = "-- AddForeignKey
ALTER TABLE `Post` ADD CONSTRAINT `Post_authorId_fkey` FOREIGN KEY (`authorId`) REFERENCES `User`(`id`) ON DELETE SET NULL ON UPDATE CASCADE;";
const EMAIL_KEY: &str = "-- CreateIndex
CREATE UNIQUE INDEX `User_email_key` ON `User`(`email`);";
const NAME_REQUIRED: &str = "-- AlterTable
ALTER TABLE `User` MODIFY `name` VARCHAR(191) NOT NULL;";
const ENUM_SHRINK: &str = "-- AlterTable
ALTER TABLE `User` MODIFY `role` ENUM('USER', 'ADMIN') NOT NULL DEFAULT 'USER';";

struct MyCase {
    tag: &'static str,
    seed: &'static str,
    pending: &'static [&'static str],
}

fn cases() -> Vec<MyCase> {
    let c = |tag, seed, pending| MyCase { tag, seed, pending };
    vec![
        c(
            "nn_int_rows",
            ROWS,
            &["ALTER TABLE `User` ADD COLUMN `score` INTEGER NOT NULL;"],
        ),
        c(
            "nn_datetime_rows",
            ROWS,
            &["ALTER TABLE `User` ADD COLUMN `updatedAt` DATETIME(3) NOT NULL;"],
        ),
        c("modify_not_null", ROWS, &[NAME_REQUIRED]),
        c("modify_not_null_clean", CLEAN, &[NAME_REQUIRED]),
        c(
            "modify_not_null_backfilled",
            ROWS,
            &[
                "UPDATE `User` SET `name` = `email` WHERE `name` IS NULL;",
                NAME_REQUIRED,
            ],
        ),
        c("unique_dups", DUPS, &[EMAIL_KEY]),
        c("unique_clean", CLEAN, &[EMAIL_KEY]),
        c(
            "unique_dups_deleted",
            DUPS,
            &["DELETE FROM `User` WHERE `email` = 'A@x';", EMAIL_KEY],
        ),
        c("fk_orphan", ROWS, &[FK]),
        c("fk_clean", CLEAN, &[FK]),
        c(
            "fk_orphan_cleared",
            ROWS,
            &[
                "UPDATE `Post` SET `authorId` = NULL WHERE `authorId` NOT IN (SELECT `id` FROM `User`);",
                FK,
            ],
        ),
        c(
            "varchar_narrow",
            ROWS,
            &["ALTER TABLE `Post` MODIFY `title` VARCHAR(10) NOT NULL;"],
        ),
        c(
            "varchar_narrow_fits",
            CLEAN,
            &["ALTER TABLE `Post` MODIFY `title` VARCHAR(10) NOT NULL;"],
        ),
        c(
            "bigint_int",
            ROWS,
            &["ALTER TABLE `User` MODIFY `big` INTEGER NULL;"],
        ),
        c(
            "bigint_int_fits",
            CLEAN,
            &["ALTER TABLE `User` MODIFY `big` INTEGER NULL;"],
        ),
        c(
            "required_unique_on_rows",
            ROWS,
            &[
                "ALTER TABLE `User` ADD COLUMN `code` VARCHAR(191) NOT NULL;\n\n-- CreateIndex\nCREATE UNIQUE INDEX `User_code_key` ON `User`(`code`);",
            ],
        ),
        c(
            "required_unique_composite",
            ROWS,
            &[
                "ALTER TABLE `User` ADD COLUMN `code` VARCHAR(191) NOT NULL;\n\n-- CreateIndex\nCREATE UNIQUE INDEX `User_email_code_key` ON `User`(`email`, `code`);",
            ],
        ),
        c(
            "enum_grown",
            ROWS,
            &[
                "ALTER TABLE `User` MODIFY `role` ENUM('USER', 'ADMIN', 'GUEST', 'OWNER') NOT NULL DEFAULT 'USER';",
            ],
        ),
        c("enum_removed", ROWS, &[ENUM_SHRINK]),
        c("enum_removed_unused", CLEAN, &[ENUM_SHRINK]),
    ]
}

/// `migrator deploy`, again while another test on the server holds MySQL's server-wide
/// migration lock (P1002): the outcome compared is the migrations', not the lock's.
fn deploy(m: &Migrations, url: &str) -> migrator_e2e::Run {
    let mut run = migrator(&["deploy"], m.path(), url);
    for _ in 0..5 {
        if run.ok() || !run.stdout().contains("P1002") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        run = migrator(&["deploy"], m.path(), url);
    }
    run
}

/// A database with the base history deployed by `migrator` and `seed` inserted.
fn seeded(tag: &str, seed: &str) -> (MyDb, Migrations) {
    let db = MyDb::fresh(tag);
    let m = Migrations::new().with_lock("mysql");
    m.add(BASE_NAME, BASE);
    let run = deploy(&m, &db.url);
    assert!(run.ok(), "base deploy: {}\n{}", run.stdout(), run.stderr());
    db.sql(seed);
    db.sql("ANALYZE TABLE `User`, `Post`");
    (db, m)
}

fn predict(url: &str, pending: &[&str]) -> Vec<Finding> {
    let names: Vec<String> = (0..pending.len())
        .map(|i| format!("20240201000{i:03}_pending"))
        .collect();
    let mut scripts = vec![Script {
        migration: BASE_NAME,
        sql: BASE,
        pending: false,
    }];
    scripts.extend(pending.iter().zip(&names).map(|(sql, name)| Script {
        migration: name,
        sql,
        pending: true,
    }));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut conn = sqlx::mysql::MySqlConnection::connect(url)
            .await
            .expect("connect");
        let limits = LiveLimits::default();
        let mut probe = MyProbe::new(&mut conn, limits);
        let findings =
            preflight::check_live(&scripts, &Options::new(Flavor::MySql), &mut probe, &limits)
                .await;
        conn.close().await.expect("close");
        findings
    })
}

#[test]
fn the_mariadb_case_table_predicts_what_deploy_does() {
    let (mut true_fail, mut false_alarm, mut missed, mut true_pass) = (0u32, 0u32, 0u32, 0u32);
    let mut report = Vec::new();
    for c in cases() {
        let (probed, _) = seeded(&format!("pfm_{}", c.tag), c.seed);
        let (twin, m) = seeded(&format!("pfm_{}_twin", c.tag), c.seed);
        let before = probed.sql("CHECKSUM TABLE `User`, `Post`");
        let findings = predict(&probed.url, c.pending);
        // A rehearsal rolled back: the probed database holds what it held.
        assert_eq!(
            probed.sql("CHECKSUM TABLE `User`, `Post`"),
            before,
            "{}",
            c.tag
        );
        let predicted = findings.iter().any(|f| f.will_fail);
        for (i, sql) in c.pending.iter().enumerate() {
            m.add(&format!("20240201000{i:03}_pending"), sql);
        }
        let run = deploy(&m, &twin.url);
        assert!(!run.stdout().contains("P1002"), "{}", run.stdout());
        let failed = !run.ok();
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
            "{:28} predicted {:5} deploy {:5} {}",
            c.tag,
            if predicted { "fail" } else { "ok" },
            if failed { "fail" } else { "ok" },
            unknown.join("; ")
        ));
        match (predicted, failed) {
            (true, true) => true_fail += 1,
            (true, false) => false_alarm += 1,
            (false, true) => missed += 1,
            (false, false) => true_pass += 1,
        }
        if !failed {
            let errors: Vec<&Finding> = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", c.tag);
        }
    }
    let precision = f64::from(true_fail) / f64::from((true_fail + false_alarm).max(1));
    let recall = f64::from(true_fail) / f64::from((true_fail + missed).max(1));
    println!("{}", report.join("\n"));
    println!(
        "MariaDB case table: {true_fail} predicted failures that failed, {false_alarm} false alarms, {missed} missed, {true_pass} predicted passes that passed; precision {precision:.2}, recall {recall:.2}"
    );
    assert_eq!(false_alarm, 0, "{}", report.join("\n"));
    assert!(recall >= 0.95, "{}", report.join("\n"));
}
