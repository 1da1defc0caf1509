//! The ledger table: `pk` = import id; `sk` = `FILE#<key>` (bucket key: folder + name)
//! or `RUN#<run id>`. Every state change is a conditional write, so a redelivered
//! message or a second tick never counts a file twice.

use std::collections::HashMap;

use async_trait::async_trait;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValue, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use super::backoff;
use super::configs::{aws_err, build_err};
use super::item::{self, Item, get_n, get_s};
use crate::clock::{from_key, to_key};
use crate::error::{ErrorClass, ServiceError};
use crate::model::checkpoint::Checkpoint;
use crate::model::ledger::{FileOutcome, FileRecord, ManualRun, RunRecord};
use crate::model::ledger::{bounded_reason, chunk_key};
use crate::model::pages::{FilesCursor, FilesPage, RunEntry, RunsCursor, RunsPage};
use crate::model::status::{FileStatus, RunStatus};
use crate::ports::{KnownFile, Ledger, StartOutcome, StoreError};

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
const BATCH_GET_KEYS: usize = 100;

pub fn file_sk(key: &str) -> String {
    format!("FILE#{key}")
}

/// The item that remembers which file first imported a plaintext (by its SHA-256).
pub fn content_sk(sha256: &str) -> String {
    format!("SHA#{sha256}")
}

fn content_from_item(i: &Item) -> Option<crate::model::ledger::DuplicateOf> {
    Some(crate::model::ledger::DuplicateOf {
        key: get_s(i, "first_key")?.to_string(),
        run_id: get_s(i, "first_run").unwrap_or_default().to_string(),
        skipped: false,
    })
}

