//! What was asked, and the one place that decides whether it may write ("the confirm rule").
//!
//! Every runtime builds its [`Request`] through one constructor: [`Request::cli`] (a command a
//! person typed: Prisma's semantics, the command is its own confirmation), [`Request::upload`]
//! (an artifact upload: writes only where the stage auto-applies), [`Request::manual`] (a
//! person's payload to the function: writes only when it says `confirm`, and on a stage that
//! does not auto-apply only with the `planHash` of a reviewed plan) and [`Request::refused`]
//! (something we will not act on; never writes). Nothing else sets `confirm`.
//!
//! Each request also carries who invoked it, as far as the runtime can tell ([`InvokedBy`]),
//! which the outcome records as `invokedBy`.

use crate::error::EngineError;
use crate::outcome::{Action, ResolveKind};
pub use crate::outcome::{InvokedBy, InvokerSource};

/// What was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    /// Deploy and resolve write only when confirmed; otherwise they report the plan.
    confirm: bool,
    /// For [`Action::Resolve`].
    pub resolve: Option<ResolveTarget>,
    /// A confirmed deploy of a reviewed plan: the plan's `planHash`. The engine applies
    /// only if what it would apply, under the lock, still hashes to this.
    pub expected_plan: Option<String>,
    /// Who invoked it, when known (the outcome's `invokedBy`).
    pub invoked_by: Option<InvokedBy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveTarget {
    pub name: String,
    pub kind: ResolveKind,
}

impl ResolveTarget {
    /// The one mapping of `--applied NAME` / `--rolled-back NAME` (CLI, `migrator invoke`)
    /// and `{"applied": NAME}` / `{"rolledBack": NAME}` (the payload): exactly one, or none.
    pub fn from_flags(
        applied: Option<String>,
        rolled_back: Option<String>,
    ) -> Result<Option<ResolveTarget>, String> {
        let target = match (applied, rolled_back) {
            (Some(_), Some(_)) => {
                return Err("give exactly one of applied or rolled back, not both".into());
            }
            (Some(name), None) => ResolveTarget {
                name,
                kind: ResolveKind::Applied,
            },
            (None, Some(name)) => ResolveTarget {
                name,
                kind: ResolveKind::RolledBack,
            },
            (None, None) => return Ok(None),
        };
        if target.name.is_empty() || target.name.len() > 255 {
            return Err("the migration name to resolve is empty or longer than 255 bytes".into());
        }
        Ok(Some(target))
    }
}

/// How the function reached this request, for [`Request::manual`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StagePolicy {
    /// `AUTO_APPLY`: uploads apply without a person.
    pub auto_apply: bool,
}

impl Request {
    /// A CLI command (`deploy`, `plan`, `status`, `resolve --…`): like Prisma, the command
    /// itself is the confirmation.
    /// Who invoked it is the OS user ([`InvokedBy::os_user`]).
    pub fn cli(action: Action, resolve: Option<ResolveTarget>) -> Result<Request, EngineError> {
        Request::checked(action, true, resolve, None, InvokedBy::os_user())
    }

    /// An artifact upload (S3/EventBridge, directly or through SQS/SNS): a deploy that
    /// applies only where the stage auto-applies. `uploader`: who the event says uploaded it
    /// ([`InvokedBy::s3_event`]).
    pub fn upload(policy: StagePolicy, uploader: Option<InvokedBy>) -> Request {
        Request {
            action: Action::Deploy,
            confirm: policy.auto_apply,
            resolve: None,
            expected_plan: None,
            invoked_by: uploader,
        }
    }

