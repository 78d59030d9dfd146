//! A fleet on this machine: `size` databases on the local PostgreSQL, the artifact and the
//! targets object in moto's S3, and the fleet's synthesized state machine executed by
//! `infra/scripts/run-fleet.ts` (aws-local-stepfunctions; every Task state runs the real
//! `migrator handle-event` or moto). Used by `tests/tests/fleet.rs` and `make try-fleet`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::local_aws::{Aws, Moto, Put};
use crate::{Migrations, PgDb, migrator_bin, workspace};

pub const ARTIFACT_KEY: &str = "deploy/CODE/app/prisma.zip";
pub const TARGETS_KEY: &str = "fleets/CODE/targets.jsonl";
/// The first migration creates `account`, the second `orders`: a database that already has
/// an `orders` table (a "poisoned" target) fails on the second.
pub const MIGRATIONS: [(&str, &str); 2] = [
    (
        "20240101000000_account",
        "CREATE TABLE account (id integer PRIMARY KEY);",
    ),
    (
        "20240102000000_orders",
        "CREATE TABLE orders (id integer PRIMARY KEY, account integer REFERENCES account (id));",
    ),
];

/// One fleet: its databases (dropped with it), moto, the bucket and the topic.
pub struct Fleet {
    pub dbs: Vec<PgDb>,
    pub moto: Moto,
    pub aws: Aws,
    pub bucket: String,
    pub topic: String,
    pub queue: String,
    pub artifact: Put,
    pub canary: usize,
    pub max_concurrency: usize,
    _migrations: Migrations,
}

