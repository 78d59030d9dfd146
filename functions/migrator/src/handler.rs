//! One invocation, whatever the runtime: event → items → (artifact, credentials, engine)
//! → outcomes → SNS → the response. Lambda and ECS call [`Handler::handle`].

use migrator_engine::preflight::PreflightSettings;
use std::sync::Arc;
use std::time::{Duration, Instant};

use migrator_engine::artifact::{self, Artifact, Limits};
use migrator_engine::clock::{Clock, SystemClock};
use migrator_engine::dialect::{DatabaseTarget, ServerLogin, parse_database_url};
use migrator_engine::engine::{self, InvokedBy, Request, Settings, StagePolicy};
use migrator_engine::error::{EngineError, Wording};
use migrator_engine::outcome::{Action, ArtifactInfo, Outcome, Status};
use serde_json::{Value, json};

use crate::config::{DbAuth, DbConfig, DbEngine, StageConfig, key_matches};
use crate::error::EdgeError;
use crate::payload::ManualPayload;
use crate::ports::{ArtifactSource, Credentials, DatabaseGuard, Notifier, PublishError, TokenFor};
use crate::render::FunctionWording;
use crate::tls;
use crate::trigger::{self, Envelope, Item, ObjectRef};

/// What the runtime knows about this invocation.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub request_id: String,
    /// The Lambda deadline; ECS and the CLI have none unless `MAX_DURATION` is set.
    pub deadline: Option<Instant>,
    /// The function ARN the caller invoked (Lambda's context; for the ECS task, what the
    /// construct's state machine passes as `MIGRATOR_INVOKED_FUNCTION_ARN`): its qualifier is
    /// the door the invocation came through ([`qualifier_of`]).
    pub invoked_function_arn: Option<String>,
}

impl Invocation {
    /// The ECS task's invocation (`handle-event`): the door is what the construct's state
    /// machine passes in `MIGRATOR_INVOKED_FUNCTION_ARN` (only the state machine that the
    /// confirmers may start passes the confirm qualifier).
    pub fn for_task() -> Invocation {
        Invocation {
            invoked_function_arn: std::env::var("MIGRATOR_INVOKED_FUNCTION_ARN")
                .ok()
                .filter(|a| !a.trim().is_empty()),
            ..Invocation::default()
        }
    }

    /// The qualifier the function was invoked through (`None`: the unqualified function).
    pub fn qualifier(&self) -> Option<&str> {
        self.invoked_function_arn.as_deref().and_then(qualifier_of)
    }
}

/// The qualifier of an invoked function ARN: its 8th `:`-part
/// (`arn:aws:lambda:REGION:ACCOUNT:function:NAME:QUALIFIER`); `None` for an unqualified ARN
/// or anything that is not a Lambda function ARN (an emulator's placeholder).
pub fn qualifier_of(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, qualifier]
            if !name.is_empty() && !qualifier.is_empty() =>
        {
            Some(qualifier)
        }
        _ => None,
    }
}

/// What the handler reads from, publishes to and gets credentials from (see `ports`).
/// Whether a run's database is the stage's own (its RDS identifier is the stage's), or a fleet
/// target's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum StageDatabase {
    Yes,
    No,
}

pub struct Edges<S, N, C> {
    pub artifacts: S,
    pub notifier: N,
    pub credentials: C,
    /// The stage's RDS database (Blue/Green check, recovery points), when it names one.
    pub guard: Option<Arc<dyn DatabaseGuard>>,
}

pub struct Handler<S, N, C> {
    pub config: StageConfig,
    edges: Edges<S, N, C>,
    ca_bundle: Vec<u8>,
    /// Hints in the function's words (a manual payload, the stage's variables).
    wording: Arc<dyn Wording>,
}

/// The response, and whether the invocation as a whole failed.
pub struct Response {
    pub body: Value,
    pub outcomes: Vec<Outcome>,
    pub publish_errors: Vec<PublishError>,
    /// A direct invocation whose outcome could not be published fails as a whole (the
    /// outcome is in the log). In an SQS batch only that record is retried.
    pub fails_invocation: bool,
}

/// At most this many deploys (distinct objects, and manual requests) run in one invocation;
/// more records are not run. In an SQS batch a message runs whole or waits for redelivery,
/// and a message with more records than this can never run: it is answered once with a
/// `rejected` outcome and not retried. A direct invocation reports the records beyond the
/// limit in one `rejected` outcome.
pub const MAX_ITEMS_PER_INVOCATION: usize = 10;

