//! The scenarios the PostgreSQL and MySQL suites share, written once over [`Engine`]. Each
//! takes the server's version of Prisma's two-migration User/Post history ([`Schema`]),
//! asserts what both servers must do alike, and hands back what a suite needs to add the
//! checks only its server has.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use migrator_engine::checksum::sha256_hex;
use serde_json::Value;

use crate::{Db, Engine, Migrations, Run, migrator, migrator_bin};

pub const INIT_NAME: &str = "20240101000000_init";
pub const POSTS_NAME: &str = "20240102000000_posts";

/// Prisma's DDL for the User/Post schema on one server: `init` creates User (with its enum),
/// `posts` creates Post with a foreign key to it.
pub struct Schema {
    pub init: &'static str,
    pub posts: &'static str,
}

impl Schema {
    /// Both migrations, with the engine's lock file.
    pub fn two_migrations<E: Engine>(&self) -> Migrations {
        let m = Migrations::new().with_lock(E::PROVIDER);
        m.add(INIT_NAME, self.init);
        m.add(POSTS_NAME, self.posts);
        m
    }
}

/// An id as Prisma writes it: a lower-case UUID v4.
pub fn is_uuid_v4(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            14 => c == '4',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// A deploy to an empty database applies both migrations in order, in `mode`, and writes the
/// rows Prisma writes. Returns the database.
pub fn deploy_applies_in_order_and_writes_prismas_rows<E: Engine>(
    schema: &Schema,
    mode: &str,
) -> Db<E> {
    let db = Db::<E>::fresh("deploy");
    let m = schema.two_migrations::<E>();
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(run.ok(), "{}{}", run.stdout(), run.stderr());
    assert_eq!(run.status(), "applied");
    assert_eq!(run.names("applied"), [INIT_NAME, POSTS_NAME]);
    assert_eq!(run.json["schemaVersion"], 1);
    assert_eq!(run.json["database"]["engine"], E::PROVIDER);
    assert!(run.json["database"].get("password").is_none());
    assert_eq!(run.json["applied"][0]["execution"]["mode"], mode);

    let rows = db.rows();
    assert_eq!(rows.len(), 2);
    for (row, script) in rows.iter().zip([schema.init, schema.posts]) {
        assert!(is_uuid_v4(row["id"].as_str().unwrap_or_default()), "{row}");
        assert_eq!(row["checksum"], Value::from(sha256_hex(script.as_bytes())));
        assert_eq!(row["applied_steps_count"], 1);
        assert!(row["logs"].is_null());
        assert!(row["rolled_back_at"].is_null());
        assert!(!row["finished_at"].is_null());
    }
    assert!(db.tables().contains(&"Post".to_string()));
    db
}

/// A second deploy of the same history is up to date, writes nothing, and status agrees.
pub fn second_deploy_is_up_to_date_and_writes_nothing<E: Engine>(schema: &Schema) {
    let db = Db::<E>::fresh("noop");
    let m = schema.two_migrations::<E>();
    assert!(migrator(&["deploy"], m.path(), &db.url).ok());
    let rows = db.rows();
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert!(run.ok());
    assert_eq!(run.status(), "up-to-date");
    assert!(run.names("applied").is_empty());
    assert_eq!(db.rows(), rows);
    assert!(migrator(&["status"], m.path(), &db.url).ok());
}

/// Deploys the two migrations, then `failing` (name, SQL) that fails, then one more that must
/// stay pending: the outcome is `failed` with P3018 and names all three groups.
pub fn deploy_with_a_failing_migration<E: Engine>(
    schema: &Schema,
    failing: (&str, &str),
) -> (Db<E>, Migrations, Run) {
    let db = Db::<E>::fresh("fail");
    let m = schema.two_migrations::<E>();
    m.add(failing.0, failing.1);
    let after = format!("CREATE TABLE {} (id int);\n", Db::<E>::quoted("After"));
    m.add("20240104000000_after", &after);
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.code(), 1);
    assert_eq!(run.status(), "failed");
    assert_eq!(run.error_code(), "P3018");
    assert_eq!(run.names("applied"), [INIT_NAME, POSTS_NAME]);
    assert_eq!(run.names("failed"), [failing.0]);
    assert_eq!(run.names("pending"), ["20240104000000_after"]);
    (db, m, run)
}

/// After [`deploy_with_a_failing_migration`]: the failed row is Prisma's (not finished, not
/// rolled back, no steps, Prisma's log header), and a deploy is now refused with P3009, shows
/// how to recover, and writes nothing. Returns the failed row's logs and the refused run.
pub fn a_failed_row_blocks_deploys_with_p3009<E: Engine>(
    db: &Db<E>,
    m: &Migrations,
    failed: &str,
) -> (String, Run) {
    let rows = db.rows();
    let row = rows
        .iter()
        .find(|r| r["migration_name"] == failed)
        .unwrap_or_else(|| panic!("no row for {failed} in {rows:?}"));
    assert!(row["finished_at"].is_null());
    assert!(row["rolled_back_at"].is_null());
    assert_eq!(row["applied_steps_count"], 0);
    let logs = row["logs"].as_str().unwrap_or_default().to_string();
    assert!(logs.starts_with("A migration failed to apply. New migrations cannot be applied before the error is recovered from."), "{logs}");

    // Now every write is refused with P3009, and the logs are shown (Prisma hides them).
    let blocked = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(blocked.code(), 1);
    assert_eq!(blocked.status(), "blocked");
    assert_eq!(blocked.error_code(), "P3009");
    assert!(
        blocked.json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("The `{failed}` migration started at")),
        "{}",
        blocked.stdout()
    );
    assert!(
        blocked.json["error"]["hint"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("resolve --rolled-back {failed}")),
        "{}",
        blocked.stdout()
    );
    assert_eq!(db.rows(), rows, "refusals write nothing");
    (logs, blocked)
}

