//! Discovery's ledger writes: runs, the files they claim, and the runs started by hand.

use std::collections::HashMap;

use async_trait::async_trait;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::items::{
    file_from_item, file_sk, json_attr, one_file_run_item, put_new, queued_item, run_sk,
};
use super::{LedgerStore, listed};
use crate::aws::dynamo::{aws_err, build_err};
use crate::aws::dynamo::{held, is_conditional, send_for_file, transaction_error};
use crate::aws::item::{self, get_s};
use crate::clock::to_key;
use crate::model::ledger::{FileOutcome, FileRecord, ManualRun, RunRecord};
use crate::model::ledger::{bounded_reason, chunk_key};
use crate::model::status::{FileStatus, RunStatus};
use crate::ports::{FileLedger, RunLedger};
use crate::ports::{KnownFile, StoreError};

#[async_trait]
impl RunLedger for LedgerStore {
    async fn create_run(
        &self,
        import_id: &str,
        run_id: &str,
        manual: Option<&ManualRun>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut put = self.ddb.put_item();
        if let Some(m) = manual {
            put = put
                .item("requested_by", item::s(&m.requested_by))
                .item("requested_via", item::s(&m.via));
        }
        put.table_name(&self.table)
            .item("pk", item::s(import_id))
            .item("sk", item::s(run_sk(run_id)))
            .item("run_id", item::s(run_id))
            .item("status", item::s(RunStatus::Processing.as_str()))
            .item("started_at", item::s(to_key(now)))
            .item("files_total", item::n(0))
            .item("files_done", item::n(0))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await
            .map_err(aws_err("PutItem"))?;
        Ok(())
    }

