//! The outcome document: one serde type for every runtime (CLI `--json`, the Lambda
//! response, the SNS message). Human renderings are functions of it, elsewhere.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning or disappears; adding fields does not bump it.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Deploy,
    Plan,
    Status,
    Resolve,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::Deploy,
        Action::Plan,
        Action::Status,
        Action::Resolve,
    ];

    /// The action as written in the document and the manual payload (`deploy` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Plan => "plan",
            Action::Status => "status",
            Action::Resolve => "resolve",
        }
    }

    /// The one reading of an action's name (payload, `migrator invoke --action`).
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// At least one migration was applied (deploy), or the resolve was recorded.
    Applied,
    /// Nothing was pending.
    UpToDate,
    /// Migrations are pending; nothing was written (plan, status, an unconfirmed request).
    Planned,
    /// Something went wrong while working (a migration failed, the connection broke).
    Failed,
    /// The database's state forbids going on (failed migrations, not empty, lock held).
    Blocked,
    /// The request or artifact is unusable; the database was not touched.
    Rejected,
    /// Work stopped early on purpose (deadline); what remains is listed as pending.
    Incomplete,
}

impl Status {
    /// The status as it is written in the document (`up-to-date` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::UpToDate => "up-to-date",
            Status::Planned => "planned",
            Status::Failed => "failed",
            Status::Blocked => "blocked",
            Status::Rejected => "rejected",
            Status::Incomplete => "incomplete",
        }
    }

    /// Whether a process reporting this outcome exits with 0.
    pub fn is_success(self) -> bool {
        matches!(self, Status::Applied | Status::UpToDate | Status::Planned)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub schema_version: u32,
    pub tool: String,
    pub action: Action,
    pub status: Status,
    /// The stage (CODE, PROD) when run as a function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Whether writes were confirmed: `false` turns deploy and resolve into a plan.
    pub confirmed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseInfo>,
    /// Applied by this run, in order.
    pub applied: Vec<AppliedMigration>,
    /// Not applied (yet): what deploy would apply, in order.
    pub pending: Vec<PendingMigration>,
    /// Recorded as failed in the database (or failed in this run).
    pub failed: Vec<FailedMigration>,
    /// Where the database and the artifact disagree in ways Prisma does not report.
    pub drift: Drift,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Resolved>,
    /// For `status`: every migration of the artifact and the database, one entry each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migrations: Vec<MigrationState>,
    pub warnings: Vec<String>,
    /// Preflight: what each pending migration will fail on or hurt (plan and deploy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<crate::preflight::Finding>,
    /// Findings (`rule@migration`) the person who invoked the deploy accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<String>,
    /// Who invoked the run, as far as the runtime can tell, and whether AWS or the caller
    /// said so (`engine::InvokedBy`); absent when not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<InvokedBy>,
    /// Sessions holding locks on tables the plan will lock, or the migration lock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<crate::preflight::Blocker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// A planned deploy: the hash of what confirming it applies (the artifact's SHA-256 and
    /// the pending migrations' names and checksums; `engine::plan_hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// A planned deploy in the function: the manual payload that applies this plan and
    /// nothing else (action, confirm, artifact, versionId, planHash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_payload: Option<serde_json::Value>,
    /// The way back taken before the first write of this run (the stage's recovery-point
    /// policy): a point in time or a snapshot, and the command that restores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_point: Option<RecoveryPoint>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactInfo {
    /// A path, or `s3://bucket/key` (with `?versionId=` when known).
    pub location: String,
    pub sha256: String,
    /// The migrations folder inside the artifact.
    pub migrations_path: String,
    pub migration_count: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_provider: Option<String>,
}

/// Where we connected; never a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseInfo {
    /// `postgresql`, `sqlite` or `mysql`.
    pub engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Database name, or the file path for SQLite.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}

/// How a migration's statements are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub enum Execution {
    /// One transaction holding the script and its `_prisma_migrations` row.
    Transaction,
    /// Statement by statement, each committed on its own, because `reason`.
    StatementByStatement { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedMigration {
    pub name: String,
    pub checksum: String,
    pub execution: Execution,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingMigration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Sorts before a migration the database already has (Prisma applies it silently).
    #[serde(default)]
    pub out_of_order: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedMigration {
    pub name: String,
    pub started_at: DateTime<Utc>,
    /// The `logs` column (Prisma hides it; we show it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// For statement-by-statement runs: the 1-based numbers of the statements that were
    /// committed before the failure, so a person can repair by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_statements: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_statement: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// Recorded in the database (not rolled back) but absent from the artifact.
    pub missing_locally: Vec<String>,
    /// The artifact's `migration.sql` no longer matches the recorded checksum.
    pub edited: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.missing_locally.is_empty() && self.edited.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResolveKind {
    Applied,
    RolledBack,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    pub name: String,
    #[serde(rename = "as")]
    pub kind: ResolveKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Applied,
    Pending,
    Failed,
    /// In the database, not in the artifact.
    MissingLocally,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationState {
    pub name: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Applied, but the file changed since.
    #[serde(default)]
    pub edited: bool,
    /// Pending, but sorts before an applied migration.
    #[serde(default)]
    pub out_of_order: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    /// The Prisma error code (P3009, P3018 …) when Prisma has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// What kind of way back a [`RecoveryPoint`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryKind {
    /// Point-in-time recovery from the automated backups: restore to `restorableTime`.
    Pitr,
    /// A manual DB snapshot (or DB cluster snapshot) taken before the first write.
    Snapshot,
}

impl RecoveryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryKind::Pitr => "pitr",
            RecoveryKind::Snapshot => "snapshot",
        }
    }
}

/// The recovery point of a run: taken (or confirmed) after the lock, before the first write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryPoint {
    pub kind: RecoveryKind,
    /// `db-instance` or `db-cluster`: what the identifier names.
    pub resource: String,
    /// The RDS instance or Aurora cluster identifier.
    pub identifier: String,
    /// `pitr`: the moment to restore to, just before this run's first write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restorable_time: Option<DateTime<Utc>>,
    /// `pitr`: RDS's `LatestRestorableTime` when the point was recorded (the backups work;
    /// `restorableTime` becomes restorable once RDS has uploaded its log, within minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_restorable_time: Option<DateTime<Utc>>,
    /// `snapshot`: the manual snapshot's identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// When the point was taken (the snapshot was `available`, or the backups were checked).
    pub taken_at: DateTime<Utc>,
    /// The AWS CLI command a person runs to restore it into a new instance or cluster,
    /// every argument shell-quoted.
    pub restore_command: String,
}

