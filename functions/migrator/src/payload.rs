//! The manual payload: one serde type, written by `migrator invoke` and by a plan's
//! `confirmPayload`, read by the function. Read strictly: unknown fields, wrong types,
//! duplicate keys (see `json`) and contradictions are refused with the reason.

use migrator_engine::engine::ResolveTarget;
use migrator_engine::outcome::{Action, ResolveKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::trigger::{ObjectRef, clip, object_ref};
use migrator_engine::text::is_hazard;

/// `{"action", "confirm", "artifact", "versionId", "resolve", "planHash", "accept", "by"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManualPayload {
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<bool>,
    /// `s3://bucket/key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<ResolvePayload>,
    /// The `planHash` of the plan a confirmed deploy applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// Preflight findings (`rule@migration`) the person applies anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<Vec<String>>,
    /// Who sends it, in their own words (declared, not verified): required with `accept`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResolvePayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<String>,
}

/// A manual payload, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manual {
    pub action: Action,
    pub confirm: bool,
    /// `None`: the configured key's latest version.
    pub artifact: Option<ObjectRef>,
    pub resolve: Option<ResolveTarget>,
    pub plan_hash: Option<String>,
    /// Preflight findings (`rule@migration`) the person applies anyway.
    pub accept: Vec<String>,
    /// Who the payload says sent it (`by`), trimmed; `None` when it names nobody.
    pub by: Option<String>,
}

/// Why a payload was refused, and the action it asked for (so an invalid resolve is
/// reported as a resolve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub action: Action,
    pub reason: String,
}

impl ManualPayload {
    pub fn new(action: Action, confirm: bool) -> ManualPayload {
        ManualPayload {
            action: action.as_str().into(),
            confirm: Some(confirm),
            artifact: None,
            version_id: None,
            resolve: None,
            plan_hash: None,
            accept: None,
            by: None,
        }
    }

    pub fn with_resolve(mut self, target: Option<&ResolveTarget>) -> ManualPayload {
        self.resolve = target.map(|t| match t.kind {
            ResolveKind::Applied => ResolvePayload {
                applied: Some(t.name.clone()),
                rolled_back: None,
            },
            ResolveKind::RolledBack => ResolvePayload {
                applied: None,
                rolled_back: Some(t.name.clone()),
            },
        });
        self
    }

