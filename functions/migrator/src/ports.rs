//! What the handler needs from the outside, as three small traits: where artifacts come
//! from ([`ArtifactSource`]), where outcomes go ([`Notifier`]) and how database
//! credentials are obtained ([`Credentials`]). The AWS implementations are in `aws/`; the
//! handler's tests use in-memory fakes. Each call is bounded by the handler (deadline and
//! [`crate::handler`]'s call timeout), not by the implementation.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use migrator_engine::engine::RecoveryPoints;
use migrator_engine::error::EngineError;

use crate::error::EdgeError;
use migrator_engine::outcome::Outcome;
use serde::Deserialize;

use crate::trigger::ObjectRef;

/// An artifact's bytes and what the store said about them.
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// `s3://bucket/key?versionId=…` when the store reports a version.
    pub location: String,
    /// The version served (none for an unversioned bucket).
    pub version_id: Option<String>,
}

/// Where artifacts are read (S3).
pub trait ArtifactSource: Send + Sync {
    /// The object the event names: its version, else the object whose ETag the event saw,
    /// else the latest; never more than `max_bytes`. Failures are
    /// [`EdgeError::ArtifactUnavailable`], `transient` when another attempt may succeed.
    fn fetch(
        &self,
        object: &ObjectRef,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Fetched, EdgeError>> + Send;

    /// The version id of the key's latest version (`None`: the store keeps no versions, or
    /// cannot tell). A confirmation of an older version is stale (see `Handler::prepare`).
    fn latest_version(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Option<String>, EdgeError>> + Send {
        let _ = object;
        async { Ok(None) }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("publishing the outcome to {topic} failed: {reason}")]
pub struct PublishError {
    pub topic: String,
    pub reason: String,
}

/// Where outcomes are published (the stage's SNS topic).
pub trait Notifier: Send + Sync {
    /// Where messages go (named in errors).
    fn topic(&self) -> &str;
    /// Publishes one outcome; returns the message id. `door`: the confirm qualifier the run
    /// came through, when it did (the message says so).
    fn publish(
        &self,
        outcome: &Outcome,
        door: Option<&str>,
    ) -> impl Future<Output = Result<String, PublishError>> + Send;
    /// Publishes a fleet's rollup (on the rollout's thread); returns the message id.
    fn publish_rollup(
        &self,
        rollup: &crate::fleet::rollup::Rollup,
    ) -> impl Future<Output = Result<String, PublishError>> + Send {
        let _ = rollup;
        let topic = self.topic().to_string();
        async move {
            Err(PublishError {
                topic,
                reason: "this notifier does not publish rollups".into(),
            })
        }
    }
}

/// What an IAM auth token is minted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFor {
    pub host: String,
    pub port: u16,
    pub user: String,
}

/// The JSON RDS writes for a managed secret (extra fields are ignored).
#[derive(Deserialize)]
pub struct DbSecret {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default, deserialize_with = "port")]
    pub port: Option<u16>,
    #[serde(default)]
    pub dbname: Option<String>,
}

impl std::fmt::Debug for DbSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSecret")
            .field("username", &self.username)
            .field("password", &"…")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

/// RDS writes the port as a number; people write it as a string.
fn port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    Ok(match Option::<Port>::deserialize(d)? {
        None => None,
        Some(Port::Number(n)) => Some(n),
        Some(Port::Text(t)) => Some(t.parse().map_err(serde::de::Error::custom)?),
    })
}

/// Database credentials: a fresh IAM auth token, or a stored secret. Failures are
/// [`EdgeError::Credentials`] and never carry a secret.
pub trait Credentials: Send + Sync {
    fn iam_token(&self, token: &TokenFor)
    -> impl Future<Output = Result<String, EdgeError>> + Send;
    fn database_secret(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<DbSecret, EdgeError>> + Send;
}

/// What the stage knows of its database from its cloud (RDS): asked before a run that
/// writes, and the recovery-point port the engine calls before the first write.
#[async_trait]
pub trait DatabaseGuard: Send + Sync {
    /// Before a run that writes (before the lock): warnings for the outcome, or why the run
    /// must not write ([`EngineError::WrongDatabase`], [`EngineError::DatabaseBusy`]).
    async fn before_writing(&self) -> Result<Vec<String>, EngineError>;
    /// The recovery-point port (`None`: the stage's policy takes none).
    fn recovery(&self) -> Option<Arc<dyn RecoveryPoints>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_secrets_parse_and_debug_hides_the_password() {
        let s: DbSecret = serde_json::from_str(r#"{"username":"u","password":"p@ss","engine":"postgres","host":"h","port":5432,"dbname":"d"}"#).unwrap();
        assert_eq!(s.port, Some(5432));
        assert!(!format!("{s:?}").contains("p@ss"));
        let s: DbSecret =
            serde_json::from_str(r#"{"username":"u","password":"p","port":"3306"}"#).unwrap();
        assert_eq!(s.port, Some(3306));
    }
}
