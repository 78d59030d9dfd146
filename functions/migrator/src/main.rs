//! `migrator`: one binary, three runtimes — the AWS Lambda function (when
//! `AWS_LAMBDA_RUNTIME_API` is set), the ECS task (`migrator handle-event`) and the CLI.

mod aws;
mod cli;
mod colour;
mod completions;
mod config;
mod dotenv;
mod duration;
mod error;
mod fleet;
mod handler;
mod invoke;
mod json;
mod lambda;
mod lint;
mod logging;
mod payload;
mod ports;
mod project;
mod recovery;
mod render;
mod tls;
mod trigger;

use std::process::ExitCode;

fn main() -> ExitCode {
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    // The command line reads `.env` like Prisma's CLI; the function and its ECS task
    // (`handle-event`) are configured by their environment alone.
    if !lambda
        && std::env::args_os()
            .nth(1)
            .is_none_or(|a| a != "handle-event")
    {
        match std::env::current_dir().map(|dir| dotenv::read(&dir)) {
            Ok(Ok(Some((_, values)))) => {
                // SAFETY: nothing else runs yet: the async runtime is built below.
                unsafe { dotenv::apply(&values) };
            }
            Ok(Ok(None)) | Err(_) => {}
            Ok(Err(e)) => {
                eprintln!("migrator: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("migrator: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if lambda {
        runtime.block_on(lambda_main())
    } else {
        runtime.block_on(cli::main())
    }
}

/// Configuration errors fail the init phase, naming the variables.
async fn lambda_main() -> ExitCode {
    cli::init_logs(true);
    let config = match config::StageConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let edges = aws::edges(&aws::sdk_config().await, &config);
    let handler = match handler::Handler::new(config, edges) {
        Ok(handler) => handler,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match lambda::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("the Lambda runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
