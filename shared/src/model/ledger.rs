//! The ledger: per import, one record per file (folder + file name identify a file)
//! and one per run, with status, counts, timings and failure reason. Stored by
//! the ledger port; statuses read the way MoEngage users know them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A file's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Queued,
    Processing,
    Succeeded,
    PartiallySucceeded,
    Failed,
}

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Processing,
    Succeeded,
    PartiallySucceeded,
    Failed,
    /// The run found no new files (recorded, no email).
    NoNewFiles,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::PartiallySucceeded => "partially_succeeded",
            Self::Failed => "failed",
        }
    }

    /// MoEngage's word for it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Queued => "Queued",
            Self::Processing => "Processing",
            Self::Succeeded => "Successful",
            Self::PartiallySucceeded => "Partial Success",
            Self::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.into())).ok()
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::PartiallySucceeded | Self::Failed
        )
    }

    /// The outcome of a file from its row counts.
    pub fn from_counts(ingested: u64, failed: u64) -> Self {
        match (ingested, failed) {
            (_, 0) => Self::Succeeded,
            (0, _) => Self::Failed,
            _ => Self::PartiallySucceeded,
        }
    }
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::PartiallySucceeded => "partially_succeeded",
            Self::Failed => "failed",
            Self::NoNewFiles => "no_new_files",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Processing => "Processing",
            Self::Succeeded => "Successful",
            Self::PartiallySucceeded => "Partial Success",
            Self::Failed => "Failed",
            Self::NoNewFiles => "No new files",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.into())).ok()
    }

    /// A finished run's status from its files' outcomes.
    pub fn from_files(succeeded: u64, partial: u64, failed: u64) -> Self {
        match (succeeded, partial, failed) {
            (0, 0, 0) => Self::NoNewFiles,
            (_, 0, 0) => Self::Succeeded,
            (0, 0, _) => Self::Failed,
            _ => Self::PartiallySucceeded,
        }
    }
}

impl fmt::Display for FileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

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
    pub post_process: Option<crate::notify::post_process::PostProcessed>,
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
    pub alerts: Option<crate::notify::alerts::AlertsSent>,
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

/// One page size parameter: its name (as the API and CLI spell it), default and range.
/// Every page is bounded so a response stays far from Lambda's 6 MB and API Gateway's
/// 29 s however many runs and files an import has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit {
    pub name: &'static str,
    pub default: usize,
    pub min: usize,
    pub max: usize,
}

/// Runs per page of an import's history.
pub const RUNS_LIMIT: PageLimit = PageLimit {
    name: "limit",
    default: 20,
    min: 1,
    max: 50,
};

/// Files shown with each run of a history page (the rest are paged per run).
pub const RUN_FILES_LIMIT: PageLimit = PageLimit {
    name: "files_limit",
    default: 10,
    min: 0,
    max: 20,
};

/// Files per page of one run's files.
pub const FILES_LIMIT: PageLimit = PageLimit {
    name: "limit",
    default: 100,
    min: 1,
    max: 1000,
};

/// A page request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("`{name}` must be a whole number from {min} to {max}")]
    Limit {
        name: &'static str,
        min: usize,
        max: usize,
    },
    #[error(
        "`{name}` is not a cursor this service gave out for this listing: pass the previous page's `next_cursor` (or a run's `next_files_cursor`) as it is"
    )]
    Cursor { name: &'static str },
}

impl crate::error::Classify for PageError {
    fn class(&self) -> crate::error::ErrorClass {
        crate::error::ErrorClass::Permanent
    }
}

impl PageLimit {
    /// The limit from a query parameter: absent means the default.
    pub fn parse(&self, raw: Option<&str>) -> Result<usize, PageError> {
        match raw {
            None => Ok(self.default),
            Some(text) => text
                .trim()
                .parse::<usize>()
                .map_err(|_| self.error())
                .and_then(|n| self.check(n)),
        }
    }

    pub fn check(&self, n: usize) -> Result<usize, PageError> {
        if (self.min..=self.max).contains(&n) {
            Ok(n)
        } else {
            Err(self.error())
        }
    }

    fn error(&self) -> PageError {
        PageError::Limit {
            name: self.name,
            min: self.min,
            max: self.max,
        }
    }
}

/// Where a page of runs continues: after this run (runs are listed newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsCursor {
    pub after_run: String,
}

/// Where a page of one run's files continues: at this position of the run's file list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesCursor {
    pub run: String,
    pub offset: usize,
}

/// The longest cursor accepted: ours are well under it; anything longer is not ours.
const MAX_CURSOR_LEN: usize = 512;

