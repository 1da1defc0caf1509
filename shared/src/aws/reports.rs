//! Failed-rows reports in the stack's reports bucket, linked from emails by
//! presigned URLs.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use super::configs::StoreError;
use super::{classify_sdk, describe_sdk};
use crate::error::ErrorClass;

/// How long a report link in an email works (SigV4's maximum).
pub const LINK_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

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

    /// A link that downloads the report without AWS credentials, for a week.
    pub async fn link(&self, key: &str) -> Result<String, StoreError> {
        let config = PresigningConfig::expires_in(LINK_LIFETIME).map_err(|e| StoreError::Aws {
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
            .map_err(|e| StoreError::Aws {
                class: classify_sdk(&e),
                message: describe_sdk(&e),
            })?;
        Ok(req.uri().to_string())
    }
}
