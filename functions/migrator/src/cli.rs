//! The command line: `deploy`, `plan`, `status`, `resolve` (the engine), `handle-event` (the ECS
//! task), `invoke` (the deployed function), `auth-token`, `lint`, and `completions` / `man`
//! (generated from this definition).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use migrator_engine::artifact::{self, Limits};
use migrator_engine::clock::SystemClock;
use migrator_engine::dialect::parse_database_url;
use migrator_engine::engine::{self, InvokedBy, InvokerSource, Request, ResolveTarget, Settings};
use migrator_engine::error::{CliWording, EngineError};
use migrator_engine::outcome::{Action, Outcome};
use migrator_engine::preflight::{BlockOn, PreflightSettings};

use crate::project::Project;

use anyhow::Context;

use crate::aws::AwsCredentials;
use crate::config::StageConfig;
use crate::duration::parse_duration;
use crate::handler::{Handler, Invocation};
use crate::ports::TokenFor;
use crate::{invoke, render};

/// Applies Prisma migrations with `prisma migrate deploy` semantics.
#[derive(Debug, Parser)]
#[command(name = "migrator", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

const AFTER_HELP: &str = "\
Every command but handle-event reads .env in the working directory (the real environment \
wins); deploy, plan, status, resolve and lint also read prisma.config.ts there \
(migrations.path, datasource.url). NO_COLOR turns colour off. The book: docs/ (make docs).";

/// `--artifact`, as `deploy`, `plan`, `status`, `resolve` and `lint` read it: one definition,
/// one default, one environment variable.
#[derive(Debug, Args)]
pub(crate) struct ArtifactArg {
    /// The prisma folder, its migrations folder, or a prisma.zip. Default: prisma.config.ts's
    /// migrations.path when the working directory has one, else prisma/migrations.
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
    /// honoured on PostgreSQL). Prefer the environment variable (or .env, or the variable
    /// prisma.config.ts names): a command line is visible to other users of the machine.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    database_url: Option<String>,
    /// Print the outcome document as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// How long to wait for the migration lock (SQLite: for the database file): `10s`,
    /// `1.5s`, `500ms`, `2m` or seconds. The default is Prisma's (`DEFAULT_LOCK_WAIT`).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    lock_timeout: Duration,
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
    /// Show what deploy would do, with its preflight findings; applies nothing.
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
    /// A fleet of databases (one target a line): `fleet status --targets FILE`.
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Check the migrations against the preflight rules, without a database (exit 1 on findings, 2 when unreadable).
    Lint(crate::lint::LintArgs),
    /// Print a shell completion script (e.g. `migrator completions bash > /etc/bash_completion.d/migrator`).
    Completions(CompletionsArgs),
    /// Print the man page, migrator(1), as roff (`migrator man > migrator.1; man ./migrator.1`).
    Man,
}

#[derive(Debug, Subcommand)]
enum FleetCommand {
    /// Compare every target with the migrations (read-only, a few at a time, a progress line on stderr); exit 1 unless all are up to date.
    Status(crate::fleet::status::FleetStatusArgs),
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: crate::completions::Shell,
}

const HANDLE_EVENT_ENV: &str = "\
Configuration comes from the environment, exactly as in the Lambda function: DB_AUTH and \
DATABASE_URL or DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_SECRET_ARN, ARTIFACT_BUCKET, ARTIFACT_KEY, \
TOPIC_ARN, STAGE, AUTO_APPLY, MAX_DURATION… (see the book's Configuration chapter). It reads \
no .env. --database-url and --artifact \
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
    /// Who invokes, recorded in the outcome as `invokedBy` (declared, not verified). Default: the
    /// ARN of the AWS credentials that invoke (STS GetCallerIdentity; not asked with
    /// --endpoint-url), else the OS user (USER, LOGNAME).
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
    /// Exit 1 when a preflight finding (not allowed inline) is at least this severe: the
    /// same words and the same rule as `deploy --block-on`.
    #[arg(long, value_enum, default_value = "never", value_name = "SEVERITY")]
    fail_on: BlockOnArg,
    /// Skip the preflight findings: the benchmark's baseline for what they cost (hidden).
    #[arg(long, hide = true)]
    no_preflight: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Debug, Args)]
