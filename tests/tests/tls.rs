//! `migrator deploy` over TLS against throwaway PostgreSQL servers started by the test: one with
//! `ssl=on` and a certificate from a CA made here with the `openssl` CLI, one with `ssl=off`.
//!
//! Needs the `openssl` CLI, the PostgreSQL server binaries (`initdb`, `pg_ctl`; found with
//! `pg_config --bindir`, under /usr/lib/postgresql/*/bin, or in `MIGRATOR_TEST_PG_BINDIR`) and `psql`.
//! When run as root, PostgreSQL runs as the `postgres` user (`runuser`). Linux: the wrong-host case
//! connects to 127.0.0.2, another loopback address.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use migrator_e2e::{Migrations, Run, migrator};

// ---------------------------------------------------------------------------------------------
// What the error messages must say. The connection-error mapping in
// shared/src/dialect/postgres.rs produces these phrases; keep the two in step.
// ---------------------------------------------------------------------------------------------

/// Wrong CA (rustls `CertificateError::UnknownIssuer`). sqlx's raw text:
/// "error communicating with database: invalid peer certificate: UnknownIssuer".
const UNTRUSTED_CA: &str =
    "the server's TLS certificate is not signed by a trusted CA (unknown issuer)";

/// Wrong host name (rustls `NotValidForName` / `NotValidForNameContext`), followed by
/// `` `HOST` ``. Raw: "error communicating with database: invalid peer certificate: certificate
/// not valid for name \"127.0.0.2\"; certificate is only valid for DnsName(\"localhost\") or
/// IpAddress(127.0.0.1)".
const NOT_VALID_FOR_HOST: &str = "the server's TLS certificate is not valid for host";

/// A server without TLS and `sslmode=verify-full` (sqlx `Error::Tls("server does not support
/// TLS")`). Raw: "error occurred while attempting to establish a TLS connection: server does not
/// support TLS".
const NO_TLS_VERIFY_FULL: &str = "the server does not accept TLS (sslmode=verify-full requires it)";

/// An `sslrootcert` that cannot be read (shared/src/dialect/postgres.rs, `read_ca_file`),
/// followed by the path in backquotes. Raw today: "error communicating with database: No such
/// file or directory (os error 2)".
const CA_UNREADABLE: &str = "cannot read the CA bundle";
/// An `sslrootcert` without a certificate (`read_ca_file`, after the path).
/// Raw today: nothing — sqlx ignores the file, and the handshake fails with UnknownIssuer.
const CA_EMPTY: &str = "no PEM certificate";

/// Prisma's "can't reach database server" code, for every TLS failure.
const P1001: &str = "P1001";

// ---------------------------------------------------------------------------------------------
// The cases. One test starts the servers once and runs every case against them at the same
// time, each on its own thread and its own fresh database; a failed case does not hide the others.
// ---------------------------------------------------------------------------------------------

type Case = (&'static str, fn(&Servers));

const CASES: &[Case] = &[
    (
        "verify_full_with_the_right_ca_applies",
        verify_full_with_the_right_ca_applies,
    ),
    (
        "verify_full_with_the_wrong_ca_fails_saying_the_issuer_is_unknown",
        verify_full_with_the_wrong_ca_fails_saying_the_issuer_is_unknown,
    ),
    (
        "verify_full_with_a_wrong_host_name_fails_naming_the_host",
        verify_full_with_a_wrong_host_name_fails_naming_the_host,
    ),
    (
        "verify_full_against_a_server_without_tls_fails_saying_so",
        verify_full_against_a_server_without_tls_fails_saying_so,
    ),
    (
        "without_sslmode_the_cli_prefers_tls_like_prisma",
        without_sslmode_the_cli_prefers_tls_like_prisma,
    ),
    ("a_bad_sslrootcert_is_named", a_bad_sslrootcert_is_named),
];

#[test]
fn tls_against_throwaway_postgresql() {
    let started = std::time::Instant::now();
    let s = Servers::start();
    eprintln!("servers up in {:.1} s", started.elapsed().as_secs_f64());
    // `MIGRATOR_TLS_CASE=substring` runs only the matching cases.
    let only = std::env::var("MIGRATOR_TLS_CASE").unwrap_or_default();
    let failed: Vec<String> = std::thread::scope(|scope| {
        let running: Vec<_> = CASES
            .iter()
            .filter(|(name, _)| name.contains(&only))
            .map(|&(name, case)| {
                let s = &s;
                (
                    name,
                    std::thread::Builder::new()
                        .name(name.into())
                        .spawn_scoped(scope, move || case(s))
                        .expect("spawn a case"),
                )
            })
            .collect();
        running
            .into_iter()
            .filter_map(|(name, handle)| match handle.join() {
                Ok(()) => {
                    eprintln!("case {name}: ok");
                    None
                }
                Err(panic) => {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Some(format!("case {name} FAILED:\n{why}"))
                }
            })
            .collect()
    });
    // Restarting a server would break the cases above: this one runs alone, after them.
    let restart = if only.is_empty() || "a_server_restart_mid_run".contains(&only) {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            a_server_restart_mid_run_fails_clearly_and_the_next_deploy_finishes(&s)
        }))
        .map(|()| {
            eprintln!("case a_server_restart_mid_run: ok");
            println!("reliability: test=server-restart faults=1 failures=0");
        })
        .err()
        .map(|panic| {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            format!("case a_server_restart_mid_run FAILED:\n{why}")
        })
    } else {
        None
    };
    let failed: Vec<String> = failed.into_iter().chain(restart).collect();
    drop(s);
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

