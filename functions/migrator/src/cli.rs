//! The command line: `deploy`, `plan`, `status`, `resolve`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use migrator_engine::artifact::{self, Limits};
use migrator_engine::clock::SystemClock;
use migrator_engine::dialect::parse_database_url;
use migrator_engine::engine::{self, Request, ResolveTarget, Settings};
use migrator_engine::outcome::{Action, Outcome, ResolveKind};

use anyhow::Context;

use crate::aws::Clients;
use crate::aws::rds_token::{self, TokenRequest};
use crate::config::StageConfig;
use crate::handler::{Handler, Invocation};
use crate::{invoke, render};

/// Applies Prisma migrations with `prisma migrate deploy` semantics.
#[derive(Debug, Parser)]
#[command(name = "migrator", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct Common {
    /// The prisma folder, its migrations folder, or a prisma.zip.
    #[arg(
        long,
        global = true,
        default_value = "prisma/migrations",
        env = "MIGRATOR_ARTIFACT"
    )]
    artifact: PathBuf,
    /// postgresql://…, postgres://…, file:… or sqlite:… (Prisma's `?schema=` is honoured).
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Print the outcome document as JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// How long to wait for the migration lock: `10s`, `500ms`, `2m` or seconds.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    lock_timeout: Duration,
    /// How long one migration statement may wait for a table lock (PostgreSQL
    /// `lock_timeout`, MySQL `lock_wait_timeout`) before the migration is rolled back and
    /// tried again; unset, the server's own limit applies.
    #[arg(long, global = true, value_parser = parse_duration)]
    statement_lock_timeout: Option<Duration>,
    /// Zip safety: at most this many entries.
    #[arg(long, global = true, default_value_t = Limits::default().max_entries)]
    max_entries: usize,
    /// Zip safety: at most this many uncompressed bytes in all.
    #[arg(long, global = true, default_value_t = Limits::default().max_total_bytes)]
    max_total_bytes: u64,
    /// Zip safety: the highest compression ratio an entry (of 1 MiB or more) may have.
    #[arg(long, global = true, default_value_t = Limits::default().max_entry_ratio)]
    max_entry_ratio: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the pending migrations (`prisma migrate deploy`).
    Deploy,
    /// Show what deploy would do; applies nothing.
    Plan,
    /// Compare the migrations with the database; exit 1 unless up to date.
    Status,
    /// Record a migration as applied or rolled back, without running it (`prisma migrate resolve`).
    Resolve(ResolveArgs),
    /// Handle one event like the Lambda does (the ECS task's command); configuration from the environment.
    HandleEvent(HandleEventArgs),
    /// Send the manual payload to the deployed function and print its outcome.
    Invoke(InvokeCommand),
    /// Print an RDS IAM auth token, like `aws rds generate-db-auth-token`.
    AuthToken(AuthTokenArgs),
}

#[derive(Debug, Args)]
struct HandleEventArgs {
    /// A file holding the event JSON.
    #[arg(long, conflicts_with = "event_json")]
    event_file: Option<PathBuf>,
    /// The event JSON itself. Without either, `$MIGRATOR_EVENT`.
    #[arg(long)]
    event_json: Option<String>,
}

