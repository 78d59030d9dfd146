//! The MariaDB / MySQL client side of the harness (`MIGRATOR_TEST_MYSQL`, default
//! `mysql://root@127.0.0.1:3306`): the server URL and the `mariadb` client. Fresh databases
//! are [`crate::MyDb`].

use std::process::Command;

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

pub fn is_mariadb() -> bool {
    sql_in(None, "SELECT VERSION()")
        .to_ascii_lowercase()
        .contains("mariadb")
}
