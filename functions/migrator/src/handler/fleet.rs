//! The fleet's steps in the function: Prepare (pin and check), Target (plan or apply the one
//! target the state machine chose) and Rollup (one message on the rollout's thread). The
//! fleet's door: a fleet payload is honoured only when this function is a fleet's
//! (`FLEET_QUALIFIER`) and was invoked through that qualifier, which the construct grants to
//! the fleet's state machine alone; a fleet's function takes nothing else.

use migrator_engine::checksum::sha256_hex;
use migrator_engine::engine::StagePolicy;

use super::*;
use crate::config::DbConfig;
use crate::fleet::payload::{
    self, Prepared, Rollout, RunState, Step, TargetAction, TargetResult, detail_limit,
};
use crate::fleet::rollup::Rollup;
use crate::fleet::targets::{self, MAX_TARGETS_BYTES};
use crate::payload::parse_s3_url;

impl<S: ArtifactSource, N: Notifier, C: Credentials> Handler<S, N, C> {
    /// Whether this invocation came through the fleet's door.
    pub(super) fn fleet_door_open(&self, invocation: &Invocation) -> bool {
        self.config.fleet_qualifier.is_some()
            && invocation.qualifier() == self.config.fleet_qualifier.as_deref()
    }

    /// A fleet payload outside the fleet's door, or anything but a fleet payload in a
    /// fleet's function, is refused (answered `rejected` like any other refusal).
    pub(super) fn guard_fleet(&self, item: Item, invocation: &Invocation) -> Item {
        let refuse = |reason: String| Item::Invalid {
            action: Action::Deploy,
            reason,
        };
        match (&item, self.config.fleet_qualifier.as_deref()) {
            (Item::TestEvent, _) => item,
            (Item::Fleet(_), None) => refuse(
                "a fleet payload, but this function is no fleet's (no FLEET_QUALIFIER): only a fleet's state machine chooses a target, through the fleet function's own alias".into(),
            ),
            (Item::Fleet(_), Some(door)) if !self.fleet_door_open(invocation) => {
                let came = match invocation.qualifier() {
                    Some(other) => format!("through the qualifier `{other}`"),
                    None => "through the unqualified function".into(),
                };
                refuse(format!(
                    "a fleet payload {came}: only the fleet's state machine chooses a target, through the `{door}` alias, which the construct grants to it alone"
                ))
            }
            (Item::Fleet(_), Some(_)) => item,
            (_, Some(door)) => refuse(format!(
                "this is a fleet's function: it takes only its state machine's payloads (through the `{door}` alias); uploads and manual payloads go to the stage's function"
            )),
            (_, None) => item,
        }
    }

    /// One fleet step; nothing but the rollup is published.
    pub(super) async fn fleet(
        &self,
        step: &Value,
        invocation: &Invocation,
        deadline: Option<Instant>,
    ) -> Response {
        let mut publish_errors = Vec::new();
        let body = match payload::read(step) {
            Err(reason) => json!({ "ok": false, "rejected": reason }),
            Ok(Step::Prepare { input, canary }) => {
                let prepared = self.fleet_prepare(&input, canary, deadline).await;
                if let Some(reason) = &prepared.rejected {
                    tracing::warn!(stage = %self.config.stage, reason = %reason, "fleet rollout rejected");
                }
                serde_json::to_value(prepared).unwrap_or(Value::Null)
            }
            Ok(Step::Target {
                action,
                index,
                target,
                rollout,
            }) => {
                let result = self
                    .fleet_target(action, index, &target, &rollout, invocation, deadline)
                    .await;
                serde_json::to_value(result).unwrap_or(Value::Null)
            }
            Ok(Step::Rollup { run }) => {
                let rollup = self.fleet_rollup(&run, deadline).await;
                if let Err(e) = self.publish_rollup(&rollup, deadline).await {
                    publish_errors.push(e);
                }
                json!({ "ok": rollup.ok(), "rollup": rollup })
            }
        };
        let fails_invocation = !publish_errors.is_empty();
        Response {
            body,
            outcomes: Vec::new(),
            publish_errors,
            fails_invocation,
        }
    }

