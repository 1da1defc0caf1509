//! The ledger table: `pk` = import id; `sk` = `FILE#<key>` (bucket key: folder + name)
//! or `RUN#<run id>`. Every state change is a conditional write, so a redelivered
//! message or a second tick never counts a file twice.
//!
//! `items` encodes the records; `reads`, `runs` and `files` implement the three ports
//! of [`crate::ports`] (what every role reads, discovery's writes, the processor's);
//! `crate::aws::dynamo` reads DynamoDB's conditional and transaction answers.

mod files;
mod items;
mod reads;
mod runs;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Update};
use chrono::{DateTime, Utc};

use self::items::{file_from_item, file_sk, json_attr};
use crate::aws::backoff;
use crate::aws::dynamo::{aws_err, build_err};
use crate::aws::item::{self, Item, get_s};
use crate::clock::{from_key, to_key};
use crate::error::{ErrorClass, ServiceError};
use crate::model::ledger::bounded_reason;
use crate::model::ledger::{FileOutcome, FileRecord};
use crate::model::status::FileStatus;
use crate::ports::StoreError;

/// How many bytes of file keys a run item lists: DynamoDB items hold at most 400 KB,
/// and a run may find many thousands of files (each still has its own ledger item).
pub const RUN_FILES_BUDGET: usize = 256 * 1024;

/// The keys a run item lists: the first ones that fit in [`RUN_FILES_BUDGET`].
pub fn listed(keys: &[String]) -> &[String] {
    let mut used = 0;
    let n = keys
        .iter()
        .take_while(|k| {
            used += k.len() + 4;
            used <= RUN_FILES_BUDGET
        })
        .count();
    &keys[..n]
}

/// DynamoDB's most keys in one BatchGetItem.
pub(crate) const BATCH_GET_KEYS: usize = 100;

#[derive(Debug, Clone)]
pub struct LedgerStore {
    ddb: Client,
    table: String,
}

impl LedgerStore {
    /// An UpdateItem on one ledger item (import id, sort key).
    fn update_item_at(
        &self,
        pk: &str,
        sk: impl Into<String>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", item::s(pk))
            .key("sk", item::s(sk))
    }

