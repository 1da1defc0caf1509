//! Ledger items: a file's and a run's records as DynamoDB attributes, and back.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, Utc};

use crate::aws::dynamo::build_err;
use crate::aws::item::{self, Item, get_n, get_s};
use crate::clock::{from_key, to_key};
use crate::model::checkpoint::Checkpoint;
use crate::model::ledger::{FileOutcome, FileRecord, ManualRun, RunRecord};
use crate::model::status::{FileStatus, RunStatus};
use crate::ports::StoreError;

pub(crate) fn content_from_item(i: &Item) -> Option<crate::model::ledger::DuplicateOf> {
    Some(crate::model::ledger::DuplicateOf {
        key: get_s(i, "first_key")?.to_string(),
        run_id: get_s(i, "first_run").unwrap_or_default().to_string(),
        skipped: false,
    })
}

/// The file keys a run item lists, in the order discovery found them.
pub(crate) fn listed_keys(run: &Item) -> Vec<String> {
    run.get("files")
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

/// The outcome's row counts as `:rt`, `:ri` and `:rf`, for an `ADD` of them.
pub(crate) fn add_counts(
    update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    outcome: &FileOutcome,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    update
        .expression_attribute_values(":rt", item::n(outcome.rows_total))
        .expression_attribute_values(":ri", item::n(outcome.rows_ingested))
        .expression_attribute_values(":rf", item::n(outcome.rows_failed))
}

/// A file's ledger item as a claim puts it: queued, never started.
pub(crate) fn queued_item(f: &FileRecord, now: DateTime<Utc>) -> Item {
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
pub(crate) fn one_file_run_item(
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
pub(crate) fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(sk)")
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

pub(crate) fn file_from_item(import_id: &str, i: &Item) -> FileRecord {
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

pub(crate) fn run_from_item(import_id: &str, i: &Item) -> RunRecord {
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
pub(crate) fn json_attr<T: serde::Serialize>(value: &T) -> AttributeValue {
    item::s(serde_json::to_string(value).unwrap_or_default())
}

/// A [`json_attr`] attribute read back; None when absent or not readable.
pub(crate) fn json_of<T: serde::de::DeserializeOwned>(i: &Item, name: &str) -> Option<T> {
    get_s(i, name).and_then(|text| serde_json::from_str(text).ok())
}

pub fn file_sk(key: &str) -> String {
    format!("FILE#{key}")
}

/// The item that remembers which file first imported a plaintext (by its SHA-256).
pub fn content_sk(sha256: &str) -> String {
    format!("SHA#{sha256}")
}

pub fn run_sk(run_id: &str) -> String {
    format!("RUN#{run_id}")
}
