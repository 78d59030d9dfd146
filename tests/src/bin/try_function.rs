//! `make try-function`: the Lambda function end to end on this machine, as a person would try it.
//!
//! Starts moto (S3, SNS, SQS) and the cargo-lambda runtime emulator with the `migrator` binary
//! as the function (`MIGRATOR_LAMBDA_BIN`, else what [`lambda_bin`] picks), creates a versioned
//! bucket and an SNS topic with an SQS queue subscribed to it, uploads the PostgreSQL sample
//! (`examples/postgres/prisma.zip`) under a key with a space and a `+`, and delivers the S3
//! event a real bucket sends (the key URL-encoded). It prints the outcome and the SNS message
//! read back from the queue, then uploads a newer artifact and drives a manual plan and a
//! `--confirm` apply with `migrator invoke`. Everything it starts ends with it (each child is
//! behind a guard that kills it when this process goes away, Ctrl-C included); the database
//! it creates is dropped at the end.
//!
//! Exit 0 when every step did what it should.
//!
//! env: `MIGRATOR_TEST_PG` (the PostgreSQL server), `MIGRATOR_LAMBDA_BIN`, `MIGRATOR_BIN`,
//! `MIGRATOR_PY_BIN` (the venv with moto and cargo-lambda, default `target/py/bin`).

use std::io::{Read, Write};
use std::process::{Command, ExitCode, Output};
use std::time::Duration;

use migrator_e2e::local_aws::{
    ACCOUNT, Aws, ChatbotEndpoint, Emulator, Moto, REGION, lambda_bin, s3_event, s3_event_key,
};
use migrator_e2e::stage::{ButtonCommand, button, buttons};
use migrator_e2e::{PgDb, migrator_bin, workspace};
use serde_json::Value;

const BUCKET: &str = "migrator-try-function";
const TOPIC: &str = "migrator-try-function";
const KEY: &str = "deploy/CODE/my app+v2/prisma.zip";
const EXTRA: &str = "20240315090000_add_post_slug";
/// The migration the Slack loop applies (a production-like stage: AUTO_APPLY=false).
const SLACK_EXTRA: &str = "20240316090000_add_post_views";
const SLACK_EXTRA_SQL: &str =
    "-- AlterTable\nALTER TABLE \"Post\" ADD COLUMN \"views\" INTEGER NOT NULL DEFAULT 0;\n";
const PROD_FUNCTION: &str = "migrator-try-PROD";
const EXTRA_SQL: &str = "-- AlterTable\nALTER TABLE \"Post\" ADD COLUMN \"slug\" TEXT;\n\n-- CreateIndex\nCREATE UNIQUE INDEX \"Post_slug_key\" ON \"Post\"(\"slug\");\n";
/// Fake credentials: moto accepts any.
const KEY_ID: &str = "AKIATRYFUNCTION";
const SECRET: &str = "try-function-secret";

fn main() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("\ntry-function: every step did what it should.");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("\ntry-function: {why}");
            ExitCode::FAILURE
        }
    }
}

fn step(title: &str) {
    println!("\n=== {title}");
}

