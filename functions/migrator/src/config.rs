//! The stage's configuration, read from the environment once and validated at start-up.
//! Every error names the variable.

use migrator_engine::preflight::BlockOn;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Cap on the migration-lock wait; `None`: up to the deadline's margin.
    pub lock_timeout: Option<Duration>,
    pub statement_lock_timeout: Option<Duration>,
    pub statement_lock_retries: u32,
    pub deadline_margin: Duration,
    /// For ECS and the CLI, which have no Lambda deadline: an optional budget for one run.
    pub max_duration: Option<Duration>,
    pub max_artifact_bytes: u64,
    pub region: Option<String>,
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
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str, problems: &mut Vec<String>| {
            get(name).unwrap_or_else(|| {
                problems.push(format!("{name}: required"));
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
        let engine = match get("DB_ENGINE").as_deref() {
            None | Some("postgresql") | Some("postgres") => DbEngine::Postgresql,
            Some("mysql") => DbEngine::Mysql,
            Some(other) => {
                problems.push(format!("DB_ENGINE: `{other}` is not postgresql or mysql"));
                DbEngine::Postgresql
            }
        };
        let auth = match get("DB_AUTH").as_deref() {
            None | Some("iam") => DbAuth::Iam,
            Some("secret") => DbAuth::Secret {
                arn: required("DB_SECRET_ARN", &mut problems),
            },
            Some("url") => DbAuth::Url {
                url: required("DATABASE_URL", &mut problems),
            },
            Some(other) => {
                problems.push(format!("DB_AUTH: `{other}` is not iam, secret or url"));
                DbAuth::Iam
            }
        };
        // With a URL, the URL says where; with a secret, the secret may; with IAM, the variables must.
        let (host, name, user) = match auth {
            DbAuth::Url { .. } | DbAuth::Secret { .. } => (
                get("DB_HOST").unwrap_or_default(),
                get("DB_NAME").unwrap_or_default(),
                get("DB_USER").unwrap_or_default(),
            ),
            DbAuth::Iam => (
                required("DB_HOST", &mut problems),
                required("DB_NAME", &mut problems),
                required("DB_USER", &mut problems),
            ),
        };
        let port = parse(&get, "DB_PORT", &mut problems, |v| {
            v.parse::<u16>().ok().filter(|p| *p > 0)
        });

        let artifact_bucket = required("ARTIFACT_BUCKET", &mut problems);
        let artifact_key = required("ARTIFACT_KEY", &mut problems);
        if artifact_key.starts_with('/') {
            problems.push("ARTIFACT_KEY: must not start with /".into());
        }
        let topic_arn = required("TOPIC_ARN", &mut problems);
        if !topic_arn.is_empty() && !topic_arn.starts_with("arn:") {
            problems.push(format!("TOPIC_ARN: `{topic_arn}` is not an ARN"));
        }
        let auto_apply = parse(&get, "AUTO_APPLY", &mut problems, parse_bool).unwrap_or(true);
        let block_on =
            parse(&get, "BLOCK_ON", &mut problems, BlockOn::parse).unwrap_or(BlockOn::Error);
        let lock_timeout = parse(&get, "LOCK_TIMEOUT", &mut problems, parse_duration);
        let statement_lock_timeout = parse(
            &get,
            "STATEMENT_LOCK_TIMEOUT",
            &mut problems,
            parse_duration,
        );
        let statement_lock_retries = parse(&get, "STATEMENT_LOCK_RETRIES", &mut problems, |v| {
            v.parse::<u32>().ok().filter(|n| *n <= 20)
        })
        .unwrap_or(3);
        let deadline_margin = parse(&get, "DEADLINE_MARGIN", &mut problems, parse_duration)
            .unwrap_or(Duration::from_secs(30));
        let max_duration = parse(&get, "MAX_DURATION", &mut problems, parse_duration);
        let max_artifact_bytes = parse(&get, "MAX_ARTIFACT_BYTES", &mut problems, |v| {
            v.parse::<u64>().ok().filter(|n| *n > 0)
        })
        .unwrap_or(64 << 20);

        let config = StageConfig {
            stage,
            db: DbConfig {
                engine,
                host,
                port,
                name,
                user,
                schema: get("DB_SCHEMA"),
                auth,
                ca_bundle: get("DB_CA_BUNDLE").map(PathBuf::from),
            },
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
        };
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }
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
        problems.push(format!("{name}: `{value}` is not valid"));
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

/// `30`, `30s`, `500ms`, `5m`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// Whether `key` matches the configured key or pattern (`*` = any characters but `/`).
pub fn key_matches(pattern: &str, key: &str) -> bool {
    fn matches(p: &[u8], k: &[u8]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((b'*', rest)) => (0..=k.len())
                .take_while(|&i| i == 0 || k[i - 1] != b'/')
                .any(|i| matches(rest, &k[i..])),
            Some((c, rest)) => k.first() == Some(c) && matches(rest, &k[1..]),
        }
    }
    matches(pattern.as_bytes(), key.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<StageConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StageConfig::from_lookup(|name| map.get(name).cloned())
    }

    const BASE: [(&str, &str); 7] = [
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
            ("TOPIC_ARN", "arn:aws:sns:x"),
        ];
        assert!(config(&url_only).is_ok());
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
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("600"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("2h"), None);
    }
}
