//! The stage's configuration, read from the environment once and validated at start-up.
//! Every error names the variable.

use migrator_engine::preflight::BlockOn;
use std::path::PathBuf;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::recovery::{Policy, RdsDatabase, RecoveryConfig};
use migrator_engine::engine::RecoveryWhen;

/// Which database engine the stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbEngine {
    Postgresql,
    Mysql,
}

/// How the function gets its database credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbAuth {
    /// An RDS IAM auth token minted for every connection (the default).
    Iam,
    /// An RDS-style Secrets Manager JSON secret (`username`, `password`, optional `host`, `port`, `dbname`).
    Secret { arn: String },
    /// A full database URL in `DATABASE_URL` (local use, tests).
    Url { url: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbConfig {
    pub engine: DbEngine,
    pub host: String,
    /// `DB_PORT`; `None`: the secret's port, else the engine's default.
    pub port: Option<u16>,
    pub name: String,
    pub user: String,
    pub schema: Option<String>,
    pub auth: DbAuth,
    /// A CA bundle file; `None`: the embedded RDS bundle.
    pub ca_bundle: Option<PathBuf>,
}

impl DbEngine {
    /// Prisma's name of the provider (`DatabaseTarget::from_parts`).
    pub fn provider(self) -> &'static str {
        match self {
            DbEngine::Postgresql => "postgresql",
            DbEngine::Mysql => "mysql",
        }
    }
}

