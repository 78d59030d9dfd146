//! The function's words in hints (the engine's [`Wording`]); the CLI's are the engine's
//! default, `CliWording`.

use migrator_engine::engine::ResolveTarget;
use migrator_engine::error::Wording;
use migrator_engine::outcome::{Action, ResolveKind};

use super::invoke_command;
use crate::payload::ManualPayload;

/// The function's words in hints: what a person can do there, a manual payload to this
/// function (with the `migrator invoke` command that sends it, when the function's name is
/// known) and the stage's variables; never a CLI command that needs direct database access,
/// never a CLI-only option.
#[derive(Debug, Clone, Default)]
pub struct FunctionWording {
    /// `AWS_LAMBDA_FUNCTION_NAME`; none in the ECS task.
    pub function: Option<String>,
}

impl Wording for FunctionWording {
    fn resolve(&self, kind: ResolveKind, migration: &str) -> String {
        let target = ResolveTarget {
            name: migration.to_string(),
            kind,
        };
        let payload = ManualPayload::new(Action::Resolve, true)
            .with_resolve(Some(&target))
            .to_value();
        match &self.function {
            Some(function) => format!(
                "`{}` (the payload `{payload}`)",
                invoke_command(&payload, function)
            ),
            None => {
                format!("a direct invocation of the stage's function with the payload `{payload}`")
            }
        }
    }

    fn lock_wait(&self) -> String {
        "LOCK_TIMEOUT".into()
    }

    fn accept(&self, entry: &str) -> String {
        let entry = serde_json::Value::from(entry);
        format!(
            "confirm with `\"accept\": [{entry}], \"by\": \"YOUR_NAME\"` in the confirmed payload (`migrator invoke --confirm --accept …` fills `by`)"
        )
    }

    fn more_time(&self) -> String {
        "a longer function timeout (on ECS, MAX_DURATION), or run it as the ECS task, which has no 15-minute limit".into()
    }
}

#[cfg(test)]
mod tests {
    use migrator_engine::error::{CliWording, EngineError};

    use super::*;

    #[test]
    fn a_blocked_deploy_says_how_to_accept_in_the_runtime_that_shows_it() {
        let blocked = EngineError::PreflightBlocked {
            findings: vec!["drop-table@20240102_drop (error)".into()],
        };
        let cli = blocked.hint(&CliWording).expect("a hint");
        assert!(
            cli.contains("`--accept drop-table@20240102_drop --by YOUR_NAME`"),
            "{cli}"
        );
        assert!(!cli.contains("\"accept\""), "{cli}");
        let function = blocked.hint(&FunctionWording::default()).expect("a hint");
        assert!(
            function.contains(r#""accept": ["drop-table@20240102_drop"]"#),
            "{function}"
        );
    }

    fn failed_migrations() -> EngineError {
        EngineError::FailedMigrations {
            names: vec!["20240101_x".into()],
            details: String::new(),
        }
    }

    fn lock_timeout() -> EngineError {
        EngineError::LockTimeout {
            lock: "advisory",
            statement: "SELECT pg_advisory_lock(72707369)".into(),
            timeout: std::time::Duration::from_secs(10),
        }
    }

    #[test]
    fn in_the_function_hints_name_the_function_and_the_payload() {
        let in_lambda = FunctionWording {
            function: Some("migrator-PROD".into()),
        };
        let hint = failed_migrations().hint(&in_lambda).unwrap();
        assert!(
            hint.contains("`migrator invoke --function migrator-PROD --action resolve --rolled-back 20240101_x --confirm` (the payload `{\"action\":\"resolve\",\"confirm\":true,\"resolve\":{\"rolledBack\":\"20240101_x\"}}`)"),
            "{hint}"
        );
        assert!(hint.contains("--applied 20240101_x --confirm"), "{hint}");
        let baseline = EngineError::SchemaNotEmpty {
            tables: vec!["customers".into()],
        }
        .hint(&in_lambda)
        .unwrap();
        assert!(
            baseline.contains("`migrator invoke --function migrator-PROD --action resolve --applied '<first migration>' --confirm`"),
            "{baseline}"
        );
        let locked = lock_timeout().hint(&in_lambda).unwrap();
        assert!(locked.contains("raise LOCK_TIMEOUT"), "{locked}");
        let deadline = EngineError::DeadlineCancelled {
            migration: "m".into(),
            what: "x".into(),
        }
        .hint(&in_lambda)
        .unwrap();
        assert!(deadline.contains("function timeout"), "{deadline}");
        for hint in [&hint, &baseline, &locked, &deadline] {
            for never in [
                "`migrator resolve",
                "<name>",
                "--lock-timeout",
                "--max-duration",
            ] {
                assert!(!hint.contains(never), "{never}: {hint}");
            }
        }
        // Outside Lambda (ECS) the function is not known: the payload alone.
        let hint = failed_migrations()
            .hint(&FunctionWording::default())
            .unwrap();
        assert!(
            hint.contains("a direct invocation of the stage's function with the payload"),
            "{hint}"
        );
        assert!(!hint.contains("`migrator resolve"), "{hint}");
    }

    #[test]
    fn on_the_command_line_hints_name_its_commands_and_options() {
        let hint = failed_migrations().hint(&CliWording).unwrap();
        assert_eq!(
            hint,
            "Repair the database by hand, then run `migrator resolve --rolled-back 20240101_x` (to apply it again) or `migrator resolve --applied 20240101_x` (if you finished it by hand)."
        );
        assert_eq!(
            lock_timeout().hint(&CliWording).unwrap(),
            "Another migration is running against this database (our tool or the Prisma CLI). Wait for it, or raise --lock-timeout."
        );
        let deadline = EngineError::DeadlineCancelled {
            migration: "m".into(),
            what: "x".into(),
        }
        .hint(&CliWording)
        .unwrap();
        assert!(!deadline.contains("--max-duration"), "{deadline}");
        for never in ["migrator invoke", "LOCK_TIMEOUT", "payload"] {
            assert!(!hint.contains(never), "{never}: {hint}");
        }
    }
}
