//! Writes rows to their DynamoDB table: puts in `BatchWriteItem`s of at most 25
//! items with unprocessed items retried with backoff, upserts as `UpdateItem`s with
//! bounded concurrency. A row counts as ingested only once DynamoDB took it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::StreamExt;

use super::backoff;
use super::configs::{StoreError, aws_err_ref, build_err};
use super::{classify_sdk, describe_sdk};
use crate::error::ErrorClass;
use crate::sink::Write;

/// DynamoDB's limit on items per `BatchWriteItem`.
pub const BATCH_LIMIT: usize = 25;
/// Upserts in flight at once per file.
const UPDATE_CONCURRENCY: usize = 16;
const MAX_TRIES: u32 = 8;

/// A row DynamoDB refused for good (e.g. an item over 400 KB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub row: u64,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct DynamoSink {
    ddb: Client,
    table: String,
    requests: Arc<AtomicU64>,
}

impl DynamoSink {
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self::counting(ddb, table, Arc::new(AtomicU64::new(0)))
    }

    /// A sink that adds its requests to a shared counter.
    pub fn counting(ddb: Client, table: impl Into<String>, requests: Arc<AtomicU64>) -> Self {
        Self {
            ddb,
            table: table.into(),
            requests,
        }
    }

    /// DynamoDB requests made so far (for benchmarks).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Writes rows; returns the rows refused for good. A retryable failure (throttling
    /// that outlasts the retries, a network error) fails the whole call, so the file is
    /// retried; the writes are idempotent.
    pub async fn write(&self, rows: Vec<(u64, Write)>) -> Result<Vec<RejectedRow>, StoreError> {
        let (puts, updates): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, w)| w.is_put());
        let mut rejected = Vec::new();
        for chunk in puts.chunks(BATCH_LIMIT) {
            rejected.extend(self.put_batch(chunk).await?);
        }
        let results: Vec<Result<Option<RejectedRow>, StoreError>> = futures::stream::iter(updates)
            .map(|(row, w)| async move { self.update(row, w).await })
            .buffer_unordered(UPDATE_CONCURRENCY)
            .collect()
            .await;
        for r in results {
            rejected.extend(r?);
        }
        Ok(rejected)
    }

    async fn put_batch(&self, chunk: &[(u64, Write)]) -> Result<Vec<RejectedRow>, StoreError> {
        let mut pending: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
        for (_, w) in chunk {
            if let Write::Put(item) = w {
                pending.push(
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item.clone()))
                                .build()
                                .map_err(build_err)?,
                        )
                        .build(),
                );
            }
        }
        let mut tries = 0;
        while !pending.is_empty() {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let res = self
                .ddb
                .batch_write_item()
                .request_items(&self.table, pending.clone())
                .send()
                .await;
            match res {
                Ok(out) => {
                    pending = out
                        .unprocessed_items()
                        .and_then(|u| u.get(&self.table))
                        .cloned()
                        .unwrap_or_default();
                }
                Err(e) if classify_sdk(&e) == ErrorClass::Permanent => {
                    // One bad item fails the whole batch: find it by writing one by one.
                    return self.put_each(chunk).await;
                }
                Err(e) if tries + 1 >= MAX_TRIES => return Err(aws_err_ref(&e)),
                Err(_) => {}
            }
            tries += 1;
            if !pending.is_empty() {
                if tries >= MAX_TRIES {
                    return Err(StoreError::Aws {
                        message: format!(
                            "DynamoDB left {} items unprocessed after {MAX_TRIES} tries",
                            pending.len()
                        ),
                        class: ErrorClass::Retryable,
                    });
                }
                backoff(tries).await;
            }
        }
        Ok(Vec::new())
    }

    async fn put_each(&self, chunk: &[(u64, Write)]) -> Result<Vec<RejectedRow>, StoreError> {
        let mut rejected = Vec::new();
        for (row, w) in chunk {
            let Write::Put(item) = w else { continue };
            self.requests.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self
                .ddb
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .send()
                .await
            {
                if classify_sdk(&e) == ErrorClass::Retryable {
                    return Err(aws_err_ref(&e));
                }
                rejected.push(RejectedRow {
                    row: *row,
                    reason: format!("DynamoDB refused the row: {}", describe_sdk(&e)),
                });
            }
        }
        Ok(rejected)
    }

    async fn update(&self, row: u64, w: Write) -> Result<Option<RejectedRow>, StoreError> {
        let Write::Update { key, set } = w else {
            return Ok(None);
        };
        let mut names = HashMap::new();
        let mut values: HashMap<String, AttributeValue> = HashMap::new();
        let mut parts = Vec::with_capacity(set.len());
        for (i, (name, value)) in set.into_iter().enumerate() {
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":v{i}"), value);
            parts.push(format!("#a{i} = :v{i}"));
        }
        let expression = format!("SET {}", parts.join(", "));
        let mut tries = 0;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let res = self
                .ddb
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression(&expression)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(None),
                Err(e) if classify_sdk(&e) == ErrorClass::Permanent => {
                    return Ok(Some(RejectedRow {
                        row,
                        reason: format!("DynamoDB refused the row: {}", describe_sdk(&e)),
                    }));
                }
                Err(e) => {
                    tries += 1;
                    if tries >= MAX_TRIES {
                        return Err(aws_err_ref(&e));
                    }
                    backoff(tries).await;
                }
            }
        }
    }
}
