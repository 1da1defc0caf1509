//! The ledger: per import, one record per file (folder + file name identify a file)
//! and one per run, with status, counts, timings and failure reason. Stored by
//! `aws::ledger`; statuses read the way MoEngage users know them.

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
}

impl FileRecord {
    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
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
    pub notified: bool,
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
    fn run_ids_sort_by_time() {
        let a = new_run_id(Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap());
        let b = new_run_id(Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap());
        assert!(a < b);
        assert!(a.starts_with("20260101T090000Z-"));
    }
}
