//! The processor's ledger writes: a file's lease, checkpoints, chunks and outcome, and
//! closing its run.

use std::collections::HashMap;

use async_trait::async_trait;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::LedgerStore;
use super::items::{
    add_counts, content_from_item, content_sk, file_sk, json_attr, put_new, queued_item, run_sk,
};
use crate::aws::dynamo::{aws_err, build_err};
use crate::aws::dynamo::{
    file_condition_failed, held, is_conditional, send_for_file, transact, transaction_error,
};
use crate::aws::item::{self, get_n, get_s};
use crate::clock::to_key;
use crate::model::checkpoint::Checkpoint;
use crate::model::ledger::{FileOutcome, FileRecord, RunRecord};
use crate::model::ledger::{bounded_reason, chunk_key};
use crate::model::status::{FileStatus, RunStatus};
use crate::ports::{FileLedger, LedgerReads};
use crate::ports::{StartOutcome, StoreError};

#[async_trait]
impl FileLedger for LedgerStore {
    async fn start_file(
        &self,
        import_id: &str,
        key: &str,
        run_id: Option<&str>,
        worker: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<StartOutcome, StoreError> {
        let in_run = if run_id.is_some() {
            " AND run_id = :run"
        } else {
            ""
        };
        let res = self
            .update_item_at(import_id, file_sk(key))
            .set_expression_attribute_values(
                run_id.map(|r| HashMap::from([(":run".to_string(), item::s(r))])),
            )
            .update_expression(
                "SET #status = :processing, lease_owner = :worker, lease_until = :until, \
                 started_at = if_not_exists(started_at, :now) ADD attempts :one, invocations :one",
            )
            .condition_expression(format!(
                "attribute_exists(sk) AND (#status = :queued OR (#status = :processing AND lease_until < :now)){in_run}"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":processing", item::s(FileStatus::Processing.as_str()))
            .expression_attribute_values(":queued", item::s(FileStatus::Queued.as_str()))
            .expression_attribute_values(":worker", item::s(worker))
            .expression_attribute_values(":until", item::s(to_key(lease_until)))
            .expression_attribute_values(":now", item::s(to_key(now)))
            .expression_attribute_values(":one", item::n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match res {
            Ok(out) => Ok(StartOutcome::Started {
                attempt: out
                    .attributes()
                    .and_then(|a| get_n(a, "attempts"))
                    .unwrap_or(1),
                checkpoint: out
                    .attributes()
                    .and_then(|a| get_s(a, "checkpoint"))
                    .and_then(Checkpoint::from_json),
                chunks: out
                    .attributes()
                    .and_then(|a| get_n(a, "chunks_total"))
                    .unwrap_or(0),
            }),
            Err(e) if is_conditional(&e) => {
                let Some(f) = self.file(import_id, key).await? else {
                    return Ok(StartOutcome::Unknown);
                };
                if run_id.is_some_and(|r| r != f.run_id) {
                    return Ok(StartOutcome::Superseded(f.run_id));
                }
                Ok(if f.status.is_final() {
                    StartOutcome::AlreadyDone(f.status)
                } else {
                    StartOutcome::Busy(self.lease_until(import_id, key).await?.unwrap_or(now))
                })
            }
            Err(e) => Err(aws_err("UpdateItem")(e)),
        }
    }

    async fn heartbeat(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let res = self
            .update_held(import_id, key, worker)
            .update_expression("SET lease_until = :until")
            .expression_attribute_values(":until", item::s(to_key(lease_until)))
            .send()
            .await;
        held(res)
    }

    async fn checkpoint(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        checkpoint: &Checkpoint,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let res = self
            .update_held(import_id, key, worker)
            .update_expression(
                "SET checkpoint = :checkpoint, lease_until = :until, attempts = :zero, \
                 rows_total = :total, rows_ingested = :ingested, rows_failed = :failed",
            )
            .expression_attribute_values(":checkpoint", item::s(checkpoint.to_json()))
            .expression_attribute_values(":until", item::s(to_key(lease_until)))
            .expression_attribute_values(":zero", item::n(0))
            .expression_attribute_values(":total", item::n(checkpoint.rows_total))
            .expression_attribute_values(":ingested", item::n(checkpoint.rows_ingested))
            .expression_attribute_values(":failed", item::n(checkpoint.rows_failed))
            .send()
            .await;
        held(res)
    }

    async fn split_file(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        split: &crate::codec::reader::Split,
        chunks: &[FileRecord],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(split).map_err(|e| StoreError::Corrupt {
            id: import_id.to_string(),
            reason: e.to_string(),
        })?;
        let file = Update::builder()
            .table_name(&self.table)
            .key("pk", item::s(import_id))
            .key("sk", item::s(file_sk(key)))
            .update_expression(
                "SET chunk_plan = :split, chunks_total = :n, chunks_done = :zero, lease_until = :ended",
            )
            .condition_expression(
                "lease_owner = :worker AND #status = :processing AND attribute_not_exists(chunk_plan)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":worker", item::s(worker))
            .expression_attribute_values(":processing", item::s(FileStatus::Processing.as_str()))
            .expression_attribute_values(":split", item::s(json))
            .expression_attribute_values(":n", item::n(chunks.len() as u64))
            .expression_attribute_values(":zero", item::n(0))
            // Ended: a redelivered file message takes it at once and sends the chunks.
            .expression_attribute_values(
                ":ended",
                item::s(to_key(now - chrono::Duration::seconds(1))),
            )
            .build()
            .map_err(build_err)?;
        let mut tx = self
            .ddb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(file).build());
        for c in chunks {
            tx = tx.transact_items(put_new(&self.table, queued_item(c, now))?);
        }
        send_for_file(tx).await
    }

    async fn finish_chunk(
        &self,
        import_id: &str,
        key: &str,
        chunk: u32,
        worker: Option<&str>,
        outcome: &FileOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<(u32, u32)>, StoreError> {
        let chunk_update = self
            .outcome_update(
                import_id,
                &chunk_key(key, chunk),
                None,
                worker,
                outcome,
                now,
            )
            .await?;
        let file = Update::builder()
            .table_name(&self.table)
            .key("pk", item::s(import_id))
            .key("sk", item::s(file_sk(key)))
            // The file's rows so far are its ended chunks'.
            .update_expression(
                "ADD chunks_done :one, rows_total :rt, rows_ingested :ri, rows_failed :rf",
            )
            .condition_expression("attribute_exists(chunk_plan)")
            .expression_attribute_values(":one", item::n(1));
        let file = add_counts(file, outcome).build().map_err(build_err)?;
        let res = transact(
            self.ddb
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(chunk_update).build())
                .transact_items(TransactWriteItem::builder().update(file).build()),
        )
        .await;
        match res {
            Ok(_) => {
                let f = self.file(import_id, key).await?;
                Ok(f.map(|f| (f.chunks_done, f.chunks_total)))
            }
            Err(e) if file_condition_failed(&e) => Ok(None),
            Err(e) => Err(transaction_error(e)),
        }
    }

    async fn claim_close(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let res = self
            .update_item_at(import_id, file_sk(key))
            .update_expression("SET close_owner = :worker, close_until = :until")
            .condition_expression(
                "chunks_done >= chunks_total AND (attribute_not_exists(close_until) \
                 OR close_until < :now OR close_owner = :worker)",
            )
            .expression_attribute_values(":worker", item::s(worker))
            .expression_attribute_values(":until", item::s(to_key(until)))
            .expression_attribute_values(":now", item::s(to_key(now)))
            .send()
            .await;
        held(res)
    }

    async fn release_lease(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        self.update_held(import_id, key, worker)
            .update_expression(
                "SET #status = :queued, last_error = :error REMOVE lease_owner, lease_until",
            )
            .expression_attribute_values(":error", item::s(bounded_reason(error)))
            .expression_attribute_values(":queued", item::s(FileStatus::Queued.as_str()))
            .send()
            .await
            .map_err(aws_err("UpdateItem"))?;
        Ok(())
    }

    async fn finish_file(
        &self,
        import_id: &str,
        run_id: &str,
        key: &str,
        worker: Option<&str>,
        outcome: &FileOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<RunRecord>, StoreError> {
        let status = outcome.status();
        let file = self
            .outcome_update(import_id, key, Some(run_id), worker, outcome, now)
            .await?;
        let counter = match status {
            FileStatus::Succeeded => "files_succeeded",
            FileStatus::PartiallySucceeded => "files_partial",
            _ => "files_failed",
        };
        // The run's set of keys in use, for a rotation's "is the old key still needed?".
        let keys = if outcome.decrypted_with.is_some() {
            ", keys_used :key"
        } else {
            ""
        };
        let mut run = Update::builder()
            .table_name(&self.table)
            .key("pk", item::s(import_id))
            .key("sk", item::s(run_sk(run_id)))
            .update_expression(format!(
                "ADD files_done :one, {counter} :one, rows_total :rt, rows_ingested :ri, rows_failed :rf{keys}"
            ))
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_values(":one", item::n(1));
        if let Some(k) = &outcome.decrypted_with {
            run = run.expression_attribute_values(":key", AttributeValue::Ss(vec![k.clone()]));
        }
        let run = add_counts(run, outcome).build().map_err(build_err)?;
        let res = transact(
            self.ddb
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(file).build())
                .transact_items(TransactWriteItem::builder().update(run).build()),
        )
        .await;
        match res {
            Ok(_) => self.run(import_id, run_id).await,
            // Refused: the file is final or another worker holds it (its condition
            // failed). Any other cancellation (a conflict with a concurrent write to the
            // run, a throttle) is worth a retry.
            Err(e) if file_condition_failed(&e) => Ok(None),
            Err(e) => Err(transaction_error(e)),
        }
    }

    async fn close_run(
        &self,
        run: &RunRecord,
        worker: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let status =
            RunStatus::from_files(run.files_succeeded, run.files_partial, run.files_failed);
        let res = self
            .update_item_at(&run.import_id, run_sk(&run.run_id))
            .update_expression(
                "SET #status = :status, finished_at = if_not_exists(finished_at, :now), \
                 notify_owner = :worker, notify_until = :until",
            )
            .condition_expression(
                "files_done >= files_total AND attribute_not_exists(notified) \
                 AND (attribute_not_exists(notify_until) OR notify_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", item::s(status.as_str()))
            .expression_attribute_values(":now", item::s(to_key(now)))
            .expression_attribute_values(":worker", item::s(worker))
            .expression_attribute_values(":until", item::s(to_key(until)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            // Ours all the same if an earlier send of this request took effect.
            Err(e) if is_conditional(&e) => Ok(self
                .raw(&run.import_id, &run_sk(&run.run_id))
                .await?
                .is_some_and(|i| {
                    !i.contains_key("notified")
                        && get_s(&i, "notify_owner") == Some(worker)
                        && get_s(&i, "notify_until") == Some(to_key(until).as_str())
                })),
            Err(e) => Err(aws_err("UpdateItem")(e)),
        }
    }

    async fn release_notification(
        &self,
        import_id: &str,
        run_id: &str,
        worker: &str,
    ) -> Result<(), StoreError> {
        let res = self
            .update_item_at(import_id, run_sk(run_id))
            .update_expression("REMOVE notify_owner, notify_until")
            .condition_expression("notify_owner = :worker AND attribute_not_exists(notified)")
            .expression_attribute_values(":worker", item::s(worker))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Ok(()),
            Err(e) => Err(aws_err("UpdateItem")(e)),
        }
    }

    async fn mark_notified(&self, import_id: &str, run_id: &str) -> Result<(), StoreError> {
        self.update_item_at(import_id, run_sk(run_id))
            .update_expression("SET notified = :t REMOVE notify_owner, notify_until")
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(aws_err("UpdateItem"))?;
        Ok(())
    }

    async fn remember_content(
        &self,
        import_id: &str,
        sha256: &str,
        key: &str,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::model::ledger::DuplicateOf>, StoreError> {
        let out = self
            .update_item_at(import_id, content_sk(sha256))
            .update_expression(
                "SET first_key = if_not_exists(first_key, :key), \
                 first_run = if_not_exists(first_run, :run), first_at = if_not_exists(first_at, :now)",
            )
            .expression_attribute_values(":key", item::s(key))
            .expression_attribute_values(":run", item::s(run_id))
            .expression_attribute_values(":now", item::s(to_key(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(aws_err("UpdateItem"))?;
        Ok(out
            .attributes()
            .and_then(content_from_item)
            .filter(|first| first.key != key))
    }

    async fn forget_content(
        &self,
        import_id: &str,
        sha256: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let res = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key("pk", item::s(import_id))
            .key("sk", item::s(content_sk(sha256)))
            .condition_expression("first_key = :key")
            .expression_attribute_values(":key", item::s(key))
            .send()
            .await;
        match res {
            // Another file holds it: nothing to give back.
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Ok(()),
            Err(e) => Err(aws_err("DeleteItem")(e)),
        }
    }

    async fn set_run_alerts(
        &self,
        import_id: &str,
        run_id: &str,
        sent: &crate::model::ledger::AlertsSent,
    ) -> Result<(), StoreError> {
        self.update_item_at(import_id, run_sk(run_id))
            .update_expression("SET alerts = :sent")
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_values(":sent", json_attr(sent))
            .send()
            .await
            .map_err(aws_err("UpdateItem"))?;
        Ok(())
    }

    async fn claim_post_process(
        &self,
        import_id: &str,
        key: &str,
        run_id: &str,
    ) -> Result<bool, StoreError> {
        let pending = crate::model::post_process::PostProcessed {
            pending: true,
            ..Default::default()
        };
        let res = self
            .update_item_at(import_id, file_sk(key))
            .update_expression("SET post_process = :pending")
            .condition_expression("attribute_not_exists(post_process) AND run_id = :run")
            .expression_attribute_values(":pending", json_attr(&pending))
            .expression_attribute_values(":run", item::s(run_id))
            .send()
            .await;
        held(res)
    }

    async fn set_post_process(
        &self,
        import_id: &str,
        key: &str,
        run_id: &str,
        done: &crate::model::post_process::PostProcessed,
    ) -> Result<(), StoreError> {
        let res = self
            .update_item_at(import_id, file_sk(key))
            .update_expression("SET post_process = :done")
            .condition_expression("run_id = :run")
            .expression_attribute_values(":done", json_attr(done))
            .expression_attribute_values(":run", item::s(run_id))
            .send()
            .await;
        match res {
            // A replay has taken the file on since: its own run records its own.
            Err(e) if is_conditional(&e) => Ok(()),
            other => other.map(|_| ()).map_err(aws_err("UpdateItem")),
        }
    }
}
