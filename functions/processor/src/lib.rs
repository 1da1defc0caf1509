//! The processor Lambda's handler: each SQS message is one file. Permanent failures
//! are recorded in the ledger and acknowledged; retryable ones are reported as batch
//! item failures so SQS delivers them again (and after `maxReceiveCount`, the last
//! delivery records the failure instead). Messages from the dead-letter queue (files
//! whose processing timed out or crashed every time) are recorded as failed with the
//! last reason.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use s3imports::Clock;
use s3imports::aws::queue::FileMessage;
use s3imports::processor::Processor;
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
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let Some(msg) = record
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str::<FileMessage>(b).ok())
        else {
            // Not ours to process, and retrying cannot help.
            error!(message_id = %id, "message is not a file message; dropped");
            continue;
        };
        let from_dlq = record
            .event_source_arn
            .as_deref()
            .and_then(|arn| arn.rsplit(':').next())
            .is_some_and(|queue| queue == processor.stack.dlq_name);
        if from_dlq {
            if let Err(e) = processor.dead_letter(&msg, clock).await {
                warn!(message_id = %id, key = %msg.key, error = %e, "dead letter not recorded; will retry");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
            continue;
        }
        let receives: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        match processor
            .process(&msg, receives >= max_receives, clock)
            .await
        {
            Ok(_) => {}
            Err(e) => {
                warn!(message_id = %id, key = %msg.key, error = %e, "file will be retried");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    Ok(response)
}
