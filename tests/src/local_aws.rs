//! Local AWS peers for the function tests: moto server and the cargo-lambda runtime emulator.
//!
//! Everything listens on 127.0.0.1 only and is started from the test venv `target/py`
//! (`make setup`): `moto_server` (S3, SNS, SQS, Secrets Manager), `cargo-lambda` (the Lambda
//! Runtime API and Invoke API emulator) and `python3` with boto3 (the AWS client the tests use
//! to prepare buckets, topics and queues and to read messages back — it keeps the Rust build
//! free of more AWS SDK crates).
//!
//! - [`Moto`]: one `moto_server` on a free port ([`Moto::shared`] for a whole test binary).
//! - [`Aws`]: a boto3 client process talking to one moto (buckets, objects, topics, queues,
//!   secrets).
//! - [`Emulator`]: `cargo lambda watch --only-lambda-apis` plus the function binary polling it,
//!   with [`Emulator::invoke`] over plain HTTP and the function's stderr (its JSON logs)
//!   captured.
//!
//! Every child process is started behind a small `sh` guard that kills it when the test
//! process goes away (even one that is never dropped, like the shared moto), so nothing is left
//! listening after `cargo test` exits.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::workspace;

/// The region the tests use for every client and ARN.
pub const REGION: &str = "eu-west-1";
/// moto's fixed account id.
pub const ACCOUNT: &str = "123456789012";

const SETUP_HINT: &str =
    "run `make setup` (it creates the target/py venv with moto, boto3 and cargo-lambda)";

/// The test venv's `bin` folder (`MIGRATOR_PY_BIN` overrides).
pub fn venv_bin() -> PathBuf {
    std::env::var_os("MIGRATOR_PY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/py/bin"))
}

/// A tool from the test venv; panics with the setup hint when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let path = venv_bin().join(name);
    assert!(path.exists(), "{} is missing: {SETUP_HINT}", path.display());
    path
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Hex SHA-256 of `bytes` (the engine's own, which Prisma checksums use too).
pub use migrator_engine::checksum::sha256_hex;

// ---------------------------------------------------------------------------------------------
// Guarded child processes

/// `sh` runs the command in the background and kills it as soon as its own stdin (a pipe from
/// the test process) reaches EOF: when the guard is dropped, or when the test process exits.
/// `sh` exits with the command's status when the command ends on its own.
const GUARD: &str = r#"exec 3<&0
"$@" </dev/null &
pid=$!
{ read _ <&3; kill "$pid" 2>/dev/null; } &
wait "$pid"
"#;

/// A command whose process ends with its owner.
pub struct Guarded {
    child: Child,
    stdin: Option<ChildStdin>,
    pub what: String,
}

impl Guarded {
    /// `program args…` behind the guard; set env, cwd and output redirections on the returned
    /// command before calling [`Guarded::spawn`].
    pub fn command(program: &Path) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(GUARD).arg("sh").arg(program);
        command
    }

    pub fn spawn(mut command: Command, what: &str) -> Guarded {
        command.stdin(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdin = child.stdin.take();
        Guarded {
            child,
            stdin,
            what: what.to_string(),
        }
    }

    /// `Some(exit code)` once the process has ended.
    pub fn exited(&mut self) -> Option<i32> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.code().unwrap_or(-1)),
            _ => None,
        }
    }

    /// Ends the process (closing the guard's pipe) and waits for it, at most 5 s.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP on loopback

