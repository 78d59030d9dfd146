//! The migrator as an AWS Lambda function, end to end and offline: the real binary polls the
//! cargo-lambda Runtime API emulator, reads artifacts from a versioned S3 bucket in moto,
//! migrates a fresh PostgreSQL database and publishes its outcome to an SNS topic in moto,
//! which an SQS queue (SNS envelope, no raw delivery) hands back to the test. The ECS command
//! (`migrator handle-event`) and `migrator invoke` run against the same peers.
//!
//! Needs `make setup` (moto, boto3 and cargo-lambda in target/py) and `cargo build -p migrator`.
//! Every test has its own bucket, topic, queue and database; one moto serves them all.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use migrator_e2e::local_aws::{
    Emulator, FixedAnswerEndpoint, Moto, Put, REGION, SilentEndpoint, eventbridge_event, s3_event,
    s3_event_key, s3_record, sha256_hex, sns_envelope, sns_event, sqs_event,
};
use migrator_e2e::stage::{
    AWS_SECRET, AWS_SESSION, DB_PASSWORD, DB_ROLE, Stage, error_message, leaked, listed, role_url,
    run_printed, stderr, stdout, warnings, zip_bytes,
};
use migrator_e2e::{Migrations, migrator_bin, pg_server, psql};
use serde_json::{Value, json};

const USERS: (&str, &str) = (
    "20240101000000_users",
    "-- CreateTable\nCREATE TABLE \"User\" (\n    \"id\" SERIAL NOT NULL,\n    \"email\" TEXT NOT NULL,\n    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\")\n);\n",
);
const POSTS: (&str, &str) = (
    "20240102000000_posts",
    "-- CreateTable\nCREATE TABLE \"Post\" (\n    \"id\" SERIAL NOT NULL,\n    \"authorId\" INTEGER NOT NULL REFERENCES \"User\"(\"id\"),\n    CONSTRAINT \"Post_pkey\" PRIMARY KEY (\"id\")\n);\n",
);
const POST_INDEX: (&str, &str) = (
    "20240103000000_post_index",
    "-- CreateIndex\nCREATE INDEX \"Post_authorId_idx\" ON \"Post\"(\"authorId\");\n",
);
const COMMENTS: (&str, &str) = (
    "20240104000000_comments",
    "-- CreateTable\nCREATE TABLE \"Comment\" (\n    \"id\" SERIAL NOT NULL,\n    \"postId\" INTEGER NOT NULL REFERENCES \"Post\"(\"id\"),\n    CONSTRAINT \"Comment_pkey\" PRIMARY KEY (\"id\")\n);\n",
);
const ALL: [(&str, &str); 4] = [USERS, POSTS, POST_INDEX, COMMENTS];

/// The first `n` migrations of [`ALL`], with Prisma's lock file.
fn migrations(n: usize) -> Migrations {
    with(&ALL[..n])
}

fn with(list: &[(&str, &str)]) -> Migrations {
    let m = Migrations::new().with_lock("postgresql");
    for (name, sql) in list {
        m.add(name, sql);
    }
    m
}

fn names(list: &[(&str, &str)]) -> Vec<String> {
    list.iter().map(|(n, _)| n.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn an_upload_event_applies_and_publishes_the_outcome() {
    let st = Stage::new(
        "upload",
        "CODE",
        "deploy/CODE/*/prisma.zip",
        "deploy/CODE/my app/prisma.zip",
    );
    let m = migrations(2);
    let (put, zip) = st.put(&m);
    let emulator = st.emulator();

    let event = s3_event(&put);
    // A real notification: the key form-URL-encoded, with versionId and eTag.
    assert_eq!(
        event["Records"][0]["s3"]["object"]["key"],
        "deploy/CODE/my+app/prisma.zip"
    );
    let response = st.invoke_ok(&emulator, &event, "applied");

    let message = st.one_published();
    assert_eq!(message.attribute("stage"), "CODE");
    assert_eq!(message.attribute("status"), "applied");
    assert_eq!(message.attribute("severity"), "info");
    assert_eq!(
        message.envelope["Subject"],
        "[applied] CODE: applied 2 migrations"
    );
    let o = &message.outcome;
    assert_eq!(o, &response, "the response is the published document");
    assert_eq!(o["schemaVersion"], 1);
    assert!(
        o["tool"].as_str().unwrap().starts_with("migrator "),
        "{o:#}"
    );
    assert_eq!(o["action"], "deploy");
    assert_eq!(o["status"], "applied");
    assert_eq!(o["stage"], "CODE");
    assert_eq!(o["confirmed"], true);
    let artifact = &o["artifact"];
    assert_eq!(artifact["location"], st.location(&put).as_str());
    assert!(
        artifact["location"]
            .as_str()
            .unwrap()
            .contains("?versionId=")
    );
    assert_eq!(artifact["sha256"], sha256_hex(&zip).as_str());
    assert_eq!(artifact["migrationsPath"], "prisma/migrations");
    assert_eq!(artifact["migrationCount"], 2);
    assert_eq!(artifact["lockProvider"], "postgresql");
    let database = &o["database"];
    assert_eq!(database["engine"], "postgresql");
    assert_eq!(database["name"], st.db.name.as_str());
    assert_eq!(database["host"], "127.0.0.1");
    assert_eq!(database["port"], 5432);
    assert_eq!(database["schema"], "public");
    let mut keys: Vec<&String> = database.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["engine", "host", "name", "port", "schema"],
        "where, never who or how: {database:#}"
    );
    assert_eq!(listed(o, "applied"), names(&ALL[..2]));
    for (applied, (_, sql)) in o["applied"].as_array().unwrap().iter().zip(&ALL[..2]) {
        assert_eq!(applied["checksum"], sha256_hex(sql.as_bytes()).as_str());
        assert_eq!(applied["execution"]["mode"], "transaction");
    }
    assert_eq!(o["pending"], json!([]));
    assert_eq!(o["failed"], json!([]));
    assert_eq!(o["warnings"], json!([]));
    assert!(o.get("error").is_none(), "{o:#}");
    for text in [&message.raw, &response.to_string()] {
        assert!(!text.contains(DB_PASSWORD) && !text.contains(&st.db_url));
        assert!(!text.contains("password"), "{text}");
    }

    let rows = st.db.rows();
    assert_eq!(rows.len(), 2);
    for (row, (name, sql)) in rows.iter().zip(&ALL[..2]) {
        assert_eq!(row["migration_name"], *name);
        assert_eq!(row["checksum"], sha256_hex(sql.as_bytes()).as_str());
        assert_eq!(row["applied_steps_count"], 1);
        assert!(!row["finished_at"].is_null() && row["rolled_back_at"].is_null());
        assert!(row["logs"].is_null());
    }
    assert_eq!(
        st.db.tables(),
        ["Post", "User", "_prisma_migrations"].map(String::from)
    );

    // The log: one JSON line per event, the outcome summary among them.
    let lines = emulator.log_lines();
    let summary = lines
        .iter()
        .find(|l| l["fields"]["message"] == "outcome")
        .unwrap_or_else(|| panic!("no outcome log line in\n{}", emulator.logs()));
    assert_eq!(summary["fields"]["status"], "applied");
    assert_eq!(summary["fields"]["applied"], 2);
    assert_eq!(summary["fields"]["artifact"], st.location(&put).as_str());
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "published the outcome")
    );
    st.finish(&[&emulator]);
}

