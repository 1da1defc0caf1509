//! Where mapped rows go: the destination tables.

use async_trait::async_trait;

use super::StoreError;
use crate::model::config::ImportKind;
use crate::rows::sink::{FileAttributes, Write};

/// A row the destination refused for good (e.g. an item over its size limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub row: u64,
    pub reason: String,
}

/// Opens a sink for one file's rows, in the table of the import's kind.
pub trait RowWriter: Send + Sync {
    fn sink(&self, kind: &ImportKind, file: FileAttributes) -> Box<dyn RowSink>;
}

#[async_trait]
pub trait RowSink: Send + Sync {
    /// Writes rows (the later row wins where two name one item); returns the rows
    /// refused for good. A retryable failure fails the whole call: the writes are
    /// idempotent, so the file is retried.
    async fn write(&self, rows: Vec<(u64, Write)>) -> Result<Vec<RejectedRow>, StoreError>;
}

/// Writes nothing: a dry run's rows end here once they are mapped and valid.
pub struct DiscardWriter;

struct Discard;

impl RowWriter for DiscardWriter {
    fn sink(&self, _kind: &ImportKind, _file: FileAttributes) -> Box<dyn RowSink> {
        Box::new(Discard)
    }
}

#[async_trait]
impl RowSink for Discard {
    async fn write(&self, _rows: Vec<(u64, Write)>) -> Result<Vec<RejectedRow>, StoreError> {
        Ok(Vec::new())
    }
}
