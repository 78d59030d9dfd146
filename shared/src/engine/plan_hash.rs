//! The `planHash`: what confirming a plan applies, as one value. A person reviews a plan
//! (the artifact and the migrations it would apply); the hash covers exactly that — the
//! artifact's SHA-256 and each pending migration's name and checksum, in order — so a
//! confirmation carrying it applies that plan and nothing else: not a newer upload, not a
//! set that another run has changed since.

use sha2::{Digest, Sha256};

use crate::error::EngineError;
use crate::outcome::PendingMigration;

/// Versioned so that a change of what is hashed never matches an old hash by accident.
const DOMAIN: &str = "migrator plan v1";

/// The hash of applying `pending` from the artifact whose SHA-256 is `artifact_sha256`.
pub fn plan_hash(artifact_sha256: &str, pending: &[PendingMigration]) -> String {
    let mut hasher = Sha256::new();
    // Every field with its length first: no two plans share an encoding.
    let mut field = |text: &str| {
        hasher.update(text.len().to_string().as_bytes());
        hasher.update(b":");
        hasher.update(text.as_bytes());
    };
    field(DOMAIN);
    field(artifact_sha256);
    for migration in pending {
        field(&migration.name);
        field(migration.checksum.as_deref().unwrap_or(""));
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuses (before anything is written) when what would be applied now is not the plan
/// that was confirmed, saying what would be applied instead.
pub fn check(
    expected: &str,
    artifact_sha256: &str,
    pending: &[PendingMigration],
) -> Result<(), EngineError> {
    let now = plan_hash(artifact_sha256, pending);
    if now == expected {
        return Ok(());
    }
    let names: Vec<&str> = pending.iter().map(|m| m.name.as_str()).collect();
    let shown = if names.is_empty() {
        "nothing (up to date)".to_string()
    } else if names.len() > 10 {
        format!("{} and {} more", names[..10].join(", "), names.len() - 10)
    } else {
        names.join(", ")
    };
    Err(EngineError::InvalidRequest {
        reason: format!(
            "the confirmed plan (planHash {expected}) is not what would be applied now (planHash {now}): the artifact (sha256 {artifact_sha256}) would apply {} migration(s): {shown}. Nothing was written; ask for a new plan and confirm that one.",
            names.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(names: &[(&str, &str)]) -> Vec<PendingMigration> {
        names
            .iter()
            .map(|(name, checksum)| PendingMigration {
                name: name.to_string(),
                checksum: Some(checksum.to_string()),
                out_of_order: false,
                execution: None,
            })
            .collect()
    }

    #[test]
    fn the_hash_covers_the_artifact_and_the_pending_set() {
        let plan = pending(&[("a", "1"), ("b", "2")]);
        let hash = plan_hash("zip", &plan);
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, plan_hash("zip", &plan), "deterministic");
        assert_ne!(hash, plan_hash("other zip", &plan));
        assert_ne!(hash, plan_hash("zip", &pending(&[("a", "1")])));
        assert_ne!(hash, plan_hash("zip", &pending(&[("a", "1"), ("b", "3")])));
        assert_ne!(hash, plan_hash("zip", &pending(&[("b", "2"), ("a", "1")])));
        // Names and checksums cannot be shifted into one another.
        assert_ne!(
            plan_hash("zip", &pending(&[("a b", "1")])),
            plan_hash("zip", &pending(&[("a", "b 1")]))
        );
    }

    #[test]
    fn a_changed_plan_is_refused_with_what_would_be_applied() {
        let plan = pending(&[("a", "1")]);
        let hash = plan_hash("zip", &plan);
        assert!(check(&hash, "zip", &plan).is_ok());
        let grown = pending(&[("a", "1"), ("b_drop_table", "2")]);
        let error = check(&hash, "zip2", &grown).unwrap_err().to_string();
        assert!(error.contains(&hash), "{error}");
        assert!(error.contains("b_drop_table"), "{error}");
        assert!(error.contains("Nothing was written"), "{error}");
    }
}
