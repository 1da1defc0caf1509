//! Failed-rows reports in the stack's reports bucket: uploaded by the processor,
//! read back for email attachments, the CLI and the preview API.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use super::service_error;
use crate::error::{ErrorClass, ServiceError};
use crate::ports::{Bounded, ReportError, Reports};

#[derive(Debug, Clone)]
pub struct ReportStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

/// A report object being read: its size and its body as a stream.
#[derive(Debug)]
pub struct ReportObject {
    pub size: u64,
    pub body: ByteStream,
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

    /// GetObject of the whole object or a range; an object the bucket no longer has
    /// is `Expired`.
    async fn get(
        &self,
        key: &str,
        range: Option<String>,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, ReportError> {
        self.s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    ReportError::Expired(key.to_string())
                } else {
                    service_error("S3", "GetObject", e).into()
                }
            })
    }

    /// Opens a report for streaming. A report the bucket no longer has (its lifecycle
    /// rule expired it) is `NotFound`.
    pub async fn open(&self, key: &str) -> Result<ReportObject, ReportError> {
        let out = self.get(key, None).await?;
        Ok(ReportObject {
            size: out
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            body: out.body,
        })
    }
}

#[async_trait]
impl Reports for ReportStore {
    /// A URL that downloads the report without AWS credentials for `lifetime` — or
    /// until the signing credentials expire, if sooner (a Lambda's session
    /// credentials last hours, so keep `lifetime` short).
    async fn presigned_url(&self, key: &str, lifetime: Duration) -> Result<String, ReportError> {
        let config = PresigningConfig::expires_in(lifetime).map_err(|e| {
            ServiceError::new("S3", "presign", ErrorClass::Permanent, e.to_string()).with_source(e)
        })?;
        let req = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| service_error("S3", "presign", e))?;
        Ok(req.uri().to_string())
    }

    async fn upload(&self, key: &str, path: &Path) -> Result<(), ReportError> {
        let body = ByteStream::from_path(path).await.map_err(|e| {
            ServiceError::new("S3", "PutObject", ErrorClass::Retryable, e.to_string())
                .with_source(e)
        })?;
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("text/csv")
            .body(body)
            .send()
            .await
            .map_err(|e| service_error("S3", "PutObject", e))?;
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), ReportError> {
        for key in keys {
            self.s3
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| service_error("S3", "DeleteObject", e))?;
        }
        Ok(())
    }

    async fn open_range(
        &self,
        key: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<crate::ports::ObjectBody, ReportError> {
        let out = self.get(key, Some(super::byte_range(from, to))).await?;
        Ok(Box::pin(out.body.into_async_read()))
    }

    async fn read_bounded(&self, key: &str, max_bytes: u64) -> Result<Bounded, ReportError> {
        let object = self.open(key).await?;
        if object.size > max_bytes {
            return Ok(Bounded::TooLarge(object.size));
        }
        let mut body = object.body;
        let mut data = Vec::with_capacity(usize::try_from(object.size).unwrap_or(0));
        while let Some(chunk) = body.try_next().await.map_err(|e| {
            ServiceError::new("S3", "GetObject", ErrorClass::Retryable, e.to_string())
                .with_source(e)
        })? {
            data.extend_from_slice(&chunk);
            // Content-Length is the S3 object's size; never trust it to bound memory.
            if data.len() as u64 > max_bytes {
                return Ok(Bounded::TooLarge(data.len() as u64));
            }
        }
        Ok(Bounded::Read(data))
    }
}
