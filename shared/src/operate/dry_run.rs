//! Whole-file dry runs: the newest (or a named) file of an import's folder goes
//! through the import's own path (decrypt, verify, parse, map, validate, failed-rows
//! report, checkpoints and continuations) with a writer that discards every row.
//! A dry run keeps its own ledger partition ([`dry_run_partition`]), holding the
//! config it runs (which need not be put), so it touches none of the import's runs,
//! files or destination tables, and sends no email.

use serde::Serialize;

use crate::Clock;
use crate::discover::Discovery;
use crate::model::config::ImportConfig;
use crate::model::ledger::{
    DRY_RUN_PREFIX, FileRecord, InFlight, ManualRun, dry_run_partition, new_run_id,
};
use crate::model::status::FileStatus;
use crate::ports::{FileMessage, LedgerReads, MSG_CHECK_FOLDER, Reports, SourceError, StoreError};

/// How many failed rows a dry run's answer shows (the report lists them all).
pub const SAMPLE_REASONS: usize = 10;

/// The most of a report read for the sample.
const SAMPLE_BYTES: u64 = 256 * 1024;

/// Why a dry run did not start.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// The config may not use the id it names (another import's folder).
    #[error("{0}")]
    BorrowedId(String),
    #[error("{MSG_CHECK_FOLDER}: {0}")]
    NoFile(String),
    #[error("`{key}` is not a file of this import: {reason}")]
    NotItsFile { key: String, reason: String },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A dry run that started.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunStarted {
    pub dry_run_id: String,
    pub import_id: String,
    pub key: String,
    pub size: u64,
}

/// A failed row of a dry run's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleReason {
    pub row: String,
    pub column: String,
    pub reason: String,
}

/// A dry run as the CLI and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunView {
    pub dry_run_id: String,
    pub import_id: String,
    pub key: String,
    /// `queued`, `processing`, or the outcome the import would have had.
    pub status: FileStatus,
    pub done: bool,
    pub rows_total: u64,
    /// Rows that read, mapped and validated: what the import would write.
    pub rows_valid: u64,
    pub rows_failed: u64,
    pub reason: Option<String>,
    /// The failed-rows report in the stack's reports bucket.
    pub report_key: Option<String>,
    pub sample_reasons: Vec<SampleReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
    pub requested_by: Option<String>,
}

impl Discovery {
    /// Starts a dry run of `config` over the newest file of its folder, or `key`: the
    /// file is recorded under the dry run's own partition and, with `enqueue`, queued
    /// like any file (else the caller processes the message it gets back).
    pub async fn start_dry_run(
        &self,
        config: &ImportConfig,
        key: Option<&str>,
        manual: &ManualRun,
        enqueue: bool,
        clock: &dyn Clock,
    ) -> Result<(DryRunStarted, FileMessage), DryRunError> {
        if let Some(refused) =
            crate::operate::preview::borrowed_id(self.configs.as_ref(), config, "a dry run").await?
        {
            return Err(DryRunError::BorrowedId(refused));
        }
        let bucket = self.sources.connect(&config.source, &config.id).await?;
        let pattern = config.file_pattern();
        let (key, size, etag) = match key {
            Some(key) => {
                pattern
                    .match_key(key)
                    .map_err(|m| DryRunError::NotItsFile {
                        key: key.to_string(),
                        reason: format!(
                            "{m} (its files are named like {}/{})",
                            config.source.folder,
                            pattern.example_name()
                        ),
                    })?;
                let (size, etag) = bucket.head(key).await?;
                (key.to_string(), size, etag)
            }
            None => {
                let listing = bucket.list(&pattern, None).await?;
                let newest = listing.files.last().ok_or_else(|| {
                    DryRunError::NoFile(format!(
                        "no file in s3://{}/{}/ matches `{}`",
                        config.source.bucket,
                        config.source.folder,
                        pattern.example_name()
                    ))
                })?;
                (newest.file.key.clone(), newest.size, newest.etag.clone())
            }
        };
        let now = clock.now();
        let run_id = new_run_id(now);
        let partition = dry_run_partition(&run_id);
        let file = FileRecord::queued(
            &partition,
            &run_id,
            &config.source.bucket,
            &key,
            size,
            &etag,
            now,
        );
        self.ledger
            .start_dry_run(config, &file, manual, now)
            .await?;
        let msg = crate::discover::file_message(&file, true);
        if enqueue
            && !self
                .queue
                .send_all(std::slice::from_ref(&msg))
                .await?
                .is_empty()
        {
            let outcome = crate::model::ledger::FileOutcome::failed(
                "SQS refused the dry run's message; start it again",
            );
            self.ledger
                .fail_queued(&msg.import_id, &run_id, &key, &outcome, clock.now())
                .await?;
        }
        tracing::info!(import_id = %config.id, dry_run_id = %run_id, key = %key, requested_by = %manual.requested_by, "dry run started");
        Ok((
            DryRunStarted {
                dry_run_id: run_id,
                import_id: config.id.clone(),
                key,
                size,
            },
            msg,
        ))
    }
}