/// An outside call (S3, SNS, Secrets Manager, credentials) never waits longer than this,
/// nor past the deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The least an outside call is given, even at the deadline (publishing the outcome).
const CALL_FLOOR: Duration = Duration::from_secs(1);

/// Why an item stopped before the engine ran: the request (as far as it was read), the
/// error, and the artifact when it had been read.
struct Early {
    request: Request,
    error: EdgeError,
    artifact: Option<ArtifactInfo>,
}

impl Early {
    fn new(request: &Request, error: impl Into<EdgeError>) -> Early {
        Early {
            request: request.clone(),
            error: error.into(),
            artifact: None,
        }
    }

    /// Something we will not act on.
    fn refused(action: Action, reason: String) -> Early {
        Early::new(
            &Request::refused(action),
            EdgeError::invalid_request(format!("received {reason}")),
        )
    }

    /// The document of a request that stopped before the engine ran, with the error.
    fn outcome(self, wording: &dyn Wording) -> Outcome {
        let mut outcome = Outcome::new(self.request.action, SystemClock.now());
        outcome.confirmed = self.request.confirmed();
        outcome.invoked_by = self.request.invoked_by.clone();
        outcome.artifact = self.artifact;
        self.error.record(&mut outcome, wording);
        outcome
    }
}

/// An item ready for the engine.
struct Ready {
    request: Request,
    artifact: Artifact,
    target: DatabaseTarget,
    /// What a confirmation of this plan names: the version the store served.
    served: ObjectRef,
    /// Preflight findings (`rule@migration`) the person accepts.
    accept: Vec<String>,
}

impl<S: ArtifactSource, N: Notifier, C: Credentials> Handler<S, N, C> {
    pub fn new(config: StageConfig, edges: Edges<S, N, C>) -> Result<Self, tls::TlsError> {
        let ca_bundle = tls::ca_bundle(config.db.ca_bundle.as_deref())?;
        let wording = Arc::new(FunctionWording {
            function: config.function_name.clone(),
        });
        Ok(Handler {
            config,
            edges,
            ca_bundle,
            wording,
        })
    }

