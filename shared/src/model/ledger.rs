//! The ledger: per import, one record per file (folder + file name identify a file)
//! and one per run, with status, counts, timings and failure reason. Stored by
//! the ledger port; statuses read the way MoEngage users know them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::status::{FileStatus, RunStatus};

/// One file of an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub import_id: String,
    pub run_id: String,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub status: FileStatus,
    pub rows_total: u64,
    pub rows_ingested: u64,
    pub rows_failed: u64,
    pub bytes: u64,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    pub reason: Option<String>,
    /// Key of the failed-rows report in the reports bucket.
    pub report_key: Option<String>,
    pub attempts: u32,
    /// The last retryable failure, kept while the file waits for redelivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How far a file in flight has got, kept when it ends. Internal (plaintext
    /// offsets): `runs` shows [`FileRecord::in_flight`] instead.
    #[serde(skip)]
    pub checkpoint: Option<crate::model::checkpoint::Checkpoint>,
    /// Processor invocations that worked on the file (continuations included).
    #[serde(default)]
    pub invocations: u32,
    /// Where a large file was cut into chunks for parallel workers. Internal.
    #[serde(skip)]
    pub split: Option<crate::codec::reader::Split>,
    /// Chunks of a split file, and how many have ended.
    #[serde(default)]
    pub chunks_total: u32,
    #[serde(default)]
    pub chunks_done: u32,
    /// Which of the import's PGP keys decrypted the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decrypted_with: Option<String>,
    /// The SHA-256 of the file's plaintext, when it was read to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The earlier file of this import whose content this one repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<DuplicateOf>,
    /// The object was replaced (this ETag) after the file was imported: noted by the
    /// run that found it, and not imported again (replay it for that).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_etag: Option<String>,
    /// What post-processing did to the source object once the file ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_process: Option<crate::model::post_process::PostProcessed>,
    /// The outcomes of earlier runs of this file (it was replayed), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<PastOutcome>,
}

/// The file of an import that first imported some content (see
/// [`FileRecord::duplicate_of`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateOf {
    pub key: String,
    pub run_id: String,
    /// This file was not imported for it (`on_duplicate_content: skip`).
    #[serde(default)]
    pub skipped: bool,
}

/// An imported file whose object changed under its name, as the run that found it
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedFile {
    pub key: String,
    /// The run that imported it.
    pub run_id: String,
    pub etag_imported: String,
    pub etag_now: String,
}

/// The most changed files a run item lists (and an email names).
pub const MAX_CHANGED_LISTED: usize = 100;

/// The most earlier outcomes a file keeps (a file replayed more often keeps the
/// latest): its ledger item stays far from DynamoDB's 400 KB.
pub const MAX_HISTORY: usize = 20;

/// The most bytes of a reason (a file's, a run's, a retried error's) a ledger item
/// keeps. DynamoDB refuses an item over 400 KB, and a reason can quote the file (a
/// header's columns): unbounded, one hostile header would make its file's outcome
/// impossible to record. With [`MAX_HISTORY`] past reasons an item stays far inside.
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-items
pub const MAX_REASON_BYTES: usize = 2048;

/// A reason as a ledger item keeps it (see [`MAX_REASON_BYTES`]).
pub fn bounded_reason(text: &str) -> std::borrow::Cow<'_, str> {
    crate::codec::limits::bounded(text, MAX_REASON_BYTES)
}

/// A file's outcome in an earlier run, kept when the file is replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastOutcome {
    pub run_id: String,
    pub status: FileStatus,
    pub etag: String,
    pub rows_total: u64,
    pub rows_ingested: u64,
    pub rows_failed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// A run that reprocesses one file that already ran (`s3imports replay`,
/// `POST /imports/{id}/files/replay`): which file, why, and what it came to before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    pub key: String,
    pub reason: String,
    pub previous_run_id: String,
    pub previous_status: FileStatus,
}

