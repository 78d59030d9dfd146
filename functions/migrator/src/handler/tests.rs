//! The handler's rules over in-memory edges: which objects are fetched, what an SQS batch
//! answers, how publish failures count, what reaches the credentials. The moto + emulator
//! suite (`tests/tests/function.rs`) is the end-to-end proof over the AWS edges.

use std::sync::Mutex;

use crate::error::EdgeError;
use migrator_engine::outcome::{Outcome, Status};
use serde_json::{Value, json};

use super::*;
use crate::config::{self, tests::BASE};
use crate::ports::{DbSecret, Fetched};

/// Serves `bytes` for every object (the version `version`), except keys in `unavailable`
/// (a transient fault); records every fetch.
#[derive(Default)]
struct FakeStore {
    bytes: Vec<u8>,
    version: Option<String>,
    unavailable: Vec<String>,
    fetched: Mutex<Vec<ObjectRef>>,
}

impl ArtifactSource for FakeStore {
    async fn fetch(&self, object: &ObjectRef, _max_bytes: u64) -> Result<Fetched, EdgeError> {
        self.fetched.lock().unwrap().push(object.clone());
        if self.unavailable.contains(&object.key) {
            return Err(EdgeError::ArtifactUnavailable {
                location: format!("s3://{}/{}", object.bucket, object.key),
                reason: "S3 could not be reached".into(),
                transient: true,
            });
        }
        Ok(Fetched {
            bytes: self.bytes.clone(),
            location: format!("s3://{}/{}", object.bucket, object.key),
            version_id: self.version.clone(),
        })
    }
}

/// Records what it publishes; fails every publish when `down`.
#[derive(Default)]
struct FakeTopic {
    down: bool,
    published: Mutex<Vec<Outcome>>,
    /// The door each publish named.
    doors: Mutex<Vec<Option<String>>>,
}

impl Notifier for FakeTopic {
    fn topic(&self) -> &str {
        "arn:aws:sns:eu-west-1:123456789012:migrations"
    }

    async fn publish(&self, outcome: &Outcome, door: Option<&str>) -> Result<String, PublishError> {
        if self.down {
            return Err(PublishError {
                topic: self.topic().into(),
                reason: "SNS could not be reached".into(),
            });
        }
        self.published.lock().unwrap().push(outcome.clone());
        self.doors.lock().unwrap().push(door.map(str::to_string));
        Ok("message-1".into())
    }
}

/// Mints `token-N` tokens (or refuses, with `no_credentials`) and serves `secret`; records
/// every request.
#[derive(Default)]
struct FakeCredentials {
    no_credentials: bool,
    secret: Option<(&'static str, Option<&'static str>, Option<u16>)>,
    tokens: Mutex<Vec<TokenFor>>,
    secrets: Mutex<Vec<String>>,
}

impl Credentials for FakeCredentials {
    async fn iam_token(&self, token: &TokenFor) -> Result<String, EdgeError> {
        self.tokens.lock().unwrap().push(token.clone());
        if self.no_credentials {
            return Err(EdgeError::Credentials {
                reason: "no AWS credentials: none in the environment".into(),
            });
        }
        Ok(format!("token-{}", self.tokens.lock().unwrap().len()))
    }

    async fn database_secret(&self, arn: &str) -> Result<DbSecret, EdgeError> {
        self.secrets.lock().unwrap().push(arn.to_string());
        let (username, host, port) = self.secret.ok_or_else(|| EdgeError::Credentials {
            reason: format!("reading secret {arn} failed: ResourceNotFoundException"),
        })?;
        Ok(DbSecret {
            username: username.into(),
            password: "from-the-secret".into(),
            host: host.map(str::to_string),
            port,
            dbname: Some("app_from_secret".into()),
        })
    }
}

type TestHandler = Handler<FakeStore, FakeTopic, FakeCredentials>;