    /// The payload that applies exactly `plan_hash` from `object` (its version when known).
    pub fn confirming(object: &ObjectRef, plan_hash: &str) -> ManualPayload {
        ManualPayload {
            artifact: Some(format!("s3://{}/{}", object.bucket, object.key)),
            version_id: object.version_id.clone(),
            plan_hash: Some(plan_hash.to_string()),
            accept: None,
            ..ManualPayload::new(Action::Deploy, true)
        }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The longest `by` a payload may carry.
pub const MAX_BY: usize = 200;

/// Whether `text` can name someone: 1 to `max` bytes, a letter or digit among them, and
/// nothing that hides or reorders what a reader sees ([`is_hazard`]).
pub fn is_name(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text.chars().any(char::is_alphanumeric)
        && !text.chars().any(is_hazard)
}

/// `rule@migration`, each part a name ([`is_name`]).
pub fn is_accept_entry(entry: &str) -> bool {
    entry.len() <= 300
        && entry
            .split_once('@')
            .is_some_and(|(rule, migration)| is_name(rule, 300) && is_name(migration, 300))
}

/// Reads a manual payload (a JSON object with an `action` key).
pub fn read(event: &Value) -> Result<Manual, Refused> {
    // The action asked for, as far as it can be read, names the refusal.
    let asked = event
        .get("action")
        .and_then(Value::as_str)
        .and_then(Action::parse)
        .unwrap_or(Action::Deploy);
    let refuse = |reason: String| Refused {
        action: asked,
        reason,
    };
    let payload: ManualPayload = serde_json::from_value(event.clone()).map_err(|e| {
        refuse(format!(
            "a manual payload that does not fit {{action, confirm, artifact, versionId, resolve, planHash, accept, by}}: {}",
            clip(&e.to_string())
        ))
    })?;
    let Some(action) = Action::parse(&payload.action) else {
        return Err(refuse(format!(
            "unknown action `{}`: use deploy, plan, status or resolve",
            clip(&payload.action)
        )));
    };
    let resolve = match (action, payload.resolve) {
        (Action::Resolve, Some(r)) => ResolveTarget::from_flags(r.applied, r.rolled_back)
            .map_err(|e| refuse(format!("resolve: {e}")))?,
        (_, Some(_)) => return Err(refuse("`resolve` is only for the resolve action".into())),
        (_, None) => None,
    };
    if action == Action::Resolve && resolve.is_none() {
        return Err(refuse(
            "resolve needs exactly one of {\"resolve\": {\"applied\": NAME}} or {\"resolve\": {\"rolledBack\": NAME}}".into(),
        ));
    }
    if let Some(hash) = &payload.plan_hash
        && !(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(refuse(
            "`planHash` must be the 64 hex digits of a plan's confirmPayload".into(),
        ));
    }
    let artifact = match payload.artifact {
        None if payload.version_id.is_some() => {
            return Err(refuse(
                "`versionId` needs `artifact` (s3://bucket/key)".into(),
            ));
        }
        None => None,
        Some(url) => {
            // S3 writes "null" for "no version"; as a request it would silently mean the
            // latest version. A person names a real version or leaves `versionId` out.
            if let Some(version) = &payload.version_id
                && (version.is_empty() || version == "null")
            {
                return Err(refuse(format!(
                    "`versionId` \"{}\" names no version: leave it out for the latest version, or give the version id S3 reported",
                    clip(version)
                )));
            }
            let (bucket, key) = parse_s3_url(&url).map_err(refuse)?;
            Some(object_ref(&bucket, key, payload.version_id.as_deref(), None).map_err(refuse)?)
        }
    };
    let accept = payload.accept.unwrap_or_default();
    if accept.len() > 100 || accept.iter().any(|a| !is_accept_entry(a)) {
        return Err(refuse(
            "`accept` lists at most 100 findings, each `rule@migration` (at most 300 bytes, no control or invisible characters)".into(),
        ));
    }
    // Accepting a finding means applying despite it: only a confirmed deploy applies, so
    // anywhere else the list would be recorded and shown for nothing.
    let applies = action == Action::Deploy && payload.confirm == Some(true);
    if !accept.is_empty() && !applies {
        return Err(refuse(
            "`accept` goes with a confirmed deploy only (\"action\":\"deploy\",\"confirm\":true): nothing else applies a migration, so there is nothing to accept".into(),
        ));
    }
    let by = match payload.by.as_deref().map(str::trim) {
        Some(by) if !is_name(by, MAX_BY) => {
            return Err(refuse(format!(
                "`by` names who sends the payload: 1 to {MAX_BY} bytes with a letter or digit, no control or invisible characters (zero-width, bidirectional, line separators)"
            )));
        }
        by => by.map(str::to_string),
    };
    // Applying despite a finding is a person's decision: the outcome names who made it.
    if !accept.is_empty() && by.is_none() {
        return Err(refuse(
            "`accept` needs `by`: name who accepts these findings (\"by\": \"you@example.com\"), recorded in the outcome as invokedBy; `migrator invoke --accept` fills it in".into(),
        ));
    }
    Ok(Manual {
        action,
        confirm: payload.confirm.unwrap_or(false),
        artifact,
        resolve,
        plan_hash: payload.plan_hash,
        accept,
        by,
    })
}

/// `s3://bucket/key` (the key as written, not URL-decoded).
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("`artifact` must be s3://bucket/key, got `{}`", clip(url)))?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            Ok((bucket.to_string(), key.to_string()))
        }
        _ => Err(format!(
            "`artifact` must be s3://bucket/key, got `{}`",
            clip(url)
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn written_and_read_by_the_same_type() {
        let object = ObjectRef {
            bucket: "b".into(),
            key: "deploy/x.zip".into(),
            version_id: Some("v1".into()),
            etag: None,
        };
        let hash = "a".repeat(64);
        let value = ManualPayload::confirming(&object, &hash).to_value();
        assert_eq!(
            value,
            json!({"action":"deploy","confirm":true,"artifact":"s3://b/deploy/x.zip","versionId":"v1","planHash": hash})
        );
        let manual = read(&value).unwrap();
        assert!(manual.confirm);
        assert_eq!(manual.artifact, Some(object));
        assert_eq!(manual.plan_hash.as_deref(), Some(hash.as_str()));
    }

    #[test]
    fn version_null_is_refused() {
        let error =
            read(&json!({"action":"deploy","artifact":"s3://b/k","versionId":"null"})).unwrap_err();
        assert!(error.reason.contains("names no version"), "{error:?}");
    }

    #[test]
    fn an_invalid_resolve_is_reported_as_a_resolve() {
        for payload in [
            json!({"action":"resolve"}),
            json!({"action":"resolve","resolve":{"applied":"a","rolledBack":"b"}}),
            json!({"action":"resolve","resolve":{"applied":""}}),
            json!({"action":"resolve","resolve":{"applied": 3}}),
        ] {
            let error = read(&payload).unwrap_err();
            assert_eq!(error.action, Action::Resolve, "{payload}: {error:?}");
        }
    }

    #[test]
    fn a_plan_hash_must_look_like_one() {
        let error = read(&json!({"action":"deploy","confirm":true,"planHash":"x"})).unwrap_err();
        assert!(error.reason.contains("64 hex digits"), "{error:?}");
    }

    #[test]
    fn by_names_who_sends_it_and_accept_needs_it() {
        let accept = json!(["set-not-null@20240301120000_require_name"]);
        // Present, with accept: both read (trimmed).
        let m = read(
            &json!({"action":"deploy","confirm":true,"accept": accept,"by":" alice@example.com "}),
        )
        .unwrap();
        assert_eq!(m.by.as_deref(), Some("alice@example.com"));
        assert_eq!(m.accept, ["set-not-null@20240301120000_require_name"]);
        // Present without accept: recorded all the same (who asked for a plan).
        let m = read(&json!({"action":"plan","by":"bob"})).unwrap();
        assert_eq!(m.by.as_deref(), Some("bob"));
        // Each `accept` entry is checked like `by`.
        for entry in [
            "drop-column@m\u{202E}x",
            "\u{200B}@m",
            "drop-column@",
            "drop-column@\u{200B}",
            "nope",
            "drop-column@a\u{1b}[0m",
            "drop-column@a\u{2028}b",
        ] {
            let error =
                read(&json!({"action":"deploy","confirm":true,"accept":[entry],"by":"alice"}))
                    .unwrap_err();
            assert!(
                error.reason.contains("`accept` lists"),
                "{entry:?}: {error:?}"
            );
        }
        // `accept` where nothing is applied: refused, never recorded nor shown.
        for payload in [
            json!({"action":"plan","accept": accept,"by":"mallory"}),
            json!({"action":"deploy","accept": accept,"by":"mallory"}),
            json!({"action":"deploy","confirm":false,"accept": accept,"by":"mallory"}),
            json!({"action":"status","accept": accept,"by":"mallory"}),
            json!({"action":"resolve","confirm":true,"resolve":{"applied":"m"},"accept": accept,"by":"mallory"}),
        ] {
            let error = read(&payload).unwrap_err();
            assert!(
                error.reason.contains("confirmed deploy only"),
                "{payload}: {error:?}"
            );
        }
        // Absent: fine without accept, refused with it (an empty accept needs nobody).
        assert_eq!(read(&json!({"action":"deploy"})).unwrap().by, None);
        assert!(read(&json!({"action":"deploy","confirm":true,"accept":[]})).is_ok());
        let error = read(&json!({"action":"deploy","confirm":true,"accept": accept})).unwrap_err();
        assert!(error.reason.contains("`accept` needs `by`"), "{error:?}");
        assert_eq!(error.action, Action::Deploy);
        // Wrong type, empty, control characters, too long: refused with the reason.
        for (by, fragment) in [
            (json!(42), "does not fit"),
            (json!(["alice"]), "does not fit"),
            (json!("  "), "`by` names who"),
            (json!("a\nb"), "`by` names who"),
            (json!("\u{200B}"), "`by` names who"),
            (json!("\u{200B}\u{2060}\u{FEFF}"), "`by` names who"),
            (json!("alice\u{2028}Approved by the CTO"), "`by` names who"),
            (json!("eve\u{202E}moc.elpmaxe@ecila"), "`by` names who"),
            (json!("\u{1b}[31mroot"), "`by` names who"),
            (json!("--"), "`by` names who"),
            (json!("x".repeat(MAX_BY + 1)), "`by` names who"),
        ] {
            let error = read(&json!({"action":"deploy","confirm":true,"accept": accept,"by": by}))
                .unwrap_err();
            assert!(error.reason.contains(fragment), "{by}: {error:?}");
        }
        // Written by the same type.
        let payload = ManualPayload {
            accept: Some(vec!["drop-column@m".into()]),
            by: Some("carol".into()),
            ..ManualPayload::new(Action::Deploy, true)
        };
        assert_eq!(
            payload.to_value(),
            json!({"action":"deploy","confirm":true,"accept":["drop-column@m"],"by":"carol"})
        );
        assert_eq!(
            read(&payload.to_value()).unwrap().by.as_deref(),
            Some("carol")
        );
    }
}
