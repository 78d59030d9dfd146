//! The command line: `deploy`, `plan`, `status`, `resolve` (the engine), `handle-event` (the ECS
//! task), `invoke` (the deployed function) and `auth-token`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use migrator_engine::artifact::{self, Limits};
use migrator_engine::clock::SystemClock;
use migrator_engine::dialect::parse_database_url;
use migrator_engine::engine::{self, Request, ResolveTarget, Settings};
use migrator_engine::error::{CliWording, EngineError};
use migrator_engine::outcome::{Action, Outcome};
use migrator_engine::preflight::{BlockOn, PreflightSettings};

use anyhow::Context;

use crate::aws::AwsCredentials;
use crate::config::StageConfig;
use crate::duration::parse_duration;
use crate::handler::{Handler, Invocation};
use crate::ports::TokenFor;
use crate::{invoke, render};

/// Applies Prisma migrations with `prisma migrate deploy` semantics.
#[derive(Debug, Parser)]
#[command(name = "migrator", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--artifact`, as `deploy`, `plan`, `status`, `resolve` and `lint` read it: one definition,
/// one default, one environment variable.
#[derive(Debug, Args)]
pub(crate) struct ArtifactArg {
    /// The prisma folder, its migrations folder, or a prisma.zip.
    #[arg(
        long,
        default_value = "prisma/migrations",
        env = "MIGRATOR_ARTIFACT",
        value_name = "PATH"
    )]
    pub(crate) artifact: PathBuf,
}

/// What deploy, plan, status and resolve work on, and how they report. Only these commands
/// take these options: `handle-event` is configured by the environment like the function,
/// `invoke` talks to the function, `auth-token` to nothing but the credentials.
#[derive(Debug, Args)]
struct EngineArgs {
    #[command(flatten)]
    artifact: ArtifactArg,
    /// postgresql://…, postgres://…, mysql://…, file:… or sqlite:… (Prisma's `?schema=` is
    /// honoured on PostgreSQL). Prefer the environment variable: a command line is visible to
    /// other users of the machine.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    database_url: Option<String>,
    /// Print the outcome document as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// How long to wait for the migration lock (SQLite: for the database file): `10s`,
    /// `1.5s`, `500ms`, `2m` or seconds. The default is Prisma's (`DEFAULT_LOCK_WAIT`).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    lock_timeout: Duration,
    /// How long one migration statement may wait for a table lock (PostgreSQL
    /// `lock_timeout`, MySQL `lock_wait_timeout`) before the migration is rolled back and
    /// tried again; unset, the server's own limit applies.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    statement_lock_timeout: Option<Duration>,
    /// Zip safety: at most this many entries.
    #[arg(long, default_value_t = Limits::default().max_entries, value_name = "N")]
    max_entries: usize,
    /// Zip safety: at most this many uncompressed bytes in all.
    #[arg(long, default_value_t = Limits::default().max_total_bytes, value_name = "N")]
    max_total_bytes: u64,
    /// Zip safety: the highest compression ratio an entry (of 1 MiB or more) may have.
    #[arg(long, default_value_t = Limits::default().max_entry_ratio, value_name = "N")]
    max_entry_ratio: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the pending migrations (`prisma migrate deploy`).
    Deploy(DeployCommand),
    /// Show what deploy would do; applies nothing.
    Plan(PlanCommand),
    /// Compare the migrations with the database; exit 1 unless up to date.
    Status(EngineArgs),
    /// Record a migration as applied or rolled back, without running it (`prisma migrate resolve`).
    Resolve(ResolveCommand),
    /// Handle one event like the Lambda does (the ECS task's command); configuration from the environment.
    #[command(after_help = HANDLE_EVENT_ENV)]
    HandleEvent(HandleEventArgs),
    /// Send the manual payload to the deployed function and print its outcome.
    Invoke(InvokeCommand),
    /// Print an RDS IAM auth token, like `aws rds generate-db-auth-token`.
    AuthToken(AuthTokenArgs),
    /// Check the migrations against the preflight rules, without a database (exit 1 on findings, 2 when unreadable).
    Lint(crate::lint::LintArgs),
}

