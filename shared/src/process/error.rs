//! What can go wrong with one file, each failure classed retryable or permanent.

use crate::codec::limits::{TooLarge, io_class};
use crate::codec::pgp::PgpError;
use crate::codec::reader::FileError;
use crate::error::{Classify, ErrorClass, ServiceError};
use crate::ports::{ReportError, SourceError, StoreError};
use crate::rows::mapping::MappingError;

/// A failure of one file.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Pgp(PgpError),
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error(transparent)]
    Read(FileError),
    #[error("import `{0}` no longer exists")]
    ImportGone(String),
    #[error("mapping file s3://{bucket}/{key}: {error}")]
    Manifest {
        bucket: String,
        key: String,
        #[source]
        error: MappingError,
    },
    #[error(
        "the import expects PGP-encrypted files, but {key} is not encrypted ({looks_like}); nothing was imported"
    )]
    NotEncrypted { key: String, looks_like: String },
    #[error(
        "{key} is PGP-encrypted, but the import has no `encryption` settings; nothing was imported"
    )]
    UnexpectedPgp { key: String },
    #[error("{key} is named .gz but is not gzip data ({looks_like})")]
    NotGzip { key: String, looks_like: String },
    #[error("{key} is not a CSV or JSON text file: it looks like {kind}; nothing was imported")]
    NotText { key: String, kind: String },
    #[error(
        "the function's /tmp is full ({source}); raise {}",
        crate::codec::limits::STORAGE_PARAMETER
    )]
    StorageFull {
        #[source]
        source: std::io::Error,
    },
    #[error("the reading thread stopped: {0}")]
    ReaderStopped(String),
    #[error("reading the file: {0}")]
    Io(std::io::Error),
    #[error("the file is held by {holder}")]
    Busy {
        holder: String,
        /// When the holder's lease runs out, if known.
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
}

impl Classify for ProcessError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Source(e) => e.class(),
            Self::Store(e) => e.class(),
            Self::Report(e) => e.class(),
            Self::Service(e) => e.class(),
            Self::Pgp(e) => e.class(),
            Self::Read(e) => e.class(),
            Self::Io(e) => io_class(e),
            Self::Busy { .. } => ErrorClass::Retryable,
            Self::Mapping(_)
            | Self::TooLarge(_)
            | Self::ImportGone(_)
            | Self::Manifest { .. }
            | Self::NotEncrypted { .. }
            | Self::UnexpectedPgp { .. }
            | Self::NotGzip { .. }
            | Self::NotText { .. }
            | Self::StorageFull { .. }
            | Self::ReaderStopped(_) => ErrorClass::Permanent,
        }
    }
}

impl ProcessError {
    /// A failure of the stack's own resources (its tables, queue, reports bucket),
    /// not the file's or the customer's: its cause, as `ProcessorStackFailures` names
    /// it. Throttling, conflicts and transient errors are the stack's weather, not a
    /// failure: None.
    pub fn stack_cause(&self) -> Option<String> {
        let service = match self {
            Self::Store(StoreError::Service(s))
            | Self::Report(ReportError::Service(s) | ReportError::Ledger(StoreError::Service(s)))
            | Self::Service(s) => s,
            _ => return None,
        };
        // A transient failure (a 5xx, a timeout) comes back and is tried again: only a
        // refusal that repeats until someone fixes the stack is counted.
        let cause = service.cause();
        let lasting = service.class == ErrorClass::Permanent
            || cause.ends_with(".AccessDenied")
            || cause.ends_with(".NotFound");
        (lasting && !cause.ends_with(".Throttled")).then_some(cause)
    }
}

impl From<std::io::Error> for ProcessError {
    /// The plaintext limit travels inside I/O errors (it trips in a reader or writer
    /// deep in the pipeline): it comes out as its own variant here.
    fn from(e: std::io::Error) -> Self {
        match TooLarge::find(&e) {
            Some(t) => Self::TooLarge(t.clone()),
            None if e.kind() == std::io::ErrorKind::StorageFull => Self::StorageFull { source: e },
            None => Self::Io(e),
        }
    }
}

impl From<PgpError> for ProcessError {
    fn from(e: PgpError) -> Self {
        match e {
            PgpError::Io(io) => io.into(),
            other => Self::Pgp(other),
        }
    }
}

impl From<FileError> for ProcessError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::Io(io) => io.into(),
            other => Self::Read(other),
        }
    }
}

pub(super) fn lease_lost() -> ProcessError {
    ProcessError::Busy {
        holder: "another worker, which took over the lease".into(),
        until: None,
    }
}
