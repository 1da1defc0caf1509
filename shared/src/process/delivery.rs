//! One message of the files queue (or its dead-letter queue), however it was received:
//! by the processor Lambda's SQS event source, or by `s3imports tick` polling the queue
//! itself. Both hand it to [`handle`], so retries, visibility and dead letters behave
//! the same everywhere.

use tracing::{Instrument as _, error, warn};

use crate::Clock;
use crate::metrics;
use crate::ports::FileMessage;
use crate::process::{Delivery, Processed, Processor};

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

/// A received message, as the consumer saw it.
#[derive(Debug, Clone, Default)]
pub struct QueuedMessage {
    pub id: String,
    pub body: Option<String>,
    /// To change the message's visibility; None leaves the queue's timeout in charge.
    pub receipt: Option<String>,
    /// SQS's `ApproximateReceiveCount` (1 on the first delivery).
    pub receive_count: u32,
    /// It came from the dead-letter queue: SQS gave up on it.
    pub dead_letter: bool,
    /// When the invocation handling it ends (None: no limit).
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

/// What became of one message.
#[derive(Debug)]
pub enum RecordOutcome {
    /// A file message, processed (or skipped) by this delivery.
    File(FileMessage, Processed),
    /// A dead letter, recorded as the file's failure (or skipped).
    DeadLetter(FileMessage, Processed),
    /// To be delivered again (the message's visibility is already set).
    Retry(String),
    /// Not a file message: dropped, since retrying cannot help.
    Dropped,
}

/// Handles one message: a file to process, or a dead letter to record.
pub async fn handle(
    processor: &Processor,
    clock: &dyn Clock,
    max_receives: u32,
    message: &QueuedMessage,
) -> RecordOutcome {
    let id = &message.id;
    let Some(msg) = message
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<FileMessage>(b).ok())
    else {
        error!(message_id = %id, "message is not a file message; dropped");
        return RecordOutcome::Dropped;
    };
    if message.dead_letter {
        let span = tracing::error_span!(
            "dead_letter",
            import_id = %msg.import_id,
            run_id = %msg.run_id,
            key = %msg.key
        );
        return match processor
            .dead_letter(&msg, clock)
            .instrument(span.clone())
            .await
        {
            Ok(p) => RecordOutcome::DeadLetter(msg, p),
            Err(e) => {
                span.in_scope(
                    || warn!(message_id = %id, error = %e, "dead letter not recorded; will retry"),
                );
                RecordOutcome::Retry(e.to_string())
            }
        };
    }
    let delivery = Delivery {
        receive_count: message.receive_count.max(1),
        last: message.receive_count >= max_receives,
        receipt: message.receipt.clone(),
        deadline: message.deadline,
    };
    let before = processor.metrics.dynamo.snapshot();
    let started = clock.now();
    // Every line logged about the file carries its import, run and key.
    let span = tracing::error_span!(
        "file",
        import_id = %msg.import_id,
        run_id = %msg.run_id,
        key = %msg.key,
        chunk = tracing::field::Empty
    );
    if let Some(chunk) = msg.chunk {
        span.record("chunk", chunk);
    }
    let result = processor
        .process(&msg, &delivery, clock)
        .instrument(span.clone())
        .await;
    // What this delivery waited in the queue and cost DynamoDB in throttles and retries.
    let dynamo = processor.metrics.dynamo.snapshot().since(before);
    let mut values = vec![
        (metrics::DYNAMO_THROTTLES, dynamo.throttles as f64),
        (metrics::DYNAMO_RETRIES, dynamo.retries as f64),
    ];
    // The first delivery only: `SentTimestamp` is the first send, so a redelivery's
    // wait would include its earlier attempts and backoff.
    if let Some(sent) = message.sent_at.filter(|_| message.receive_count <= 1) {
        values.push((
            metrics::QUEUE_WAIT,
            (started - sent).num_milliseconds().max(0) as f64,
        ));
    }
    processor.metrics.emit(
        &metrics::Event {
            import_id: &msg.import_id,
            properties: vec![("RunId", msg.run_id.clone()), ("FileKey", msg.key.clone())],
            outcome: None,
            values,
            cause: None,
        },
        clock.now(),
    );
    match result {
        Ok(p) => RecordOutcome::File(msg, p),
        Err(e) => {
            span.in_scope(|| warn!(message_id = %id, error = %e, "file will be retried"));
            RecordOutcome::Retry(e.to_string())
        }
    }
}
