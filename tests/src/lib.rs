//! Shared harness for the end-to-end tests: fresh PostgreSQL databases, migration folders
//! and zips written on the fly, the real `migrator` binary and the real Prisma CLI oracle.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The PostgreSQL server the tests use (`MIGRATOR_TEST_PG`), without a database name.
pub fn pg_server() -> String {
    std::env::var("MIGRATOR_TEST_PG")
        .unwrap_or_else(|_| "postgresql://postgres:postgres@127.0.0.1:5432".into())
}

/// How long a test waits for something that must happen (a process reaching a state, a lock
/// being granted) before it fails. Generous on purpose: on a loaded 2-core machine a step can
/// take tens of seconds, and only a broken run ever waits this long, so the length costs a
/// passing run nothing. `MIGRATOR_TEST_PATIENCE` (seconds) overrides the default 180.
pub fn patience() -> Duration {
    std::env::var("MIGRATOR_TEST_PATIENCE")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(180))
}

/// Polls `ready` every 50 ms until it is true; fails naming `what` after [`patience`].
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    let limit = patience();
    while !ready() {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `migrator` binary under test (`MIGRATOR_BIN`, or the workspace's debug build).
pub fn migrator_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("MIGRATOR_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"));
    let bin = target.join("debug").join("migrator");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p migrator` first (make test does)",
        bin.display()
    );
    bin
}

/// A database created for one test and dropped when it goes out of scope.
pub struct PgDb {
    pub name: String,
    pub url: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl PgDb {
    pub fn fresh(tag: &str) -> PgDb {
        let name = format!(
            "mt_{}_{}_{}",
            tag.to_ascii_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        psql_admin(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        psql_admin(&format!("CREATE DATABASE \"{name}\""));
        let url = format!("{}/{name}", pg_server());
        PgDb { name, url }
    }

    /// Runs SQL and returns psql's unaligned output (`|`-separated, one row a line).
    pub fn sql(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }

    /// `_prisma_migrations` rows as maps, ordered by started_at.
    pub fn rows(&self) -> Vec<Value> {
        let json = self.sql(
            "SELECT coalesce(json_agg(r ORDER BY r.started_at, r.migration_name), '[]') FROM (SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count FROM _prisma_migrations) r",
        );
        let value: Value = serde_json::from_str(json.trim()).expect("rows as JSON");
        value.as_array().cloned().unwrap_or_default()
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

    pub fn tables(&self) -> Vec<String> {
        self.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &format!("{}/postgres", pg_server()),
                "-qAtX",
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ])
            .output();
    }
}

pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql `{sql}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

fn psql_admin(sql: &str) {
    psql(&format!("{}/postgres", pg_server()), sql);
}

/// A migrations folder written for one test.
pub struct Migrations {
    dir: tempfile::TempDir,
}

impl Default for Migrations {
    fn default() -> Self {
        Migrations::new()
    }
}

impl Migrations {
    pub fn new() -> Migrations {
        Migrations {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `provider = "…"` in migration_lock.toml, as Prisma writes it.
    pub fn with_lock(self, provider: &str) -> Migrations {
        std::fs::write(
            self.dir.path().join("migration_lock.toml"),
            format!("# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = \"{provider}\"\n"),
        )
        .expect("write lock file");
        self
    }

    pub fn add(&self, name: &str, sql: &str) -> &Migrations {
        self.add_bytes(name, sql.as_bytes())
    }

    pub fn add_bytes(&self, name: &str, bytes: &[u8]) -> &Migrations {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("migration dir");
        std::fs::write(dir.join("migration.sql"), bytes).expect("migration.sql");
        self
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_dir_all(self.dir.path().join(name)).expect("remove migration");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The folder zipped as `prisma/migrations/…` (a deploy artifact).
    pub fn zip(&self, out: &Path) {
        let file = std::fs::File::create(out).expect("zip file");
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default();
        for entry in walk(self.dir.path()) {
            let rel = entry
                .strip_prefix(self.dir.path())
                .expect("under dir")
                .to_string_lossy()
                .replace('\\', "/");
            zip.start_file(format!("prisma/migrations/{rel}"), options)
                .expect("zip entry");
            zip.write_all(&std::fs::read(&entry).expect("read"))
                .expect("zip write");
        }
        zip.finish().expect("zip finish");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// What a `migrator` run printed, with the outcome parsed when `--json` was given.
pub struct Run {
    pub output: Output,
    pub json: Value,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.output.status.success()
    }
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub fn status(&self) -> &str {
        self.json["status"].as_str().unwrap_or("")
    }
    pub fn error_code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
    pub fn names(&self, field: &str) -> Vec<String> {
        self.json[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

/// Runs `migrator ARGS --artifact ARTIFACT --database-url URL --json`.
pub fn migrator(args: &[&str], artifact: &Path, url: &str) -> Run {
    let output = Command::new(migrator_bin())
        .args(args)
        .arg("--artifact")
        .arg(artifact)
        .args(["--database-url", url, "--json"])
        .env_remove("DATABASE_URL")
        .env_remove("PRISMA_SCHEMA_DISABLE_ADVISORY_LOCK")
        .output()
        .expect("migrator runs");
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    Run { output, json }
}

/// The Prisma CLI oracle's wrapper: `PRISMA_ORACLE`, else `tests/oracle/prisma.sh` (which
/// installs the pinned CLI on its first call).
pub fn prisma_script() -> PathBuf {
    std::env::var("PRISMA_ORACLE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("tests/oracle/prisma.sh"))
}

/// The real Prisma CLI (offline oracle) with the migrations folder `dir`.
pub fn prisma(args: &[&str], dir: &Path, url: &str) -> Output {
    Command::new("bash")
        .arg(prisma_script())
        .arg("--migrations")
        .arg(dir)
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .expect("the Prisma oracle runs")
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
pub mod local_aws;
pub mod mariadb;
pub mod stage;