/// BASE with `extra` set (replacing BASE's values) and `unset` left out.
fn stage(
    extra: &[(&'static str, &'static str)],
    unset: &[&str],
) -> Vec<(&'static str, &'static str)> {
    BASE.iter()
        .filter(|(k, _)| !unset.contains(k) && !extra.iter().any(|(e, _)| e == k))
        .chain(extra)
        .copied()
        .collect()
}

/// A handler for BASE with `extra` variables over the given edges.
fn handler(
    extra: &[(&'static str, &'static str)],
    store: FakeStore,
    topic: FakeTopic,
    credentials: FakeCredentials,
) -> TestHandler {
    handler_for(&stage(extra, &[]), store, topic, credentials)
}

fn handler_for(
    vars: &[(&str, &str)],
    store: FakeStore,
    topic: FakeTopic,
    credentials: FakeCredentials,
) -> TestHandler {
    let config = config::tests::config(vars).expect("config");
    Handler::new(
        config,
        Edges {
            artifacts: store,
            notifier: topic,
            credentials,
            guard: None,
        },
    )
    .expect("handler")
}

fn plain() -> TestHandler {
    handler(
        &[],
        FakeStore::default(),
        FakeTopic::default(),
        FakeCredentials::default(),
    )
}

fn over_store(store: FakeStore) -> TestHandler {
    handler(&[], store, FakeTopic::default(), FakeCredentials::default())
}

/// A store that cannot be reached for `key`.
fn unreachable_for(key: &str) -> FakeStore {
    FakeStore {
        unavailable: vec![key.into()],
        ..FakeStore::default()
    }
}

fn with_sns_down() -> TestHandler {
    let topic = FakeTopic {
        down: true,
        ..FakeTopic::default()
    };
    handler(&[], FakeStore::default(), topic, FakeCredentials::default())
}

fn s3_record(bucket: &str, key: &str, version: &str) -> Value {
    json!({"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
           "s3":{"bucket":{"name":bucket},"object":{"key":key,"versionId":version}}})
}

fn direct(records: &[Value]) -> String {
    json!({ "Records": records }).to_string()
}

/// An SQS batch: `(messageId, S3 record)` per message.
fn sqs(messages: &[(&str, Value)]) -> String {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, record)| {
            json!({"messageId": id, "eventSource": "aws:sqs",
                   "body": json!({ "Records": [record] }).to_string()})
        })
        .collect();
    json!({ "Records": records }).to_string()
}