pub fn run_sk(run_id: &str) -> String {
    format!("RUN#{run_id}")
}

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

    /// A page of one run's files from `cursor` (the start when None); None when the
    /// import has no such run. One GetItem and one BatchGetItem per 100 files.
    pub async fn files_page(
        &self,
        import_id: &str,
        run_id: &str,
        cursor: Option<&FilesCursor>,
        limit: usize,
    ) -> Result<Option<FilesPage>, StoreError> {
        let Some(item) = self.raw(import_id, &run_sk(run_id)).await? else {
            return Ok(None);
        };
        let keys = listed_keys(&item);
        let from = cursor.map_or(0, |c| c.offset).min(keys.len());
        let to = from.saturating_add(limit).min(keys.len());
        let files = self
            .files(import_id, &keys[from..to])
            .await?
            .iter()
            .filter_map(|f| f.as_of(run_id))
            .collect();
        Ok(Some(FilesPage {
            run: run_from_item(import_id, &item),
            files,
            files_listed: keys.len(),
            next_cursor: (to < keys.len()).then(|| {
                FilesCursor {
                    run: run_id.to_string(),
                    offset: to,
                }
                .encode()
            }),
        }))
    }

    /// A page of the import's runs, newest first, after `cursor` (from the newest when
    /// None), each with its first `files_per_run` files. Runs are read with Query (a
    /// run item lists up to [`RUN_FILES_BUDGET`] of keys, so a 1 MB Query page may hold
    /// only a few) and every shown file with one BatchGetItem per 100.
    pub async fn runs_page(
        &self,
        import_id: &str,
        cursor: Option<&RunsCursor>,
        limit: usize,
        files_per_run: usize,
    ) -> Result<RunsPage, StoreError> {
        // One more than asked: whether it exists says if there is a next page.
        let want = limit + 1;
        let mut items: Vec<Item> = Vec::with_capacity(want);
        let mut start = cursor.map(|c| {
            HashMap::from([
                ("pk".to_string(), item::s(import_id)),
                ("sk".to_string(), item::s(run_sk(&c.after_run))),
            ])
        });
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :run)")
                .expression_attribute_values(":pk", item::s(import_id))
                .expression_attribute_values(":run", item::s("RUN#"))
                .scan_index_forward(false)
                .limit(i32::try_from(want - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(aws_err("Query"))?;
            start = out.last_evaluated_key;
            items.extend(out.items.unwrap_or_default());
            if items.len() >= want || start.is_none() {
                break;
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let listed: Vec<Vec<String>> = items.iter().map(listed_keys).collect();
        // A replayed file is in more than one run: read once (BatchGetItem refuses a
        // key twice), shown as each run left it.
        let mut shown: Vec<String> = listed
            .iter()
            .flat_map(|keys| keys.iter().take(files_per_run).cloned())
            .collect();
        shown.sort();
        shown.dedup();
        let by_key: HashMap<String, FileRecord> = self
            .files(import_id, &shown)
            .await?
            .into_iter()
            .map(|f| (f.key.clone(), f))
            .collect();
        let runs: Vec<RunEntry> = items
            .iter()
            .zip(listed)
            .map(|(item, keys)| {
                let run = run_from_item(import_id, item);
                let files = keys
                    .iter()
                    .take(files_per_run)
                    .filter_map(|k| by_key.get(k)?.as_of(&run.run_id))
                    .collect();
                let next_files_cursor = (keys.len() > files_per_run).then(|| {
                    FilesCursor {
                        run: run.run_id.clone(),
                        offset: files_per_run,
                    }
                    .encode()
                });
                RunEntry {
                    run,
                    files,
                    files_listed: keys.len(),
                    next_files_cursor,
                }
            })
            .collect();
        let next_cursor = if more {
            runs.last().map(|r| {
                RunsCursor {
                    after_run: r.run.run_id.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(RunsPage { runs, next_cursor })
    }
}

/// The file keys a run item lists, in the order discovery found them.
fn listed_keys(run: &Item) -> Vec<String> {
    run.get("files")
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

/// Whether a transaction was cancelled because its first item's (the file's) condition
/// failed, rather than for a conflict or throttling.
fn file_condition_failed<R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match e.as_service_error() {
        Some(E::TransactionCanceledException(c)) => c
            .cancellation_reasons()
            .first()
            .and_then(|r| r.code())
            .is_some_and(|code| code == "ConditionalCheckFailed"),
        _ => false,
    }
}

fn is_conditional<R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<impl ConditionalCheck, R>,
) -> bool {
    e.as_service_error()
        .is_some_and(ConditionalCheck::is_conditional)
}

/// The operations whose conditional-check failure means "someone else got there first".
trait ConditionalCheck {
    fn is_conditional(&self) -> bool;
}

impl ConditionalCheck for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn is_conditional(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalCheck for aws_sdk_dynamodb::operation::delete_item::DeleteItemError {
    fn is_conditional(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalCheck for aws_sdk_dynamodb::operation::update_item::UpdateItemError {
    fn is_conditional(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// A conditional update: true when made, false when its condition failed (for a held
/// file: the lease is no longer held).
fn held<R>(
    res: Result<
        R,
        aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
            aws_smithy_runtime_api::http::Response,
        >,
    >,
) -> Result<bool, StoreError> {
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_conditional(&e) => Ok(false),
        Err(e) => Err(aws_err("UpdateItem")(e)),
    }
}

/// The outcome's row counts as `:rt`, `:ri` and `:rf`, for an `ADD` of them.
fn add_counts(
    update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    outcome: &FileOutcome,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    update
        .expression_attribute_values(":rt", item::n(outcome.rows_total))
        .expression_attribute_values(":ri", item::n(outcome.rows_ingested))
        .expression_attribute_values(":rf", item::n(outcome.rows_failed))
}

/// A transaction's failure other than its first item's condition: a cancellation for
/// another reason (a conflict with a concurrent write, a throttle) is worth a retry.
fn transaction_error(
    e: aws_smithy_runtime_api::client::result::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_smithy_runtime_api::http::Response,
    >,
) -> StoreError {
    let cancelled = e
        .as_service_error()
        .is_some_and(|s| s.is_transaction_canceled_exception());
    let mut e = super::service_error("DynamoDB", "TransactWriteItems", e);
    if cancelled {
        e.class = ErrorClass::Retryable;
    }
    StoreError::Service(e)
}

/// A file's ledger item as a claim puts it: queued, never started.
fn queued_item(f: &FileRecord, now: DateTime<Utc>) -> Item {
    HashMap::from([
        ("pk".to_string(), item::s(&f.import_id)),
        ("sk".to_string(), item::s(file_sk(&f.key))),
        ("run_id".to_string(), item::s(&f.run_id)),
        ("bucket".to_string(), item::s(&f.bucket)),
        ("key".to_string(), item::s(&f.key)),
        ("size".to_string(), item::n(f.size)),
        ("etag".to_string(), item::s(&f.etag)),
        ("status".to_string(), item::s(FileStatus::Queued.as_str())),
        ("queued_at".to_string(), item::s(to_key(now))),
        ("attempts".to_string(), item::n(0)),
    ])
}

/// The run item of a run of one file started by hand (a replay, a dry run), which
/// knows its file from the start.
fn one_file_run_item(
    pk: &str,
    run_id: &str,
    key: &str,
    manual: &ManualRun,
    now: DateTime<Utc>,
) -> Item {
    HashMap::from([
        ("pk".to_string(), item::s(pk)),
        ("sk".to_string(), item::s(run_sk(run_id))),
        ("run_id".to_string(), item::s(run_id)),
        (
            "status".to_string(),
            item::s(RunStatus::Processing.as_str()),
        ),
        ("started_at".to_string(), item::s(to_key(now))),
        ("files_total".to_string(), item::n(1)),
        ("files_done".to_string(), item::n(0)),
        ("files".to_string(), AttributeValue::L(vec![item::s(key)])),
        ("requested_by".to_string(), item::s(&manual.requested_by)),
        ("requested_via".to_string(), item::s(&manual.via)),
    ])
}

/// A transaction's put of a new item (refused when the item exists).
fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(sk)")
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

type TransactBuilder =
    aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder;
type TransactResult = Result<
    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
    aws_smithy_runtime_api::client::result::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_smithy_runtime_api::http::Response,
    >,
>;

/// Rounds a transaction cancelled by contention alone is sent again here, once the
/// SDK's own attempts (which retry it too, see `contention`) are spent: the run and a
/// split file's parent are items every finishing file or chunk writes, so under a
/// burst of them conflicts are normal and must not fail a file.
const CONTENTION_ROUNDS: u32 = 6;

/// Sends a transaction, sending it again while it is cancelled by contention alone.
/// Every round carries one idempotency token: a round after one that timed out but
/// took effect is then answered as a success, not refused by its own conditions.
/// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
async fn transact(tx: TransactBuilder) -> TransactResult {
    let tx = tx.client_request_token(uuid::Uuid::new_v4().to_string());
    let mut rounds = 0;
    loop {
        match tx.clone().send().await {
            Err(e)
                if rounds < CONTENTION_ROUNDS
                    && e.raw_response()
                        .and_then(|r| r.body().bytes())
                        .is_some_and(super::contention::is_contention) =>
            {
                rounds += 1;
                backoff(rounds).await;
            }
            other => return other,
        }
    }
}

/// Sends a transaction whose first item is a file's conditional write: false when that
/// condition failed (the file moved on), an error for any other cancellation.
async fn send_for_file(tx: TransactBuilder) -> Result<bool, StoreError> {
    match transact(tx).await {
        Ok(_) => Ok(true),
        Err(e) if file_condition_failed(&e) => Ok(false),
        Err(e) => Err(transaction_error(e)),
    }
}

fn file_from_item(import_id: &str, i: &Item) -> FileRecord {
    let time = |k: &str| get_s(i, k).and_then(from_key);
    FileRecord {
        import_id: import_id.to_string(),
        run_id: get_s(i, "run_id").unwrap_or_default().to_string(),
        bucket: get_s(i, "bucket").unwrap_or_default().to_string(),
        key: get_s(i, "key").unwrap_or_default().to_string(),
        size: get_n(i, "size").unwrap_or(0),
        etag: get_s(i, "etag").unwrap_or_default().to_string(),
        status: get_s(i, "status")
            .and_then(FileStatus::parse)
            .unwrap_or(FileStatus::Queued),
        rows_total: get_n(i, "rows_total").unwrap_or(0),
        rows_ingested: get_n(i, "rows_ingested").unwrap_or(0),
        rows_failed: get_n(i, "rows_failed").unwrap_or(0),
        bytes: get_n(i, "bytes").unwrap_or(0),
        queued_at: time("queued_at"),
        started_at: time("started_at"),
        finished_at: time("finished_at"),
        duration_ms: get_n(i, "duration_ms"),
        reason: get_s(i, "reason").map(str::to_string),
        report_key: get_s(i, "report_key").map(str::to_string),
        attempts: get_n(i, "attempts").unwrap_or(0),
        last_error: get_s(i, "last_error").map(str::to_string),
        checkpoint: get_s(i, "checkpoint").and_then(Checkpoint::from_json),
        invocations: get_n(i, "invocations").unwrap_or(0),
        split: json_of(i, "chunk_plan"),
        chunks_total: get_n(i, "chunks_total").unwrap_or(0),
        chunks_done: get_n(i, "chunks_done").unwrap_or(0),
        decrypted_with: get_s(i, "decrypted_with").map(str::to_string),
        post_process: json_of(i, "post_process"),
        sha256: get_s(i, "sha256").map(str::to_string),
        duplicate_of: json_of(i, "duplicate_of"),
        changed_etag: get_s(i, "changed_etag").map(str::to_string),
        history: json_of(i, "history").unwrap_or_default(),
    }
}

fn run_from_item(import_id: &str, i: &Item) -> RunRecord {
    let time = |k: &str| get_s(i, k).and_then(from_key);
    let n = |k: &str| get_n(i, k).unwrap_or(0);
    RunRecord {
        import_id: import_id.to_string(),
        run_id: get_s(i, "run_id").unwrap_or_default().to_string(),
        status: get_s(i, "status")
            .and_then(RunStatus::parse)
            .unwrap_or(RunStatus::Processing),
        started_at: time("started_at"),
        finished_at: time("finished_at"),
        files_total: n("files_total"),
        files_done: n("files_done"),
        files_succeeded: n("files_succeeded"),
        files_partial: n("files_partial"),
        files_failed: n("files_failed"),
        rows_total: n("rows_total"),
        rows_ingested: n("rows_ingested"),
        rows_failed: n("rows_failed"),
        reason: get_s(i, "reason").map(str::to_string),
        notified: i
            .get("notified")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        notify_until: time("notify_until"),
        manual: get_s(i, "requested_by").map(|by| ManualRun {
            requested_by: by.to_string(),
            via: get_s(i, "requested_via").unwrap_or_default().to_string(),
        }),
        keys_used: {
            // A string set: in no order of its own.
            let mut keys = i
                .get("keys_used")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default();
            keys.sort();
            keys
        },
        replay: json_of(i, "replay"),
        alerts: json_of(i, "alerts"),
        changed_files: json_of(i, "changed_files").unwrap_or_default(),
    }
}

/// A value as a JSON string attribute (a small document the ledger only stores and
/// gives back).
fn json_attr<T: serde::Serialize>(value: &T) -> AttributeValue {
    item::s(serde_json::to_string(value).unwrap_or_default())
}

/// A [`json_attr`] attribute read back; None when absent or not readable.
fn json_of<T: serde::de::DeserializeOwned>(i: &Item, name: &str) -> Option<T> {
    get_s(i, name).and_then(|text| serde_json::from_str(text).ok())
}

#[async_trait]
impl Ledger for LedgerStore {
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

    async fn file(&self, import_id: &str, key: &str) -> Result<Option<FileRecord>, StoreError> {
        Ok(self
            .raw(import_id, &file_sk(key))
            .await?
            .map(|i| file_from_item(import_id, &i)))
    }

    async fn run(&self, import_id: &str, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self
            .raw(import_id, &run_sk(run_id))
            .await?
            .map(|i| run_from_item(import_id, &i)))
    }

    async fn run_files(
        &self,
        import_id: &str,
        run_id: &str,
    ) -> Result<Vec<FileRecord>, StoreError> {
        let Some(run) = self.raw(import_id, &run_sk(run_id)).await? else {
            return Ok(Vec::new());
        };
        Ok(self
            .files(import_id, &listed_keys(&run))
            .await?
            .iter()
            .filter_map(|f| f.as_of(run_id))
            .collect())
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

    async fn dry_run_config(
        &self,
        partition: &str,
        run_id: &str,
    ) -> Result<Option<crate::model::config::ImportConfig>, StoreError> {
        let Some(run) = self.raw(partition, &run_sk(run_id)).await? else {
            return Ok(None);
        };
        get_s(&run, "dry_run_config")
            .map(|c| {
                serde_json::from_str(c).map_err(|e| StoreError::Corrupt {
                    id: partition.to_string(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_lists_as_many_keys_as_fit_in_an_item() {
        let few: Vec<String> = (0..10).map(|i| format!("in/f_{i}.csv")).collect();
        assert_eq!(listed(&few).len(), 10);
        let many: Vec<String> = (0..100_000)
            .map(|i| format!("folder/file_{i:08}.csv"))
            .collect();
        let n = listed(&many).len();
        assert!(n > 5_000 && n < 100_000, "{n}");
        assert!(listed(&many).iter().map(|k| k.len() + 4).sum::<usize>() <= RUN_FILES_BUDGET);
    }

    #[test]
    fn the_longest_key_config_allows_fits_the_sort_key() {
        let key = "k".repeat(crate::model::ledger::MAX_FILE_KEY_BYTES);
        assert_eq!(file_sk(&key).len(), 1024, "DynamoDB's sort key limit");
    }
}