#[test]
fn eventbridge_sqs_and_sns_envelopes_each_apply() {
    let st = Stage::app("envelopes", "CODE");
    let emulator = st.emulator();

    // EventBridge "Object Created" (keys are not URL-encoded there).
    let (v1, _) = st.put(&migrations(1));
    st.invoke_ok(&emulator, &eventbridge_event(&v1), "applied");
    let o = st.one_published().outcome;
    assert_eq!(listed(&o, "applied"), names(&ALL[..1]));
    assert_eq!(o["artifact"]["location"], st.location(&v1).as_str());

    // SQS carrying the S3 notification: a partial-batch response, nothing to retry.
    let (v2, _) = st.put(&migrations(2));
    let response = st.invoke(&emulator, &sqs_event(&[s3_event(&v2)]));
    assert_eq!(response.status, 200, "{}", response.raw);
    assert_eq!(response.body, json!({"batchItemFailures": []}));
    let o = st.one_published().outcome;
    assert_eq!(o["status"], "applied");
    assert_eq!(listed(&o, "applied"), names(&ALL[1..2]));
    assert_eq!(o["artifact"]["location"], st.location(&v2).as_str());

    // SNS → Lambda.
    let (v3, _) = st.put(&migrations(3));
    st.invoke_ok(
        &emulator,
        &sns_event(&st.topic_arn, &s3_event(&v3)),
        "applied",
    );
    let o = st.one_published().outcome;
    assert_eq!(listed(&o, "applied"), names(&ALL[2..3]));
    assert_eq!(o["artifact"]["location"], st.location(&v3).as_str());

    // S3 → SNS → SQS → Lambda.
    let (v4, _) = st.put(&migrations(4));
    let response = st.invoke(
        &emulator,
        &sqs_event(&[sns_envelope(&st.topic_arn, &s3_event(&v4))]),
    );
    assert_eq!(response.body, json!({"batchItemFailures": []}));
    let o = st.one_published().outcome;
    assert_eq!(o["status"], "applied");
    assert_eq!(listed(&o, "applied"), names(&ALL[3..4]));

    // S3's set-up test message is acknowledged, nothing else.
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-21T10:00:00.000Z",
        "Bucket": st.bucket, "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"});
    let response = st.invoke(&emulator, &test_event);
    assert_eq!(response.body, json!({"ignored": ["s3:TestEvent"]}));
    st.published(0);

    let rows = st.db.rows();
    assert_eq!(
        rows.iter()
            .map(|r| r["migration_name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        names(&ALL)
    );
    st.finish(&[&emulator]);
}

#[test]
fn a_manual_deploy_plans_until_confirmed_and_migrator_invoke_drives_it() {
    // An exact ARTIFACT_KEY: the manual payload's default artifact.
    let key = "deploy/CODE/prisma.zip";
    let st = Stage::new("manual", "CODE", key, key);
    let (v1, _) = st.put(&migrations(2));
    let emulator = st.emulator();

    let o = st.invoke_ok(&emulator, &json!({"action": "deploy"}), "planned");
    assert_eq!(o["confirmed"], false);
    assert_eq!(listed(&o, "pending"), names(&ALL[..2]));
    assert_eq!(o["applied"], json!([]));
    assert_eq!(o["artifact"]["location"], st.location(&v1).as_str());
    assert!(warnings(&o).contains("nothing was applied"), "{o:#}");
    assert_eq!(
        o["confirmPayload"],
        json!({"action": "deploy", "confirm": true, "artifact": format!("s3://{}/{}", v1.bucket, v1.key),
               "versionId": v1.version_id, "planHash": o["planHash"]}),
        "{o:#}"
    );
    assert_eq!(st.db.tables(), Vec::<String>::new(), "nothing was written");
    let message = st.one_published();
    assert_eq!(message.attribute("status"), "planned");
    assert_eq!(message.attribute("severity"), "warning");

    // `migrator invoke` without --confirm: the plan and how to apply it.
    let out = st.cli_invoke(&emulator, &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("Would apply:"), "{text}");
    assert!(text.contains(USERS.0) && text.contains(POSTS.0), "{text}");
    assert!(
        text.contains(&format!(
            "To apply exactly this plan: migrator invoke --function {} --object s3://{}/{} --version-id {} --plan-hash ",
            emulator.function_name, v1.bucket, v1.key, v1.version_id
        )),
        "{text}"
    );
    assert_eq!(
        st.db.tables(),
        Vec::<String>::new(),
        "still nothing written"
    );
    st.published(1);

    // The payload with confirm applies.
    let o = st.invoke_ok(
        &emulator,
        &json!({"action": "deploy", "confirm": true}),
        "applied",
    );
    assert_eq!(o["confirmed"], true);
    assert_eq!(listed(&o, "applied"), names(&ALL[..2]));
    st.published(1);

    // A new version, applied with `migrator invoke --confirm`.
    st.put(&migrations(3));
    let out = st.cli_invoke(&emulator, &["--confirm"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("Applied 1 migration."), "{text}");
    assert!(text.contains(POST_INDEX.0), "{text}");
    assert!(!text.contains("To apply"), "{text}");
    st.published(1);
    assert_eq!(st.db.rows().len(), 3);

    // `--action status --json` prints the function's document.
    let out = st.cli_invoke(&emulator, &["--action", "status", "--json"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let o: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(o["action"], "status");
    assert_eq!(o["status"], "up-to-date");
    st.published(1);
    st.finish(&[&emulator]);
}

#[test]
fn with_auto_apply_off_a_confirmation_applies_exactly_the_plan_it_names() {
    let st = Stage::app("autooff", "PROD");
    let function = "migrator-e2e-PROD";
    let (v1, _) = st.put(&migrations(1));
    let emulator = Emulator::start(st.env_with(&[
        ("AUTO_APPLY", "false"),
        ("AWS_LAMBDA_FUNCTION_NAME", function),
    ]));

    // An upload plans; the plan names the payload that applies it, and nothing else.
    let o = st.invoke_ok(&emulator, &s3_event(&v1), "planned");
    assert_eq!(o["confirmed"], false);
    assert_eq!(listed(&o, "pending"), names(&ALL[..1]));
    assert_eq!(o["applied"], json!([]));
    let plan1 = o["confirmPayload"].clone();
    assert_eq!(
        plan1,
        json!({"action": "deploy", "confirm": true, "artifact": format!("s3://{}/{}", v1.bucket, v1.key),
               "versionId": v1.version_id, "planHash": o["planHash"]}),
        "{o:#}"
    );
    assert_eq!(o["planHash"].as_str().map(str::len), Some(64));
    assert_eq!(st.db.tables(), Vec::<String>::new());
    let message = st.one_published();
    assert_eq!(message.attribute("stage"), "PROD");
    assert_eq!(message.attribute("status"), "planned");
    assert_eq!(message.attribute("severity"), "warning");
    assert_eq!(message.outcome, o);
    // (The Chatbot and e-mail renderings, which an SQS subscriber does not receive, are
    // checked in render.rs.)
    assert!(!warnings(&o).contains("<name>"), "{o:#}");

    // A second upload (it drops a table) plans too.
    let drop = ("20240109000000_drop_posts", "DROP TABLE \"Post\";\n");
    let (v2, _) = st.put(&with(&[USERS, POSTS, drop]));
    let o2 = st.invoke_ok(&emulator, &s3_event(&v2), "planned");
    assert_eq!(listed(&o2, "pending"), names(&[USERS, POSTS, drop]));
    let plan2 = o2["confirmPayload"].clone();
    assert_ne!(plan2["planHash"], plan1["planHash"]);
    st.published(1);

    // A bare confirm applies nothing on this stage: it names no reviewed plan.
    let o = st.invoke_ok(
        &emulator,
        &json!({"action": "deploy", "confirm": true}),
        "rejected",
    );
    assert!(error_message(&o).contains("planHash"), "{o:#}");
    st.published(1);
    // The newer artifact under the first plan's hash: refused with the difference, under the
    // lock, before anything was written (not even `_prisma_migrations`).
    let mut mixed = plan2.clone();
    mixed["planHash"] = plan1["planHash"].clone();
    let o = st.invoke_ok(&emulator, &mixed, "rejected");
    let e = error_message(&o);
    assert!(e.contains("is not what would be applied now"), "{e}");
    assert!(e.contains(drop.0), "what would be applied instead: {e}");
    assert_eq!(st.db.tables(), Vec::<String>::new(), "nothing was written");
    st.published(1);

    // The first plan's payload is stale now that v2 was uploaded: refused with the reason
    // (issue 24: a button on an older upload's plan does nothing).
    let o = st.invoke_ok(&emulator, &plan1, "rejected");
    assert!(error_message(&o).contains("a stale confirmation"), "{o:#}");
    assert!(error_message(&o).contains(v2.version_id.as_str()), "{o:#}");
    assert_eq!(st.db.tables(), Vec::<String>::new(), "nothing was written");
    st.published(1);

    // The second plan's payload applies that plan: v2's three migrations.
    let o = st.invoke_ok(&emulator, &plan2, "applied");
    assert_eq!(listed(&o, "applied"), names(&[USERS, POSTS, drop]));
    assert_eq!(o["artifact"]["location"], st.location(&v2).as_str());
    assert_eq!(st.db.rows().len(), 3);
    st.published(1);
    // Sent again, it applies nothing more: the plan it names is not what would be applied now.
    let o = st.invoke_ok(&emulator, &plan2, "rejected");
    assert!(
        error_message(&o).contains("is not what would be applied now"),
        "{o:#}"
    );
    assert_eq!(st.db.rows().len(), 3);
    st.published(1);
    st.finish(&[&emulator]);
}

#[test]
fn objects_outside_the_stage_bucket_and_key_are_rejected_before_any_download() {
    let st = Stage::app("wrongkey", "PROD");
    // Nothing is uploaded: a download attempt would say "no such object".
    let emulator = st.emulator();
    let version = "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY";
    let etag = "d41d8cd98f00b204e9800998ecf8427e";
    let record = |bucket: &str, event_key: &str| json!({"Records": [s3_record(bucket, event_key, version, etag)]});
    let cases = [
        (
            record("someone-elses-artifacts", "deploy/PROD/app/prisma.zip"),
            "bucket `someone-elses-artifacts` is not this stage's artifact bucket",
        ),
        (
            record(&st.bucket, "deploy/CODE/x/prisma.zip"),
            "key `deploy/CODE/x/prisma.zip` does not match this stage's ARTIFACT_KEY `deploy/PROD/*/prisma.zip`",
        ),
        (
            record(&st.bucket, "deploy%2FPROD%2F..%2Fx%2Fprisma.zip"),
            "key `deploy/PROD/../x/prisma.zip` does not match",
        ),
        (
            // `*` matches `..`: caught by the segment check.
            record(&st.bucket, "deploy%2FPROD%2F..%2Fprisma.zip"),
            "has `.`/`..` segments or control characters",
        ),
        (
            record(&st.bucket, "deploy/PROD/a%0Ab/prisma.zip"),
            "has `.`/`..` segments or control characters",
        ),
        (
            record(&st.bucket, &s3_event_key("deploy/PROD/app/prisma.zip.bak")),
            "does not match this stage's ARTIFACT_KEY",
        ),
        (
            eventbridge_event(&Put {
                bucket: st.bucket.clone(),
                key: "deploy/PROD/./prisma.zip".into(),
                version_id: version.into(),
                etag: etag.into(),
            }),
            "has `.`/`..` segments",
        ),
        (
            json!({"action": "deploy", "confirm": true,
                   "artifact": "s3://someone-elses-artifacts/deploy/PROD/app/prisma.zip"}),
            "is not this stage's artifact bucket",
        ),
        (
            // A pattern names no single object: the payload must name one.
            json!({"action": "deploy", "confirm": true}),
            "ARTIFACT_KEY is a pattern",
        ),
    ];
    for (event, expected) in &cases {
        let o = st.invoke_ok(&emulator, event, "rejected");
        let message = error_message(&o);
        assert!(
            message.contains(expected),
            "{event}\nexpected `{expected}` in: {message}"
        );
        assert!(!message.contains("no such"), "{message}");
        assert!(
            o.get("database").is_none(),
            "the database was not even looked at: {o:#}"
        );
        assert!(o.get("artifact").is_none(), "{o:#}");
    }
    for message in st.published(cases.len()) {
        assert_eq!(message.attribute("status"), "rejected");
        assert_eq!(message.attribute("severity"), "error");
    }

    // The control: an allowed key that does not exist is looked up, and is missing.
    let o = st.invoke_ok(
        &emulator,
        &record(&st.bucket, "deploy/PROD/app/prisma.zip"),
        "rejected",
    );
    assert!(
        error_message(&o).contains("could not be fetched: no such object"),
        "{o:#}"
    );
    st.published(1);
    assert_eq!(st.db.tables(), Vec::<String>::new(), "database untouched");
    st.finish(&[&emulator]);
}

/// A zip of `(name, content)` entries, names as given (`..` and absolute paths included).
fn raw_zip(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all(content.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip finish").into_inner()
}

#[test]
fn corrupt_and_zip_slip_artifacts_are_rejected() {
    let st = Stage::app("badzip", "CODE");
    let emulator = st.emulator();
    let lock = (
        "prisma/migrations/migration_lock.toml",
        "provider = \"postgresql\"\n",
    );
    let users = (
        "prisma/migrations/20240101000000_users/migration.sql",
        USERS.1,
    );
    let valid = zip_bytes(&migrations(1));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"this is not a zip file\n".to_vec(),
            "could not be read: invalid Zip archive",
        ),
        (
            valid[..60].to_vec(),
            "could not be read: invalid Zip archive",
        ),
        (
            raw_zip(&[
                lock,
                users,
                (
                    "prisma/migrations/../../../tmp/evil/migration.sql",
                    "DROP TABLE x;",
                ),
            ]),
            "is rejected: its path contains a `..` component",
        ),
        (
            raw_zip(&[lock, users, ("/etc/evil/migration.sql", "DROP TABLE x;")]),
            "is rejected: its path is absolute",
        ),
    ];
    for (bytes, expected) in &cases {
        let put = st.put_bytes(bytes);
        let o = st.invoke_ok(&emulator, &s3_event(&put), "rejected");
        let message = error_message(&o);
        assert!(
            message.contains(expected),
            "expected `{expected}` in: {message}"
        );
        assert!(
            message.contains(&format!("s3://{}/{}", st.bucket, st.key))
                || message.contains("zip entry"),
            "the message names the artifact or the entry: {message}"
        );
        assert_eq!(st.db.tables(), Vec::<String>::new(), "database untouched");
        let published = st.one_published();
        assert_eq!(published.attribute("status"), "rejected");
        assert_eq!(published.attribute("severity"), "error");
    }
    // The same stage applies a sound artifact.
    let (put, _) = st.put(&migrations(1));
    st.invoke_ok(&emulator, &s3_event(&put), "applied");
    st.published(1);
    st.finish(&[&emulator]);
}

#[test]
fn an_event_for_an_older_artifact_version_changes_nothing() {
    let st = Stage::app("older", "CODE");
    let (older, _) = st.put(&migrations(2));
    let (newer, _) = st.put(&migrations(3));
    assert_ne!(older.version_id, newer.version_id);
    let emulator = st.emulator();

    let o = st.invoke_ok(&emulator, &s3_event(&newer), "applied");
    assert_eq!(listed(&o, "applied"), names(&ALL[..3]));
    let rows = st.db.rows();
    let schema = st.db.schema_dump();

    // The older version's event arrives late.
    let o = st.invoke_ok(&emulator, &s3_event(&older), "up-to-date");
    assert_eq!(o["artifact"]["location"], st.location(&older).as_str());
    assert_eq!(o["applied"], json!([]));
    assert_eq!(o["pending"], json!([]));
    assert_eq!(o["drift"]["missingLocally"], json!([POST_INDEX.0]));
    assert!(warnings(&o).contains("the artifact looks older"), "{o:#}");
    assert_eq!(st.db.rows(), rows, "no row changed");
    assert_eq!(st.db.schema_dump(), schema, "no schema change");

    let messages = st.published(2);
    assert_eq!(messages[1].attribute("status"), "up-to-date");
    assert_eq!(messages[1].attribute("severity"), "warning");
    st.finish(&[&emulator]);
}

#[test]
fn overlapping_invocations_apply_every_migration_exactly_once() {
    let st = Stage::app("overlap", "CODE");
    let slow = (
        "20240101000000_users",
        "SELECT pg_sleep(2);\nCREATE TABLE \"User\" (\"id\" SERIAL PRIMARY KEY);\n",
    );
    let older_list = [slow, POSTS];
    let newer_list = [slow, POSTS, POST_INDEX];
    let (older, _) = st.put(&with(&older_list));
    let (newer, _) = st.put(&with(&newer_list));
    let first = st.emulator();
    let second = st.emulator();

    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| st.invoke(&first, &s3_event(&older)));
        // The second starts once the first holds the lock and is inside its slow migration.
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let busy = st.db.sql(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND state = 'active' \
                 AND query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid()",
                st.db.name
            ));
            if busy.trim() == "1" {
                break;
            }
            assert!(
                Instant::now() < until,
                "the first run never started its migration"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        let b = scope.spawn(|| st.invoke(&second, &s3_event(&newer)));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.status, 200, "{}", a.raw);
    assert_eq!(b.status, 200, "{}", b.raw);
    assert_eq!(a.body["status"], "applied", "{:#}", a.body);
    assert_eq!(listed(&a.body, "applied"), names(&older_list));
    assert_eq!(
        b.body["status"], "applied",
        "the newer artifact came second and must add its migration: {:#}",
        b.body
    );
    assert_eq!(listed(&b.body, "applied"), names(&newer_list[2..]));

    let rows = st.db.rows();
    let mut applied: Vec<String> = rows
        .iter()
        .map(|r| r["migration_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(applied, names(&newer_list), "each exactly once, in order");
    applied.dedup();
    assert_eq!(applied.len(), 3);
    assert!(rows.iter().all(|r| !r["finished_at"].is_null()));
    st.published(2);
    st.finish(&[&first, &second]);
}

#[test]
fn a_run_that_reaches_its_deadline_is_incomplete_and_the_next_run_finishes() {
    let st = Stage::app("deadline", "CODE");
    // cargo-lambda sends the constant `Lambda-Runtime-Deadline-Ms: 600000` (1970), which the
    // function reads as "no deadline": MAX_DURATION is then the budget, as on ECS. The first
    // migration's five statements of 0.5 s outlast the 3 s - 1 s margin: the supervising
    // session cancels it there, whatever the script's own timeouts, and nothing of it stays.
    let slow = (
        "20240101000000_users",
        "SELECT pg_sleep(0.5);\nSELECT pg_sleep(0.5);\nSELECT pg_sleep(0.5);\nSELECT pg_sleep(0.5);\nSELECT pg_sleep(0.5);\nCREATE TABLE \"User\" (\"id\" SERIAL PRIMARY KEY);\n",
    );
    let list = [slow, POSTS, POST_INDEX];
    let (put, _) = st.put(&with(&list));
    let emulator =
        Emulator::start(st.env_with(&[("MAX_DURATION", "3s"), ("DEADLINE_MARGIN", "1s")]));

    let o = st.invoke_ok(&emulator, &s3_event(&put), "incomplete");
    assert_eq!(listed(&o, "applied"), Vec::<String>::new());
    assert_eq!(listed(&o, "pending"), names(&list));
    assert!(
        o["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(slow.0)),
        "{o:#}"
    );
    assert!(st.db.rows().is_empty(), "no failed row: {:?}", st.db.rows());
    assert!(st.db.tables().iter().all(|t| t != "User"), "rolled back");
    let message = st.one_published();
    assert_eq!(message.attribute("status"), "incomplete");
    assert_eq!(message.attribute("severity"), "warning");

    // The next run, given the time the migration needs, applies everything.
    let roomy = Emulator::start(st.env_with(&[("MAX_DURATION", "60s"), ("DEADLINE_MARGIN", "1s")]));
    let o = st.invoke_ok(&roomy, &s3_event(&put), "applied");
    assert_eq!(listed(&o, "applied"), names(&list));
    assert_eq!(o["pending"], json!([]));
    assert_eq!(st.db.rows().len(), 3);
    st.published(1);
    st.finish(&[&roomy]);
    drop(roomy);

    // The ECS command honours MAX_DURATION the same way (exit 1: not a success).
    let st2 = Stage::app("deadline_ecs", "CODE");
    let (put, _) = st2.put(&with(&list));
    let out = st2.run(
        &["handle-event", "--event-json", &s3_event(&put).to_string()],
        &st2.env_with(&[("MAX_DURATION", "3s"), ("DEADLINE_MARGIN", "1s")]),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let o: Value = serde_json::from_slice(&out.stdout).expect("the outcome on stdout");
    assert_eq!(o["status"], "incomplete");
    assert_eq!(listed(&o, "pending"), names(&list));
    st2.published(1);
    st.finish(&[&emulator]);
    st2.finish(&[]);
}

#[test]
fn the_lock_wait_ends_at_the_deadline_and_an_incomplete_sqs_record_is_retried() {
    let st = Stage::app("deadline_lock", "CODE");
    let (put, _) = st.put(&migrations(2));
    // Another session (a person running Prisma, say) holds the migration lock for a while.
    let mut holder = st
        .db
        .advisory_lock_session(72707369, Duration::from_secs(20), "psql");
    let held = std::time::Instant::now();
    while !st.db.advisory_lock_held(72707369) {
        assert!(
            held.elapsed() < Duration::from_secs(10),
            "the holder never got the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let env = st.env_with(&[("MAX_DURATION", "4s"), ("DEADLINE_MARGIN", "1s")]);
    let emulator = Emulator::start(env);
    let started = std::time::Instant::now();
    // Through SQS: the record whose outcome could change on redelivery is reported for retry.
    let invoked = st.invoke(&emulator, &sqs_event(&[s3_event(&put)]));
    let waited = started.elapsed();
    // End the holder's server session (killing psql would leave its backend asleep, locked).
    st.db.terminate_advisory_lock_sessions(72707369);
    let _ = holder.wait();
    assert_eq!(invoked.status, 200, "{}", invoked.raw);
    assert!(
        waited < Duration::from_secs(8),
        "waited {waited:?} with a 4 s budget"
    );
    assert_eq!(
        invoked.body["batchItemFailures"],
        json!([{"itemIdentifier": "059f36b4-87a3-44ab-83d2-661975610000"}]),
        "{:#}",
        invoked.body
    );
    let message = st.one_published();
    assert_eq!(message.attribute("status"), "blocked");
    assert!(
        st.db.tables().is_empty(),
        "nothing applied while the lock was held"
    );

    // A run cut short by its deadline (`incomplete`) is retried too, and the retry finishes.
    let slow = Migrations::new().with_lock("postgresql");
    slow.add("20240101000000_slow", &"SELECT pg_sleep(0.5);\n".repeat(6));
    slow.add("20240102000000_after", "CREATE TABLE \"After\" (id int);");
    let (put, _) = st.put(&slow);
    let invoked = st.invoke(&emulator, &sqs_event(&[s3_event(&put)]));
    assert_eq!(
        invoked.body["batchItemFailures"],
        json!([{"itemIdentifier": "059f36b4-87a3-44ab-83d2-661975610000"}]),
        "{:#}\n{}",
        invoked.body,
        emulator.logs()
    );
    assert_eq!(st.one_published().attribute("status"), "incomplete");
    // The retry, with the time the migration needs (the supervisor cancels at the margin: a
    // migration longer than the budget never finishes in it), finishes.
    let roomy = Emulator::start(st.env_with(&[("MAX_DURATION", "60s"), ("DEADLINE_MARGIN", "1s")]));
    let invoked = st.invoke(&roomy, &sqs_event(&[s3_event(&put)]));
    st.finish(&[&roomy]);
    assert_eq!(
        invoked.body["batchItemFailures"],
        json!([]),
        "{:#}",
        invoked.body
    );
    assert_eq!(st.one_published().attribute("status"), "applied");
    st.finish(&[&emulator]);
}

#[test]
fn when_sns_is_unavailable_the_invocation_fails_and_the_log_has_the_outcome() {
    let st = Stage::app("nosns", "CODE");
    let missing = Moto::topic_arn(&format!("e2e-missing-{}", std::process::id()));
    let (put, _) = st.put(&migrations(1));
    let emulator = Emulator::start(st.env_with(&[("TOPIC_ARN", &missing)]));

    let invoked = st.invoke(&emulator, &s3_event(&put));
    assert_ne!(invoked.status, 200, "a function error: {}", invoked.raw);
    assert!(
        invoked
            .raw
            .contains(&format!("publishing the outcome to {missing} failed")),
        "{}",
        invoked.raw
    );
    assert!(invoked.body["errorType"].is_string(), "{:#}", invoked.body);

    // The work was done, and the whole outcome is in the log.
    assert_eq!(st.db.rows().len(), 1);
    let lines = emulator.log_lines();
    let logged = lines
        .iter()
        .find(|l| l["level"] == "ERROR" && l["fields"]["outcome"].is_string())
        .unwrap_or_else(|| panic!("no ERROR line with the outcome in\n{}", emulator.logs()));
    let outcome: Value =
        serde_json::from_str(logged["fields"]["outcome"].as_str().unwrap()).expect("JSON");
    assert_eq!(outcome["status"], "applied");
    assert_eq!(outcome["stage"], "CODE");
    assert_eq!(listed(&outcome, "applied"), names(&ALL[..1]));
    assert_eq!(outcome["artifact"]["location"], st.location(&put).as_str());
    assert!(
        logged["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("publishing the outcome"),
        "{logged:#}"
    );
    st.published(0);
    st.finish(&[&emulator]);
}

#[test]
fn handle_event_is_the_ecs_command() {
    let st = Stage::app("ecs", "CODE");
    let (put, _) = st.put(&migrations(2));

    let out = st.run(
        &["handle-event", "--event-json", &s3_event(&put).to_string()],
        &st.env,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let o: Value = serde_json::from_slice(&out.stdout).expect("the outcome on stdout");
    assert_eq!(o["status"], "applied");
    assert_eq!(o["stage"], "CODE");
    assert_eq!(listed(&o, "applied"), names(&ALL[..2]));
    assert_eq!(o["artifact"]["location"], st.location(&put).as_str());
    // Logs are JSON lines on stderr, as in the Lambda.
    let logs = stderr(&out);
    assert!(
        logs.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| l["fields"]["message"] == "outcome"),
        "{logs}"
    );
    assert_eq!(st.one_published().outcome, o);
    assert_eq!(st.db.rows().len(), 2);

    // A rejected event (another bucket), from a file: exit 1, the outcome still printed.
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("event.json");
    let mut wrong = put.clone();
    wrong.bucket = "someone-elses-artifacts".into();
    std::fs::write(&file, s3_event(&wrong).to_string()).unwrap();
    let out = st.run(
        &["handle-event", "--event-file", file.to_str().unwrap()],
        &st.env,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let o: Value = serde_json::from_slice(&out.stdout).expect("the outcome on stdout");
    assert_eq!(o["status"], "rejected");
    assert!(error_message(&o).contains("is not this stage's artifact bucket"));
    st.published(1);

    // MIGRATOR_EVENT: the same event again is up to date.
    let mut env = st.env.clone();
    env.push(("MIGRATOR_EVENT".into(), s3_event(&put).to_string()));
    let out = st.run(&["handle-event"], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let o: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(o["status"], "up-to-date");
    st.published(1);

    // Not JSON: exit 1, a `rejected` outcome with the reason, published like any other.
    let out = st.run(&["handle-event", "--event-json", "{nope"], &st.env);
    assert_eq!(out.status.code(), Some(1));
    let o: Value = serde_json::from_slice(&out.stdout).expect("the outcome on stdout");
    assert_eq!(o["status"], "rejected");
    assert!(error_message(&o).contains("not strict JSON"), "{o:#}");
    assert_eq!(st.one_published().outcome, o);
    st.finish(&[]);
}

/// Issue 20 (10): an event that is not exactly one JSON value, `accept` where nothing is
/// applied, and a `by` that hides or reorders text are each a `rejected` outcome, logged
/// and published; nothing is written.
#[test]
fn strictness_refusals_are_outcomes_logged_and_published() {
    let key = "deploy/CODE/prisma.zip";
    let st = Stage::new("strict2", "CODE", key, key);
    let (put, _) = st.put(&migrations(1));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    let deploy = json!({"action": "deploy", "confirm": true}).to_string();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            [&b"\xEF\xBB\xBF"[..], deploy.as_bytes()].concat(),
            "byte-order mark",
        ),
        (
            format!("{deploy}\n{deploy}").into_bytes(),
            "not strict JSON",
        ),
        (format!("{deploy} // go").into_bytes(), "not strict JSON"),
        (
            [
                &br#"{"action":"deploy","confirm":true,"by":"x"#[..],
                b"\xff",
                br#""}"#,
            ]
            .concat(),
            "not UTF-8",
        ),
    ];
    let accept = json!(["drop-column@20240101000000_users"]);
    let mut payloads: Vec<(Vec<u8>, &str)> = [
        json!({"action": "plan", "accept": accept, "by": "mallory"}),
        json!({"action": "deploy", "accept": accept, "by": "mallory"}),
    ]
    .iter()
    .map(|p| (p.to_string().into_bytes(), "confirmed deploy only"))
    .collect();
    for by in ["\u{200B}", "alice\u{2028}approved", "eve\u{202E}gpj"] {
        payloads.push((
            json!({"action": "deploy", "confirm": true, "accept": accept, "by": by})
                .to_string()
                .into_bytes(),
            "`by` names who",
        ));
    }
    for (raw, fragment) in cases.into_iter().chain(payloads) {
        std::fs::write(&file, &raw).unwrap();
        let out = st.run(
            &["handle-event", "--event-file", file.to_str().unwrap()],
            &st.env,
        );
        let shown = String::from_utf8_lossy(&raw).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{shown}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let o: Value = serde_json::from_slice(&out.stdout).expect("the outcome on stdout");
        assert_eq!(o["status"], "rejected", "{shown}: {o:#}");
        assert!(error_message(&o).contains(fragment), "{shown}: {o:#}");
        assert!(o.get("accepted").is_none_or(|a| a == &json!([])), "{o:#}");
        assert!(o.get("invokedBy").is_none(), "{shown}: {o:#}");
        assert!(
            stderr(&out)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .any(|l| l["fields"]["message"] == "outcome" && l["fields"]["status"] == "rejected"),
            "{}",
            stderr(&out)
        );
        assert_eq!(st.one_published().outcome, o, "{shown}");
    }
    assert_eq!(st.db.tables(), Vec::<String>::new(), "nothing was written");
    let _ = put;
    st.finish(&[]);
}

#[test]
fn no_secret_reaches_logs_outcomes_or_messages() {
    // Every test checks what it saw (Stage::finish); this one drives the error paths, where
    // URLs and credentials are likeliest to slip into a message.
    let st = Stage::app("secrets", "CODE");
    let (put, _) = st.put(&migrations(1));
    let event = s3_event(&put);

    // A database that does not exist, with the password in the URL.
    let missing_db = role_url(&format!("mt_missing_{}", std::process::id()));
    let emulator = Emulator::start(st.env_with(&[("DATABASE_URL", &missing_db)]));
    // (deploy creates a missing database, as Prisma does; this role may not.)
    let o = st.invoke_ok(&emulator, &event, "failed");
    assert!(
        error_message(&o).contains("permission denied to create database"),
        "{o:#}"
    );
    st.published(1);
    let out = st.run(
        &["handle-event", "--event-json", &event.to_string()],
        &st.env_with(&[("DATABASE_URL", &missing_db)]),
    );
    assert_eq!(out.status.code(), Some(1));
    st.published(1);

    // A URL that does not parse is a start-up error naming DATABASE_URL, and still keeps its
    // password to itself (Stage::run records the output for the check below).
    let bad_url = format!("postgresql://{DB_ROLE}:{DB_PASSWORD}@127.0.0.1:notaport/x");
    let out = st.run(
        &["handle-event", "--event-json", &event.to_string()],
        &st.env_with(&[("DATABASE_URL", &bad_url)]),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("DATABASE_URL: "), "{}", stderr(&out));
    st.published(0);

    // Debug logging on, and publishing failing: the outcome goes to the log in full.
    let missing_topic = Moto::topic_arn(&format!("e2e-secrets-missing-{}", std::process::id()));
    let noisy =
        Emulator::start(st.env_with(&[("TOPIC_ARN", &missing_topic), ("RUST_LOG", "debug")]));
    let invoked = st.invoke(&noisy, &event);
    assert_ne!(invoked.status, 200);
    assert!(noisy.logs().contains("publishing the outcome"));
    assert_eq!(st.db.rows().len(), 1);
    st.finish(&[&emulator, &noisy]);
}

#[test]
fn a_secrets_manager_secret_is_read_and_tls_is_verified() {
    // DB_AUTH=secret: the function reads the RDS-style secret from Secrets Manager and connects
    // with TLS verify-full against the RDS CA bundle, which the local server's certificate
    // does not chain to: the failure must say so (and keep the password to itself).
    let st = Stage::app("secret", "CODE");
    let secret = json!({"engine": "postgres", "username": DB_ROLE, "password": DB_PASSWORD,
                        "host": "localhost", "port": 5432, "dbname": st.db.name});
    let arn = st.aws.create_secret(
        &format!("e2e-db-{}", std::process::id()),
        &secret.to_string(),
    );
    let (put, _) = st.put(&migrations(1));
    let emulator = Emulator::start(st.env_with(&[
        ("DB_AUTH", "secret"),
        ("DATABASE_URL", ""),
        ("DB_SECRET_ARN", &arn),
        ("DB_HOST", "localhost"),
        ("DB_NAME", &st.db.name),
    ]));
    let o = st.invoke_ok(&emulator, &s3_event(&put), "failed");
    let message = error_message(&o).to_ascii_lowercase();
    assert!(message.contains("certificate"), "{o:#}");
    assert!(
        message.contains("unknownissuer")
            || message.contains("unknown issuer")
            || message.contains("not trusted"),
        "{o:#}"
    );
    assert_eq!(o["database"]["host"], "localhost");
    assert_eq!(o["database"]["name"], st.db.name.as_str());
    assert_eq!(st.db.tables(), Vec::<String>::new());
    st.published(1);

    // A secret that does not exist: the reason names it, not its content.
    let missing = format!(
        "arn:aws:secretsmanager:{REGION}:123456789012:secret:e2e-missing-{}",
        std::process::id()
    );
    let emulator2 = Emulator::start(st.env_with(&[
        ("DB_AUTH", "secret"),
        ("DATABASE_URL", ""),
        ("DB_SECRET_ARN", &missing),
        ("DB_HOST", "localhost"),
        ("DB_NAME", &st.db.name),
    ]));
    let o = st.invoke_ok(&emulator2, &s3_event(&put), "failed");
    assert!(error_message(&o).contains(&missing), "{o:#}");
    st.published(1);
    st.finish(&[&emulator, &emulator2]);
}

#[test]
fn cold_start_and_no_op_timings() {
    // Not a benchmark: numbers for the record (`--nocapture` shows them), loose bounds only.
    let st = Stage::app("timing", "CODE");
    let (put, _) = st.put(&migrations(1));

    // Init alone: process start → its first GET …/invocation/next, on a bare runtime socket.
    let mut inits = Vec::new();
    for _ in 0..3 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let started = Instant::now();
        let mut child = Command::new(migrator_e2e::local_aws::lambda_bin())
            .env_clear()
            .envs(st.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "migrator")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let (mut socket, _) = listener.accept().unwrap();
        let mut first = [0u8; 64];
        let n = std::io::Read::read(&mut socket, &mut first).unwrap();
        inits.push(started.elapsed());
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            String::from_utf8_lossy(&first[..n])
                .starts_with("GET /2018-06-01/runtime/invocation/next"),
            "{:?}",
            String::from_utf8_lossy(&first[..n])
        );
    }
    inits.sort();

    // Under the emulator: the first invocation waits for init.
    let emulator = st.emulator();
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": st.bucket});
    let cold = emulator.invoke(&test_event);
    let cold_total = emulator.spawned_at.elapsed();
    assert_eq!(
        cold.body,
        json!({"ignored": ["s3:TestEvent"]}),
        "{}",
        cold.raw
    );
    let warm = emulator.invoke(&test_event);
    let apply = emulator.invoke(&s3_event(&put));
    assert_eq!(apply.body["status"], "applied", "{}", apply.raw);
    let noop = emulator.invoke(&s3_event(&put));
    assert_eq!(noop.body["status"], "up-to-date", "{}", noop.raw);
    let noop2 = emulator.invoke(&s3_event(&put));
    st.published(3);
    eprintln!(
        "function timings ({}):\n  init (start → first poll), min/median/max: {:?} / {:?} / {:?}\n  \
         emulator: start → first response (s3:TestEvent) {:?}; warm s3:TestEvent {:?}\n  \
         deploy applying 1 migration: {:?} (outcome durationMs {})\n  \
         no-op deploy (up-to-date; S3 GET + connect + lock + read + SNS publish): {:?} and {:?} (outcome durationMs {}, {})",
        migrator_e2e::local_aws::lambda_bin().display(),
        inits[0],
        inits[1],
        inits[2],
        cold_total,
        warm.elapsed,
        apply.elapsed,
        apply.body["durationMs"],
        noop.elapsed,
        noop2.elapsed,
        noop.body["durationMs"],
        noop2.body["durationMs"],
    );
    assert!(inits[1] < Duration::from_secs(5), "init {:?}", inits[1]);
    assert!(noop.elapsed < Duration::from_secs(10), "{:?}", noop.elapsed);
    st.finish(&[&emulator]);
}

#[test]
fn the_secrets_check_catches_a_leak() {
    assert_eq!(
        leaked(&format!("connecting to {}", role_url("x"))),
        Some(DB_PASSWORD)
    );
    assert_eq!(leaked(&format!("key={AWS_SECRET}")), Some(AWS_SECRET));
    assert_eq!(
        leaked("https://x/?X-Amz-Signature=abc"),
        Some("X-Amz-Signature")
    );
    assert_eq!(leaked("postgresql://migrator_e2e@127.0.0.1:5432/db"), None);
}

// ---------------------------------------------------------------------------------------------
// The edge: who may ask for what, strict payloads, bounded calls and records, messages that fit

#[test]
fn manual_payloads_through_a_queue_or_topic_are_rejected() {
    // A stage that does not auto-apply: a queue or topic that could approve would be a hole.
    let key = "deploy/PROD/prisma.zip";
    let st = Stage::new("queued_manual", "PROD", key, key);
    let (put, _) = st.put(&migrations(2));
    let emulator = Emulator::start(st.env_with(&[("AUTO_APPLY", "false")]));
    let artifact = format!("s3://{}/{}", put.bucket, put.key);
    let deploy = json!({"action": "deploy", "confirm": true, "artifact": artifact});
    let resolve = json!({"action": "resolve", "confirm": true, "resolve": {"applied": USERS.0}});

    // SQS carrying a deploy; SNS-in-SQS carrying a resolve: rejected, not retried.
    for (event, action) in [
        (sqs_event(std::slice::from_ref(&deploy)), "deploy"),
        (
            sqs_event(&[sns_envelope(&st.topic_arn, &resolve)]),
            "resolve",
        ),
    ] {
        let response = st.invoke(&emulator, &event);
        assert_eq!(response.status, 200, "{}", response.raw);
        assert_eq!(response.body, json!({"batchItemFailures": []}));
        let o = st.one_published().outcome;
        assert_eq!(o["status"], "rejected", "{o:#}");
        assert_eq!(o["action"], action, "{o:#}");
        assert_eq!(o["confirmed"], false);
        assert!(
            error_message(&o).contains("accepted only as a direct invocation"),
            "{o:#}"
        );
    }
    // SNS straight to the function.
    let o = st.invoke_ok(&emulator, &sns_event(&st.topic_arn, &deploy), "rejected");
    assert!(error_message(&o).contains("queues and topics carry upload events only"));
    st.published(1);
    assert_eq!(st.db.tables(), Vec::<String>::new(), "nothing was written");

    // An upload event through the same queue still plans (it asks for nothing more).
    let response = st.invoke(&emulator, &sqs_event(&[s3_event(&put)]));
    assert_eq!(response.body, json!({"batchItemFailures": []}));
    assert_eq!(st.one_published().outcome["status"], "planned");
    st.finish(&[&emulator]);
}

#[test]
fn payloads_are_read_strictly() {
    let key = "deploy/CODE/prisma.zip";
    let st = Stage::new("strict", "CODE", key, key);
    let (put, _) = st.put(&migrations(1));
    // CODE auto-applies: a confirmed deploy would write, so a misread payload would show.
    let emulator = st.emulator();

    // Duplicate keys: "last one wins" would read a confirmed deploy.
    for raw in [
        r#"{"action":"plan","confirm":false,"action":"deploy","confirm":true}"#,
        r#"{"action":"deploy","confirm":false,"confirm":true}"#,
    ] {
        let invoked = emulator.invoke_raw(raw.as_bytes(), Duration::from_secs(120));
        st.see("a strict-JSON response", invoked.raw.clone());
        assert_eq!(invoked.status, 200, "{}", invoked.raw);
        assert_eq!(
            invoked.body["status"], "rejected",
            "{raw}: {:#}",
            invoked.body
        );
        assert!(
            error_message(&invoked.body).contains("appears twice"),
            "{:#}",
            invoked.body
        );
        st.published(1);
        // The ECS command reads its event as strictly.
        let out = st.run(&["handle-event", "--event-json", raw], &st.env);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        let o: Value = serde_json::from_slice(&out.stdout).expect("the outcome on stdout");
        assert_eq!(o["status"], "rejected");
        assert!(error_message(&o).contains("appears twice"), "{o:#}");
        st.published(1);
    }
    assert_eq!(st.db.tables(), Vec::<String>::new(), "nothing was written");

    // `"versionId": "null"` is refused rather than read as "the latest version".
    let o = st.invoke_ok(
        &emulator,
        &json!({"action": "deploy", "confirm": true, "artifact": format!("s3://{}/{}", put.bucket, put.key), "versionId": "null"}),
        "rejected",
    );
    assert!(error_message(&o).contains("names no version"), "{o:#}");
    st.published(1);
    // An invalid resolve is reported as the resolve it was.
    let o = st.invoke_ok(
        &emulator,
        &json!({"action": "resolve", "confirm": true, "resolve": {"applied": USERS.0, "rolledBack": USERS.0}}),
        "rejected",
    );
    assert_eq!(o["action"], "resolve", "{o:#}");
    st.published(1);
    assert_eq!(st.db.tables(), Vec::<String>::new(), "nothing was written");
    st.finish(&[&emulator]);
}

/// `migrator ARGS` as the ECS task, killed (and the test failed) if it is still running
/// after `limit`: the bound of a test that guards a hang, generous for a loaded machine.
fn run_bounded(args: &[&str], env: &[(String, String)], limit: Duration) -> Output {
    let mut child = Command::new(migrator_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("migrator runs");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("its output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("its output");
            panic!(
                "migrator {} still ran after {limit:?} (killed):\n{}{}",
                args.join(" "),
                stdout(&out),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_sns_endpoint_that_never_answers_cannot_hold_the_run() {
    let st = Stage::app("hungsns", "CODE");
    let (put, _) = st.put(&migrations(1));
    let silent = SilentEndpoint::start();
    let env = st.env_with(&[
        ("AWS_ENDPOINT_URL_SNS", &silent.url),
        ("MAX_DURATION", "20s"),
        ("DEADLINE_MARGIN", "5s"),
    ]);
    // 20 s of budget; the bound leaves room for a loaded machine, far below a hang.
    let out = run_bounded(
        &["handle-event", "--event-json", &s3_event(&put).to_string()],
        &env,
        Duration::from_secs(90),
    );
    st.see(
        "the hung-SNS run",
        format!("{}{}", stdout(&out), stderr(&out)),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // The work was done, and the whole outcome was logged before publishing was tried.
    assert_eq!(st.db.rows().len(), 1);
    let lines: Vec<Value> = stderr(&out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let logged = lines
        .iter()
        .find(|l| l["fields"]["message"] == "outcome")
        .unwrap_or_else(|| panic!("no outcome line in\n{}", stderr(&out)));
    let document: Value =
        serde_json::from_str(logged["fields"]["document"].as_str().unwrap_or_default())
            .expect("the whole outcome in the log");
    assert_eq!(document["status"], "applied");
    assert_eq!(listed(&document, "applied"), names(&ALL[..1]));
    assert!(
        lines.iter().any(|l| l["level"] == "ERROR"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("SNS did not answer within"))),
        "{}",
        stderr(&out)
    );
    st.finish(&[]);
}

#[test]
fn records_naming_one_object_version_are_one_deploy_and_records_are_bounded() {
    let st = Stage::app("records", "CODE");
    let (put, _) = st.put(&migrations(2));
    let emulator = st.emulator();

    // 2,000 records of one object version in one event: one deploy, one message.
    let record = s3_event(&put)["Records"][0].clone();
    let event = json!({"Records": vec![record; 2000]});
    let o = st.invoke_ok(&emulator, &event, "applied");
    assert_eq!(listed(&o, "applied"), names(&ALL[..2]));
    st.published(1);
    // The same in an SQS batch of 10: each record answered (none to retry), one deploy.
    let (v2, _) = st.put(&migrations(3));
    let bodies = vec![s3_event(&v2); 10];
    let response = st.invoke(&emulator, &sqs_event(&bodies));
    assert_eq!(response.body, json!({"batchItemFailures": []}));
    let o = st.one_published().outcome;
    assert_eq!(listed(&o, "applied"), names(&ALL[2..3]));

    // Twelve different versions: ten deploys run, the rest are reported in one outcome.
    let puts: Vec<Put> = (0..12).map(|_| st.put(&migrations(3)).0).collect();
    let records: Vec<Value> = puts
        .iter()
        .map(|p| s3_event(p)["Records"][0].clone())
        .collect();
    let invoked = st.invoke(&emulator, &json!({"Records": records}));
    assert_eq!(invoked.status, 200, "{}", invoked.raw);
    let outcomes = invoked.body["outcomes"].as_array().expect("many outcomes");
    assert_eq!(outcomes.len(), 11, "{:#}", invoked.body);
    assert!(outcomes[..10].iter().all(|o| o["status"] == "up-to-date"));
    assert_eq!(outcomes[10]["status"], "rejected");
    assert!(
        error_message(&outcomes[10]).contains("2 more record(s)"),
        "{:#}",
        outcomes[10]
    );
    st.published(11);
    assert_eq!(st.db.rows().len(), 3);
    st.finish(&[&emulator]);
}

#[test]
fn twelve_hundred_pending_migrations_fit_in_the_published_message() {
    let st = Stage::app("bigplan", "PROD");
    let m = Migrations::new().with_lock("postgresql");
    for i in 0..1200 {
        m.add(
            &format!("2024{i:010}_add_the_column_number_{i:04}_to_the_orders_table"),
            "SELECT 1;\n",
        );
    }
    let (put, _) = st.put(&m);
    let emulator = Emulator::start(st.env_with(&[("AUTO_APPLY", "false")]));
    let o = st.invoke_ok(&emulator, &s3_event(&put), "planned");
    assert_eq!(listed(&o, "pending").len(), 1200, "the response is whole");
    // Published (moto, like SNS, refuses a message over 256 KiB), shortened with counts.
    let message = st.one_published();
    let published = &message.outcome;
    assert_eq!(published["status"], "planned");
    assert_eq!(published["planHash"], o["planHash"]);
    assert_eq!(published["confirmPayload"], o["confirmPayload"]);
    assert!(listed(published, "pending").len() < 1200);
    assert!(
        warnings(published).contains("of 1200 pending"),
        "{}",
        warnings(published)
    );
    st.finish(&[&emulator]);
}

#[test]
fn a_failed_migration_in_the_function_says_how_to_resolve_it_there() {
    let st = Stage::app("failhint", "CODE");
    let bad = (
        "20240102000000_bad",
        "CREATE TABLE \"Ok\" (id int);\nINSERT INTO \"Missing\" VALUES (1);\n",
    );
    let (put, _) = st.put(&with(&[USERS, bad]));
    let function = "migrator-e2e-CODE";
    let emulator = Emulator::start(st.env_with(&[("AWS_LAMBDA_FUNCTION_NAME", function)]));
    let o = st.invoke_ok(&emulator, &s3_event(&put), "failed");
    let hint = o["error"]["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains(&format!(
            "`migrator invoke --function {function} --action resolve --rolled-back {} --confirm`",
            bad.0
        )),
        "{hint}"
    );
    assert!(hint.contains(r#""resolve":{"rolledBack":"#), "{hint}");
    for never in ["`migrator resolve", "<name>"] {
        assert!(!hint.contains(never), "{never}: {hint}");
    }
    assert_eq!(st.one_published().outcome["error"]["hint"], hint);

    // `migrator invoke --action resolve` without --confirm plans the resolve and says how
    // to record it, not how to deploy.
    let object = format!("s3://{}/{}", put.bucket, put.key);
    let out = st.cli_invoke(
        &emulator,
        &[
            "--action",
            "resolve",
            "--rolled-back",
            bad.0,
            "--object",
            &object,
        ],
    );
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "To record it: migrator invoke --function {} --action resolve --rolled-back {} --object {object} --confirm",
            emulator.function_name, bad.0
        )),
        "{text}{}",
        stderr(&out)
    );
    assert!(!text.contains("To apply"), "{text}");
    st.published(1);
    st.finish(&[&emulator]);
}

/// Issue 13 item 5: a person applies despite a blocking finding with a manual payload that
/// names what they accept and who they are (`by`); without `by` it is rejected and nothing is
/// written. The outcome and the log name who invoked each run: the uploader as S3's event
/// says (verified), the person as the payload declares (with the Lambda request id, which
/// CloudTrail's Invoke record ties to the real caller).
#[test]
fn accepting_a_finding_names_who_invoked_it() {
    const DROP_EMAIL: (&str, &str) = (
        "20240105000000_drop_email",
        "ALTER TABLE \"User\" DROP COLUMN \"email\";\n",
    );
    let st = Stage::new(
        "accept",
        "PROD",
        "deploy/PROD/prisma.zip",
        "deploy/PROD/prisma.zip",
    );
    // At `warning`, dropping a column of a live table blocks an upload.
    let emulator = Emulator::start(st.env_with(&[("BLOCK_ON", "warning")]));
    let (v1, _) = st.put(&migrations(1));
    let o = st.invoke_ok(&emulator, &s3_event(&v1), "applied");
    // (principal, source, whether a Lambda request id is there). Every name is a claim: the
    // function cannot authenticate who sent an event, so nothing is ever marked verified.
    let who = |o: &Value| {
        let by = &o["invokedBy"];
        assert!(by.get("verified").is_none(), "{o:#}");
        (
            by["principal"].as_str().map(str::to_string),
            by["source"].as_str().map(str::to_string),
            by["requestId"].as_str().is_some_and(|r| !r.is_empty()),
        )
    };
    let expected =
        |principal: &str, source: &str| (Some(principal.into()), Some(source.into()), true);
    assert_eq!(
        who(&o),
        expected("AWS:AROAE2ETESTPRINCIPAL:ci", "s3-event"),
        "{o:#}"
    );
    // An EventBridge-shaped event sent straight to the function naming an admin: recorded as
    // what the event claims, no more.
    let mut forged = eventbridge_event(&v1);
    forged["detail"]["requester"] = json!("arn:aws:iam::123456789012:role/Admin");
    let o = st.invoke_ok(&emulator, &forged, "up-to-date");
    assert_eq!(
        who(&o),
        expected("arn:aws:iam::123456789012:role/Admin", "s3-event"),
        "{o:#}"
    );
    let (v2, _) = st.put(&with(&[USERS, DROP_EMAIL]));
    let o = st.invoke_ok(&emulator, &s3_event(&v2), "blocked");
    assert!(
        listed(&o, "pending").contains(&DROP_EMAIL.0.to_string()),
        "{o:#}"
    );
    let accept = format!("drop-column@{}", DROP_EMAIL.0);
    let email_column = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'User' AND column_name = 'email'";

    // Accepting without saying who: rejected, nothing written.
    let o = st.invoke_ok(
        &emulator,
        &json!({"action": "deploy", "confirm": true, "accept": [accept]}),
        "rejected",
    );
    assert!(error_message(&o).contains("`accept` needs `by`"), "{o:#}");
    assert_eq!(st.db.sql("SELECT count(*) FROM _prisma_migrations"), "1");
    assert_eq!(st.db.sql(email_column), "1");

    // With `by`: applied, and the outcome names who accepted what.
    let o = st.invoke_ok(
        &emulator,
        &json!({"action": "deploy", "confirm": true, "accept": [accept], "by": "alice@example.com"}),
        "applied",
    );
    assert_eq!(o["accepted"], json!([accept]), "{o:#}");
    assert_eq!(who(&o), expected("alice@example.com", "payload"), "{o:#}");
    assert_eq!(st.db.sql(email_column), "0");
    let logs = emulator.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("alice@example.com") && l.contains(&accept)),
        "the log line names who accepted what:\n{logs}"
    );
    st.finish(&[&emulator]);
}

/// Issue 20 (2): an uploader's key reaches the command we print for a person to paste. With
/// `$(touch${IFS}PWNED)` or a space and a `+` in it, the printed `migrator invoke` still runs
/// exactly one `migrator` with exactly the arguments of the plan's confirmation: run in
/// `sh -c` against a stub that records its arguments.
#[test]
fn a_printed_command_runs_exactly_what_it_shows() {
    for (tag, app) in [("pwned", "$(touch${IFS}PWNED)"), ("spaced", "my app+v2")] {
        let key = format!("deploy/CODE/{app}/prisma.zip");
        let st = Stage::new(tag, "CODE", "deploy/CODE/*/prisma.zip", &key);
        let env = st.env_with(&[("AUTO_APPLY", "false")]);
        let (put, _) = st.put(&migrations(1));
        let url = format!("s3://{}/{key}", st.bucket);

        // The upload (ECS): a plan whose confirmation names the object exactly.
        let out = st.run(
            &["handle-event", "--event-json", &s3_event(&put).to_string()],
            &env,
        );
        let o: Value = serde_json::from_slice(&out.stdout).expect("the outcome on stdout");
        assert_eq!(o["status"], "planned", "{o:#}");
        assert_eq!(o["confirmPayload"]["artifact"], url.as_str(), "{o:#}");
        st.one_published();

        // `migrator invoke` (the function under the emulator) prints the next step.
        let emulator = Emulator::start(env.clone());
        let out = st.cli_invoke(&emulator, &["--object", &url]);
        let text = stdout(&out);
        let printed = text
            .lines()
            .find_map(|l| l.strip_prefix("Nothing was applied. To apply exactly this plan: "))
            .unwrap_or_else(|| panic!("no next step in\n{text}{}", stderr(&out)));
        let o = st.one_published().outcome;
        let hash = o["planHash"].as_str().expect("a planHash").to_string();
        assert_eq!(
            run_printed(printed),
            [
                "invoke",
                "--function",
                emulator.function_name.as_str(),
                "--object",
                url.as_str(),
                "--version-id",
                put.version_id.as_str(),
                "--plan-hash",
                hash.as_str(),
                "--confirm",
            ],
            "{printed}"
        );
        assert!(!std::path::Path::new("PWNED").exists());
        assert_eq!(st.db.tables(), Vec::<String>::new(), "nothing was written");
        st.finish(&[&emulator]);
    }
}

/// Issue 20 (5): an SQS batch with a message of 11 upload records (more than one invocation
/// runs) and a good message: the big one is answered once with a `rejected` outcome and not
/// retried, none of its records run; the good one applies; nothing is redelivered.
#[test]
fn a_message_that_can_never_run_is_answered_once_and_the_good_message_runs() {
    let st = Stage::app("batch", "CODE");
    let (put, _) = st.put(&migrations(1));
    let big: Vec<Value> = (0..11)
        .map(|i| {
            s3_record(
                &st.bucket,
                &s3_event_key(&format!("deploy/CODE/app{i}/prisma.zip")),
                "v1",
                "e",
            )
        })
        .collect();
    let event = sqs_event(&[json!({ "Records": big }), s3_event(&put)]);
    let out = st.run(
        &["handle-event", "--event-json", &event.to_string()],
        &st.env,
    );
    let body: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)));
    assert_eq!(body, json!({"batchItemFailures": []}), "{}", stderr(&out));
    let published = st.published(2);
    let mut statuses: Vec<&str> = published
        .iter()
        .map(|p| p.outcome["status"].as_str().unwrap_or_default())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["applied", "rejected"]);
    let rejected = published
        .iter()
        .find(|p| p.outcome["status"] == "rejected")
        .unwrap();
    assert!(
        error_message(&rejected.outcome).contains("can never run"),
        "{:#}",
        rejected.outcome
    );
    assert_eq!(st.db.rows().len(), 1, "the good message ran");
    st.finish(&[]);
}

/// Issue 20 (6): S3 answering 503 with an HTML page (an outage, a proxy) is a transient
/// failure: `failed`, the SQS message retried, and a readable message (no debug dump).
#[test]
fn an_s3_outage_page_is_a_transient_failure_with_a_readable_message() {
    let st = Stage::app("s3down", "CODE");
    let (put, _) = st.put(&migrations(1));
    let outage = FixedAnswerEndpoint::start(
        "503 Service Unavailable",
        "text/html",
        "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
    );
    let env = st.env_with(&[("AWS_ENDPOINT_URL_S3", &outage.url)]);
    let event = sqs_event(&[s3_event(&put)]);
    let out = run_bounded(
        &["handle-event", "--event-json", &event.to_string()],
        &env,
        Duration::from_secs(120),
    );
    st.see(
        "the S3-outage run",
        format!("{}{}", stdout(&out), stderr(&out)),
    );
    let body: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)));
    let retried = body["batchItemFailures"].as_array().expect("an SQS answer");
    assert_eq!(retried.len(), 1, "the message is retried: {body:#}");
    assert!(outage.requests.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let o = st.one_published().outcome;
    assert_eq!(o["status"], "failed", "{o:#}");
    let message = error_message(&o);
    assert!(message.contains("HTTP 503"), "{message}");
    for dump in ["Unhandled", "{ ", "Some(", "<html"] {
        assert!(!message.contains(dump), "{dump}: {message}");
    }
    assert_eq!(st.db.tables(), Vec::<String>::new(), "nothing was written");
    st.finish(&[]);
}

