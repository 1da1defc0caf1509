//! Logging set-up shared by the Lambdas and the CLI.
//!
//! Row values never reach a log line, at any level: our code logs keys, counts and
//! reasons only, and the crates that log request and response bodies at `trace` (the
//! SDK's HTTP stack: DynamoDB items, report uploads, emails) are capped at `debug`
//! whatever `RUST_LOG` asks for, by a filter of their own ([`body_cap`]). Secrets are never formatted; configs are logged
//! redacted.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Crates whose `trace` output carries request or response bodies. A target matches
/// by prefix, so `aws_` is every AWS SDK, Smithy and signing crate.
const BODY_LOGGERS: &[&str] = &["aws_", "hyper", "hyper_util", "h2", "rustls"];

/// `RUST_LOG`, or `default` when it is unset.
pub fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// A second filter beside `RUST_LOG`'s: the body-logging crates never log at `trace`,
/// whatever `RUST_LOG` enables (it lowers nothing else, and raises nothing).
pub fn body_cap() -> Targets {
    BODY_LOGGERS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |t, name| t.with_target(*name, LevelFilter::DEBUG),
    )
}

/// JSON logs for CloudWatch (level from `RUST_LOG`, default `info`).
pub fn init_lambda() {
    tracing_subscriber::registry()
        .with(filter("info"))
        .with(body_cap())
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .without_time()
                .with_target(false),
        )
        .init();
}

/// Quiet human logs on stderr for the CLI (`RUST_LOG` to see more).
pub fn init_cli() {
    tracing_subscriber::registry()
        // rPGP warns that a passphrase-locked key it made re-serialises at another
        // length (its own round-trip check, harmless): not the operator's concern.
        .with(filter("warn,pgp=error"))
        .with(body_cap())
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .init();
}
