//! The command line says what it does and never repeats a credential: options appear only on
//! the commands where they mean something, `handle-event` refuses the options it would
//! otherwise ignore, and no usage error echoes a password. It meets Prisma's habits (`.env`,
//! `prisma.config.ts`), accepts findings like the payload (`deploy --accept … --by …`), fails
//! a plan on findings (`plan --fail-on`), and writes completions and a man page.

use std::path::Path;
use std::process::{Command, Output};

use migrator_e2e::{Migrations, PgDb, migrator_bin};
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(migrator_bin())
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("MIGRATOR_ARTIFACT")
        .output()
        .expect("migrator runs")
}

fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether `--help` text lists `option` as an option (a line starting with it).
fn lists(help: &str, option: &str) -> bool {
    help.lines().any(|l| l.trim_start().starts_with(option))
}

fn help(command: &str) -> String {
    let out = run(&[command, "--help"]);
    assert!(out.status.success(), "{}", both(&out));
    both(&out)
}

#[test]
fn no_usage_error_echoes_a_password() {
    let urls = [
        "postgresql://u:SECRET@h/db",
        "postgres://u:SECRET@h:5432/db?sslmode=require",
        "mysql://root:SECRET@127.0.0.1:3306/app",
        "postgresql://u:SE CRET'x@h/db",
        "postgresql://h/db?password=SECRET",
    ];
    for url in urls {
        let cases: Vec<Vec<&str>> = vec![
            // The URL without --database-url: clap quotes the unexpected argument.
            vec!["deploy", url],
            vec!["plan", url],
            vec!["status", "--json", url],
            vec!["resolve", "--applied", "x", url],
            // Where a subcommand is expected.
            vec![url],
            // As the value of an option that parses it.
            vec!["deploy", "--lock-timeout", url],
            vec!["deploy", "--max-entries", url],
            // On commands that take no database URL.
            vec!["invoke", "--function", "f", "--database-url", url],
            vec!["invoke", "--function", "f", url],
            vec!["auth-token", "--host", "h", "--port", url, "--user", "u"],
            vec!["handle-event", "--database-url", url],
            vec!["handle-event", url],
        ];
        for args in cases {
            let out = run(&args);
            let text = both(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
            assert!(
                !text.contains("SECRET"),
                "{args:?} echoed a password: {text}"
            );
            assert!(
                !text.contains("SE CRET"),
                "{args:?} echoed a password: {text}"
            );
        }
        // The `=` form next to another mistake.
        let with_eq = format!("--database-url={url}");
        let out = run(&["deploy", &with_eq, "extra"]);
        assert_eq!(out.status.code(), Some(2), "{}", both(&out));
        assert!(!both(&out).contains("SECRET"), "{}", both(&out));
    }
}

#[test]
fn the_masked_error_still_names_what_was_wrong() {
    let out = run(&["deploy", "postgresql://u:SECRET@db.internal/app"]);
    let text = both(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text.contains("unexpected argument 'postgresql://***@db.internal/app'"),
        "{text}"
    );
}

#[test]
fn handle_event_refuses_a_database_url_or_an_artifact_instead_of_ignoring_them() {
    // DATABASE_URL points at a real database: had the option been ignored, this is where the
    // event would have gone.
    let db = PgDb::fresh("cli_handle_event");
    for args in [
        vec![
            "handle-event",
            "--database-url",
            "postgresql://u:SECRET@h/db",
        ],
        vec!["handle-event", "--artifact", "examples/postgres/prisma.zip"],
        vec![
            "handle-event",
            "--event-json",
            "{}",
            "--artifact",
            "x.zip",
            "--database-url",
            "file:x.db",
        ],
    ] {
        let out = Command::new(migrator_bin())
            .args(&args)
            .env("DATABASE_URL", &db.url)
            .env("DB_AUTH", "url")
            .env("STAGE", "CODE")
            .env("ARTIFACT_BUCKET", "artifacts")
            .env("ARTIFACT_KEY", "deploy/CODE/prisma.zip")
            .env("TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:t")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
            .env("MIGRATOR_EVENT", "{}")
            .output()
            .expect("migrator runs");
        let text = both(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains("handle-event does not take")
                && text.contains("configured by the environment"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("SECRET"), "{text}");
        assert!(out.stdout.is_empty(), "no outcome printed: {text}");
    }
    assert_eq!(
        db.tables(),
        Vec::<String>::new(),
        "the database was not touched"
    );
}

#[test]
fn each_command_lists_only_the_options_that_mean_something_there() {
    // Only deploy runs migrations, so only deploy waits for table locks.
    assert!(lists(&help("deploy"), "--statement-lock-timeout"));
    for reader in ["plan", "status", "resolve"] {
        let text = help(reader);
        assert!(
            !lists(&text, "--statement-lock-timeout"),
            "{reader} lists an option it ignores: {text}"
        );
        let out = run(&[reader, "--statement-lock-timeout", "1s"]);
        assert_eq!(out.status.code(), Some(2), "{reader}: {}", both(&out));
    }
    for engine in ["deploy", "plan", "status", "resolve"] {
        let text = help(engine);
        for option in [
            "--artifact",
            "--database-url",
            "--json",
            "--lock-timeout",
            "--max-entries",
        ] {
            assert!(
                lists(&text, option),
                "`{engine} --help` lacks {option}: {text}"
            );
        }
        assert!(text.contains("mysql://"), "{engine}: {text}");
        assert!(text.contains("MIGRATOR_ARTIFACT"), "{engine}: {text}");
    }
    let invoke = help("invoke");
    for absent in [
        "--lock-timeout",
        "--artifact",
        "--database-url",
        "--max-entries",
    ] {
        assert!(!lists(&invoke, absent), "invoke lists {absent}: {invoke}");
    }
    assert!(
        lists(&invoke, "--json") && lists(&invoke, "--confirm"),
        "{invoke}"
    );
    // --by's default is what invoke.rs does: the caller's AWS identity, then the OS user.
    let by = invoke
        .split("--by <NAME>")
        .nth(1)
        .and_then(|rest| rest.split("\n      --").next())
        .expect("invoke lists --by");
    assert!(
        by.contains("GetCallerIdentity") && by.contains("USER"),
        "invoke --by: {by}"
    );
    let token = help("auth-token");
    for absent in ["--artifact", "--database-url", "--json", "--lock-timeout"] {
        assert!(!lists(&token, absent), "auth-token lists {absent}: {token}");
    }
    for (option, documented) in [
        ("--host", "The database endpoint"),
        ("--port", "The database port"),
        ("--user", "The database user"),
    ] {
        assert!(
            token
                .lines()
                .any(|l| l.trim_start().starts_with(option) && l.contains(documented)),
            "{token}"
        );
    }
    let event = help("handle-event");
    for absent in ["--artifact", "--database-url", "--json", "--lock-timeout"] {
        assert!(
            !lists(&event, absent),
            "handle-event lists {absent}: {event}"
        );
    }
    assert!(
        event.contains("Configuration comes from the environment"),
        "{event}"
    );
    for removed in [
        vec!["invoke", "--function", "f", "--lock-timeout", "1s"],
        vec![
            "auth-token",
            "--artifact",
            "x",
            "--host",
            "h",
            "--port",
            "1",
            "--user",
            "u",
        ],
        vec!["handle-event", "--json"],
    ] {
        let out = run(&removed);
        assert_eq!(out.status.code(), Some(2), "{removed:?}: {}", both(&out));
    }
}

/// Runs `migrator` in `dir` (a project folder) with `env` and nothing of the test's own
/// DATABASE_URL, MIGRATOR_ARTIFACT or NO_COLOR.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(migrator_bin());
    command
        .current_dir(dir)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("MIGRATOR_ARTIFACT")
        .env_remove("NO_COLOR");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("migrator runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(out)))
}

/// A project folder with `prisma/migrations` holding one SQLite migration.
fn sqlite_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let migrations = dir.path().join("prisma/migrations/20240101000000_init");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(
        dir.path().join("prisma/migrations/migration_lock.toml"),
        "provider = \"sqlite\"\n",
    )
    .unwrap();
    std::fs::write(
        migrations.join("migration.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    dir
}

#[test]
fn a_missing_database_url_says_what_to_set() {
    let project = sqlite_project();
    for command in ["deploy", "plan", "status"] {
        let out = run_in(project.path(), &[command], &[]);
        let text = both(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {text}");
        assert!(
            text.contains("no database URL: set DATABASE_URL")
                && text.contains("--database-url")
                && !text.contains("P1013"),
            "{command}: {text}"
        );
    }
    let out = run_in(project.path(), &["resolve", "--applied", "x"], &[]);
    assert!(both(&out).contains("no database URL"), "{}", both(&out));
}

#[test]
fn dotenv_in_the_working_directory_is_read_and_the_environment_wins() {
    let project = sqlite_project();
    std::fs::write(
        project.path().join(".env"),
        "# as Prisma writes it\nDATABASE_URL=\"file:./from-dotenv.db\"\n",
    )
    .unwrap();
    let out = run_in(project.path(), &["deploy", "--json"], &[]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        json(&out)["database"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("from-dotenv.db")),
        "{}",
        both(&out)
    );
    assert!(project.path().join("from-dotenv.db").exists());
    // The real environment wins over .env, and --database-url over both.
    let out = run_in(
        project.path(),
        &["status", "--json"],
        &[("DATABASE_URL", "file:./from-env.db")],
    );
    assert!(
        json(&out)["database"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("from-env.db")),
        "{}",
        both(&out)
    );
    let out = run_in(
        project.path(),
        &["status", "--json", "--database-url", "file:./flag.db"],
        &[("DATABASE_URL", "file:./from-env.db")],
    );
    assert!(
        json(&out)["database"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("flag.db")),
        "{}",
        both(&out)
    );
    // A broken .env is named, not skipped.
    std::fs::write(project.path().join(".env"), "this is not a line\n").unwrap();
    let out = run_in(project.path(), &["status"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(both(&out).contains(".env"), "{}", both(&out));
}

#[test]
fn prisma_config_ts_names_the_migrations_and_the_url_variable() {
    let project = sqlite_project();
    // Prisma 7's layout: the migrations somewhere else, the URL in a variable of its own.
    std::fs::rename(project.path().join("prisma"), project.path().join("db")).unwrap();
    std::fs::write(
        project.path().join("prisma.config.ts"),
        r#"import "dotenv/config";
import { defineConfig, env } from "prisma/config";
export default defineConfig({
  schema: "db/schema.prisma",
  migrations: { path: "db/migrations" },
  datasource: { url: env("APP_DB_URL") },
});
"#,
    )
    .unwrap();
    // The variable it names is not set: said so, by name.
    let out = run_in(
        project.path(),
        &["plan"],
        &[("DATABASE_URL", "file:./not-this.db")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(both(&out).contains("APP_DB_URL"), "{}", both(&out));
    let out = run_in(
        project.path(),
        &["deploy", "--json"],
        &[("APP_DB_URL", "file:./app.db")],
    );
    assert!(out.status.success(), "{}", both(&out));
    let outcome = json(&out);
    assert_eq!(outcome["status"], "applied", "{outcome}");
    assert!(
        outcome["artifact"]["location"]
            .as_str()
            .is_some_and(|l| l.ends_with("db/migrations"))
    );
    // lint reads the same folder (prisma/migrations is gone: exit 2 if it looked there).
    let out = run_in(project.path(), &["lint"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    // Code instead of a literal: never guessed.
    std::fs::write(
        project.path().join("prisma.config.ts"),
        "export default defineConfig({ migrations: { path: path.join(root, 'm') } })",
    )
    .unwrap();
    let out = run_in(
        project.path(),
        &["status"],
        &[("DATABASE_URL", "file:./app.db")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        both(&out).contains("path.join") && both(&out).contains("--artifact"),
        "{}",
        both(&out)
    );
    // --artifact is the person's choice and wins.
    let out = run_in(
        project.path(),
        &["status", "--artifact", "db/migrations"],
        &[("DATABASE_URL", "file:./app.db")],
    );
    assert!(out.status.success(), "{}", both(&out));
}

#[test]
fn a_prisma_8_project_is_refused_with_what_we_support() {
    let dir = tempfile::tempdir().unwrap();
    let migration = dir.path().join("migrations/app/20260901T1200_init");
    std::fs::create_dir_all(&migration).unwrap();
    std::fs::write(migration.join("migration.ts"), "export default {}").unwrap();
    std::fs::write(migration.join("ops.json"), "[]").unwrap();
    let out = run_in(
        dir.path(),
        &["plan", "--json", "--artifact", "migrations"],
        &[("DATABASE_URL", "file:./x.db")],
    );
    let outcome = json(&out);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert_eq!(outcome["status"], "rejected", "{outcome}");
    let message = outcome["error"]["message"].as_str().unwrap_or_default();
    for says in ["Prisma 8", "prisma db migrate", "migration.sql"] {
        assert!(message.contains(says), "{message}");
    }
    assert!(
        !dir.path().join("x.db").exists(),
        "the database was not touched"
    );
}

/// A SQLite project whose second migration drops a table: a `drop-table` warning.
fn dropping_project() -> (Migrations, tempfile::TempDir) {
    let migrations = Migrations::new().with_lock("sqlite");
    migrations.add(
        "20240101000000_init",
        "CREATE TABLE t (id INTEGER PRIMARY KEY);",
    );
    let db = tempfile::tempdir().unwrap();
    let url = format!("file:{}", db.path().join("app.db").display());
    let out = run_in(
        db.path(),
        &[
            "deploy",
            "--artifact",
            path(&migrations),
            "--database-url",
            &url,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", both(&out));
    migrations.add("20240102000000_drop", "DROP TABLE t;");
    (migrations, db)
}

fn path(migrations: &Migrations) -> &str {
    migrations.path().to_str().expect("UTF-8 temp path")
}

#[test]
fn plan_fail_on_exits_1_at_or_above_the_severity() {
    let (migrations, db) = dropping_project();
    let url = format!("file:{}", db.path().join("app.db").display());
    let plan = |extra: &[&str]| {
        let mut args = vec![
            "plan",
            "--json",
            "--artifact",
            path(&migrations),
            "--database-url",
            &url,
        ];
        args.extend_from_slice(extra);
        run_in(db.path(), &args, &[])
    };
    let out = plan(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let findings = json(&out)["findings"].clone();
    assert!(
        findings.as_array().is_some_and(|f| f
            .iter()
            .any(|f| f["rule"] == "drop-table" && f["severity"] == "warning")),
        "{findings}"
    );
    let out = plan(&["--fail-on", "warning"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("drop-table@20240102000000_drop"),
        "{}",
        both(&out)
    );
    assert_eq!(
        json(&out)["status"],
        "planned",
        "the outcome is still the plan"
    );
    assert_eq!(plan(&["--fail-on", "error"]).status.code(), Some(0));
    assert_eq!(plan(&["--fail-on", "never"]).status.code(), Some(0));
    let out = plan(&["--fail-on", "info"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the words of --block-on: {}",
        both(&out)
    );
}

#[test]
fn deploy_accept_and_by_mirror_the_payload() {
    let (migrations, db) = dropping_project();
    let url = format!("file:{}", db.path().join("app.db").display());
    let deploy = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "deploy",
            "--json",
            "--artifact",
            path(&migrations),
            "--database-url",
            &url,
        ];
        args.extend_from_slice(extra);
        run_in(db.path(), &args, env)
    };
    // Blocked: the hint names the finding to accept.
    let out = deploy(&["--block-on", "warning"], &[]);
    let outcome = json(&out);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert_eq!(outcome["status"], "blocked", "{outcome}");
    // --accept without --block-on accepts nothing: a usage error, not a silent no-op.
    let out = deploy(&["--accept", "drop-table@20240102000000_drop"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    // --accept needs someone to name: no --by and no USER/LOGNAME.
    let out = deploy(
        &[
            "--block-on",
            "warning",
            "--accept",
            "drop-table@20240102000000_drop",
        ],
        &[("USER", ""), ("LOGNAME", "")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(both(&out).contains("--by"), "{}", both(&out));
    let out = deploy(&["--block-on", "warning", "--accept", "not-a-finding"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    // Accepted, by a named person: applied, and the outcome says who accepted what.
    let out = deploy(
        &[
            "--block-on",
            "warning",
            "--accept",
            "drop-table@20240102000000_drop",
            "--by",
            "alice@example.com",
        ],
        &[],
    );
    let outcome = json(&out);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(outcome["status"], "applied", "{outcome}");
    assert_eq!(
        outcome["accepted"],
        serde_json::json!(["drop-table@20240102000000_drop"])
    );
    assert_eq!(outcome["invokedBy"]["principal"], "alice@example.com");
    assert_eq!(outcome["invokedBy"]["source"], "cli");
    // A name the person gives is a claim, never shown as proven.
    assert!(outcome["invokedBy"].get("verified").is_none(), "{outcome}");
}

#[test]
fn completions_and_the_man_page_come_from_the_cli_definition() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef migrator"),
        ("fish", "complete -c migrator"),
    ] {
        let out = run(&["completions", shell]);
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}: {}", both(&out));
        assert!(script.contains(marker), "{shell}: {script}");
        for option in [
            "--block-on",
            "--fail-on",
            "--statement-lock-timeout",
            "--plan-hash",
        ] {
            assert!(
                script.contains(option.trim_start_matches('-')),
                "{shell} lacks {option}"
            );
        }
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
    let out = run(&["man"]);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        page.starts_with(".ie") || page.contains(".TH migrator 1"),
        "{page}"
    );
    for section in [
        "MIGRATOR DEPLOY",
        "MIGRATOR PLAN",
        "MIGRATOR INVOKE",
        "MIGRATOR LINT",
    ] {
        assert!(page.contains(section), "man page lacks {section}");
    }
    assert!(
        page.contains("statement\\-lock\\-timeout"),
        "roff escapes dashes"
    );
}

#[test]
fn no_color_and_pipes_get_no_escape_codes() {
    // Piped (as here), and with NO_COLOR: neither help nor a usage error carries ANSI codes.
    for env in [vec![], vec![("NO_COLOR", "1")]] {
        for args in [vec!["deploy", "--help"], vec!["deploy", "--nope"]] {
            let out = run_in(Path::new("."), &args, &env);
            assert!(
                !both(&out).contains('\u{1b}'),
                "{args:?} {env:?}: {}",
                both(&out)
            );
        }
    }
    // In a terminal (util-linux `script` gives it one): colour, unless NO_COLOR is set.
    let in_terminal = |no_color: bool| {
        let mut command = Command::new("script");
        command
            .args(["-qec"])
            .arg(format!("{} deploy --help", migrator_bin().display()))
            .arg("/dev/null")
            .env_remove("NO_COLOR");
        if no_color {
            command.env("NO_COLOR", "1");
        }
        let out = command.output().expect("util-linux `script` runs");
        assert!(out.status.success(), "{}", both(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        in_terminal(false).contains('\u{1b}'),
        "no colour in a terminal"
    );
    assert!(
        !in_terminal(true).contains('\u{1b}'),
        "colour despite NO_COLOR"
    );
}