fn run() -> Result<(), String> {
    let sample = workspace().join("examples/postgres/prisma.zip");
    let zip = std::fs::read(&sample).map_err(|e| {
        format!(
            "{}: {e} (make examples/postgres/prisma.zip)",
            sample.display()
        )
    })?;

    step("moto (S3, SNS, SQS) on loopback");
    let moto = Moto::start();
    let aws = moto.aws();
    println!("moto at {}", moto.url);
    aws.create_versioned_bucket(BUCKET);
    let topic_arn = aws.create_topic(TOPIC);
    let queue_url = aws.subscribed_queue(&topic_arn, TOPIC);
    println!("bucket {BUCKET} (versioned), topic {topic_arn}, queue {queue_url} subscribed to it");

    step("a fresh PostgreSQL database");
    let db = PgDb::fresh("try_function");
    println!("{} (dropped when this ends)", db.name);

    let env = vec![
        ("STAGE", "CODE".to_string()),
        ("DB_AUTH", "url".into()),
        ("DATABASE_URL", db.url.clone()),
        ("ARTIFACT_BUCKET", BUCKET.into()),
        ("ARTIFACT_KEY", KEY.into()),
        ("TOPIC_ARN", topic_arn.clone()),
        ("AWS_REGION", REGION.into()),
        ("AWS_ENDPOINT_URL", moto.url.clone()),
        ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ];

    step("the Lambda emulator (cargo lambda watch --only-lambda-apis) and the function");
    let bin = lambda_bin();
    let emulator = Emulator::start_bin(&bin, env.clone());
    println!("function binary: {}", bin.display());
    println!(
        "AWS_LAMBDA_RUNTIME_API={} AWS_LAMBDA_FUNCTION_NAME={}",
        emulator.runtime_api, emulator.function_name
    );
    for (name, value) in &env {
        let shown = if *name == "DATABASE_URL" {
            redact_password(value)
        } else {
            value.clone()
        };
        println!("{name}={shown}");
    }

    step(&format!(
        "upload the PostgreSQL sample to s3://{BUCKET}/{KEY}"
    ));
    let put = aws.put_object(BUCKET, KEY, &zip);
    println!("version {} etag {}", put.version_id, put.etag);

    let event = s3_event(&put);
    step(&format!(
        "deliver the S3 event (key as S3 sends it: {})",
        s3_event_key(KEY)
    ));
    let invoked = emulator.invoke(&event);
    print_outcome(&invoked.body);
    expect(
        invoked.status == 200,
        "the invocation answered 200",
        &invoked.raw,
    )?;
    expect_status(&invoked.body, "applied")?;
    print_published(&aws, &queue_url)?;

    step("upload a newer artifact: the sample plus one migration");
    let newer = with_extra_migration(&zip)?;
    let put2 = aws.put_object(BUCKET, KEY, &newer);
    println!("version {} adds {EXTRA}", put2.version_id);

    step(&format!(
        "migrator invoke --function {} --endpoint-url {}   (the plan)",
        emulator.function_name,
        emulator.endpoint_url()
    ));
    let plan = invoke_cli(&emulator, &[])?;
    let text = String::from_utf8_lossy(&plan.stdout).into_owned();
    print!("{text}");
    expect(
        plan.status.success() && text.contains(EXTRA),
        "the plan names the new migration",
        &String::from_utf8_lossy(&plan.stderr),
    )?;
    expect(
        !db.tables().is_empty() && !db.sql(POST_COLUMNS).contains("slug"),
        "the plan applied nothing",
        "",
    )?;
    print_published(&aws, &queue_url)?;

    step("migrator invoke … --confirm   (the apply)");
    let apply = invoke_cli(&emulator, &["--confirm"])?;
    let text = String::from_utf8_lossy(&apply.stdout).into_owned();
    print!("{text}");
    expect(
        apply.status.success() && db.sql(POST_COLUMNS).contains("slug"),
        "--confirm applied the new migration",
        &String::from_utf8_lossy(&apply.stderr),
    )?;
    print_published(&aws, &queue_url)?;

    slack_loop(&aws, &topic_arn, &queue_url, &env, &db, &newer)?;

    step(&format!("what the database {} holds now", db.name));
    println!("tables: {}", db.tables().join(", "));
    println!(
        "{}",
        db.sql("SELECT migration_name || '  finished ' || finished_at FROM _prisma_migrations ORDER BY migration_name")
    );
    Ok(())
}