fn verify_full_with_the_right_ca_applies(s: &Servers) {
    for host in ["localhost", "127.0.0.1"] {
        let url = s.url(
            host,
            s.tls.port,
            &format!("sslmode=verify-full&sslrootcert={}", enc(&s.ca)),
        );
        let run = deploy(&url);
        assert!(
            run.ok() && run.status() == "applied",
            "verify-full with the right CA, host {host}: {}{}",
            run.stdout(),
            run.stderr()
        );
        assert_eq!(run.names("applied"), [MIGRATION]);
    }
}

fn verify_full_with_the_wrong_ca_fails_saying_the_issuer_is_unknown(s: &Servers) {
    let url = s.url(
        "localhost",
        s.tls.port,
        &format!("sslmode=verify-full&sslrootcert={}", enc(&s.other_ca)),
    );
    let run = deploy(&url);
    expect_failure("wrong CA", &run, UNTRUSTED_CA);
}

fn verify_full_with_a_wrong_host_name_fails_naming_the_host(s: &Servers) {
    let url = s.url(
        "127.0.0.2",
        s.tls.port,
        &format!("sslmode=verify-full&sslrootcert={}", enc(&s.ca)),
    );
    let run = deploy(&url);
    expect_failure(
        "wrong host name",
        &run,
        &format!("{NOT_VALID_FOR_HOST} `127.0.0.2`"),
    );
}

fn verify_full_against_a_server_without_tls_fails_saying_so(s: &Servers) {
    let url = s.url(
        "localhost",
        s.plain.port,
        &format!("sslmode=verify-full&sslrootcert={}", enc(&s.ca)),
    );
    let run = deploy(&url);
    expect_failure("server without TLS", &run, NO_TLS_VERIFY_FULL);

    // Control: the same server is otherwise reachable.
    let run = deploy(&s.url("localhost", s.plain.port, "sslmode=disable"));
    assert!(
        run.ok() && run.status() == "applied",
        "sslmode=disable against the server without TLS: {}{}",
        run.stdout(),
        run.stderr()
    );
}

/// No `sslmode` is Prisma's default, `prefer`: TLS when the server offers it, without
/// verification (the function always passes verify-full; see docs/src/reference/configuration.md).
fn without_sslmode_the_cli_prefers_tls_like_prisma(s: &Servers) {
    for port in [s.tls.port, s.plain.port] {
        let run = deploy(&s.url("localhost", port, ""));
        assert!(
            run.ok() && run.status() == "applied",
            "no sslmode, port {port}: {}{}",
            run.stdout(),
            run.stderr()
        );
    }
}