/// A dry run as it stands: None when there is no such dry run.
pub async fn view(
    ledger: &dyn LedgerReads,
    reports: &dyn Reports,
    dry_run_id: &str,
) -> Result<Option<DryRunView>, StoreError> {
    if !crate::model::pages::plausible_run_id(dry_run_id) {
        return Ok(None);
    }
    let partition = dry_run_partition(dry_run_id);
    let (Some(run), Some(config)) = (
        ledger.run(&partition, dry_run_id).await?,
        ledger.dry_run_config(&partition, dry_run_id).await?,
    ) else {
        return Ok(None);
    };
    let Some(file) = ledger.run_files(&partition, dry_run_id).await?.pop() else {
        return Ok(None);
    };
    let sample_reasons = match &file.report_key {
        Some(key) => match report_head(reports, key).await {
            Ok(head) => {
                let whole = (head.len() as u64) < SAMPLE_BYTES;
                sample(&head, SAMPLE_REASONS, whole)
            }
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "dry run's report not sampled");
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    Ok(Some(DryRunView {
        dry_run_id: dry_run_id.to_string(),
        import_id: config.id,
        key: file.key.clone(),
        status: file.status,
        done: file.status.is_final(),
        rows_total: file.rows_total,
        rows_valid: file.rows_ingested,
        rows_failed: file.rows_failed,
        reason: file.reason.clone(),
        report_key: file.report_key.clone(),
        sample_reasons,
        in_flight: file.in_flight(),
        requested_by: run.manual.map(|m| m.requested_by),
    }))
}

/// A report's first [`SAMPLE_BYTES`] (a report may be large; its first rows are enough).
async fn report_head(reports: &dyn Reports, key: &str) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt as _;
    let body = reports
        .open_range(key, 0, Some(SAMPLE_BYTES))
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    body.take(SAMPLE_BYTES)
        .read_to_end(&mut head)
        .await
        .map_err(|e| e.to_string())?;
    Ok(head)
}

/// Whether a ledger partition is a dry run's.
pub fn is_dry_run(partition: &str) -> bool {
    partition.starts_with(DRY_RUN_PREFIX)
}

/// The first `n` failed rows of a report's first bytes; `whole`: they are the whole
/// report (else its last record may be cut, and is left out).
pub fn sample(report: &[u8], n: usize, whole: bool) -> Vec<SampleReason> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(report);
    let mut rows: Vec<SampleReason> = reader
        .records()
        .map_while(Result::ok)
        .filter(|r| r.len() >= 3)
        .take(n + 1)
        .map(|r| SampleReason {
            row: r[0].to_string(),
            column: r[1].to_string(),
            reason: r[2].to_string(),
        })
        .collect();
    if !whole && rows.len() <= n {
        rows.pop();
    }
    rows.truncate(n);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_takes_the_first_rows_and_leaves_a_cut_line_out() {
        let report = "row,column,reason,original_row\n2,age,not a number,\"a,b\"\n5,,too many columns,x\n7,email,not an ema";
        let s = sample(report.as_bytes(), 10, false);
        assert_eq!(
            s,
            vec![
                SampleReason {
                    row: "2".into(),
                    column: "age".into(),
                    reason: "not a number".into()
                },
                SampleReason {
                    row: "5".into(),
                    column: String::new(),
                    reason: "too many columns".into()
                },
            ]
        );
        assert_eq!(sample(report.as_bytes(), 1, false).len(), 1);
        assert_eq!(sample(report.as_bytes(), 10, true).len(), 3);
        assert!(is_dry_run(&dry_run_partition("20260101T000000Z-abc")));
        assert!(!is_dry_run("users-daily"));
    }
}
