//! Issue 25, end to end: the recovery point before the first write (moto's RDS, the local
//! PostgreSQL as the data plane, the function as the ECS command `handle-event`), and the
//! refusal of the wrong database: a Blue/Green green side or switchover (moto), a hot standby
//! started here with `pg_basebackup -R`, a MariaDB server started here with `--read-only`.
//!
//! moto's RDS finishes snapshots and switchovers at once; the two tests that need RDS's
//! slow states use [`Moto::start_holding`] (the same moto with those transitions held).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use migrator_e2e::local_aws::{Aws, Moto, free_port, s3_event};
use migrator_e2e::stage::{Stage, stderr, stdout};
use migrator_e2e::{Migrations, migrator, pg_server};
use serde_json::{Value, json};

const USERS: &str = "CREATE TABLE \"User\" (\"id\" SERIAL PRIMARY KEY, \"email\" TEXT NOT NULL);\n";
const POSTS: &str = "CREATE TABLE \"Post\" (\"id\" SERIAL PRIMARY KEY);\n";

fn two() -> Migrations {
    let m = Migrations::new().with_lock("postgresql");
    m.add("20240101000000_users", USERS);
    m.add("20240102000000_posts", POSTS);
    m
}

fn rds(aws: &Aws, method: &str, kwargs: Value) -> Value {
    aws.call(json!({"op": "rds_call", "method": method, "kwargs": kwargs}))
}

/// A DB instance in `aws`'s moto with `retention` days of automated backups.
fn instance(aws: &Aws, id: &str, retention: u32) -> Value {
    rds(
        aws,
        "create_db_instance",
        json!({
            "DBInstanceIdentifier": id, "DBInstanceClass": "db.t3.micro", "Engine": "postgres",
            "AllocatedStorage": 20, "MasterUsername": "postgres", "MasterUserPassword": "not-used-1",
            "BackupRetentionPeriod": retention,
        }),
    )["DBInstance"]
        .clone()
}

/// The instance's manual snapshots: (identifier, status, tags).
fn snapshots(aws: &Aws, id: &str) -> Vec<(String, String, Value)> {
    let answer = rds(
        aws,
        "describe_db_snapshots",
        json!({"DBInstanceIdentifier": id, "SnapshotType": "manual"}),
    );
    answer["DBSnapshots"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            let tags = rds(
                aws,
                "list_tags_for_resource",
                json!({"ResourceName": s["DBSnapshotArn"]}),
            )["TagList"]
                .clone();
            (
                s["DBSnapshotIdentifier"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                s["Status"].as_str().unwrap_or_default().to_string(),
                tags,
            )
        })
        .collect()
}

fn tag<'t>(tags: &'t Value, key: &str) -> &'t str {
    tags.as_array()
        .and_then(|t| t.iter().find(|t| t["Key"] == key))
        .and_then(|t| t["Value"].as_str())
        .unwrap_or_default()
}

fn unique(tag: &str) -> String {
    format!("rp-{tag}-{}", std::process::id())
}

/// The ECS command on one upload event; the outcome it prints.
fn deploy(st: &Stage, put: &migrator_e2e::local_aws::Put, env: &[(String, String)]) -> Value {
    let out = st.run(
        &["handle-event", "--event-json", &s3_event(put).to_string()],
        env,
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)))
}

fn message(o: &Value) -> &str {
    o["error"]["message"].as_str().unwrap_or_default()
}

