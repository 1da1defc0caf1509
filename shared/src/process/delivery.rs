//! One message of the files queue (or its dead-letter queue), however it was received:
//! by the processor Lambda's SQS event source, or by `s3imports tick` polling the queue
//! itself. Both hand it to [`super::handle`], so retries, visibility and dead letters
//! behave the same everywhere.

/// Deliveries SQS makes before the message goes to the dead-letter queue (the
/// template's `maxReceiveCount`).
pub const ENV_MAX_RECEIVES: &str = "S3IMPORTS_MAX_RECEIVES";
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

/// The deliveries before the dead-letter queue, from the environment the template sets.
pub fn max_receives_from_env() -> u32 {
    std::env::var(ENV_MAX_RECEIVES)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_RECEIVES)
}

/// One delivery of a file message, however it was received (the processor Lambda's
/// SQS event, `s3imports tick` polling the queue, a test): the message and what the
/// queue said about it.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub id: String,
    pub body: Option<String>,
    /// The message's receipt handle: to keep it invisible while the file is worked on
    /// and to set when it comes back after a retryable failure. None leaves the
    /// queue's own visibility timeout in charge.
    pub receipt: Option<String>,
    /// SQS's `ApproximateReceiveCount` (1 on the first delivery).
    pub receive_count: u32,
    /// SQS will not deliver it again (its last receive before the dead-letter queue).
    pub last: bool,
    /// It came from the dead-letter queue: SQS gave up on it.
    pub dead_letter: bool,
    /// When the invocation ends (Lambda's deadline): the file stops short of it,
    /// records a checkpoint and continues in a new invocation. None: no limit.
    pub deadline: Option<tokio::time::Instant>,
    /// When SQS took the message (its `SentTimestamp`), for the `QueueWait` metric.
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// SQS's `SentTimestamp` attribute (milliseconds since the epoch) as a time.
pub fn sent_at(attribute: Option<&str>) -> Option<chrono::DateTime<chrono::Utc>> {
    attribute
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(chrono::DateTime::from_timestamp_millis)
}
