//! A fleet's targets: JSON Lines, one database a line, each read through the stage's own
//! database rules (`config::read_db`): what a stage's `DB_*` variables may say, a target line
//! may say, and nothing else. The first bad line refuses the whole list (nothing runs).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{DbConfig, read_db};

/// At most this many targets in one fleet: every target's result travels through the state
/// machine's state, which Step Functions limits to 256 KiB (about 100 bytes a target here, with
/// the plan's and the waves' results side by side). A larger fleet is split into fleets.
pub const MAX_TARGETS: usize = 1000;
/// The longest targets object read (16 MiB: far above 1,000 lines).
pub const MAX_TARGETS_BYTES: u64 = 16 << 20;

/// One line as written: the stage's database settings under their own names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetLine {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A number or a string: read by the same rule as `DB_PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// `iam` (default), `secret` or `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    /// With `auth: url` (local use: the URL carries its password into the targets object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A target that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// 1-based line of the targets object.
    pub line: usize,
    pub id: String,
    pub db: DbConfig,
}

/// Why a target line was refused: its line, its id when it had one, one problem a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("targets line {line}{}: {}", .id.as_ref().map(|i| format!(" ({i})")).unwrap_or_default(), .problems.join("; "))]
pub struct TargetError {
    pub line: usize,
    pub id: Option<String>,
    pub problems: Vec<String>,
}

/// The line's field for each stage variable (problems are worded in the line's terms).
const FIELDS: [(&str, &str); 9] = [
    ("DB_ENGINE", "engine"),
    ("DB_HOST", "host"),
    ("DB_PORT", "port"),
    ("DB_NAME", "database"),
    ("DB_USER", "user"),
    ("DB_SCHEMA", "schema"),
    ("DB_AUTH", "auth"),
    ("DB_SECRET_ARN", "secretArn"),
    ("DATABASE_URL", "url"),
];