/// Whether the test server has database `name`.
fn pg_database_exists(name: &str) -> bool {
    psql(
        &format!("{}/postgres", pg_server()),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    )
    .trim()
        == "1"
}

/// Issue 20 (4): on a stage without AUTO_APPLY whose database does not exist yet, the upload's
/// plan lists every migration with a usable `planHash` and creates nothing; a confirmation
/// with a wrong `planHash` is rejected before `CREATE DATABASE`; the plan's own
/// `confirmPayload` creates the database and applies exactly that plan.
#[test]
fn a_first_deploy_is_planned_and_a_wrong_confirmation_creates_nothing() {
    let key = "deploy/PROD/prisma.zip";
    let st = Stage::new("firstdeploy", "PROD", key, key);
    let name = format!("fn_first_deploy_{}", std::process::id());
    psql(
        &format!("{}/postgres", pg_server()),
        &format!("DROP DATABASE IF EXISTS \"{name}\""),
    );
    let url = format!("{}/{name}", pg_server());
    let env = st.env_with(&[("AUTO_APPLY", "false"), ("DATABASE_URL", &url)]);
    let (put, _) = st.put(&migrations(2));
    let handle = |event: &Value| -> Value {
        let out = st.run(&["handle-event", "--event-json", &event.to_string()], &env);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)))
    };

    let plan = handle(&s3_event(&put));
    assert_eq!(plan["status"], "planned", "{plan:#}");
    assert_eq!(listed(&plan, "pending"), names(&ALL[..2]));
    assert!(warnings(&plan).contains("does not exist yet"), "{plan:#}");
    assert!(
        plan["planHash"].as_str().is_some_and(|h| h.len() == 64),
        "{plan:#}"
    );
    assert!(!pg_database_exists(&name), "a plan creates nothing");
    st.one_published();

    let mut wrong = plan["confirmPayload"].clone();
    wrong["planHash"] = json!("0".repeat(64));
    let o = handle(&wrong);
    assert_eq!(o["status"], "rejected", "{o:#}");
    assert!(
        error_message(&o).contains("not what would be applied"),
        "{o:#}"
    );
    assert!(
        !pg_database_exists(&name),
        "a rejected confirmation creates nothing"
    );
    st.one_published();

    let o = handle(&plan["confirmPayload"]);
    assert_eq!(o["status"], "applied", "{o:#}");
    assert_eq!(listed(&o, "applied"), names(&ALL[..2]));
    assert!(pg_database_exists(&name));
    st.one_published();
    psql(
        &format!("{}/postgres", pg_server()),
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    );
    st.finish(&[]);
}

