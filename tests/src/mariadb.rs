//! The MariaDB / MySQL side of the harness (`MIGRATOR_TEST_MYSQL`, default
//! `mysql://root@127.0.0.1:3306`): fresh databases and the `mariadb` client.
//!
//! `GET_LOCK` names are server-wide, so the tests that use it run one at a time: a
//! [`MyDb`] holds the process-wide serial lock while it lives.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The server URL without a database.
pub fn server() -> String {
    std::env::var("MIGRATOR_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
        .trim_end_matches('/')
        .to_string()
}

/// `mariadb` (or `mysql`) client arguments for the server URL.
fn client_args() -> Vec<String> {
    let url = server();
    let rest = url.trim_start_matches("mysql://");
    let (auth, addr) = rest.rsplit_once('@').unwrap_or(("root", rest));
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (host, port) = addr.split_once(':').unwrap_or((addr, "3306"));
    let mut args = vec![
        format!("-h{host}"),
        format!("-P{port}"),
        format!("-u{user}"),
        "--protocol=tcp".into(),
    ];
    if !password.is_empty() {
        args.push(format!("-p{password}"));
    }
    args
}

pub fn client() -> Command {
    let bin = if Command::new("mariadb").arg("--version").output().is_ok() {
        "mariadb"
    } else {
        "mysql"
    };
    let mut cmd = Command::new(bin);
    cmd.args(client_args());
    cmd
}

/// Runs SQL (in `database` when given); returns raw tab-separated rows.
pub fn sql_in(database: Option<&str>, sql: &str) -> String {
    let mut cmd = client();
    cmd.args(["-B", "-N", "-r"]);
    if let Some(db) = database {
        cmd.arg(db);
    }
    let out = cmd
        .args(["-e", sql])
        .output()
        .expect("the mariadb client runs");
    assert!(
        out.status.success(),
        "`{sql}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// A database created for one test and dropped when it goes out of scope; holds the
/// suite's serial lock.
pub struct MyDb {
    pub name: String,
    pub url: String,
    _serial: MutexGuard<'static, ()>,
}

impl MyDb {
    pub fn fresh(tag: &str) -> MyDb {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!(
            "mt_{tag}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        sql_in(
            None,
            &format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`"),
        );
        let url = format!("{}/{name}", server());
        MyDb {
            name,
            url,
            _serial: serial,
        }
    }

    pub fn sql(&self, sql: &str) -> String {
        sql_in(Some(&self.name), sql)
    }

    /// `_prisma_migrations` rows as JSON objects, ordered like Prisma reads them.
    pub fn rows(&self) -> Vec<Value> {
        self.sql(
            "SELECT JSON_OBJECT('id', id, 'checksum', checksum, 'finished_at', finished_at, 'migration_name', migration_name, 'logs', logs, 'rolled_back_at', rolled_back_at, 'started_at', started_at, 'applied_steps_count', applied_steps_count) FROM _prisma_migrations ORDER BY started_at, migration_name",
        )
        .lines()
        .map(|l| serde_json::from_str(l).expect("a row as JSON"))
        .collect()
    }

    pub fn tables(&self) -> Vec<String> {
        self.sql(&format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{}' ORDER BY 1",
            self.name
        ))
        .lines()
        .map(str::to_string)
        .collect()
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let _ = client()
            .args(["-e", &format!("DROP DATABASE IF EXISTS `{}`", self.name)])
            .output();
    }
}

pub fn is_mariadb() -> bool {
    sql_in(None, "SELECT VERSION()")
        .to_ascii_lowercase()
        .contains("mariadb")
}
