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

use crate::render;

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
    init_logs();
    let outcome = run(&cli).await;
    if cli.common.json {
        match serde_json::to_string_pretty(&outcome) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("migrator: cannot write the outcome as JSON: {e}"),
        }
    } else {
        print!("{}", render::text(&outcome));
    }
    if exit_ok(&outcome) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
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

/// Human-readable logs on stderr; `RUST_LOG` overrides the level.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,migrator_engine=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
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
