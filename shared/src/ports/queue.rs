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
