//! One invocation, whatever the runtime: event → items → (artifact, credentials, engine)
//! → outcomes → SNS → the response. Lambda and ECS call [`Handler::handle`].

use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use migrator_engine::artifact::{self, Limits};
use migrator_engine::clock::SystemClock;
use migrator_engine::dialect::{DatabaseTarget, parse_database_url, postgres};
use migrator_engine::engine::{self, Request, Settings, StagePolicy};
use migrator_engine::error::EngineError;
use migrator_engine::outcome::{Action, Outcome, Status};
use serde_json::{Value, json};

use crate::aws::rds_token::{self, TokenRequest};
use crate::aws::{Clients, s3, secrets, sns};
use crate::config::{DbAuth, DbEngine, StageConfig, key_matches};
use crate::payload::ManualPayload;
use crate::trigger::{self, Envelope, Item, ObjectRef};
use crate::{render, tls};

/// What the runtime knows about this invocation.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub request_id: String,
    /// The Lambda deadline; ECS and the CLI have none unless `MAX_DURATION` is set.
    pub deadline: Option<Instant>,
}

pub struct Handler {
    pub config: StageConfig,
    pub clients: Clients,
    ca_bundle: Vec<u8>,
}

/// The response, and whether the invocation as a whole failed.
pub struct Response {
    pub body: Value,
    pub outcomes: Vec<Outcome>,
    pub publish_errors: Vec<sns::PublishError>,
    /// A direct invocation whose outcome could not be published fails as a whole (the
    /// outcome is in the log). In an SQS batch only that record is retried.
    pub fails_invocation: bool,
}

/// At most this many deploys (distinct objects, and manual requests) run in one invocation;
/// more records are not run: an SQS batch answers them as failures (SQS redelivers them),
/// a direct invocation reports them in one `rejected` outcome.
pub const MAX_ITEMS_PER_INVOCATION: usize = 10;

/// An outside call (S3, SNS, Secrets Manager, credentials) never waits longer than this,
/// nor past the deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The least an outside call is given, even at the deadline (publishing the outcome).
const CALL_FLOOR: Duration = Duration::from_secs(1);

impl Handler {
    pub fn new(config: StageConfig, clients: Clients) -> Result<Handler, tls::TlsError> {
        let ca_bundle = tls::ca_bundle(config.db.ca_bundle.as_deref())?;
        Ok(Handler {
            config,
            clients,
            ca_bundle,
        })
    }

    /// Handles the invocation's raw event (read strictly: duplicate keys are refused).
    pub async fn handle(&self, event: &str, invocation: &Invocation) -> Response {
        let deadline = invocation.deadline.or_else(|| {
            self.config
                .max_duration
                .and_then(|d| Instant::now().checked_add(d))
        });
        let mut outcomes = Vec::new();
        let mut publish_errors = Vec::new();
        let mut fails_invocation = false;
        let mut budget = Budget::default();
        let body = match trigger::parse_text(event) {
            Envelope::Direct(items) => {
                let mut ignored = Vec::new();
                let mut over = 0;
                for item in items {
                    let item = match budget.admit(item) {
                        Admit::Run(item) => item,
                        Admit::Duplicate(_) => continue,
                        Admit::OverLimit => {
                            over += 1;
                            continue;
                        }
                    };
                    match self.run(item, deadline).await {
                        Some(outcome) => {
                            if let Err(e) = self.publish(&outcome, deadline).await {
                                publish_errors.push(e);
                                fails_invocation = true;
                            }
                            outcomes.push(outcome);
                        }
                        None => ignored.push("s3:TestEvent"),
                    }
                }
                if over > 0 {
                    let outcome = self.refused(
                        Action::Deploy,
                        format!(
                            "{over} more record(s) in this event: at most {MAX_ITEMS_PER_INVOCATION} deploys run per invocation; send them again in another event"
                        ),
                    );
                    if let Err(e) = self.publish(&outcome, deadline).await {
                        publish_errors.push(e);
                        fails_invocation = true;
                    }
                    outcomes.push(outcome);
                }
                match outcomes.as_slice() {
                    [] => json!({ "ignored": ignored }),
                    [one] => serde_json::to_value(one).unwrap_or(Value::Null),
                    many => json!({ "outcomes": many }),
                }
            }
            Envelope::Sqs(batch) => {
                // One record's failure never hides another's: each is answered on its own.
                let mut failures = Vec::new();
                // Whether the deploy of an object (by version) is worth retrying.
                let mut answered: Vec<(ObjectRef, bool)> = Vec::new();
                for (message_id, items) in batch {
                    let mut retry = false;
                    for item in items {
                        let item = match budget.admit(item) {
                            Admit::Run(item) => item,
                            Admit::Duplicate(object) => {
                                // The same object version is one deploy: this record shares its answer.
                                retry |= answered.iter().any(|(o, worth)| *o == object && *worth);
                                continue;
                            }
                            Admit::OverLimit => {
                                tracing::warn!(
                                    message_id = %message_id,
                                    "more than {MAX_ITEMS_PER_INVOCATION} deploys in one batch: this record is left for redelivery"
                                );
                                retry = true;
                                continue;
                            }
                        };
                        let object = match &item {
                            Item::Upload(object) => Some(object.clone()),
                            _ => None,
                        };
                        let Some(outcome) = self.run(item, deadline).await else {
                            continue;
                        };
                        let mut worth = worth_retrying(&outcome);
                        if let Err(e) = self.publish(&outcome, deadline).await {
                            publish_errors.push(e);
                            worth = true;
                        }
                        if let Some(object) = object {
                            answered.push((object, worth));
                        }
                        retry |= worth;
                        outcomes.push(outcome);
                    }
                    if retry {
                        failures.push(json!({ "itemIdentifier": message_id }));
                    }
                }
                json!({ "batchItemFailures": failures })
            }
        };
        Response {
            body,
            outcomes,
            publish_errors,
            fails_invocation,
        }
    }

