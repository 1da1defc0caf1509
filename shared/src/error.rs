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