/// The database server restarts in the middle of a migration (a fault, not TLS; it lives here
/// because this fixture owns a server it may restart). The run fails clearly, the migration it
/// was in is rolled back with its row, and the next deploy finishes the job, nothing twice.
fn a_server_restart_mid_run_fails_clearly_and_the_next_deploy_finishes(s: &Servers) {
    let m = Migrations::new().with_lock("postgresql");
    m.add("20240101000000_a", "CREATE TABLE a (id int);");
    m.add(
        "20240102000000_slow",
        "CREATE TABLE b (id int);\nSELECT pg_sleep(5);\nCREATE TABLE c (id int);\n",
    );
    m.add("20240103000000_d", "CREATE TABLE d (id int);");
    let url = s.url("localhost", s.plain.port, "sslmode=disable");
    let child = Command::new(migrator_e2e::migrator_bin())
        .args(["deploy", "--json", "--database-url", &url, "--artifact"])
        .arg(m.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("migrator runs");
    // Restart while the migrator is inside the slow migration (as the server sees it), however
    // long a loaded machine takes to get there.
    let admin = format!(
        "postgresql://postgres@localhost:{}/postgres?sslmode=disable",
        s.plain.port
    );
    migrator_e2e::wait_until("the slow migration to run", || {
        psql(
            &admin,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'migrator' AND query LIKE '%pg_sleep(5)%' AND state = 'active'",
        ) == "1"
    });
    s.plain.restart();
    let out = child.wait_with_output().expect("migrator ends");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(
        !out.status.success(),
        "deploy across a restart must not succeed: {json:#}"
    );
    assert_eq!(json["status"], "failed", "{json:#}");
    assert_eq!(
        json["applied"].as_array().map(Vec::len),
        Some(1),
        "only the first migration was applied: {json:#}"
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{json:#}"
    );
    // The next deploy finishes: the interrupted migration was rolled back with its row.
    let run = migrator(&["deploy"], m.path(), &url);
    assert_eq!(run.status(), "applied", "{}{}", run.stdout(), run.stderr());
    assert_eq!(
        run.names("applied"),
        ["20240102000000_slow", "20240103000000_d"],
        "{}",
        run.stdout()
    );
    let again = migrator(&["status"], m.path(), &url);
    assert!(again.ok(), "{}", again.stdout());
}

/// A bad `sslrootcert` is reported with its path (read and checked when the URL is parsed).
fn a_bad_sslrootcert_is_named(s: &Servers) {
    let missing = s.dir.path().join("no-such-ca.pem");
    let run = deploy(&s.url(
        "localhost",
        s.tls.port,
        &format!("sslmode=verify-full&sslrootcert={}", enc(&missing)),
    ));
    // A URL naming a CA file that is not there is bad input: rejected before connecting (P1013).
    expect_status(
        "missing sslrootcert",
        &run,
        "rejected",
        &format!("{CA_UNREADABLE} `{}`", missing.display()),
    );

    let garbage = s.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write garbage.pem");
    let run = deploy(&s.url(
        "localhost",
        s.tls.port,
        &format!("sslmode=verify-full&sslrootcert={}", enc(&garbage)),
    ));
    expect_status(
        "sslrootcert without certificates",
        &run,
        "rejected",
        &garbage.display().to_string(),
    );
    expect_status(
        "sslrootcert without certificates",
        &run,
        "rejected",
        CA_EMPTY,
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

const MIGRATION: &str = "20240101000000_init";

fn deploy(url: &str) -> Run {
    let m = Migrations::new().with_lock("postgresql");
    m.add(
        MIGRATION,
        "-- CreateTable\nCREATE TABLE \"Tls\" (\n    \"id\" INTEGER NOT NULL\n);\n",
    );
    migrator(&["deploy"], m.path(), url)
}

fn message(run: &Run) -> &str {
    run.json["error"]["message"].as_str().unwrap_or("")
}

/// A failed run (nothing applied) whose message holds `phrase`.
fn expect_message(case: &str, run: &Run, phrase: &str) {
    expect_status(case, run, "failed", phrase);
}

/// A run with `status` (nothing applied) whose message holds `phrase`.
fn expect_status(case: &str, run: &Run, status: &str, phrase: &str) {
    eprintln!("[{case}] {}: {}", run.error_code(), message(run));
    assert!(
        !run.ok() && run.status() == status && run.names("applied").is_empty(),
        "[{case}] expected a {status} deploy, got: {}{}",
        run.stdout(),
        run.stderr()
    );
    assert!(
        message(run).contains(phrase),
        "[{case}] the error message should contain\n  {phrase:?}\nbut is\n  {:?}",
        message(run)
    );
}

/// A failed connection: P1001 and `phrase` in the message.
fn expect_failure(case: &str, run: &Run, phrase: &str) {
    expect_message(case, run, phrase);
    assert_eq!(run.error_code(), P1001, "[{case}] {}", run.stdout());
}

/// Percent-encodes a path for a URL query value.
fn enc(path: &Path) -> String {
    let mut out = String::new();
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The fixture: a test CA, a server certificate for localhost / 127.0.0.1, an unrelated CA, and two
// PostgreSQL instances, stopped when dropped (also on panic: each `Instance` stops its server).
// ---------------------------------------------------------------------------------------------

struct Servers {
    // Field order matters: the instances stop before the directory is removed.
    tls: Instance,
    plain: Instance,
    ca: PathBuf,
    other_ca: PathBuf,
    dir: tempfile::TempDir,
}

static DATABASES: AtomicUsize = AtomicUsize::new(0);

impl Servers {
    fn start() -> Servers {
        let pg = PgBin::find();
        check_openssl();
        let dir = tempfile::Builder::new()
            .prefix("migrator-tls-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path();

        let pki = root.join("pki");
        std::fs::create_dir(&pki).expect("pki dir");
        make_certificates(&pki);
        let ca = pki.join("ca.pem");
        let other_ca = pki.join("other-ca.pem");

        // One initdb, copied for the second instance (initdb is the slow part).
        let tls_data = root.join("tls");
        let plain_data = root.join("plain");
        pg.give(root);
        pg.give(&pki);
        for f in ["server.pem", "server.key"] {
            pg.give(&pki.join(f));
        }
        set_mode(&pki.join("server.key"), 0o600);
        pg.run(
            root,
            "initdb",
            &[
                "-D".as_ref(),
                tls_data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
                "--no-instructions".as_ref(),
            ],
        );
        let hba = "\
hostssl all all 127.0.0.1/32 trust
hostssl all all 127.0.0.2/32 trust
host    all all 127.0.0.1/32 trust
host    all all 127.0.0.2/32 trust
";
        std::fs::write(tls_data.join("pg_hba.conf"), hba).expect("pg_hba.conf");
        let copy = Command::new("cp")
            .arg("-a")
            .arg(&tls_data)
            .arg(&plain_data)
            .output()
            .expect("cp runs");
        assert!(copy.status.success(), "cp -a: {}", text(&copy));

        let common = "\nlisten_addresses = '127.0.0.1,127.0.0.2'\nunix_socket_directories = ''\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";
        append(
            &tls_data.join("postgresql.conf"),
            &format!(
                "{common}ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                pki.join("server.pem").display(),
                pki.join("server.key").display()
            ),
        );
        append(
            &plain_data.join("postgresql.conf"),
            &format!("{common}ssl = off\n"),
        );

        let tls = Instance::start(&pg, root, &tls_data);
        let plain = Instance::start(&pg, root, &plain_data);

        // The fixture itself, checked with libpq: TLS with the test CA on one, none on the other.
        let ssl = psql(
            &format!(
                "postgresql://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
                tls.port,
                enc(&ca)
            ),
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        );
        assert_eq!(
            ssl, "t",
            "the TLS instance should accept verify-full with the test CA"
        );
        let ssl = psql(
            &format!(
                "postgresql://postgres@127.0.0.1:{}/postgres?sslmode=disable",
                plain.port
            ),
            "SHOW ssl",
        );
        assert_eq!(ssl, "off", "the plain instance should run without TLS");

        Servers {
            tls,
            plain,
            ca,
            other_ca,
            dir,
        }
    }

    /// A URL for a fresh database on `port` (migrator creates it).
    fn url(&self, host: &str, port: u16, params: &str) -> String {
        let db = format!("tls_{}", DATABASES.fetch_add(1, Ordering::SeqCst));
        let query = if params.is_empty() {
            String::new()
        } else {
            format!("?{params}")
        };
        format!("postgresql://postgres@{host}:{port}/{db}{query}")
    }
}

/// A running PostgreSQL; stopped on drop.
struct Instance {
    pg: PgBin,
    cwd: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Instance {
    fn start(pg: &PgBin, cwd: &Path, data: &Path) -> Instance {
        let log = data.with_extension("log");
        let mut last = String::new();
        // A free port can be taken between the check and the start: try a few.
        for _ in 0..4 {
            let port = free_port();
            let out = pg.output(
                cwd,
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "30".as_ref(),
                    "-o".as_ref(),
                    format!("-p {port}").as_ref(),
                    "start".as_ref(),
                ],
            );
            if out.status.success() {
                return Instance {
                    pg: pg.clone(),
                    cwd: cwd.to_path_buf(),
                    data: data.to_path_buf(),
                    port,
                };
            }
            last = format!(
                "{}\n--- {} ---\n{}",
                text(&out),
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            // A failed start can leave a server behind (pg_ctl timed out): stop it, ignore errors.
            let _ = pg.output(
                cwd,
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "stop".as_ref(),
                ],
            );
        }
        panic!("PostgreSQL did not start in {}: {last}", data.display());
    }
}

impl Instance {
    /// `pg_ctl restart -m fast`: connections are terminated, the server comes back on its port.
    fn restart(&self) {
        // `-l`: the restarted server must not inherit (and hold open) our output pipes.
        let log = self.data.with_extension("log");
        self.pg.run(
            &self.cwd,
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "30".as_ref(),
                "-o".as_ref(),
                format!("-p {}", self.port).as_ref(),
                "restart".as_ref(),
            ],
        );
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let out = self.pg.output(
            &self.cwd,
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "10".as_ref(),
                "stop".as_ref(),
            ],
        );
        if !out.status.success() {
            eprintln!("pg_ctl stop {}: {}", self.data.display(), text(&out));
        }
    }
}

/// The PostgreSQL server binaries, run as `postgres` when the tests run as root.
#[derive(Clone)]
struct PgBin {
    bindir: PathBuf,
    /// uid and gid of `postgres` when running as root.
    as_postgres: Option<(u32, u32)>,
}

impl PgBin {
    fn find() -> PgBin {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Ok(dir) = std::env::var("MIGRATOR_TEST_PG_BINDIR") {
            candidates.push(dir.into());
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
            && out.status.success()
        {
            candidates.push(String::from_utf8_lossy(&out.stdout).trim().into());
        }
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
            .unwrap_or_default();
        versions.sort_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        candidates.extend(versions.into_iter().rev());
        let Some(bindir) = candidates
            .iter()
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
            .cloned()
        else {
            panic!(
                "the TLS tests need the PostgreSQL server binaries (initdb, pg_ctl) and found none \
                 (looked in {candidates:?}): install the Debian package postgresql, or set \
                 MIGRATOR_TEST_PG_BINDIR"
            );
        };
        let as_postgres = if id(&["-u"]) == 0 {
            Some((id(&["-u", "postgres"]), id(&["-g", "postgres"])))
        } else {
            None
        };
        PgBin {
            bindir,
            as_postgres,
        }
    }

    fn output(&self, cwd: &Path, tool: &str, args: &[&std::ffi::OsStr]) -> Output {
        let program = self.bindir.join(tool);
        let mut cmd = if self.as_postgres.is_some() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        cmd.args(args)
            .current_dir(cwd)
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }

    fn run(&self, cwd: &Path, tool: &str, args: &[&std::ffi::OsStr]) {
        let out = self.output(cwd, tool, args);
        assert!(out.status.success(), "{tool} failed: {}", text(&out));
    }

    /// Hands a path to the user that runs PostgreSQL.
    fn give(&self, path: &Path) {
        if let Some((uid, gid)) = self.as_postgres {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
    }
}

fn id(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().expect("`id` runs");
    assert!(
        out.status.success(),
        "`id {}` failed (PostgreSQL refuses to run as root and needs a `postgres` user): {}",
        args.join(" "),
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a numeric id")
}

fn check_openssl() {
    match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("`openssl version` failed: {}", text(&out)),
        Err(e) => panic!(
            "the TLS tests need the `openssl` CLI to make their CA (Debian package openssl): {e}"
        ),
    }
}

/// Writes ca.pem (the test CA), server.pem/server.key (CN and SAN localhost, IP 127.0.0.1 — not
/// 127.0.0.2) and other-ca.pem (an unrelated CA) into `dir`. ECDSA P-256: fast to generate.
fn make_certificates(dir: &Path) {
    let config = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = migrator e2e test CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";
    std::fs::write(dir.join("openssl.cnf"), config).expect("openssl.cnf");
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let days = ["-days", "2"];
    openssl(
        dir,
        &[
            &[
                "req",
                "-x509",
                "-config",
                "openssl.cnf",
                "-extensions",
                "ca",
            ][..],
            &key,
            &days,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &[
                "req",
                "-x509",
                "-config",
                "openssl.cnf",
                "-extensions",
                "ca",
                "-subj",
                "/CN=unrelated test CA",
            ][..],
            &key,
            &days,
            &["-keyout", "other-ca.key", "-out", "other-ca.pem"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &[
                "req",
                "-new",
                "-config",
                "openssl.cnf",
                "-subj",
                "/CN=localhost",
            ][..],
            &key,
            &["-keyout", "server.key", "-out", "server.csr"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "2",
                "-extfile",
                "openssl.cnf",
                "-extensions",
                "server",
                "-out",
                "server.pem",
            ][..],
            &days,
        ]
        .concat(),
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .env_remove("OPENSSL_CONF")
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        text(&out)
    );
}

fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        match TcpListener::bind(("127.0.0.2", port)) {
            Ok(_) => return port,
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                panic!(
                    "cannot bind 127.0.0.2 (the wrong-host case needs a second loopback address): {e}"
                )
            }
            Err(_) => continue,
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-qAtX", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "psql {url}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn append(path: &Path, extra: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all(extra.as_bytes()).expect("append");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