    async fn known_files(
        &self,
        import_id: &str,
        keys: &[String],
    ) -> Result<HashMap<String, KnownFile>, StoreError> {
        let items = self
            .batch_get(
                import_id,
                keys,
                Some("sk, run_id, #status, attempts, queued_at, etag, changed_etag"),
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                let key = get_s(i, "sk")?.strip_prefix("FILE#")?.to_string();
                let f = file_from_item(import_id, i);
                Some((
                    key,
                    KnownFile {
                        run_id: f.run_id,
                        status: f.status,
                        attempts: f.attempts,
                        queued_at: f.queued_at,
                        etag: f.etag,
                        changed_etag: f.changed_etag,
                    },
                ))
            })
            .collect())
    }

    async fn claim_file(&self, f: &FileRecord, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let res = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(queued_item(f, now)))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            // The SDK may have sent the request again after the first one took effect
            // (a timeout after the write): the claim is ours if it names our run.
            Err(e) if is_conditional(&e) => Ok(self
                .raw(&f.import_id, &file_sk(&f.key))
                .await?
                .is_some_and(|i| get_s(&i, "run_id") == Some(f.run_id.as_str()))),
            Err(e) => Err(aws_err("PutItem")(e)),
        }
    }

    async fn requeue_file(
        &self,
        import_id: &str,
        key: &str,
        queued_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let res = self
            .update_item_at(import_id, file_sk(key))
            .update_expression("SET queued_at = :now")
            .condition_expression("#status = :queued AND attempts = :zero AND queued_at = :then")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":queued", item::s(FileStatus::Queued.as_str()))
            .expression_attribute_values(":zero", item::n(0))
            .expression_attribute_values(":then", item::s(to_key(queued_at)))
            .expression_attribute_values(":now", item::s(to_key(now)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            // Ours all the same if an earlier send of this request took effect.
            Err(e) if is_conditional(&e) => {
                Ok(self.raw(import_id, &file_sk(key)).await?.is_some_and(|i| {
                    get_s(&i, "status") == Some(FileStatus::Queued.as_str())
                        && get_s(&i, "queued_at") == Some(to_key(now).as_str())
                }))
            }
            Err(e) => Err(aws_err("UpdateItem")(e)),
        }
    }

    async fn set_run_files(
        &self,
        import_id: &str,
        run_id: &str,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut req = self
            .update_item_at(import_id, run_sk(run_id))
            .expression_attribute_values(":n", item::n(keys.len()));
        if keys.is_empty() {
            req = req
                .update_expression("SET files_total = :n, #status = :status, finished_at = :now")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", item::s(RunStatus::NoNewFiles.as_str()))
                .expression_attribute_values(":now", item::s(to_key(now)));
        } else {
            req = req
                .update_expression("SET files_total = :n, files = :files")
                .expression_attribute_values(
                    ":files",
                    AttributeValue::L(listed(keys).iter().map(item::s).collect()),
                );
        }
        req.send().await.map_err(aws_err("UpdateItem"))?;
        Ok(())
    }

    async fn fail_run(
        &self,
        import_id: &str,
        run_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Only a run that was recorded: one whose record failed stays unwritten.
        let res = self
            .update_item_at(import_id, run_sk(run_id))
            .update_expression("SET #status = :status, reason = :reason, finished_at = :now")
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", item::s(RunStatus::Failed.as_str()))
            .expression_attribute_values(":reason", item::s(bounded_reason(reason)))
            .expression_attribute_values(":now", item::s(to_key(now)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Ok(()),
            Err(e) => Err(aws_err("UpdateItem")(e)),
        }
    }

    async fn replay_file(
        &self,
        file: &FileRecord,
        start: &crate::ports::ReplayStart<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let import_id = file.import_id.as_str();
        let mut history = file.history.clone();
        history.push(file.past());
        let excess = history
            .len()
            .saturating_sub(crate::model::ledger::MAX_HISTORY);
        history.drain(..excess);
        // Only the outcome this replay read: a file started again meanwhile (another
        // replay) has moved on to another run.
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", item::s(import_id))
            .key("sk", item::s(file_sk(&file.key)))
            .update_expression(
                "SET run_id = :run, #status = :queued, queued_at = :now, attempts = :zero, \
                 invocations = :zero, chunks_total = :zero, chunks_done = :zero, #size = :size, \
                 etag = :etag, history = :history, rows_total = :zero, rows_ingested = :zero, \
                 rows_failed = :zero, #bytes = :zero \
                 REMOVE started_at, finished_at, duration_ms, reason, report_key, checkpoint, \
                 chunk_plan, last_error, decrypted_with, lease_owner, lease_until, sha256, \
                 duplicate_of, changed_etag, post_process, close_owner, close_until",
            )
            .condition_expression("run_id = :previous AND #status = :was")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#size", "size")
            .expression_attribute_names("#bytes", "bytes")
            .expression_attribute_values(":run", item::s(start.run_id))
            .expression_attribute_values(":queued", item::s(FileStatus::Queued.as_str()))
            .expression_attribute_values(":now", item::s(to_key(now)))
            .expression_attribute_values(":zero", item::n(0))
            .expression_attribute_values(":size", item::n(start.size))
            .expression_attribute_values(":etag", item::s(start.etag))
            .expression_attribute_values(":history", json_attr(&history))
            .expression_attribute_values(":previous", item::s(&file.run_id))
            .expression_attribute_values(":was", item::s(file.status.as_str()))
            .build()
            .map_err(build_err)?;
        let mut run = one_file_run_item(import_id, start.run_id, &file.key, start.manual, now);
        run.insert("replay".into(), json_attr(start.replay));
        let mut tx = self
            .ddb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(put_new(&self.table, run)?);
        // A split file's chunks are cut again (their items are claimed afresh).
        for i in 0..file.chunks_total {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .key("pk", item::s(import_id))
                .key("sk", item::s(file_sk(&chunk_key(&file.key, i))))
                .build()
                .map_err(build_err)?;
            tx = tx.transact_items(TransactWriteItem::builder().delete(delete).build());
        }
        send_for_file(tx).await
    }

    async fn note_changed(
        &self,
        import_id: &str,
        key: &str,
        etag_now: &str,
    ) -> Result<bool, StoreError> {
        let res = self
            .update_item_at(import_id, file_sk(key))
            .update_expression("SET changed_etag = :now")
            .condition_expression(
                "attribute_exists(sk) AND etag <> :now \
                 AND (attribute_not_exists(changed_etag) OR changed_etag <> :now)",
            )
            .expression_attribute_values(":now", item::s(etag_now))
            .send()
            .await;
        held(res)
    }

    async fn set_run_changed(
        &self,
        import_id: &str,
        run_id: &str,
        changed: &[crate::model::ledger::ChangedFile],
    ) -> Result<(), StoreError> {
        self.update_item_at(import_id, run_sk(run_id))
            .update_expression("SET changed_files = :changed")
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_values(":changed", json_attr(&changed))
            .send()
            .await
            .map_err(aws_err("UpdateItem"))?;
        Ok(())
    }

    async fn start_dry_run(
        &self,
        config: &crate::model::config::ImportConfig,
        file: &FileRecord,
        manual: &ManualRun,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut run = one_file_run_item(&file.import_id, &file.run_id, &file.key, manual, now);
        run.insert("dry_run_config".into(), json_attr(config));
        self.ddb
            .transact_write_items()
            .transact_items(put_new(&self.table, run)?)
            .transact_items(put_new(&self.table, queued_item(file, now))?)
            .send()
            .await
            .map_err(transaction_error)?;
        Ok(())
    }

    async fn fail_queued(
        &self,
        import_id: &str,
        run_id: &str,
        key: &str,
        outcome: &FileOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<RunRecord>, StoreError> {
        FileLedger::finish_file(self, import_id, run_id, key, None, outcome, now).await
    }
}
