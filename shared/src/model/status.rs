//! The states of a file and of a run.

use std::fmt;

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