#[derive(Debug, Args)]
struct InvokeCommand {
    /// The function's name or ARN.
    #[arg(long)]
    function: String,
    /// Apply (deploy) or record (resolve). Without it the function only reports the plan.
    #[arg(long)]
    confirm: bool,
    #[arg(long, value_enum, default_value = "deploy")]
    action: InvokeAction,
    /// s3://bucket/key of the artifact (default: the stage's configured key, latest version).
    #[arg(long)]
    object: Option<String>,
    /// The object version to use.
    #[arg(long, requires = "object")]
    version_id: Option<String>,
    /// With --action resolve: record NAME as applied.
    #[arg(long, value_name = "NAME", conflicts_with = "rolled_back")]
    applied: Option<String>,
    /// With --action resolve: record the failed NAME as rolled back.
    #[arg(long, value_name = "NAME")]
    rolled_back: Option<String>,
    /// The Lambda API endpoint (a local emulator).
    #[arg(long)]
    endpoint_url: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum InvokeAction {
    Deploy,
    Plan,
    Status,
    Resolve,
}

#[derive(Debug, Args)]
struct AuthTokenArgs {
    #[arg(long)]
    host: String,
    #[arg(long)]
    port: u16,
    #[arg(long)]
    user: String,
    /// Default: the SDK's region (AWS_REGION, profile).
    #[arg(long)]
    region: Option<String>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct ResolveArgs {
    /// Record NAME as applied (baselining, or after finishing it by hand).
    #[arg(long, value_name = "NAME")]
    applied: Option<String>,
    /// Record the failed NAME as rolled back, so that deploy applies it again.
    #[arg(long, value_name = "NAME")]
    rolled_back: Option<String>,
}

pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_logs = matches!(cli.command, Command::HandleEvent(_));
    init_logs(json_logs);
    let result = match &cli.command {
        Command::HandleEvent(args) => handle_event(args).await,
        Command::Invoke(args) => run_invoke(args, cli.common.json).await,
        Command::AuthToken(args) => auth_token(args).await,
        _ => Ok(run_engine(&cli).await),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("migrator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// deploy, plan, status, resolve: prints the outcome, returns whether it is a success.
async fn run_engine(cli: &Cli) -> bool {
    let outcome = run(cli).await;
    if cli.common.json {
        match serde_json::to_string_pretty(&outcome) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("migrator: cannot write the outcome as JSON: {e}"),
        }
    } else {
        print!("{}", render::text(&outcome));
    }
    exit_ok(&outcome)
}

/// The ECS task: one event, configuration from the environment, exit 0 when every outcome
/// succeeded and was published.
async fn handle_event(args: &HandleEventArgs) -> anyhow::Result<bool> {
    let text = match (&args.event_file, &args.event_json) {
        (Some(path), _) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, Some(json)) => json.clone(),
        (None, None) => std::env::var("MIGRATOR_EVENT")
            .context("no event: pass --event-file, --event-json or set MIGRATOR_EVENT")?,
    };
    let event: serde_json::Value = serde_json::from_str(&text).context("the event is not JSON")?;
    let config = StageConfig::from_env()?;
    let handler = Handler::new(config, Clients::new(crate::aws::sdk_config().await))?;
    let response = handler.handle(&event, &Invocation::default()).await;
    println!("{}", serde_json::to_string_pretty(&response.body)?);
    Ok(response.publish_errors.is_empty() && response.outcomes.iter().all(|o| o.is_success()))
}

async fn run_invoke(args: &InvokeCommand, json: bool) -> anyhow::Result<bool> {
    let action = match args.action {
        InvokeAction::Deploy => Action::Deploy,
        InvokeAction::Plan => Action::Plan,
        InvokeAction::Status => Action::Status,
        InvokeAction::Resolve => Action::Resolve,
    };
    let resolve = match (&args.applied, &args.rolled_back) {
        (Some(name), _) => Some((name.clone(), true)),
        (None, Some(name)) => Some((name.clone(), false)),
        (None, None) => None,
    };
    if (action == Action::Resolve) != resolve.is_some() {
        anyhow::bail!(
            "--applied NAME or --rolled-back NAME go with --action resolve, and only with it"
        );
    }
    invoke::invoke(invoke::InvokeArgs {
        function: args.function.clone(),
        action,
        confirm: args.confirm,
        object: args.object.clone(),
        version_id: args.version_id.clone(),
        resolve,
        endpoint_url: args.endpoint_url.clone(),
        json,
    })
    .await
}

async fn auth_token(args: &AuthTokenArgs) -> anyhow::Result<bool> {
    use aws_credential_types::provider::ProvideCredentials;
    let sdk = crate::aws::sdk_config().await;
    let region = args
        .region
        .clone()
        .or_else(|| sdk.region().map(|r| r.to_string()))
        .context("no region: pass --region or set AWS_REGION")?;
    let credentials = sdk
        .credentials_provider()
        .context("no AWS credentials provider")?
        .provide_credentials()
        .await
        .context("no AWS credentials")?;
    let request = TokenRequest {
        host: &args.host,
        port: args.port,
        user: &args.user,
        region: &region,
    };
    println!(
        "{}",
        rds_token::generate(&request, &credentials, std::time::SystemTime::now())?
    );
    Ok(true)
}

async fn run(cli: &Cli) -> Outcome {
    let request = request(&cli.command);
    let limits = Limits {
        max_entries: cli.common.max_entries,
        max_total_bytes: cli.common.max_total_bytes,
        max_entry_ratio: cli.common.max_entry_ratio,
        ..Limits::default()
    };
    let settings = Settings {
        lock_wait: cli.common.lock_timeout,
        statement_lock_timeout: cli.common.statement_lock_timeout,
        ..Settings::default()
    }
    .with_prisma_env();
    let target = match parse_database_url(cli.common.database_url.as_deref().unwrap_or_default()) {
        Ok(target) => target,
        Err(e) => {
            let mut outcome = Outcome::new(request.action, chrono_now());
            outcome.fail_with(&e);
            return outcome;
        }
    };
    let artifact = artifact::read_path(&cli.common.artifact, &limits);
    engine::run(&request, artifact, &target, &settings, &SystemClock).await
}

fn request(command: &Command) -> Request {
    match command {
        Command::HandleEvent(_) | Command::Invoke(_) | Command::AuthToken(_) => {
            unreachable!("handled before the engine")
        }
        Command::Deploy => Request::new(Action::Deploy),
        Command::Plan => Request::new(Action::Plan),
        Command::Status => Request::new(Action::Status),
        Command::Resolve(args) => {
            let (name, kind) = match (&args.applied, &args.rolled_back) {
                (Some(name), _) => (name.clone(), ResolveKind::Applied),
                (None, Some(name)) => (name.clone(), ResolveKind::RolledBack),
                // clap's group makes exactly one of the two required.
                (None, None) => (String::new(), ResolveKind::Applied),
            };
            Request {
                resolve: Some(ResolveTarget { name, kind }),
                ..Request::new(Action::Resolve)
            }
        }
    }
}

/// `status` is clean only when up to date without drift; other commands when they succeeded.
fn exit_ok(outcome: &Outcome) -> bool {
    match outcome.action {
        Action::Status => {
            outcome.status == migrator_engine::outcome::Status::UpToDate && outcome.drift.is_empty()
        }
        _ => outcome.is_success(),
    }
}

fn chrono_now() -> migrator_engine::chrono::DateTime<migrator_engine::chrono::Utc> {
    use migrator_engine::clock::Clock;
    SystemClock.now()
}

/// Logs on stderr: human-readable for people, JSON for the ECS task (and the Lambda, see
/// `main`). `RUST_LOG` overrides the level.
pub fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if json {
            "warn,migrator=info,migrator_engine=info"
        } else {
            "error,migrator_engine=info"
        })
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .try_init()
    };
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}` (use ms, s or m)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn resolve_needs_exactly_one_flag() {
        assert!(Cli::try_parse_from(["migrator", "resolve"]).is_err());
        assert!(
            Cli::try_parse_from([
                "migrator",
                "resolve",
                "--applied",
                "a",
                "--rolled-back",
                "b"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["migrator", "resolve", "--rolled-back", "b"]).is_ok());
    }
}
