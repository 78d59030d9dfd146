//! The command line says what it does and never repeats a credential: options appear only on
//! the commands where they mean something, `handle-event` refuses the options it would
//! otherwise ignore, and no usage error echoes a password.

use std::process::{Command, Output};

use migrator_e2e::{PgDb, migrator_bin};

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