/// The ledger partition of a dry run: its own (never the import's), so a dry run
/// touches none of the import's files or runs. Import ids never hold a `:`.
pub fn dry_run_partition(run_id: &str) -> String {
    format!("{DRY_RUN_PREFIX}{run_id}")
}

pub const DRY_RUN_PREFIX: &str = "dry-run:";

/// The longest reason a replay may give.
pub const MAX_REPLAY_REASON: usize = 1000;

/// The ledger key of a split file's chunk `i`: a file record of its own (lease,
/// checkpoint, counts), never listed with the run's files. The separator is a control
/// character no listed S3 key carries.
pub fn chunk_key(key: &str, i: u32) -> String {
    format!("{key}\u{1}chunk-{i:04}")
}

impl FileRecord {
    /// A file just found and queued by a run: nothing read yet.
    pub fn queued(
        import_id: &str,
        run_id: &str,
        bucket: &str,
        key: &str,
        size: u64,
        etag: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            import_id: import_id.to_string(),
            run_id: run_id.to_string(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            size,
            etag: etag.to_string(),
            status: FileStatus::Queued,
            rows_total: 0,
            rows_ingested: 0,
            rows_failed: 0,
            bytes: 0,
            queued_at: Some(now),
            started_at: None,
            finished_at: None,
            duration_ms: None,
            reason: None,
            report_key: None,
            attempts: 0,
            last_error: None,
            checkpoint: None,
            invocations: 0,
            split: None,
            chunks_total: 0,
            chunks_done: 0,
            decrypted_with: None,
            sha256: None,
            duplicate_of: None,
            changed_etag: None,
            post_process: None,
            history: Vec::new(),
        }
    }

    /// This file's outcome as it is now, kept for its history when it is replayed.
    pub fn past(&self) -> PastOutcome {
        PastOutcome {
            run_id: self.run_id.clone(),
            status: self.status,
            etag: self.etag.clone(),
            rows_total: self.rows_total,
            rows_ingested: self.rows_ingested,
            rows_failed: self.rows_failed,
            reason: self.reason.clone(),
            report_key: self.report_key.clone(),
            finished_at: self.finished_at,
        }
    }

    /// The file as run `run_id` left it: itself when that is its latest run, else its
    /// outcome in that run from its history (a replayed file). None: never in that run.
    pub fn as_of(&self, run_id: &str) -> Option<FileRecord> {
        if self.run_id == run_id {
            return Some(self.clone());
        }
        let past = self.history.iter().find(|p| p.run_id == run_id)?;
        Some(FileRecord {
            run_id: past.run_id.clone(),
            etag: past.etag.clone(),
            status: past.status,
            rows_total: past.rows_total,
            rows_ingested: past.rows_ingested,
            rows_failed: past.rows_failed,
            reason: past.reason.clone(),
            report_key: past.report_key.clone(),
            finished_at: past.finished_at,
            queued_at: None,
            started_at: None,
            duration_ms: None,
            last_error: None,
            checkpoint: None,
            split: None,
            decrypted_with: None,
            sha256: None,
            duplicate_of: None,
            changed_etag: None,
            post_process: None,
            history: Vec::new(),
            ..FileRecord::queued(
                &self.import_id,
                &past.run_id,
                &self.bucket,
                &self.key,
                self.size,
                &past.etag,
                past.finished_at.unwrap_or_default(),
            )
        })
    }

    /// A file being worked on, as far as its last checkpoint: None once final or
    /// before any invocation.
    pub fn in_flight(&self) -> Option<InFlight> {
        if self.status.is_final() || self.invocations == 0 {
            return None;
        }
        Some(InFlight {
            rows_so_far: self.rows_total,
            rows_ingested: self.rows_ingested,
            rows_failed: self.rows_failed,
            invocations: self.invocations,
            chunks_done: self.chunks_done,
            chunks_total: self.chunks_total,
        })
    }

    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// A file in flight, as `runs` (CLI and API) shows it: its counts at the last
/// checkpoint and the processor invocations it has taken so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InFlight {
    pub rows_so_far: u64,
    pub rows_ingested: u64,
    pub rows_failed: u64,
    pub invocations: u32,
    /// A split file's chunks ended, of its chunks (0 of 0: not split).
    pub chunks_done: u32,
    pub chunks_total: u32,
}