const HANDLE_EVENT_ENV: &str = "\
Configuration comes from the environment, exactly as in the Lambda function: DB_AUTH and \
DATABASE_URL or DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_SECRET_ARN, ARTIFACT_BUCKET, ARTIFACT_KEY, \
TOPIC_ARN, STAGE, AUTO_APPLY, MAX_DURATION… (see the README). --database-url and --artifact \
are refused here: to deploy a local artifact, use `migrator deploy`.";

#[derive(Debug, Args)]
struct HandleEventArgs {
    /// A file holding the event JSON.
    #[arg(long, conflicts_with = "event_json", value_name = "PATH")]
    event_file: Option<PathBuf>,
    /// The event JSON itself. Without either, `$MIGRATOR_EVENT`.
    #[arg(long, value_name = "JSON")]
    event_json: Option<String>,
    /// Refused (see below); accepted by the parser only to say so clearly.
    #[arg(long, hide = true, value_name = "URL")]
    database_url: Option<String>,
    /// Refused (see below); accepted by the parser only to say so clearly.
    #[arg(long, hide = true, value_name = "PATH")]
    artifact: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct InvokeCommand {
    /// The function's name or ARN.
    #[arg(long)]
    function: String,
    /// Apply (deploy) or record (resolve). Without it the function only reports the plan.
    #[arg(long)]
    confirm: bool,
    /// What the function does (the payload's `action`).
    #[arg(long, default_value = "deploy", value_parser = parse_action, value_name = "deploy|plan|status|resolve")]
    action: Action,
    /// s3://bucket/key of the artifact (default: the stage's configured key, latest version).
    #[arg(long)]
    object: Option<String>,
    /// The object version to use.
    #[arg(long, requires = "object")]
    version_id: Option<String>,
    /// With --confirm: the planHash of the plan being confirmed (from its confirmPayload).
    #[arg(long, requires = "confirm")]
    plan_hash: Option<String>,
    /// With --confirm: apply despite this preflight finding (`rule@migration`; repeat it).
    #[arg(long, value_name = "RULE@MIGRATION", requires = "confirm")]
    accept: Vec<String>,
    /// Who invokes, recorded in the outcome as `invokedBy` (declared, not verified; default: the OS user).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// With --action resolve: record NAME as applied.
    #[arg(long, value_name = "NAME", conflicts_with = "rolled_back")]
    applied: Option<String>,
    /// With --action resolve: record the failed NAME as rolled back.
    #[arg(long, value_name = "NAME")]
    rolled_back: Option<String>,
    /// The Lambda API endpoint (a local emulator).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Print the function's outcome document as JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `--action`: the payload's names (`Action::parse`, the one mapping).
fn parse_action(name: &str) -> Result<Action, String> {
    Action::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        format!("`{name}` is not one of {}", names.join(", "))
    })
}

#[derive(Debug, Args)]
struct AuthTokenArgs {
    /// The database endpoint's host name (the token is only valid for this exact name).
    #[arg(long)]
    host: String,
    /// The database port (5432, 3306 …).
    #[arg(long)]
    port: u16,
    /// The database user the token logs in as (granted `rds_iam` / `AWSAuthenticationPlugin`).
    #[arg(long)]
    user: String,
    /// Default: the SDK's region (AWS_REGION, profile).
    #[arg(long)]
    region: Option<String>,
}

#[derive(Debug, Args)]
struct PlanCommand {
    /// Skip the preflight findings: the benchmark's baseline for what they cost (hidden).
    #[arg(long, hide = true)]
    no_preflight: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Debug, Args)]
