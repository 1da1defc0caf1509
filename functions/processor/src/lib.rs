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
use s3imports::process::Processor;
use s3imports::process::RecordOutcome;
use s3imports::process::delivery::Delivery;
use tracing::Instrument as _;

/// `dlq_name` tells messages from the dead-letter queue apart.
pub async fn handler(
    processor: &Processor,
    dlq_name: &str,
    clock: &dyn Clock,
    max_receives: u32,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    let deadline = deadline(&event.context);
    // The request id on every line of the invocation (locally too, where no runtime
    // span gives it).
    let span = tracing::error_span!("invocation", request_id = %event.context.request_id);
    for record in &event.payload.records {
        let mut message = queued(record, dlq_name);
        message.deadline = deadline;
        if let RecordOutcome::Retry(_) =
            s3imports::process::handle(processor, clock, max_receives, &message)
                .instrument(span.clone())
                .await
        {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

/// The invocation's deadline (Lambda's, in milliseconds since the epoch) as an
/// instant; None when the context has none (a local run).
pub fn deadline(context: &lambda_runtime::Context) -> Option<tokio::time::Instant> {
    if context.deadline == 0 {
        return None;
    }
    let end = std::time::UNIX_EPOCH + std::time::Duration::from_millis(context.deadline);
    let left = end
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    Some(tokio::time::Instant::now() + left)
}

/// An SQS record of the event as the domain's message.
pub fn queued(record: &SqsMessage, dlq_name: &str) -> Delivery {
    Delivery {
        id: record.message_id.clone().unwrap_or_default(),
        body: record.body.clone(),
        receipt: record.receipt_handle.clone(),
        receive_count: record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1),
        last: false,
        dead_letter: record
            .event_source_arn
            .as_deref()
            .and_then(|arn| arn.rsplit(':').next())
            .is_some_and(|queue| queue == dlq_name),
        deadline: None,
        sent_at: s3imports::process::delivery::sent_at(
            record.attributes.get("SentTimestamp").map(String::as_str),
        ),
    }
}
