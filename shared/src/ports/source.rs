//! Reaching an import's files: its bucket (with the import's credentials) and the
//! secrets its config names. Errors carry MoEngage's messages where MoEngage has one.

use std::pin::Pin;

use async_trait::async_trait;

use crate::config::{SecretRef, Source};
use crate::error::{Classify, ErrorClass, ServiceError};
use crate::naming::{FilePattern, MatchedFile, Mismatch};

pub const MSG_INVALID_ACCESS_KEY: &str = "Given S3 Access Key is not valid";
pub const MSG_CHECK_FOLDER: &str = "Please check the folder path and try again";

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{MSG_INVALID_ACCESS_KEY} ({detail})")]
    InvalidAccessKey { detail: String },
    #[error("access to s3://{bucket}/{folder} was denied: {detail}")]
    AccessDenied {
        bucket: String,
        folder: String,
        detail: String,
    },
    #[error("{MSG_CHECK_FOLDER}: bucket `{bucket}` does not exist")]
    NoSuchBucket { bucket: String },
    #[error("{MSG_CHECK_FOLDER}: s3://{bucket}/{folder}/ has no files")]
    FolderNotFound { bucket: String, folder: String },
    #[error("the file s3://{bucket}/{key} no longer exists")]
    NoSuchKey { bucket: String, key: String },
    #[error("s3://{bucket}/{key} is {size} bytes; at most {max} are read")]
    ObjectTooLarge {
        bucket: String,
        key: String,
        size: u64,
        max: u64,
    },
    #[error("s3://{bucket}/{key} is not UTF-8 text")]
    NotText { bucket: String, key: String },
    #[error("Secrets Manager secret `{secret}`: {reason}")]
    Secret { secret: String, reason: String },
    #[error("cannot assume role `{role}`: {reason}")]
    AssumeRole { role: String, reason: String },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl Classify for SourceError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Service(e) => e.class,
            _ => ErrorClass::Permanent,
        }
    }
}

/// A matching object found by a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedFile {
    pub file: MatchedFile,
    pub size: u64,
    pub etag: String,
}

#[derive(Debug, Default)]
pub struct Listing {
    /// Matching files, oldest first.
    pub files: Vec<ListedFile>,
    /// Keys under the prefix that did not match, and why.
    pub mismatched: Vec<(String, Mismatch)>,
    /// List requests made.
    pub requests: u32,
}

/// An object's bytes as they arrive.
pub type ObjectBody = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// Connects to an import's folder with the import's credentials.
#[async_trait]
pub trait ObjectSource: Send + Sync {
    /// `session` names the import (for an assumed role's session name).
    async fn connect(
        &self,
        source: &Source,
        session: &str,
    ) -> Result<Box<dyn SourceFolder>, SourceError>;
}

/// An import's folder, reached.
#[async_trait]
pub trait SourceFolder: Send + Sync {
    fn bucket(&self) -> &str;

    /// Lists the folder (no sub-folders) for keys that match the pattern, from
    /// `start_after` when given, sorted by the time in their names.
    async fn list(
        &self,
        pattern: &FilePattern,
        start_after: Option<String>,
    ) -> Result<Listing, SourceError>;

    /// Whether the folder holds anything at all.
    async fn folder_exists(&self) -> Result<bool, SourceError>;

    /// Streams an object; returns its body and size.
    async fn open(&self, key: &str) -> Result<(ObjectBody, u64), SourceError>;

    /// Reads a small text object whole (a mapping file), refusing anything over `max`.
    async fn read_text(&self, key: &str, max: u64) -> Result<String, SourceError>;
}

/// The secrets an import's config names (PGP keys, passphrases, access keys).
#[async_trait]
pub trait Secrets: Send + Sync {
    async fn secret(&self, r: &SecretRef) -> Result<String, SourceError>;
}