/// Issue 20 (4): `migrator plan` on a PostgreSQL or MySQL database that does not exist lists
/// what a deploy would apply (as it does for SQLite) instead of failing with P1003, and
/// creates nothing.
#[test]
fn plan_on_a_missing_server_database_lists_what_deploy_would_apply() {
    let mysql = std::env::var("MIGRATOR_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    for (provider, server) in [("postgresql", pg_server()), ("mysql", mysql)] {
        let m = Migrations::new().with_lock(provider);
        m.add("20240101000000_a", "CREATE TABLE a (id int);\n");
        let name = format!("mt_plan_missing_{}", std::process::id());
        let url = format!("{}/{name}", server.trim_end_matches('/'));
        let out = Command::new(migrator_bin())
            .args(["plan", "--json", "--artifact"])
            .arg(m.path())
            .args(["--database-url", &url])
            .output()
            .expect("migrator runs");
        let o: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)));
        assert_eq!(o["status"], "planned", "{provider}: {o:#}");
        assert_eq!(listed(&o, "pending"), ["20240101000000_a"], "{provider}");
        assert!(warnings(&o).contains("does not exist yet"), "{o:#}");
        let status = Command::new(migrator_bin())
            .args(["status", "--json", "--artifact"])
            .arg(m.path())
            .args(["--database-url", &url])
            .output()
            .expect("migrator runs");
        let o: Value = serde_json::from_slice(&status.stdout).expect("an outcome");
        assert_eq!(
            o["error"]["code"], "P1003",
            "{provider}: still missing, {o:#}"
        );
    }
}