/// The message ids an SQS answer asks to have redelivered.
fn retried(response: &Response) -> Vec<String> {
    response.body["batchItemFailures"]
        .as_array()
        .expect("an SQS answer")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn handle(handler: &TestHandler, event: &str) -> Response {
    handler
        .handle(event.as_bytes(), &Invocation::default())
        .await
}

fn fetched(handler: &TestHandler) -> Vec<String> {
    let fetched = handler.edges.artifacts.fetched.lock().unwrap();
    fetched.iter().map(|o| o.key.clone()).collect()
}

fn error_text(outcome: &Outcome) -> String {
    outcome
        .error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

/// `outcome` has `status` and an error saying `says`.
fn assert_failed(outcome: &Outcome, status: Status, says: &str) {
    assert_eq!(outcome.status, status, "{}", error_text(outcome));
    assert!(
        error_text(outcome).contains(says),
        "{}",
        error_text(outcome)
    );
}

const KEY: &str = "deploy/PROD/app/prisma.zip";

#[tokio::test]
async fn objects_outside_the_stage_bucket_or_key_are_refused_before_any_fetch() {
    let handler = plain();
    for (bucket, key, says) in [
        ("other-bucket", KEY, "not this stage's artifact bucket"),
        ("artifacts", "deploy/CODE/app/prisma.zip", "does not match"),
        (
            "artifacts",
            "deploy/PROD/../prisma.zip",
            "`.`/`..` segments",
        ),
        (
            "artifacts",
            "deploy/PROD/a\u{7}/prisma.zip",
            "control characters",
        ),
    ] {
        let response = handle(&handler, &direct(&[s3_record(bucket, key, "v1")])).await;
        let [outcome] = response.outcomes.as_slice() else {
            panic!("one outcome: {:#}", response.body);
        };
        assert_eq!(outcome.status, Status::Rejected, "{key}");
        assert!(
            error_text(outcome).contains(says),
            "{key}: {}",
            error_text(outcome)
        );
    }
    assert_eq!(
        fetched(&handler),
        Vec::<String>::new(),
        "nothing downloaded"
    );
    assert_eq!(handler.edges.notifier.published.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn an_unusable_artifact_is_rejected_before_any_credential_is_minted() {
    let handler = over_store(FakeStore {
        bytes: b"not a zip".to_vec(),
        ..FakeStore::default()
    });
    let response = handle(&handler, &direct(&[s3_record("artifacts", KEY, "v1")])).await;
    assert_eq!(response.outcomes[0].status, Status::Rejected);
    assert_eq!(fetched(&handler), [KEY]);
    assert!(handler.edges.credentials.tokens.lock().unwrap().is_empty());
}

#[tokio::test]
async fn in_an_sqs_batch_only_the_records_worth_retrying_are_redelivered() {
    let handler = over_store(unreachable_for("deploy/PROD/down/prisma.zip"));
    let response = handle(
        &handler,
        &sqs(&[
            ("refused", s3_record("other-bucket", KEY, "v1")),
            (
                "unreachable",
                s3_record("artifacts", "deploy/PROD/down/prisma.zip", "v1"),
            ),
        ]),
    )
    .await;
    let statuses: Vec<Status> = response.outcomes.iter().map(|o| o.status).collect();
    assert_eq!(statuses, [Status::Rejected, Status::Failed]);
    // A refusal cannot change on redelivery; a transient S3 fault can.
    assert_eq!(retried(&response), ["unreachable"]);
    assert!(!response.fails_invocation);
}

#[tokio::test]
async fn a_record_whose_outcome_was_not_published_is_redelivered() {
    let handler = with_sns_down();
    let response = handle(
        &handler,
        &sqs(&[("refused", s3_record("other-bucket", KEY, "v1"))]),
    )
    .await;
    assert_eq!(response.outcomes[0].status, Status::Rejected);
    assert_eq!(retried(&response), ["refused"]);
    assert_eq!(response.publish_errors.len(), 1);
    assert!(
        !response.fails_invocation,
        "in a batch only the record is retried"
    );
}

#[tokio::test]
async fn a_direct_invocation_whose_outcome_was_not_published_fails() {
    let handler = with_sns_down();
    let response = handle(&handler, &direct(&[s3_record("other-bucket", KEY, "v1")])).await;
    assert!(response.fails_invocation);
    let [error] = response.publish_errors.as_slice() else {
        panic!("one publish error");
    };
    assert!(
        error
            .to_string()
            .contains("arn:aws:sns:eu-west-1:123456789012:migrations")
    );
    // The outcome is still answered (and logged).
    assert_eq!(response.body["status"], "rejected");
}

#[tokio::test]
async fn records_naming_one_object_version_are_one_deploy_sharing_one_answer() {
    let handler = over_store(unreachable_for(KEY));
    let response = handle(
        &handler,
        &sqs(&[
            ("first", s3_record("artifacts", KEY, "v1")),
            ("again", s3_record("artifacts", KEY, "v1")),
            ("newer", s3_record("artifacts", KEY, "v2")),
        ]),
    )
    .await;
    assert_eq!(fetched(&handler), [KEY, KEY], "v1 once, v2 once");
    assert_eq!(response.outcomes.len(), 2);
    // The duplicate shares the first record's answer: worth retrying, so both are redelivered.
    assert_eq!(retried(&response), ["first", "again", "newer"]);
}

#[tokio::test]
async fn more_records_than_the_limit_are_left_for_redelivery_or_reported() {
    let handler = plain();
    let records: Vec<(String, Value)> = (0..MAX_ITEMS_PER_INVOCATION + 2)
        .map(|i| {
            (
                format!("m{i}"),
                s3_record("artifacts", &format!("deploy/PROD/app{i}/prisma.zip"), "v1"),
            )
        })
        .collect();
    let messages: Vec<(&str, Value)> = records
        .iter()
        .map(|(id, r)| (id.as_str(), r.clone()))
        .collect();
    let response = handle(&handler, &sqs(&messages)).await;
    assert_eq!(fetched(&handler).len(), MAX_ITEMS_PER_INVOCATION);
    assert_eq!(
        retried(&response),
        [
            format!("m{MAX_ITEMS_PER_INVOCATION}"),
            format!("m{}", MAX_ITEMS_PER_INVOCATION + 1)
        ]
    );

    let handler = plain();
    let direct_records: Vec<Value> = records.into_iter().map(|(_, r)| r).collect();
    let response = handle(&handler, &direct(&direct_records)).await;
    assert_eq!(fetched(&handler).len(), MAX_ITEMS_PER_INVOCATION);
    let last = response.outcomes.last().expect("outcomes");
    assert_failed(last, Status::Rejected, "2 more record(s) in this event");
    assert_eq!(response.outcomes.len(), MAX_ITEMS_PER_INVOCATION + 1);
}

/// An SQS batch: `(messageId, S3 records)` per message.
fn sqs_many(messages: &[(&str, Vec<Value>)]) -> String {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, records)| {
            json!({"messageId": id, "eventSource": "aws:sqs",
                   "body": json!({ "Records": records }).to_string()})
        })
        .collect();
    json!({ "Records": records }).to_string()
}

fn apps(range: std::ops::Range<usize>, prefix: &str) -> Vec<Value> {
    range
        .map(|i| {
            s3_record(
                "artifacts",
                &format!("deploy/PROD/{prefix}{i}/prisma.zip"),
                "v1",
            )
        })
        .collect()
}

#[tokio::test]
async fn a_message_that_can_never_run_is_answered_once_and_the_good_ones_run() {
    let handler = plain();
    let big = apps(0..MAX_ITEMS_PER_INVOCATION + 1, "big");
    let response = handle(
        &handler,
        &sqs_many(&[
            ("big", big),
            ("good", vec![s3_record("artifacts", KEY, "v1")]),
        ]),
    )
    .await;
    // None of the big message's records ran; the good message did; nothing is redelivered.
    assert_eq!(fetched(&handler), [KEY]);
    assert_eq!(retried(&response), Vec::<String>::new());
    assert_eq!(response.outcomes.len(), 2);
    assert_failed(&response.outcomes[0], Status::Rejected, "can never run");
    assert!(!error_text(&response.outcomes[1]).contains("can never run"));
    assert_eq!(handler.edges.notifier.published.lock().unwrap().len(), 2);
    // Many records of one object version are one deploy: such a message runs.
    let handler = plain();
    let same = vec![s3_record("artifacts", KEY, "v1"); 50];
    let response = handle(&handler, &sqs_many(&[("same", same)])).await;
    assert_eq!(fetched(&handler), [KEY]);
    assert_eq!(retried(&response), Vec::<String>::new());
}

#[tokio::test]
async fn a_message_runs_whole_or_waits_for_redelivery() {
    let handler = plain();
    let response = handle(
        &handler,
        &sqs_many(&[
            ("first", apps(0..6, "a")),
            ("second", apps(0..6, "b")),
            ("third", apps(0..4, "c")),
        ]),
    )
    .await;
    // 6 + 6 is over the limit: the second waits whole; the third still fits.
    assert_eq!(retried(&response), ["second"]);
    let fetched = fetched(&handler);
    assert_eq!(fetched.len(), 10);
    assert!(fetched.iter().all(|k| !k.contains("/b")), "{fetched:?}");
}

#[tokio::test]
async fn a_test_event_is_acknowledged_and_nothing_is_published() {
    let handler = plain();
    let response = handle(
        &handler,
        &json!({"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"artifacts"}).to_string(),
    )
    .await;
    assert_eq!(response.body, json!({ "ignored": ["s3:TestEvent"] }));
    assert!(handler.edges.notifier.published.lock().unwrap().is_empty());
    assert!(response.outcomes.is_empty() && !response.fails_invocation);
}

#[tokio::test]
async fn a_manual_request_without_an_artifact_needs_an_exact_key() {
    let handler = plain();
    let response = handle(&handler, &json!({"action": "deploy"}).to_string()).await;
    assert_failed(
        &response.outcomes[0],
        Status::Rejected,
        "ARTIFACT_KEY is a pattern",
    );
    assert!(fetched(&handler).is_empty());

    let handler = handler_with_exact_key();
    handle(&handler, &json!({"action": "status"}).to_string()).await;
    assert_eq!(
        fetched(&handler),
        [KEY],
        "the configured key, latest version"
    );
    assert_eq!(
        handler.edges.artifacts.fetched.lock().unwrap()[0].version_id,
        None
    );
}

fn handler_with_exact_key() -> TestHandler {
    handler(
        &[("ARTIFACT_KEY", KEY)],
        FakeStore {
            bytes: b"not a zip".to_vec(),
            ..FakeStore::default()
        },
        FakeTopic::default(),
        FakeCredentials::default(),
    )
}

#[tokio::test]
async fn iam_tokens_are_minted_for_the_configured_endpoint() {
    let handler = handler(
        &[("DB_PORT", "6543")],
        FakeStore::default(),
        FakeTopic::default(),
        FakeCredentials::default(),
    );
    let target = handler
        .target_for(&handler.config.db, None)
        .await
        .expect("target");
    let info = target.info();
    assert_eq!(
        (info.host.as_deref(), info.port, info.name.as_str()),
        (Some("db.example"), Some(6543), "app")
    );
    let tokens = handler.edges.credentials.tokens.lock().unwrap();
    assert_eq!(
        *tokens,
        [TokenFor {
            host: "db.example".into(),
            port: 6543,
            user: "migrator".into(),
        }]
    );
}

#[tokio::test]
async fn the_stage_variables_win_over_the_secret_and_fill_only_what_is_missing() {
    let secret = |host, port| FakeCredentials {
        secret: Some(("secret_user", host, port)),
        ..FakeCredentials::default()
    };
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db";
    let vars = [("DB_AUTH", "secret"), ("DB_SECRET_ARN", arn)];
    let handler = handler(
        &vars,
        FakeStore::default(),
        FakeTopic::default(),
        secret(Some("secret.host"), Some(5433)),
    );
    let info = handler
        .target_for(&handler.config.db, None)
        .await
        .expect("target")
        .info();
    assert_eq!(
        (info.host.as_deref(), info.port, info.name.as_str()),
        (Some("db.example"), Some(5433), "app"),
        "DB_HOST and DB_NAME win; the port comes from the secret"
    );
    assert_eq!(*handler.edges.credentials.secrets.lock().unwrap(), [arn]);
    assert!(handler.edges.credentials.tokens.lock().unwrap().is_empty());

    let handler = handler_for(
        &stage(&vars, &["DB_HOST"]),
        FakeStore::default(),
        FakeTopic::default(),
        secret(None, None),
    );
    let error = handler
        .target_for(&handler.config.db, None)
        .await
        .expect_err("no host anywhere");
    assert!(
        error
            .to_string()
            .contains("set DB_HOST or put `host` in the secret"),
        "{error}"
    );
}

/// A real deploy artifact (the PostgreSQL example's).
const EXAMPLE_ZIP: &[u8] = include_bytes!("../../../../examples/postgres/prisma.zip");

#[tokio::test]
async fn without_credentials_the_outcome_still_names_the_artifact_read_and_is_retried() {
    let store = FakeStore {
        bytes: EXAMPLE_ZIP.to_vec(),
        version: Some("v7".into()),
        ..FakeStore::default()
    };
    let credentials = FakeCredentials {
        no_credentials: true,
        ..FakeCredentials::default()
    };
    let handler = handler(&[], store, FakeTopic::default(), credentials);
    let response = handle(&handler, &sqs(&[("m", s3_record("artifacts", KEY, "v7"))])).await;
    let outcome = &response.outcomes[0];
    assert_failed(outcome, Status::Failed, "no AWS credentials");
    let artifact = outcome
        .artifact
        .as_ref()
        .expect("the artifact that was read");
    assert_eq!(artifact.location, format!("s3://artifacts/{KEY}"));
    assert!(artifact.migration_count > 0);
    assert_eq!(retried(&response), ["m"]);
    let published = handler.edges.notifier.published.lock().unwrap();
    assert_eq!(published[0].stage.as_deref(), Some("PROD"));
}

fn invoked_as(arn: &str) -> Invocation {
    Invocation {
        request_id: "req-1".into(),
        invoked_function_arn: Some(arn.into()),
        ..Invocation::default()
    }
}

#[test]
fn the_qualifier_is_the_eighth_part_of_the_invoked_arn() {
    let arn = "arn:aws:lambda:eu-west-1:123456789012:function:migrator-PROD";
    assert_eq!(qualifier_of(&format!("{arn}:apply")), Some("apply"));
    assert_eq!(qualifier_of(&format!("{arn}:7")), Some("7"));
    assert_eq!(qualifier_of(arn), None);
    assert_eq!(
        qualifier_of("function-arn"),
        None,
        "the emulator's placeholder"
    );
    assert_eq!(qualifier_of(&format!("{arn}:")), None);
    assert_eq!(qualifier_of(&format!("{arn}:apply:x")), None);
    assert_eq!(
        qualifier_of("arn:aws:sns:eu-west-1:123456789012:function:x:apply"),
        None
    );
}

/// Issue 24 (1): where the stage has a confirm door, a confirmed deploy or resolve is honoured
/// only through it; a plan or status needs none; without CONFIRM_QUALIFIER nothing changes.
#[tokio::test]
async fn a_confirmation_is_honoured_only_through_the_confirm_qualifier() {
    let fn_arn = "arn:aws:lambda:eu-west-1:123456789012:function:migrator-PROD";
    let with_door = || {
        handler(
            &[("ARTIFACT_KEY", KEY), ("CONFIRM_QUALIFIER", "apply")],
            FakeStore {
                bytes: b"not a zip".to_vec(),
                ..FakeStore::default()
            },
            FakeTopic::default(),
            FakeCredentials::default(),
        )
    };
    let resolve = json!({"action":"resolve","confirm":true,"resolve":{"rolledBack":"20240101_x"},"by":"alice"}).to_string();
    for (arn, came) in [
        (fn_arn.to_string(), "through the unqualified function"),
        (format!("{fn_arn}:other"), "through the qualifier `other`"),
        (
            "function-arn".to_string(),
            "through the unqualified function",
        ),
    ] {
        let handler = with_door();
        let response = handler.handle(resolve.as_bytes(), &invoked_as(&arn)).await;
        let o = &response.outcomes[0];
        assert_failed(o, Status::Rejected, came);
        assert_failed(
            o,
            Status::Rejected,
            "confirm through the `apply` alias: --qualifier apply",
        );
        assert!(
            !o.confirmed,
            "a refused confirmation is not recorded as confirmed"
        );
        assert_eq!(o.invoked_by.as_ref().unwrap().principal, "alice");
        assert!(
            fetched(&handler).is_empty(),
            "nothing read behind a closed door"
        );
        assert_eq!(*handler.edges.notifier.doors.lock().unwrap(), [None]);
    }
    // Through the door the request goes on (here to the unusable artifact).
    let handler = with_door();
    let response = handler
        .handle(resolve.as_bytes(), &invoked_as(&format!("{fn_arn}:apply")))
        .await;
    assert!(!error_text(&response.outcomes[0]).contains("qualifier"));
    assert_eq!(fetched(&handler), [KEY]);
    // A plan, status, or an unconfirmed resolve need no door.
    for payload in [
        json!({"action":"plan"}),
        json!({"action":"status"}),
        json!({"action":"deploy"}),
        json!({"action":"resolve","resolve":{"applied":"20240101_x"}}),
    ] {
        let handler = with_door();
        let response = handler
            .handle(payload.to_string().as_bytes(), &invoked_as(fn_arn))
            .await;
        assert!(
            !error_text(&response.outcomes[0]).contains("qualifier"),
            "{payload}"
        );
        assert_eq!(fetched(&handler), [KEY], "{payload}");
    }
    // Without CONFIRM_QUALIFIER there is no door (a function deployed by hand).
    let handler = handler_with_exact_key();
    handle(&handler, &resolve).await;
    assert_eq!(fetched(&handler), [KEY]);
}

/// The fleet's door: a target is chosen only by the fleet's state machine, through the fleet
/// function's own alias; an upload or a manual payload never can.
#[tokio::test]
async fn only_the_fleets_state_machine_chooses_a_target() {
    let step = r#"{"fleet":{"step":"target","action":"deploy","index":0,"target":{"id":"evil","auth":"url","url":"postgresql://u@attacker/x"},"rollout":{"id":"r","threadId":"t","artifact":"s3://artifacts/deploy/PROD/app/prisma.zip","targets":"s3://artifacts/t.jsonl","apply":true,"total":1,"canary":1}}}"#;
    let arn = |q: &str| Invocation {
        invoked_function_arn: Some(format!(
            "arn:aws:lambda:eu-west-1:123456789012:function:fleet-fn{q}"
        )),
        ..Invocation::default()
    };
    // The stage's function (no FLEET_QUALIFIER): refused, whatever the qualifier.
    let test_handler = |extra: &[(&'static str, &'static str)]| {
        handler(
            extra,
            FakeStore::default(),
            FakeTopic::default(),
            FakeCredentials::default(),
        )
    };
    let stage = test_handler(&[]);
    for invocation in [Invocation::default(), arn(":fleet"), arn(":apply")] {
        let response = stage.handle(step.as_bytes(), &invocation).await;
        assert_eq!(response.outcomes.len(), 1);
        assert_eq!(response.outcomes[0].status, Status::Rejected);
        assert!(
            error_text(&response.outcomes[0]).contains("no fleet's"),
            "{:?}",
            response.outcomes[0].error
        );
    }
    // The fleet's function: refused unless through its own alias.
    let fleet = test_handler(&[("FLEET_QUALIFIER", "fleet")]);
    for invocation in [Invocation::default(), arn(""), arn(":apply"), arn(":other")] {
        let response = fleet.handle(step.as_bytes(), &invocation).await;
        assert_eq!(
            response.outcomes.len(),
            1,
            "{:?}",
            invocation.invoked_function_arn
        );
        assert_eq!(response.outcomes[0].status, Status::Rejected);
        assert!(
            error_text(&response.outcomes[0])
                .contains("only the fleet's state machine chooses a target")
        );
    }
    // Inside a queue's message: refused.
    let sqs =
        json!({"Records":[{"eventSource":"aws:sqs","messageId":"m1","body": step}]}).to_string();
    let response = fleet.handle(sqs.as_bytes(), &arn(":fleet")).await;
    assert_eq!(response.outcomes[0].status, Status::Rejected);
    // Uploads and manual payloads never reach a fleet's function's targets.
    for event in [
        json!({"action":"deploy","confirm":true}).to_string(),
        json!({"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":"artifacts"},"object":{"key":"deploy/PROD/app/prisma.zip","version-id":"v1"}}}).to_string(),
    ] {
        let response = fleet.handle(event.as_bytes(), &arn(":fleet")).await;
        assert_eq!(response.outcomes[0].status, Status::Rejected, "{event}");
        assert!(error_text(&response.outcomes[0]).contains("this is a fleet's function"), "{event}");
    }
    assert!(
        fleet.edges.credentials.tokens.lock().unwrap().is_empty(),
        "no credentials were asked for"
    );
    assert!(
        fleet.edges.artifacts.fetched.lock().unwrap().is_empty(),
        "nothing was fetched"
    );
}
