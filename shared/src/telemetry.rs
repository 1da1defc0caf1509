//! Logging set-up shared by the Lambdas and the CLI.

use tracing_subscriber::EnvFilter;

/// JSON logs for CloudWatch (level from `RUST_LOG`, default `info`). Secrets never
/// reach a log line: configs are logged redacted, and secret values are never
/// formatted.
pub fn init_lambda() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .init();
}

/// Quiet human logs on stderr for the CLI (`RUST_LOG` to see more).
pub fn init_cli() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
