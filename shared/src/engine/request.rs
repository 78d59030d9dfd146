//! What was asked, and the one place that decides whether it may write ("the confirm rule").
//!
//! Every runtime builds its [`Request`] through one constructor: [`Request::cli`] (a command a
//! person typed: Prisma's semantics, the command is its own confirmation), [`Request::upload`]
//! (an artifact upload: writes only where the stage auto-applies), [`Request::manual`] (a
//! person's payload to the function: writes only when it says `confirm`, and on a stage that
//! does not auto-apply only with the `planHash` of a reviewed plan) and [`Request::refused`]
//! (something we will not act on; never writes). Nothing else sets `confirm`.

use crate::error::EngineError;
use crate::outcome::{Action, ResolveKind};

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
    pub fn cli(action: Action, resolve: Option<ResolveTarget>) -> Result<Request, EngineError> {
        Request::checked(action, true, resolve, None)
    }

    /// An artifact upload (S3/EventBridge, directly or through SQS/SNS): a deploy that
    /// applies only where the stage auto-applies.
    pub fn upload(policy: StagePolicy) -> Request {
        Request {
            action: Action::Deploy,
            confirm: policy.auto_apply,
            resolve: None,
            expected_plan: None,
        }
    }

    /// A person's manual payload (a direct invocation or the ECS task's own event). It
    /// writes only with `confirm`; on a stage that does not auto-apply a confirmed deploy
    /// must carry the `planHash` of the plan that was reviewed (the plan's `confirmPayload`),
    /// so that confirming never applies something nobody saw.
    pub fn manual(
        policy: StagePolicy,
        action: Action,
        confirm: bool,
        resolve: Option<ResolveTarget>,
        plan_hash: Option<String>,
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
        Request::checked(action, confirm, resolve, plan_hash)
    }

    /// Something we will not act on, reported as `action`: never writes.
    pub fn refused(action: Action) -> Request {
        Request {
            action,
            confirm: false,
            resolve: None,
            expected_plan: None,
        }
    }

    fn checked(
        action: Action,
        confirm: bool,
        resolve: Option<ResolveTarget>,
        expected_plan: Option<String>,
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
        assert!(Request::upload(CODE).writes());
        assert!(!Request::upload(PROD).writes());
        assert!(
            !Request::manual(CODE, Action::Deploy, false, None, None)
                .unwrap()
                .writes()
        );
        assert!(
            Request::manual(CODE, Action::Deploy, true, None, None)
                .unwrap()
                .writes()
        );
        assert!(!Request::refused(Action::Deploy).writes());
    }

    #[test]
    fn a_stage_without_auto_apply_confirms_only_a_reviewed_plan() {
        let bare = Request::manual(PROD, Action::Deploy, true, None, None).unwrap_err();
        assert!(bare.to_string().contains("planHash"), "{bare}");
        let reviewed =
            Request::manual(PROD, Action::Deploy, true, None, Some("abc".into())).unwrap();
        assert!(reviewed.writes());
        assert_eq!(reviewed.expected_plan.as_deref(), Some("abc"));
        // A plan hash with anything but a confirmed deploy is a mistake, said so.
        assert!(Request::manual(PROD, Action::Deploy, false, None, Some("abc".into())).is_err());
        // Resolve writes history, not an artifact: confirm is enough.
        let target = ResolveTarget::from_flags(Some("m".into()), None).unwrap();
        assert!(
            Request::manual(PROD, Action::Resolve, true, target, None)
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
}