#[test]
fn a_snapshot_policy_takes_one_tagged_snapshot_before_applying_and_a_no_op_takes_none() {
    let st = Stage::app("rp_snapshot", "PROD");
    let db = unique("snap");
    instance(&st.aws, &db, 7);
    let env = st.env_with(&[("RECOVERY_POINT", "snapshot"), ("DB_INSTANCE_ID", &db)]);
    let (put, _) = st.put(&two());

    let o = deploy(&st, &put, &env);
    assert_eq!(o["status"], "applied", "{o:#}");
    let point = &o["recoveryPoint"];
    assert_eq!(point["kind"], "snapshot", "{o:#}");
    assert_eq!(point["identifier"], db.as_str());
    let id = point["snapshotId"].as_str().expect("a snapshot id");
    assert!(id.starts_with("migrator-prod-"), "{id}");
    let restore = point["restoreCommand"].as_str().unwrap();
    assert!(
        restore
            .starts_with("aws rds restore-db-instance-from-db-snapshot --db-instance-identifier ")
            && restore.contains(&format!("--db-snapshot-identifier {id}")),
        "{restore}"
    );
    let taken = snapshots(&st.aws, &db);
    assert_eq!(taken.len(), 1, "{taken:?}");
    let (name, status, tags) = &taken[0];
    assert_eq!((name.as_str(), status.as_str()), (id, "available"));
    assert_eq!(tag(tags, "migrator:stage"), "PROD");
    assert_eq!(
        tag(tags, "migrator:artifact-version"),
        put.version_id.as_str()
    );
    assert_eq!(
        tag(tags, "migrator:first-migration"),
        "20240101000000_users"
    );
    assert_eq!(tag(tags, "migrator:plan-hash").len(), 64, "{tags}");
    assert_eq!(st.db.rows().len(), 2);
    // The published message carries it too.
    assert_eq!(st.one_published().outcome["recoveryPoint"], *point);

    // Nothing pending: nothing taken.
    let again = deploy(&st, &put, &env);
    assert_eq!(again["status"], "up-to-date", "{again:#}");
    assert!(again.get("recoveryPoint").is_none(), "{again:#}");
    assert_eq!(snapshots(&st.aws, &db).len(), 1);
    st.published(1);
}

#[test]
fn pitr_with_backups_on_records_the_point_and_with_backups_off_is_blocked() {
    let st = Stage::app("rp_pitr", "PROD");
    let off = unique("pitr-off");
    instance(&st.aws, &off, 0);
    let (put, _) = st.put(&two());
    let blocked = deploy(
        &st,
        &put,
        &st.env_with(&[("RECOVERY_POINT", "pitr"), ("DB_INSTANCE_ID", &off)]),
    );
    assert_eq!(blocked["status"], "blocked", "{blocked:#}");
    assert!(
        message(&blocked).contains("automated backups are off"),
        "{blocked:#}"
    );
    assert!(
        st.db.tables().is_empty(),
        "nothing written: {:?}",
        st.db.tables()
    );

    let on = unique("pitr-on");
    instance(&st.aws, &on, 7);
    let o = deploy(
        &st,
        &put,
        &st.env_with(&[("RECOVERY_POINT", "pitr"), ("DB_INSTANCE_ID", &on)]),
    );
    assert_eq!(o["status"], "applied", "{o:#}");
    let point = &o["recoveryPoint"];
    assert_eq!(point["kind"], "pitr");
    assert!(point["latestRestorableTime"].is_string(), "{point:#}");
    let restore = point["restoreCommand"].as_str().unwrap();
    assert!(
        restore.contains("restore-db-instance-to-point-in-time")
            && restore.contains(&format!("--source-db-instance-identifier {on}"))
            && restore.contains(&format!(
                "--restore-time {}",
                point["restorableTime"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .next()
                    .unwrap()
                    .trim_end_matches('Z')
            )),
        "{point:#}"
    );
    assert!(snapshots(&st.aws, &on).is_empty(), "pitr takes no snapshot");
    st.published(2);
}

#[test]
fn a_snapshot_stuck_creating_past_the_deadline_blocks_and_writes_nothing() {
    let st = Stage::app("rp_stuck", "PROD");
    let held = Moto::start_holding();
    let held_aws = held.aws();
    let db = unique("stuck");
    instance(&held_aws, &db, 7);
    let env = st.env_with(&[
        ("RECOVERY_POINT", "snapshot"),
        ("DB_INSTANCE_ID", &db),
        ("AWS_ENDPOINT_URL_RDS", &held.url),
        ("MAX_DURATION", "12s"),
        ("DEADLINE_MARGIN", "2s"),
    ]);
    let (put, _) = st.put(&two());
    let o = deploy(&st, &put, &env);
    assert_eq!(o["status"], "blocked", "{o:#}");
    assert!(message(&o).contains("still `creating`"), "{o:#}");
    assert!(
        st.db.tables().is_empty(),
        "nothing written: {:?}",
        st.db.tables()
    );
    assert_eq!(snapshots(&held_aws, &db).len(), 1);
    // The next run of the same plan waits for that snapshot instead of taking another.
    let again = deploy(&st, &put, &env);
    assert_eq!(again["status"], "blocked", "{again:#}");
    assert_eq!(snapshots(&held_aws, &db).len(), 1);
    st.published(2);
}

#[test]
fn the_green_side_of_a_blue_green_deployment_is_refused_and_a_switchover_blocks() {
    // moto: the green side of an available deployment.
    let st = Stage::app("rp_green", "PROD");
    let blue = unique("blue");
    let arn = instance(&st.aws, &blue, 7)["DBInstanceArn"].clone();
    let created = rds(
        &st.aws,
        "create_blue_green_deployment",
        json!({"BlueGreenDeploymentName": unique("upgrade"), "Source": arn}),
    );
    let target = created["BlueGreenDeployment"]["Target"]
        .as_str()
        .unwrap()
        .to_string();
    let green = target.rsplit(':').next().unwrap().to_string();
    let (put, _) = st.put(&two());
    let o = deploy(&st, &put, &st.env_with(&[("DB_INSTANCE_ID", &green)]));
    assert_eq!(o["status"], "rejected", "{o:#}");
    assert!(message(&o).contains("green (target) side"), "{o:#}");
    assert!(st.db.tables().is_empty());
    // A plan (nothing written) is not refused.
    st.published(1);

    // A switchover in progress (held): blocked, on the blue side too.
    let held = Moto::start_holding();
    let held_aws = held.aws();
    let blue2 = unique("blue2");
    let arn2 = instance(&held_aws, &blue2, 7)["DBInstanceArn"].clone();
    let id = rds(
        &held_aws,
        "create_blue_green_deployment",
        json!({"BlueGreenDeploymentName": unique("switch"), "Source": arn2}),
    )["BlueGreenDeployment"]["BlueGreenDeploymentIdentifier"]
        .clone();
    rds(
        &held_aws,
        "switchover_blue_green_deployment",
        json!({"BlueGreenDeploymentIdentifier": id}),
    );
    let o = deploy(
        &st,
        &put,
        &st.env_with(&[
            ("DB_INSTANCE_ID", &blue2),
            ("AWS_ENDPOINT_URL_RDS", &held.url),
        ]),
    );
    assert_eq!(o["status"], "blocked", "{o:#}");
    assert!(message(&o).contains("switchover is in progress"), "{o:#}");
    assert!(st.db.tables().is_empty());
    st.published(1);
}

// ------------------------------------------------------------------ a hot standby

/// Runs `program` as the `postgres` OS user when we are root (PostgreSQL refuses root).
fn as_postgres(program: &str, args: &[&str]) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut command = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    };
    command.args(args);
    command
}

