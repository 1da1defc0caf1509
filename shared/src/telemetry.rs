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

/// The Lambda's log settings: Lambda's advanced logging controls
/// (`AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, default `info`; JSON unless
/// `AWS_LAMBDA_LOG_FORMAT` says `Text`).
pub fn lambda_log_settings(get: impl Fn(&str) -> Option<String>) -> (String, bool) {
    let level = get("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| match l.to_ascii_lowercase().as_str() {
            // Lambda's highest level; `tracing` stops at error.
            "fatal" => "error".to_string(),
            l => l.to_string(),
        })
        .or_else(|| get("RUST_LOG"))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "info".into());
    let json = !get("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("text"));
    (level, json)
}

/// Logs for CloudWatch. Each line carries the spans it is in, so the Lambda's request
/// id (lambda_runtime's invocation span) and the import, run and file (the services'
/// spans) are on every line about a file.
pub fn init_lambda() {
    let (level, json) = lambda_log_settings(|k| std::env::var(k).ok());
    init_lambda_with(&level, json, std::io::stdout);
}

/// [`init_lambda`] at `level`, JSON or text, writing to `writer` (tests read the
/// lines back).
pub fn init_lambda_with<W>(level: &str, json: bool, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::new(level);
    let registry = tracing_subscriber::registry().with(filter).with(body_cap());
    if json {
        registry
            .with(
                // With a timestamp: Lambda's level filter reads a JSON line's level only
                // when it also has a valid RFC 3339 timestamp.
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(false)
                    .with_span_list(true)
                    .with_target(false)
                    .with_writer(writer),
            )
            .init();
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .without_time()
                    .with_ansi(false)
                    .with_target(false)
                    .with_writer(writer),
            )
            .init();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_logging_controls_come_first() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(lambda_log_settings(env(&[])), ("info".into(), true));
        assert_eq!(
            lambda_log_settings(env(&[
                ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
                ("RUST_LOG", "warn")
            ])),
            ("debug".into(), true)
        );
        assert_eq!(
            lambda_log_settings(env(&[
                ("RUST_LOG", "warn"),
                ("AWS_LAMBDA_LOG_FORMAT", "Text")
            ])),
            ("warn".into(), false)
        );
    }
}