    /// Handles the invocation's raw event (read strictly, see `trigger::parse_text`).
    pub async fn handle(&self, event: &[u8], invocation: &Invocation) -> Response {
        let deadline = invocation.deadline.or_else(|| {
            self.config
                .max_duration
                .and_then(|d| Instant::now().checked_add(d))
        });
        let mut outcomes = Vec::new();
        let mut publish_errors = Vec::new();
        let mut fails_invocation = false;
        let mut budget = Budget::default();
        let envelope = trigger::parse_text(event);
        if let Envelope::Direct(items) = &envelope
            && let [Item::Fleet(step)] = items.as_slice()
            && self.fleet_door_open(invocation)
        {
            // Boxed: the fleet steps nest the engine deep enough to overflow an inline layout.
            return Box::pin(self.fleet(step, invocation, deadline)).await;
        }
        let body = match envelope {
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
                    match self.run(item, invocation, deadline).await {
                        Some(outcome) => {
                            if let Err(e) = self
                                .publish(&outcome, self.door(&outcome, invocation), deadline)
                                .await
                            {
                                publish_errors.push(e);
                                fails_invocation = true;
                            }
                            outcomes.push(outcome);
                        }
                        None => ignored.push("s3:TestEvent"),
                    }
                }
                if over > 0 {
                    let outcome = self.finish(
                        Early::refused(
                            Action::Deploy,
                            format!(
                                "{over} more record(s) in this event: at most {MAX_ITEMS_PER_INVOCATION} deploys run per invocation; send them again in another event"
                            ),
                        )
                        .outcome(self.wording.as_ref()),
                        None,
                    );
                    if let Err(e) = self
                        .publish(&outcome, self.door(&outcome, invocation), deadline)
                        .await
                    {
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
                    let runs = Budget::cost(&items, &[]);
                    if runs > MAX_ITEMS_PER_INVOCATION {
                        // No redelivery can run it: answered once, with why, and not retried.
                        let outcome = self.finish(
                            Early::refused(
                                Action::Deploy,
                                format!(
                                    "SQS message {} with {runs} deploys (distinct object versions and requests): at most {MAX_ITEMS_PER_INVOCATION} deploys run per invocation, so this message can never run and none of its records ran; it is not retried. Send the uploads in smaller messages",
                                    trigger::clip(&message_id)
                                ),
                            )
                            .outcome(self.wording.as_ref()),
                            None,
                        );
                        if let Err(e) = self
                            .publish(&outcome, self.door(&outcome, invocation), deadline)
                            .await
                        {
                            publish_errors.push(e);
                            failures.push(json!({ "itemIdentifier": message_id }));
                        }
                        outcomes.push(outcome);
                        continue;
                    }
                    if !budget.fits(&items) {
                        // A message runs whole or not at all: this one waits for redelivery
                        // (it fits in an invocation of its own).
                        tracing::warn!(
                            message_id = %message_id,
                            "more than {MAX_ITEMS_PER_INVOCATION} deploys in one batch: this message is left for redelivery"
                        );
                        failures.push(json!({ "itemIdentifier": message_id }));
                        continue;
                    }
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
                            Item::Upload(object, _) => Some(object.clone()),
                            _ => None,
                        };
                        let Some(outcome) = self.run(item, invocation, deadline).await else {
                            continue;
                        };
                        let mut worth = worth_retrying(&outcome);
                        if let Err(e) = self
                            .publish(&outcome, self.door(&outcome, invocation), deadline)
                            .await
                        {
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

    /// Runs one item; `None` for what is only acknowledged.
    async fn run(
        &self,
        item: Item,
        invocation: &Invocation,
        deadline: Option<Instant>,
    ) -> Option<Outcome> {
        let item = self.guard_fleet(item, invocation);
        let ready = match self.prepare(item, invocation, deadline).await {
            Ok(None) => return None,
            Ok(Some(ready)) => ready,
            Err(early) => return Some(self.finish(early.outcome(self.wording.as_ref()), None)),
        };
        Some(self.run_ready(ready, deadline, StageDatabase::Yes).await)
    }

    /// The engine over a prepared item, the outcome logged (not published).
    async fn run_ready(
        &self,
        ready: Ready,
        deadline: Option<Instant>,
        database: StageDatabase,
    ) -> Outcome {
        // The recovery point and the Blue/Green check name the stage's RDS database: a fleet
        // target is another database, which they must never be taken for.
        let guard = match database {
            StageDatabase::Yes => self.edges.guard.as_ref(),
            StageDatabase::No => None,
        };
        let settings = Settings {
            lock_wait: self.config.lock_wait(),
            deadline,
            deadline_margin: self.config.deadline_margin,
            statement_lock_timeout: self.config.statement_lock_timeout,
            statement_lock_retries: self.config.statement_lock_retries,
            preflight: Some(PreflightSettings {
                block_on: self.config.block_on,
                accept: ready.accept.clone(),
                ..PreflightSettings::default()
            }),
            wording: self.wording.clone(),
            recovery: guard.and_then(|g| g.recovery()),
            ..Settings::default()
        }
        .with_prisma_env();
        let guarded = match ready.request.writes() {
            true => self.before_writing(&ready.target, deadline, guard).await,
            false => Ok(Vec::new()),
        };
        let guard_warnings = match guarded {
            Ok(warnings) => warnings,
            Err(error) => {
                let mut outcome = Early {
                    artifact: Some(engine::artifact_info(&ready.artifact)),
                    ..Early::new(&ready.request, error)
                }
                .outcome(self.wording.as_ref());
                outcome.database = Some(ready.target.info());
                return self.finish(outcome, None);
            }
        };
        // Connecting waits no longer than any other step: never past the deadline's margin.
        let connect_by = deadline.map(|d| {
            d.checked_sub(self.config.deadline_margin)
                .unwrap_or_else(Instant::now)
        });
        let outcome = DatabaseTarget::connecting_by(
            connect_by,
            engine::run(
                &ready.request,
                Ok(ready.artifact),
                &ready.target,
                &settings,
                &SystemClock,
            ),
        )
        .await;
        let mut outcome = outcome;
        outcome.warnings.splice(0..0, guard_warnings);
        self.finish(outcome, Some(&ready.served))
    }

    /// Before a run that writes, before the lock: an RDS Proxy endpoint is refused, and the
    /// stage's RDS database is asked about Blue/Green deployments (`recovery`).
    async fn before_writing(
        &self,
        target: &DatabaseTarget,
        deadline: Option<Instant>,
        guard: Option<&Arc<dyn DatabaseGuard>>,
    ) -> Result<Vec<String>, EdgeError> {
        if let Some(host) = target.info().host {
            crate::recovery::refuse_proxy(&host)?;
        }
        let Some(guard) = guard else {
            return Ok(Vec::new());
        };
        bounded(deadline, guard.before_writing())
            .await
            .map_err(|waited| {
                EdgeError::Engine(EngineError::RecoveryPointFailed {
                    call: "DescribeBlueGreenDeployments".into(),
                    reason: format!("RDS did not answer within {} s", waited.as_secs()),
                })
            })?
            .map_err(EdgeError::from)
    }

    /// Everything before the engine: the request, the allowed object, its bytes, the
    /// artifact and the database with fresh credentials. `Ok(None)`: only acknowledged.
    async fn prepare(
        &self,
        item: Item,
        invocation: &Invocation,
        deadline: Option<Instant>,
    ) -> Result<Option<Ready>, Early> {
        let request_id = invocation.request_id.as_str();
        let policy = StagePolicy {
            auto_apply: self.config.auto_apply,
        };
        let mut accept = Vec::new();
        // A person's confirmation of a named object version (not an upload event: a late
        // event of an older upload is answered as up to date, see the engine's drift check).
        let mut confirms_a_version = false;
        let (request, object) = match item {
            Item::TestEvent => {
                tracing::info!("acknowledged s3:TestEvent");
                return Ok(None);
            }
            Item::Invalid { action, reason } => return Err(Early::refused(action, reason)),
            Item::Fleet(_) => {
                return Err(Early::refused(
                    Action::Deploy,
                    "a fleet payload with other records: a fleet step is an invocation of its own"
                        .into(),
                ));
            }
            Item::Upload(object, uploader) => (
                Request::upload(
                    policy,
                    InvokedBy::s3_event(uploader.as_deref(), Some(request_id)),
                ),
                object,
            ),
            Item::Manual(manual) => {
                accept = manual.accept;
                let request = Request::manual(
                    policy,
                    manual.action,
                    manual.confirm,
                    manual.resolve,
                    manual.plan_hash,
                    InvokedBy::declared(manual.by.as_deref(), Some(request_id)),
                )
                .map_err(|error| Early::new(&Request::refused(manual.action), error))?;
                if let Some(reason) = self.door_refusal(&request, invocation) {
                    let mut refused = Request::refused(request.action);
                    refused.invoked_by = request.invoked_by.clone();
                    return Err(Early::new(&refused, EdgeError::invalid_request(reason)));
                }
                confirms_a_version = request.confirmed()
                    && request.action == Action::Deploy
                    && manual
                        .artifact
                        .as_ref()
                        .is_some_and(|o| o.version_id.is_some());
                let object = match manual.artifact {
                    Some(object) => object,
                    None => self
                        .default_artifact()
                        .map_err(|error| Early::new(&request, error))?,
                };
                (request, object)
            }
        };
        let early = |error: EdgeError| Early::new(&request, error);
        self.check_allowed(&object).map_err(early)?;
        let fetched = bounded(
            deadline,
            self.edges
                .artifacts
                .fetch(&object, self.config.max_artifact_bytes),
        )
        .await
        .map_err(|waited| EdgeError::ArtifactUnavailable {
            location: format!("s3://{}/{}", object.bucket, object.key),
            reason: format!("S3 did not answer within {} s", waited.as_secs()),
            transient: true,
        })
        .and_then(|fetched| fetched)
        .map_err(early)?;
        let served = ObjectRef {
            version_id: fetched.version_id.clone(),
            etag: None,
            ..object
        };
        if confirms_a_version {
            self.check_latest(&served, deadline).await.map_err(early)?;
        }
        // An unusable artifact is rejected before any credential is fetched or minted.
        let artifact = artifact::read_zip(&fetched.location, &fetched.bytes, &Limits::default())
            .map_err(|error| early(EdgeError::from(error)))?;
        let target = self
            .target_for(&self.config.db, deadline)
            .await
            .map_err(|error| Early {
                artifact: Some(engine::artifact_info(&artifact)),
                ..early(error)
            })?;
        Ok(Some(Ready {
            request,
            artifact,
            target,
            served,
            accept,
        }))
    }

    /// The stage and the plan's confirmation payload; then the whole outcome goes to the log
    /// (before anything is published).
    fn finish(&self, mut outcome: Outcome, served: Option<&ObjectRef>) -> Outcome {
        outcome.stage = Some(self.config.stage.clone());
        if let (Some(hash), Some(object)) = (&outcome.plan_hash, served) {
            outcome.confirm_payload = Some(ManualPayload::confirming(object, hash).to_value());
        }
        tracing::info!(
            stage = %self.config.stage,
            status = outcome.status_text(),
            artifact = outcome.artifact.as_ref().map(|a| a.location.as_str()).unwrap_or(""),
            applied = outcome.applied.len(),
            pending = outcome.pending.len(),
            error = outcome.error.as_ref().and_then(|e| e.code.as_deref()).unwrap_or(""),
            invoked_by = outcome.invoked_by.as_ref().map(|b| b.principal.as_str()).unwrap_or(""),
            accepted = %outcome.accepted.join(", "),
            document = %serde_json::to_string(&outcome).unwrap_or_default(),
            "outcome"
        );
        outcome
    }

    async fn publish(
        &self,
        outcome: &Outcome,
        door: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<(), PublishError> {
        let notifier = &self.edges.notifier;
        let result = bounded(deadline, notifier.publish(outcome, door))
            .await
            .unwrap_or_else(|waited| {
                Err(PublishError {
                    topic: notifier.topic().to_string(),
                    reason: format!("SNS did not answer within {} s", waited.as_secs()),
                })
            });
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

    /// A confirmation names an object version (a plan's `confirmPayload`, a Slack button): it
    /// is stale once a newer version was uploaded, and refused with the reason; the newer
    /// upload has its own plan and button.
    async fn check_latest(
        &self,
        served: &ObjectRef,
        deadline: Option<Instant>,
    ) -> Result<(), EdgeError> {
        let latest = bounded(deadline, self.edges.artifacts.latest_version(served))
            .await
            .map_err(|waited| EdgeError::ArtifactUnavailable {
                location: format!("s3://{}/{}", served.bucket, served.key),
                reason: format!("S3 did not answer within {} s", waited.as_secs()),
                transient: true,
            })??;
        match (latest, &served.version_id) {
            (Some(latest), Some(named)) if &latest != named => {
                Err(EdgeError::invalid_request(format!(
                    "a stale confirmation: it confirms version {named} of s3://{}/{}, but version {latest} was uploaded since. Nothing was applied; confirm the newer upload's plan instead",
                    served.bucket, served.key
                )))
            }
            _ => Ok(()),
        }
    }

    /// The door a confirmed outcome came through (for the message): the stage's confirm
    /// qualifier when this invocation used it.
    fn door<'a>(&self, outcome: &Outcome, invocation: &'a Invocation) -> Option<&'a str> {
        let door = invocation.qualifier()?;
        (outcome.confirmed && self.config.confirm_qualifier.as_deref() == Some(door)).then(|| {
            tracing::info!(door, "confirmed through the confirm qualifier");
            door
        })
    }

    /// The confirm door: where the stage has one (`CONFIRM_QUALIFIER`), a request that writes
    /// (a confirmed deploy or resolve) is honoured only when the function was invoked through
    /// that qualifier, which IAM grants to the confirmers alone. A plan, status or an upload
    /// needs no door.
    fn door_refusal(&self, request: &Request, invocation: &Invocation) -> Option<String> {
        let door = self.config.confirm_qualifier.as_deref()?;
        if !request.confirmed() || invocation.qualifier() == Some(door) {
            return None;
        }
        let came = match invocation.qualifier() {
            Some(other) => format!("through the qualifier `{other}`"),
            None => "through the unqualified function".to_string(),
        };
        Some(format!(
            "a confirmed {} {came}: confirm through the `{door}` alias: --qualifier {door} (`migrator invoke --confirm` does; so do the Slack buttons). Without it the function only plans",
            request.action.as_str()
        ))
    }

    /// The configured key's latest version; a pattern names no single object.
    fn default_artifact(&self) -> Result<ObjectRef, EdgeError> {
        if self.config.artifact_key.contains('*') {
            return Err(EdgeError::invalid_request(format!(
                "ARTIFACT_KEY is a pattern ({}): name the artifact with \"artifact\": \"s3://{}/…\"",
                self.config.artifact_key, self.config.artifact_bucket
            )));
        }
        Ok(ObjectRef {
            bucket: self.config.artifact_bucket.clone(),
            key: self.config.artifact_key.clone(),
            version_id: None,
            etag: None,
        })
    }

    /// Only this stage's bucket and key (pattern) are ever downloaded.
    fn check_allowed(&self, object: &ObjectRef) -> Result<(), EdgeError> {
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
        Err(EdgeError::invalid_request(reason))
    }

    /// The database `db` (the stage's, or a fleet target's), with fresh credentials.
    async fn target_for(
        &self,
        db: &DbConfig,
        deadline: Option<Instant>,
    ) -> Result<DatabaseTarget, EdgeError> {
        database_target(db, &self.edges.credentials, &self.ca_bundle, deadline).await
    }
}

/// The database `db` with fresh credentials: an IAM token is minted for every connection, a
/// secret read, or the URL taken as it is (the function, and `migrator fleet status`).
pub async fn database_target(
    db: &DbConfig,
    credentials: &impl Credentials,
    ca_bundle: &[u8],
    deadline: Option<Instant>,
) -> Result<DatabaseTarget, EdgeError> {
    let login = match &db.auth {
        DbAuth::Url { url } => return Ok(parse_database_url(url)?),
        DbAuth::Iam => {
            let token = TokenFor {
                host: db.host.clone(),
                port: db.port_or_default(),
                user: db.user.clone(),
            };
            let password = asking(
                deadline,
                "the AWS credentials provider",
                credentials.iam_token(&token),
            )
            .await?;
            Login {
                host: token.host,
                port: token.port,
                user: token.user,
                password,
                name: db.name.clone(),
            }
        }
        DbAuth::Secret { arn } => {
            // The stage's variables win; what they leave out comes from the secret.
            let secret = asking(
                deadline,
                "Secrets Manager",
                credentials.database_secret(arn),
            )
            .await?;
            let pick = |configured: &str, from_secret: Option<String>, what: &str| {
                if configured.is_empty() {
                    from_secret
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| EdgeError::Credentials {
                            reason: format!(
                                "no database {what}: set DB_{} or put `{what}` in the secret",
                                what.to_uppercase()
                            ),
                        })
                } else {
                    Ok(configured.to_string())
                }
            };
            Login {
                user: pick(&db.user, Some(secret.username.clone()), "user")?,
                host: pick(&db.host, secret.host.clone(), "host")?,
                name: pick(&db.name, secret.dbname.clone(), "dbname")?,
                port: db
                    .port
                    .or(secret.port)
                    .unwrap_or_else(|| db.port_or_default()),
                password: secret.password,
            }
        }
    };
    Ok(login.target(db.engine, db.schema.as_deref(), ca_bundle)?)
}

/// Where and as whom the function logs in (the password may be an IAM auth token).
struct Login {
    host: String,
    port: u16,
    user: String,
    password: String,
    name: String,
}

impl Login {
    /// The stage's database at this login (see [`DatabaseTarget::from_parts`]).
    fn target(
        &self,
        engine: DbEngine,
        schema: Option<&str>,
        ca_pem: &[u8],
    ) -> Result<DatabaseTarget, EngineError> {
        let login = ServerLogin {
            host: &self.host,
            port: self.port,
            user: &self.user,
            password: &self.password,
            database: &self.name,
            schema,
            ca_pem,
        };
        DatabaseTarget::from_parts(engine.provider(), &login)
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

/// A credentials call, [`bounded`]; `who` is named when it does not answer in time.
async fn asking<T>(
    deadline: Option<Instant>,
    who: &str,
    call: impl std::future::Future<Output = Result<T, EdgeError>>,
) -> Result<T, EdgeError> {
    bounded(deadline, call)
        .await
        .map_err(|waited| EdgeError::Credentials {
            reason: format!("{who} did not answer within {} s", waited.as_secs()),
        })?
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
    /// How many deploys `items` cost: uploads of an object version in `handled` (or earlier
    /// in `items`) share its answer and cost nothing, an S3 test event costs nothing.
    fn cost(items: &[Item], handled: &[ObjectRef]) -> usize {
        let mut seen: Vec<&ObjectRef> = Vec::new();
        let mut cost = 0;
        for item in items {
            match item {
                Item::TestEvent => continue,
                Item::Upload(object, _) if handled.contains(object) || seen.contains(&object) => {
                    continue;
                }
                Item::Upload(object, _) => seen.push(object),
                _ => {}
            }
            cost += 1;
        }
        cost
    }

    /// Whether every item of one message can still run in this invocation.
    fn fits(&self, items: &[Item]) -> bool {
        self.ran + Budget::cost(items, &self.seen) <= MAX_ITEMS_PER_INVOCATION
    }

    fn admit(&mut self, item: Item) -> Admit {
        if let Item::Upload(object, _) = &item
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
        if let Item::Upload(object, _) = &item {
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

mod fleet;
#[cfg(test)]
mod tests;