/// One run of an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub import_id: String,
    pub run_id: String,
    pub status: RunStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub files_total: u64,
    pub files_done: u64,
    pub files_succeeded: u64,
    pub files_partial: u64,
    pub files_failed: u64,
    pub rows_total: u64,
    pub rows_ingested: u64,
    pub rows_failed: u64,
    pub reason: Option<String>,
    /// The run's email went out (or was not wanted).
    pub notified: bool,
    /// While a worker holds the right to send the run's email, until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_until: Option<DateTime<Utc>>,
    /// Started by hand (`s3imports run`, `POST /imports/{id}/run`), and by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<ManualRun>,
    /// The PGP keys that decrypted the run's files (see [`FileRecord::decrypted_with`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_used: Vec<String>,
    /// Files imported earlier whose objects this run found changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_files: Vec<ChangedFile>,
    /// A replay of one file, with why and what it came to before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<Replay>,
    /// The run's alerts once sent: whether it needs attention, and each delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<crate::model::ledger::AlertsSent>,
}

/// Who started a run by hand, and through what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualRun {
    /// The caller's IAM principal (ARN).
    pub requested_by: String,
    /// "cli" or "api".
    pub via: String,
}

/// A run id: its start time first, so ids sort by time.
pub fn new_run_id(now: DateTime<Utc>) -> String {
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &rand[..8])
}

/// What a processed file came to; added to its run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileOutcome {
    pub rows_total: u64,
    pub rows_ingested: u64,
    pub rows_failed: u64,
    pub bytes: u64,
    pub reason: Option<String>,
    pub report_key: Option<String>,
    /// Which of the import's PGP keys decrypted the file ("current key <id>" or
    /// "previous key <id>").
    pub decrypted_with: Option<String>,
    /// The SHA-256 of the plaintext, when it was read to its end.
    pub sha256: Option<String>,
    /// The earlier file whose content this one repeats.
    pub duplicate_of: Option<DuplicateOf>,
}

impl FileOutcome {
    /// A reason without failed rows means the file stopped early (rows before it
    /// stay ingested): partial, not successful.
    pub fn status(&self) -> FileStatus {
        match (self.rows_ingested, self.rows_failed, self.reason.is_some()) {
            (0, _, true) => FileStatus::Failed,
            (i, 0, true) if i > 0 => FileStatus::PartiallySucceeded,
            (i, f, _) => FileStatus::from_counts(i, f),
        }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        Self {
            reason: Some(reason.into()),
            ..Self::default()
        }
    }

    /// A file given up on, keeping what its last checkpoint had imported.
    pub fn gave_up(
        reason: impl Into<String>,
        at: Option<&crate::model::checkpoint::Checkpoint>,
    ) -> Self {
        let mut outcome = Self::failed(reason);
        if let Some(cp) = at {
            outcome.rows_total = cp.rows_total;
            outcome.rows_ingested = cp.rows_ingested;
            outcome.rows_failed = cp.rows_failed;
            outcome.bytes = cp.bytes;
        }
        outcome
    }
}

/// The most bytes a file's key may have: DynamoDB sort keys hold 1,024 bytes, and the
/// ledger keys a file as `FILE#<key>`. Config validation keeps every key an import can
/// match within it.
pub const MAX_FILE_KEY_BYTES: usize = 1024 - "FILE#".len();

/// One delivery of a run's summary, as the run records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDelivery {
    /// `sns:<topic arn>` or `webhook:<url>`.
    pub target: String,
    pub delivered: bool,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the run's alerts came to: recorded on the run once they have been sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertsSent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<String>,
    #[serde(default)]
    pub deliveries: Vec<AlertDelivery>,
}

#[cfg(test)]
mod tests;
