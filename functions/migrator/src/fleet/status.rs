//! `migrator fleet status --targets FILE`: every target of a fleet compared with the
//! migrations, read-only, a few at a time, a progress line on stderr, one line per target and
//! a summary on stdout. Exit 0 when every target is up to date.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use migrator_engine::artifact::{self, Artifact, Limits};
use migrator_engine::clock::SystemClock;
use migrator_engine::engine::{self, Request, Settings, StagePolicy};
use migrator_engine::error::CliWording;
use migrator_engine::outcome::{Action, Outcome};
use std::sync::Arc;

use super::targets::{self, Target};
use crate::aws::AwsCredentials;
use crate::cli::ArtifactArg;

/// The most targets read at once.
pub const MAX_CONCURRENCY: usize = 64;

#[derive(Debug, Args)]
pub struct FleetStatusArgs {
    /// The fleet's targets: JSON Lines, one target a line (id, engine, host, port, database,
    /// user, schema, auth, secretArn, url), checked like the function checks them.
    #[arg(long, value_name = "FILE")]
    pub targets: PathBuf,
    #[command(flatten)]
    pub artifact: ArtifactArg,
    /// How many targets are read at once (1 to 64): each holds one connection.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64), value_name = "N")]
    pub concurrency: u16,
    /// Print every target's outcome as JSON Lines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs it; `Ok(true)` when every target is up to date.
pub async fn run(args: &FleetStatusArgs) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(&args.targets)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", args.targets.display()))?;
    let targets =
        targets::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.targets.display()))?;
    let artifact = artifact::read_path(&args.artifact.artifact, &Limits::default())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.artifact.artifact.display()))?;
    let needs_aws = targets
        .iter()
        .any(|t| !matches!(t.db.auth, crate::config::DbAuth::Url { .. }));
    let credentials = if needs_aws {
        Some(AwsCredentials::new(&crate::aws::sdk_config().await, None))
    } else {
        None
    };
    let ca = crate::tls::ca_bundle(None)?;
    let total = targets.len();
    let started = Instant::now();
    let mut done = 0usize;
    let mut outcomes: Vec<(Target, Outcome)> = Vec::with_capacity(total);
    let concurrency = usize::from(args.concurrency).clamp(1, MAX_CONCURRENCY);
    let credentials = Arc::new(credentials);
    let ca = Arc::new(ca);
    let mut pending = targets.into_iter();
    // The engine's futures are not `Send`: the reads share this thread (they wait on the network).
    let local = tokio::task::LocalSet::new();
    let mut running = tokio::task::JoinSet::new();
    local
        .run_until(async {
            loop {
                while running.len() < concurrency {
                    let Some(target) = pending.next() else { break };
                    let (artifact, credentials, ca) =
                        (artifact.clone(), credentials.clone(), ca.clone());
                    running.spawn_local(async move {
                        let outcome =
                            status_of(&target, artifact, credentials.as_ref().as_ref(), &ca).await;
                        (target, outcome)
                    });
                }
                let Some(joined) = running.join_next().await else {
                    break;
                };
                outcomes.push(joined?);
                done += 1;
                eprint!(
                    "\rmigrator fleet status: {done}/{total} targets read ({} s)",
                    started.elapsed().as_secs()
                );
                let _ = std::io::stderr().flush();
            }
            Ok::<(), anyhow::Error>(())
        })
        .await?;
    eprintln!();
    outcomes.sort_by_key(|(t, _)| t.line);
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (target, outcome) in &outcomes {
        *counts.entry(outcome.status_text()).or_insert(0) += 1;
        if args.json {
            let mut doc = serde_json::to_value(outcome)?;
            doc["target"] = serde_json::json!({ "line": target.line, "id": target.id });
            println!("{}", serde_json::to_string(&doc)?);
        } else {
            println!("{}", line(target, outcome));
        }
    }
    let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    if !args.json {
        println!("{total} targets: {}", summary.join(", "));
    }
    Ok(outcomes
        .iter()
        .all(|(_, o)| o.status == migrator_engine::outcome::Status::UpToDate))
}

/// `line 7  t07  failed: P3009 …` / `line 1  t01  up-to-date` / `… 2 pending`.
fn line(target: &Target, outcome: &Outcome) -> String {
    let mut text = format!(
        "line {:>4}  {:<24} {}",
        target.line,
        target.id,
        outcome.status_text()
    );
    if !outcome.pending.is_empty() {
        text.push_str(&format!(" ({} pending)", outcome.pending.len()));
    }
    if let Some(e) = &outcome.error {
        let code = e
            .code
            .as_deref()
            .map(|c| format!("{c}: "))
            .unwrap_or_default();
        let first = e.message.lines().next().unwrap_or_default();
        text.push_str(&format!(
            ": {code}{}",
            migrator_engine::text::clip_bytes(first, 200)
        ));
    }
    text
}

/// One target's status (read-only: the status action never writes).
async fn status_of(
    target: &Target,
    artifact: Artifact,
    credentials: Option<&AwsCredentials>,
    ca: &[u8],
) -> Outcome {
    let request = match Request::manual(
        StagePolicy { auto_apply: false },
        Action::Status,
        false,
        None,
        None,
        None,
    ) {
        Ok(request) => request,
        Err(e) => return failed(e),
    };
    let db = match credentials {
        Some(credentials) => {
            crate::handler::database_target(&target.db, credentials, ca, None).await
        }
        None => crate::handler::database_target(&target.db, &NoCredentials, ca, None).await,
    };
    let db = match db {
        Ok(db) => db,
        Err(e) => {
            let mut outcome = Outcome::new(Action::Status, migrator_engine::chrono::Utc::now());
            e.record(&mut outcome, &CliWording);
            return outcome;
        }
    };
    engine::run(
        &request,
        Ok(artifact),
        &db,
        &Settings::default(),
        &SystemClock,
    )
    .await
}

fn failed(e: migrator_engine::error::EngineError) -> Outcome {
    let mut outcome = Outcome::new(Action::Status, migrator_engine::chrono::Utc::now());
    e.record(&mut outcome, &CliWording);
    outcome
}

/// Credentials for a fleet of URL targets only (never asked: `database_target` uses the URL).
struct NoCredentials;

impl crate::ports::Credentials for NoCredentials {
    async fn iam_token(
        &self,
        _: &crate::ports::TokenFor,
    ) -> Result<String, crate::error::EdgeError> {
        Err(crate::error::EdgeError::Credentials {
            reason: "no AWS credentials were loaded".into(),
        })
    }

    async fn database_secret(
        &self,
        _: &str,
    ) -> Result<crate::ports::DbSecret, crate::error::EdgeError> {
        Err(crate::error::EdgeError::Credentials {
            reason: "no AWS credentials were loaded".into(),
        })
    }
}
