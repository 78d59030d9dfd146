//! The function suite's harness: a [`Stage`] is one stage of the Lambda function on this
//! machine (a versioned bucket, an SNS topic with an SQS queue subscribed, a fresh PostgreSQL
//! database owned by the function's role, and the environment the function runs with), plus
//! the secrets every test checks were never printed and small readers of the outcome.

use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;

use crate::local_aws::{Aws, Emulator, Invoked, Moto, Put, REGION};
use crate::{Migrations, PgDb, migrator_bin, pg_server, psql, workspace};

/// The database role the function connects as, with a password that must never be printed.
pub const DB_ROLE: &str = "migrator_e2e";
pub const DB_PASSWORD: &str = "S3cr3t-e2e-Qx7vPz4K";
/// The function's AWS credentials (moto accepts any): must never be printed either.
pub const AWS_KEY_ID: &str = "AKIAE2EFUNCTIONKEY01";
pub const AWS_SECRET: &str = "e2e-aws-secret-Wb9TqL3mZrKd";
pub const AWS_SESSION: &str = "e2e-session-token-Hn2Vx8Pq";

/// `outcome[field][*].name`.
pub fn listed(outcome: &Value, field: &str) -> Vec<String> {
    outcome[field]
        .as_array()
        .unwrap_or_else(|| panic!("no `{field}` list in {outcome:#}"))
        .iter()
        .map(|m| m["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub fn warnings(outcome: &Value) -> String {
    outcome["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

pub fn error_message(outcome: &Value) -> &str {
    outcome["error"]["message"].as_str().unwrap_or_default()
}

/// The zip of `m` as bytes.
pub fn zip_bytes(m: &Migrations) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("prisma.zip");
    m.zip(&path);
    std::fs::read(&path).expect("read zip")
}

/// The role the function logs in as (created once; owner of every test database).
pub fn db_role() {
    static ROLE: OnceLock<()> = OnceLock::new();
    ROLE.get_or_init(|| {
        psql(
            &format!("{}/postgres", pg_server()),
            &format!(
                "DO $$ BEGIN CREATE ROLE {DB_ROLE} LOGIN PASSWORD '{DB_PASSWORD}'; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN \
                 ALTER ROLE {DB_ROLE} LOGIN PASSWORD '{DB_PASSWORD}'; END $$"
            ),
        );
    });
}

/// `postgresql://migrator_e2e:PASSWORD@HOST:PORT/db` on the test server.
pub fn role_url(db: &str) -> String {
    let server = pg_server();
    let host = server
        .rsplit_once('@')
        .map(|(_, h)| h.to_string())
        .unwrap_or_else(|| server.trim_start_matches("postgresql://").to_string());
    format!("postgresql://{DB_ROLE}:{DB_PASSWORD}@{host}/{db}")
}

/// What must never be printed: the database password, the AWS secret key and session token,
/// request signatures, and the test server's own `postgres:postgres@` URL.
pub const SECRETS: [&str; 6] = [
    DB_PASSWORD,
    AWS_SECRET,
    AWS_SESSION,
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "postgres:postgres@",
];

/// The first secret that appears in `text`.
pub fn leaked(text: &str) -> Option<&'static str> {
    SECRETS.into_iter().find(|secret| text.contains(secret))
}

pub fn assert_no_secrets(what: &str, text: &str) {
    if let Some(secret) = leaked(text) {
        panic!("{what} contains the secret `{secret}`:\n{text}");
    }
}

/// A message the function published, as the SQS subscriber received it.
pub struct Published {
    pub raw: String,
    pub envelope: Value,
    pub outcome: Value,
}

impl Published {
    pub fn attribute(&self, name: &str) -> &str {
        assert_eq!(
            self.envelope["MessageAttributes"][name]["Type"], "String",
            "attribute {name} in {:#}",
            self.envelope
        );
        self.envelope["MessageAttributes"][name]["Value"]
            .as_str()
            .unwrap_or_default()
    }
}

/// One stage of the function: its bucket, key pattern, topic (with a queue), database and
/// environment. Everything it sees is kept for the secrets check of [`Stage::finish`].
pub struct Stage {
    pub tag: String,
    pub aws: Aws,
    pub db: PgDb,
    pub db_url: String,
    pub bucket: String,
    /// Where this test puts its artifact.
    pub key: String,
    pub topic_arn: String,
    pub queue_url: String,
    pub env: Vec<(String, String)>,
    pub seen: Mutex<Vec<(String, String)>>,
}

impl Stage {
    /// `pattern` is ARTIFACT_KEY; `key` the object the test uploads.
    pub fn new(tag: &str, stage: &str, pattern: &str, key: &str) -> Stage {
        db_role();
        let moto = Moto::shared();
        let aws = moto.aws();
        let unique = format!("e2e-{tag}-{}", std::process::id()).to_ascii_lowercase();
        aws.create_versioned_bucket(&unique);
        let topic_arn = aws.create_topic(&unique);
        let queue_url = aws.subscribed_queue(&topic_arn, &unique);
        let db = PgDb::fresh(&format!("fn_{tag}"));
        db.sql(&format!(
            "ALTER DATABASE \"{}\" OWNER TO {DB_ROLE}",
            db.name
        ));
        let db_url = role_url(&db.name);
        let env = vec![
            ("STAGE".into(), stage.into()),
            ("DB_AUTH".into(), "url".into()),
            ("DATABASE_URL".into(), db_url.clone()),
            ("ARTIFACT_BUCKET".into(), unique.clone()),
            ("ARTIFACT_KEY".into(), pattern.into()),
            ("TOPIC_ARN".into(), topic_arn.clone()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_ENDPOINT_URL".into(), moto.url.clone()),
            ("AWS_ACCESS_KEY_ID".into(), AWS_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), AWS_SECRET.into()),
            ("AWS_SESSION_TOKEN".into(), AWS_SESSION.into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ];
        Stage {
            tag: tag.into(),
            aws,
            db,
            db_url,
            bucket: unique,
            key: key.into(),
            topic_arn,
            queue_url,
            env,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The usual stage: one app's artifact, `deploy/STAGE/app/prisma.zip`, under the key
    /// pattern `deploy/STAGE/*/prisma.zip`.
    pub fn app(tag: &str, stage: &str) -> Stage {
        Stage::new(
            tag,
            stage,
            &format!("deploy/{stage}/*/prisma.zip"),
            &format!("deploy/{stage}/app/prisma.zip"),
        )
    }

    /// The environment with `overrides` set (an empty value removes the variable).
    pub fn env_with(&self, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
            .cloned()
            .collect();
        env.extend(
            overrides
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    }

    pub fn emulator(&self) -> Emulator {
        Emulator::start(self.env.clone())
    }

    pub fn see(&self, what: impl Into<String>, text: impl Into<String>) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((what.into(), text.into()));
    }

    /// Puts the zip of `m` at this stage's key; returns the version and the zip's bytes.
    pub fn put(&self, m: &Migrations) -> (Put, Vec<u8>) {
        let bytes = zip_bytes(m);
        (self.put_bytes(&bytes), bytes)
    }

    pub fn put_bytes(&self, bytes: &[u8]) -> Put {
        self.aws.put_object(&self.bucket, &self.key, bytes)
    }

    pub fn invoke(&self, emulator: &Emulator, payload: &Value) -> Invoked {
        let invoked = emulator.invoke(payload);
        self.see(format!("the response to {payload}"), invoked.raw.clone());
        invoked
    }

    /// Invokes and expects a 200 with an outcome of `status`.
    pub fn invoke_ok(&self, emulator: &Emulator, payload: &Value, status: &str) -> Value {
        let invoked = self.invoke(emulator, payload);
        assert_eq!(
            invoked.status,
            200,
            "{}\n--- logs ---\n{}",
            invoked.raw,
            emulator.logs()
        );
        assert_eq!(
            invoked.body["status"],
            status,
            "{:#}\n--- logs ---\n{}",
            invoked.body,
            emulator.logs()
        );
        invoked.body
    }

    /// Exactly `n` messages published since the last call (received and deleted).
    pub fn published(&self, n: usize) -> Vec<Published> {
        let bodies = self
            .aws
            .receive(&self.queue_url, n, Duration::from_secs(10));
        assert_eq!(
            bodies.len(),
            n,
            "expected {n} published outcome(s), got {bodies:#?}"
        );
        bodies
            .into_iter()
            .map(|raw| {
                self.see("a published message", raw.clone());
                let envelope: Value = serde_json::from_str(&raw).expect("an SNS envelope");
                assert_eq!(envelope["Type"], "Notification", "{envelope:#}");
                assert_eq!(envelope["TopicArn"], self.topic_arn.as_str());
                let outcome: Value =
                    serde_json::from_str(envelope["Message"].as_str().expect("a Message string"))
                        .expect("the Message is the outcome document");
                Published {
                    raw,
                    envelope,
                    outcome,
                }
            })
            .collect()
    }

    pub fn one_published(&self) -> Published {
        self.published(1).remove(0)
    }

    /// `migrator ARGS` with this stage's environment (the ECS task).
    pub fn run(&self, args: &[&str], env: &[(String, String)]) -> Output {
        let output = Command::new(migrator_bin())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("migrator runs");
        self.see(
            format!("the output of migrator {}", args.join(" ")),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        );
        output
    }

    /// `migrator invoke --function NAME --endpoint-url EMULATOR ARGS` as a person runs it.
    pub fn cli_invoke(&self, emulator: &Emulator, args: &[&str]) -> Output {
        let mut all = vec![
            "invoke",
            "--function",
            emulator.function_name.as_str(),
            "--endpoint-url",
        ];
        let url = emulator.endpoint_url();
        all.push(&url);
        all.extend_from_slice(args);
        let env: Vec<(String, String)> = [
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", AWS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        self.run(&all, &env)
    }

    /// The function's logs join what was seen; nothing may hold a secret.
    pub fn finish(&self, emulators: &[&Emulator]) {
        for emulator in emulators {
            self.see(format!("the function log of {}", self.tag), emulator.logs());
        }
        for (what, text) in self.seen.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            assert_no_secrets(what, text);
        }
    }

    pub fn location(&self, put: &Put) -> String {
        format!(
            "s3://{}/{}?versionId={}",
            put.bucket, put.key, put.version_id
        )
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `printed` (a command the migrator printed for a person to paste) with `sh -c`, where
/// `migrator` is a stub first on PATH that records its arguments NUL-separated, in an empty
/// working directory; returns the arguments. Panics if the shell failed or if anything
/// appeared in the working directory (a command substitution that ran).
pub fn run_printed(printed: &str) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let stub = dir.path().join("migrator");
    let argv = dir.path().join("argv");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > '{}'\n",
            argv.display()
        ),
    )
    .expect("the stub");
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("a working directory");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(printed)
        .current_dir(&work)
        .env("PATH", path)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{printed}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Vec<_> = std::fs::read_dir(&work)
        .expect("the working directory")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(created.is_empty(), "{printed} created {created:?}");
    let bytes = std::fs::read(&argv).expect("the stub ran");
    let mut args: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|a| String::from_utf8(a.to_vec()).expect("UTF-8"))
        .collect();
    // Each argument ends with a NUL: the last piece is empty.
    args.pop();
    args
}

// ---------------------------------------------------------------------------------------------
// The Slack buttons (issue 24)

/// The construct's custom actions, as deployed.
pub fn chat_actions() -> Value {
    let path = workspace().join("infra/lib/chat-actions.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("chat-actions.json"))
        .expect("chat-actions.json is JSON")
}

/// The commands of the buttons `message` shows, by button text: each action whose criteria
/// match, its command text with every `$variable` replaced by the variable's value (read
/// from the message by the action's variable path, as Chatbot does).
pub fn buttons(message: &Value) -> Vec<(String, String)> {
    let defs = chat_actions();
    let prefix = defs["variablePrefix"].as_str().unwrap();
    let read = |name: &str| -> Option<String> {
        // `event.metadata.additionalContext.NAME` → the message's field.
        let path = format!("{prefix}{name}");
        let mut at = message;
        for part in path.strip_prefix("event.").unwrap().split('.') {
            at = at.get(part)?;
        }
        at.as_str().map(str::to_string)
    };
    let marker = defs["marker"].as_str().unwrap();
    let mut shown = Vec::new();
    for action in defs["actions"].as_array().unwrap() {
        if read(marker).as_deref() != action["when"].as_str() {
            continue;
        }
        let mut command = action["commandText"].as_str().unwrap().to_string();
        assert!(command.len() <= 100, "{command}");
        // Longest names first, so that `$p` never eats the start of a longer name.
        let mut variables: Vec<&str> = action["variables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        variables.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for v in variables {
            let value = read(v).unwrap_or_else(|| panic!("the message lacks `{v}`: {message:#}"));
            command = command.replace(&format!("${v}"), &value);
        }
        shown.push((action["button"].as_str().unwrap().to_string(), command));
    }
    shown
}

pub fn button(message: &Value, text: &str) -> String {
    buttons(message)
        .into_iter()
        .find(|(b, _)| b == text)
        .unwrap_or_else(|| panic!("no button `{text}` on {message:#}"))
        .1
}

/// A button's command, read: `lambda invoke --function-name F [--qualifier Q] --payload P`.
#[derive(Debug)]
pub struct ButtonCommand {
    pub function: String,
    pub qualifier: Option<String>,
    pub payload: Value,
}

impl ButtonCommand {
    pub fn parse(command: &str) -> Result<ButtonCommand, String> {
        let words: Vec<&str> = command.split_whitespace().collect();
        if words.get(..2) != Some(&["lambda", "invoke"][..]) {
            return Err(format!("not a lambda invoke: {command}"));
        }
        let (mut function, mut qualifier, mut payload) = (None, None, None);
        for pair in words[2..].chunks(2) {
            let value = pair.get(1).map(|v| v.to_string());
            match pair[0] {
                "--function-name" => function = value,
                "--qualifier" => qualifier = value,
                "--payload" => payload = value,
                other => return Err(format!("unexpected `{other}` in {command}")),
            }
        }
        let payload = payload.ok_or_else(|| format!("no --payload in {command}"))?;
        Ok(ButtonCommand {
            function: function.ok_or_else(|| format!("no --function-name in {command}"))?,
            qualifier,
            payload: serde_json::from_str(&payload)
                .map_err(|e| format!("the payload is not one JSON word ({e}): {payload}"))?,
        })
    }
}