    /// Pins the artifact (the upload's version, or the latest) and the targets object (its
    /// current version), and checks every target line: a bad line rejects the rollout.
    async fn fleet_prepare(
        &self,
        input: &Value,
        canary: usize,
        deadline: Option<Instant>,
    ) -> Prepared {
        let reject = |reason: String| Prepared {
            ok: false,
            rejected: Some(reason),
            rollout: None,
            canary: Vec::new(),
            items: None,
        };
        let (object, confirm) = match trigger::parse(input) {
            Envelope::Direct(items) if items.len() == 1 => match items.into_iter().next() {
                Some(Item::Upload(object, _)) => (object, false),
                Some(Item::Manual(m))
                    if m.action == Action::Deploy
                        && m.plan_hash.is_none()
                        && m.accept.is_empty() =>
                {
                    match m.artifact.map_or_else(|| self.default_artifact(), Ok) {
                        Ok(object) => (object, m.confirm),
                        Err(e) => return reject(e.to_string()),
                    }
                }
                Some(Item::Invalid { reason, .. }) => {
                    return reject(format!("the execution's input: {reason}"));
                }
                _ => {
                    return reject(
                        "the execution's input must be an S3 upload event or {\"action\":\"deploy\"} (with \"confirm\", \"artifact\", \"versionId\"; a fleet confirms as a whole: no planHash, no accept)".into(),
                    );
                }
            },
            _ => {
                return reject(
                    "the execution's input must be one S3 upload event or one deploy payload"
                        .into(),
                );
            }
        };
        if let Err(e) = self.check_allowed(&object) {
            return reject(e.to_string());
        }
        let version_id = match &object.version_id {
            Some(v) => Some(v.clone()),
            None => match bounded(deadline, self.edges.artifacts.latest_version(&object)).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => return reject(e.to_string()),
                Err(waited) => {
                    return reject(format!("S3 did not answer within {} s", waited.as_secs()));
                }
            },
        };
        let Some(targets_url) = self.config.fleet_targets.clone() else {
            return reject(
                "FLEET_TARGETS is not set: the fleet function names its targets object".into(),
            );
        };
        let (text, targets_version) = match self.fetch_targets(&targets_url, None, deadline).await {
            Ok(fetched) => fetched,
            Err(reason) => return reject(reason),
        };
        let targets = match targets::parse(&text) {
            Ok(targets) => targets,
            Err(e) => return reject(e.to_string()),
        };
        let total = targets.len();
        let canary = canary.clamp(1, total);
        let artifact = format!("s3://{}/{}", object.bucket, object.key);
        let pinned = format!(
            "{artifact}@{}|{targets_url}@{}",
            version_id.as_deref().unwrap_or("-"),
            targets_version.as_deref().unwrap_or("-")
        );
        let id = sha256_hex(pinned.as_bytes())[..16].to_string();
        let canary_items = text
            .lines()
            .take(canary)
            .enumerate()
            .filter_map(|(index, line)| {
                crate::json::parse(line)
                    .ok()
                    .map(|t| json!({ "index": index, "target": t }))
            })
            .collect();
        let (bucket, key) = parse_s3_url(&targets_url).unwrap_or_default();
        Prepared {
            ok: true,
            rejected: None,
            rollout: Some(Rollout {
                thread_id: format!("fleet-{}-{id}", self.config.stage),
                id,
                artifact,
                version_id,
                targets: targets_url,
                targets_version: targets_version.clone(),
                apply: self.config.auto_apply || confirm,
                total,
                canary,
            }),
            canary: canary_items,
            items: Some(json!({ "bucket": bucket, "key": key, "versionId": targets_version })),
        }
    }

    /// The targets object's text and version.
    async fn fetch_targets(
        &self,
        url: &str,
        version: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<(String, Option<String>), String> {
        let (bucket, key) = parse_s3_url(url)?;
        let object = trigger::object_ref(&bucket, key, version, None)?;
        let fetched = bounded(
            deadline,
            self.edges.artifacts.fetch(&object, MAX_TARGETS_BYTES),
        )
        .await
        .map_err(|waited| format!("S3 did not answer within {} s for {url}", waited.as_secs()))?
        .map_err(|e| e.to_string())?;
        let text = String::from_utf8(fetched.bytes)
            .map_err(|_| format!("the targets object {url} is not UTF-8"))?;
        Ok((text, fetched.version_id))
    }

    /// Plans or applies the one target the state machine chose; never publishes (the rollup
    /// does), logs its outcome like every run.
    async fn fleet_target(
        &self,
        action: TargetAction,
        index: usize,
        target: &Value,
        rollout: &Rollout,
        invocation: &Invocation,
        deadline: Option<Instant>,
    ) -> TargetResult {
        let id = target
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| targets::is_target_id(id))
            .unwrap_or("?")
            .to_string();
        let refused = |status: &str, detail: String| TargetResult {
            index,
            id: id.clone(),
            status: status.into(),
            ok: false,
            applied: 0,
            pending: 0,
            detail: Some(
                migrator_engine::text::clip_bytes(&detail, detail_limit(rollout.total)).to_string(),
            ),
        };
        let checked = match targets::read_value(index + 1, target) {
            Ok(t) => t,
            Err(e) => return refused("rejected", e.to_string()),
        };
        if action == TargetAction::Deploy && !rollout.apply {
            return refused(
                "rejected",
                "the rollout only plans: confirm it as a whole to apply".into(),
            );
        }
        let by = InvokedBy::declared(
            Some(&format!("fleet rollout {}", rollout.id)),
            Some(invocation.request_id.as_str()),
        );
        let request = match action {
            TargetAction::Plan => Request::manual(
                StagePolicy {
                    auto_apply: self.config.auto_apply,
                },
                Action::Plan,
                false,
                None,
                None,
                by,
            ),
            // The state machine applies only a rollout that applies (auto-apply, or confirmed).
            TargetAction::Deploy => Ok(Request::upload(StagePolicy { auto_apply: true }, by)),
        };
        let request = match request {
            Ok(request) => request,
            Err(e) => return refused("rejected", e.to_string()),
        };
        let ready = match self
            .fleet_ready(request, rollout, &checked.db, deadline)
            .await
        {
            Ok(ready) => ready,
            Err(early) => {
                let outcome = self.finish(early.outcome(self.wording.as_ref()), None);
                return result_of(index, &id, &outcome, rollout.total);
            }
        };
        let outcome = self.run_ready(ready, deadline, StageDatabase::No).await;
        tracing::info!(target_id = %id, line = index + 1, status = outcome.status_text(), "fleet target");
        result_of(index, &id, &outcome, rollout.total)
    }

    /// The artifact the rollout pinned, and the target's database with fresh credentials.
    async fn fleet_ready(
        &self,
        request: Request,
        rollout: &Rollout,
        db: &DbConfig,
        deadline: Option<Instant>,
    ) -> Result<Ready, Early> {
        let early = |error: EdgeError| Early::new(&request, error);
        let (bucket, key) =
            parse_s3_url(&rollout.artifact).map_err(|r| early(EdgeError::invalid_request(r)))?;
        let object = trigger::object_ref(&bucket, key, rollout.version_id.as_deref(), None)
            .map_err(|r| early(EdgeError::invalid_request(r)))?;
        self.check_allowed(&object).map_err(early)?;
        let fetched = bounded(
            deadline,
            self.edges
                .artifacts
                .fetch(&object, self.config.max_artifact_bytes),
        )
        .await
        .map_err(|waited| EdgeError::ArtifactUnavailable {
            location: rollout.artifact.clone(),
            reason: format!("S3 did not answer within {} s", waited.as_secs()),
            transient: true,
        })
        .and_then(|fetched| fetched)
        .map_err(early)?;
        let artifact = artifact::read_zip(&fetched.location, &fetched.bytes, &Limits::default())
            .map_err(|error| early(EdgeError::from(error)))?;
        let target = self.target_for(db, deadline).await.map_err(|error| Early {
            artifact: Some(engine::artifact_info(&artifact)),
            ..early(error)
        })?;
        Ok(Ready {
            request,
            artifact,
            target,
            served: object,
            accept: Vec::new(),
        })
    }

    /// Every target's status, from what the state machine kept and the targets object the
    /// rollout pinned (so that targets no child reached are listed too).
    async fn fleet_rollup(&self, run: &RunState, deadline: Option<Instant>) -> Rollup {
        let mut ids: Vec<(usize, String)> = Vec::new();
        if let Some(rollout) = run.prepare.rollout.as_ref() {
            match self
                .fetch_targets(
                    &rollout.targets,
                    rollout.targets_version.as_deref(),
                    deadline,
                )
                .await
                .and_then(|(text, _)| targets::parse(&text).map_err(|e| e.to_string()))
            {
                Ok(targets) => ids = targets.into_iter().map(|t| (t.line, t.id)).collect(),
                Err(reason) => {
                    tracing::warn!(reason = %reason, "the rollup lists only the targets that answered");
                    let mut seen: Vec<&TargetResult> = [&run.plan, &run.canary, &run.waves]
                        .into_iter()
                        .flatten()
                        .flatten()
                        .collect();
                    seen.sort_by_key(|r| r.index);
                    seen.dedup_by_key(|r| r.index);
                    ids = seen.iter().map(|r| (r.index + 1, r.id.clone())).collect();
                }
            }
        }
        let rollup = Rollup::of(&self.config.stage, run, &ids);
        tracing::info!(
            stage = %self.config.stage,
            status = %rollup.status,
            counts = %rollup.count_line(),
            document = %serde_json::to_string(&rollup).unwrap_or_default(),
            "fleet rollup"
        );
        rollup
    }

    async fn publish_rollup(
        &self,
        rollup: &Rollup,
        deadline: Option<Instant>,
    ) -> Result<(), PublishError> {
        let notifier = &self.edges.notifier;
        bounded(deadline, notifier.publish_rollup(rollup))
            .await
            .unwrap_or_else(|waited| {
                Err(PublishError {
                    topic: notifier.topic().to_string(),
                    reason: format!("SNS did not answer within {} s", waited.as_secs()),
                })
            })
            .map(|id| tracing::info!(message_id = %id, "published the fleet rollup"))
            .inspect_err(|e| tracing::error!("{e}"))
    }
}

/// A target's result from its outcome, its detail within the rollout's budget (`total` targets).
fn result_of(index: usize, id: &str, outcome: &Outcome, total: usize) -> TargetResult {
    TargetResult {
        index,
        id: id.to_string(),
        status: outcome.status_text().to_string(),
        ok: outcome.is_success(),
        applied: outcome.applied.len(),
        pending: outcome.pending.len(),
        detail: outcome.error.as_ref().map(|e| {
            let text = match e.code.as_deref() {
                Some(code) => format!("{code}: {}", e.message),
                None => e.message.clone(),
            };
            migrator_engine::text::clip_bytes(&text, detail_limit(total)).to_string()
        }),
    }
}
