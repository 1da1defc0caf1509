//! AWS adapters: clients built once, item conversion, error classing, and the
//! stores behind the domain's ports.
//!
//! Clients take their endpoint from the standard `AWS_ENDPOINT_URL`, so the same
//! binaries run against AWS and against a local moto server.

pub mod alerts;
pub mod configs;
pub mod contention;
pub mod counters;
pub mod dynamo;
pub mod item;
pub mod keys;
pub mod ledger;
pub mod mailer;
pub mod provision;
pub mod queue;
pub mod reports;
pub mod segments;
pub mod sink;
pub mod source;
pub mod wiring;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_types::error::metadata::ErrorMetadata;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use aws_smithy_types::retry::ProvideErrorKind;

use crate::error::{ErrorClass, ServiceError};
use crate::stack::Stack;

/// Attempts per request, the first included: the SDK retries throttling, timeouts and
/// transient errors itself, with backoff and (adaptive mode) a client-side rate limit
/// that slows a burst down instead of failing it.
pub const MAX_ATTEMPTS: u32 = 5;

/// The first retry's backoff ceiling (full jitter, doubling per attempt, at most
/// 20 s). The SDK's default is 1 s: a throttled write would hold its whole batch for
/// up to a second, and `make bench`'s model measured users at 143 rows/s with 2% of
/// requests throttled; 50 ms is DynamoDB's own advice (docs/performance.md).
pub const INITIAL_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// An HTTP `Range` header for bytes `from..to` (`None`: to the end).
pub(crate) fn byte_range(from: u64, to: Option<u64>) -> String {
    match to {
        Some(to) => format!("bytes={from}-{}", to.saturating_sub(1)),
        None => format!("bytes={from}-"),
    }
}

/// Loads the standard AWS configuration (env, profile, role) once per process.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::adaptive()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(INITIAL_BACKOFF),
        )
        .load()
        .await
}

/// Every client the stack uses, built once in `main` and shared.
#[derive(Debug, Clone)]
pub struct Clients {
    pub sdk: SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ses: aws_sdk_sesv2::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sts: aws_sdk_sts::Client,
    pub sns: aws_sdk_sns::Client,
    /// What the DynamoDB client's interceptor counted (calls, retries, throttles).
    pub dynamo_counters: crate::metrics::Counters,
}

impl Clients {
    pub fn new(sdk: &SdkConfig) -> Self {
        let dynamo_counters = crate::metrics::Counters::default();
        Self {
            sdk: sdk.clone(),
            s3: s3_client(sdk),
            dynamodb: dynamodb_client(sdk, &dynamo_counters),
            dynamo_counters,
            sqs: aws_sdk_sqs::Client::new(sdk),
            ses: aws_sdk_sesv2::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
        }
    }
}

/// A DynamoDB client whose calls, retries and throttles `counters` counts.
pub fn dynamodb_client(
    sdk: &SdkConfig,
    counters: &crate::metrics::Counters,
) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(counters::CountingInterceptor(counters.clone()))
        .retry_classifier(contention::ContentionClassifier)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An S3 client; see [`s3_config`].
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(s3_config(sdk).build())
}

/// Every S3 client's settings: path-style when an endpoint override is set, since a
/// local emulator has no per-bucket DNS names; and response checksums validated only
/// when an operation requires it. Objects uploaded in parts carry part-level
/// checksums the SDK cannot validate, and it warns on every such GetObject; what we
/// read is authenticated by PGP (integrity and signature) or TLS instead.
pub fn s3_config(sdk: &SdkConfig) -> aws_sdk_s3::config::Builder {
    let mut builder = aws_sdk_s3::config::Builder::from(sdk)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired);
    if sdk.endpoint_url().is_some() {
        builder = builder.force_path_style(true);
    }
    builder
}

/// Error codes the SDK's own classifiers do not treat as transient but that are:
/// DynamoDB's conflicts with a transaction in progress. (`TransactionConflict` alone is
/// only a cancellation reason inside a cancelled transaction, which the ledger reads.)
const ALSO_RETRYABLE: &[&str] = &[
    "TransactionInProgressException",
    "TransactionConflictException",
];

/// Classes an SDK error the way the SDK's retry classifiers do, once its own attempts
/// are spent: transport failures, timeouts, throttling and transient codes, errors the
/// service models as retryable, and 5xx responses are retryable; a service's refusal
/// (access denied, no such bucket, validation) is permanent.
pub fn classify_sdk<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> ErrorClass
where
    E: ProvideErrorMetadata + ProvideErrorKind,
    R: HasStatus,
{
    use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ErrorClass::Retryable
        }
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = ProvideErrorMetadata::code(e);
            let transient = e.retryable_error_kind().is_some()
                || code.is_some_and(|c| {
                    THROTTLING_ERRORS.contains(&c)
                        || TRANSIENT_ERRORS.contains(&c)
                        || ALSO_RETRYABLE.contains(&c)
                })
                || service.raw().status() >= 500;
            if transient {
                ErrorClass::Retryable
            } else {
                ErrorClass::Permanent
            }
        }
        _ => ErrorClass::Permanent,
    }
}

/// The HTTP status of a raw response (every SDK response type has one).
pub trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The code and message of an SDK error, for reasons a person reads.
pub fn describe_sdk<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::ServiceError(s) => {
            let meta: &ErrorMetadata = s.err().meta();
            match (meta.code(), meta.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => aws_smithy_types::error::display::DisplayErrorContext(err).to_string(),
            }
        }
        _ => aws_smithy_types::error::display::DisplayErrorContext(err).to_string(),
    }
}

/// An SDK error as the domain's [`ServiceError`]: named, classed, described, and kept
/// as the source.
pub fn service_error<E, R>(
    service: &'static str,
    operation: &'static str,
    err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> ServiceError
where
    E: ProvideErrorMetadata + ProvideErrorKind + std::error::Error + Send + Sync + 'static,
    R: HasStatus + std::fmt::Debug + Send + Sync + 'static,
{
    let code = err
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .map(str::to_string);
    ServiceError::new(service, operation, classify_sdk(&err), describe_sdk(&err))
        .with_code(code.as_deref())
        .with_source(err)
}

/// Exponential backoff with jitter, capped at about 3 s, before retry number `tries`:
/// for what the SDK cannot retry itself (items a batch call left unprocessed).
pub(crate) async fn backoff(tries: u32) {
    let base = 50u64 << tries.min(6);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % (base / 2 + 1);
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}

/// The stack's names plus the clients: what every entry point carries.
#[derive(Debug, Clone)]
pub struct Env {
    pub clients: Clients,
    pub stack: Stack,
}