impl DbConfig {
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(match self.engine {
            DbEngine::Postgresql => 5432,
            DbEngine::Mysql => 3306,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageConfig {
    pub stage: String,
    pub db: DbConfig,
    pub artifact_bucket: String,
    /// An exact key or a pattern where `*` stands for any characters but `/`.
    pub artifact_key: String,
    pub topic_arn: String,
    /// Uploads apply (true) or only plan and notify (false; a person confirms).
    pub auto_apply: bool,
    /// `BLOCK_ON`: the preflight severity that stops a deploy (default `error`).
    pub block_on: BlockOn,
    /// `LOCK_TIMEOUT`, the cap on the migration-lock wait (see [`StageConfig::lock_wait`]).
    pub lock_timeout: Option<Duration>,
    pub statement_lock_timeout: Option<Duration>,
    pub statement_lock_retries: u32,
    pub deadline_margin: Duration,
    /// For ECS and the CLI, which have no Lambda deadline: an optional budget for one run.
    pub max_duration: Option<Duration>,
    pub max_artifact_bytes: u64,
    pub region: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda): the function hints tell people to invoke.
    pub function_name: Option<String>,
    /// `CONFIRM_QUALIFIER` (the construct sets `apply`): a confirmed deploy or resolve is
    /// honoured only when the function was invoked through this qualifier (the "confirm door",
    /// see `handler::Door`). Unset: no door (a function deployed by hand, as before).
    pub confirm_qualifier: Option<String>,
    /// `FLEET_QUALIFIER` (the construct's fleet function sets `fleet`): set, this function is
    /// a fleet's child and takes only the fleet state machine's payloads, through this
    /// qualifier alone (see `fleet`); unset, it refuses every fleet payload.
    pub fleet_qualifier: Option<String>,
    /// `FLEET_TARGETS`: `s3://bucket/key` of the fleet's targets (JSON Lines).
    pub fleet_targets: Option<String>,
    /// `RECOVERY_POINT`, `RECOVERY_POINT_WHEN`, `DB_INSTANCE_ID` / `DB_CLUSTER_ID`: the way
    /// back taken before a deploy's first write (`crate::recovery`).
    pub recovery: RecoveryConfig,
}

/// The function's migration-lock wait when `LOCK_TIMEOUT` is not set. Two invocations
/// serialise on the lock, so the second waits far longer than Prisma's 10 s (the CLI's
/// `--lock-timeout` default, `dialect::DEFAULT_LOCK_WAIT`): 15 minutes, Lambda's longest run.
/// The engine never waits past the deadline's margin, so on Lambda the function's timeout is
/// what ends the wait (the CDK construct sets `LOCK_TIMEOUT` to the timeout − 60 s, at least
/// half of it); this bounds ECS runs without `MAX_DURATION`.
pub const FUNCTION_LOCK_WAIT: Duration = Duration::from_secs(15 * 60);

impl StageConfig {
    /// How long a run waits for the migration lock: `LOCK_TIMEOUT`, else
    /// [`FUNCTION_LOCK_WAIT`]; never past the deadline's margin either way (the engine).
    pub fn lock_wait(&self) -> Duration {
        self.lock_timeout.unwrap_or(FUNCTION_LOCK_WAIT)
    }
}

/// Everything wrong with the environment, one line per variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl StageConfig {
    pub fn from_env() -> Result<StageConfig, ConfigError> {
        StageConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<StageConfig, ConfigError> {
        let mut problems = Vec::new();
        // Set but empty is a mistake, never "the default": an empty AUTO_APPLY must not apply.
        let empty: Vec<&str> = VARIABLES
            .iter()
            .copied()
            .filter(|name| lookup(name).is_some_and(|v| v.trim().is_empty()))
            .collect();
        for name in &empty {
            problems.push(format!(
                "{name}: set but empty (unset it for the default, or give a value)"
            ));
        }
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str, problems: &mut Vec<String>| {
            get(name).unwrap_or_else(|| {
                if !empty.contains(&name) {
                    problems.push(format!("{name}: required"));
                }
                String::new()
            })
        };

        let stage = required("STAGE", &mut problems);
        if !stage.is_empty()
            && !stage
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problems.push(format!("STAGE: `{stage}` must be letters, digits, - or _"));
        }
        let db = read_db(&get, &empty, &mut problems);

        let artifact_bucket = required("ARTIFACT_BUCKET", &mut problems);
        let artifact_key = required("ARTIFACT_KEY", &mut problems);
        if artifact_key.starts_with('/') {
            problems.push("ARTIFACT_KEY: must not start with /".into());
        }
        let topic_arn = required("TOPIC_ARN", &mut problems);
        if !topic_arn.is_empty() && !is_sns_topic_arn(&topic_arn) {
            problems.push(format!(
                "TOPIC_ARN: `{topic_arn}` is not an SNS topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME)"
            ));
        }
        let auto_apply = parse(&get, "AUTO_APPLY", &mut problems, parse_bool).unwrap_or(true);
        let block_on =
            parse(&get, "BLOCK_ON", &mut problems, BlockOn::parse).unwrap_or(BlockOn::Error);
        let lock_timeout = parse(&get, "LOCK_TIMEOUT", &mut problems, parse_limit);
        let statement_lock_timeout =
            parse(&get, "STATEMENT_LOCK_TIMEOUT", &mut problems, parse_limit);
        let statement_lock_retries = parse(&get, "STATEMENT_LOCK_RETRIES", &mut problems, |v| {
            v.parse::<u32>().ok().filter(|n| *n <= 20)
        })
        .unwrap_or(3);
        let deadline_margin = parse(&get, "DEADLINE_MARGIN", &mut problems, parse_limit)
            .unwrap_or(Duration::from_secs(30));
        let max_duration = parse(&get, "MAX_DURATION", &mut problems, |v| {
            parse_limit(v).filter(|d| !d.is_zero())
        });
        if let Some(max) = max_duration
            && deadline_margin >= max
        {
            problems.push(format!(
                "DEADLINE_MARGIN: {} s leaves nothing of MAX_DURATION ({} s): no migration could ever start; make it smaller than MAX_DURATION",
                deadline_margin.as_secs_f64(),
                max.as_secs_f64()
            ));
        }
        let max_artifact_bytes = parse(&get, "MAX_ARTIFACT_BYTES", &mut problems, |v| {
            v.parse::<u64>().ok().filter(|n| *n > 0)
        })
        .unwrap_or(64 << 20);

        let confirm_qualifier = qualifier(&get, "CONFIRM_QUALIFIER", &mut problems);
        let fleet_qualifier = qualifier(&get, "FLEET_QUALIFIER", &mut problems);
        if fleet_qualifier.is_some() && fleet_qualifier == confirm_qualifier {
            problems.push(
                "FLEET_QUALIFIER: must differ from CONFIRM_QUALIFIER (the fleet's door is its own)"
                    .into(),
            );
        }
        let fleet_targets = get("FLEET_TARGETS");
        if let Some(url) = &fleet_targets
            && let Err(e) = crate::payload::parse_s3_url(url)
        {
            problems.push(format!(
                "FLEET_TARGETS: {}",
                e.replace("`artifact`", "the targets object")
            ));
        }
        let recovery = recovery_config(&get, &mut problems);
        let config = StageConfig {
            stage,
            db,
            artifact_bucket,
            artifact_key,
            topic_arn,
            auto_apply,
            block_on,
            lock_timeout,
            statement_lock_timeout,
            statement_lock_retries,
            deadline_margin,
            max_duration,
            max_artifact_bytes,
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            function_name: get("AWS_LAMBDA_FUNCTION_NAME"),
            confirm_qualifier,
            fleet_qualifier,
            fleet_targets,
            recovery,
        };
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }
}

/// A Lambda alias name (or a version number): what the 8th part of an ARN can be.
fn qualifier(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    let q = get(name)?;
    if q.len() > 128
        || q == "$LATEST"
        || !q
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        problems.push(format!(
            "{name}: `{}` is not a Lambda alias name (letters, digits, - or _, at most 128)",
            q.escape_debug()
        ));
    }
    Some(q)
}

