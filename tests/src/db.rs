//! One harness for the database servers the suites run against: a [`Db`] is a throwaway
//! database on PostgreSQL ([`PgDb`]) or MySQL / MariaDB ([`MyDb`]), created fresh for one test,
//! queried through the server's own client (`psql`, `mariadb`), and dropped when it goes out
//! of scope. What differs between the servers (the client, the SQL that lists tables or reads
//! `_prisma_migrations`, how a result row prints) is an [`Engine`]; the rest is written once.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::mariadb;
use crate::{pg_server, psql};

/// A database server the tests create databases on.
pub trait Engine: Sized + 'static {
    /// `provider` in Prisma's migration_lock.toml.
    const PROVIDER: &'static str;
    /// Between two columns of a result row as [`Db::sql`] returns it.
    const SEPARATOR: &'static str;
    /// Quotes an identifier (keeping its case).
    const QUOTE: char;

    /// The server URL without a database name.
    fn server() -> String;
    /// Creates the database `name`, first dropping one left over by an earlier run.
    fn create(name: &str);
    /// Drops the database `name`; never fails (it runs while dropping a [`Db`]).
    fn drop_quietly(name: &str);
    /// Runs SQL in the database; the client's raw rows, one a line.
    fn sql(db: &Db<Self>, sql: &str) -> String;
    /// `_prisma_migrations` rows as JSON objects, ordered by started_at then name.
    fn rows(db: &Db<Self>) -> Vec<Value>;
    /// The SQL that lists the tables of the database's default schema, sorted.
    fn tables_sql(db: &Db<Self>) -> String;
    /// Held for as long as a database lives, where tests of this engine must run one at a time.
    fn serial() -> Option<Serial> {
        None
    }
}

/// PostgreSQL (`MIGRATOR_TEST_PG`), through `psql`.
pub struct Postgres;

/// MySQL / MariaDB (`MIGRATOR_TEST_MYSQL`), through the `mariadb` (or `mysql`) client.
pub struct MySql;

/// A database created for one test and dropped when it goes out of scope.
pub struct Db<E: Engine> {
    pub name: String,
    pub url: String,
    _serial: Option<Serial>,
    _engine: PhantomData<E>,
}