/// Issue 24: the same function on a stage that only plans uploads (AUTO_APPLY=false) with the
/// confirm door (CONFIRM_QUALIFIER=apply). An upload plans; the AWS Chatbot message (what
/// SNS's `https` subscriber receives) carries a button; its exact command is refused through
/// the plain function and applies the plan through the `apply` qualifier, in the same thread.
fn slack_loop(
    aws: &Aws,
    topic_arn: &str,
    queue_url: &str,
    env: &[(&str, String)],
    db: &PgDb,
    base: &[u8],
) -> Result<(), String> {
    step(
        "the Slack loop: a stage that plans uploads, with the confirm door (AUTO_APPLY=false, CONFIRM_QUALIFIER=apply)",
    );
    let chatbot = ChatbotEndpoint::start();
    aws.subscribe_https(topic_arn, &chatbot.url);
    println!(
        "an https subscriber stands where AWS Chatbot would: {}",
        chatbot.url
    );
    let mut prod: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| *k != "STAGE")
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    for (k, v) in [
        ("STAGE", "PROD"),
        ("AUTO_APPLY", "false"),
        ("CONFIRM_QUALIFIER", "apply"),
        ("AWS_LAMBDA_FUNCTION_NAME", PROD_FUNCTION),
    ] {
        prod.push((k.into(), v.into()));
    }
    let emulator = Emulator::start_bin(&lambda_bin(), prod.clone());
    let zip = with_migration(base, SLACK_EXTRA, SLACK_EXTRA_SQL)?;
    let put = aws.put_object(BUCKET, KEY, &zip);
    println!("uploaded version {} (adds {SLACK_EXTRA})", put.version_id);
    let invoked = emulator.invoke(&s3_event(&put));
    expect_status(&invoked.body, "planned")?;
    aws.receive(queue_url, 1, Duration::from_secs(60));
    let plan = chatbot.take(1).remove(0);
    print_chatbot("the plan's Slack message", &plan);
    let command = button(&plan, "Apply this plan");
    println!(
        "\nthe button \"Apply this plan\" runs (AWS Chatbot shows it in a confirmation dialog first):\n  {command}"
    );
    expect(
        command.len() < 1000 && buttons(&plan).len() == 1,
        "one button, its command built from the message",
        "",
    )?;
    let pressed = ButtonCommand::parse(&command)?;

    step("the same command without --qualifier apply (what a plain invoker may send)");
    let refused = emulator.invoke(&pressed.payload);
    print_outcome(&refused.body);
    expect_status(&refused.body, "rejected")?;
    aws.receive(queue_url, 1, Duration::from_secs(60));
    chatbot.take(1);

    step("the button's command through the apply qualifier");
    println!(
        "(cargo-lambda's emulator cannot carry a qualifier: it runs as the ECS command with the ARN Lambda would give, arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PROD_FUNCTION}:apply)"
    );
    let out = Command::new(migrator_bin())
        .args(["handle-event", "--event-json", &pressed.payload.to_string()])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(prod.iter().map(|(k, v)| (k, v)))
        .env(
            "MIGRATOR_INVOKED_FUNCTION_ARN",
            format!(
                "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}:{}",
                pressed.function,
                pressed.qualifier.as_deref().unwrap_or_default()
            ),
        )
        .output()
        .map_err(|e| format!("running migrator handle-event: {e}"))?;
    let applied: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    print_outcome(&applied);
    expect_status(&applied, "applied")?;
    expect(
        db.sql(POST_COLUMNS).contains("views"),
        "the plan was applied",
        "",
    )?;
    aws.receive(queue_url, 1, Duration::from_secs(60));
    let outcome = chatbot.take(1).remove(0);
    print_chatbot("the outcome's Slack message", &outcome);
    expect(
        outcome["metadata"]["threadId"] == plan["metadata"]["threadId"],
        "the outcome is in the plan's thread",
        "",
    )?;
    Ok(())
}

/// The parts of a Chatbot custom notification a person sees, and its thread and variables.
fn print_chatbot(what: &str, message: &Value) {
    println!("{what}:");
    println!(
        "  title: {}",
        message["content"]["title"].as_str().unwrap_or_default()
    );
    println!(
        "  summary: {}",
        message["metadata"]["summary"].as_str().unwrap_or_default()
    );
    println!(
        "  threadId: {}",
        message["metadata"]["threadId"].as_str().unwrap_or_default()
    );
    for (k, v) in message["metadata"]["additionalContext"]
        .as_object()
        .into_iter()
        .flatten()
    {
        println!("  additionalContext.{k}: {v}");
    }
}