/// `name`, or a "required" problem (unless it was set but empty, already said).
fn required(
    get: &impl Fn(&str) -> Option<String>,
    empty: &[&str],
    name: &'static str,
    problems: &mut Vec<String>,
) -> String {
    get(name).unwrap_or_else(|| {
        if !empty.contains(&name) {
            problems.push(format!("{name}: required"));
        }
        String::new()
    })
}

/// The database variables (`DB_*`, `DATABASE_URL`): the one set of rules for a stage's
/// database and for every fleet target (`fleet::targets` reads a target line through it).
pub(crate) fn read_db(
    get: &impl Fn(&str) -> Option<String>,
    empty: &[&str],
    problems: &mut Vec<String>,
) -> DbConfig {
    let engine_set = get("DB_ENGINE");
    let engine = match engine_set.as_deref() {
        None | Some("postgresql") | Some("postgres") => DbEngine::Postgresql,
        Some("mysql") => DbEngine::Mysql,
        Some(other) => {
            problems.push(format!("DB_ENGINE: `{other}` is not postgresql or mysql"));
            DbEngine::Postgresql
        }
    };
    let auth = match get("DB_AUTH").as_deref() {
        None | Some("iam") => Some(DbAuth::Iam),
        Some("secret") => Some(DbAuth::Secret {
            arn: required(get, empty, "DB_SECRET_ARN", problems),
        }),
        Some("url") => Some(DbAuth::Url {
            url: required(get, empty, "DATABASE_URL", problems),
        }),
        Some(other) => {
            problems.push(format!("DB_AUTH: `{other}` is not iam, secret or url"));
            None
        }
    };
    // With a URL, the URL says where; with a secret, the secret may; with IAM, the
    // variables must. An unknown DB_AUTH asks for nothing more.
    let (host, name, user) = match &auth {
        Some(DbAuth::Url { .. } | DbAuth::Secret { .. }) | None => (
            get("DB_HOST").unwrap_or_default(),
            get("DB_NAME").unwrap_or_default(),
            get("DB_USER").unwrap_or_default(),
        ),
        Some(DbAuth::Iam) => (
            required(get, empty, "DB_HOST", problems),
            required(get, empty, "DB_NAME", problems),
            required(get, empty, "DB_USER", problems),
        ),
    };
    let port = parse(get, "DB_PORT", problems, |v| {
        v.parse::<u16>().ok().filter(|p| *p > 0)
    });
    let schema = get("DB_SCHEMA");
    if let Some(DbAuth::Url { url }) = &auth {
        // The URL is the whole truth: what the variables say beside it would be ignored.
        for variable in ["DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_SCHEMA"] {
            if get(variable).is_some() {
                let instead = if variable == "DB_SCHEMA" {
                    " (put ?schema= in DATABASE_URL)"
                } else {
                    ""
                };
                problems.push(format!(
                        "{variable}: not used with DB_AUTH=url, where DATABASE_URL says everything{instead}; unset it"
                    ));
            }
        }
        let scheme_engine = url.split_once(':').map(|(scheme, _)| scheme);
        let url_engine = match scheme_engine {
            Some("postgresql" | "postgres") => Some(DbEngine::Postgresql),
            Some("mysql" | "mariadb") => Some(DbEngine::Mysql),
            _ => None,
        };
        if engine_set.is_some() && url_engine.is_some_and(|e| e != engine) {
            problems.push(format!(
                    "DB_ENGINE: `{}` contradicts DATABASE_URL, which is a {} URL; unset DB_ENGINE or fix one of them",
                    engine_set.as_deref().unwrap_or_default(),
                    scheme_engine.unwrap_or_default()
                ));
        }
    }

    // What another way of logging in reads would be silently ignored by this one.
    for (variable, used_by) in [("DATABASE_URL", "url"), ("DB_SECRET_ARN", "secret")] {
        let unused = match &auth {
            Some(DbAuth::Iam) => true,
            Some(DbAuth::Secret { .. }) => used_by != "secret",
            Some(DbAuth::Url { .. }) => used_by != "url",
            None => false,
        };
        if unused && get(variable).is_some() {
            let current = get("DB_AUTH").unwrap_or_else(|| "iam (the default)".into());
            problems.push(format!(
                    "{variable}: not used with DB_AUTH={current}; unset it, or set DB_AUTH={used_by} to log in with it"
                ));
        }
    }
    if engine == DbEngine::Mysql && schema.is_some() && !matches!(auth, Some(DbAuth::Url { .. })) {
        problems.push(
                "DB_SCHEMA: MySQL has no schema apart from the database: unset DB_SCHEMA (the database is DB_NAME)".into(),
            );
    }
    if let Some(DbAuth::Url { url }) = &auth
        && !url.is_empty()
        && let Err(e) = migrator_engine::dialect::parse_database_url(url)
    {
        // The engine's words never include the URL's password.
        problems.push(format!("DATABASE_URL: {e}"));
    }

    DbConfig {
        engine,
        host,
        port,
        name,
        user,
        schema,
        auth: auth.unwrap_or(DbAuth::Iam),
        ca_bundle: get("DB_CA_BUNDLE").map(PathBuf::from),
    }
}

