//! The stage's recovery-point policy and the rules around it that need no AWS call: what
//! the variables say, how a snapshot is named and tagged, the restore command a person runs,
//! what a Blue/Green deployment means for a run, and which endpoints are connection poolers.
//! The calls themselves are in `aws::rds`.

use migrator_engine::chrono::{DateTime, SecondsFormat, Utc};
use migrator_engine::engine::RecoveryWhen;
use migrator_engine::error::EngineError;
use migrator_engine::text::shell_word;

/// `RECOVERY_POINT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    None,
    /// Automated backups must be on; the run records `LatestRestorableTime` and the moment
    /// it starts writing.
    Pitr,
    /// A manual snapshot, `available` before the first write.
    Snapshot,
}

impl Policy {
    pub fn parse(text: &str) -> Option<Policy> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Policy::None),
            "pitr" => Some(Policy::Pitr),
            "snapshot" => Some(Policy::Snapshot),
            _ => None,
        }
    }
}

/// The stage's database as RDS knows it (`DB_INSTANCE_ID` or `DB_CLUSTER_ID`): never read
/// from the hostname, which may be a CNAME, a proxy or a custom endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdsDatabase {
    Instance(String),
    Cluster(String),
}

impl RdsDatabase {
    pub fn identifier(&self) -> &str {
        match self {
            RdsDatabase::Instance(id) | RdsDatabase::Cluster(id) => id,
        }
    }

    /// The outcome's `resource`.
    pub fn resource(&self) -> &'static str {
        match self {
            RdsDatabase::Instance(_) => "db-instance",
            RdsDatabase::Cluster(_) => "db-cluster",
        }
    }

    /// Whether `arn` names this database (`arn:…:rds:…:db:ID` or `…:cluster:ID`).
    pub fn is_arn(&self, arn: &str) -> bool {
        let (kind, id) = match self {
            RdsDatabase::Instance(id) => ("db", id),
            RdsDatabase::Cluster(id) => ("cluster", id),
        };
        arn.strip_suffix(id.as_str())
            .and_then(|rest| rest.strip_suffix(':'))
            .is_some_and(|rest| rest.ends_with(&format!(":{kind}")))
            || arn == id
    }
}

/// The stage's recovery configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConfig {
    pub policy: Policy,
    pub when: RecoveryWhen,
    pub database: Option<RdsDatabase>,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            policy: Policy::None,
            when: RecoveryWhen::Always,
            database: None,
        }
    }
}

/// RDS identifiers: letters, digits and hyphens, lower case as RDS stores them.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    out.trim_end_matches('-')
        .chars()
        .take(24)
        .collect::<String>()
}

/// The prefix of every snapshot the stage takes (`migrator-STAGE-`): the construct grants
/// `CreateDBSnapshot` on snapshots with this prefix only.
pub fn snapshot_prefix(stage: &str) -> String {
    format!("migrator-{}-", slug(stage).trim_end_matches('-'))
}

/// `migrator-STAGE-YYYYMMDDHHMMSS-PLANHASH8`: at most 63 characters (a cluster snapshot's
/// limit), starting with a letter, no double hyphen.
pub fn snapshot_id(stage: &str, plan_hash: &str, at: DateTime<Utc>) -> String {
    let hash: String = plan_hash
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    format!(
        "{}{}-{hash}",
        snapshot_prefix(stage),
        at.format("%Y%m%d%H%M%S")
    )
}

/// The plan's part of a snapshot identifier, to find a snapshot an earlier run of the same
/// plan left `creating` (see `aws::rds`).
pub fn same_plan(id: &str, stage: &str, plan_hash: &str) -> bool {
    let hash: String = plan_hash
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    id.starts_with(&snapshot_prefix(stage)) && id.ends_with(&format!("-{hash}"))
}

/// A tag value RDS accepts (letters, digits, spaces, `_ . : / = + - @`, at most 256).
pub fn tag_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || " _.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

/// The artifact's location without its version, and the version (`s3://b/k?versionId=v`).
pub fn artifact_parts(location: &str) -> (&str, Option<&str>) {
    match location.split_once("?versionId=") {
        Some((object, version)) => (object, Some(version)),
        None => (location, None),
    }
}

