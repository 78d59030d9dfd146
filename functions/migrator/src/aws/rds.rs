//! The recovery point on RDS (the engine's `RecoveryPoints` port) and the Blue/Green check,
//! with the AWS SDK's RDS client. The rules (names, commands, what a Blue/Green deployment
//! means) are in `crate::recovery`; here are the calls, each named when it fails.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_rds::types::Tag;
use migrator_engine::chrono::{DateTime, Utc};
use migrator_engine::engine::{RecoveryNeed, RecoveryPoints};
use migrator_engine::error::EngineError;
use migrator_engine::outcome::{RecoveryKind, RecoveryPoint};

use super::describe_sdk_error;
use crate::recovery::{
    self, BlueGreen, Policy, RdsDatabase, RecoveryConfig, artifact_parts, tag_value,
};

/// How often a `creating` snapshot is asked about.
const POLL: Duration = Duration::from_secs(5);
/// The longest one RDS call may take (the SDK retries within it).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Without a deadline (ECS without MAX_DURATION), the longest a snapshot is waited for.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2 * 60 * 60);

/// The stage's RDS database and its recovery-point policy.
#[derive(Debug, Clone)]
pub struct Rds {
    client: aws_sdk_rds::Client,
    config: RecoveryConfig,
    database: RdsDatabase,
    stage: String,
    region: Option<String>,
}

/// An RDS call's failure: `failed` (worth another run), the call named.
fn failed<E>(
    call: &str,
) -> impl FnOnce(aws_sdk_rds::error::SdkError<E, aws_sdk_rds::config::http::HttpResponse>) -> EngineError
+ '_
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error,
{
    move |e| EngineError::RecoveryPointFailed {
        call: call.to_string(),
        reason: describe_sdk_error(&e),
    }
}

/// `call`, bounded by [`CALL_TIMEOUT`].
async fn bounded<T>(
    call_name: &str,
    call: impl std::future::Future<Output = Result<T, EngineError>>,
) -> Result<T, EngineError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| EngineError::RecoveryPointFailed {
            call: call_name.into(),
            reason: format!("RDS did not answer within {} s", CALL_TIMEOUT.as_secs()),
        })?
}