/// An id: 1 to 64 letters, digits, `.`, `_` or `-` (it names the target in messages and logs).
pub fn is_target_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl TargetLine {
    /// The value of each stage variable this line sets.
    fn variable(&self, name: &str) -> Option<String> {
        match name {
            "DB_ENGINE" => self.engine.clone(),
            "DB_HOST" => self.host.clone(),
            "DB_PORT" => self.port.as_ref().map(|p| match p {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            "DB_NAME" => self.database.clone(),
            "DB_USER" => self.user.clone(),
            "DB_SCHEMA" => self.schema.clone(),
            "DB_AUTH" => self.auth.clone(),
            "DB_SECRET_ARN" => self.secret_arn.clone(),
            "DATABASE_URL" => self.url.clone(),
            _ => None,
        }
    }

    /// The line, checked by the stage's rules.
    pub fn check(&self, line: usize) -> Result<Target, TargetError> {
        let refuse = |problems: Vec<String>| TargetError {
            line,
            id: is_target_id(&self.id).then(|| self.id.clone()),
            problems,
        };
        if !is_target_id(&self.id) {
            return Err(refuse(vec![format!(
                "id: `{}` must be 1 to 64 letters, digits, `.`, `_` or `-`",
                crate::trigger::clip(&self.id).escape_debug()
            )]));
        }
        let empty: Vec<&str> = FIELDS
            .iter()
            .map(|(variable, _)| *variable)
            .filter(|v| self.variable(v).is_some_and(|x| x.trim().is_empty()))
            .collect();
        let mut problems: Vec<String> = empty
            .iter()
            .map(|v| format!("{v}: set but empty (leave it out for the default, or give a value)"))
            .collect();
        let get = |name: &str| {
            self.variable(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let db = read_db(&get, &empty, &mut problems);
        if problems.is_empty() {
            Ok(Target {
                line,
                id: self.id.clone(),
                db,
            })
        } else {
            Err(refuse(problems.iter().map(|p| in_line_terms(p)).collect()))
        }
    }
}

/// A stage problem in the line's words: `DB_PORT: …` → `port: …`, `DB_AUTH=url` → `auth=url`.
fn in_line_terms(problem: &str) -> String {
    let mut text = problem.to_string();
    for (variable, field) in FIELDS {
        text = text.replace(variable, field);
    }
    text
}

/// One line (1-based `line`) of the targets object.
pub fn read_line(line: usize, text: &str) -> Result<Target, TargetError> {
    let refuse = |problem: String| TargetError {
        line,
        id: None,
        problems: vec![problem],
    };
    let value = crate::json::parse(text)
        .map_err(|e| refuse(format!("not strict JSON: {}", crate::trigger::clip(&e))))?;
    read_value(line, &value)
}

/// A line already parsed (what the state machine hands a child).
pub fn read_value(line: usize, value: &Value) -> Result<Target, TargetError> {
    let parsed: TargetLine = serde_json::from_value(value.clone()).map_err(|e| TargetError {
        line,
        id: value
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_target_id(id))
            .map(str::to_string),
        problems: vec![format!(
            "does not fit {{id, engine, host, port, database, user, schema, auth, secretArn, url}}: {}",
            crate::trigger::clip(&e.to_string())
        )],
    })?;
    parsed.check(line)
}

/// Every line of a targets object (JSON Lines, no blank line), the
/// ids unique, at least one and at most [`MAX_TARGETS`]. The first bad line refuses all.
pub fn parse(text: &str) -> Result<Vec<Target>, TargetError> {
    let mut targets: Vec<Target> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            // The item reader counts lines as items: a blank one would shift every index.
            return Err(TargetError {
                line,
                id: None,
                problems: vec!["a blank line: JSON Lines has one target on every line".into()],
            });
        }
        let target = read_line(line, raw)?;
        if let Some(first) = targets.iter().find(|t| t.id == target.id) {
            return Err(TargetError {
                line,
                id: Some(target.id.clone()),
                problems: vec![format!(
                    "id: `{}` is already the id of line {}",
                    target.id, first.line
                )],
            });
        }
        targets.push(target);
        if targets.len() > MAX_TARGETS {
            return Err(TargetError {
                line,
                id: None,
                problems: vec![format!(
                    "more than {MAX_TARGETS} targets: split the fleet (every result travels through Step Functions' 256 KiB state)"
                )],
            });
        }
    }
    if targets.is_empty() {
        return Err(TargetError {
            line: 1,
            id: None,
            problems: vec!["no target: the object has no line".into()],
        });
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DbAuth, DbEngine};

    #[test]
    fn a_line_is_read_by_the_stage_rules() {
        let t = read_line(
            1,
            r#"{"id":"eu-1","host":"db.eu","port":5433,"database":"app","user":"migrator","schema":"t1"}"#,
        )
        .unwrap();
        assert_eq!(t.db.engine, DbEngine::Postgresql);
        assert_eq!(t.db.port_or_default(), 5433);
        assert_eq!(t.db.auth, DbAuth::Iam);
        assert_eq!(t.db.schema.as_deref(), Some("t1"));
        let t = read_line(
            2,
            r#"{"id":"local","auth":"url","url":"postgresql://u@h/x"}"#,
        )
        .unwrap();
        assert!(matches!(t.db.auth, DbAuth::Url { .. }));
    }

    #[test]
    fn a_bad_line_names_its_line_id_and_field() {
        let text = concat!(
            r#"{"id":"a","host":"h","database":"d","user":"u"}"#,
            "\n",
            r#"{"id":"b","host":"h","database":"d","user":"u","port":"http"}"#,
            "\n"
        );
        let e = parse(text).unwrap_err();
        assert_eq!((e.line, e.id.as_deref()), (2, Some("b")));
        assert!(
            e.to_string()
                .starts_with("targets line 2 (b): port: `http` is not valid"),
            "{e}"
        );
        for (line, says) in [
            (r#"{"id":"c","host":"h","database":"d"}"#, "user: required"),
            (
                r#"{"id":"c","engine":"mysql","host":"h","database":"d","user":"u","schema":"s"}"#,
                "schema: MySQL has no schema",
            ),
            (
                r#"{"id":"c","auth":"url","url":"postgresql://u:pw@h/x","host":"h"}"#,
                "host: not used with auth=url",
            ),
            (
                r#"{"id":"c","host":"","database":"d","user":"u"}"#,
                "host: set but empty",
            ),
            (
                r#"{"id":"c d","host":"h","database":"d","user":"u"}"#,
                "id: `c d` must be",
            ),
            (
                r#"{"id":"c","host":"h","database":"d","user":"u","password":"x"}"#,
                "does not fit",
            ),
            (r#"{"id":"c","id":"d"}"#, "not strict JSON"),
        ] {
            let e = read_line(4, line).unwrap_err();
            assert!(e.to_string().contains(says), "{line}: {e}");
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
        let dup = format!(
            "{0}\n{0}\n",
            r#"{"id":"a","host":"h","database":"d","user":"u"}"#
        );
        assert!(
            parse(&dup)
                .unwrap_err()
                .to_string()
                .contains("already the id of line 1")
        );
        assert!(parse("\n").unwrap_err().to_string().contains("blank line"));
        assert!(parse("").unwrap_err().to_string().contains("no target"));
    }
}