impl Fleet {
    /// `size` fresh databases named after `tag`, the artifact (both migrations) uploaded.
    pub fn new(tag: &str, size: usize, canary: usize, max_concurrency: usize) -> Fleet {
        let dbs: Vec<PgDb> = (0..size)
            .map(|i| PgDb::fresh(&format!("{tag}_{:02}", i + 1)))
            .collect();
        let moto = Moto::start();
        let aws = moto.aws();
        let bucket = format!("fleet-{}", tag.replace('_', "-"));
        aws.create_versioned_bucket(&bucket);
        let topic = aws.create_topic(&format!("fleet-{}", tag.replace('_', "-")));
        let queue = aws.subscribed_queue(&topic, &format!("fleet-{}-q", tag.replace('_', "-")));
        let migrations = Migrations::new().with_lock("postgresql");
        for (name, sql) in MIGRATIONS {
            migrations.add(name, sql);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let zip = dir.path().join("prisma.zip");
        migrations.zip(&zip);
        let artifact = aws.put_object(&bucket, ARTIFACT_KEY, &std::fs::read(&zip).expect("zip"));
        let targets: String = dbs
            .iter()
            .enumerate()
            .map(|(i, db)| {
                format!(
                    "{}\n",
                    json!({"id": format!("t{:02}", i + 1), "auth": "url", "url": db.url})
                )
            })
            .collect();
        aws.put_object(&bucket, TARGETS_KEY, targets.as_bytes());
        Fleet {
            dbs,
            moto,
            aws,
            bucket,
            topic,
            queue,
            artifact,
            canary,
            max_concurrency,
            _migrations: migrations,
        }
    }

    /// An earlier rollout: the first migration applied to every database (with the CLI), so
    /// that a table made by hand afterwards is a real poison (on an empty history the plan
    /// already refuses a non-empty schema, P3005, and nothing is applied anywhere).
    pub fn baseline(&self) {
        let first = Migrations::new().with_lock("postgresql");
        first.add(MIGRATIONS[0].0, MIGRATIONS[0].1);
        for db in &self.dbs {
            let run = crate::migrator(&["deploy"], first.path(), &db.url);
            assert!(run.ok(), "baseline of {}: {}", db.name, run.stderr());
        }
    }

    /// The artifact's bytes.
    pub fn artifact_zip(&self, out: &std::path::Path) {
        self._migrations.zip(out);
    }

    /// The upload's EventBridge event (what the upload rule starts the state machine with).
    pub fn upload_event(&self) -> Value {
        json!({
            "version": "0", "id": "fleet-upload", "source": "aws.s3", "detail-type": "Object Created",
            "account": crate::local_aws::ACCOUNT, "region": crate::local_aws::REGION, "time": "2026-01-01T00:00:00Z",
            "resources": [format!("arn:aws:s3:::{}", self.bucket)],
            "detail": {"bucket": {"name": self.bucket}, "object": {"key": ARTIFACT_KEY, "version-id": self.artifact.version_id}, "requester": "123456789012"}
        })
    }

    /// The fleet function's environment (the stage's, with the fleet's two variables).
    pub fn function_env(&self) -> Value {
        let mut env: serde_json::Map<String, Value> = self
            .moto
            .client_env()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        for (k, v) in [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("STAGE", "CODE".into()),
            ("DB_AUTH", "url".into()),
            (
                "DATABASE_URL",
                "postgresql://127.0.0.1:5432/the_stage_db_is_not_used".into(),
            ),
            ("ARTIFACT_BUCKET", self.bucket.clone()),
            ("ARTIFACT_KEY", ARTIFACT_KEY.into()),
            ("TOPIC_ARN", self.topic.clone()),
            ("AUTO_APPLY", "true".into()),
            ("BLOCK_ON", "never".into()),
            ("CONFIRM_QUALIFIER", "apply".into()),
            (
                "FLEET_TARGETS",
                format!("s3://{}/{TARGETS_KEY}", self.bucket),
            ),
            ("RUST_LOG", "warn".into()),
        ] {
            env.insert(k.into(), Value::String(v));
        }
        Value::Object(env)
    }

    /// Runs one execution of the synthesized state machine; the runner's answer
    /// (`{execution, rollup}`).
    pub fn rollout(&self, input: &Value) -> Value {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("run.json");
        let run = json!({
            "binary": migrator_bin(),
            "env": self.function_env(),
            "motoUrl": self.moto.url,
            "haltTable": format!("fleet-halt-{}", self.bucket),
            "input": input,
            "canary": self.canary,
            "maxConcurrency": self.max_concurrency,
            "autoApply": true,
        });
        std::fs::write(&config, run.to_string()).expect("write the run's config");
        let infra = workspace().join("infra");
        let out = Command::new(tsx())
            .arg("scripts/run-fleet.ts")
            .arg(&config)
            .current_dir(&infra)
            .output()
            .unwrap_or_else(|e| panic!("cannot run infra/scripts/run-fleet.ts ({e}): `make setup` installs infra/node_modules"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stdout.lines().last().unwrap_or_default();
        let mut answer: Value = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("run-fleet answered {stdout:?} ({e}); stderr:\n{stderr}"));
        // What each state did, for a failing assertion to show.
        answer["log"] = Value::String(
            stderr
                .chars()
                .rev()
                .take(6000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect(),
        );
        answer
    }

    /// The rollup messages published on the topic since the last call (`Message` of each SNS envelope).
    pub fn published(&self, min: usize) -> Vec<Value> {
        self.aws
            .receive(&self.queue, min, Duration::from_secs(30))
            .iter()
            .filter_map(|body| serde_json::from_str::<Value>(body).ok())
            .filter_map(|envelope| {
                envelope["Message"]
                    .as_str()
                    .and_then(|m| serde_json::from_str(m).ok())
            })
            .collect()
    }
}

/// infra's tsx (installed by `npm ci` in infra/, see tests/scripts/setup.sh).
pub fn tsx() -> PathBuf {
    workspace().join("infra/node_modules/.bin/tsx")
}

/// `rollup.targets[*].status`, in line order.
pub fn statuses(rollup: &Value) -> Vec<String> {
    rollup["targets"]
        .as_array()
        .unwrap_or_else(|| panic!("no targets in {rollup:#}"))
        .iter()
        .map(|t| t["status"].as_str().unwrap_or_default().to_string())
        .collect()
}
