//! The stack's own bucket: failed-rows reports, and the staged plaintext of large
//! PGP or gzip files while their chunks are imported.

use std::path::Path;

use async_trait::async_trait;

use super::{LedgerReads, StoreError};
use crate::error::{Classify, ErrorClass, ServiceError};

/// The report's key: by import and run, named after the data file.
pub fn report_key(import_id: &str, run_id: &str, file_key: &str) -> String {
    let name = file_key.rsplit('/').next().unwrap_or(file_key);
    format!("failed-rows/{import_id}/{run_id}/{name}.failed.csv")
}

/// Where a split file's authenticated plaintext is staged while its chunks are
/// imported (server-side encrypted, expired by the bucket within a day, deleted when
/// the file ends).
pub fn staging_key(import_id: &str, run_id: &str, file_key: &str) -> String {
    let name = file_key.rsplit('/').next().unwrap_or(file_key);
    format!("staging/{import_id}/{run_id}/{name}")
}

/// A report read whole, or only sized because it is over a bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bounded {
    Read(Vec<u8>),
    TooLarge(u64),
}

/// Why a run's report for a file cannot be named or read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("import `{import_id}` has no file `{file_key}`")]
    NoSuchFile { import_id: String, file_key: String },
    #[error("file `{file_key}` belongs to run {actual}, not {run_id}")]
    OtherRun {
        file_key: String,
        run_id: String,
        actual: String,
    },
    #[error("file `{file_key}` of run {run_id} has no failed-rows report (no row failed)")]
    NoReport { file_key: String, run_id: String },
    #[error(
        "report {0} is no longer in the reports bucket (reports are kept ReportRetentionDays days)"
    )]
    Expired(String),
    #[error(transparent)]
    Ledger(#[from] StoreError),
    #[error("reading the report file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl Classify for ReportError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Ledger(e) => e.class(),
            Self::Service(e) => e.class,
            Self::Io(e) => crate::codec::limits::io_class(e),
            _ => ErrorClass::Permanent,
        }
    }
}

#[async_trait]
pub trait Reports: Send + Sync {
    /// Uploads a spooled report.
    async fn upload(&self, key: &str, path: &Path) -> Result<(), ReportError>;

    /// Deletes objects (a report's parts once joined, a staged plaintext).
    async fn delete(&self, keys: &[String]) -> Result<(), ReportError>;

    /// Streams bytes `from..to` (`None`: to the end) of an object (a staged plaintext).
    async fn open_range(
        &self,
        key: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<super::ObjectBody, ReportError>;

    /// Reads a report whole if it has at most `max_bytes`.
    async fn read_bounded(&self, key: &str, max_bytes: u64) -> Result<Bounded, ReportError>;

    /// A URL that downloads the report without AWS credentials for `lifetime` (or
    /// until the signing credentials expire, if sooner).
    async fn presigned_url(
        &self,
        key: &str,
        lifetime: std::time::Duration,
    ) -> Result<String, ReportError>;
}

/// The report key the ledger recorded for a run's file. Only keys the ledger names
/// are ever read, so a caller cannot reach other objects in the bucket.
pub async fn find_report(
    ledger: &dyn LedgerReads,
    import_id: &str,
    run_id: &str,
    file_key: &str,
) -> Result<String, ReportError> {
    let file = ledger
        .file(import_id, file_key)
        .await?
        .ok_or_else(|| ReportError::NoSuchFile {
            import_id: import_id.into(),
            file_key: file_key.into(),
        })?;
    if file.run_id != run_id {
        return Err(ReportError::OtherRun {
            file_key: file_key.into(),
            run_id: run_id.into(),
            actual: file.run_id,
        });
    }
    file.report_key.ok_or_else(|| ReportError::NoReport {
        file_key: file_key.into(),
        run_id: run_id.into(),
    })
}