impl Outcome {
    /// A fresh document for `action`, before anything happened.
    pub fn new(action: Action, started_at: DateTime<Utc>) -> Outcome {
        Outcome {
            schema_version: SCHEMA_VERSION,
            tool: concat!("migrator ", env!("CARGO_PKG_VERSION")).to_string(),
            action,
            status: Status::UpToDate,
            stage: None,
            confirmed: false,
            artifact: None,
            database: None,
            applied: Vec::new(),
            pending: Vec::new(),
            failed: Vec::new(),
            drift: Drift::default(),
            resolved: None,
            migrations: Vec::new(),
            warnings: Vec::new(),
            findings: Vec::new(),
            accepted: Vec::new(),
            invoked_by: None,
            blockers: Vec::new(),
            error: None,
            plan_hash: None,
            confirm_payload: None,
            recovery_point: None,
            started_at,
            duration_ms: 0,
        }
    }

    /// Records a failure: its status wins over whatever was reached before.
    pub fn fail(&mut self, status: Status, error: ErrorInfo) {
        self.status = status;
        self.error = Some(error);
    }

    /// Whether a process reporting this outcome exits with 0.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    pub fn status_text(&self) -> &'static str {
        self.status.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_matches_serde() {
        for status in [
            Status::Applied,
            Status::UpToDate,
            Status::Planned,
            Status::Failed,
            Status::Blocked,
            Status::Rejected,
            Status::Incomplete,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn action_names_match_serde() {
        for action in Action::ALL {
            assert_eq!(serde_json::to_value(action).unwrap(), action.as_str());
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("drop"), None);
    }
}

/// Who the invocation says invoked a run (the outcome's `invokedBy`): a claim, never proof.
///
/// A Lambda function cannot authenticate its caller: nothing in the event it receives proves
/// who sent it. Whoever may call `lambda:InvokeFunction` (or send to the queue, or publish to
/// the topic) can write an S3- or EventBridge-shaped event naming any `principalId` or
/// `requester`. So `principal` is what the invocation claims and `source` says where that
/// claim was read; there is no `verified`. The proof is outside the function: its resource
/// policy (who may invoke it at all) and CloudTrail (the `Invoke` record of `requestId`, S3's
/// data events for the upload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokedBy {
    pub principal: String,
    pub source: InvokerSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Where [`InvokedBy::principal`] was read (each is a claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InvokerSource {
    /// The upload event's uploader (S3's `userIdentity.principalId`, EventBridge's
    /// `detail.requester`), directly or through SQS or SNS: what the event claims.
    S3Event,
    /// The manual payload's `by`: who the sender says they are.
    Payload,
    /// The CLI: the OS user (`USER`, else `LOGNAME`).
    Cli,
}

impl InvokerSource {
    /// How a person should read the name, in a few words.
    pub fn claim(self) -> &'static str {
        match self {
            InvokerSource::S3Event => "as the upload event claims",
            InvokerSource::Payload => "as the payload declares",
            InvokerSource::Cli => "the local OS user",
        }
    }
}

/// The longest principal recorded (longer names are cut at a character boundary).
pub const MAX_PRINCIPAL: usize = 200;

impl InvokedBy {
    /// The uploader S3 (or EventBridge) names in the event; `None` when the event names nobody.
    pub fn s3_event(principal: Option<&str>, request_id: Option<&str>) -> Option<InvokedBy> {
        InvokedBy::named(principal?, InvokerSource::S3Event, request_id)
    }

    /// The manual payload's `by`: declared by the person; the request id lets
    /// CloudTrail's Invoke record confirm it.
    pub fn declared(by: Option<&str>, request_id: Option<&str>) -> Option<InvokedBy> {
        InvokedBy::named(by?, InvokerSource::Payload, request_id)
    }

    /// The OS user running the CLI (`USER`, else `LOGNAME`), when the environment names one.
    pub fn os_user() -> Option<InvokedBy> {
        let user = ["USER", "LOGNAME"]
            .iter()
            .filter_map(|var| std::env::var(var).ok())
            .find(|v| !v.trim().is_empty())?;
        InvokedBy::named(&user, InvokerSource::Cli, None)
    }

    fn named(
        principal: &str,
        source: InvokerSource,
        request_id: Option<&str>,
    ) -> Option<InvokedBy> {
        let principal: String = principal
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        if principal.is_empty() {
            return None;
        }
        Some(InvokedBy {
            principal: crate::text::clip_bytes(&principal, MAX_PRINCIPAL).to_string(),
            source,
            request_id: request_id
                .filter(|r| !r.is_empty())
                .map(|r| crate::text::clip_bytes(r, MAX_PRINCIPAL).to_string()),
        })
    }
}