/// PostgreSQL's server programs (pg_ctl), where Debian keeps them.
fn pg_bin(name: &str) -> PathBuf {
    let output = Command::new("pg_config").arg("--bindir").output();
    let dir = output
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|d| d.join(name).exists());
    dir.map_or_else(|| PathBuf::from(name), |d| d.join(name))
}

/// A hot standby of the local server: `pg_basebackup -R` into a temporary directory, started
/// on a free port; stopped and removed on drop.
struct Standby {
    dir: tempfile::TempDir,
    port: u16,
}

impl Standby {
    fn start() -> Standby {
        let dir = tempfile::Builder::new()
            .prefix("standby")
            .tempdir()
            .expect("a temp dir");
        let data = dir.path().join("data");
        let chown = |path: &Path| {
            let _ = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status();
        };
        chown(dir.path());
        let data_s = data.to_string_lossy().to_string();
        let backup = as_postgres(
            &pg_bin("pg_basebackup").to_string_lossy(),
            &[
                "-d",
                &pg_server(),
                "-D",
                &data_s,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        )
        .output()
        .expect("pg_basebackup runs");
        assert!(
            backup.status.success(),
            "pg_basebackup failed (the server must allow replication connections from 127.0.0.1: tests/scripts/setup.sh adds the pg_hba rule): {}",
            String::from_utf8_lossy(&backup.stderr)
        );
        // The primary's limits a standby must match, and a configuration of its own (Debian
        // keeps the primary's outside the data directory).
        let setting = |name: &str| {
            migrator_e2e::psql(
                &format!("{}/postgres", pg_server()),
                &format!("SHOW {name}"),
            )
            .trim()
            .to_string()
        };
        let port = free_port();
        let mut conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nhot_standby = on\n",
            dir.path().display()
        );
        for name in [
            "max_connections",
            "max_worker_processes",
            "max_wal_senders",
            "max_prepared_transactions",
            "max_locks_per_transaction",
        ] {
            conf.push_str(&format!("{name} = {}\n", setting(name)));
        }
        std::fs::write(data.join("postgresql.conf"), conf).expect("postgresql.conf");
        std::fs::write(
            data.join("pg_hba.conf"),
            "host all all 127.0.0.1/32 trust\nlocal all all trust\n",
        )
        .expect("pg_hba.conf");
        chown(dir.path());
        let started = as_postgres(
            &pg_bin("pg_ctl").to_string_lossy(),
            &[
                "-D",
                &data_s,
                "-l",
                &dir.path().join("log").to_string_lossy(),
                "-w",
                "-t",
                "120",
                "start",
            ],
        )
        .stdout(Stdio::null())
        .status()
        .expect("pg_ctl runs");
        assert!(
            started.success(),
            "the standby did not start: {}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
        Standby { dir, port }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            &pg_bin("pg_ctl").to_string_lossy(),
            &[
                "-D",
                &data.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    }
}

#[test]
fn a_hot_standby_is_refused_with_nothing_written() {
    let primary = migrator_e2e::PgDb::fresh("rp_standby");
    let standby = Standby::start();
    let url = format!(
        "postgresql://postgres@127.0.0.1:{}/{}",
        standby.port, primary.name
    );
    // Wait until the standby accepts connections to the copied database.
    let until = Instant::now() + Duration::from_secs(60);
    let m = two();
    let run = loop {
        let run = migrator(&["deploy"], m.path(), &url);
        if run.json.get("status").is_some() && run.json["error"]["code"] != "P1001"
            || Instant::now() > until
        {
            break run;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(run.json["status"], "rejected", "{:#}", run.json);
    assert!(
        run.json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("pg_is_in_recovery()"),
        "{:#}",
        run.json
    );
    assert!(!run.ok());
    // Nothing written, on the primary nor (through it) the standby.
    assert!(primary.tables().is_empty(), "{:?}", primary.tables());
    let standby_tables = migrator_e2e::psql(
        &url,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    );
    assert_eq!(standby_tables.trim(), "0");
}

// ------------------------------------------------------------------ MariaDB read_only

/// A MariaDB server of this test, started `--read-only` in a temporary directory.
struct ReadOnlyMariaDb {
    dir: tempfile::TempDir,
    port: u16,
    child: std::process::Child,
}

impl ReadOnlyMariaDb {
    fn start() -> ReadOnlyMariaDb {
        let dir = tempfile::Builder::new()
            .prefix("mariadb")
            .tempdir()
            .expect("a temp dir");
        let data = dir.path().join("data");
        let user = if Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        {
            "root"
        } else {
            ""
        };
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if !user.is_empty() {
            install.arg(format!("--user={user}"));
        }
        let installed = install.output().expect("mariadb-install-db runs");
        assert!(
            installed.status.success(),
            "{}",
            String::from_utf8_lossy(&installed.stderr)
        );
        let port = free_port();
        let mut server = Command::new("mariadbd");
        server
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--read-only",
            ])
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("err")).expect("a log"));
        if !user.is_empty() {
            server.arg(format!("--user={user}"));
        }
        let child = server.spawn().expect("mariadbd runs");
        let db = ReadOnlyMariaDb { dir, port, child };
        let until = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "mariadbd did not start: {}",
                std::fs::read_to_string(db.dir.path().join("err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        db
    }
}

impl Drop for ReadOnlyMariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_read_only_mariadb_server_is_refused_with_nothing_written() {
    let server = ReadOnlyMariaDb::start();
    let m = Migrations::new().with_lock("mysql");
    m.add(
        "20240101000000_users",
        "CREATE TABLE `User` (`id` INT PRIMARY KEY);\n",
    );
    // root may still write (read_only spares SUPER): the database exists first, as a
    // replica's would; the migrator, even as root, must refuse.
    let created = Command::new("mariadb")
        .args([
            "--protocol=tcp",
            "-h127.0.0.1",
            &format!("-P{}", server.port),
            "-uroot",
            "-e",
        ])
        .arg("CREATE DATABASE app")
        .output()
        .expect("mariadb runs");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let url = format!("mysql://root@127.0.0.1:{}/app", server.port);
    let run = migrator(&["deploy"], m.path(), &url);
    assert_eq!(
        run.json["status"],
        "rejected",
        "{:#}\n{}",
        run.json,
        String::from_utf8_lossy(&run.output.stderr)
    );
    assert!(
        run.json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("@@read_only"),
        "{:#}",
        run.json
    );
    let tables = Command::new("mariadb")
        .args([
            "--protocol=tcp",
            "-h127.0.0.1",
            &format!("-P{}", server.port),
            "-uroot",
            "-BNe",
        ])
        .arg("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'app'")
        .output()
        .expect("mariadb runs");
    assert_eq!(String::from_utf8_lossy(&tables.stdout).trim(), "0");
}