/// Issue 20 (9): settings that would be ignored or that cannot work stop `handle-event` at
/// start, naming the variable, before any event is read; nothing is published.
#[test]
fn configuration_that_cannot_work_is_a_start_up_error_naming_the_variable() {
    let st = Stage::app("config", "CODE");
    let (put, _) = st.put(&migrations(1));
    let event = s3_event(&put).to_string();
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db";
    let iam = [
        ("DB_AUTH", "iam"),
        ("DB_HOST", "127.0.0.1"),
        ("DB_NAME", "app"),
        ("DB_USER", "migrator"),
    ];
    let bogus = format!("{}?sslmode=bogus", st.db_url);
    let empty_schema = format!("{}?schema=", st.db_url);
    // (overrides, the variable named, what its line says)
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            [
                &iam[..],
                &[
                    ("DATABASE_URL", ""),
                    ("DB_ENGINE", "mysql"),
                    ("DB_SCHEMA", "app"),
                ],
            ]
            .concat(),
            "DB_SCHEMA",
            "MySQL has no schema",
        ),
        (iam.to_vec(), "DATABASE_URL", "not used with DB_AUTH=iam"),
        (
            [&iam[..], &[("DATABASE_URL", ""), ("DB_SECRET_ARN", arn)]].concat(),
            "DB_SECRET_ARN",
            "not used with DB_AUTH=iam",
        ),
        (
            vec![("DB_AUTH", "secret"), ("DB_SECRET_ARN", arn)],
            "DATABASE_URL",
            "not used with DB_AUTH=secret",
        ),
        (
            vec![("DATABASE_URL", &bogus)],
            "DATABASE_URL",
            "Unknown sslmode",
        ),
        (
            vec![("DATABASE_URL", &empty_schema)],
            "DATABASE_URL",
            "`?schema=` is empty",
        ),
    ];
    for (overrides, variable, says) in cases {
        let env = st.env_with(&overrides);
        let out = st.run(&["handle-event", "--event-json", &event], &env);
        let text = stderr(&out);
        assert_ne!(out.status.code(), Some(0), "{overrides:?}: {text}");
        assert!(
            stdout(&out).trim().is_empty(),
            "no outcome: {}",
            stdout(&out)
        );
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{variable}: ")))
            .unwrap_or_else(|| panic!("{overrides:?}: no line for {variable} in\n{text}"));
        assert!(line.contains(says), "{line}");
    }
    st.published(0);
    assert_eq!(st.db.tables(), Vec::<String>::new(), "nothing was written");
    st.finish(&[]);
}

