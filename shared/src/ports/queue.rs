//! The files queue: one message per file.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// What the processor needs to process one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMessage {
    pub import_id: String,
    pub run_id: String,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    /// One chunk of a split file (see [`crate::codec::reader::Split`]); None: the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u32>,
    /// A dry run (`import_id` is then the dry run's ledger partition): rows are read,
    /// mapped and validated, and written nowhere.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl FileMessage {
    /// The ledger record this message works on: the file's, or its chunk's.
    pub fn ledger_key(&self) -> String {
        match self.chunk {
            Some(i) => crate::model::ledger::chunk_key(&self.key, i),
            None => self.key.clone(),
        }
    }

    /// The message of chunk `i` of this file.
    pub fn for_chunk(&self, i: u32) -> Self {
        Self {
            chunk: Some(i),
            ..self.clone()
        }
    }
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends every message; returns the ones the queue refused for good (a message it
    /// could not take for a passing reason is not returned: its file stays queued and
    /// discovery sends it again).
    async fn send_all(&self, messages: &[FileMessage]) -> Result<Vec<FileMessage>, StoreError>;

    /// Makes a received message invisible for `seconds` from now.
    async fn set_visibility(&self, receipt: &str, seconds: u32) -> Result<(), StoreError>;
}