fn to_chrono(t: Option<&aws_sdk_rds::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// What DescribeDBInstances / DescribeDBClusters say of the database.
struct Described {
    retention_days: i32,
    latest_restorable: Option<DateTime<Utc>>,
    engine: Option<String>,
}

impl Rds {
    /// `None` when the stage names no RDS database (`DB_INSTANCE_ID` / `DB_CLUSTER_ID`).
    pub fn new(
        sdk: &aws_config::SdkConfig,
        config: &RecoveryConfig,
        stage: &str,
        region: Option<String>,
    ) -> Option<Rds> {
        let database = config.database.clone()?;
        Some(Rds {
            client: aws_sdk_rds::Client::new(sdk),
            config: config.clone(),
            database,
            stage: stage.to_string(),
            region,
        })
    }

    /// Whether the policy takes a recovery point at all (the engine gets the port only then).
    pub fn takes_points(&self) -> bool {
        self.config.policy != Policy::None
    }

    async fn describe(&self) -> Result<Described, EngineError> {
        match &self.database {
            RdsDatabase::Instance(id) => {
                let call = "DescribeDBInstances";
                let answer = bounded(call, async {
                    self.client
                        .describe_db_instances()
                        .db_instance_identifier(id)
                        .send()
                        .await
                        .map_err(failed(call))
                })
                .await?;
                let db = answer.db_instances().first().ok_or_else(|| {
                    EngineError::RecoveryPointFailed {
                        call: call.into(),
                        reason: format!("no DB instance `{id}`"),
                    }
                })?;
                Ok(Described {
                    retention_days: db.backup_retention_period().unwrap_or(0),
                    latest_restorable: to_chrono(db.latest_restorable_time()),
                    engine: db.engine().map(str::to_string),
                })
            }
            RdsDatabase::Cluster(id) => {
                let call = "DescribeDBClusters";
                let answer = bounded(call, async {
                    self.client
                        .describe_db_clusters()
                        .db_cluster_identifier(id)
                        .send()
                        .await
                        .map_err(failed(call))
                })
                .await?;
                let db = answer.db_clusters().first().ok_or_else(|| {
                    EngineError::RecoveryPointFailed {
                        call: call.into(),
                        reason: format!("no DB cluster `{id}`"),
                    }
                })?;
                Ok(Described {
                    retention_days: db.backup_retention_period().unwrap_or(0),
                    latest_restorable: to_chrono(db.latest_restorable_time()),
                    engine: db.engine().map(str::to_string),
                })
            }
        }
    }

    /// `pitr`: automated backups must be on; the point is the moment before the first write.
    async fn pitr(&self) -> Result<RecoveryPoint, EngineError> {
        let described = self.describe().await?;
        let db = &self.database;
        if described.retention_days <= 0 {
            return Err(EngineError::RecoveryPointUnavailable {
                reason: format!(
                    "the stage's policy is `pitr`, but automated backups are off for {} `{}` (backup retention period {}): there is no point in time to restore to",
                    db.resource(),
                    db.identifier(),
                    described.retention_days
                ),
            });
        }
        let Some(latest) = described.latest_restorable else {
            return Err(EngineError::RecoveryPointUnavailable {
                reason: format!(
                    "the stage's policy is `pitr`, but RDS reports no LatestRestorableTime for {} `{}` yet (the first backup has not finished)",
                    db.resource(),
                    db.identifier()
                ),
            });
        };
        let now = Utc::now();
        Ok(RecoveryPoint {
            kind: RecoveryKind::Pitr,
            resource: db.resource().into(),
            identifier: db.identifier().into(),
            restorable_time: Some(now),
            latest_restorable_time: Some(latest),
            snapshot_id: None,
            taken_at: now,
            restore_command: recovery::pitr_restore_command(db, now, self.region.as_deref()),
        })
    }

    fn tags(&self, need: &RecoveryNeed<'_>) -> Vec<Tag> {
        let (object, version) = artifact_parts(need.artifact_location.unwrap_or_default());
        let mut tags = vec![
            ("migrator:stage", self.stage.clone()),
            ("migrator:plan-hash", need.plan_hash.clone()),
            ("migrator:artifact", object.to_string()),
            (
                "migrator:artifact-version",
                version.unwrap_or("none").to_string(),
            ),
            (
                "migrator:artifact-sha256",
                need.artifact_sha256.unwrap_or_default().to_string(),
            ),
            (
                "migrator:first-migration",
                need.pending
                    .first()
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
            ),
        ];
        tags.retain(|(_, v)| !v.is_empty());
        tags.into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(tag_value(&v)).build())
            .collect()
    }

    /// The stage's manual snapshots of the database: (identifier, status).
    async fn snapshots(&self) -> Result<Vec<(String, String)>, EngineError> {
        let list = match &self.database {
            RdsDatabase::Instance(id) => {
                let call = "DescribeDBSnapshots";
                let answer = bounded(call, async {
                    self.client
                        .describe_db_snapshots()
                        .db_instance_identifier(id)
                        .snapshot_type("manual")
                        .send()
                        .await
                        .map_err(failed(call))
                })
                .await?;
                answer
                    .db_snapshots()
                    .iter()
                    .map(|s| {
                        (
                            s.db_snapshot_identifier().unwrap_or_default().to_string(),
                            s.status().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            }
            RdsDatabase::Cluster(id) => {
                let call = "DescribeDBClusterSnapshots";
                let answer = bounded(call, async {
                    self.client
                        .describe_db_cluster_snapshots()
                        .db_cluster_identifier(id)
                        .snapshot_type("manual")
                        .send()
                        .await
                        .map_err(failed(call))
                })
                .await?;
                answer
                    .db_cluster_snapshots()
                    .iter()
                    .map(|s| {
                        (
                            s.db_cluster_snapshot_identifier()
                                .unwrap_or_default()
                                .to_string(),
                            s.status().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            }
        };
        Ok(list)
    }

    async fn create_snapshot(&self, id: &str, tags: Vec<Tag>) -> Result<(), EngineError> {
        match &self.database {
            RdsDatabase::Instance(db) => {
                let call = "CreateDBSnapshot";
                bounded(call, async {
                    self.client
                        .create_db_snapshot()
                        .db_instance_identifier(db)
                        .db_snapshot_identifier(id)
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map_err(failed(call))
                })
                .await?;
            }
            RdsDatabase::Cluster(db) => {
                let call = "CreateDBClusterSnapshot";
                bounded(call, async {
                    self.client
                        .create_db_cluster_snapshot()
                        .db_cluster_identifier(db)
                        .db_cluster_snapshot_identifier(id)
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map_err(failed(call))
                })
                .await?;
            }
        }
        Ok(())
    }

    /// The status of one snapshot of the stage.
    async fn status(&self, id: &str) -> Result<String, EngineError> {
        Ok(self
            .snapshots()
            .await?
            .into_iter()
            .find(|(name, _)| name == id)
            .map(|(_, status)| status)
            .unwrap_or_default())
    }

    /// `snapshot`: a tagged manual snapshot, `available` before the first write. A snapshot
    /// of the same plan that an earlier run left `creating` (its deadline came first) is
    /// waited for instead of taking another.
    async fn snapshot(&self, need: &RecoveryNeed<'_>) -> Result<RecoveryPoint, EngineError> {
        let started = Instant::now();
        let wait = need.time_left.unwrap_or(SNAPSHOT_WAIT);
        let described = self.describe().await?;
        let earlier = self
            .snapshots()
            .await?
            .into_iter()
            .find(|(id, status)| {
                status == "creating" && recovery::same_plan(id, &self.stage, &need.plan_hash)
            })
            .map(|(id, _)| id);
        let id = match earlier {
            Some(id) => {
                tracing::info!(snapshot = %id, "waiting for the snapshot an earlier run of this plan started");
                id
            }
            None => {
                let id = recovery::snapshot_id(&self.stage, &need.plan_hash, Utc::now());
                self.create_snapshot(&id, self.tags(need)).await?;
                tracing::info!(snapshot = %id, "snapshot requested");
                id
            }
        };
        let db = &self.database;
        loop {
            let status = self.status(&id).await?;
            match status.as_str() {
                "available" => break,
                "creating" | "" => {}
                other => {
                    return Err(EngineError::RecoveryPointFailed {
                        call: "DescribeDBSnapshots".into(),
                        reason: format!("snapshot `{id}` ended `{other}` instead of `available`"),
                    });
                }
            }
            let left = wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(EngineError::RecoveryPointUnavailable {
                    reason: format!(
                        "snapshot `{id}` of {} `{}` was still `{}` after {} s, when the run had to stop waiting to keep its deadline. The snapshot goes on; the next run of this plan waits for it instead of taking another (or run it on the long-migration task, which has more time)",
                        db.resource(),
                        db.identifier(),
                        if status.is_empty() {
                            "creating"
                        } else {
                            &status
                        },
                        started.elapsed().as_secs()
                    ),
                });
            }
            tokio::time::sleep(POLL.min(left)).await;
        }
        let now = Utc::now();
        Ok(RecoveryPoint {
            kind: RecoveryKind::Snapshot,
            resource: db.resource().into(),
            identifier: db.identifier().into(),
            restorable_time: None,
            latest_restorable_time: None,
            snapshot_id: Some(id.clone()),
            taken_at: now,
            restore_command: recovery::snapshot_restore_command(
                db,
                &id,
                described.engine.as_deref(),
                now,
                self.region.as_deref(),
            ),
        })
    }

    /// The Blue/Green deployments this database is part of, judged (`recovery::judge_blue_green`):
    /// warnings for the outcome, or why the run must not write.
    pub async fn blue_green(&self) -> Result<Vec<String>, EngineError> {
        let call = "DescribeBlueGreenDeployments";
        let answer = bounded(call, async {
            self.client
                .describe_blue_green_deployments()
                .send()
                .await
                .map_err(failed(call))
        })
        .await
        .map_err(|e| match e {
            EngineError::RecoveryPointFailed { call, reason } => EngineError::RecoveryPointFailed {
                call,
                reason: format!("{reason} (asked before writing, to refuse the green side of a Blue/Green deployment)"),
            },
            other => other,
        })?;
        let deployments: Vec<BlueGreen> = answer
            .blue_green_deployments()
            .iter()
            .map(|d| BlueGreen {
                name: d
                    .blue_green_deployment_name()
                    .or(d.blue_green_deployment_identifier())
                    .unwrap_or_default()
                    .to_string(),
                source: d.source().unwrap_or_default().to_string(),
                target: d.target().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().to_string(),
            })
            .collect();
        recovery::judge_blue_green(&self.database, &deployments)
    }
}

#[async_trait]
impl crate::ports::DatabaseGuard for Rds {
    async fn before_writing(&self) -> Result<Vec<String>, EngineError> {
        self.blue_green().await
    }

    fn recovery(&self) -> Option<std::sync::Arc<dyn RecoveryPoints>> {
        self.takes_points()
            .then(|| std::sync::Arc::new(self.clone()) as std::sync::Arc<dyn RecoveryPoints>)
    }
}

#[async_trait]
impl RecoveryPoints for Rds {
    async fn before_first_write(
        &self,
        need: &RecoveryNeed<'_>,
    ) -> Result<Option<RecoveryPoint>, EngineError> {
        if !self.config.when.applies(need.findings) {
            tracing::info!("no recovery point: the plan has no finding the policy asks one for");
            return Ok(None);
        }
        match self.config.policy {
            Policy::None => Ok(None),
            Policy::Pitr => self.pitr().await.map(Some),
            Policy::Snapshot => self.snapshot(need).await.map(Some),
        }
    }
}
