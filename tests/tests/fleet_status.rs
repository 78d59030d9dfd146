//! `migrator fleet status --targets FILE` end to end: the real binary reads a fleet of
//! databases on the local PostgreSQL (one up to date, one fresh, one a migration behind, one
//! with a failed migration, one that does not exist) and prints one line per target, a
//! summary, and exits 0 only when every target is up to date. It writes nothing.

use std::path::Path;
use std::process::{Command, Output};

use migrator_e2e::fleet::MIGRATIONS;
use migrator_e2e::{Migrations, PgDb, migrator, migrator_bin, pg_server};
use serde_json::{Value, json};

/// `migrator fleet status --targets FILE --artifact DIR [EXTRA]`, without the environment's
/// database variables.
fn fleet_status(targets: &Path, artifact: &Path, extra: &[&str]) -> Output {
    Command::new(migrator_bin())
        .args(["fleet", "status", "--targets"])
        .arg(targets)
        .arg("--artifact")
        .arg(artifact)
        .args(extra)
        .env_remove("DATABASE_URL")
        .env_remove("MIGRATOR_ARTIFACT")
        .output()
        .expect("migrator runs")
}

fn line(id: &str, url: &str) -> String {
    format!("{}\n", json!({"id": id, "auth": "url", "url": url}))
}

/// Whether `_prisma_migrations` exists in the database.
fn has_history(db: &PgDb) -> bool {
    db.sql("SELECT to_regclass('_prisma_migrations') IS NOT NULL") == "t"
}

#[test]
fn fleet_status_prints_every_target_and_a_summary_and_writes_nothing() {
    let both = Migrations::new().with_lock("postgresql");
    for (name, sql) in MIGRATIONS {
        both.add(name, sql);
    }
    let first = Migrations::new().with_lock("postgresql");
    first.add(MIGRATIONS[0].0, MIGRATIONS[0].1);

    let current = PgDb::fresh("fstat_current");
    let fresh = PgDb::fresh("fstat_fresh");
    let behind = PgDb::fresh("fstat_behind");
    let broken = PgDb::fresh("fstat_broken");
    let deployed = migrator(&["deploy"], both.path(), &current.url);
    assert!(deployed.ok(), "{}", deployed.stderr());
    let deployed = migrator(&["deploy"], first.path(), &behind.url);
    assert!(deployed.ok(), "{}", deployed.stderr());
    // `broken`: the first migration applied, then `orders` made by hand: the second fails.
    let deployed = migrator(&["deploy"], first.path(), &broken.url);
    assert!(deployed.ok(), "{}", deployed.stderr());
    broken.sql("CREATE TABLE orders (id integer PRIMARY KEY);");
    let failed = migrator(&["deploy"], both.path(), &broken.url);
    assert!(!failed.ok(), "the poisoned deploy must fail");
    // A database name no test creates: this process's id and a suffix PgDb never uses.
    let missing = format!(
        "{}/mt_fstat_missing_{}_none",
        pg_server(),
        std::process::id()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let targets = dir.path().join("targets.jsonl");
    let text = [
        line("current", &current.url),
        line("fresh", &fresh.url),
        line("behind", &behind.url),
        line("broken", &broken.url),
        line("missing", &missing),
    ]
    .concat();
    std::fs::write(&targets, text).expect("write the targets");
    let rows_before: Vec<Vec<Value>> = [&current, &behind, &broken]
        .iter()
        .map(|db| db.rows())
        .collect();

    let out = fleet_status(&targets, both.path(), &["--concurrency", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not every target is up to date\n{stdout}\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "five targets and a summary:\n{stdout}");
    let expect = |n: usize, id: &str, rest: &str| {
        let words: Vec<&str> = lines[n].split_whitespace().collect();
        assert_eq!(
            words[..3],
            ["line", &(n + 1).to_string(), id],
            "{}",
            lines[n]
        );
        let tail = words[3..].join(" ");
        assert!(
            tail.starts_with(rest),
            "line {}: {:?} does not start with {rest:?}",
            n + 1,
            lines[n]
        );
    };
    expect(0, "current", "up-to-date");
    expect(1, "fresh", "planned (2 pending)");
    expect(2, "behind", "planned (1 pending)");
    expect(3, "broken", "blocked: P3009");
    expect(4, "missing", "failed: P1003");
    assert!(lines[4].contains("does not exist"), "{}", lines[4]);
    assert_eq!(
        lines[5], "5 targets: 1 blocked, 1 failed, 2 planned, 1 up-to-date",
        "{stdout}"
    );
    assert!(
        stderr.contains("5/5 targets read"),
        "the progress line: {stderr}"
    );

    // Read-only: nothing created in the fresh database, no history row changed anywhere,
    // and the missing database was not created.
    assert!(!has_history(&fresh), "fleet status wrote to {}", fresh.name);
    assert!(fresh.tables().is_empty(), "{:?}", fresh.tables());
    let rows_after: Vec<Vec<Value>> = [&current, &behind, &broken]
        .iter()
        .map(|db| db.rows())
        .collect();
    assert_eq!(rows_before, rows_after, "fleet status changed a history");
    assert_eq!(
        current.sql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = 'mt_fstat_missing_{}_none'",
            std::process::id()
        )),
        "0"
    );

    // --json: one outcome a line, each naming its target.
    let out = fleet_status(&targets, both.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let docs: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let seen: Vec<(i64, &str, &str)> = docs
        .iter()
        .map(|d| {
            (
                d["target"]["line"].as_i64().unwrap_or(0),
                d["target"]["id"].as_str().unwrap_or_default(),
                d["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "current", "up-to-date"),
            (2, "fresh", "planned"),
            (3, "behind", "planned"),
            (4, "broken", "blocked"),
            (5, "missing", "failed"),
        ]
    );
    assert_eq!(docs[2]["pending"].as_array().map(Vec::len), Some(1));

    // Every target up to date: exit 0.
    let deployed = migrator(&["deploy"], both.path(), &behind.url);
    assert!(deployed.ok(), "{}", deployed.stderr());
    let only_current = dir.path().join("current.jsonl");
    std::fs::write(
        &only_current,
        [line("current", &current.url), line("behind", &behind.url)].concat(),
    )
    .expect("write the targets");
    let out = fleet_status(&only_current, both.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("2 targets: 2 up-to-date"));
}

#[test]
fn fleet_status_refuses_a_bad_target_line_before_reading_any_target() {
    let both = Migrations::new().with_lock("postgresql");
    for (name, sql) in MIGRATIONS {
        both.add(name, sql);
    }
    let db = PgDb::fresh("fstat_bad");
    let dir = tempfile::tempdir().expect("temp dir");
    let targets = dir.path().join("targets.jsonl");
    std::fs::write(
        &targets,
        format!(
            "{}{}\n",
            line("t01", &db.url),
            json!({"id": "t02", "auth": "url", "url": db.url, "port": 5432})
        ),
    )
    .expect("write the targets");
    let out = fleet_status(&targets, both.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an input error, not a status: {stderr}"
    );
    assert!(
        stderr.contains("targets line 2 (t02): port: not used with auth=url"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!has_history(&db));
}