/// A failed migration resolved as rolled back, then fixed, is applied as a new row; status
/// compares with the newest row, so the old checksum is no false "edited".
pub fn resolve_rolled_back_then_deploy_applies_the_fixed_migration_as_a_new_row<E: Engine>(
    schema: &Schema,
) {
    let db = Db::<E>::fresh("rollback");
    let m = schema.two_migrations::<E>();
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
    assert_eq!(resolved.json["resolved"]["as"], "rolled-back");
    let fixed = format!("CREATE TABLE {} (id int);\n", Db::<E>::quoted("Fixed"));
    m.add("20240103000000_fix", &fixed);
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
    assert_eq!(status.json["drift"]["edited"], Value::Array(vec![]));
}

/// A database that already holds the schema is refused (P3005) until the first migration is
/// resolved as applied (a baseline row); then deploy applies the rest.
pub fn resolve_applied_baselines_a_non_empty_database<E: Engine>(schema: &Schema) {
    let db = Db::<E>::fresh("baseline");
    db.sql(schema.init);
    let m = schema.two_migrations::<E>();
    let refused = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(refused.error_code(), "P3005", "{}", refused.stdout());
    assert_eq!(refused.status(), "blocked");
    assert!(!db.tables().contains(&"_prisma_migrations".to_string()));

    let run = migrator(&["resolve", "--applied", INIT_NAME], m.path(), &db.url);
    assert!(run.ok(), "{}", run.stdout());
    let rows = db.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["logs"], "");
    assert_eq!(rows[0]["applied_steps_count"], 0);
    assert_eq!(rows[0]["started_at"], rows[0]["finished_at"]);
    assert_eq!(
        rows[0]["checksum"],
        Value::from(sha256_hex(schema.init.as_bytes()))
    );

    let deploy = migrator(&["deploy"], m.path(), &db.url);
    assert!(deploy.ok(), "{}", deploy.stdout());
    assert_eq!(deploy.names("applied"), [POSTS_NAME]);
}

/// A lock file naming `other` (not this engine's provider) is rejected with P3019 before
/// the database is touched: not even `_prisma_migrations` is created.
pub fn a_lock_file_for_another_provider_is_rejected_with_p3019<E: Engine>(other: &str) {
    let db = Db::<E>::fresh("provider");
    let m = Migrations::new().with_lock(other);
    m.add("1_init", "CREATE TABLE a (id int);");
    let run = migrator(&["deploy"], m.path(), &db.url);
    assert_eq!(run.error_code(), "P3019", "{}", run.stdout());
    assert_eq!(run.status(), "rejected");
    assert!(db.tables().is_empty(), "no _prisma_migrations either");
}

/// While `holder` (a session the test started, already granted Prisma's migration lock on
/// `db`'s server) sleeps, a deploy with `--lock-timeout 1s` ends by itself with P1002 and
/// applies nothing. `holder` is killed and reaped. Returns the run.
pub fn a_held_lock_times_out_with_p1002_and_applies_nothing<E: Engine>(
    schema: &Schema,
    db: &Db<E>,
    mut holder: Child,
) -> Run {
    let started = Instant::now();
    let run = migrator(
        &["deploy", "--lock-timeout", "1s"],
        schema.two_migrations::<E>().path(),
        &db.url,
    );
    let waited = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(run.error_code(), "P1002", "{}", run.stdout());
    assert_eq!(run.status(), "blocked");
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
    run
}

/// Eight deploys of 20 migrations (each ending with `pause`, a short sleep in the engine's
/// SQL) started at once: every migration is applied by exactly one of them.
pub fn eight_concurrent_deploys_apply_each_migration_exactly_once<E: Engine>(pause: &str) {
    let db = Db::<E>::fresh("concurrent");
    let m = Migrations::new().with_lock(E::PROVIDER);
    for i in 0..20 {
        m.add(
            &format!("2024010100{i:04}_m{i}"),
            &format!("CREATE TABLE t{i} (id int); {pause}"),
        );
    }
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(migrator_bin())
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
                .expect("migrator starts")
        })
        .collect();
    let mut applied_total = 0;
    for child in children {
        let out = child.wait_with_output().expect("migrator ends");
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert!(out.status.success(), "{json}");
        applied_total += json["applied"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(
        applied_total, 20,
        "every migration applied by exactly one process"
    );
    assert_eq!(
        db.sql("SELECT COUNT(*), COUNT(DISTINCT migration_name), COUNT(finished_at) FROM _prisma_migrations"),
        Db::<E>::row(&["20", "20", "20"])
    );
}

/// A history of 1,000 migrations applies; the next deploy is a no-op that does not hang.
pub fn a_thousand_migration_history_applies_and_then_is_a_fast_no_op<E: Engine>() {
    let db = Db::<E>::fresh("thousand");
    let m = Migrations::new().with_lock(E::PROVIDER);
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
