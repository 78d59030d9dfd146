//! Who is in the way (issue 13 item 7): a deploy that times out on the migration lock (P1002)
//! or on a table lock names the PostgreSQL session holding it, in the outcome's `blockers`
//! and in its warnings.

use std::process::{Child, Command, Stdio};

use migrator_e2e::{Migrations, PgDb, migrator, wait_until};
use migrator_engine::dialect::postgres::ADVISORY_LOCK_KEY;
use serde_json::Value;

/// A `psql` session named `app` that runs `commands` in order and then sleeps an hour
/// (killed when dropped).
struct Session(Child);

impl Session {
    fn start(url: &str, app: &str, commands: &[&str]) -> Session {
        let mut psql = Command::new("psql");
        psql.env("PGAPPNAME", app).args([url, "-qAtX"]);
        for command in commands {
            psql.args(["-c", command]);
        }
        let child = psql
            .args(["-c", "SELECT pg_sleep(3600)"])
            .stdout(Stdio::null())
            .spawn()
            .expect("psql starts");
        Session(child)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The pid of the session called `app` once it holds a granted lock matching `lock`.
fn holder_pid(db: &PgDb, app: &str, lock: &str) -> String {
    let query = format!(
        "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = '{app}' AND l.granted AND {lock} LIMIT 1"
    );
    wait_until(&format!("{app}'s lock"), || !db.sql(&query).is_empty());
    db.sql(&query)
}

fn blockers(outcome: &Value) -> Vec<Value> {
    outcome["blockers"].as_array().cloned().unwrap_or_default()
}

fn warnings(outcome: &Value) -> Vec<String> {
    outcome["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|w| w.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn p1002_names_the_session_holding_the_migration_lock() {
    let db = PgDb::fresh("holder_advisory");
    let m = Migrations::new().with_lock("postgresql");
    m.add("20240101000000_init", "CREATE TABLE users (id int);\n");
    let lock = format!("SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})");
    let _holder = Session::start(&db.url, "lock_holder_e2e", &[&lock]);
    let pid = holder_pid(
        &db,
        "lock_holder_e2e",
        &format!("l.locktype = 'advisory' AND l.objid = {ADVISORY_LOCK_KEY}"),
    );

    let run = migrator(&["deploy", "--lock-timeout", "1s"], m.path(), &db.url);
    assert_eq!(run.error_code(), "P1002", "{}", run.stdout());
    let listed = blockers(&run.json);
    let first = listed.first().expect("the holder is listed");
    assert_eq!(first["pid"].as_i64(), pid.parse().ok(), "{}", run.stdout());
    assert_eq!(first["holds"], "migration lock");
    assert_eq!(first["applicationName"], "lock_holder_e2e");
    let named = format!("The migration lock is held by pid {pid} (app `lock_holder_e2e`");
    assert!(
        warnings(&run.json).iter().any(|w| w.starts_with(&named)),
        "{}",
        run.stdout()
    );
    assert!(!db.tables().contains(&"users".to_string()));
}

#[test]
fn a_table_lock_timeout_names_the_session_holding_the_table() {
    let db = PgDb::fresh("holder_table");
    let m = Migrations::new().with_lock("postgresql");
    m.add("20240101000000_init", "CREATE TABLE users (id int);\n");
    let first_deploy = migrator(&["deploy"], m.path(), &db.url);
    assert!(first_deploy.ok(), "{}", first_deploy.stdout());
    m.add(
        "20240102000000_add_name",
        "ALTER TABLE users ADD COLUMN name text;\n",
    );
    let _holder = Session::start(
        &db.url,
        "lock_holder_table",
        &["BEGIN", "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"],
    );
    let pid = holder_pid(
        &db,
        "lock_holder_table",
        "l.relation = 'users'::regclass AND l.mode = 'AccessExclusiveLock'",
    );

    let run = migrator(
        &["deploy", "--statement-lock-timeout", "300ms"],
        m.path(),
        &db.url,
    );
    assert_eq!(run.status(), "blocked", "{}", run.stdout());
    assert!(
        run.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("could not get a table lock")),
        "{}",
        run.stdout()
    );
    assert!(
        run.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("(held by pid {pid}"))),
        "the error names the holder: {}",
        run.stdout()
    );
    let who = format!("pid {pid} (app `lock_holder_table`");
    let said = warnings(&run.json);
    let retries: Vec<&String> = said
        .iter()
        .filter(|w| w.contains("timed out waiting for a table lock"))
        .collect();
    assert!(!retries.is_empty(), "{}", run.stdout());
    for retry in &retries {
        assert!(
            retry.contains(&format!("The lock was held by {who}")),
            "{retry}"
        );
    }
    assert!(
        said.iter()
            .any(|w| w.starts_with(&format!("The table lock was held by {who}"))),
        "{}",
        run.stdout()
    );
    let listed = blockers(&run.json);
    assert!(
        listed.iter().any(|b| b["pid"].as_i64() == pid.parse().ok()
            && b["holds"] == "users"
            && b["mode"] == "AccessExclusiveLock"),
        "{}",
        run.stdout()
    );
    let columns = db.sql(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'name'",
    );
    assert_eq!(columns, "0", "nothing of the migration was applied");
}
