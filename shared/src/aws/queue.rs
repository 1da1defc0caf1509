//! The files queue: one message per file, sent ten to a `SendMessageBatch`.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};

use super::configs::StoreError;
use super::{classify_sdk, describe_sdk};
use crate::error::ErrorClass;

/// What the processor needs to process one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMessage {
    pub import_id: String,
    pub run_id: String,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
}

#[derive(Debug, Clone)]
pub struct FileQueue {
    sqs: Client,
    url: String,
}

impl FileQueue {
    pub fn new(sqs: Client, url: impl Into<String>) -> Self {
        Self {
            sqs,
            url: url.into(),
        }
    }

    /// Finds the queue's URL from its name (once, at start-up).
    pub async fn by_name(sqs: Client, name: &str) -> Result<Self, StoreError> {
        let out = sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| StoreError::Aws {
                class: classify_sdk(&e),
                message: format!("queue `{name}`: {}", describe_sdk(&e)),
            })?;
        Ok(Self::new(sqs, out.queue_url().unwrap_or_default()))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn client(&self) -> &Client {
        &self.sqs
    }

    /// Sends every message; returns the ones SQS refused (after one retry of those).
    pub async fn send_all(&self, messages: &[FileMessage]) -> Result<Vec<FileMessage>, StoreError> {
        let mut refused = Vec::new();
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
                    .map_err(|e| StoreError::Aws {
                        message: e.to_string(),
                        class: ErrorClass::Permanent,
                    })?;
                let out = self
                    .sqs
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| StoreError::Aws {
                        class: classify_sdk(&e),
                        message: describe_sdk(&e),
                    })?;
                let failed: Vec<&FileMessage> = out
                    .failed()
                    .iter()
                    .filter_map(|f| f.id().parse::<usize>().ok())
                    .filter_map(|i| pending.get(i).copied())
                    .collect();
                if failed.is_empty() {
                    break;
                }
                if attempt == 1 {
                    refused.extend(failed.into_iter().cloned());
                } else {
                    pending = failed;
                }
            }
        }
        Ok(refused)
    }
}
