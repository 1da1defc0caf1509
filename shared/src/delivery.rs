//! One message of the files queue (or its dead-letter queue), however it was received:
//! by the processor Lambda's SQS event source, or by `s3imports tick` polling the queue
//! itself. Both hand it to [`handle`], so retries, visibility and dead letters behave
//! the same everywhere.

use tracing::{error, warn};

use crate::Clock;
use crate::ports::FileMessage;
use crate::processor::{Delivery, Processed, Processor};

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
        return match processor.dead_letter(&msg, clock).await {
            Ok(p) => RecordOutcome::DeadLetter(msg, p),
            Err(e) => {
                warn!(message_id = %id, key = %msg.key, error = %e, "dead letter not recorded; will retry");
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
    match processor.process(&msg, &delivery, clock).await {
        Ok(p) => RecordOutcome::File(msg, p),
        Err(e) => {
            warn!(message_id = %id, key = %msg.key, error = %e, "file will be retried");
            RecordOutcome::Retry(e.to_string())
        }
    }
}
