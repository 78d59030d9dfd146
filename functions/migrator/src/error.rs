//! The edge's errors: what the runtime around the engine fails on (the artifact's store,
//! the database's credentials), beside the engine's own errors, which it wraps unchanged.
//! Like the engine's, they become the outcome's `error` and `status`.

use migrator_engine::artifact::ArtifactError;
use migrator_engine::error::{EngineError, Wording};
use migrator_engine::outcome::{ErrorInfo, Outcome, Status};

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The engine's error (a request, an artifact, a database), as the engine words it.
    #[error(transparent)]
    Engine(#[from] EngineError),

    /// The artifact could not be fetched (an S3 object that is missing, too large …).
    #[error("The artifact {location} could not be fetched: {reason}")]
    ArtifactUnavailable {
        location: String,
        reason: String,
        /// Worth trying again (throttling, a network fault) rather than a wrong request.
        transient: bool,
    },

    /// Credentials for the database could not be had (IAM token, secret); never holds one.
    #[error("No database credentials: {reason}")]
    Credentials { reason: String },
}

impl From<ArtifactError> for EdgeError {
    fn from(error: ArtifactError) -> Self {
        EdgeError::Engine(error.into())
    }
}

impl EdgeError {
    /// A request the edge will not act on (a bucket or key it may not read, a refused event).
    pub fn invalid_request(reason: String) -> EdgeError {
        EdgeError::Engine(EngineError::InvalidRequest { reason })
    }

    /// A missing or unreadable artifact is `rejected`, unless another attempt may find it;
    /// a fault on the way (or no credentials) is `failed`.
    pub fn status(&self) -> Status {
        match self {
            EdgeError::Engine(error) => error.status(),
            EdgeError::ArtifactUnavailable {
                transient: false, ..
            } => Status::Rejected,
            EdgeError::ArtifactUnavailable {
                transient: true, ..
            }
            | EdgeError::Credentials { .. } => Status::Failed,
        }
    }

    /// Records this error in `outcome`, hints in `wording`.
    pub fn record(&self, outcome: &mut Outcome, wording: &dyn Wording) {
        match self {
            EdgeError::Engine(error) => error.record(outcome, wording),
            EdgeError::ArtifactUnavailable { .. } | EdgeError::Credentials { .. } => outcome.fail(
                self.status(),
                ErrorInfo {
                    code: None,
                    message: self.to_string(),
                    hint: None,
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use migrator_engine::chrono;
    use migrator_engine::error::CliWording;
    use migrator_engine::outcome::Action;

    use super::*;

    fn recorded(error: EdgeError) -> Outcome {
        let mut outcome = Outcome::new(Action::Deploy, chrono::Utc::now());
        error.record(&mut outcome, &CliWording);
        outcome
    }

    #[test]
    fn edge_errors_keep_their_messages_and_statuses() {
        let gone = recorded(EdgeError::ArtifactUnavailable {
            location: "s3://b/k.zip".into(),
            reason: "NoSuchKey".into(),
            transient: false,
        });
        assert_eq!(gone.status, Status::Rejected);
        let error = gone.error.unwrap();
        assert_eq!(
            error.message,
            "The artifact s3://b/k.zip could not be fetched: NoSuchKey"
        );
        assert_eq!((error.code, error.hint), (None, None));
        let flaky = recorded(EdgeError::ArtifactUnavailable {
            location: "s3://b/k.zip".into(),
            reason: "timeout".into(),
            transient: true,
        });
        assert_eq!(flaky.status, Status::Failed);
        let no_credentials = recorded(EdgeError::Credentials {
            reason: "no AWS region".into(),
        });
        assert_eq!(no_credentials.status, Status::Failed);
        assert_eq!(
            no_credentials.error.unwrap().message,
            "No database credentials: no AWS region"
        );
        let invalid = recorded(EdgeError::invalid_request("received nothing".into()));
        assert_eq!(invalid.status, Status::Rejected);
        assert_eq!(
            invalid.error.unwrap().message,
            "Invalid request: received nothing"
        );
    }
}