/// Cursors are opaque to callers: hex of a small JSON document, so they travel in a
/// URL or a shell argument without escaping.
pub fn encode_cursor<T: Serialize>(cursor: &T) -> String {
    let json = serde_json::to_vec(cursor).unwrap_or_default();
    json.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor<T: serde::de::DeserializeOwned>(
    text: &str,
    name: &'static str,
) -> Result<T, PageError> {
    decode_cursor_within(text, name, MAX_CURSOR_LEN)
}

/// Decodes a cursor of at most `max` characters.
pub fn decode_cursor_within<T: serde::de::DeserializeOwned>(
    text: &str,
    name: &'static str,
    max: usize,
) -> Result<T, PageError> {
    let bad = || PageError::Cursor { name };
    let text = text.trim();
    if text.is_empty() || text.len() > max || !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// Whether `id` could be a run id as [`new_run_id`] makes them (letters, digits and
/// `-`): a cursor or path naming anything else never reaches DynamoDB.
pub fn plausible_run_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl RunsCursor {
    pub fn decode(text: &str) -> Result<Self, PageError> {
        let c: Self = decode_cursor(text, "cursor")?;
        if plausible_run_id(&c.after_run) {
            Ok(c)
        } else {
            Err(PageError::Cursor { name: "cursor" })
        }
    }

    pub fn encode(&self) -> String {
        encode_cursor(self)
    }
}

impl FilesCursor {
    /// A files cursor of run `run_id` (a cursor of another run is refused).
    pub fn decode(text: &str, run_id: &str) -> Result<Self, PageError> {
        let c: Self = decode_cursor(text, "cursor")?;
        if c.run == run_id {
            Ok(c)
        } else {
            Err(PageError::Cursor { name: "cursor" })
        }
    }

    pub fn encode(&self) -> String {
        encode_cursor(self)
    }
}

/// One run of a history page, with the first of its files.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    pub run: RunRecord,
    pub files: Vec<FileRecord>,
    /// How many files the run item lists (all of them, unless the run found more than
    /// fit in one item; `files_total` counts every file).
    pub files_listed: usize,
    /// Where the run's files continue, when more are listed than shown.
    pub next_files_cursor: Option<String>,
}

/// A page of an import's runs, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RunsPage {
    pub runs: Vec<RunEntry>,
    /// The next page, or None on the last one.
    pub next_cursor: Option<String>,
}

/// A page of one run's files, in the order discovery found them.
#[derive(Debug, Clone, PartialEq)]
pub struct FilesPage {
    pub run: RunRecord,
    pub files: Vec<FileRecord>,
    pub files_listed: usize,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn statuses_read_as_moengage_says_them() {
        assert_eq!(
            FileStatus::PartiallySucceeded.to_string(),
            "Partial Success"
        );
        assert_eq!(RunStatus::Succeeded.to_string(), "Successful");
        assert_eq!(FileStatus::parse("queued"), Some(FileStatus::Queued));
        assert_eq!(
            RunStatus::parse("no_new_files"),
            Some(RunStatus::NoNewFiles)
        );
    }

    #[test]
    fn outcomes_from_counts() {
        assert_eq!(FileStatus::from_counts(10, 0), FileStatus::Succeeded);
        assert_eq!(
            FileStatus::from_counts(8, 2),
            FileStatus::PartiallySucceeded
        );
        assert_eq!(FileStatus::from_counts(0, 2), FileStatus::Failed);
        assert_eq!(FileOutcome::failed("bad key").status(), FileStatus::Failed);
        let stopped_early = FileOutcome {
            rows_total: 10,
            rows_ingested: 10,
            reason: Some("the file stopped being readable after row 11".into()),
            ..FileOutcome::default()
        };
        assert_eq!(stopped_early.status(), FileStatus::PartiallySucceeded);
        assert_eq!(RunStatus::from_files(2, 0, 0), RunStatus::Succeeded);
        assert_eq!(
            RunStatus::from_files(1, 0, 1),
            RunStatus::PartiallySucceeded
        );
        assert_eq!(RunStatus::from_files(0, 0, 3), RunStatus::Failed);
        assert_eq!(
            RunStatus::from_files(0, 1, 0),
            RunStatus::PartiallySucceeded
        );
    }

    #[test]
    fn page_limits_take_defaults_and_refuse_out_of_range() {
        assert_eq!(RUNS_LIMIT.parse(None), Ok(20));
        assert_eq!(RUNS_LIMIT.parse(Some("50")), Ok(50));
        for bad in ["0", "51", "-1", "ten", ""] {
            let err = RUNS_LIMIT.parse(Some(bad)).unwrap_err();
            assert_eq!(
                err.to_string(),
                "`limit` must be a whole number from 1 to 50"
            );
        }
        assert_eq!(RUN_FILES_LIMIT.parse(Some("0")), Ok(0));
        assert!(FILES_LIMIT.check(1001).is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let runs = RunsCursor {
            after_run: "20261127T090000Z-0a1b2c3d".into(),
        };
        assert_eq!(RunsCursor::decode(&runs.encode()), Ok(runs.clone()));
        let files = FilesCursor {
            run: "20261127T090000Z-0a1b2c3d".into(),
            offset: 100,
        };
        let text = files.encode();
        assert!(text.chars().all(|c| c.is_ascii_hexdigit()), "{text}");
        assert_eq!(
            FilesCursor::decode(&text, "20261127T090000Z-0a1b2c3d"),
            Ok(files)
        );
        // Another run's cursor, a files cursor for runs, junk, and a crafted key.
        assert!(FilesCursor::decode(&text, "20261128T090000Z-0a1b2c3d").is_err());
        assert!(RunsCursor::decode(&text).is_err());
        for junk in ["", "zz", "abc", "7b7d", &"ab".repeat(300)] {
            assert_eq!(
                RunsCursor::decode(junk),
                Err(PageError::Cursor { name: "cursor" }),
                "{junk}"
            );
        }
        let crafted = encode_cursor(&serde_json::json!({"after_run": "x#FILE#y"}));
        assert!(RunsCursor::decode(&crafted).is_err());
    }

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id(Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap());
        let b = new_run_id(Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap());
        assert!(a < b);
        assert!(a.starts_with("20260101T090000Z-"));
    }
}