/// Issue 20 (9, the connection): an `options` value the server refuses is the server's own
/// error, not "Can't reach database server"; an empty `?schema=` is refused before connecting.
#[test]
fn what_the_server_refuses_is_its_error_and_an_empty_schema_is_refused_first() {
    let m = with(&ALL[..1]);
    let db = migrator_e2e::PgDb::fresh("fn_refused");
    let plan = |url: &str| -> Value {
        let out = Command::new(migrator_bin())
            .args(["plan", "--json", "--artifact"])
            .arg(m.path())
            .args(["--database-url", url])
            .output()
            .expect("migrator runs");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)))
    };
    let refused = plan(&format!(
        "{}?options=-c%20statement_timeout%3Dbogus",
        db.url
    ));
    let message = error_message(&refused);
    assert_eq!(refused["status"], "failed", "{refused:#}");
    assert!(message.contains("refused the connection"), "{message}");
    assert!(message.contains("statement_timeout"), "{message}");
    assert!(!message.contains("Can't reach"), "{message}");
    assert_ne!(refused["error"]["code"], "P1001", "{refused:#}");
    let empty = plan(&format!("{}?schema=", db.url));
    assert_eq!(empty["status"], "rejected", "{empty:#}");
    assert_eq!(empty["error"]["code"], "P1013", "{empty:#}");
    assert!(
        error_message(&empty).contains("`?schema=` is empty"),
        "{empty:#}"
    );
}