pub type PgDb = Db<Postgres>;
pub type MyDb = Db<MySql>;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl<E: Engine> Db<E> {
    /// A new, empty database named after `tag`, this process and a counter.
    pub fn fresh(tag: &str) -> Db<E> {
        let serial = E::serial();
        let name = format!(
            "mt_{}_{}_{}",
            tag.to_ascii_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        E::create(&name);
        let mut db = Db::adopt(name);
        db._serial = serial;
        db
    }

    /// Takes over the existing database `name` (made by the test): dropped with the value.
    pub fn adopt(name: String) -> Db<E> {
        Db {
            url: format!("{}/{name}", E::server()),
            name,
            _serial: None,
            _engine: PhantomData,
        }
    }

    /// Runs SQL and returns the client's output: one row a line, columns joined by
    /// [`Engine::SEPARATOR`].
    pub fn sql(&self, sql: &str) -> String {
        E::sql(self, sql)
    }

    /// `name` quoted as an identifier.
    pub fn quoted(name: &str) -> String {
        format!("{q}{name}{q}", q = E::QUOTE)
    }

    /// One result row as [`Db::sql`] prints it.
    pub fn row(columns: &[&str]) -> String {
        columns.join(E::SEPARATOR)
    }

    /// `_prisma_migrations` rows as maps, ordered by started_at.
    pub fn rows(&self) -> Vec<Value> {
        E::rows(self)
    }

    /// The tables of the default schema, sorted.
    pub fn tables(&self) -> Vec<String> {
        self.sql(&E::tables_sql(self))
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl<E: Engine> Drop for Db<E> {
    fn drop(&mut self) {
        E::drop_quietly(&self.name);
    }
}

impl Engine for Postgres {
    const PROVIDER: &'static str = "postgresql";
    const SEPARATOR: &'static str = "|";
    const QUOTE: char = '"';

    fn server() -> String {
        pg_server()
    }

    fn create(name: &str) {
        let admin = format!("{}/postgres", pg_server());
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        );
        psql(&admin, &format!("CREATE DATABASE \"{name}\""));
    }

    fn drop_quietly(name: &str) {
        let _ = Command::new("psql")
            .args([
                &format!("{}/postgres", pg_server()),
                "-qAtX",
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            ])
            .output();
    }

    fn sql(db: &PgDb, sql: &str) -> String {
        psql(&db.url, sql)
    }

    fn rows(db: &PgDb) -> Vec<Value> {
        let json = db.sql(
            "SELECT coalesce(json_agg(r ORDER BY r.started_at, r.migration_name), '[]') FROM (SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count FROM _prisma_migrations) r",
        );
        let value: Value = serde_json::from_str(json.trim()).expect("rows as JSON");
        value.as_array().cloned().unwrap_or_default()
    }

    fn tables_sql(_: &PgDb) -> String {
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1".into()
    }
}

/// `pg_locks` lists the locks of every database on the server: this keeps one database's.
const THIS_DATABASE: &str =
    "database = (SELECT oid FROM pg_database WHERE datname = current_database())";

impl PgDb {
    /// Whether a session holds the advisory lock `key` (below 2^32) on this database (not on
    /// another test's).
    pub fn advisory_lock_held(&self, key: i64) -> bool {
        self.sql(&format!(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {key} AND granted AND {THIS_DATABASE}"
        )) == "1"
    }

    /// A `psql` session (`application_name` = `app`) that takes the advisory lock `key` on this
    /// database, then sleeps for `hold`. The caller waits for [`PgDb::advisory_lock_held`] and
    /// ends the session.
    pub fn advisory_lock_session(&self, key: i64, hold: Duration, app: &str) -> Child {
        Command::new("psql")
            .args([
                self.url.as_str(),
                "-qAtX",
                "-c",
                &format!("SELECT pg_advisory_lock({key})"),
                "-c",
                &format!("SELECT pg_sleep({})", hold.as_secs()),
            ])
            .env("PGAPPNAME", app)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("psql starts")
    }

    /// Ends the server sessions that hold or wait for the advisory lock `key` on this database.
    pub fn terminate_advisory_lock_sessions(&self, key: i64) {
        self.sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = {key} AND {THIS_DATABASE}"
        ));
    }

    /// The schema as pg_dump sees it, without the bookkeeping rows (for before/after comparisons).
    pub fn schema_dump(&self) -> String {
        let out = Command::new("pg_dump")
            .args(["--schema-only", "--no-owner", "--no-privileges", &self.url])
            .output()
            .expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                !l.starts_with("--")
                    && !l.starts_with("\\restrict")
                    && !l.starts_with("\\unrestrict")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `GET_LOCK` names are server-wide, so the MySQL tests run one at a time, across processes
/// too (other suites, other checkouts on the same machine): every [`MyDb`] holds an exclusive
/// `flock` on this file while it lives.
fn serial_file() -> std::path::PathBuf {
    std::env::temp_dir().join("migrator-e2e-mariadb.lock")
}

thread_local! {
    /// The locked file while this thread holds it, and how many databases hold it here.
    static HELD: RefCell<(usize, Option<std::fs::File>)> = const { RefCell::new((0, None)) };
}

/// A share of the MySQL serial lock: the first on a thread takes the lock (opening the file
/// on its own, so two threads of one process exclude each other as two processes do), the
/// last one dropped releases it, so one test may hold two databases at once. Not `Send`: it
/// is released on the thread that took it.
pub struct Serial(PhantomData<std::sync::MutexGuard<'static, ()>>);

impl Serial {
    /// Takes the lock (waiting for any other test, in any process, that holds it).
    pub fn take() -> Serial {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if held.0 == 0 {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(serial_file())
                    .expect("the MariaDB test lock file opens");
                file.lock().expect("the MariaDB test lock is taken");
                held.1 = Some(file);
            }
            held.0 += 1;
        });
        Serial(PhantomData)
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            held.0 -= 1;
            if held.0 == 0 {
                // Closing the file releases the lock.
                held.1 = None;
            }
        });
    }
}

impl Engine for MySql {
    const PROVIDER: &'static str = "mysql";
    const SEPARATOR: &'static str = "\t";
    const QUOTE: char = '`';

    fn server() -> String {
        mariadb::server()
    }

    fn create(name: &str) {
        mariadb::sql_in(
            None,
            &format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`"),
        );
    }

    fn drop_quietly(name: &str) {
        let _ = mariadb::client()
            .args(["-e", &format!("DROP DATABASE IF EXISTS `{name}`")])
            .output();
    }

    fn sql(db: &MyDb, sql: &str) -> String {
        mariadb::sql_in(Some(&db.name), sql)
    }

    fn rows(db: &MyDb) -> Vec<Value> {
        db.sql(
            "SELECT JSON_OBJECT('id', id, 'checksum', checksum, 'finished_at', finished_at, 'migration_name', migration_name, 'logs', logs, 'rolled_back_at', rolled_back_at, 'started_at', started_at, 'applied_steps_count', applied_steps_count) FROM _prisma_migrations ORDER BY started_at, migration_name",
        )
        .lines()
        .map(|l| serde_json::from_str(l).expect("a row as JSON"))
        .collect()
    }

    fn tables_sql(db: &MyDb) -> String {
        format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{}' ORDER BY 1",
            db.name
        )
    }

    fn serial() -> Option<Serial> {
        Some(Serial::take())
    }
}