/// The new instance or cluster a restore creates: `ID-before-YYYYMMDDHHMM` (RDS: at most
/// 63 characters).
fn restored_name(id: &str, at: DateTime<Utc>) -> String {
    let suffix = format!("-before-{}", at.format("%Y%m%d%H%M"));
    let keep = 63usize.saturating_sub(suffix.len());
    let base: String = id.chars().take(keep).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

fn command(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `aws rds restore-…-to-point-in-time` to `at`, into a new instance or cluster.
pub fn pitr_restore_command(db: &RdsDatabase, at: DateTime<Utc>, region: Option<&str>) -> String {
    let time = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let new = restored_name(db.identifier(), at);
    let mut words = match db {
        RdsDatabase::Instance(id) => vec![
            "aws",
            "rds",
            "restore-db-instance-to-point-in-time",
            "--source-db-instance-identifier",
            id,
            "--target-db-instance-identifier",
            &new,
            "--restore-time",
            &time,
        ],
        RdsDatabase::Cluster(id) => vec![
            "aws",
            "rds",
            "restore-db-cluster-to-point-in-time",
            "--source-db-cluster-identifier",
            id,
            "--db-cluster-identifier",
            &new,
            "--restore-to-time",
            &time,
        ],
    };
    if let Some(region) = region {
        words.extend(["--region", region]);
    }
    command(&words)
}

/// `aws rds restore-…-from-…snapshot` of `snapshot`, into a new instance or cluster. A
/// cluster restore must name the engine (`engine`, from DescribeDBClusters).
pub fn snapshot_restore_command(
    db: &RdsDatabase,
    snapshot: &str,
    engine: Option<&str>,
    at: DateTime<Utc>,
    region: Option<&str>,
) -> String {
    let new = restored_name(db.identifier(), at);
    let mut words = match db {
        RdsDatabase::Instance(_) => vec![
            "aws",
            "rds",
            "restore-db-instance-from-db-snapshot",
            "--db-instance-identifier",
            &new,
            "--db-snapshot-identifier",
            snapshot,
        ],
        RdsDatabase::Cluster(_) => vec![
            "aws",
            "rds",
            "restore-db-cluster-from-snapshot",
            "--db-cluster-identifier",
            &new,
            "--snapshot-identifier",
            snapshot,
            "--engine",
            engine.unwrap_or("ENGINE"),
        ],
    };
    if let Some(region) = region {
        words.extend(["--region", region]);
    }
    command(&words)
}

/// One Blue/Green deployment as `DescribeBlueGreenDeployments` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlueGreen {
    pub name: String,
    pub source: String,
    pub target: String,
    pub status: String,
}

/// What the Blue/Green deployments mean for a run that writes to `db`: refused (the green
/// side: it replicates from blue, and a switchover replaces it), blocked (a switchover is in
/// progress), a warning (the blue side of a live deployment: the change must replicate to
/// green), or nothing. The one rule.
pub fn judge_blue_green(
    db: &RdsDatabase,
    deployments: &[BlueGreen],
) -> Result<Vec<String>, EngineError> {
    let mut warnings = Vec::new();
    for d in deployments {
        let ours_as_source = db.is_arn(&d.source);
        let ours_as_target = db.is_arn(&d.target);
        if !ours_as_source && !ours_as_target {
            continue;
        }
        let side = if ours_as_target { "green" } else { "blue" };
        match d.status.as_str() {
            "SWITCHOVER_IN_PROGRESS" => {
                return Err(EngineError::DatabaseBusy {
                    found: format!(
                        "{} `{}` is the {side} side of Blue/Green deployment `{}`, whose switchover is in progress",
                        db.resource(),
                        db.identifier(),
                        d.name
                    ),
                });
            }
            "SWITCHOVER_COMPLETED" | "DELETING" => {}
            status if ours_as_target => {
                return Err(EngineError::WrongDatabase {
                    found: format!(
                        "{} `{}` is the green (target) side of Blue/Green deployment `{}` ({status}): it replicates from the blue side, which is where migrations go",
                        db.resource(),
                        db.identifier(),
                        d.name
                    ),
                });
            }
            status => warnings.push(format!(
                "{} `{}` is the blue side of Blue/Green deployment `{}` ({status}): this change replicates to the green side, and a change logical replication cannot carry (a table without a primary key, most DDL on PostgreSQL) breaks the deployment.",
                db.resource(),
                db.identifier(),
                d.name
            )),
        }
    }
    Ok(warnings)
}

/// An RDS Proxy endpoint (`NAME.proxy-ID.REGION.rds.amazonaws.com`, custom endpoints
/// `NAME.endpoint.proxy-ID.…`): the proxy hands a client's statements to pooled sessions, so
/// the migration lock (a session's advisory lock or GET_LOCK) holds only while the proxy
/// happens to pin the session. Known by its DNS name; a self-run pooler (PgBouncer,
/// ProxySQL) answers like the database and cannot be told apart from it.
pub fn refuse_proxy(host: &str) -> Result<(), EngineError> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let rds = host.ends_with(".rds.amazonaws.com") || host.ends_with(".rds.amazonaws.com.cn");
    if rds && host.split('.').any(|label| label.starts_with("proxy-")) {
        return Err(EngineError::WrongDatabase {
            found: format!(
                "`{host}` is an RDS Proxy endpoint: the proxy multiplexes sessions, so the migration lock cannot be relied on to hold; connect to the instance or cluster endpoint"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use migrator_engine::chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap()
    }

    #[test]
    fn snapshot_ids_are_valid_rds_identifiers_with_the_stage_prefix() {
        let id = snapshot_id("PROD_eu", "AbCdEf0123456789", at());
        assert_eq!(id, "migrator-prod-eu-20250304050607-abcdef01");
        assert!(id.starts_with(&snapshot_prefix("PROD_eu")));
        assert!(same_plan(&id, "PROD_eu", "AbCdEf0123456789"));
        assert!(!same_plan(&id, "PROD_eu", "ffff"));
        let long = snapshot_id(&"x".repeat(100), "h", at());
        assert!(long.len() <= 63 && !long.contains("--"), "{long}");
        assert!(snapshot_prefix("-a--b-").starts_with("migrator-a-b-"));
    }

    #[test]
    fn restore_commands_are_exact_and_quoted() {
        let db = RdsDatabase::Instance("orders-db".into());
        assert_eq!(
            pitr_restore_command(&db, at(), Some("eu-west-1")),
            "aws rds restore-db-instance-to-point-in-time --source-db-instance-identifier orders-db --target-db-instance-identifier orders-db-before-202503040506 --restore-time 2025-03-04T05:06:07Z --region eu-west-1"
        );
        let cluster = RdsDatabase::Cluster("orders".into());
        assert_eq!(
            snapshot_restore_command(
                &cluster,
                "migrator-prod-x",
                Some("aurora-postgresql"),
                at(),
                None
            ),
            "aws rds restore-db-cluster-from-snapshot --db-cluster-identifier orders-before-202503040506 --snapshot-identifier migrator-prod-x --engine aurora-postgresql"
        );
        assert!(
            pitr_restore_command(&cluster, at(), None)
                .contains("--restore-to-time 2025-03-04T05:06:07Z")
        );
        let odd = RdsDatabase::Instance("it's".into());
        assert!(
            snapshot_restore_command(&odd, "s", None, at(), None).contains("'it'\\''s-before-")
        );
    }

    #[test]
    fn blue_green_green_is_refused_switchover_blocks_blue_warns() {
        let db = RdsDatabase::Instance("db1".into());
        let arn = |id: &str| format!("arn:aws:rds:eu-west-1:123456789012:db:{id}");
        let deployment = |source: &str, target: &str, status: &str| BlueGreen {
            name: "upgrade".into(),
            source: arn(source),
            target: arn(target),
            status: status.into(),
        };
        assert_eq!(
            judge_blue_green(&db, &[deployment("other", "other-green", "AVAILABLE")]).unwrap(),
            Vec::<String>::new()
        );
        let green = judge_blue_green(&db, &[deployment("db0", "db1", "AVAILABLE")]).unwrap_err();
        assert!(
            matches!(green, EngineError::WrongDatabase { .. }),
            "{green}"
        );
        assert!(green.to_string().contains("green (target) side"));
        let switching = judge_blue_green(
            &db,
            &[deployment("db1", "db1-green", "SWITCHOVER_IN_PROGRESS")],
        )
        .unwrap_err();
        assert!(
            matches!(switching, EngineError::DatabaseBusy { .. }),
            "{switching}"
        );
        let blue = judge_blue_green(&db, &[deployment("db1", "db1-green", "AVAILABLE")]).unwrap();
        assert_eq!(blue.len(), 1);
        assert!(
            judge_blue_green(&db, &[deployment("db0", "db1", "SWITCHOVER_COMPLETED")])
                .unwrap()
                .is_empty()
        );
        // A longer identifier ending the same way is another database.
        assert!(!db.is_arn(&arn("xdb1")));
        assert!(!RdsDatabase::Cluster("db1".into()).is_arn(&arn("db1")));
    }

    #[test]
    fn rds_proxy_endpoints_are_refused() {
        assert!(refuse_proxy("app.proxy-abcdefgh1234.eu-west-1.rds.amazonaws.com").is_err());
        assert!(
            refuse_proxy("ro.endpoint.proxy-abcdefgh1234.eu-west-1.rds.amazonaws.com.").is_err()
        );
        assert!(refuse_proxy("db1.abcdefgh1234.eu-west-1.rds.amazonaws.com").is_ok());
        assert!(refuse_proxy("proxy-1.example.com").is_ok());
        assert!(refuse_proxy("127.0.0.1").is_ok());
    }

    #[test]
    fn tags_and_artifact_versions() {
        assert_eq!(
            tag_value("s3://b/my app/prisma.zip"),
            "s3://b/my app/prisma.zip"
        );
        assert_eq!(tag_value("a?b#c"), "a_b_c");
        assert_eq!(
            artifact_parts("s3://b/k.zip?versionId=v1"),
            ("s3://b/k.zip", Some("v1"))
        );
        assert_eq!(Policy::parse("PITR"), Some(Policy::Pitr));
        assert_eq!(Policy::parse("daily"), None);
    }
}