/// Issue 20 (8): a database port that accepts and never answers cannot hold a run past its
/// deadline: with `MAX_DURATION=3s` the connection attempt is given up within the time left
/// before the margin (not the 10 s connect timeout) and the outcome says so.
#[test]
fn a_database_that_never_answers_is_given_up_at_the_deadline() {
    let st = Stage::app("hungdb", "CODE");
    let (put, _) = st.put(&migrations(1));
    let silent = SilentEndpoint::start();
    let port = silent
        .url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let url = format!("postgresql://u:pw@127.0.0.1:{port}/app?connect_timeout=60&sslmode=disable");
    let env = st.env_with(&[
        ("DATABASE_URL", &url),
        ("MAX_DURATION", "3s"),
        ("DEADLINE_MARGIN", "1s"),
    ]);
    let out = run_bounded(
        &["handle-event", "--event-json", &s3_event(&put).to_string()],
        &env,
        Duration::from_secs(50),
    );
    st.see(
        "the hung-database run",
        format!("{}{}", stdout(&out), stderr(&out)),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let o: Value = serde_json::from_slice(&out.stdout).expect("the outcome on stdout");
    assert_eq!(o["status"], "failed", "{o:#}");
    let message = error_message(&o);
    // Given up within what was left of 3 s less the 1 s margin, never the URL's 60 s.
    let waited: u64 = message
        .split("no answer within ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!(waited <= 2, "{message}");
    assert_eq!(st.one_published().outcome, o);
    st.finish(&[]);
}

/// Issue 20 (7): with `DB_AUTH=iam` and `RUST_LOG=trace` no log line holds a credential (the
/// SDK's signer logs the session token at trace; the function never lets it below debug).
#[test]
fn no_credential_reaches_the_log_even_at_trace() {
    let st = Stage::app("tracelog", "CODE");
    let (put, _) = st.put(&migrations(1));
    let port = st
        .db_url
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .unwrap_or("5432")
        .to_string();
    let env = st.env_with(&[
        ("DB_AUTH", "iam"),
        ("DATABASE_URL", ""),
        ("DB_HOST", "127.0.0.1"),
        ("DB_PORT", &port),
        ("DB_NAME", &st.db.name),
        ("DB_USER", DB_ROLE),
        ("RUST_LOG", "trace"),
    ]);
    let out = st.run(
        &["handle-event", "--event-json", &s3_event(&put).to_string()],
        &env,
    );
    let logs = stderr(&out);
    // Trace was on: the function's own trace-level lines are there.
    assert!(
        logs.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| l["level"] == "TRACE"),
        "no trace line at all:\n{}",
        &logs[..logs.len().min(2000)]
    );
    for secret in [AWS_SESSION, AWS_SECRET, DB_PASSWORD] {
        let line = logs.lines().find(|l| l.contains(secret));
        assert!(
            line.is_none(),
            "the log holds `{secret}`: {}",
            line.unwrap_or_default()
                .chars()
                .take(600)
                .collect::<String>()
        );
    }
    // The minted token is described with its signature and session token masked.
    for name in ["X-Amz-Signature=", "X-Amz-Security-Token="] {
        for (at, _) in logs.match_indices(name) {
            assert!(logs[at + name.len()..].starts_with('…'), "{name} unmasked");
        }
    }
    // SNS requests were signed and sent (the outcome was published). (No `st.finish`: its
    // list holds the names `X-Amz-Signature`, which the masked description shows.)
    st.published(1);
}

/// Issue 20 (4): the preflight policy is checked before a missing database is created: an
/// upload that `BLOCK_ON` stops is `blocked` and the database still does not exist.
#[test]
fn a_blocked_first_deploy_creates_nothing() {
    let st = Stage::app("blockedfirst", "CODE");
    let name = format!("fn_blocked_first_{}", std::process::id());
    psql(
        &format!("{}/postgres", pg_server()),
        &format!("DROP DATABASE IF EXISTS \"{name}\""),
    );
    let url = format!("{}/{name}", pg_server());
    let env = st.env_with(&[("BLOCK_ON", "warning"), ("DATABASE_URL", &url)]);
    let (put, _) = st.put(&with(&[(
        "20240101000000_drop_legacy",
        "DROP TABLE \"Legacy\";\n",
    )]));
    let out = st.run(
        &["handle-event", "--event-json", &s3_event(&put).to_string()],
        &env,
    );
    let o: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)));
    assert_eq!(o["status"], "blocked", "{o:#}");
    assert!(error_message(&o).contains("drop-table"), "{o:#}");
    assert!(
        !pg_database_exists(&name),
        "a blocked deploy creates nothing"
    );
    st.one_published();
    st.finish(&[]);
}