    /// A person's manual payload (a direct invocation or the ECS task's own event). It
    /// writes only with `confirm`; on a stage that does not auto-apply a confirmed deploy
    /// must carry the `planHash` of the plan that was reviewed (the plan's `confirmPayload`),
    /// so that confirming never applies something nobody saw. `by`: who the payload says sent
    /// it ([`InvokedBy::declared`]).
    pub fn manual(
        policy: StagePolicy,
        action: Action,
        confirm: bool,
        resolve: Option<ResolveTarget>,
        plan_hash: Option<String>,
        by: Option<InvokedBy>,
    ) -> Result<Request, EngineError> {
        if plan_hash.is_some() && !(action == Action::Deploy && confirm) {
            return Err(EngineError::InvalidRequest {
                reason: "`planHash` goes with a confirmed deploy (\"action\":\"deploy\",\"confirm\":true) only".into(),
            });
        }
        if action == Action::Deploy && confirm && plan_hash.is_none() && !policy.auto_apply {
            return Err(EngineError::InvalidRequest {
                reason: "this stage does not apply unreviewed artifacts (AUTO_APPLY=false): a confirmed deploy must carry the `planHash` of the plan it confirms. Send the plan's `confirmPayload` as it is (ask for a plan first: {\"action\":\"deploy\"})".into(),
            });
        }
        Request::checked(action, confirm, resolve, plan_hash, by)
    }

    /// Something we will not act on, reported as `action`: never writes.
    pub fn refused(action: Action) -> Request {
        Request {
            action,
            confirm: false,
            resolve: None,
            expected_plan: None,
            invoked_by: None,
        }
    }

    fn checked(
        action: Action,
        confirm: bool,
        resolve: Option<ResolveTarget>,
        expected_plan: Option<String>,
        invoked_by: Option<InvokedBy>,
    ) -> Result<Request, EngineError> {
        match (action, &resolve) {
            (Action::Resolve, None) => Err(EngineError::InvalidRequest {
                reason: "resolve needs the name of a migration to mark as applied or rolled back"
                    .into(),
            }),
            (Action::Deploy | Action::Plan | Action::Status, Some(_)) => {
                Err(EngineError::InvalidRequest {
                    reason: "a migration to resolve goes with the resolve action only".into(),
                })
            }
            _ => Ok(Request {
                action,
                confirm,
                resolve,
                expected_plan,
                invoked_by,
            }),
        }
    }

    /// The engine's own tests build any request, even one no runtime can (a resolve
    /// without a name), to prove the engine's defences.
    #[cfg(test)]
    pub(crate) fn for_tests(
        action: Action,
        confirm: bool,
        resolve: Option<ResolveTarget>,
    ) -> Request {
        Request {
            action,
            confirm,
            resolve,
            expected_plan: None,
            invoked_by: None,
        }
    }

    /// Whether writes were confirmed.
    pub fn confirmed(&self) -> bool {
        self.confirm
    }

