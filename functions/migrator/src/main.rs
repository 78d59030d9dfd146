//! `migrator`: one binary, three runtimes. For now the CLI; the Lambda runtime (when
//! `AWS_LAMBDA_RUNTIME_API` is set) and the ECS `handle-event` command build on it.

mod cli;
mod render;

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
    runtime.block_on(cli::main())
}
