//! `migrator`: one binary, three runtimes — the AWS Lambda function (when
//! `AWS_LAMBDA_RUNTIME_API` is set), the ECS task (`migrator handle-event`) and the CLI.

mod aws;
mod cli;
mod config;
mod duration;
mod error;
mod handler;
mod invoke;
mod json;
mod lambda;
mod lint;
mod logging;
mod payload;
mod ports;
mod render;
mod tls;
mod trigger;

use std::process::ExitCode;

fn main() -> ExitCode {
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
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
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
