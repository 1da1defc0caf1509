//! The processor Lambda's handler: each SQS message is one file. Permanent failures
//! are recorded in the ledger and acknowledged; retryable ones are reported as batch
//! item failures so SQS delivers them again (and after `maxReceiveCount`, the last
//! delivery records the failure instead). Messages from the dead-letter queue (files
//! whose processing timed out or crashed every time) are recorded as failed with the
//! last reason.
//!
//! While a file is worked on its message is kept invisible in short extensions (so a
//! dead worker's file comes back within minutes, not after the queue's visibility
//! timeout), and a retryable failure sets when it comes back, with backoff.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use s3imports::Clock;
use s3imports::aws::queue::FileMessage;
use s3imports::processor::{Delivery, Processed, Processor};
use tracing::{error, warn};

/// Deliveries SQS makes before the message goes to the dead-letter queue (the
/// template's `maxReceiveCount`).
pub const ENV_MAX_RECEIVES: &str = "S3IMPORTS_MAX_RECEIVES";

pub async fn handler(
    processor: &Processor,
    clock: &dyn Clock,
    max_receives: u32,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for record in &event.payload.records {
        if let RecordOutcome::Retry(_) = handle_record(processor, clock, max_receives, record).await
        {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

/// What became of one SQS record.
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

/// One SQS record, from the files queue or its dead-letter queue: what the Lambda
/// handler and `s3imports tick` both run.
pub async fn handle_record(
    processor: &Processor,
    clock: &dyn Clock,
    max_receives: u32,
    record: &SqsMessage,
) -> RecordOutcome {
    let id = record.message_id.clone().unwrap_or_default();
    let Some(msg) = record
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<FileMessage>(b).ok())
    else {
        error!(message_id = %id, "message is not a file message; dropped");
        return RecordOutcome::Dropped;
    };
    let from_dlq = record
        .event_source_arn
        .as_deref()
        .and_then(|arn| arn.rsplit(':').next())
        .is_some_and(|queue| queue == processor.stack.dlq_name);
    if from_dlq {
        return match processor.dead_letter(&msg, clock).await {
            Ok(p) => RecordOutcome::DeadLetter(msg, p),
            Err(e) => {
                warn!(message_id = %id, key = %msg.key, error = %e, "dead letter not recorded; will retry");
                RecordOutcome::Retry(e.to_string())
            }
        };
    }
    let receives: u32 = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let delivery = Delivery {
        receive_count: receives,
        last: receives >= max_receives,
        receipt: record.receipt_handle.clone(),
    };
    match processor.process(&msg, &delivery, clock).await {
        Ok(p) => RecordOutcome::File(msg, p),
        Err(e) => {
            warn!(message_id = %id, key = %msg.key, error = %e, "file will be retried");
            RecordOutcome::Retry(e.to_string())
        }
    }
}