/// The variables the stage reads (an empty one is refused).
const VARIABLES: [&str; 30] = [
    "STAGE",
    "DB_ENGINE",
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "DB_USER",
    "DB_SCHEMA",
    "DB_AUTH",
    "DB_SECRET_ARN",
    "DATABASE_URL",
    "DB_CA_BUNDLE",
    "ARTIFACT_BUCKET",
    "ARTIFACT_KEY",
    "TOPIC_ARN",
    "AUTO_APPLY",
    "LOCK_TIMEOUT",
    "STATEMENT_LOCK_TIMEOUT",
    "STATEMENT_LOCK_RETRIES",
    "DEADLINE_MARGIN",
    "MAX_DURATION",
    "MAX_ARTIFACT_BYTES",
    "AWS_REGION",
    "AWS_LAMBDA_FUNCTION_NAME",
    "CONFIRM_QUALIFIER",
    "FLEET_QUALIFIER",
    "FLEET_TARGETS",
    "RECOVERY_POINT",
    "RECOVERY_POINT_WHEN",
    "DB_INSTANCE_ID",
    "DB_CLUSTER_ID",
];

/// `RECOVERY_POINT` (none, pitr, snapshot; default none: the construct sets `pitr` on
/// production stages), `RECOVERY_POINT_WHEN` (always, warning, error; default always) and
/// the database as RDS names it (`DB_INSTANCE_ID` or `DB_CLUSTER_ID`, at most one; needed by
/// any policy but none).
fn recovery_config(
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> RecoveryConfig {
    let policy = parse(get, "RECOVERY_POINT", problems, Policy::parse).unwrap_or(Policy::None);
    let when = parse(get, "RECOVERY_POINT_WHEN", problems, RecoveryWhen::parse)
        .unwrap_or(RecoveryWhen::Always);
    let rds_identifier = |v: &str| {
        let ok = v.len() <= 63
            && v.starts_with(|c: char| c.is_ascii_alphabetic())
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !v.ends_with('-')
            && !v.contains("--");
        ok.then(|| v.to_string())
    };
    let instance = parse(get, "DB_INSTANCE_ID", problems, rds_identifier);
    let cluster = parse(get, "DB_CLUSTER_ID", problems, rds_identifier);
    let database = match (instance, cluster) {
        (Some(_), Some(_)) => {
            problems.push("DB_CLUSTER_ID: set with DB_INSTANCE_ID; give the one the database is (an Aurora cluster, or an instance)".into());
            None
        }
        (Some(id), None) => Some(RdsDatabase::Instance(id)),
        (None, Some(id)) => Some(RdsDatabase::Cluster(id)),
        (None, None) => None,
    };
    if policy != Policy::None && database.is_none() {
        problems.push(format!(
            "RECOVERY_POINT: `{}` needs the database's RDS identifier: set DB_INSTANCE_ID (an instance) or DB_CLUSTER_ID (an Aurora cluster)",
            get("RECOVERY_POINT").unwrap_or_default()
        ));
    }
    RecoveryConfig {
        policy,
        when,
        database,
    }
}

/// The longest duration any of them may be: PostgreSQL's `lock_timeout` and
/// `statement_timeout` take at most 2,147,483,647 ms (a longer one fails every run with 22023).
pub const MAX_LIMIT: Duration = Duration::from_millis(2_147_483_647);

/// A duration (`crate::duration`'s form) within [`MAX_LIMIT`].
fn parse_limit(text: &str) -> Option<Duration> {
    parse_duration(text).ok().filter(|d| *d <= MAX_LIMIT)
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME`.
fn is_sns_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    matches!(parts.as_slice(), ["arn", partition, "sns", region, account, name]
        if !partition.is_empty()
            && !region.is_empty()
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'))
}

/// Parses an optional variable; a present but malformed value is a problem naming it.
fn parse<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    problems: &mut Vec<String>,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    let value = get(name)?;
    let parsed = parse(&value);
    if parsed.is_none() {
        let expected = match name {
            "AUTO_APPLY" => "true or false",
            "LOCK_TIMEOUT" | "STATEMENT_LOCK_TIMEOUT" | "DEADLINE_MARGIN" => {
                "a duration like 600, 30s, 500ms or 5m, at most 2147483647ms (PostgreSQL's limit)"
            }
            "MAX_DURATION" => {
                "a duration above zero like 600, 30s or 5m, at most 2147483647ms (PostgreSQL's limit)"
            }
            "DB_PORT" => "a port, 1 to 65535",
            "STATEMENT_LOCK_RETRIES" => "a number from 0 to 20",
            "RECOVERY_POINT" => "none, pitr or snapshot",
            "RECOVERY_POINT_WHEN" => "always, warning or error",
            "DB_INSTANCE_ID" | "DB_CLUSTER_ID" => {
                "an RDS identifier: a letter, then letters, digits or single hyphens, at most 63"
            }
            _ => "a positive number",
        };
        problems.push(format!(
            "{name}: `{value}` is not valid: expected {expected}"
        ));
    }
    parsed
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Whether `key` matches the configured key or pattern: `*` stands for one or more
/// characters other than `/`, so it never matches an empty segment (`deploy/CODE//prisma.zip`
/// does not match `deploy/CODE/*/prisma.zip`). Linear in the key for a given pattern (a set
/// of pattern positions is advanced per key byte; no backtracking).
pub fn key_matches(pattern: &str, key: &str) -> bool {
    let p = pattern.as_bytes();
    // states[i]: the first i pattern bytes match the key read so far. A star at i is in
    // state i+1 once it has consumed at least one byte, and may consume more.
    let mut states = vec![false; p.len() + 1];
    states[0] = true;
    let mut next = vec![false; p.len() + 1];
    for &byte in key.as_bytes() {
        next.iter_mut().for_each(|s| *s = false);
        for i in 0..p.len() {
            match p[i] {
                // Start the star (from i) or continue it (from i + 1).
                b'*' if byte != b'/' && (states[i] || states[i + 1]) => next[i + 1] = true,
                b'*' => {}
                c if states[i] && c == byte => next[i + 1] = true,
                _ => {}
            }
        }
        std::mem::swap(&mut states, &mut next);
        if !states.iter().any(|s| *s) {
            return false;
        }
    }
    states[p.len()]
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;

    pub(crate) fn config(vars: &[(&str, &str)]) -> Result<StageConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StageConfig::from_lookup(|name| map.get(name).cloned())
    }

    /// A valid IAM stage (the handler's tests start from it too).
    pub(crate) const BASE: [(&str, &str); 7] = [
        ("STAGE", "PROD"),
        ("DB_HOST", "db.example"),
        ("DB_NAME", "app"),
        ("DB_USER", "migrator"),
        ("ARTIFACT_BUCKET", "artifacts"),
        ("ARTIFACT_KEY", "deploy/PROD/*/prisma.zip"),
        ("TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:migrations"),
    ];

    #[test]
    fn defaults() {
        let c = config(&BASE).unwrap();
        assert_eq!(c.db.engine, DbEngine::Postgresql);
        assert_eq!(c.db.port_or_default(), 5432);
        assert_eq!(c.db.auth, DbAuth::Iam);
        assert!(c.auto_apply);
        assert_eq!(c.deadline_margin, Duration::from_secs(30));
        assert_eq!(c.statement_lock_retries, 3);
        assert_eq!(c.lock_timeout, None);
        assert_eq!(c.lock_wait(), FUNCTION_LOCK_WAIT);
    }

    #[test]
    fn every_problem_names_its_variable() {
        let err = config(&[
            ("DB_ENGINE", "oracle"),
            ("DB_PORT", "http"),
            ("AUTO_APPLY", "maybe"),
            ("LOCK_TIMEOUT", "soon"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for var in [
            "STAGE",
            "DB_ENGINE",
            "DB_HOST",
            "DB_NAME",
            "DB_USER",
            "DB_PORT",
            "ARTIFACT_BUCKET",
            "ARTIFACT_KEY",
            "TOPIC_ARN",
            "AUTO_APPLY",
            "LOCK_TIMEOUT",
        ] {
            assert!(
                text.contains(&format!("{var}:")),
                "{var} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn auth_modes_need_their_variables() {
        let mut vars = BASE.to_vec();
        vars.push(("DB_AUTH", "secret"));
        assert!(
            config(&vars)
                .unwrap_err()
                .to_string()
                .contains("DB_SECRET_ARN: required")
        );
        vars.push((
            "DB_SECRET_ARN",
            "arn:aws:secretsmanager:eu-west-1:1:secret:db",
        ));
        assert!(matches!(
            config(&vars).unwrap().db.auth,
            DbAuth::Secret { .. }
        ));
        let url_only = [
            ("STAGE", "CODE"),
            ("DB_AUTH", "url"),
            ("DATABASE_URL", "postgresql://localhost/x"),
            ("ARTIFACT_BUCKET", "b"),
            ("ARTIFACT_KEY", "k"),
            ("TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:t"),
        ];
        assert!(config(&url_only).is_ok());
    }

    /// BASE with `extra` set (an existing variable replaced).
    fn base_with(extra: &[(&'static str, &'static str)]) -> Result<StageConfig, ConfigError> {
        let mut vars: Vec<(&str, &str)> = BASE
            .iter()
            .copied()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .collect();
        vars.extend_from_slice(extra);
        config(&vars)
    }

    /// The one problem line of `extra`, which must name `variable`.
    fn problem(extra: &[(&'static str, &'static str)], variable: &str) -> String {
        let error = base_with(extra).expect_err("must be refused");
        assert_eq!(error.problems.len(), 1, "one line: {:?}", error.problems);
        let line = error.problems[0].clone();
        assert!(line.starts_with(&format!("{variable}: ")), "{line}");
        line
    }

    #[test]
    fn empty_out_of_range_and_contradictory_settings_fail_at_start() {
        assert!(problem(&[("AUTO_APPLY", "")], "AUTO_APPLY").contains("empty"));
        assert!(problem(&[("AUTO_APPLY", "  ")], "AUTO_APPLY").contains("empty"));
        assert!(problem(&[("STAGE", "")], "STAGE").contains("empty"));
        for (variable, value) in [
            ("MAX_DURATION", "10000000000000000000"),
            ("MAX_DURATION", "3000000"),
            ("MAX_DURATION", "0"),
            ("LOCK_TIMEOUT", "3000000"),
            ("STATEMENT_LOCK_TIMEOUT", "99999999"),
            ("DEADLINE_MARGIN", "99999999"),
        ] {
            let line = problem(&[(variable, value)], variable);
            assert!(line.contains("2147483647ms"), "{line}");
        }
        assert!(base_with(&[("LOCK_TIMEOUT", "2147483s")]).is_ok());
        let line = problem(
            &[("MAX_DURATION", "20s"), ("DEADLINE_MARGIN", "20s")],
            "DEADLINE_MARGIN",
        );
        assert!(line.contains("smaller than MAX_DURATION"), "{line}");
        assert!(base_with(&[("MAX_DURATION", "20s"), ("DEADLINE_MARGIN", "5s")]).is_ok());
        for arn in [
            "arn:",
            "arn:aws:sns",
            "arn:aws:sqs:eu-west-1:123456789012:q",
            "arn:aws:sns:eu-west-1:1:t",
        ] {
            let line = problem(&[("TOPIC_ARN", arn)], "TOPIC_ARN");
            assert!(line.contains("not an SNS topic ARN"), "{line}");
        }
        let line = problem(&[("DB_AUTH", "unknown")], "DB_AUTH");
        assert!(!line.contains("required"), "{line}");
    }

    #[test]
    fn a_database_url_is_the_whole_truth() {
        let url = [
            ("STAGE", "CODE"),
            ("DB_AUTH", "url"),
            ("DATABASE_URL", "postgresql://localhost/x"),
            ("ARTIFACT_BUCKET", "b"),
            ("ARTIFACT_KEY", "k"),
            ("TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:t"),
        ];
        let with = |extra: (&str, &str)| {
            let mut vars = url.to_vec();
            vars.push(extra);
            config(&vars).map(|_| ()).map_err(|e| e.problems)
        };
        let problems = with(("DB_ENGINE", "mysql")).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("DB_ENGINE: ")
                && problems[0].contains("contradicts DATABASE_URL")
        );
        assert!(with(("DB_ENGINE", "postgresql")).is_ok());
        let problems = with(("DB_SCHEMA", "app")).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("DB_SCHEMA: ") && problems[0].contains("?schema="));
    }

    #[test]
    fn settings_another_login_would_read_are_refused_at_start() {
        let arn = "arn:aws:secretsmanager:eu-west-1:1:secret:db";
        let line = problem(&[("DATABASE_URL", "postgresql://u:pw@h/x")], "DATABASE_URL");
        assert!(
            line.contains("DB_AUTH=iam") && !line.contains("pw"),
            "{line}"
        );
        let line = problem(&[("DB_SECRET_ARN", arn)], "DB_SECRET_ARN");
        assert!(line.contains("not used with DB_AUTH=iam"), "{line}");
        let line = problem(
            &[
                ("DB_AUTH", "secret"),
                ("DB_SECRET_ARN", arn),
                ("DATABASE_URL", "postgresql://h/x"),
            ],
            "DATABASE_URL",
        );
        assert!(line.contains("DB_AUTH=secret"), "{line}");
        let line = problem(&[("DB_ENGINE", "mysql"), ("DB_SCHEMA", "app")], "DB_SCHEMA");
        assert!(line.contains("MySQL has no schema"), "{line}");
        assert!(base_with(&[("DB_SCHEMA", "app")]).is_ok());
    }

    #[test]
    fn a_database_url_that_cannot_be_used_is_refused_at_start() {
        let url = |value: &'static str| {
            let vars = [
                ("STAGE", "CODE"),
                ("DB_AUTH", "url"),
                ("DATABASE_URL", value),
                ("ARTIFACT_BUCKET", "b"),
                ("ARTIFACT_KEY", "k"),
                ("TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:t"),
            ];
            config(&vars).map(|_| ()).map_err(|e| e.problems)
        };
        for (value, says) in [
            (
                "postgresql://u:hunter2@h/x?sslmode=bogus",
                "Unknown sslmode",
            ),
            ("postgresql://u:hunter2@h/x?schema=", "`?schema=` is empty"),
            ("mysql://u:hunter2@h/x?sslmode=bogus", "Unknown sslmode"),
            ("oracle://u:hunter2@h/x", "not supported"),
        ] {
            let problems = url(value).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].starts_with("DATABASE_URL: "), "{problems:?}");
            assert!(problems[0].contains(says), "{problems:?}");
            assert!(!problems[0].contains("hunter2"), "{problems:?}");
        }
        assert!(url("postgresql://u:hunter2@h/x?sslmode=require&schema=app").is_ok());
    }

    #[test]
    fn mysql_defaults_to_its_port() {
        let mut vars = BASE.to_vec();
        vars.push(("DB_ENGINE", "mysql"));
        assert_eq!(config(&vars).unwrap().db.port_or_default(), 3306);
    }

    #[test]
    fn key_patterns() {
        assert!(key_matches(
            "deploy/PROD/*/prisma.zip",
            "deploy/PROD/app/prisma.zip"
        ));
        assert!(!key_matches(
            "deploy/PROD/*/prisma.zip",
            "deploy/PROD/a/b/prisma.zip"
        ));
        assert!(!key_matches(
            "deploy/PROD/*/prisma.zip",
            "deploy/CODE/app/prisma.zip"
        ));
        assert!(key_matches(
            "deploy/PROD/app/prisma.zip",
            "deploy/PROD/app/prisma.zip"
        ));
        assert!(!key_matches(
            "deploy/PROD/app/prisma.zip",
            "deploy/PROD/app/prisma.zip.bak"
        ));
        assert!(key_matches("*", "x.zip") && !key_matches("*", "a/x.zip"));
        assert!(key_matches("deploy/*-*.zip", "deploy/a-b-c.zip"));
        assert!(!key_matches("deploy/*-*.zip", "deploy/a-.zip"));
        assert!(key_matches("**", "ab") && !key_matches("**", "a"));
    }

    #[test]
    fn a_star_never_matches_an_empty_segment() {
        let pattern = "deploy/CODE/*/prisma.zip";
        assert!(!key_matches(pattern, "deploy/CODE//prisma.zip"));
        assert!(key_matches(pattern, "deploy/CODE/x/prisma.zip"));
        assert!(!key_matches("deploy/*", "deploy/"));
    }

    #[test]
    fn key_patterns_match_in_linear_time() {
        // Backtracking takes exponential time here (160 dashes took over 25 s); the state
        // set answers at once. Asserted by the answer, not by a clock.
        let pattern = "deploy/*-*-*-*-*-*/prisma.zip";
        for dashes in [160, 900, 5000] {
            let key = format!("deploy/{}/prisma.zip.bak", "-".repeat(dashes));
            assert!(!key_matches(pattern, &key));
            let key = format!("deploy/{}/prisma.zip", "a-".repeat(dashes));
            assert!(key_matches(pattern, &key));
        }
    }
}