struct DeployCommand {
    /// Refuse to apply anything when a preflight finding is at least this severe.
    #[arg(long, value_enum, default_value = "never")]
    block_on: BlockOnArg,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BlockOnArg {
    Error,
    Warning,
    Never,
}

#[derive(Debug, Args)]
struct ResolveCommand {
    #[command(flatten)]
    target: ResolveArgs,
    #[command(flatten)]
    engine: EngineArgs,
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
    let cli = match parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let json_logs = matches!(cli.command, Command::HandleEvent(_));
    init_logs(json_logs);
    if let Command::Lint(args) = &cli.command {
        return crate::lint::run(args);
    }
    let result = match &cli.command {
        Command::HandleEvent(args) => handle_event(args).await,
        Command::Invoke(args) => run_invoke(args, args.json).await,
        Command::AuthToken(args) => auth_token(args).await,
        Command::Plan(PlanCommand { engine, .. }) | Command::Status(engine) => {
            Ok(run_engine(&cli.command, engine).await)
        }
        Command::Deploy(args) => Ok(run_engine(&cli.command, &args.engine).await),
        Command::Lint(_) => unreachable!("handled above"),
        Command::Resolve(args) => Ok(run_engine(&cli.command, &args.engine).await),
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

/// Parses the command line. Usage errors are printed with every credential in them masked
/// (clap quotes the offending argument, which may be a database URL) and exit 2; `--help` and
/// `--version` print as usual.
fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, ExitCode> {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let error = match Cli::try_parse_from(&args) {
        Ok(cli) => return refuse_misplaced_options(cli),
        Err(error) => error,
    };
    if !error.use_stderr() {
        // --help, --version: nothing of the user's is echoed.
        let _ = error.print();
        return Err(ExitCode::SUCCESS);
    }
    let given: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    eprint!("{}", redact::in_text(&error.render().to_string(), &given));
    Err(ExitCode::from(2))
}

/// `handle-event` takes its configuration from the environment only: a database URL or an
/// artifact on its command line would silently mean nothing, so they are usage errors.
fn refuse_misplaced_options(cli: Cli) -> Result<Cli, ExitCode> {
    if let Command::HandleEvent(args) = &cli.command {
        let given: Vec<&str> = [
            args.database_url.as_ref().map(|_| "--database-url"),
            args.artifact.as_ref().map(|_| "--artifact"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !given.is_empty() {
            eprintln!(
                "error: handle-event does not take {}: it is configured by the environment, like the Lambda function (DATABASE_URL or DB_*, ARTIFACT_BUCKET, ARTIFACT_KEY, …; see `migrator handle-event --help`). To deploy a local artifact, use `migrator deploy --artifact PATH --database-url URL`.",
                given.join(" or ")
            );
            return Err(ExitCode::from(2));
        }
    }
    Ok(cli)
}

/// deploy, plan, status, resolve: prints the outcome, returns whether it is a success.
async fn run_engine(command: &Command, engine: &EngineArgs) -> bool {
    let outcome = run(command, engine).await;
    if engine.json {
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
    // The bytes as they are: the handler reads them strictly and answers anything else with
    // a `rejected` outcome, logged and published like any other.
    let text: Vec<u8> = match (&args.event_file, &args.event_json) {
        (Some(path), _) => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, Some(json)) => json.clone().into_bytes(),
        (None, None) => std::env::var_os("MIGRATOR_EVENT")
            .context("no event: pass --event-file, --event-json or set MIGRATOR_EVENT")?
            .into_encoded_bytes(),
    };
    let config = StageConfig::from_env()?;
    let edges = crate::aws::edges(&crate::aws::sdk_config().await, &config);
    let handler = Handler::new(config, edges)?;
    let response = handler.handle(&text, &Invocation::default()).await;
    println!("{}", serde_json::to_string_pretty(&response.body)?);
    Ok(response.publish_errors.is_empty() && response.outcomes.iter().all(|o| o.is_success()))
}

async fn run_invoke(args: &InvokeCommand, json: bool) -> anyhow::Result<bool> {
    let action = args.action;
    let resolve = ResolveTarget::from_flags(args.applied.clone(), args.rolled_back.clone())
        .map_err(|e| anyhow::anyhow!("--applied / --rolled-back: {e}"))?;
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
        plan_hash: args.plan_hash.clone(),
        accept: args.accept.clone(),
        by: args.by.clone(),
        endpoint_url: args.endpoint_url.clone(),
        json,
    })
    .await
}

async fn auth_token(args: &AuthTokenArgs) -> anyhow::Result<bool> {
    let sdk = crate::aws::sdk_config().await;
    let token = TokenFor {
        host: args.host.clone(),
        port: args.port,
        user: args.user.clone(),
    };
    println!(
        "{}",
        AwsCredentials::new(&sdk, args.region.clone())
            .iam_token(&token)
            .await?
    );
    Ok(true)
}

async fn run(command: &Command, engine: &EngineArgs) -> Outcome {
    let request = match request(command) {
        Ok(request) => request,
        Err(e) => {
            let mut outcome = Outcome::new(action(command), chrono_now());
            e.record(&mut outcome, &CliWording);
            return outcome;
        }
    };
    let limits = Limits {
        max_entries: engine.max_entries,
        max_total_bytes: engine.max_total_bytes,
        max_entry_ratio: engine.max_entry_ratio,
        ..Limits::default()
    };
    let settings = Settings {
        lock_wait: engine.lock_timeout,
        preflight: preflight(command),
        statement_lock_timeout: engine.statement_lock_timeout,
        ..Settings::default()
    }
    .with_prisma_env();
    let target = match parse_database_url(engine.database_url.as_deref().unwrap_or_default()) {
        Ok(target) => target,
        Err(e) => {
            let mut outcome = Outcome::new(request.action, chrono_now());
            e.record(&mut outcome, &CliWording);
            return outcome;
        }
    };
    let artifact = artifact::read_path(&engine.artifact.artifact, &limits);
    engine::run(&request, artifact, &target, &settings, &SystemClock).await
}

/// `plan` always reports findings from the live data; `deploy` runs preflight only when it may
/// block (`--block-on never`, the default, keeps it a drop-in for `prisma migrate deploy`).
fn preflight(command: &Command) -> Option<PreflightSettings> {
    match command {
        Command::Plan(args) if args.no_preflight => None,
        Command::Plan(_) => Some(PreflightSettings::default()),
        Command::Deploy(args) => {
            let block_on = match args.block_on {
                BlockOnArg::Error => BlockOn::Error,
                BlockOnArg::Warning => BlockOn::Warning,
                BlockOnArg::Never => return None,
            };
            Some(PreflightSettings {
                block_on,
                ..PreflightSettings::default()
            })
        }
        _ => None,
    }
}

fn action(command: &Command) -> Action {
    match command {
        Command::Plan(_) => Action::Plan,
        Command::Status(_) => Action::Status,
        Command::Resolve(_) => Action::Resolve,
        _ => Action::Deploy,
    }
}

/// The CLI's request: the command is its own confirmation (`Request::cli`).
fn request(command: &Command) -> Result<Request, EngineError> {
    let resolve = match command {
        Command::HandleEvent(_) | Command::Invoke(_) | Command::AuthToken(_) | Command::Lint(_) => {
            unreachable!("handled before the engine")
        }
        // clap's group makes exactly one of the two required.
        Command::Resolve(ResolveCommand { target: args, .. }) => {
            ResolveTarget::from_flags(args.applied.clone(), args.rolled_back.clone())
                .map_err(|reason| EngineError::InvalidRequest { reason })?
        }
        Command::Deploy(_) | Command::Plan(_) | Command::Status(_) => None,
    };
    Request::cli(action(command), resolve)
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
    crate::logging::init(json);
}

/// Masking credentials in text that may quote what the user typed (clap's usage errors).
mod redact {
    /// Query or key=value names whose values are secrets (case-insensitive substrings):
    /// `password`, `sslpassword`, presigned URLs' `X-Amz-Signature`/`-Credential`/`-Security-Token`.
    const SECRET_KEYS: [&str; 5] = ["password", "secret", "token", "signature", "credential"];

    /// `text` with every credential masked: each `given` argument that holds one is replaced
    /// by its masked form wherever it appears (whatever characters its password has), then
    /// whatever URL user-info or secret `key=value` is left in the text is masked as well.
    pub fn in_text(text: &str, given: &[String]) -> String {
        let mut out = text.to_string();
        for arg in given {
            let masked = mask(arg, |_| false);
            if masked != *arg {
                out = out.replace(arg.as_str(), &masked);
            }
        }
        mask(&out, |c| c.is_whitespace() || matches!(c, '\'' | '"' | '`'))
    }

    /// Masks `scheme://user:password@` (up to the last `@` before `ends`) and secret values.
    fn mask(text: &str, ends: impl Fn(char) -> bool + Copy) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("://") {
            let (head, tail) = rest.split_at(i + 3);
            out.push_str(head);
            let end = tail.find(ends).unwrap_or(tail.len());
            let (authority_and_more, after) = tail.split_at(end);
            match authority_and_more.rfind('@') {
                Some(at) => {
                    out.push_str("***");
                    out.push_str(&authority_and_more[at..]);
                }
                None => out.push_str(authority_and_more),
            }
            rest = after;
        }
        out.push_str(rest);
        mask_values(&out, ends)
    }

    /// `…password=VALUE…` → `…password=***…` for every secret key.
    fn mask_values(text: &str, ends: impl Fn(char) -> bool) -> String {
        let lower = text.to_ascii_lowercase();
        let mut out = String::with_capacity(text.len());
        let mut from = 0;
        let mut i = 0;
        while let Some(eq) = lower[i..].find('=').map(|e| e + i) {
            let key_start = lower[..eq]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .map_or(0, |k| k + 1);
            let key = &lower[key_start..eq];
            if SECRET_KEYS.iter().any(|s| key.contains(s)) {
                let value_end = text[eq + 1..]
                    .find(|c: char| c == '&' || ends(c))
                    .map_or(text.len(), |v| v + eq + 1);
                out.push_str(&text[from..=eq]);
                if value_end > eq + 1 {
                    out.push_str("***");
                }
                from = value_end;
                i = value_end.max(eq + 1);
            } else {
                i = eq + 1;
            }
        }
        out.push_str(&text[from..]);
        out
    }

    #[cfg(test)]
    mod tests {
        use super::in_text;

        fn given(args: &[&str]) -> Vec<String> {
            args.iter().map(|a| a.to_string()).collect()
        }

        #[test]
        fn urls_lose_their_user_info_and_secret_values() {
            for (text, want) in [
                (
                    "unexpected argument 'postgresql://u:SECRET@h/db' found",
                    "unexpected argument 'postgresql://***@h/db' found",
                ),
                ("mysql://root:SECRET@h:3306/db", "mysql://***@h:3306/db"),
                (
                    "postgresql://h/db?sslmode=require&password=SECRET",
                    "postgresql://h/db?sslmode=require&password=***",
                ),
                (
                    "host=h password=SECRET dbname=x",
                    "host=h password=*** dbname=x",
                ),
                (
                    "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA&X-Amz-Signature=abc&x=1",
                    "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&x=1",
                ),
                ("file:./dev.db and 10s", "file:./dev.db and 10s"),
            ] {
                assert_eq!(in_text(text, &[]), want);
            }
        }

        #[test]
        fn a_given_argument_is_masked_whatever_its_password_holds() {
            let arg = "postgresql://u:pa ss'w@rd@h/db";
            let text = format!("error: unexpected argument '{arg}' found\n  tip: '-- {arg}'");
            let out = in_text(&text, &given(&["deploy", arg]));
            assert!(!out.contains("pa ss") && !out.contains("ss'w@rd"), "{out}");
            assert_eq!(out.matches("postgresql://***@h/db").count(), 2, "{out}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_lock_wait_defaults_to_prismas() {
        let Command::Plan(PlanCommand { engine, .. }) =
            Cli::try_parse_from(["migrator", "plan"]).unwrap().command
        else {
            panic!("plan parses as Plan");
        };
        assert_eq!(
            engine.lock_timeout,
            migrator_engine::dialect::DEFAULT_LOCK_WAIT
        );
    }
}
