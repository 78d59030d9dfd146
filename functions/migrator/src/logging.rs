//! The log subscriber: `RUST_LOG` (or our defaults) decides what is logged, except that the
//! libraries that handle credentials never log below `debug`, whatever `RUST_LOG` says.
//! At `trace`, `aws_sigv4` logs its "calculated signing parameters" with the session token,
//! and the HTTP and SDK layers log request headers (`x-amz-security-token`, signatures).

use tracing::Level;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Targets (and their modules) that see credentials: signing, the SDK's runtime and
/// credential providers, the HTTP client stack, TLS.
const HANDLES_CREDENTIALS: [&str; 13] = [
    "aws_sigv4",
    "aws_runtime",
    "aws_config",
    "aws_credential_types",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// Whether an event of `target` at `level` may be logged at all: never below `debug` for a
/// library that handles credentials.
pub fn allowed(target: &str, level: &Level) -> bool {
    let handles_credentials = HANDLES_CREDENTIALS.iter().any(|prefix| {
        target
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    !(handles_credentials && *level > Level::DEBUG)
}

/// JSON lines (the Lambda, `handle-event`) or plain text (the CLI), on stderr.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(if json {
            "warn,migrator=info,migrator_engine=info"
        } else {
            "error,migrator_engine=info"
        })
    });
    let cap = FilterFn::new(|meta| allowed(meta.target(), meta.level()));
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = if json {
        layer
            .json()
            .with_current_span(true)
            .with_filter(filter)
            .with_filter(cap)
            .boxed()
    } else {
        layer
            .with_target(false)
            .with_ansi(crate::colour::on_stderr())
            .without_time()
            .with_filter(filter)
            .with_filter(cap)
            .boxed()
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_that_see_credentials_never_log_below_debug() {
        for target in [
            "aws_sigv4",
            "aws_sigv4::http_request::sign",
            "aws_smithy_runtime::client::orchestrator",
            "hyper_util::client::legacy::pool",
        ] {
            assert!(!allowed(target, &Level::TRACE), "{target}");
            assert!(allowed(target, &Level::DEBUG), "{target}");
        }
        for target in [
            "migrator",
            "migrator_engine::engine",
            "aws_sigv4x",
            "sqlx::query",
        ] {
            assert!(allowed(target, &Level::TRACE), "{target}");
        }
    }
}