    /// The outcome of something we will not act on.
    fn refused(&self, action: Action, reason: String) -> Outcome {
        let error = EngineError::InvalidRequest {
            reason: format!("received {reason}"),
        };
        self.finish(
            engine::failed_before_start(&Request::refused(action), &error, &SystemClock),
            None,
        )
    }

    /// Runs one item; `None` for what is only acknowledged.
    async fn run(&self, item: Item, deadline: Option<Instant>) -> Option<Outcome> {
        let clock = SystemClock;
        let policy = StagePolicy {
            auto_apply: self.config.auto_apply,
        };
        let (request, object) =
            match item {
                Item::TestEvent => {
                    tracing::info!("acknowledged s3:TestEvent");
                    return None;
                }
                Item::Invalid { action, reason } => return Some(self.refused(action, reason)),
                Item::Upload(object) => (Request::upload(policy), object),
                Item::Manual(manual) => {
                    let request = match Request::manual(
                        policy,
                        manual.action,
                        manual.confirm,
                        manual.resolve,
                        manual.plan_hash,
                    ) {
                        Ok(request) => request,
                        Err(error) => {
                            let request = Request::refused(manual.action);
                            return Some(self.finish(
                                engine::failed_before_start(&request, &error, &clock),
                                None,
                            ));
                        }
                    };
                    match manual.artifact.map_or_else(|| self.default_artifact(), Ok) {
                        Ok(object) => (request, object),
                        Err(error) => {
                            return Some(self.finish(
                                engine::failed_before_start(&request, &error, &clock),
                                None,
                            ));
                        }
                    }
                }
            };
        if let Err(error) = self.check_allowed(&object) {
            return Some(self.finish(engine::failed_before_start(&request, &error, &clock), None));
        }
        let location = format!("s3://{}/{}", object.bucket, object.key);
        let fetched = match bounded(
            deadline,
            s3::fetch(&self.clients.s3, &object, self.config.max_artifact_bytes),
        )
        .await
        {
            Ok(Ok(fetched)) => fetched,
            Ok(Err(error)) => {
                return Some(
                    self.finish(engine::failed_before_start(&request, &error, &clock), None),
                );
            }
            Err(waited) => {
                let error = EngineError::ArtifactUnavailable {
                    location,
                    reason: format!("S3 did not answer within {} s", waited.as_secs()),
                    transient: true,
                };
                return Some(
                    self.finish(engine::failed_before_start(&request, &error, &clock), None),
                );
            }
        };
        // What a confirmation of this plan names: the version S3 served.
        let served = ObjectRef {
            version_id: fetched.version_id.clone(),
            etag: None,
            ..object
        };
        // An unusable artifact is rejected before any credential is fetched or minted.
        let artifact =
            match artifact::read_zip(&fetched.location, &fetched.bytes, &Limits::default()) {
                Ok(artifact) => artifact,
                Err(error) => {
                    let error = EngineError::from(error);
                    return Some(
                        self.finish(engine::failed_before_start(&request, &error, &clock), None),
                    );
                }
            };
        let target = match self.target(deadline).await {
            Ok(target) => target,
            Err(error) => {
                let mut outcome = engine::failed_before_start(&request, &error, &clock);
                outcome.artifact = Some(engine::artifact_info(&artifact));
                return Some(self.finish(outcome, None));
            }
        };
        let settings = Settings {
            // Two invocations serialise on the lock: wait up to the deadline, not Prisma's 10 s.
            lock_wait: self
                .config
                .lock_timeout
                .unwrap_or(Duration::from_secs(15 * 60)),
            deadline,
            deadline_margin: self.config.deadline_margin,
            statement_lock_timeout: self.config.statement_lock_timeout,
            statement_lock_retries: self.config.statement_lock_retries,
            ..Settings::default()
        }
        .with_prisma_env();
        let outcome = engine::run(&request, Ok(artifact), &target, &settings, &clock).await;
        Some(self.finish(outcome, Some(&served)))
    }

