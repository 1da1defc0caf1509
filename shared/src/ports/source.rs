//! Reaching an import's files: its bucket (with the import's credentials) and the
//! secrets its config names. Errors carry MoEngage's messages where MoEngage has one.

use std::pin::Pin;

use async_trait::async_trait;

use crate::error::{Classify, ErrorClass, ServiceError};
use crate::model::config::{SecretRef, Source};
use crate::model::naming::{FilePattern, MatchedFile, Mismatch};

pub const MSG_INVALID_ACCESS_KEY: &str = "Given S3 Access Key is not valid";
/// The Secrets Manager tag that binds a secret to the imports that may use it: their
/// ids, separated by spaces. A secret without it is used by no import.
pub const SECRET_TAG: &str = "s3imports:import-id";
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
    /// A file being resumed was replaced by another object under its name.
    #[error(
        "s3://{bucket}/{key} changed while it was being imported (its ETag is no longer {etag}); upload the new file under a new name"
    )]
    Changed {
        bucket: String,
        key: String,
        etag: String,
    },
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
    /// IAM refused it: the stack's roles read only secrets under its `SecretsPrefix`
    /// that carry the binding tag, so an untagged secret is refused before its tags
    /// can be read.
    #[error(
        "Secrets Manager secret `{secret}`: {reason}; the stack's roles read only secrets under its SecretsPrefix that carry the tag `{SECRET_TAG}` (the ids of the imports that may use them)"
    )]
    SecretDenied { secret: String, reason: String },
    #[error(
        "Secrets Manager secret `{secret}` is not for import `{import_id}`: {}; tag the secret `{SECRET_TAG}` with the ids of the imports that may use it",
        match tagged {
            Some(t) => format!("its tag `{SECRET_TAG}` is `{t}`"),
            None => format!("it has no tag `{SECRET_TAG}`"),
        }
    )]
    SecretNotForImport {
        secret: String,
        import_id: String,
        tagged: Option<String>,
    },
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
    /// When the object was last written (None: unknown).
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Default)]
pub struct Listing {
    /// Matching files, oldest first.
    pub files: Vec<ListedFile>,
    /// Keys under the prefix that did not match, and why.
    pub mismatched: Vec<(String, Mismatch)>,
    /// List requests made.
    pub requests: u32,
    /// When a listing stopped at its page limit with more keys to come: the last key it
    /// read (matching or not), where the next one starts after.
    pub resume_after: Option<String>,
}

impl Listing {
    /// Puts the files in the order runs take them: by the time in their names, then key.
    pub fn sort(&mut self) {
        sort_listed(&mut self.files);
    }
}

/// Files in the order runs take them: by the time in their names, then key.
pub fn sort_listed(files: &mut [ListedFile]) {
    files.sort_by(|a, b| (a.file.timestamp, &a.file.key).cmp(&(b.file.timestamp, &b.file.key)));
}

/// An object's bytes as they arrive.
pub type ObjectBody = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// Connects to an import's folder with the import's credentials.
#[async_trait]
pub trait ObjectSource: Send + Sync {
    /// `import_id` is the import reaching its folder: it names an assumed role's
    /// session, and an access-key secret must be bound to it.
    async fn connect(
        &self,
        source: &Source,
        import_id: &str,
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
    ) -> Result<Listing, SourceError> {
        self.list_pages(pattern, start_after, None).await
    }

    /// [`Self::list`] in at most `max_pages` list requests (S3 returns up to 1,000 keys
    /// a request); [`Listing::resume_after`] says where a listing cut short goes on.
    async fn list_pages(
        &self,
        pattern: &FilePattern,
        start_after: Option<String>,
        max_pages: Option<u32>,
    ) -> Result<Listing, SourceError>;

    /// Whether the folder holds anything at all.
    async fn folder_exists(&self) -> Result<bool, SourceError>;

    /// Streams an object; returns its body and size.
    async fn open(&self, key: &str) -> Result<(ObjectBody, u64), SourceError>;

    /// Streams bytes `from..to` (`None`: to the end) of an object, only while its ETag
    /// is still `etag` (a resumed file must be the file that was started):
    /// [`SourceError::Changed`] otherwise.
    async fn open_range(
        &self,
        key: &str,
        etag: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<ObjectBody, SourceError>;

    /// Reads a small text object whole (a mapping file), refusing anything over `max`.
    async fn read_text(&self, key: &str, max: u64) -> Result<String, SourceError>;

    /// The object's size and ETag as it is now ([`SourceError::NoSuchKey`] when gone).
    async fn head(&self, key: &str) -> Result<(u64, String), SourceError>;

    /// Tagging, moving and deleting this folder's files: post-processing's own
    /// permissions (the template's `AllowSourcePostProcessing`), apart from reading.
    fn cleanup(&self) -> &dyn SourceCleanup;
}

/// What post-processing does to a folder's files once they have their outcome.
#[async_trait]
pub trait SourceCleanup: Send + Sync {
    /// Adds (or replaces) tags on the object, keeping its other tags.
    async fn tag(&self, key: &str, tags: &[(String, String)]) -> Result<(), SourceError>;

    /// Copies the object to `to` in the same bucket, only while its ETag is `etag`.
    async fn copy(&self, key: &str, etag: &str, to: &str) -> Result<(), SourceError>;

    /// Deletes the object, only while its ETag is `etag` (a newer upload under the
    /// name is left alone: [`SourceError::Changed`]).
    async fn delete(&self, key: &str, etag: &str) -> Result<(), SourceError>;
}

/// The secrets an import's config names (PGP keys, passphrases, access keys). A
/// secret is returned only to an import its [`SECRET_TAG`] names, so a config cannot
/// borrow another import's key.
#[async_trait]
pub trait Secrets: Send + Sync {
    async fn secret(&self, r: &SecretRef, import_id: &str) -> Result<String, SourceError>;
}

/// Whether a secret whose [`SECRET_TAG`] has this value may be used by `import_id`.
pub fn secret_allows(tag: Option<&str>, import_id: &str) -> bool {
    tag.is_some_and(|t| t.split_ascii_whitespace().any(|id| id == import_id))
}

/// Refuses a secret its tag does not bind to `import_id`.
pub fn check_secret_tag(
    secret: &str,
    tag: Option<&str>,
    import_id: &str,
) -> Result<(), SourceError> {
    if secret_allows(tag, import_id) {
        Ok(())
    } else {
        Err(SourceError::SecretNotForImport {
            secret: secret.to_string(),
            import_id: import_id.to_string(),
            tagged: tag.map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_serves_only_the_imports_its_tag_names() {
        assert!(secret_allows(Some("users"), "users"));
        assert!(secret_allows(Some("users  events"), "events"));
        assert!(!secret_allows(Some("users-2"), "users"));
        assert!(!secret_allows(Some(""), "users"));
        assert!(!secret_allows(None, "users"));
        let e = check_secret_tag("s3imports/k", Some("other"), "users").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Secrets Manager secret `s3imports/k` is not for import `users`: its tag `s3imports:import-id` is `other`; tag the secret `s3imports:import-id` with the ids of the imports that may use it"
        );
    }
}
