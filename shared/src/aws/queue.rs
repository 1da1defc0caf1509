//! The files queue: one message per file, sent ten to a `SendMessageBatch`.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use tokio::sync::OnceCell;

use super::service_error;
use crate::error::{ErrorClass, ServiceError};
use crate::ports::{FileMessage, Queue, StoreError};
use crate::process::delivery::Delivery;

/// A message received from the files queue by polling it (as `s3imports tick` does),
/// as the domain's message.
pub fn queued(m: &aws_sdk_sqs::types::Message) -> Delivery {
    use aws_sdk_sqs::types::MessageSystemAttributeName as A;
    Delivery {
        id: m.message_id().unwrap_or_default().to_string(),
        body: m.body().map(str::to_string),
        receipt: m.receipt_handle().map(str::to_string),
        receive_count: m
            .attributes()
            .and_then(|a| a.get(&A::ApproximateReceiveCount))
            .and_then(|c| c.parse().ok())
            .unwrap_or(1),
        last: false,
        dead_letter: false,
        deadline: None,
        sent_at: crate::process::delivery::sent_at(
            m.attributes()
                .and_then(|a| a.get(&A::SentTimestamp))
                .map(String::as_str),
        ),
    }
}

/// SQS's longest visibility timeout (12 hours).
pub const MAX_VISIBILITY_SECS: u32 = 43_200;

#[derive(Debug, Clone)]
pub struct SqsQueue {
    sqs: Client,
    name: String,
    /// Found on first use, not at start-up: a Lambda that cannot reach SQS then fails
    /// an invocation (reported, retried) instead of dying in init unreported.
    url: Arc<OnceCell<String>>,
}

impl SqsQueue {
    /// The queue by name; its URL is looked up once, when first needed.
    pub fn named(sqs: Client, name: &str) -> Self {
        Self {
            sqs,
            name: name.to_string(),
            url: Arc::new(OnceCell::new()),
        }
    }

    /// The queue's URL (one `GetQueueUrl` the first time).
    pub async fn url(&self) -> Result<String, StoreError> {
        self.url
            .get_or_try_init(|| async {
                let out = self
                    .sqs
                    .get_queue_url()
                    .queue_name(&self.name)
                    .send()
                    .await
                    .map_err(|e| {
                        let mut e = service_error("SQS", "GetQueueUrl", e);
                        e.message = format!("queue `{}`: {}", self.name, e.message);
                        e
                    })?;
                Ok(out.queue_url().unwrap_or_default().to_string())
            })
            .await
            .cloned()
    }

    pub fn client(&self) -> &Client {
        &self.sqs
    }

    /// Receives up to ten messages (no long polling), each with its system attributes
    /// and invisible for `visibility` seconds when given: how `s3imports tick` and the
    /// bench poll the queue in place of the Lambda's event source.
    pub async fn receive(&self, visibility: Option<i32>) -> Result<Vec<Delivery>, StoreError> {
        let url = self.url().await?;
        let got = self
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .set_visibility_timeout(visibility)
            .send()
            .await
            .map_err(|e| service_error("SQS", "ReceiveMessage", e))?;
        Ok(got.messages().iter().map(queued).collect())
    }

    /// Deletes a received message.
    pub async fn delete(&self, receipt: &str) -> Result<(), StoreError> {
        let url = self.url().await?;
        self.sqs
            .delete_message()
            .queue_url(&url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| service_error("SQS", "DeleteMessage", e))?;
        Ok(())
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn set_visibility(&self, receipt: &str, seconds: u32) -> Result<(), StoreError> {
        let url = self.url().await?;
        self.sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(seconds.min(MAX_VISIBILITY_SECS)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| service_error("SQS", "ChangeMessageVisibility", e))?;
        Ok(())
    }

    async fn send_all(&self, messages: &[FileMessage]) -> Result<Vec<FileMessage>, StoreError> {
        let mut refused = Vec::new();
        let url = self.url().await?;
        for chunk in messages.chunks(10) {
            let mut pending: Vec<&FileMessage> = chunk.iter().collect();
            for attempt in 0..2 {
                let entries = pending
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(serde_json::to_string(m).unwrap_or_default())
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        ServiceError::new(
                            "SQS",
                            "SendMessageBatch",
                            ErrorClass::Permanent,
                            e.to_string(),
                        )
                        .with_source(e)
                    })?;
                let out = self
                    .sqs
                    .send_message_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| service_error("SQS", "SendMessageBatch", e))?;
                let failed: Vec<(&FileMessage, bool)> = out
                    .failed()
                    .iter()
                    .filter_map(|f| {
                        let m = pending.get(f.id().parse::<usize>().ok()?).copied()?;
                        Some((m, f.sender_fault()))
                    })
                    .collect();
                if failed.is_empty() {
                    break;
                }
                if attempt == 1 {
                    // Only what SQS will never take is refused; a message SQS failed on
                    // its side stays queued in the ledger, and discovery sends it again.
                    for (m, sender_fault) in failed {
                        if sender_fault {
                            refused.push(m.clone());
                        } else {
                            tracing::warn!(key = %m.key, "SQS could not take the message; discovery will send it again");
                        }
                    }
                } else {
                    pending = failed.into_iter().map(|(m, _)| m).collect();
                }
            }
        }
        Ok(refused)
    }
}