/// Issue 20 (6): SNS answering 503 with an HTML page: the publish error in the log is
/// readable (the HTTP status, no debug dump) and the run fails so that it is retried.
#[test]
fn an_sns_outage_page_is_said_plainly() {
    let st = Stage::app("snsdown", "CODE");
    let (put, _) = st.put(&migrations(1));
    let outage = FixedAnswerEndpoint::start(
        "503 Service Unavailable",
        "text/html",
        "<html><body>down</body></html>",
    );
    let env = st.env_with(&[("AWS_ENDPOINT_URL_SNS", &outage.url)]);
    let out = run_bounded(
        &["handle-event", "--event-json", &s3_event(&put).to_string()],
        &env,
        Duration::from_secs(120),
    );
    st.see(
        "the SNS-outage run",
        format!("{}{}", stdout(&out), stderr(&out)),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let errors: Vec<String> = stderr(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == "ERROR")
        .filter_map(|l| l["fields"]["message"].as_str().map(str::to_string))
        .collect();
    assert!(
        errors.iter().any(|m| m.contains("HTTP 503")),
        "{errors:?}\n{}",
        stderr(&out)
    );
    for message in &errors {
        assert!(
            !message.contains("Unhandled") && !message.contains("<html"),
            "{message}"
        );
    }
    st.finish(&[]);
}