    /// An UpdateItem on a file this worker holds the lease of (processing, owned).
    fn update_held(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.update_item_at(import_id, file_sk(key))
            .condition_expression("lease_owner = :worker AND #status = :processing")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":worker", item::s(worker))
            .expression_attribute_values(":processing", item::s(FileStatus::Processing.as_str()))
    }

    /// The update that records an outcome on a file (or chunk) item: only while it
    /// is not final, and (with `worker`) only by its lease holder.
    async fn outcome_update(
        &self,
        import_id: &str,
        key: &str,
        run_id: Option<&str>,
        worker: Option<&str>,
        outcome: &FileOutcome,
        now: DateTime<Utc>,
    ) -> Result<Update, StoreError> {
        let status = outcome.status();
        let started = self
            .raw(import_id, &file_sk(key))
            .await?
            .and_then(|i| get_s(&i, "started_at").and_then(from_key));
        let duration_ms = started.map_or(0, |s| (now - s).num_milliseconds().max(0));
        let mut set = vec![
            "#status = :status",
            "rows_total = :rt",
            "rows_ingested = :ri",
            "rows_failed = :rf",
            "bytes = :bytes",
            "finished_at = :now",
            "duration_ms = :dur",
        ];
        let mut file = Update::builder()
            .table_name(&self.table)
            .key("pk", item::s(import_id))
            .key("sk", item::s(file_sk(key)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", item::s(status.as_str()))
            .expression_attribute_values(":rt", item::n(outcome.rows_total))
            .expression_attribute_values(":ri", item::n(outcome.rows_ingested))
            .expression_attribute_values(":rf", item::n(outcome.rows_failed))
            .expression_attribute_values(":bytes", item::n(outcome.bytes))
            .expression_attribute_values(":now", item::s(to_key(now)))
            .expression_attribute_values(":dur", item::n(duration_ms))
            .expression_attribute_values(":s", item::s(FileStatus::Succeeded.as_str()))
            .expression_attribute_values(":p", item::s(FileStatus::PartiallySucceeded.as_str()))
            .expression_attribute_values(":f", item::s(FileStatus::Failed.as_str()));
        if let Some(r) = &outcome.reason {
            set.push("reason = :reason");
            file = file.expression_attribute_values(":reason", item::s(bounded_reason(r)));
        }
        if let Some(r) = &outcome.report_key {
            set.push("report_key = :report");
            file = file.expression_attribute_values(":report", item::s(r));
        }
        if let Some(k) = &outcome.decrypted_with {
            set.push("decrypted_with = :key");
            file = file.expression_attribute_values(":key", item::s(k));
        }
        if let Some(sha) = &outcome.sha256 {
            set.push("sha256 = :sha");
            file = file.expression_attribute_values(":sha", item::s(sha));
        }
        if let Some(d) = &outcome.duplicate_of {
            set.push("duplicate_of = :dup");
            file = file.expression_attribute_values(":dup", json_attr(d));
        }
        // Only in its run: a replay has moved the file on to another one.
        let not_final = match run_id {
            Some(run) => {
                file = file.expression_attribute_values(":run", item::s(run));
                "attribute_exists(sk) AND NOT #status IN (:s, :p, :f) AND run_id = :run"
            }
            None => "attribute_exists(sk) AND NOT #status IN (:s, :p, :f)",
        };
        file = match worker {
            Some(w) => file
                .condition_expression(format!("{not_final} AND lease_owner = :worker"))
                .expression_attribute_values(":worker", item::s(w)),
            None => file.condition_expression(not_final),
        };
        file.update_expression(format!(
            "SET {} REMOVE lease_owner, lease_until",
            set.join(", ")
        ))
        .build()
        .map_err(build_err)
    }

    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self {
            ddb,
            table: table.into(),
        }
    }

    /// The file items of `keys` (those the ledger has, in no particular order): one
    /// BatchGetItem per 100 keys, retrying what DynamoDB leaves unprocessed.
    async fn batch_get(
        &self,
        import_id: &str,
        keys: &[String],
        projection: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut pending: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|k| {
                    HashMap::from([
                        ("pk".to_string(), item::s(import_id)),
                        ("sk".to_string(), item::s(file_sk(k))),
                    ])
                })
                .collect();
            let mut tries = 0;
            while !pending.is_empty() {
                let req = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .set_projection_expression(projection.map(str::to_string))
                    .set_expression_attribute_names(
                        projection.filter(|p| p.contains("#status")).map(|_| {
                            HashMap::from([("#status".to_string(), "status".to_string())])
                        }),
                    )
                    .consistent_read(true)
                    .build()
                    .map_err(build_err)?;
                let mut out = self
                    .ddb
                    .batch_get_item()
                    .request_items(&self.table, req)
                    .send()
                    .await
                    .map_err(aws_err("BatchGetItem"))?;
                if let Some(items) = out.responses.as_mut().and_then(|r| r.remove(&self.table)) {
                    found.extend(items);
                }
                pending = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                tries += 1;
                if !pending.is_empty() {
                    if tries > 8 {
                        return Err(StoreError::Service(ServiceError::new(
                            "DynamoDB",
                            "BatchGetItem",
                            ErrorClass::Retryable,
                            "DynamoDB kept returning unprocessed keys",
                        )));
                    }
                    backoff(tries).await;
                }
            }
        }
        Ok(found)
    }

    /// The file records of `keys`, in that order (keys the ledger lacks are left out).
    pub async fn files(
        &self,
        import_id: &str,
        keys: &[String],
    ) -> Result<Vec<FileRecord>, StoreError> {
        let mut by_key: HashMap<String, FileRecord> = self
            .batch_get(import_id, keys, None)
            .await?
            .iter()
            .map(|i| file_from_item(import_id, i))
            .map(|f| (f.key.clone(), f))
            .collect();
        Ok(keys.iter().filter_map(|k| by_key.remove(k)).collect())
    }

    async fn lease_until(
        &self,
        import_id: &str,
        key: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .raw(import_id, &file_sk(key))
            .await?
            .and_then(|i| get_s(&i, "lease_until").and_then(from_key)))
    }

    async fn raw(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", item::s(pk))
            .key("sk", item::s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws_err("GetItem"))?;
        Ok(out.item)
    }
}

#[cfg(test)]
mod tests;
