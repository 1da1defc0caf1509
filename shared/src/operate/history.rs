//! An import's history in one shape for the preview API and the CLI (and so for the
//! people and scripts that read either): pages of its runs, each with its first files,
//! pages of one run's files, and an import's day at a glance.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::model::config::ConfigRecord;
use crate::model::ledger::FileRecord;
use crate::model::pages::{FilesPage, RUNS_LIMIT, RunEntry, RunsCursor, RunsPage};
use crate::ports::{LedgerReads, StoreError};

/// A file as the history shows it: its record, its status as MoEngage words it, and
/// whether a worker has it now.
pub fn file_value(f: &FileRecord) -> Value {
    let mut v = serde_json::to_value(f).unwrap_or_default();
    v["status_label"] = json!(f.status.label());
    v["in_flight"] = json!(f.in_flight());
    v
}

/// A run as the history shows it: its record, its status label, and its first files.
pub fn run_value(entry: &RunEntry) -> Value {
    let mut v = serde_json::to_value(&entry.run).unwrap_or_default();
    v["status_label"] = json!(entry.run.status.label());
    v["files"] = json!(entry.files.iter().map(file_value).collect::<Vec<_>>());
    v["files_listed"] = json!(entry.files_listed);
    v["next_files_cursor"] = json!(entry.next_files_cursor);
    v
}

/// A page of runs: `GET /imports/{id}/runs` and `s3imports runs ID --json`.
pub fn runs_value(import_id: &str, page: &RunsPage) -> Value {
    json!({
        "import_id": import_id,
        "runs": page.runs.iter().map(run_value).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })
}

/// A page of one run's files: `GET /imports/{id}/runs/{run}/files` and
/// `s3imports runs ID --run RUN --json`.
pub fn files_value(import_id: &str, run_id: &str, page: &FilesPage) -> Value {
    json!({
        "import_id": import_id,
        "run_id": run_id,
        "files_total": page.run.files_total,
        "files_listed": page.files_listed,
        "files": page.files.iter().map(file_value).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })
}

/// One import at a glance: its status, last and next run, and what the runs it started
/// today (UTC) imported and failed.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub id: String,
    pub name: String,
    pub status: &'static str,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_id: Option<String>,
    pub last_run_status: Option<&'static str>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub rows_today: u64,
    pub rows_failed_today: u64,
}

/// The summary of one import, reading its runs newest first and stopping at the
/// first that started before `today`.
pub async fn summary(
    ledger: &dyn LedgerReads,
    record: &ConfigRecord,
    today: DateTime<Utc>,
) -> Result<ImportSummary, StoreError> {
    let id = &record.config.id;
    let (mut rows, mut failed, mut last) = (0, 0, None);
    let mut cursor: Option<RunsCursor> = None;
    'pages: loop {
        let page = ledger
            .runs_page(id, cursor.as_ref(), RUNS_LIMIT.max, 0)
            .await?;
        for e in &page.runs {
            if last.is_none() {
                last = Some(e.run.clone());
            }
            if e.run.started_at.is_none_or(|t| t < today) {
                break 'pages;
            }
            rows += e.run.rows_ingested;
            failed += e.run.rows_failed;
        }
        match page.next_cursor.as_deref().map(RunsCursor::decode) {
            Some(Ok(c)) => cursor = Some(c),
            _ => break,
        }
    }
    Ok(ImportSummary {
        id: id.clone(),
        name: record.config.name.clone(),
        status: record.status.as_str(),
        next_run_at: record.next_run_at,
        last_run_id: last.as_ref().map(|l| l.run_id.clone()),
        last_run_status: last.as_ref().map(|l| l.status.label()),
        last_run_at: last.as_ref().and_then(|l| l.started_at),
        rows_today: rows,
        rows_failed_today: failed,
    })
}