    /// The stage, the plan's confirmation payload, the function's wording of hints; then the
    /// whole outcome goes to the log (before anything is published).
    fn finish(&self, mut outcome: Outcome, served: Option<&ObjectRef>) -> Outcome {
        outcome.stage = Some(self.config.stage.clone());
        if let (Some(hash), Some(object)) = (&outcome.plan_hash, served) {
            outcome.confirm_payload = Some(ManualPayload::confirming(object, hash).to_value());
        }
        render::for_function(&mut outcome, self.config.function_name.as_deref());
        tracing::info!(
            stage = %self.config.stage,
            status = outcome.status_text(),
            artifact = outcome.artifact.as_ref().map(|a| a.location.as_str()).unwrap_or(""),
            applied = outcome.applied.len(),
            pending = outcome.pending.len(),
            error = outcome.error.as_ref().and_then(|e| e.code.as_deref()).unwrap_or(""),
            document = %serde_json::to_string(&outcome).unwrap_or_default(),
            "outcome"
        );
        outcome
    }

    async fn publish(
        &self,
        outcome: &Outcome,
        deadline: Option<Instant>,
    ) -> Result<(), sns::PublishError> {
        let result = match bounded(
            deadline,
            sns::publish(
                &self.clients.sns,
                &self.config.topic_arn,
                outcome,
                self.config.function_name.as_deref(),
            ),
        )
        .await
        {
            Ok(result) => result,
            Err(waited) => Err(sns::PublishError {
                topic: self.config.topic_arn.clone(),
                reason: format!("SNS did not answer within {} s", waited.as_secs()),
            }),
        };
        match result {
            Ok(id) => {
                tracing::info!(message_id = %id, "published the outcome");
                Ok(())
            }
            Err(e) => {
                // Nothing is lost silently: the whole outcome goes to the log before we fail.
                tracing::error!(
                    outcome = %serde_json::to_string(outcome).unwrap_or_default(),
                    "{e}"
                );
                Err(e)
            }
        }
    }

    /// The configured key's latest version; a pattern names no single object.
    fn default_artifact(&self) -> Result<ObjectRef, EngineError> {
        if self.config.artifact_key.contains('*') {
            return Err(EngineError::InvalidRequest {
                reason: format!(
                    "ARTIFACT_KEY is a pattern ({}): name the artifact with \"artifact\": \"s3://{}/…\"",
                    self.config.artifact_key, self.config.artifact_bucket
                ),
            });
        }
        Ok(ObjectRef {
            bucket: self.config.artifact_bucket.clone(),
            key: self.config.artifact_key.clone(),
            version_id: None,
            etag: None,
        })
    }

    /// Only this stage's bucket and key (pattern) are ever downloaded.
    fn check_allowed(&self, object: &ObjectRef) -> Result<(), EngineError> {
        let reason = if object.bucket != self.config.artifact_bucket {
            format!(
                "bucket `{}` is not this stage's artifact bucket `{}`",
                object.bucket, self.config.artifact_bucket
            )
        } else if !key_matches(&self.config.artifact_key, &object.key) {
            format!(
                "key `{}` does not match this stage's ARTIFACT_KEY `{}`",
                object.key, self.config.artifact_key
            )
        } else if object
            .key
            .split('/')
            .any(|part| part == ".." || part == ".")
            || object.key.chars().any(char::is_control)
        {
            format!(
                "key `{}` has `.`/`..` segments or control characters",
                object.key.escape_debug()
            )
        } else {
            return Ok(());
        };
        Err(EngineError::InvalidRequest { reason })
    }