const POST_COLUMNS: &str =
    "SELECT string_agg(column_name, ',') FROM information_schema.columns WHERE table_name = 'Post'";

fn expect(ok: bool, what: &str, detail: &str) -> Result<(), String> {
    if ok {
        println!("✔ {what}");
        Ok(())
    } else {
        Err(format!("expected: {what}\n{detail}"))
    }
}

fn expect_status(outcome: &Value, status: &str) -> Result<(), String> {
    expect(
        outcome["status"] == status,
        &format!("the outcome is `{status}`"),
        &format!("{outcome:#}"),
    )
}

/// The outcome's status, applied migrations and error, not the whole document.
fn print_outcome(outcome: &Value) {
    println!("status: {}", outcome["status"]);
    println!("artifact: {}", outcome["artifact"]["location"]);
    for applied in outcome["applied"].as_array().into_iter().flatten() {
        println!(
            "  applied {} ({})",
            applied["name"].as_str().unwrap_or_default(),
            applied["execution"]["mode"].as_str().unwrap_or_default()
        );
    }
    if !outcome["error"].is_null() {
        println!("error: {:#}", outcome["error"]);
    }
}

/// Reads the outcome message SNS delivered to the queue and prints its envelope fields.
fn print_published(aws: &Aws, queue_url: &str) -> Result<(), String> {
    let bodies = aws.receive(queue_url, 1, Duration::from_secs(60));
    expect(
        !bodies.is_empty(),
        "an SNS message arrived in the queue",
        "no message within 60 s",
    )?;
    for raw in bodies {
        let envelope: Value = serde_json::from_str(&raw).map_err(|e| format!("{e}: {raw}"))?;
        println!("SNS message (read back from SQS):");
        println!(
            "  Subject: {}",
            envelope["Subject"].as_str().unwrap_or_default()
        );
        let mut attributes: Vec<String> = envelope["MessageAttributes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v["Value"].as_str().unwrap_or_default()))
            .collect();
        attributes.sort();
        println!("  MessageAttributes: {}", attributes.join(" "));
        let message: Value = serde_json::from_str(envelope["Message"].as_str().unwrap_or_default())
            .unwrap_or(Value::Null);
        println!(
            "  Message: the outcome document (status {}, {} applied, {} pending)",
            message["status"],
            message["applied"].as_array().map_or(0, Vec::len),
            message["pending"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(())
}

/// `migrator invoke --function NAME --endpoint-url EMULATOR ARGS` with fake AWS credentials.
fn invoke_cli(emulator: &Emulator, args: &[&str]) -> Result<Output, String> {
    Command::new(migrator_bin())
        .args([
            "invoke",
            "--function",
            &emulator.function_name,
            "--endpoint-url",
        ])
        .arg(emulator.endpoint_url())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs([
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ])
        .output()
        .map_err(|e| format!("running migrator invoke: {e}"))
}

/// The sample zip with one more migration folder, entries in the same order and form.
fn with_extra_migration(zip: &[u8]) -> Result<Vec<u8>, String> {
    with_migration(zip, EXTRA, EXTRA_SQL)
}

/// `zip` with the migration `name` (`sql`) added.
fn with_migration(zip: &[u8], name: &str, sql: &str) -> Result<Vec<u8>, String> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|e| format!("the sample: {e}"))?;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        let name = entry.name().map_err(|e| e.to_string())?.into_owned();
        out.start_file(name, options)
            .and_then(|_| out.write_all(&bytes).map_err(Into::into))
            .map_err(|e| e.to_string())?;
    }
    out.start_file(format!("prisma/migrations/{name}/migration.sql"), options)
        .and_then(|_| out.write_all(sql.as_bytes()).map_err(Into::into))
        .map_err(|e| e.to_string())?;
    out.finish()
        .map(|cursor| cursor.into_inner())
        .map_err(|e| e.to_string())
}

/// `scheme://user:***@host/…` for printing a URL.
fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            let userinfo = &url[start + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..start + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