/// A response: status, lower-cased headers, body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request and reads the whole response (hyper-util's client: the hyper stack the
/// AWS SDK already builds). `alive` is asked every 250 ms while waiting and may abort the wait
/// with a reason (the peer process died).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Result<HttpResponse, String> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut request = hyper::Request::builder().method(method).uri(&url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| format!("a request to {url}: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("a runtime for {url}: {e}"))?;
    runtime.block_on(async {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| format!("{method} {url}: {e}"))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| {
                    let value = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
                    (n.as_str().to_ascii_lowercase(), value)
                })
                .collect();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading from {url}: {e}"))?
                .to_bytes()
                .to_vec();
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        };
        tokio::pin!(exchange);
        let until = Instant::now() + timeout;
        loop {
            tokio::select! {
                answered = &mut exchange => return answered,
                () = tokio::time::sleep(Duration::from_millis(250)) => {
                    alive()?;
                    if Instant::now() > until {
                        return Err(format!("no complete answer from {url} within {timeout:?}"));
                    }
                }
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// moto

/// `moto_server` with RDS's slow transitions held (see [`Moto::start_holding`]); the
/// arguments after `-c …` are moto_server's.
const HOLDING_MOTO: &str = r#"
import sys
import moto.rds.models as m

snapshot_init = m.DBSnapshot.__init__
def creating_snapshot(self, *a, **k):
    snapshot_init(self, *a, **k)
    self.status = "creating"
m.DBSnapshot.__init__ = creating_snapshot

cluster_snapshot_init = m.DBClusterSnapshot.__init__
def creating_cluster_snapshot(self, *a, **k):
    cluster_snapshot_init(self, *a, **k)
    self.status = "creating"
m.DBClusterSnapshot.__init__ = creating_cluster_snapshot

def switchover_in_progress(self):
    self.set_status(self.SupportedStates.SWITCHOVER_IN_PROGRESS)
m.BlueGreenDeployment.switchover = switchover_in_progress

from moto.server import main
main(sys.argv[1:])
"#;

/// A `moto_server` on a free loopback port, killed on drop.
pub struct Moto {
    pub port: u16,
    pub url: String,
    process: Mutex<Guarded>,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts `moto_server -H 127.0.0.1 -p PORT` and waits until it answers (~0.5 s).
    pub fn start() -> Moto {
        Moto::start_with(&tool("moto_server"), &[])
    }

    /// A moto whose RDS keeps the states real RDS stays in for minutes, which moto leaves
    /// at once: a new DB snapshot (or cluster snapshot) stays `creating`, and a Blue/Green
    /// switchover stays `SWITCHOVER_IN_PROGRESS`. The same moto, with those two transitions
    /// held back (moto has no API to slow them down).
    pub fn start_holding() -> Moto {
        Moto::start_with(&tool("python3"), &["-c", HOLDING_MOTO])
    }

    fn start_with(program: &Path, prefix: &[&str]) -> Moto {
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let log = dir.path().join("moto.log");
            let port = free_port();
            let mut command = Guarded::command(program);
            command
                .args(prefix)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(std::fs::File::create(&log).expect("moto log"))
                .stderr(std::fs::File::create(dir.path().join("moto.err")).expect("moto log"));
            let mut process = Guarded::spawn(command, "moto_server");
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until {
                if process.exited().is_some() {
                    break;
                }
                let answered = http_request(
                    port,
                    "GET",
                    "/moto-api/",
                    &[],
                    b"",
                    Duration::from_secs(2),
                    || Ok(()),
                );
                if answered.is_ok() {
                    return Moto {
                        port,
                        url: format!("http://127.0.0.1:{port}"),
                        process: Mutex::new(process),
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_log = format!(
                "{}{}",
                std::fs::read_to_string(&log).unwrap_or_default(),
                std::fs::read_to_string(dir.path().join("moto.err")).unwrap_or_default()
            );
        }
        panic!("moto_server did not start on 127.0.0.1 ({SETUP_HINT}):\n{last_log}");
    }

    /// One moto for the whole test binary (tests keep apart by using their own names).
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
    }

    /// Forgets every resource (`POST /moto-api/reset`). Not for a [`Moto::shared`] that
    /// tests use in parallel.
    pub fn reset(&self) {
        let response = http_request(
            self.port,
            "POST",
            "/moto-api/reset",
            &[],
            b"",
            Duration::from_secs(10),
            || Ok(()),
        )
        .expect("moto reset");
        assert_eq!(response.status, 200, "moto reset: {}", response.text());
    }

    /// Whether the server process is still running.
    pub fn running(&self) -> bool {
        self.process
            .lock()
            .map(|mut p| p.exited().is_none())
            .unwrap_or(false)
    }

    /// Environment for an AWS client of this moto (any credentials do).
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.url.clone()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_DEFAULT_REGION".into(), REGION.into()),
            ("AWS_ACCESS_KEY_ID".into(), "AKIAE2ETESTCLIENT".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "e2e-client-secret".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    /// A boto3 client process for this moto.
    pub fn aws(&self) -> Aws {
        Aws::start(self)
    }

    /// `arn:aws:sns:REGION:ACCOUNT:name`.
    pub fn topic_arn(name: &str) -> String {
        format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Ok(mut process) = self.process.lock() {
            process.stop();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// boto3 against moto

/// The boto3 side: one request per line on stdin, one JSON answer per line on stdout.
const AWS_HELPER: &str = r#"
import hashlib, json, os, sys, time
import boto3
from botocore.config import Config

region = os.environ["AWS_DEFAULT_REGION"]
config = Config(retries={"max_attempts": 3, "mode": "standard"})
s3 = boto3.client("s3", config=config.merge(Config(s3={"addressing_style": "path"})))
sns = boto3.client("sns", config=config)
sqs = boto3.client("sqs", config=config)
secrets = boto3.client("secretsmanager", config=config)
rds = boto3.client("rds", config=config)

def create_versioned_bucket(a):
    kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=a["bucket"], **kwargs)
    s3.put_bucket_versioning(Bucket=a["bucket"], VersioningConfiguration={"Status": "Enabled"})
    return a["bucket"]

def put_object(a):
    r = s3.put_object(Bucket=a["bucket"], Key=a["key"], Body=bytes.fromhex(a["hex"]))
    return {"version_id": r.get("VersionId"), "etag": r["ETag"].strip('"')}

def create_topic(a):
    return sns.create_topic(Name=a["name"])["TopicArn"]

def subscribed_queue(a):
    url = sqs.create_queue(QueueName=a["queue"])["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
              "Action": "sqs:SendMessage", "Resource": arn, "Condition": {"ArnEquals": {"aws:SourceArn": a["topic_arn"]}}}]}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    sns.subscribe(TopicArn=a["topic_arn"], Protocol="sqs", Endpoint=arn,
                  Attributes={"RawMessageDelivery": "true" if a.get("raw") else "false"},
                  ReturnSubscriptionArn=True)
    return url

def subscribe_https(a):
    # AWS Chatbot's kind of subscriber: it receives the message's `https` rendering.
    return sns.subscribe(TopicArn=a["topic_arn"], Protocol="https", Endpoint=a["endpoint"],
                         ReturnSubscriptionArn=True)["SubscriptionArn"]

def receive(a):
    # Long-poll until `min` messages arrived (or the timeout), then take what is left.
    bodies, until = [], time.time() + a.get("timeout", 10)
    while True:
        enough = len(bodies) >= a.get("min", 0)
        if enough or time.time() > until:
            wait = 0
        else:
            wait = min(a.get("wait", 1), 20)
        r = sqs.receive_message(QueueUrl=a["url"], MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                MessageAttributeNames=["All"], AttributeNames=["All"])
        messages = r.get("Messages", [])
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=a["url"], ReceiptHandle=m["ReceiptHandle"])
        if not messages and (enough or time.time() > until):
            return bodies

def create_secret(a):
    return secrets.create_secret(Name=a["name"], SecretString=a["value"])["ARN"]

def rds_call(a):
    # Any RDS call: {"method": "create_db_instance", "kwargs": {...}}; the answer as JSON.
    answer = getattr(rds, a["method"])(**a.get("kwargs", {}))
    answer.pop("ResponseMetadata", None)
    return json.loads(json.dumps(answer, default=str))

ops = {f.__name__: f for f in [create_versioned_bucket, put_object, create_topic, subscribed_queue, subscribe_https, receive, create_secret, rds_call]}
print(json.dumps({"ok": "ready"}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    try:
        answer = {"ok": ops[request["op"]](request)}
    except Exception as e:
        answer = {"error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(answer), flush=True)
"#;

/// An S3 object version as `PutObject` reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    /// Without quotes, as S3 event notifications carry it.
    pub etag: String,
}

/// A boto3 client process talking to one moto; requests are serialised.
pub struct Aws {
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    child: Mutex<Child>,
}

impl Aws {
    fn start(moto: &Moto) -> Aws {
        let python = tool("python3");
        let mut child = Command::new(&python)
            .args(["-u", "-c", AWS_HELPER])
            .env_clear()
            .envs(moto.client_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {SETUP_HINT}", python.display()));
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut ready = String::new();
        stdout.read_line(&mut ready).expect("boto3 helper answers");
        assert!(
            ready.contains("ready"),
            "the boto3 helper did not start ({SETUP_HINT}): {ready:?}"
        );
        Aws {
            io: Mutex::new((stdin, stdout)),
            child: Mutex::new(child),
        }
    }

    /// Sends `request` (with `"op"`) and returns the answer's `ok` value; panics on an error.
    pub fn call(&self, request: Value) -> Value {
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let (stdin, stdout) = &mut *io;
        writeln!(stdin, "{request}").expect("write to the boto3 helper");
        stdin.flush().expect("flush");
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the boto3 helper");
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the boto3 helper answered {line:?}: {e}"));
        if let Some(error) = answer.get("error") {
            panic!("{}: {}", request["op"], error.as_str().unwrap_or_default());
        }
        answer["ok"].clone()
    }

    pub fn create_versioned_bucket(&self, bucket: &str) {
        self.call(json!({"op": "create_versioned_bucket", "bucket": bucket}));
    }

    /// Puts `bytes` at `bucket/key`; returns the new version's id and ETag.
    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) -> Put {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let answer =
            self.call(json!({"op": "put_object", "bucket": bucket, "key": key, "hex": hex}));
        Put {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: answer["version_id"]
                .as_str()
                .expect("a versioned bucket returns a VersionId")
                .to_string(),
            etag: answer["etag"].as_str().expect("an ETag").to_string(),
        }
    }

    /// Creates an SNS topic; returns its ARN.
    pub fn create_topic(&self, name: &str) -> String {
        self.call(json!({"op": "create_topic", "name": name}))
            .as_str()
            .expect("an ARN")
            .to_string()
    }

    /// Creates an SQS queue subscribed to `topic_arn` without raw delivery (messages are SNS
    /// envelopes with `Message`, `Subject` and `MessageAttributes`); returns the queue URL.
    pub fn subscribed_queue(&self, topic_arn: &str, queue: &str) -> String {
        self.call(json!({"op": "subscribed_queue", "topic_arn": topic_arn, "queue": queue}))
            .as_str()
            .expect("a queue URL")
            .to_string()
    }

    /// Receives and deletes every message of the queue: long-polls (WaitTimeSeconds=1) until at
    /// least `min` arrived or `timeout` passed, then takes what is left. Bodies, in order.
    pub fn receive(&self, queue_url: &str, min: usize, timeout: Duration) -> Vec<String> {
        let answer = self.call(json!({
            "op": "receive", "url": queue_url, "min": min, "wait": 1,
            "timeout": timeout.as_secs_f64(),
        }));
        answer
            .as_array()
            .expect("a list")
            .iter()
            .map(|b| b.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Creates a Secrets Manager secret with a string value; returns its ARN.
    /// Subscribes `endpoint` (an [`ChatbotEndpoint`]) with protocol `https`: moto posts it
    /// the message's `https` rendering, the one AWS Chatbot reads.
    pub fn subscribe_https(&self, topic_arn: &str, endpoint: &str) -> String {
        self.call(json!({"op": "subscribe_https", "topic_arn": topic_arn, "endpoint": endpoint}))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn create_secret(&self, name: &str, value: &str) -> String {
        self.call(json!({"op": "create_secret", "name": name, "value": value}))
            .as_str()
            .expect("an ARN")
            .to_string()
    }
}

impl Drop for Aws {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// S3 event shapes

/// An S3 event notification key: form-URL-encoded like real S3 (`/` kept, space as `+`).
pub fn s3_event_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One real-shaped `ObjectCreated:Put` record (as S3 sends it, with versionId, sequencer,
/// userIdentity …); `event_key` is used as given (see [`s3_event_key`]).
pub fn s3_record(bucket: &str, event_key: &str, version_id: &str, etag: &str) -> Value {
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-21T10:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAE2ETESTPRINCIPAL:ci"},
        "requestParameters": {"sourceIPAddress": "198.51.100.7"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "migrator-artifacts",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": format!("arn:aws:s3:::{bucket}")
            },
            "object": {
                "key": event_key,
                "size": 1024,
                "eTag": etag,
                "versionId": version_id,
                "sequencer": "0055AED6DCD90281E5"
            }
        }
    })
}

/// A real-shaped S3 notification for the version `put` created.
pub fn s3_event(put: &Put) -> Value {
    json!({"Records": [s3_record(&put.bucket, &s3_event_key(&put.key), &put.version_id, &put.etag)]})
}

/// The EventBridge form (`Object Created`, keys not URL-encoded).
pub fn eventbridge_event(put: &Put) -> Value {
    json!({
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2026-11-21T10:00:00Z",
        "region": REGION,
        "resources": [format!("arn:aws:s3:::{}", put.bucket)],
        "detail": {
            "version": "0",
            "bucket": {"name": put.bucket},
            "object": {"key": put.key, "size": 1024, "etag": put.etag,
                       "version-id": put.version_id, "sequencer": "00617F08299329D189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "source-ip-address": "198.51.100.7",
            "reason": "PutObject"
        }
    })
}

/// An SQS event (Lambda event source mapping) whose messages carry `bodies`.
pub fn sqs_event(bodies: &[Value]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            json!({
                "messageId": format!("059f36b4-87a3-44ab-83d2-66197561000{i}"),
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
                "body": body.to_string(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183",
                               "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1545082649185"},
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:migrator-artifacts"),
                "awsRegion": REGION
            })
        })
        .collect();
    json!({"Records": records})
}

/// The SNS notification envelope (what an SQS subscriber without raw delivery receives).
pub fn sns_envelope(topic_arn: &str, message: &Value) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": topic_arn,
        "Subject": "Amazon S3 Notification",
        "Message": message.to_string(),
        "Timestamp": "2026-11-21T10:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"
    })
}

/// A Lambda SNS event (the function subscribed to a topic) carrying `message`.
pub fn sns_event(topic_arn: &str, message: &Value) -> Value {
    json!({"Records": [{
        "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{topic_arn}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"),
        "EventSource": "aws:sns",
        "Sns": {
            "SignatureVersion": "1",
            "Timestamp": "2026-11-21T10:00:00.000Z",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem",
            "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "Message": message.to_string(),
            "MessageAttributes": {},
            "Type": "Notification",
            "UnsubscribeUrl": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
            "TopicArn": topic_arn,
            "Subject": "Amazon S3 Notification"
        }
    }]})
}

// ---------------------------------------------------------------------------------------------
// A hung peer

/// A TCP endpoint on 127.0.0.1 that accepts every connection and never answers: a service
/// that hangs (point `AWS_ENDPOINT_URL_SNS` at it). Connections are held open until the test
/// process ends.
pub struct SilentEndpoint {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl SilentEndpoint {
    pub fn start() -> SilentEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a silent endpoint");
        let port = listener.local_addr().expect("its address").port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        SilentEndpoint {
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// An HTTP endpoint on 127.0.0.1 that answers every request with one fixed response (a
/// service outage's HTML page, say): point `AWS_ENDPOINT_URL_S3` at it. Counts requests.
pub struct FixedAnswerEndpoint {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FixedAnswerEndpoint {
    pub fn start(status: &str, content_type: &str, body: &str) -> FixedAnswerEndpoint {
        use std::io::Read;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an endpoint");
        let port = listener.local_addr().expect("its address").port();
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                // Read the request head (and whatever body came with it), then answer.
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        FixedAnswerEndpoint {
            url: format!("http://127.0.0.1:{port}"),
            requests,
        }
    }
}

/// Where AWS Chatbot would be: an HTTP endpoint on 127.0.0.1 that moto's SNS posts the
/// `https` subscription's notifications to (see [`Aws::subscribe_https`]). Keeps each
/// notification's `Message`, parsed: the Chatbot custom notification the function published.
pub struct ChatbotEndpoint {
    /// `http://127.0.0.1:PORT/chatbot`.
    pub url: String,
    received: std::sync::Arc<Mutex<Vec<Value>>>,
}

impl ChatbotEndpoint {
    pub fn start() -> ChatbotEndpoint {
        use std::io::Read;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Chatbot endpoint");
        let port = listener.local_addr().expect("its address").port();
        let received = std::sync::Arc::new(Mutex::new(Vec::new()));
        let keep = received.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut seen = Vec::new();
                let mut buf = [0u8; 8192];
                let head_end = loop {
                    if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(at + 4);
                    }
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while seen.len() < head_end + length {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let body = &seen[head_end..seen.len().min(head_end + length)];
                if let Ok(notification) = serde_json::from_slice::<Value>(body)
                    && let Some(message) = notification["Message"].as_str()
                {
                    let message = serde_json::from_str(message)
                        .unwrap_or_else(|_| Value::String(message.to_string()));
                    keep.lock().unwrap_or_else(|e| e.into_inner()).push(message);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        ChatbotEndpoint {
            url: format!("http://127.0.0.1:{port}/chatbot"),
            received,
        }
    }

    /// Exactly `n` notifications received since the last call (waits up to 10 s for them).
    pub fn take(&self, n: usize) -> Vec<Value> {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
            if received.len() >= n || Instant::now() > until {
                let got: Vec<Value> = received.drain(..).collect();
                assert_eq!(got.len(), n, "Chatbot notifications: {got:#?}");
                return got;
            }
            drop(received);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Lambda emulator

/// The function binary run under the emulator: `MIGRATOR_LAMBDA_BIN`, else the packaged
/// release binary of `make package` (`target/lambda/migrator/bootstrap`, or the `bootstrap`
/// inside `bootstrap.zip`, extracted once under `target/tmp`), else the debug build.
pub fn lambda_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = choose_lambda_bin();
        eprintln!("the function under the emulator: {}", bin.display());
        bin
    })
    .clone()
}

fn choose_lambda_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("MIGRATOR_LAMBDA_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let packaged = target.join("lambda/migrator");
    let bootstrap = packaged.join("bootstrap");
    if bootstrap.exists() {
        return bootstrap;
    }
    let zip = packaged.join("bootstrap.zip");
    if zip.exists() {
        return extract_bootstrap(&zip, &target.join("tmp"));
    }
    crate::migrator_bin()
}

/// `bootstrap` out of the deployment zip, into `dir` under a name that changes with the zip.
fn extract_bootstrap(zip_path: &Path, dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(zip_path).expect("bootstrap.zip metadata");
    let stamp = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let out = dir.join(format!("e2e-bootstrap-{}-{stamp}", meta.len()));
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(dir).expect("target/tmp");
    let file = std::fs::File::open(zip_path).expect("open bootstrap.zip");
    let mut archive = zip::ZipArchive::new(file)
        .unwrap_or_else(|e| panic!("{} is not a zip: {e}", zip_path.display()));
    let mut entry = archive
        .by_name("bootstrap")
        .unwrap_or_else(|e| panic!("no `bootstrap` in {}: {e}", zip_path.display()));
    let part = dir.join(format!("e2e-bootstrap-{}.part", std::process::id()));
    let mut writer = std::fs::File::create(&part).expect("extract bootstrap");
    std::io::copy(&mut entry, &mut writer).expect("extract bootstrap");
    drop(writer);
    std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::rename(&part, &out).expect("rename bootstrap");
    // Older extractions (of earlier packages) go.
    for old in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = old.file_name().to_string_lossy().into_owned();
        if name.starts_with("e2e-bootstrap-") && !name.ends_with(".part") && old.path() != out {
            let _ = std::fs::remove_file(old.path());
        }
    }
    out
}

/// A response of the Invoke API.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub status: u16,
    /// The body as JSON (`Value::String` of the raw text when it is not JSON).
    pub body: Value,
    pub raw: String,
    pub elapsed: Duration,
}

/// `cargo lambda watch --only-lambda-apis` on a free port, and the function binary polling
/// its Runtime API with the given environment. Both end on drop.
pub struct Emulator {
    /// Where the Invoke API listens (127.0.0.1).
    pub invoke_port: u16,
    /// The function name the emulator routes to the runtime (what it printed: `_`).
    pub function_name: String,
    /// The `AWS_LAMBDA_RUNTIME_API` the function was given.
    pub runtime_api: String,
    /// When the function process was started (for cold-start timing).
    pub spawned_at: Instant,
    function: Mutex<Guarded>,
    emulator: Mutex<Guarded>,
    function_log: PathBuf,
    emulator_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Emulator {
    /// Starts the emulator and [`lambda_bin`] with `env` (and nothing else from the test's
    /// environment but `PATH`).
    pub fn start<K, V>(env: impl IntoIterator<Item = (K, V)>) -> Emulator
    where
        K: Into<String>,
        V: Into<String>,
    {
        Emulator::start_bin(&lambda_bin(), env)
    }

    pub fn start_bin<K, V>(bin: &Path, env: impl IntoIterator<Item = (K, V)>) -> Emulator
    where
        K: Into<String>,
        V: Into<String>,
    {
        let env: Vec<(String, String)> =
            env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        assert!(
            bin.exists(),
            "{} is missing: run `cargo build -p migrator` first",
            bin.display()
        );
        let cargo_lambda = tool("cargo-lambda");
        let dir = tempfile::tempdir().expect("temp dir");
        // The emulator reads a Cargo manifest (`cargo metadata`) even with --only-lambda-apis:
        // give it an empty project of its own, outside the workspace and its cargo lock.
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"migrator-emulated\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[[bin]]\nname = \"migrator\"\npath = \"main.rs\"\n\n[workspace]\n",
        )
        .expect("manifest");
        std::fs::write(dir.path().join("main.rs"), "fn main() {}\n").expect("main.rs");
        let emulator_log = dir.path().join("emulator.log");
        let function_log = dir.path().join("function.log");

        let (emulator, invoke_port, printed) = {
            let mut last = String::new();
            let mut started = None;
            for _ in 0..3 {
                let port = free_port();
                let mut command = Guarded::command(&cargo_lambda);
                command
                    .args([
                        "lambda",
                        "watch",
                        "--only-lambda-apis",
                        "--invoke-address",
                        "127.0.0.1",
                        "--invoke-port",
                        &port.to_string(),
                    ])
                    .current_dir(dir.path())
                    .env_remove("CARGO_MANIFEST_DIR")
                    .env_remove("CARGO_TARGET_DIR")
                    .env("NO_COLOR", "1")
                    .stdout(std::fs::File::create(&emulator_log).expect("log"))
                    .stderr(Stdio::from(
                        std::fs::File::options()
                            .append(true)
                            .open(&emulator_log)
                            .expect("log"),
                    ));
                let mut process = Guarded::spawn(command, "cargo lambda watch");
                let until = Instant::now() + Duration::from_secs(30);
                let mut ready = false;
                while Instant::now() < until && process.exited().is_none() {
                    let log = std::fs::read_to_string(&emulator_log).unwrap_or_default();
                    if log.contains("starting Runtime server")
                        && TcpStream::connect(("127.0.0.1", port)).is_ok()
                    {
                        ready = true;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                last = std::fs::read_to_string(&emulator_log).unwrap_or_default();
                if ready {
                    started = Some((process, port, printed_env(&last)));
                    break;
                }
            }
            started.unwrap_or_else(|| {
                panic!(
                    "`cargo lambda watch --only-lambda-apis` did not start ({SETUP_HINT}):\n{last}"
                )
            })
        };

        // What the emulator told us to set (AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:P/.rt,
        // AWS_LAMBDA_FUNCTION_NAME=_ …), with the documented values as a fallback.
        let get = |name: &str, default: String| {
            printed
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or(default)
        };
        let runtime_api = get(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{invoke_port}/.rt"),
        );
        let function_name = get("AWS_LAMBDA_FUNCTION_NAME", "_".into());
        let mut command = Guarded::command(bin);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &function_name)
            .env(
                "AWS_LAMBDA_FUNCTION_VERSION",
                get("AWS_LAMBDA_FUNCTION_VERSION", "1".into()),
            )
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
            )
            .envs(env)
            .stdout(std::fs::File::create(&function_log).expect("log"))
            .stderr(Stdio::from(
                std::fs::File::options()
                    .append(true)
                    .open(&function_log)
                    .expect("log"),
            ));
        let spawned_at = Instant::now();
        let function = Guarded::spawn(command, "the function");
        Emulator {
            invoke_port,
            function_name,
            runtime_api,
            spawned_at,
            function: Mutex::new(function),
            emulator: Mutex::new(emulator),
            function_log,
            emulator_log,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`, for `migrator invoke --endpoint-url` and SDK clients.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.invoke_port)
    }

    /// `POST /2015-03-31/functions/NAME/invocations` with `payload`; waits up to 120 s, and
    /// fails early (with the logs) when the function process ends.
    pub fn invoke(&self, payload: &Value) -> Invoked {
        self.invoke_raw(payload.to_string().as_bytes(), Duration::from_secs(120))
    }

    pub fn invoke_raw(&self, body: &[u8], timeout: Duration) -> Invoked {
        let started = Instant::now();
        let path = format!("/2015-03-31/functions/{}/invocations", self.function_name);
        let response = http_request(
            self.invoke_port,
            "POST",
            &path,
            &[("Content-Type", "application/json")],
            body,
            timeout,
            || match self.function.lock().map(|mut f| f.exited()) {
                Ok(Some(code)) => Err(format!("the function exited with {code}")),
                _ => Ok(()),
            },
        )
        .unwrap_or_else(|e| {
            panic!(
                "invoking {}: {e}\n--- function log ---\n{}\n--- emulator log ---\n{}",
                self.function_name,
                self.logs(),
                std::fs::read_to_string(&self.emulator_log).unwrap_or_default()
            )
        });
        let raw = response.text();
        Invoked {
            status: response.status,
            body: serde_json::from_str(&raw).unwrap_or_else(|_| Value::String(raw.clone())),
            raw,
            elapsed: started.elapsed(),
        }
    }

    /// Everything the function wrote (its JSON logs on stderr).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.function_log).unwrap_or_default()
    }

    /// The function's log lines that are JSON.
    pub fn log_lines(&self) -> Vec<Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// What the emulator printed.
    pub fn emulator_logs(&self) -> String {
        std::fs::read_to_string(&self.emulator_log).unwrap_or_default()
    }

    /// `Some(exit code)` once the function process has ended.
    pub fn function_exited(&self) -> Option<i32> {
        self.function.lock().ok().and_then(|mut f| f.exited())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Ok(mut function) = self.function.lock() {
            function.stop();
        }
        if let Ok(mut emulator) = self.emulator.lock() {
            emulator.stop();
        }
    }
}

/// `AWS_LAMBDA_…=value` lines the emulator prints for `--only-lambda-apis`.
fn printed_env(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|line| {
            let at = line.find("AWS_LAMBDA_")?;
            let (name, value) = line[at..].split_once('=')?;
            let value = value.split_whitespace().next()?.to_string();
            Some((name.trim().to_string(), value))
        })
        .collect()
}