struct DeployCommand {
    /// Refuse to apply anything when a preflight finding is at least this severe (`never`, the
    /// default, runs no preflight: a drop-in for `prisma migrate deploy`).
    #[arg(long, value_enum, default_value = "never", value_name = "SEVERITY")]
    block_on: BlockOnArg,
    /// With --block-on: apply despite this preflight finding (`rule@migration`, as the
    /// blocked outcome lists it; repeat it). Recorded in the outcome's `accepted`, with who
    /// accepted it.
    #[arg(long, value_name = "RULE@MIGRATION", value_parser = parse_accept)]
    accept: Vec<String>,
    /// Who deploys, recorded in the outcome as `invokedBy` (declared, not verified). Default:
    /// the OS user (USER, LOGNAME); --accept needs one of the two.
    #[arg(long, value_name = "NAME", value_parser = parse_by)]
    by: Option<String>,
    /// How long one migration statement may wait for a table lock (PostgreSQL
    /// `lock_timeout`, MySQL `lock_wait_timeout`) before the migration is rolled back and
    /// tried again; unset, the server's own limit applies.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    statement_lock_timeout: Option<Duration>,
    #[command(flatten)]
    engine: EngineArgs,
}

/// `--accept`: `rule@migration`, as the payload's `accept` entries.
fn parse_accept(text: &str) -> Result<String, String> {
    let text = text.trim();
    if crate::payload::is_accept_entry(text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{}` is not `rule@migration` (e.g. set-not-null@20240301120000_require_name; at most 300 bytes, no control or invisible characters)",
            crate::render::escape::plain(text)
        ))
    }
}

/// `--by`: the payload's `by` rule ([`crate::payload::is_name`]).
fn parse_by(text: &str) -> Result<String, String> {
    let text = text.trim();
    if !crate::payload::is_name(text, crate::payload::MAX_BY) {
        return Err(format!(
            "names who deploys: 1 to {} bytes with a letter or digit, no control or invisible characters",
            crate::payload::MAX_BY
        ));
    }
    Ok(text.to_string())
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

/// Where `--artifact` and `--database-url` came from (the command line, the environment or
/// clap's default): the project's files decide only below what the person gave.
#[derive(Debug, Default, Clone, Copy)]
struct Sources {
    artifact: Option<ValueSource>,
    database_url: Option<ValueSource>,
}

pub async fn main() -> ExitCode {
    let (cli, sources) = match parse(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let json_logs = matches!(cli.command, Command::HandleEvent(_));
    init_logs(json_logs);
    let result = match &cli.command {
        Command::Lint(args) => {
            let artifact = std::env::current_dir()
                .map_err(|e| format!("the working directory: {e}"))
                .and_then(|cwd| Project::load(&cwd).map_err(|e| e.to_string()))
                .and_then(|project| {
                    project
                        .artifact(&args.artifact().artifact, sources.artifact)
                        .map_err(|e| e.to_string())
                });
            return match artifact {
                Ok(artifact) => crate::lint::run(args, &artifact),
                Err(message) => {
                    eprintln!("migrator lint: {message}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Completions(args) => crate::completions::completions(args.shell)
            .map(|()| true)
            .map_err(Into::into),
        Command::Man => crate::completions::man().map(|()| true).map_err(Into::into),
        Command::HandleEvent(args) => handle_event(args).await,
        // Boxed: its futures nest deep enough to overflow the layout of `main` inline. A
        // targets file or an artifact that cannot be read is exit 2, like lint's artifact.
        Command::Fleet(FleetCommand::Status(args)) => {
            return match Box::pin(crate::fleet::status::run(args)).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("migrator fleet status: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Invoke(args) => run_invoke(args, args.json).await,
        Command::AuthToken(args) => auth_token(args).await,
        Command::Plan(PlanCommand { engine, .. })
        | Command::Status(engine)
        | Command::Deploy(DeployCommand { engine, .. })
        | Command::Resolve(ResolveCommand { engine, .. }) => {
            let inputs = match Inputs::resolve(&cli.command, engine, sources) {
                Ok(inputs) => inputs,
                Err(message) => {
                    eprintln!("migrator: {message}");
                    return ExitCode::from(2);
                }
            };
            Ok(run_engine(&cli.command, engine, &inputs).await)
        }
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
fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<(Cli, Sources), ExitCode> {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let command = Cli::command().color(crate::colour::clap_choice());
    let error = match command
        .try_get_matches_from(&args)
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, sources(&matches))))
    {
        Ok((cli, sources)) => return refuse_misplaced_options(cli).map(|cli| (cli, sources)),
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
    let rendered = if crate::colour::on_stderr() {
        error.render().ansi().to_string()
    } else {
        error.render().to_string()
    };
    eprint!("{}", redact::in_text(&rendered, &given));
    Err(ExitCode::from(2))
}

fn sources(matches: &ArgMatches) -> Sources {
    match matches.subcommand() {
        Some(("deploy" | "plan" | "status" | "resolve", sub)) => Sources {
            artifact: sub.value_source("artifact"),
            database_url: sub.value_source("database_url"),
        },
        Some(("lint", sub)) => Sources {
            artifact: sub.value_source("artifact"),
            database_url: None,
        },
        _ => Sources::default(),
    }
}

/// `handle-event` takes its configuration from the environment only: a database URL or an
/// artifact on its command line would silently mean nothing, so they are usage errors. And
/// `deploy --accept` means something only where preflight may block.
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
    if let Command::Deploy(args) = &cli.command
        && !args.accept.is_empty()
        && args.block_on == BlockOnArg::Never
    {
        eprintln!(
            "error: --accept goes with --block-on error|warning: with --block-on never (the default) deploy runs no preflight, so there is nothing to accept"
        );
        return Err(ExitCode::from(2));
    }
    Ok(cli)
}

/// What an engine command works on once the project's files have had their say.
struct Inputs {
    artifact: PathBuf,
    database_url: String,
    invoked_by: Option<InvokedBy>,
}

impl Inputs {
    fn resolve(command: &Command, engine: &EngineArgs, sources: Sources) -> Result<Inputs, String> {
        let cwd = std::env::current_dir().map_err(|e| format!("the working directory: {e}"))?;
        let project = Project::load(&cwd).map_err(|e| e.to_string())?;
        let artifact = project
            .artifact(&engine.artifact.artifact, sources.artifact)
            .map_err(|e| e.to_string())?;
        let database_url = project
            .database_url(
                engine.database_url.as_deref(),
                sources.database_url,
                &mut |note| eprintln!("migrator: note: {note}"),
            )
            .map_err(|e| e.to_string())?;
        let invoked_by = match command {
            Command::Deploy(DeployCommand { by: Some(by), .. }) => Some(InvokedBy {
                principal: by.clone(),
                source: InvokerSource::Cli,
                request_id: None,
            }),
            _ => InvokedBy::os_user(),
        };
        if let Command::Deploy(args) = command
            && !args.accept.is_empty()
            && invoked_by.is_none()
        {
            return Err("--accept needs --by NAME: the outcome records who accepts (USER and LOGNAME name nobody)".into());
        }
        Ok(Inputs {
            artifact,
            database_url,
            invoked_by,
        })
    }
}

/// deploy, plan, status, resolve: prints the outcome, returns whether it is a success (and,
/// for `plan --fail-on`, whether no finding reaches the threshold).
async fn run_engine(command: &Command, engine: &EngineArgs, inputs: &Inputs) -> bool {
    let outcome = run(command, engine, inputs).await;
    if engine.json {
        match serde_json::to_string_pretty(&outcome) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("migrator: cannot write the outcome as JSON: {e}"),
        }
    } else {
        print!("{}", render::text(&outcome));
    }
    let fails_on = match command {
        Command::Plan(PlanCommand { fail_on, .. }) => {
            let failing = block_on(*fail_on).blocking(&outcome.findings, &[]);
            if !failing.is_empty() {
                eprintln!(
                    "migrator: {} finding(s) at or above --fail-on {}: {}",
                    failing.len(),
                    fail_on.as_str(),
                    failing
                        .iter()
                        .map(|f| format!("{} ({})", f.accept_key(), f.severity))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            !failing.is_empty()
        }
        _ => false,
    };
    exit_ok(&outcome) && !fails_on
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
    let response = handler.handle(&text, &Invocation::for_task()).await;
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

async fn run(command: &Command, engine: &EngineArgs, inputs: &Inputs) -> Outcome {
    let request = match request(command, inputs) {
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
    let statement_lock_timeout = match command {
        Command::Deploy(args) => args.statement_lock_timeout,
        _ => None,
    };
    let settings = Settings {
        lock_wait: engine.lock_timeout,
        preflight: preflight(command),
        statement_lock_timeout,
        ..Settings::default()
    }
    .with_prisma_env();
    let target = match parse_database_url(&inputs.database_url) {
        Ok(target) => target,
        Err(e) => {
            let mut outcome = Outcome::new(request.action, chrono_now());
            e.record(&mut outcome, &CliWording);
            return outcome;
        }
    };
    let artifact = artifact::read_path(&inputs.artifact, &limits);
    engine::run(&request, artifact, &target, &settings, &SystemClock).await
}

/// `plan` always reports findings from the live data; `deploy` runs preflight only when it may
/// block (`--block-on never`, the default, keeps it a drop-in for `prisma migrate deploy`).
fn preflight(command: &Command) -> Option<PreflightSettings> {
    match command {
        Command::Plan(args) if args.no_preflight => None,
        Command::Plan(_) => Some(PreflightSettings::default()),
        Command::Deploy(args) => match block_on(args.block_on) {
            BlockOn::Never => None,
            block_on => Some(PreflightSettings {
                block_on,
                accept: args.accept.clone(),
                ..PreflightSettings::default()
            }),
        },
        _ => None,
    }
}

fn block_on(arg: BlockOnArg) -> BlockOn {
    match arg {
        BlockOnArg::Error => BlockOn::Error,
        BlockOnArg::Warning => BlockOn::Warning,
        BlockOnArg::Never => BlockOn::Never,
    }
}

impl BlockOnArg {
    fn as_str(self) -> &'static str {
        match self {
            BlockOnArg::Error => "error",
            BlockOnArg::Warning => "warning",
            BlockOnArg::Never => "never",
        }
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

/// The CLI's request: the command is its own confirmation (`Request::cli`), invoked by the
/// OS user or whoever `deploy --by` names.
fn request(command: &Command, inputs: &Inputs) -> Result<Request, EngineError> {
    let resolve = match command {
        Command::HandleEvent(_)
        | Command::Invoke(_)
        | Command::AuthToken(_)
        | Command::Lint(_)
        | Command::Fleet(_)
        | Command::Completions(_)
        | Command::Man => {
            unreachable!("handled before the engine")
        }
        // clap's group makes exactly one of the two required.
        Command::Resolve(ResolveCommand { target: args, .. }) => {
            ResolveTarget::from_flags(args.applied.clone(), args.rolled_back.clone())
                .map_err(|reason| EngineError::InvalidRequest { reason })?
        }
        Command::Deploy(_) | Command::Plan(_) | Command::Status(_) => None,
    };
    let mut request = Request::cli(action(command), resolve)?;
    request.invoked_by = inputs.invoked_by.clone();
    Ok(request)
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
