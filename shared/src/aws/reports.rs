//! Failed-rows reports in the stack's reports bucket: uploaded by the processor,
//! read back for email attachments, the CLI and the preview API.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use super::configs::StoreError;
use super::ledger::LedgerStore;
use super::{classify_sdk, describe_sdk};
use crate::error::{Classify, ErrorClass};

#[derive(Debug, Clone)]
pub struct ReportStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

/// The report's key: by import and run, named after the data file.
pub fn report_key(import_id: &str, run_id: &str, file_key: &str) -> String {
    let name = file_key.rsplit('/').next().unwrap_or(file_key);
    format!("failed-rows/{import_id}/{run_id}/{name}.failed.csv")
}

/// A report object being read: its size and its body as a stream.
#[derive(Debug)]
pub struct ReportObject {
    pub size: u64,
    pub body: ByteStream,
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
    #[error("S3: {message}")]
    S3 { message: String, class: ErrorClass },
}

impl Classify for ReportError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Ledger(e) => e.class(),
            Self::S3 { class, .. } => *class,
            _ => ErrorClass::Permanent,
        }
    }
}

/// The report key the ledger recorded for a run's file. Only keys the ledger names
/// are ever read, so a caller cannot reach other objects in the bucket.
pub async fn find_report(
    ledger: &LedgerStore,
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

impl ReportStore {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub async fn upload(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StoreError::Aws {
                message: format!("reading the report file: {e}"),
                class: ErrorClass::Retryable,
            })?;
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("text/csv")
            .body(body)
            .send()
            .await
            .map_err(|e| StoreError::Aws {
                class: classify_sdk(&e),
                message: format!("uploading the report: {}", describe_sdk(&e)),
            })?;
        Ok(())
    }

    /// Opens a report for streaming. A report the bucket no longer has (its lifecycle
    /// rule expired it) is `NotFound`.
    pub async fn open(&self, key: &str) -> Result<ReportObject, ReportError> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    ReportError::Expired(key.to_string())
                } else {
                    ReportError::S3 {
                        class: classify_sdk(&e),
                        message: format!("reading the report: {}", describe_sdk(&e)),
                    }
                }
            })?;
        Ok(ReportObject {
            size: out
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            body: out.body,
        })
    }

    /// The whole report when it has at most `max_bytes`, else only its size.
    pub async fn read_bounded(&self, key: &str, max_bytes: u64) -> Result<Bounded, ReportError> {
        let object = self.open(key).await?;
        if object.size > max_bytes {
            return Ok(Bounded::TooLarge(object.size));
        }
        let mut body = object.body;
        let mut data = Vec::with_capacity(usize::try_from(object.size).unwrap_or(0));
        while let Some(chunk) = body.try_next().await.map_err(|e| ReportError::S3 {
            message: format!("reading the report: {e}"),
            class: ErrorClass::Retryable,
        })? {
            data.extend_from_slice(&chunk);
            // Content-Length is the S3 object's size; never trust it to bound memory.
            if data.len() as u64 > max_bytes {
                return Ok(Bounded::TooLarge(data.len() as u64));
            }
        }
        Ok(Bounded::Read(data))
    }

    /// A URL that downloads the report without AWS credentials for `lifetime` — or
    /// until the signing credentials expire, if sooner (a Lambda's session
    /// credentials last hours, so keep `lifetime` short).
    pub async fn presigned_url(
        &self,
        key: &str,
        lifetime: Duration,
    ) -> Result<String, ReportError> {
        let config = PresigningConfig::expires_in(lifetime).map_err(|e| ReportError::S3 {
            message: e.to_string(),
            class: ErrorClass::Permanent,
        })?;
        let req = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| ReportError::S3 {
                class: classify_sdk(&e),
                message: describe_sdk(&e),
            })?;
        Ok(req.uri().to_string())
    }
}