    /// Whether this request may write to the database.
    pub fn writes(&self) -> bool {
        self.confirm && matches!(self.action, Action::Deploy | Action::Resolve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: StagePolicy = StagePolicy { auto_apply: false };
    const CODE: StagePolicy = StagePolicy { auto_apply: true };

    #[test]
    fn the_confirm_rule() {
        // The CLI: the command confirms; uploads follow AUTO_APPLY; payloads say it.
        assert!(Request::cli(Action::Deploy, None).unwrap().writes());
        assert!(!Request::cli(Action::Plan, None).unwrap().writes());
        assert!(Request::upload(CODE, None).writes());
        assert!(!Request::upload(PROD, None).writes());
        assert!(
            !Request::manual(CODE, Action::Deploy, false, None, None, None)
                .unwrap()
                .writes()
        );
        assert!(
            Request::manual(CODE, Action::Deploy, true, None, None, None)
                .unwrap()
                .writes()
        );
        assert!(!Request::refused(Action::Deploy).writes());
    }

    #[test]
    fn a_stage_without_auto_apply_confirms_only_a_reviewed_plan() {
        let bare = Request::manual(PROD, Action::Deploy, true, None, None, None).unwrap_err();
        assert!(bare.to_string().contains("planHash"), "{bare}");
        let reviewed =
            Request::manual(PROD, Action::Deploy, true, None, Some("abc".into()), None).unwrap();
        assert!(reviewed.writes());
        assert_eq!(reviewed.expected_plan.as_deref(), Some("abc"));
        // A plan hash with anything but a confirmed deploy is a mistake, said so.
        assert!(
            Request::manual(PROD, Action::Deploy, false, None, Some("abc".into()), None).is_err()
        );
        // Resolve writes history, not an artifact: confirm is enough.
        let target = ResolveTarget::from_flags(Some("m".into()), None).unwrap();
        assert!(
            Request::manual(PROD, Action::Resolve, true, target, None, None)
                .unwrap()
                .writes()
        );
    }

    #[test]
    fn resolve_flags_map_once() {
        assert_eq!(
            ResolveTarget::from_flags(None, Some("x".into())).unwrap(),
            Some(ResolveTarget {
                name: "x".into(),
                kind: ResolveKind::RolledBack
            })
        );
        assert_eq!(ResolveTarget::from_flags(None, None).unwrap(), None);
        assert!(ResolveTarget::from_flags(Some("a".into()), Some("b".into())).is_err());
        assert!(ResolveTarget::from_flags(Some(String::new()), None).is_err());
        assert!(Request::cli(Action::Resolve, None).is_err());
        let target = ResolveTarget::from_flags(Some("a".into()), None).unwrap();
        assert!(Request::cli(Action::Deploy, target).is_err());
    }

    #[test]
    fn each_constructor_carries_who_invoked_it() {
        let uploader = InvokedBy::s3_event(Some("AWS:AIDAEXAMPLE"), Some("req-1"));
        let upload = Request::upload(CODE, uploader.clone());
        assert_eq!(
            upload.invoked_by,
            Some(InvokedBy {
                principal: "AWS:AIDAEXAMPLE".into(),
                source: InvokerSource::S3Event,
                request_id: Some("req-1".into()),
            })
        );
        let by = InvokedBy::declared(Some("  alice@example.com "), Some("req-2"));
        let manual = Request::manual(CODE, Action::Deploy, true, None, None, by).unwrap();
        let who = manual.invoked_by.expect("declared");
        assert_eq!(
            (who.principal.as_str(), who.source),
            ("alice@example.com", InvokerSource::Payload)
        );
        assert_eq!(who.request_id.as_deref(), Some("req-2"));
        // Nothing named, nothing recorded: an empty name, an empty request id.
        assert_eq!(InvokedBy::declared(Some("  "), Some("r")), None);
        assert_eq!(InvokedBy::s3_event(None, Some("r")), None);
        assert_eq!(
            InvokedBy::declared(Some("bob"), Some("")).and_then(|b| b.request_id),
            None
        );
        // Control characters never reach a log line; long names are cut.
        let odd = InvokedBy::declared(Some("eve\n\u{7}x"), None).unwrap();
        assert_eq!(odd.principal, "evex");
        let long = InvokedBy::declared(Some(&"é".repeat(300)), None).unwrap();
        assert!(
            long.principal.len() <= crate::outcome::MAX_PRINCIPAL
                && long.principal.starts_with('é')
        );
        assert_eq!(Request::refused(Action::Deploy).invoked_by, None);
        // The CLI: the OS user when the environment names one.
        if let Some(cli) = Request::cli(Action::Plan, None).unwrap().invoked_by {
            assert_eq!(cli.source, InvokerSource::Cli);
        }
    }

    #[test]
    fn invoked_by_is_a_claim_and_says_where_it_was_read() {
        let who = InvokedBy::declared(Some("alice"), None).unwrap();
        assert_eq!(
            serde_json::to_value(&who).unwrap(),
            serde_json::json!({"principal":"alice","source":"payload"})
        );
        let s3 = InvokedBy::s3_event(Some("AWS:X"), Some("r")).unwrap();
        assert_eq!(
            serde_json::to_value(&s3).unwrap(),
            serde_json::json!({"principal":"AWS:X","source":"s3-event","requestId":"r"})
        );
        // Nothing an event carries proves who sent it: no name is ever called verified.
        for who in [&who, &s3] {
            assert!(serde_json::to_value(who).unwrap().get("verified").is_none());
        }
        assert_eq!(s3.source.claim(), "as the upload event claims");
    }
}
