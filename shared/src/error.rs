//! How errors are classed across the library.
//!
//! Every typed error in `s3imports` says whether trying again later can help
//! (`Retryable`: throttling, timeouts, a network blip) or not (`Permanent`: a bad
//! file, a wrong key, a missing folder). The processor acknowledges permanent
//! failures after recording them and hands retryable ones back to SQS.

/// Whether a failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Trying again later may succeed (throttling, timeouts, service errors).
    Retryable,
    /// Trying again will fail the same way until a person changes something.
    Permanent,
}

/// Implemented by every error type of the library.
pub trait Classify {
    fn class(&self) -> ErrorClass;

    fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }
}

/// Any error, boxed: what an adapter keeps as the source of a [`ServiceError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A call to a cloud service that failed: which service and operation, whether trying
/// again can help, what a person reads, and the SDK's own error kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("{service} {operation}: {message}")]
pub struct ServiceError {
    pub service: &'static str,
    pub operation: &'static str,
    pub class: ErrorClass,
    pub message: String,
    /// The service's error code (`AccessDeniedException`, `QueueDoesNotExist`, ...),
    /// when it answered with one.
    pub code: Option<String>,
    #[source]
    pub source: Option<BoxError>,
}

impl ServiceError {
    pub fn new(
        service: &'static str,
        operation: &'static str,
        class: ErrorClass,
        message: impl Into<String>,
    ) -> Self {
        Self {
            service,
            operation,
            class,
            message: message.into(),
            code: None,
            source: None,
        }
    }

    pub fn with_code(mut self, code: Option<&str>) -> Self {
        self.code = code.map(str::to_string);
        self
    }

    /// What kind of failure this is, for a metric's `Cause` dimension (few values):
    /// the service and `AccessDenied`, `NotFound`, `Throttled` or `Other`.
    pub fn cause(&self) -> String {
        let code = self.code.as_deref().unwrap_or_default();
        let text = format!("{code} {}", self.message).to_ascii_lowercase();
        let text = text.as_str();
        let kind = if text.contains("accessdenied")
            || text.contains("unauthorizedoperation")
            || text.contains("authorizationerror")
            || text.contains("not authorized")
        {
            "AccessDenied"
        } else if text.contains("notfound")
            || text.contains("nonexistent")
            || text.contains("doesnotexist")
            || text.contains("nosuchbucket")
        {
            "NotFound"
        } else if text.contains("throttl")
            || text.contains("throughputexceeded")
            || text.contains("rate exceeded")
            || text.contains("slowdown")
        {
            "Throttled"
        } else {
            "Other"
        };
        format!("{}.{kind}", self.service.replace(' ', ""))
    }

    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The service throttled the call (after the SDK's own retries).
    pub fn throttled(service: &'static str, operation: &'static str) -> Self {
        Self::new(
            service,
            operation,
            ErrorClass::Retryable,
            "ThrottlingException: rate exceeded",
        )
    }
}

impl Classify for ServiceError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}