    /// The database, with fresh credentials: an IAM token is minted for every connection.
    async fn target(&self, deadline: Option<Instant>) -> Result<DatabaseTarget, EngineError> {
        let db = &self.config.db;
        if let DbAuth::Url { url } = &db.auth {
            return parse_database_url(url);
        }
        let (user, password, host, port, name) = match &db.auth {
            DbAuth::Iam => (
                db.user.clone(),
                self.iam_token(deadline).await?,
                db.host.clone(),
                db.port_or_default(),
                db.name.clone(),
            ),
            DbAuth::Secret { arn } => {
                // The stage's variables win; what they leave out comes from the secret.
                let secret = bounded(
                    deadline,
                    secrets::database_secret(&self.clients.secrets, arn),
                )
                .await
                .map_err(|waited| EngineError::Credentials {
                    reason: format!(
                        "Secrets Manager did not answer within {} s",
                        waited.as_secs()
                    ),
                })??;
                let pick = |configured: &str, from_secret: Option<String>, what: &str| {
                    if configured.is_empty() {
                        from_secret.filter(|v| !v.is_empty()).ok_or_else(|| {
                            EngineError::Credentials {
                                reason: format!(
                                    "no database {what}: set DB_{} or put `{what}` in the secret",
                                    what.to_uppercase()
                                ),
                            }
                        })
                    } else {
                        Ok(configured.to_string())
                    }
                };
                let user = pick(&db.user, Some(secret.username.clone()), "user")?;
                let host = pick(&db.host, secret.host.clone(), "host")?;
                let name = pick(&db.name, secret.dbname.clone(), "dbname")?;
                let port = db
                    .port
                    .or(secret.port)
                    .unwrap_or_else(|| db.port_or_default());
                (user, secret.password, host, port, name)
            }
            DbAuth::Url { .. } => unreachable!("handled above"),
        };
        if db.engine == DbEngine::Mysql {
            // TLS VerifyIdentity with the CA bundle; the cleartext plugin carries an IAM token.
            return Ok(DatabaseTarget::MySql(Box::new(
                migrator_engine::dialect::mysql::Target::from_parts(
                    &host,
                    port,
                    &user,
                    &password,
                    &name,
                    &self.ca_bundle,
                )?,
            )));
        }
        Ok(DatabaseTarget::Postgres(Box::new(
            postgres::Target::from_parts(
                &host,
                port,
                &user,
                &password,
                &name,
                db.schema.as_deref(),
                &self.ca_bundle,
            ),
        )))
    }

    async fn iam_token(&self, deadline: Option<Instant>) -> Result<String, EngineError> {
        let fail = |reason: String| EngineError::Credentials { reason };
        let region = self
            .config
            .region
            .clone()
            .or_else(|| self.clients.sdk.region().map(|r| r.to_string()))
            .ok_or_else(|| {
                fail("no AWS region (AWS_REGION) to sign the IAM auth token for".into())
            })?;
        let provider = self
            .clients
            .sdk
            .credentials_provider()
            .ok_or_else(|| fail("no AWS credentials provider".into()))?;
        let credentials = bounded(deadline, provider.provide_credentials())
            .await
            .map_err(|waited| {
                fail(format!(
                    "the AWS credentials provider did not answer within {} s",
                    waited.as_secs()
                ))
            })?
            .map_err(|e| fail(format!("no AWS credentials: {e}")))?;
        let db = &self.config.db;
        let request = TokenRequest {
            host: &db.host,
            port: db.port_or_default(),
            user: &db.user,
            region: &region,
        };
        let token = rds_token::generate(&request, &credentials, SystemTime::now())
            .map_err(|e| fail(e.to_string()))?;
        tracing::debug!(token = %rds_token::describe(&token), "minted an IAM auth token");
        Ok(token)
    }
}

/// `call`, given at most [`CALL_TIMEOUT`] and never past the deadline (at least
/// [`CALL_FLOOR`]); `Err(waited)` when it did not answer in time.
async fn bounded<T>(
    deadline: Option<Instant>,
    call: impl std::future::Future<Output = T>,
) -> Result<T, Duration> {
    let limit = deadline
        .map(|d| d.saturating_duration_since(Instant::now()))
        .map_or(CALL_TIMEOUT, |left| left.min(CALL_TIMEOUT))
        .max(CALL_FLOOR);
    tokio::time::timeout(limit, call).await.map_err(|_| limit)
}

/// What one invocation runs: each object version once, at most
/// [`MAX_ITEMS_PER_INVOCATION`] deploys.
#[derive(Default)]
struct Budget {
    seen: Vec<ObjectRef>,
    ran: usize,
}

enum Admit {
    Run(Item),
    /// An upload of an object version this invocation already handles.
    Duplicate(ObjectRef),
    OverLimit,
}

impl Budget {
    fn admit(&mut self, item: Item) -> Admit {
        if let Item::Upload(object) = &item
            && self.seen.contains(object)
        {
            return Admit::Duplicate(object.clone());
        }
        if !matches!(item, Item::TestEvent) {
            if self.ran >= MAX_ITEMS_PER_INVOCATION {
                return Admit::OverLimit;
            }
            self.ran += 1;
        }
        if let Item::Upload(object) = &item {
            self.seen.push(object.clone());
        }
        Admit::Run(item)
    }
}

/// Outcomes an SQS redelivery could change: faults, and a lock held by another run.
fn worth_retrying(outcome: &Outcome) -> bool {
    matches!(outcome.status, Status::Failed | Status::Incomplete)
        || outcome.error.as_ref().and_then(|e| e.code.as_deref()) == Some("P1002")
}
