//! Processing one file: lease it in the ledger, stream it from S3, PGP-decrypt and
//! verify it (into ephemeral storage, so only authenticated plaintext is parsed),
//! gunzip, read rows, map, write them to DynamoDB, report failed rows, record the
//! outcome, and when the run's last file ends, send the run's one email.
//!
//! Memory stays flat: the file streams through fixed buffers; rows flow to the
//! writer through a bounded channel.

pub mod delivery;

use std::collections::HashMap;
use std::io::{BufWriter, Cursor, Read, Seek, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;
use tracing::{info, warn};

use crate::Clock;
use crate::codec::limits::{CapRead, CapWrite, Limits, TooLarge, io_class};
use crate::codec::mime::Attachment;
use crate::codec::pgp::{PgpError, PgpKeyring, decrypt_to, looks_like_pgp};
use crate::codec::reader::{
    FileError, Position, ReadError, ReadOptions, Resumed, Row, open_reader, resume_reader,
};
use crate::codec::sniff;
use crate::error::{Classify, ErrorClass, ServiceError};
use crate::model::checkpoint::ReportSummary;
use crate::model::checkpoint::{Checkpoint, ReportProgress};
use crate::model::config::{Encryption, ImportConfig, ImportKind, SecretRef};
use crate::model::ledger::{FileOutcome, FileRecord, RunRecord};
use crate::model::naming::FileType;
use crate::model::segment::{MemberKind, Membership, Segment};
use crate::model::status::FileStatus;
use crate::notify::email::{self, ReportDelivery};
use crate::ports::Segments;
use crate::ports::{
    Bounded, Configs, FileMessage, Ledger, Mailer, ObjectBody, ObjectSource, Queue, ReportError,
    Reports, RowWriter, Secrets, SourceError, SourceFolder, StartOutcome, StoreError, report_key,
    staging_key,
};
use crate::rows::mapping::{
    ColumnMapping, CompiledMapping, MappedRow, MappingError, MappingSpec, parse_manifest,
};
use crate::rows::report::{ReportWriter, SPOOL_PREFIX};
use crate::rows::sink::{Write, WriteBuilder};

/// Runs a ledger write, trying a transient failure again a few times in place (for
/// writes whose loss would repeat something already done: an email, alerts).
async fn retried<F, Fut>(mut write: F) -> Result<(), StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let mut tries = 0;
    loop {
        match write().await {
            Ok(()) => return Ok(()),
            Err(e) if e.class() == ErrorClass::Retryable && tries < RECORD_TRIES => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50 << tries)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Rows per batch handed from the reading thread to the writer.
const BATCH_ROWS: usize = 100;
/// A batch is handed on sooner when its rows reach this many bytes, so memory between
/// reader and writer is bounded by bytes (about `CHANNEL_DEPTH` + `WRITES_IN_FLIGHT`
/// batches), not by a row count that large rows would multiply.
const BATCH_BYTES: usize = 1 << 20;
/// Batches in flight between reader and writer: the bound that keeps memory flat.
const CHANNEL_DEPTH: usize = 8;
/// Event batches being written at once by default (`WRITES_IN_FLIGHT`, the stack's
/// `WritesInFlight`); with the sink's own concurrency, up to 16 `BatchWriteItem`s in
/// flight per file.
pub const DEFAULT_WRITES_IN_FLIGHT: usize = 4;
pub const ENV_WRITES_IN_FLIGHT: &str = "S3IMPORTS_WRITES_IN_FLIGHT";
/// The largest mapping file read.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct ProcessorSettings {
    /// Identifies this worker's leases.
    pub worker_id: String,
    /// How long a lease lasts without a heartbeat.
    pub lease: Duration,
    /// Where decrypted plaintext and reports are spooled (Lambda: /tmp).
    pub spool_dir: PathBuf,
    /// After this many starts without finishing (timeouts, crashes), the file fails.
    pub max_attempts: u32,
    /// Row, plaintext and report bounds.
    pub limits: Limits,
    /// How long a message stays invisible while its file is worked on; extended on
    /// every heartbeat, so a dead worker's file is taken over within this time.
    pub visibility: Duration,
    /// The first retry's delay after a retryable failure; it doubles per receive, up
    /// to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Taken off the invocation's deadline: the time to write what is in flight,
    /// record a checkpoint and send the continuation.
    pub deadline_margin: Duration,
    /// How often a long invocation records a checkpoint, so a crash loses at most
    /// this much work; None: only at the deadline.
    pub checkpoint_every: Option<Duration>,
    /// Event batches written at once per file.
    pub writes_in_flight: usize,
    /// A plain file of more than this many bytes is split into chunks of about this
    /// size for parallel workers (`ChunkMB`); None: never split.
    pub chunk_bytes: Option<u64>,
    /// The most chunks a file is split into (larger chunks beyond).
    pub max_chunks: usize,
}

pub const ENV_CHUNK_MB: &str = "S3IMPORTS_CHUNK_MB";
pub const DEFAULT_CHUNK_MB: u64 = 64;

impl Default for ProcessorSettings {
    fn default() -> Self {
        Self {
            worker_id: uuid::Uuid::new_v4().to_string(),
            lease: Duration::from_secs(120),
            spool_dir: std::env::temp_dir(),
            max_attempts: 5,
            limits: Limits::from_env(),
            visibility: Duration::from_secs(180),
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(900),
            deadline_margin: Duration::from_secs(60),
            checkpoint_every: Some(Duration::from_secs(120)),
            writes_in_flight: std::env::var(ENV_WRITES_IN_FLIGHT)
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_WRITES_IN_FLIGHT),
            chunk_bytes: Some(
                std::env::var(ENV_CHUNK_MB)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or(DEFAULT_CHUNK_MB)
                    << 20,
            ),
            max_chunks: 64,
        }
    }
}

impl ProcessorSettings {
    /// The lease as a span of ledger time.
    pub fn lease_span(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::minutes(2))
    }

    /// How long a message waits after its `receive_count`th delivery failed retryably:
    /// `retry_base` doubling per receive, at most `retry_max`.
    pub fn retry_delay(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(16);
        (self.retry_base * 2u32.pow(doublings)).min(self.retry_max)
    }
}

/// One delivery of a file message, as the queue made it.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The queue's count of receives (1 on the first).
    pub receive_count: u32,
    /// SQS will not deliver it again (its last receive before the dead-letter queue).
    pub last: bool,
    /// The message's receipt handle: to keep it invisible while the file is worked on
    /// and to set when it comes back after a retryable failure. None leaves the
    /// queue's own visibility timeout in charge.
    pub receipt: Option<String>,
    /// When the invocation ends (Lambda's deadline): the file stops short of it,
    /// records a checkpoint and continues in a new invocation. None: no limit.
    pub deadline: Option<tokio::time::Instant>,
}

/// Everything processing needs, built once per process: the ports it works through
/// and its settings.
#[derive(Clone)]
pub struct Processor {
    pub configs: Arc<dyn Configs>,
    pub ledger: Arc<dyn Ledger>,
    pub sources: Arc<dyn ObjectSource>,
    pub secrets: Arc<dyn Secrets>,
    pub writer: Arc<dyn RowWriter>,
    pub reports: Arc<dyn Reports>,
    pub mailer: Arc<dyn Mailer>,
    /// The files queue, for the visibility of messages being worked on.
    pub queue: Arc<dyn Queue>,
    /// The segments user imports add to (recounted when a run ends).
    pub segments: Arc<dyn Segments>,
    pub metrics: crate::metrics::Metrics,
    /// Where run summaries go besides the email.
    pub alerts: crate::notify::alerts::Alerting,
    pub settings: ProcessorSettings,
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Processed {
    /// The file was processed (this delivery) and has this outcome.
    Done {
        status: FileStatus,
        rows_total: u64,
        rows_ingested: u64,
        rows_failed: u64,
        reason: Option<String>,
    },
    /// The invocation's time ran out: the file goes on in a continuation from a
    /// checkpoint after this many rows.
    Continued { rows_so_far: u64 },
    /// The file was cut into this many chunks, each sent to the queue for a worker.
    Split { chunks: u32 },
    /// A chunk of a split file ended; the file ends with its last chunk.
    ChunkDone {
        chunk: u32,
        status: FileStatus,
        rows_total: u64,
    },
    /// Nothing to do: already finished (a redelivery) or unknown to the ledger.
    Skipped { reason: String },
}

/// How one invocation's share of a file ended.
pub enum Step {
    /// The file is done, with this outcome; the objects to delete once it is recorded
    /// (the report's parts, joined into it).
    Finished(FileOutcome, Vec<String>),
    /// Time ran out: go on from this checkpoint in a continuation.
    Continued(Checkpoint),
    /// The file was split into this many chunks and they were sent.
    Split(u32),
}

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

impl Processor {
    /// Processes one file message. On the last delivery a retryable failure is
    /// recorded as the file's outcome instead of returned. Returns Err only for
    /// failures worth retrying, after setting when the message comes back.
    pub async fn process(
        &self,
        msg: &FileMessage,
        delivery: &Delivery,
        clock: &dyn Clock,
    ) -> Result<Processed, ProcessError> {
        let result = self.process_once(msg, delivery, clock).await;
        if let Err(e) = &result
            && !matches!(e, ProcessError::Busy { .. })
        {
            self.stack_failure(msg, e, clock);
            // Kept on the file, so a message that ends in the dead-letter queue fails
            // with this reason, not "timed out or crashed". Best effort: the ledger
            // may be what failed.
            if let Err(why) = self
                .ledger
                .release_lease(
                    &msg.import_id,
                    &msg.ledger_key(),
                    &self.settings.worker_id,
                    &e.to_string(),
                )
                .await
            {
                tracing::debug!(key = %msg.key, error = %why, "the error could not be kept on the file");
            }
        }
        if let (Err(e), Some(receipt)) = (&result, &delivery.receipt) {
            let delay = match e {
                // Come back when the other worker's lease runs out.
                ProcessError::Busy {
                    until: Some(until), ..
                } => (*until - clock.now()).to_std().unwrap_or_default() + Duration::from_secs(5),
                _ => self.settings.retry_delay(delivery.receive_count),
            };
            self.set_visibility(msg, receipt, delay).await;
        }
        result
    }

    /// Counts a failure of the stack's own in `ProcessorStackFailures` (see
    /// [`ProcessError::stack_cause`]).
    fn stack_failure(&self, msg: &FileMessage, e: &ProcessError, clock: &dyn Clock) {
        if let Some(cause) = e.stack_cause() {
            warn!(import_id = %msg.import_id, key = %msg.key, cause = %cause, error = %e, "the stack's own failure");
            self.metrics.emit(
                &crate::metrics::Event::stack_failure(
                    crate::metrics::PROCESSOR_STACK_FAILURES,
                    &msg.import_id,
                    cause,
                ),
                clock.now(),
            );
        }
    }

    /// Sets a message's visibility; a failure only leaves the queue's own timeout in
    /// charge, so it is logged, not fatal.
    async fn set_visibility(&self, msg: &FileMessage, receipt: &str, delay: Duration) {
        let secs = u32::try_from(delay.as_secs()).unwrap_or(u32::MAX);
        if let Err(e) = self.queue.set_visibility(receipt, secs).await {
            warn!(key = %msg.key, error = %e, "message visibility not changed");
        }
    }

    async fn process_once(
        &self,
        msg: &FileMessage,
        delivery: &Delivery,
        clock: &dyn Clock,
    ) -> Result<Processed, ProcessError> {
        let last_delivery = delivery.last;
        let now = clock.now();
        let lease = self.settings.lease_span();
        let worker = self.settings.worker_id.as_str();
        let ledger_key = msg.ledger_key();
        let (attempt, checkpoint) = match self
            .ledger
            .start_file(
                &msg.import_id,
                &ledger_key,
                Some(&msg.run_id),
                worker,
                now + lease,
                now,
            )
            .await?
        {
            StartOutcome::Started {
                chunks: chunks @ 1..,
                ..
            } if msg.chunk.is_none() => {
                // Split by a worker that stopped before it sent every chunk: send the
                // ones never started (a running one must not get a second message).
                let mut waiting = Vec::new();
                for i in 0..chunks {
                    let key = crate::model::ledger::chunk_key(&msg.key, i);
                    if let Some(c) = self.ledger.file(&msg.import_id, &key).await?
                        && c.status == FileStatus::Queued
                        && c.attempts == 0
                    {
                        waiting.push(msg.for_chunk(i));
                    }
                }
                self.send(&waiting).await?;
                self.ledger
                    .heartbeat(
                        &msg.import_id,
                        &msg.key,
                        worker,
                        now - chrono::Duration::seconds(1),
                    )
                    .await?;
                return Ok(Processed::Split { chunks });
            }
            StartOutcome::Started {
                attempt,
                checkpoint,
                ..
            } => (attempt, checkpoint),
            StartOutcome::AlreadyDone(status) => {
                // The worker that finished the last chunk may have stopped before it
                // closed the file, or before post-processing or the run's email.
                if msg.chunk.is_some() {
                    self.close_split(msg, clock).await?;
                } else if !msg.dry_run
                    && let Some(file) = self.ledger.file(&msg.import_id, &msg.key).await?
                    && file.run_id == msg.run_id
                    && file.post_process.is_none()
                {
                    self.post_process(msg, status).await;
                }
                self.notify_pending(&msg.import_id, &msg.run_id, clock)
                    .await?;
                return Ok(Processed::Skipped {
                    reason: format!("already processed: {}", status.label()),
                });
            }
            StartOutcome::Busy(until) => {
                return Err(ProcessError::Busy {
                    holder: format!("another worker until {}", crate::clock::to_key(until)),
                    until: Some(until),
                });
            }
            StartOutcome::Unknown => {
                return Ok(Processed::Skipped {
                    reason: "the ledger has no such file".into(),
                });
            }
            StartOutcome::Superseded(run) => {
                return Ok(Processed::Skipped {
                    reason: format!("the file was replayed: it is in run {run} now"),
                });
            }
        };
        let mut leftovers = Vec::new();
        let outcome = if attempt > self.settings.max_attempts {
            FileOutcome::gave_up(
                format!(
                    "processing stopped {} times before finishing (Lambda timeout or crash); giving up",
                    attempt - 1
                ),
                checkpoint.as_ref(),
            )
        } else {
            if let Some(receipt) = &delivery.receipt {
                self.set_visibility(msg, receipt, self.settings.visibility)
                    .await;
            }
            let heartbeat = self.heartbeat(msg, delivery.receipt.as_deref(), clock);
            let result = tokio::select! {
                r = self.import_file(msg, checkpoint.clone(), delivery.deadline, clock) => r,
                lost = heartbeat => Err(lost),
            };
            match result {
                Ok(Step::Finished(outcome, parts)) => {
                    leftovers = parts;
                    outcome
                }
                Ok(Step::Continued(checkpoint)) => {
                    return self.continue_later(msg, &checkpoint, clock).await;
                }
                Ok(Step::Split(chunks)) => {
                    info!(import_id = %msg.import_id, key = %msg.key, chunks, "file split into chunks");
                    return Ok(Processed::Split { chunks });
                }
                Err(e) if e.is_retryable() && !last_delivery => {
                    // `process` releases the lease, keeping the error on the file.
                    warn!(import_id = %msg.import_id, key = %msg.key, error = %e, "retryable failure; SQS will redeliver");
                    return Err(e);
                }
                Err(e) => {
                    self.stack_failure(msg, &e, clock);
                    FileOutcome::gave_up(e.to_string(), checkpoint.as_ref())
                }
            }
        };
        let processed = self.finish(msg, Some(worker), outcome, clock).await;
        // The report's parts, once its outcome (naming the joined report) is recorded:
        // a retry before that joins them again.
        if !leftovers.is_empty()
            && matches!(
                processed,
                Ok(Processed::Done { .. } | Processed::ChunkDone { .. })
            )
            && let Err(e) = self.reports.delete(&leftovers).await
        {
            warn!(key = %msg.key, error = %e, "report parts left to the bucket's expiry");
        }
        processed
    }

    /// Hands the file to a continuation: records the checkpoint with the lease ended
    /// (the heartbeat has stopped), then sends the file's message again. A crash in
    /// between leaves this message unacknowledged: its redelivery resumes instead.
    async fn continue_later(
        &self,
        msg: &FileMessage,
        checkpoint: &Checkpoint,
        clock: &dyn Clock,
    ) -> Result<Processed, ProcessError> {
        let worker = self.settings.worker_id.as_str();
        // A lease that has already ended: the continuation takes the file at once.
        let ended = clock.now() - chrono::Duration::seconds(1);
        if !self
            .ledger
            .checkpoint(&msg.import_id, &msg.ledger_key(), worker, checkpoint, ended)
            .await?
        {
            return Err(lease_lost());
        }
        let refused = self.queue.send_all(std::slice::from_ref(msg)).await?;
        if !refused.is_empty() {
            // This message comes back instead and resumes from the checkpoint.
            return Err(ServiceError::new(
                "SQS",
                "SendMessageBatch",
                ErrorClass::Retryable,
                "the continuation message was refused",
            )
            .into());
        }
        info!(
            import_id = %msg.import_id, key = %msg.key,
            rows_so_far = checkpoint.rows_total, "file continues in a new invocation"
        );
        Ok(Processed::Continued {
            rows_so_far: checkpoint.rows_total,
        })
    }

    /// A message SQS gave up on (it reached the dead-letter queue after repeated
    /// timeouts, crashes or retryable failures): the file fails with the last reason.
    pub async fn dead_letter(
        &self,
        msg: &FileMessage,
        clock: &dyn Clock,
    ) -> Result<Processed, ProcessError> {
        let Some(file) = self.ledger.file(&msg.import_id, &msg.ledger_key()).await? else {
            return Ok(Processed::Skipped {
                reason: "the ledger has no such file".into(),
            });
        };
        if file.status.is_final() {
            if msg.chunk.is_some() {
                self.close_split(msg, clock).await?;
            }
            self.notify_pending(&msg.import_id, &msg.run_id, clock)
                .await?;
            return Ok(Processed::Skipped {
                reason: format!("already processed: {}", file.status.label()),
            });
        }
        let reason = format!(
            "processing did not finish after {} attempt(s); last error: {}",
            file.attempts,
            file.last_error
                .as_deref()
                .unwrap_or("the processor timed out or crashed")
        );
        self.finish(
            msg,
            None,
            FileOutcome::gave_up(reason, file.checkpoint.as_ref()),
            clock,
        )
        .await
    }

    /// Records a file's final outcome.
    pub async fn finish(
        &self,
        msg: &FileMessage,
        worker: Option<&str>,
        outcome: FileOutcome,
        clock: &dyn Clock,
    ) -> Result<Processed, ProcessError> {
        match msg.chunk {
            Some(chunk) => self.finish_chunk(msg, chunk, worker, &outcome, clock).await,
            None => self.record_file(msg, worker, outcome, clock).await,
        }
    }

    /// Records a whole file's outcome, adds it to its run and closes the run.
    async fn record_file(
        &self,
        msg: &FileMessage,
        worker: Option<&str>,
        mut outcome: FileOutcome,
        clock: &dyn Clock,
    ) -> Result<Processed, ProcessError> {
        // Content this import imported: the first file to import it keeps it, a later
        // name repeating it is flagged (a replay of the same name is not).
        if !msg.dry_run
            && outcome.duplicate_of.is_none()
            && let Some(sha) = &outcome.sha256
        {
            if outcome.rows_ingested > 0 {
                outcome.duplicate_of = self
                    .ledger
                    .remember_content(&msg.import_id, sha, &msg.key, &msg.run_id, clock.now())
                    .await?;
            } else {
                // Nothing imported: a skip pass's claim on the content is given back.
                self.ledger
                    .forget_content(&msg.import_id, sha, &msg.key)
                    .await?;
            }
        }
        let status = outcome.status();
        info!(
            import_id = %msg.import_id, key = %msg.key, status = status.label(),
            rows_total = outcome.rows_total, rows_ingested = outcome.rows_ingested,
            rows_failed = outcome.rows_failed, "file finished"
        );
        let Some(run) = self
            .ledger
            .finish_file(
                &msg.import_id,
                &msg.run_id,
                &msg.key,
                worker,
                &outcome,
                clock.now(),
            )
            .await?
        else {
            warn!(import_id = %msg.import_id, key = %msg.key, "outcome refused: the file is final or another worker holds it");
            return Ok(Processed::Skipped {
                reason: "the outcome was not recorded: the file is already final or another worker took it over".into(),
            });
        };
        if !msg.dry_run {
            self.post_process(msg, status).await;
            self.file_metrics(msg, &outcome, status, clock).await;
        }
        self.close_run(&run, clock).await?;
        Ok(Processed::Done {
            status,
            rows_total: outcome.rows_total,
            rows_ingested: outcome.rows_ingested,
            rows_failed: outcome.rows_failed,
            reason: outcome.reason,
        })
    }

    /// A finished file's metrics: by outcome, its rows, bytes and duration (first
    /// start to outcome, continuations included, as the ledger recorded it).
    async fn file_metrics(
        &self,
        msg: &FileMessage,
        outcome: &FileOutcome,
        status: FileStatus,
        clock: &dyn Clock,
    ) {
        // Metrics never fail a file: without the record, the duration is left out.
        let duration = match self.ledger.file(&msg.import_id, &msg.key).await {
            // A file that never started (a dead letter) has no duration.
            Ok(f) => f.and_then(|f| f.started_at.and(f.duration_ms)),
            Err(e) => {
                warn!(key = %msg.key, error = %e, "file duration unknown for its metric");
                None
            }
        };
        let mut values = vec![
            (crate::metrics::FILES_PROCESSED, 1.0),
            (crate::metrics::ROWS_IMPORTED, outcome.rows_ingested as f64),
            (crate::metrics::ROWS_FAILED, outcome.rows_failed as f64),
            (crate::metrics::BYTES_READ, outcome.bytes as f64),
        ];
        if let Some(ms) = duration {
            values.push((crate::metrics::FILE_DURATION, ms as f64));
        }
        self.metrics.emit(
            &crate::metrics::Event {
                import_id: &msg.import_id,
                properties: vec![("RunId", msg.run_id.clone()), ("FileKey", msg.key.clone())],
                outcome: Some(status.as_str()),
                values,
                cause: None,
            },
            clock.now(),
        );
    }

    /// Sends the run's email if every file is done and nobody has: after a crash
    /// between a file's outcome and the email, the redelivered message gets here.
    async fn notify_pending(
        &self,
        import_id: &str,
        run_id: &str,
        clock: &dyn Clock,
    ) -> Result<(), ProcessError> {
        match self.ledger.run(import_id, run_id).await? {
            Some(run) => self.close_run(&run, clock).await,
            None => Ok(()),
        }
    }

    /// Closes a run whose files are all done and sends its one email. The right to
    /// send is taken in the ledger first, with a lease, so only one worker sends; if
    /// that worker stops before it records the email as sent, the message comes back
    /// (Busy until the lease ends) and the email goes out then.
    async fn close_run(&self, run: &RunRecord, clock: &dyn Clock) -> Result<(), ProcessError> {
        if run.notified || run.files_done < run.files_total {
            return Ok(());
        }
        let now = clock.now();
        if let Some(until) = run.notify_until.filter(|u| *u >= now) {
            return Err(ProcessError::Busy {
                holder: "the worker sending the run's email".into(),
                until: Some(until),
            });
        }
        let lease = self.settings.lease_span();
        if !self
            .ledger
            .close_run(run, &self.settings.worker_id, now + lease, now)
            .await?
        {
            return Ok(());
        }
        match self.notify_run(&run.import_id, &run.run_id, now).await {
            Ok(()) => {}
            Err(e) if e.is_retryable() => {
                // The redelivery sends it: let it take the right at once.
                if let Err(release) = self
                    .ledger
                    .release_notification(&run.import_id, &run.run_id, &self.settings.worker_id)
                    .await
                {
                    warn!(run_id = %run.run_id, error = %release, "the email's claim stays until it runs out");
                }
                return Err(e);
            }
            // Trying again cannot help (no such import, SES refuses the address).
            Err(e) => {
                warn!(import_id = %run.import_id, run_id = %run.run_id, error = %e, "run email not sent")
            }
        }
        // The email is out: a transient failure to record that would send it again
        // once the claim runs out, so it is retried here first.
        retried(|| self.ledger.mark_notified(&run.import_id, &run.run_id)).await?;
        Ok(())
    }

    /// Recounts the import's segment and sends the run's email (unless the import
    /// does not want one for this outcome).
    async fn notify_run(
        &self,
        import_id: &str,
        run_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ProcessError> {
        let Some(record) = self.configs.get(import_id).await? else {
            return Ok(());
        };
        let Some(run) = self.ledger.run(import_id, run_id).await? else {
            return Ok(());
        };
        let segment: Option<Segment> = match &record.config.segment {
            Some(s) if run.rows_ingested > 0 => {
                match self.segments.recount(&s.name, import_id, now).await {
                    Ok(segment) => Some(segment),
                    Err(e) if e.class() == ErrorClass::Retryable => return Err(e.into()),
                    // The run's email goes out all the same, without the segment's line.
                    Err(e) => {
                        warn!(import_id, segment = %s.name, error = %e, "segment not recounted");
                        None
                    }
                }
            }
            _ => None,
        };
        let config = &record.config;
        let files = self.ledger.run_files(import_id, run_id).await?;
        let attention = match &run.alerts {
            // Sent before an email that failed and is being retried: not again.
            Some(sent) => sent.attention.clone(),
            None => {
                let attention = config
                    .notifications
                    .alert_when
                    .as_ref()
                    .and_then(|w| w.attention(&run));
                let sent = self
                    .alerts
                    .send(
                        config,
                        &run,
                        &files,
                        attention.clone(),
                        self.secrets.as_ref(),
                        now,
                    )
                    .await;
                for d in sent.deliveries.iter().filter(|d| !d.delivered) {
                    warn!(import_id, run_id, target = %d.target, error = ?d.error, "run summary not delivered");
                }
                // Recorded before the email: a retried email must not send them again.
                retried(|| self.ledger.set_run_alerts(import_id, run_id, &sent)).await?;
                attention
            }
        };
        let needs_attention = attention.is_some() && !config.notifications.recipients.is_empty();
        if !email::wanted(config, run.status) && !needs_attention {
            return Ok(());
        }
        let (deliveries, attachments) = self.report_attachments(&files).await;
        let mut email = email::run_email(
            config,
            &run,
            &files,
            &deliveries,
            segment.as_ref(),
            attention.as_deref(),
        );
        email.attachments = attachments;
        self.mailer
            .send(&record.config.notifications.recipients, &email)
            .await?;
        Ok(())
    }

    /// The run's failed-rows reports that fit in one email ([`email::MAX_ATTACHED_BYTES`]
    /// in all, in file order), and how each report travels. A report that cannot be
    /// read is left out: the email still names how to fetch it.
    async fn report_attachments(
        &self,
        files: &[crate::model::ledger::FileRecord],
    ) -> (HashMap<String, ReportDelivery>, Vec<Attachment>) {
        let mut deliveries = HashMap::new();
        let mut attachments = Vec::new();
        let mut room = email::MAX_ATTACHED_BYTES;
        for f in files {
            let Some(key) = &f.report_key else { continue };
            let delivery = match self.reports.read_bounded(key, room).await {
                Ok(Bounded::Read(data)) => {
                    room -= data.len() as u64;
                    let filename = key.rsplit('/').next().unwrap_or(key).to_string();
                    attachments.push(Attachment {
                        filename: filename.clone(),
                        content_type: "text/csv".into(),
                        data,
                    });
                    ReportDelivery::Attached { filename }
                }
                Ok(Bounded::TooLarge(bytes)) => ReportDelivery::TooLarge { bytes },
                Err(e) => {
                    warn!(key = %key, error = %e, "failed-rows report not attached");
                    ReportDelivery::Unavailable
                }
            };
            deliveries.insert(f.key.clone(), delivery);
        }
        (deliveries, attachments)
    }

    /// Extends the lease until the file is done; resolves only if the lease is lost.
    async fn heartbeat(
        &self,
        msg: &FileMessage,
        receipt: Option<&str>,
        clock: &dyn Clock,
    ) -> ProcessError {
        let every = self.settings.lease / 3;
        let lease = self.settings.lease_span();
        loop {
            tokio::time::sleep(every).await;
            match self
                .ledger
                .heartbeat(
                    &msg.import_id,
                    &msg.ledger_key(),
                    &self.settings.worker_id,
                    clock.now() + lease,
                )
                .await
            {
                Ok(true) => {
                    // The message stays invisible as long as the lease lives.
                    if let Some(receipt) = receipt {
                        self.set_visibility(msg, receipt, self.settings.visibility)
                            .await;
                    }
                }
                Ok(false) => return lease_lost(),
                // A missed heartbeat is not fatal while the lease still runs.
                Err(e) => warn!(key = %msg.key, error = %e, "heartbeat failed"),
            }
        }
    }

    async fn import_file(
        &self,
        msg: &FileMessage,
        resume: Option<Checkpoint>,
        deadline: Option<tokio::time::Instant>,
        clock: &dyn Clock,
    ) -> Result<Step, ProcessError> {
        let config = self.config_of(msg).await?;
        let bucket = self.sources.connect(&config.source, &config.id).await?;
        let mappings = mapping(&config, bucket.as_ref()).await?;
        let keyring = keyring(self.secrets.as_ref(), &config).await?.map(Arc::new);
        let limits = self.settings.limits;
        // A chunk reads its byte range of the file, from its start or its checkpoint.
        let chunk = match msg.chunk {
            Some(i) => Some(self.chunk_plan(msg, i).await?),
            None => None,
        };
        let resume = resume.or_else(|| {
            chunk.as_ref().map(|c| Checkpoint {
                position: c.start.clone(),
                ranged: true,
                ..Checkpoint::default()
            })
        });
        let (marks, _timer) = Marks::until(
            deadline,
            self.settings.deadline_margin,
            self.settings.checkpoint_every,
        );
        if resume.is_none()
            && msg.chunk.is_none()
            && !msg.dry_run
            && config.on_duplicate_content == crate::model::config::DuplicateContent::Skip
            && let Some(outcome) = self
                .skip_repeated(
                    msg,
                    &config,
                    keyring.as_ref(),
                    bucket.as_ref(),
                    &marks,
                    clock,
                )
                .await?
        {
            return Ok(Step::Finished(outcome, Vec::new()));
        }
        if resume.is_none()
            && let Some(chunks) = self
                .try_split(
                    msg,
                    &Opened {
                        config: &config,
                        mappings: &mappings,
                        keyring: keyring.as_ref(),
                        bucket: bucket.as_ref(),
                    },
                    &marks,
                    clock,
                )
                .await?
        {
            return Ok(Step::Split(chunks));
        }
        let end = chunk.as_ref().map(|c| c.end);
        let staged = chunk
            .as_ref()
            .filter(|c| c.staged)
            .map(|_| staging_key(&msg.import_id, &msg.run_id, &msg.key));
        let origin = match &staged {
            Some(key) => Origin::Staged(self.reports.as_ref(), key),
            None => Origin::Source(bucket.as_ref()),
        };
        let (body, layout) = match &resume {
            None => (bucket.open(&msg.key).await?.0, None),
            Some(cp) => open_resumed(origin, msg, cp, end).await?,
        };
        // Staged plaintext was decrypted and verified when it was staged.
        let is_staged = staged.is_some();
        let builder = WriteBuilder::new(&config, &mappings, &msg.key, &msg.etag, clock.now());
        let mut attributes = builder.file_attributes().clone();
        if chunk.is_some() {
            // Chunks of one file are written at once: the later row must still win.
            attributes.ordered = Some(format!("{}@{}", msg.key, msg.etag));
        }
        attributes.segment = config
            .segment
            .as_ref()
            .filter(|_| !msg.dry_run)
            .and_then(|s| {
                let kind = match config.kind {
                    ImportKind::RegisteredUsers {} => MemberKind::Registered,
                    ImportKind::AnonymousUsers { .. } => MemberKind::Anonymous,
                    _ => return None,
                };
                Some(Membership {
                    segment: s.name.clone(),
                    kind,
                    import_id: config.id.clone(),
                    run_id: msg.run_id.clone(),
                    at: clock.now(),
                })
            });
        let sink = if msg.dry_run {
            crate::ports::DiscardWriter.sink(&config.kind, attributes)
        } else {
            self.writer.sink(&config.kind, attributes)
        };
        let spool = self.settings.spool_dir.clone();
        // A chunk's report is its share of the file's bound and has no header: the
        // file's report joins them under one.
        let (max_report, header) = match &chunk {
            Some(c) => (limits.max_report_bytes / u64::from(c.of.max(1)), false),
            None => (limits.max_report_bytes, true),
        };
        let report_file = tempfile::Builder::new()
            .prefix(SPOOL_PREFIX)
            .tempfile_in(&spool)?;
        let report_path = report_file.path().to_path_buf();
        let mut report = match &resume {
            None => ReportWriter::new(report_file.reopen()?, max_report, header),
            Some(cp) => ReportWriter::resume(report_file.reopen()?, max_report, &cp.report, header),
        };
        let file_report = report_key(&msg.import_id, &msg.run_id, &msg.key);
        let report_key = match msg.chunk {
            Some(i) => crate::model::checkpoint::chunk_report_key(&file_report, i),
            None => file_report,
        };
        let base = resume.clone().unwrap_or_default();
        let mut parts = ReportParts {
            key: &report_key,
            path: &report_path,
            count: base.report.parts,
            sent: 0,
        };

        let independent = builder.independent_rows();
        let (tx, rx) = mpsc::channel::<Piece>(CHANNEL_DEPTH);
        let input = SyncIoBridge::new(body);
        let key = msg.key.clone();
        let from = resume.as_ref().zip(layout).map(|(cp, l)| Start {
            at: cp.position.clone(),
            layout: l,
            rows_total: cp.rows_total,
            rows_failed: cp.rows_failed,
            digest: cp.digest.clone(),
        });
        // A chunk is part of a file: the split pass took the whole file's fingerprint.
        let fingerprint = chunk.is_none();
        let reading_marks = marks.clone();
        let reading = tokio::task::spawn_blocking(move || {
            let plan = ReadPlan {
                config: &config,
                mappings: &mappings,
                keyring: keyring.as_deref(),
                key: &key,
                spool: &spool,
                builder: &builder,
                limits: &limits,
                from: from.as_ref(),
                staged: is_staged,
                fingerprint,
                marks: &reading_marks,
            };
            read_file(&plan, input, &mut |piece| tx.blocking_send(piece).is_ok())
        });
        let mut ingested = 0u64;
        let mut rejected = 0u64;
        let mut failure: Option<ProcessError> = None;
        let mut last_mark: Option<Checkpoint> = None;
        let stopped = AtomicBool::new(false);
        let writes = futures::stream::unfold(rx, |mut rx| async {
            rx.recv().await.map(|piece| (piece, rx))
        })
        .map(|piece| {
            let (sink, stopped) = (&sink, &stopped);
            async move {
                match piece {
                    // Drain so the reader can finish.
                    _ if stopped.load(Ordering::Relaxed) => Written::Skipped,
                    Piece::Rows { writes, failed } => {
                        let n = writes.len() as u64;
                        Written::Rows(sink.write(writes).await.map(|r| (n, r)), failed)
                    }
                    Piece::Mark(mark) => Written::Mark(mark),
                }
            }
        })
        // In row order, so a mark comes out once every row before it is written, and
        // rows of users and auxiliary data (which can name the same item) go one
        // batch at a time: the later row wins.
        .buffered(if independent {
            self.settings.writes_in_flight.max(1)
        } else {
            1
        });
        let mut writes = std::pin::pin!(writes);
        while let Some(written) = writes.next().await {
            let result = match written {
                Written::Skipped => Ok(()),
                Written::Rows(Ok((n, r)), failed) => {
                    ingested += n - r.len() as u64;
                    for errors in &failed {
                        report.row_failed(errors);
                    }
                    rejected += r.len() as u64;
                    for r in r {
                        report.row_failed(&[crate::codec::reader::RowError {
                            row: r.row,
                            column: None,
                            reason: r.reason,
                            raw: String::new(),
                        }]);
                    }
                    Ok(())
                }
                Written::Rows(Err(e), _) => Err(e.into()),
                // A failed write may sit before this mark: no checkpoint past it.
                Written::Mark(_) if failure.is_some() => Ok(()),
                Written::Mark(mark) => {
                    let progress = report.progress(parts.count);
                    let checkpoint = async {
                        // A report of only its header stays in the spool (a resumed
                        // report with no parts writes its header again).
                        if progress.rows_listed + progress.rows_omitted > 0 {
                            parts
                                .send(self.reports.as_ref(), &self.settings.spool_dir)
                                .await?;
                        }
                        Ok::<_, ProcessError>(Checkpoint {
                            position: mark.at,
                            rows_total: mark.rows_total,
                            rows_ingested: base.rows_ingested + ingested,
                            rows_failed: mark.rows_failed + rejected,
                            bytes: mark.bytes,
                            ranged: mark.ranged,
                            report: ReportProgress {
                                parts: parts.count,
                                ..progress
                            },
                            digest: mark.digest,
                        })
                    }
                    .await;
                    match checkpoint {
                        // The reader stopped after it: recorded once the heartbeat ends.
                        Ok(cp) if mark.last => {
                            last_mark = Some(cp);
                            Ok(())
                        }
                        Ok(cp) => self.save_checkpoint(msg, &cp, clock).await,
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = result {
                stopped.store(true, Ordering::Relaxed);
                failure.get_or_insert(e);
            }
        }
        let stats = reading
            .await
            .map_err(|e| ProcessError::ReaderStopped(e.to_string()))?;
        if let Some(e) = failure {
            return Err(e);
        }
        let mut stats = stats?;
        if let Some(checkpoint) = last_mark {
            return Ok(Step::Continued(checkpoint));
        }
        stats.rows_failed += rejected;
        let summary = report.finish();
        let mut outcome = FileOutcome {
            rows_total: stats.rows_total,
            rows_ingested: base.rows_ingested + ingested,
            rows_failed: stats.rows_failed,
            bytes: stats.bytes,
            reason: stats.reason,
            report_key: None,
            decrypted_with: stats.decrypted_with,
            sha256: stats.sha256,
            duplicate_of: None,
        };
        let mut leftovers = Vec::new();
        if outcome.rows_failed > 0 {
            parts
                .join(self.reports.as_ref(), &self.settings.spool_dir)
                .await?;
            outcome.report_key = Some(report_key.clone());
            leftovers = parts.keys();
            let note = report_note(&summary);
            outcome.reason = match (outcome.reason.take(), &chunk) {
                (Some(reason), _) => Some(reason + &note),
                // A split file's reason is written when its last chunk ends.
                (None, Some(_)) => Some(note).filter(|n| !n.is_empty()),
                (None, None) => Some(failed_rows_reason(&outcome) + &note),
            };
        }
        drop(report_file);
        Ok(Step::Finished(outcome, leftovers))
    }

    /// Tags, moves or deletes the file's object as the import's `post_processing`
    /// says, and records what it did. A failure is recorded and logged: the file's
    /// outcome stands.
    async fn post_process(&self, msg: &FileMessage, status: FileStatus) {
        let config = match self.configs.get(&msg.import_id).await {
            Ok(Some(record)) => record.config,
            Ok(None) => return,
            Err(e) => {
                warn!(key = %msg.key, error = %e, "post-processing skipped: the config could not be read");
                return;
            }
        };
        let Some(post) = config.post_processing.as_ref().filter(|p| !p.is_empty()) else {
            return;
        };
        // One worker does it: a redelivery may find the file final while the first is
        // still moving it.
        match self
            .ledger
            .claim_post_process(&msg.import_id, &msg.key, &msg.run_id)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                warn!(key = %msg.key, error = %e, "post-processing skipped: it could not be claimed");
                return;
            }
        }
        let done = match self.sources.connect(&config.source, &config.id).await {
            Ok(bucket) => {
                post.apply(
                    bucket.as_ref(),
                    &config.source.folder,
                    &msg.key,
                    &msg.etag,
                    &msg.run_id,
                    status,
                )
                .await
            }
            Err(e) => crate::model::post_process::PostProcessed {
                error: Some(format!("reaching s3://{}: {e}", config.source.bucket)),
                ..Default::default()
            },
        };
        if let Some(error) = &done.error {
            warn!(import_id = %msg.import_id, key = %msg.key, error = %error, "post-processing failed");
        }
        if let Err(e) = self
            .ledger
            .set_post_process(&msg.import_id, &msg.key, &msg.run_id, &done)
            .await
        {
            warn!(key = %msg.key, error = %e, "post-processing not recorded");
        }
    }

    /// `on_duplicate_content: skip`: the file's fingerprint, taken in a pass before any
    /// row is read; the outcome of a file skipped because an earlier file of the
    /// import imported the same content. None: import it (new content, or a pass the
    /// deadline stopped, after which the import flags it as `warn` does).
    async fn skip_repeated(
        &self,
        msg: &FileMessage,
        config: &ImportConfig,
        keyring: Option<&Arc<PgpKeyring>>,
        bucket: &dyn SourceFolder,
        marks: &Arc<Marks>,
        clock: &dyn Clock,
    ) -> Result<Option<FileOutcome>, ProcessError> {
        let (body, _) = bucket.open(&msg.key).await?;
        let input = UntilStopped {
            inner: SyncIoBridge::new(body),
            marks: marks.clone(),
        };
        let (key, spool, limits, keyring) = (
            msg.key.clone(),
            self.settings.spool_dir.clone(),
            self.settings.limits,
            keyring.cloned(),
        );
        let pass = tokio::task::spawn_blocking(move || {
            let file = unwrap_file(&key, keyring.as_deref(), &spool, &limits, input)?;
            Ok::<_, ProcessError>(crate::codec::fingerprint::of_stream(file.plaintext)?)
        })
        .await
        .map_err(|e| ProcessError::ReaderStopped(e.to_string()))?;
        let sha = match pass {
            Ok(sha) => sha,
            // The import reads it again and says why it fails there.
            Err(e) if !e.is_retryable() => return Ok(None),
            Err(e) if marks.stop.load(Ordering::Relaxed) => {
                info!(key = %msg.key, error = %e, "no time to fingerprint before importing");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        // Claimed now, not after the import: two copies in one run are told apart.
        let Some(first) = self
            .ledger
            .remember_content(&msg.import_id, &sha, &msg.key, &msg.run_id, clock.now())
            .await?
        else {
            return Ok(None);
        };
        info!(import_id = %config.id, key = %msg.key, repeats = %first.key, "file skipped: its content was imported before");
        Ok(Some(FileOutcome {
            bytes: msg.size,
            sha256: Some(sha),
            duplicate_of: Some(crate::model::ledger::DuplicateOf {
                skipped: true,
                ..first
            }),
            ..FileOutcome::default()
        }))
    }

    /// The config a message's file is read with: the import's, or the one a dry run
    /// recorded.
    async fn config_of(&self, msg: &FileMessage) -> Result<ImportConfig, ProcessError> {
        let config = if msg.dry_run {
            self.ledger
                .dry_run_config(&msg.import_id, &msg.run_id)
                .await?
        } else {
            self.configs.get(&msg.import_id).await?.map(|r| r.config)
        };
        config.ok_or_else(|| ProcessError::ImportGone(msg.import_id.clone()))
    }

    /// Records a checkpoint mid-invocation, keeping the lease.
    async fn save_checkpoint(
        &self,
        msg: &FileMessage,
        checkpoint: &Checkpoint,
        clock: &dyn Clock,
    ) -> Result<(), ProcessError> {
        let until = clock.now() + self.settings.lease_span();
        let worker = self.settings.worker_id.as_str();
        if self
            .ledger
            .checkpoint(&msg.import_id, &msg.ledger_key(), worker, checkpoint, until)
            .await?
        {
            Ok(())
        } else {
            Err(lease_lost())
        }
    }
}

fn lease_lost() -> ProcessError {
    ProcessError::Busy {
        holder: "another worker, which took over the lease".into(),
        until: None,
    }
}

/// What reading a file needs, once its import is loaded.
struct Opened<'a> {
    config: &'a ImportConfig,
    mappings: &'a [ColumnMapping],
    keyring: Option<&'a Arc<PgpKeyring>>,
    bucket: &'a dyn SourceFolder,
}

/// A chunk of a split file, as its worker reads it.
struct ChunkPlan {
    of: u32,
    start: Position,
    end: u64,
    /// Read from the staged plaintext, not the object.
    staged: bool,
}

/// A reader that fails once the deadline's mark is set (the split pass gives up).
struct UntilStopped<R> {
    inner: R,
    marks: Arc<Marks>,
}

impl<R: Read> Read for UntilStopped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.marks.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the invocation's deadline is near",
            ));
        }
        self.inner.read(buf)
    }
}

/// The largest plaintext staged for chunks (one S3 PutObject); a larger file goes on
/// by continuation alone.
const MAX_STAGED_BYTES: u64 = 5 << 30;

/// Copies what passes through a reader into a file, up to `left` bytes; past that it
/// stops copying and says so (the split is then abandoned).
struct Tee<R, W> {
    inner: R,
    out: W,
    left: u64,
    overflow: bool,
}

impl<R: Read, W: std::io::Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.overflow {
            if n as u64 > self.left {
                self.overflow = true;
            } else {
                self.out.write_all(&buf[..n])?;
                self.left -= n as u64;
            }
        }
        Ok(n)
    }
}

/// Where a resumed read's bytes come from: the import's object, or its staged
/// plaintext in the stack's bucket.
enum Origin<'a> {
    Source(&'a dyn SourceFolder),
    Staged(&'a dyn Reports, &'a str),
}

impl Origin<'_> {
    async fn range(
        &self,
        msg: &FileMessage,
        from: u64,
        to: Option<u64>,
    ) -> Result<ObjectBody, ProcessError> {
        Ok(match self {
            Self::Source(bucket) => bucket.open_range(&msg.key, &msg.etag, from, to).await?,
            Self::Staged(reports, key) => reports.open_range(key, from, to).await?,
        })
    }
}

impl Processor {
    /// Where chunk `i` of the message's file starts and ends.
    async fn chunk_plan(&self, msg: &FileMessage, i: u32) -> Result<ChunkPlan, ProcessError> {
        let split = self
            .ledger
            .file(&msg.import_id, &msg.key)
            .await?
            .and_then(|f| f.split)
            .ok_or_else(|| {
                ProcessError::ReaderStopped(format!("chunk {i} of a file that was not split"))
            })?;
        let start = split
            .starts
            .get(i as usize)
            .cloned()
            .ok_or_else(|| ProcessError::ReaderStopped(format!("the file has no chunk {i}")))?;
        Ok(ChunkPlan {
            of: u32::try_from(split.chunks()).unwrap_or(u32::MAX),
            start,
            end: split.chunk_end(i as usize),
            staged: split.staged,
        })
    }

    /// Splits a large plain file into chunks for parallel workers: reads it through
    /// to find row boundaries, records the split with a ledger item per chunk, and
    /// sends one message per chunk. None when it is not split (small, PGP or gzip,
    /// auxiliary data, a JSON array, one huge row).
    async fn try_split(
        &self,
        msg: &FileMessage,
        opened: &Opened<'_>,
        marks: &Arc<Marks>,
        clock: &dyn Clock,
    ) -> Result<Option<u32>, ProcessError> {
        let Opened {
            config,
            mappings,
            keyring,
            bucket,
        } = *opened;
        let Some(chunk_bytes) = self.settings.chunk_bytes else {
            return Ok(None);
        };
        // A chunk's ledger key must fit DynamoDB's sort key like the file's.
        if crate::model::ledger::chunk_key(&msg.key, 0).len()
            > crate::model::ledger::MAX_FILE_KEY_BYTES
        {
            return Ok(None);
        }
        let lower = msg.key.to_ascii_lowercase();
        // A PGP or gzip file's plaintext is larger than the object: it may be worth
        // splitting from a smaller object (and the pass finds out).
        let wrapped = keyring.is_some()
            || lower
                .trim_end_matches(".pgp")
                .trim_end_matches(".gpg")
                .trim_end_matches(".asc")
                .ends_with(".gz");
        let threshold = if wrapped {
            chunk_bytes / 8
        } else {
            chunk_bytes
        };
        if msg.size <= threshold || matches!(config.kind, ImportKind::Auxiliary { .. }) {
            return Ok(None);
        }
        let (body, _) = bucket.open(&msg.key).await?;
        // A pass that would run past the deadline gives up: the file is read whole,
        // by continuation.
        let input = UntilStopped {
            inner: SyncIoBridge::new(body),
            marks: marks.clone(),
        };
        let json = config.file_type == FileType::Json;
        let columns = json.then(|| json_columns(config, mappings));
        let limits = self.settings.limits;
        let options = read_options(config, &limits);
        let (max_chunks, size) = (self.settings.max_chunks, msg.size);
        let (key, spool, keyring) = (
            msg.key.clone(),
            self.settings.spool_dir.clone(),
            keyring.cloned(),
        );
        let split = tokio::task::spawn_blocking(move || {
            // The same unwrapping as the import itself: PGP is decrypted and verified
            // before a byte is read, so only authenticated plaintext is staged.
            let Unwrapped {
                plaintext,
                plain,
                decrypted_with,
            } = unwrap_file(&key, keyring.as_deref(), &spool, &limits, input)?;
            // The pass reads the whole plaintext: it takes the file's fingerprint.
            let (plaintext, digest) = crate::codec::fingerprint::Hashing::new(
                plaintext,
                crate::codec::fingerprint::Resume::default(),
            );
            let fingerprinted = |mut s: crate::codec::reader::Split| {
                s.sha256 = crate::codec::fingerprint::finished(&digest);
                s
            };
            if plain {
                let split = crate::codec::reader::split_points(
                    json,
                    plaintext,
                    &options,
                    columns,
                    chunk_bytes,
                    max_chunks,
                    size,
                )?;
                return Ok::<_, ProcessError>(split.map(|s| (fingerprinted(s), None)));
            }
            // Staged through /tmp, where the PGP spool may also be: half of what the
            // plaintext may take, and at most one S3 PutObject.
            let cap = (limits.max_plaintext_bytes / 2).min(MAX_STAGED_BYTES);
            let staged = tempfile::Builder::new()
                .prefix(SPOOL_PREFIX)
                .tempfile_in(&spool)?;
            let mut tee = Tee {
                inner: plaintext,
                out: BufWriter::with_capacity(IO_BUF, staged.reopen()?),
                left: cap,
                overflow: false,
            };
            let split = crate::codec::reader::split_points(
                json,
                &mut tee,
                &options,
                columns,
                chunk_bytes,
                max_chunks,
                0,
            )?;
            tee.out.flush()?;
            Ok(split
                .filter(|s| !tee.overflow && s.end > chunk_bytes)
                .map(|s| {
                    let mut s = fingerprinted(s);
                    s.staged = true;
                    s.decrypted_with = decrypted_with;
                    (s, Some(staged))
                }))
        })
        .await
        .map_err(|e| ProcessError::ReaderStopped(e.to_string()))?;
        // A file that cannot be read through is read whole, and says why there.
        let Ok(Some((split, staged))) = split else {
            return Ok(None);
        };
        if let Some(file) = &staged {
            let key = staging_key(&msg.import_id, &msg.run_id, &msg.key);
            self.reports.upload(&key, file.path()).await?;
        }
        drop(staged);
        let now = clock.now();
        let chunks: Vec<FileRecord> = (0..split.chunks())
            .map(|i| {
                let key = crate::model::ledger::chunk_key(&msg.key, i as u32);
                let size = split.chunk_end(i) - split.starts[i].offset;
                FileRecord::queued(
                    &msg.import_id,
                    &msg.run_id,
                    &msg.bucket,
                    &key,
                    size,
                    &msg.etag,
                    now,
                )
            })
            .collect();
        let worker = self.settings.worker_id.as_str();
        if !self
            .ledger
            .split_file(&msg.import_id, &msg.key, worker, &split, &chunks, now)
            .await?
        {
            return Err(lease_lost());
        }
        let n = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        self.send_chunks(msg, n).await?;
        Ok(Some(n))
    }

    /// Sends one message per chunk of a split file.
    async fn send_chunks(&self, msg: &FileMessage, chunks: u32) -> Result<(), ProcessError> {
        let messages: Vec<FileMessage> = (0..chunks).map(|i| msg.for_chunk(i)).collect();
        self.send(&messages).await
    }

    /// Sends chunks' messages; one refused brings the file's message back.
    async fn send(&self, messages: &[FileMessage]) -> Result<(), ProcessError> {
        if !self.queue.send_all(messages).await?.is_empty() {
            // The file's message comes back and sends them again.
            return Err(ServiceError::new(
                "SQS",
                "SendMessageBatch",
                ErrorClass::Retryable,
                "a chunk's message was refused",
            )
            .into());
        }
        Ok(())
    }

    /// Records a chunk's outcome; the worker that ends the last chunk ends the file.
    async fn finish_chunk(
        &self,
        msg: &FileMessage,
        chunk: u32,
        worker: Option<&str>,
        outcome: &FileOutcome,
        clock: &dyn Clock,
    ) -> Result<Processed, ProcessError> {
        let status = outcome.status();
        info!(
            import_id = %msg.import_id, key = %msg.key, chunk, status = status.label(),
            rows_total = outcome.rows_total, "chunk finished"
        );
        let Some((done, total)) = self
            .ledger
            .finish_chunk(
                &msg.import_id,
                &msg.key,
                chunk,
                worker,
                outcome,
                clock.now(),
            )
            .await?
        else {
            return Ok(Processed::Skipped {
                reason: "the chunk's outcome was not recorded: it is final or another worker took it over".into(),
            });
        };
        if done >= total {
            self.close_split(msg, clock).await?;
        }
        Ok(Processed::ChunkDone {
            chunk,
            status,
            rows_total: outcome.rows_total,
        })
    }

    /// Ends a split file whose chunks have all ended: its counts are theirs summed,
    /// its report theirs joined in order. Any worker may; the ledger records it once.
    async fn close_split(&self, msg: &FileMessage, clock: &dyn Clock) -> Result<(), ProcessError> {
        let Some(file) = self.ledger.file(&msg.import_id, &msg.key).await? else {
            return Ok(());
        };
        if file.status.is_final() || file.chunks_total == 0 || file.chunks_done < file.chunks_total
        {
            return Ok(());
        }
        // One closer at a time: another worker may have seen the last chunk end too.
        let now = clock.now();
        if !self
            .ledger
            .claim_close(
                &msg.import_id,
                &msg.key,
                &self.settings.worker_id,
                now + self.settings.lease_span(),
                now,
            )
            .await?
        {
            return Ok(());
        }
        let closed = self.end_split(msg, &file, clock).await;
        if closed.is_err() {
            // The redelivery ends it: give the right back at once.
            let worker = &self.settings.worker_id;
            let back = now - chrono::Duration::seconds(1);
            if let Err(release) = self
                .ledger
                .claim_close(&msg.import_id, &msg.key, worker, back, now)
                .await
            {
                warn!(key = %msg.key, error = %release, "the right to end the file stays until it runs out");
            }
        }
        closed
    }

    /// Ends a split file (its closer only): counts summed, reports joined, the outcome
    /// recorded on its run, then its chunks' reports and staged plaintext deleted.
    async fn end_split(
        &self,
        msg: &FileMessage,
        file: &FileRecord,
        clock: &dyn Clock,
    ) -> Result<(), ProcessError> {
        let mut outcome = FileOutcome {
            bytes: msg.size,
            decrypted_with: file.split.as_ref().and_then(|s| s.decrypted_with.clone()),
            sha256: file.split.as_ref().and_then(|s| s.sha256.clone()),
            ..FileOutcome::default()
        };
        let mut reports = Vec::new();
        let mut reasons = Vec::new();
        for i in 0..file.chunks_total {
            let Some(c) = self
                .ledger
                .file(
                    &msg.import_id,
                    &crate::model::ledger::chunk_key(&msg.key, i),
                )
                .await?
            else {
                continue;
            };
            outcome.rows_total += c.rows_total;
            outcome.rows_ingested += c.rows_ingested;
            outcome.rows_failed += c.rows_failed;
            reports.extend(c.report_key);
            if let Some(r) = c.reason.filter(|r| !r.is_empty()) {
                reasons.push(format!("chunk {} of {}: {r}", i + 1, file.chunks_total));
            }
        }
        if !reports.is_empty() {
            let key = report_key(&msg.import_id, &msg.run_id, &msg.key);
            join_objects(
                self.reports.as_ref(),
                &reports,
                &key,
                &self.settings.spool_dir,
                &crate::rows::report::header_line(),
            )
            .await?;
            outcome.report_key = Some(key);
        }
        if outcome.rows_failed > 0 {
            reasons.insert(0, failed_rows_reason(&outcome));
        }
        outcome.reason = (!reasons.is_empty()).then(|| reasons.join("; "));
        let file_msg = FileMessage {
            chunk: None,
            ..msg.clone()
        };
        if let Processed::Done { .. } = self.record_file(&file_msg, None, outcome, clock).await? {
            // The chunks' reports, and the staged plaintext in every outcome.
            let mut done = reports;
            if file.split.as_ref().is_some_and(|s| s.staged) {
                done.push(staging_key(&msg.import_id, &msg.run_id, &msg.key));
            }
            if let Err(e) = self.reports.delete(&done).await {
                warn!(key = %msg.key, error = %e, "left to the bucket's expiry");
            }
        }
        Ok(())
    }
}

/// Joins objects of the reports bucket, in order and after `head`, into `dest`. One
/// that is gone is left out (a lost part must not keep the file from ending).
async fn join_objects(
    reports: &dyn Reports,
    keys: &[String],
    dest: &str,
    spool_dir: &std::path::Path,
    head: &[u8],
) -> Result<(), ProcessError> {
    let mut joined = tempfile::Builder::new()
        .prefix(SPOOL_PREFIX)
        .tempfile_in(spool_dir)?;
    joined.write_all(head)?;
    for k in keys {
        match reports.read_bounded(k, u64::MAX).await {
            Ok(Bounded::Read(data)) => joined.write_all(&data)?,
            Ok(Bounded::TooLarge(_)) => {}
            Err(ReportError::Expired(_)) => warn!(key = %k, "a report part is gone; left out"),
            Err(e) => return Err(e.into()),
        }
    }
    joined.flush()?;
    reports.upload(dest, joined.path()).await?;
    Ok(())
}

/// Opens a file to resume at its checkpoint: for plaintext that is the object's own
/// bytes, the header and then the rest from the checkpoint (two ranged GETs); for a
/// PGP or gzip file, the whole object again (its plaintext is skipped up to the
/// checkpoint). Either way only while the object is the one started.
async fn open_resumed(
    origin: Origin<'_>,
    msg: &FileMessage,
    cp: &Checkpoint,
    end: Option<u64>,
) -> Result<(ObjectBody, Option<Resumed>), ProcessError> {
    if !cp.ranged {
        let body = origin.range(msg, 0, None).await?;
        return Ok((body, Some(Resumed::Whole)));
    }
    let at = &cp.position;
    let head = match at.header {
        0 => Box::pin(tokio::io::empty()) as ObjectBody,
        n => origin.range(msg, 0, Some(n)).await?,
    };
    // A range that starts at the end is refused: nothing is left to read. (A chunk's
    // end bounds it; a plain object's end is its size.)
    let limit = end.unwrap_or(msg.size);
    let rest = if at.offset >= limit {
        Box::pin(tokio::io::empty()) as ObjectBody
    } else {
        origin.range(msg, at.offset, end).await?
    };
    Ok((
        Box::pin(tokio::io::AsyncReadExt::chain(head, rest)),
        Some(Resumed::Ranged),
    ))
}

/// When the reading thread marks a checkpoint: every `every`, and once `stop` is set
/// (the invocation's deadline is near) for the last time.
pub struct Marks {
    pub stop: AtomicBool,
    pub every: Option<Duration>,
}

impl Marks {
    /// Marks that stop `margin` before `deadline` (at most a quarter of the time
    /// left, so a short timeout still gets most of its time for rows), with the timer
    /// that sets `stop` (aborted when dropped).
    fn until(
        deadline: Option<tokio::time::Instant>,
        margin: Duration,
        every: Option<Duration>,
    ) -> (Arc<Self>, Option<AbortOnDrop>) {
        let marks = Arc::new(Self {
            stop: AtomicBool::new(false),
            every,
        });
        let now = tokio::time::Instant::now();
        let stop_at = deadline.map(|d| {
            let left = d.saturating_duration_since(now);
            d.checked_sub(margin.min(left / 4)).unwrap_or(d)
        });
        let timer = match stop_at {
            // Already past it: stop after the first batch.
            Some(at) if at <= now => {
                marks.stop.store(true, Ordering::Relaxed);
                None
            }
            Some(at) => {
                let marks = marks.clone();
                Some(AbortOnDrop(tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    marks.stop.store(true, Ordering::Relaxed);
                })))
            }
            None => None,
        };
        (marks, timer)
    }
}

/// What the reading thread hands the writer, in row order.
pub enum Piece {
    /// Writes for good rows, and the rows that failed reading or mapping.
    Rows {
        writes: Vec<(u64, Write)>,
        failed: Vec<Vec<crate::codec::reader::RowError>>,
    },
    /// Every row before this point has been handed over.
    Mark(Mark),
}

/// A point a checkpoint can be taken at, as the reader sees it.
pub struct Mark {
    pub at: Position,
    pub rows_total: u64,
    pub rows_failed: u64,
    pub bytes: u64,
    /// The plaintext is the object's bytes.
    pub ranged: bool,
    /// The reader stops here (the deadline is near).
    pub last: bool,
    /// The fingerprint so far.
    pub digest: Option<crate::codec::fingerprint::Digest>,
}

/// A piece once written.
enum Written {
    Rows(
        Result<(u64, Vec<crate::ports::RejectedRow>), StoreError>,
        Vec<Vec<crate::codec::reader::RowError>>,
    ),
    Mark(Mark),
    Skipped,
}

/// Where a resumed read starts.
pub struct Start {
    pub at: Position,
    pub layout: Resumed,
    pub rows_total: u64,
    pub rows_failed: u64,
    /// The fingerprint as the checkpoint left it.
    pub digest: Option<crate::codec::fingerprint::Digest>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The failed-rows report as uploaded parts: each checkpoint uploads what the spool
/// gained since the last, and the file's end joins them into the one report.
struct ReportParts<'a> {
    key: &'a str,
    path: &'a std::path::Path,
    /// Parts uploaded so far (by every invocation).
    count: u32,
    /// Spool bytes already in parts (this invocation's spool).
    sent: u64,
}

impl ReportParts<'_> {
    /// Uploads what the spool holds past the last part, as the next part.
    async fn send(
        &mut self,
        reports: &dyn Reports,
        spool_dir: &std::path::Path,
    ) -> Result<(), ProcessError> {
        let len = std::fs::metadata(self.path)?.len();
        if len <= self.sent {
            return Ok(());
        }
        let mut src = std::fs::File::open(self.path)?;
        src.seek(std::io::SeekFrom::Start(self.sent))?;
        let mut part = tempfile::Builder::new()
            .prefix(SPOOL_PREFIX)
            .tempfile_in(spool_dir)?;
        std::io::copy(&mut src.take(len - self.sent), &mut part)?;
        part.flush()?;
        reports
            .upload(
                &crate::model::checkpoint::part_key(self.key, self.count),
                part.path(),
            )
            .await?;
        self.count += 1;
        self.sent = len;
        Ok(())
    }

    /// Uploads the report: the spool as it is, or (after checkpoints) the parts and
    /// the spool's rest joined, the parts then deleted.
    async fn join(
        &mut self,
        reports: &dyn Reports,
        spool_dir: &std::path::Path,
    ) -> Result<(), ProcessError> {
        if self.count == 0 {
            reports.upload(self.key, self.path).await?;
            return Ok(());
        }
        self.send(reports, spool_dir).await?;
        join_objects(reports, &self.keys(), self.key, spool_dir, b"").await?;
        Ok(())
    }

    /// The parts uploaded so far.
    fn keys(&self) -> Vec<String> {
        (0..self.count)
            .map(|n| crate::model::checkpoint::part_key(self.key, n))
            .collect()
    }
}

/// Resolves the import's mapping: inline, or its manifest file from the folder.
pub async fn mapping(
    config: &ImportConfig,
    bucket: &dyn SourceFolder,
) -> Result<Vec<ColumnMapping>, ProcessError> {
    match &config.mapping {
        MappingSpec::Columns { columns } => Ok(columns.clone()),
        MappingSpec::Manifest { manifest } => {
            let key = format!("{}/{}", config.source.folder, manifest);
            let text = bucket.read_text(&key, MAX_MANIFEST_BYTES).await?;
            parse_manifest(&text).map_err(|error| ProcessError::Manifest {
                bucket: bucket.bucket().to_string(),
                key,
                error,
            })
        }
    }
}

/// Loads the import's PGP keys from Secrets Manager.
pub async fn keyring(
    secrets: &dyn Secrets,
    config: &ImportConfig,
) -> Result<Option<PgpKeyring>, ProcessError> {
    let Some(Encryption::Pgp {
        private_key_ref,
        passphrase_ref,
        previous_keys,
        signer_public_key,
    }) = &config.encryption
    else {
        return Ok(None);
    };
    async fn read(
        secrets: &dyn Secrets,
        import_id: &str,
        key: &SecretRef,
        passphrase: Option<&SecretRef>,
    ) -> Result<(String, Option<String>), ProcessError> {
        let key = secrets.secret(key, import_id).await?;
        let passphrase = match passphrase {
            Some(r) => Some(secrets.secret(r, import_id).await?),
            None => None,
        };
        Ok((key, passphrase))
    }
    let (key, passphrase) = read(
        secrets,
        &config.id,
        private_key_ref,
        passphrase_ref.as_ref(),
    )
    .await?;
    let mut ring = PgpKeyring::new(&key, passphrase.as_deref(), signer_public_key.as_deref())?;
    for previous in previous_keys {
        // A previous key that is gone (deleted after the rotation, its tag changed)
        // fails only the files encrypted to it, whose reason names the keys they are
        // for; a transient failure is retried like any other.
        let added = match read(
            secrets,
            &config.id,
            &previous.private_key_ref,
            previous.passphrase_ref.as_ref(),
        )
        .await
        {
            Ok((key, passphrase)) => ring
                .add_previous(&key, passphrase.as_deref())
                .map_err(|e| e.to_string()),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = added {
            warn!(import_id = %config.id, key = %previous.private_key_ref, error = %e, "a previous key is left out");
        }
    }
    Ok(Some(ring))
}

/// Further tries at a write whose loss would repeat what is done (that a run's email
/// went out, its alerts; see [`retried`]).
const RECORD_TRIES: u32 = 4;

/// A file's reason when some of its rows failed.
fn failed_rows_reason(outcome: &FileOutcome) -> String {
    format!(
        "{} of {} rows failed; see the failed-rows report",
        outcome.rows_failed, outcome.rows_total
    )
}

/// What the reason adds when the report does not list every failed row.
fn report_note(summary: &ReportSummary) -> String {
    let mut note = String::new();
    if summary.rows_omitted > 0 {
        note.push_str(&format!(
            "; the report lists the first {} failed rows ({} more reached its size limit)",
            summary.rows_listed, summary.rows_omitted
        ));
    }
    if let Some(e) = &summary.error {
        note.push_str(&format!("; the report is incomplete: {e}"));
    }
    note
}

/// What the reading thread needs.
pub struct ReadPlan<'a> {
    pub config: &'a ImportConfig,
    pub mappings: &'a [ColumnMapping],
    pub keyring: Option<&'a PgpKeyring>,
    pub key: &'a str,
    pub spool: &'a std::path::Path,
    pub builder: &'a WriteBuilder,
    pub limits: &'a Limits,
    /// Where a resumed read starts; None: at the beginning.
    pub from: Option<&'a Start>,
    /// The input is staged plaintext (decrypted and verified when it was staged).
    pub staged: bool,
    /// Take the plaintext's fingerprint (a whole file, not a chunk).
    pub fingerprint: bool,
    pub marks: &'a Marks,
}

#[derive(Debug, Default)]
pub struct ReadStats {
    pub rows_total: u64,
    pub rows_failed: u64,
    pub bytes: u64,
    /// A reason the file stopped early (rows before it stay ingested).
    pub reason: Option<String>,
    /// The reader stopped at a last mark (the invocation's deadline).
    pub stopped: bool,
    /// Which of the import's keys decrypted the file.
    pub decrypted_with: Option<String>,
    /// The plaintext's SHA-256, when the file was read to its end.
    pub sha256: Option<String>,
}

/// Counts the bytes that pass through a reader.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const IO_BUF: usize = 256 * 1024;

/// Reads the first bytes of a stream for sniffing (a short first read from S3 must not
/// decide anything) and gives back a reader that still yields them.
fn head<'a>(mut input: impl Read + 'a) -> std::io::Result<(Vec<u8>, impl Read + 'a)> {
    let mut head = Vec::with_capacity(sniff::HEAD_BYTES);
    (&mut input)
        .take(sniff::HEAD_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok((head.clone(), Cursor::new(head).chain(input)))
}

/// Unwraps the file (PGP, then gzip) and returns the plaintext reader, and whether
/// the plaintext is the object's own bytes (neither PGP nor gzip). PGP output is
/// spooled to a temporary file and handed on only after its integrity and signature
/// checks pass at the end of the stream. Plaintext past `limits.max_plaintext_bytes`
/// (decrypted or decompressed) fails with [`TooLarge`]; a file that is not text fails
/// with what it looks like.
pub fn unwrap_file<'a>(
    key: &str,
    keyring: Option<&PgpKeyring>,
    spool_dir: &std::path::Path,
    limits: &Limits,
    input: impl Read + Send + 'a,
) -> Result<Unwrapped<'a>, ProcessError> {
    let mut decrypted_with = None;
    let (first, input) = head(input)?;
    let plaintext: Box<dyn Read + 'a> = match (keyring, looks_like_pgp(&first)) {
        (Some(_), false) => {
            return Err(ProcessError::NotEncrypted {
                key: key.to_string(),
                looks_like: sniff::describe(&first).to_string(),
            });
        }
        (None, true) => {
            return Err(ProcessError::UnexpectedPgp {
                key: key.to_string(),
            });
        }
        (Some(keys), true) => {
            let mut spool = tempfile::tempfile_in(spool_dir)?;
            {
                let out = BufWriter::with_capacity(IO_BUF, &mut spool);
                let mut out =
                    CapWrite::new(out, limits.max_plaintext_bytes, limits.plaintext_parameter);
                decrypted_with = Some(decrypt_to(input, &mut out, keys)?.key);
                out.flush()?;
            }
            spool.rewind()?;
            Box::new(spool)
        }
        (None, false) => Box::new(input),
    };
    let (first, plaintext) = head(plaintext)?;
    let named_gz = key
        .to_ascii_lowercase()
        .trim_end_matches(".pgp")
        .trim_end_matches(".gpg")
        .trim_end_matches(".asc")
        .ends_with(".gz");
    let gzip = first.starts_with(&GZIP_MAGIC);
    let plaintext: Box<dyn Read + 'a> = if gzip {
        let gunzipped =
            flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(IO_BUF, plaintext));
        let (inner, gunzipped) = head(gunzipped)?;
        if let Some(kind) = sniff::binary_kind(&inner) {
            return Err(not_text(key, &format!("its gzip data holds {kind}")));
        }
        Box::new(gunzipped)
    } else if named_gz && !first.is_empty() {
        return Err(ProcessError::NotGzip {
            key: key.to_string(),
            looks_like: sniff::describe(&first).to_string(),
        });
    } else if let Some(kind) = sniff::binary_kind(&first) {
        return Err(not_text(key, kind));
    } else {
        Box::new(plaintext)
    };
    // The limit applies to what is parsed, so a decompression bomb stops at it too.
    let plaintext = Box::new(CapRead::new(
        plaintext,
        limits.max_plaintext_bytes,
        limits.plaintext_parameter,
    ));
    Ok(Unwrapped {
        plaintext,
        plain: keyring.is_none() && !gzip,
        decrypted_with,
    })
}

/// A file unwrapped for reading.
pub struct Unwrapped<'a> {
    pub plaintext: Box<dyn Read + 'a>,
    /// The plaintext is the object's own bytes (neither PGP nor gzip).
    pub plain: bool,
    /// Which of the import's keys decrypted it (PGP files).
    pub decrypted_with: Option<String>,
}

fn not_text(key: &str, kind: &str) -> ProcessError {
    ProcessError::NotText {
        key: key.to_string(),
        kind: kind.to_string(),
    }
}

/// The reading thread: unwrap, read rows, map them, and hand pieces (batches of
/// writes with the rows that failed, and marks a checkpoint can be taken at) to `emit`,
/// which returns false when the writer has stopped. Also what `make bench` drives,
/// with a counting `emit`.
pub fn read_file(
    plan: &ReadPlan<'_>,
    input: impl Read + Send,
    emit: &mut dyn FnMut(Piece) -> bool,
) -> Result<ReadStats, ProcessError> {
    // A ranged resume skipped the object's bytes between the header and the position.
    let skipped = plan
        .from
        .filter(|f| f.layout == Resumed::Ranged)
        .map_or(0, |f| f.at.offset - f.at.header);
    let bytes = Arc::new(AtomicU64::new(skipped));
    let input = Counting {
        inner: input,
        count: bytes.clone(),
    };
    let mut stats = ReadStats::default();
    let (plaintext, ranged): (Box<dyn Read + '_>, bool) = if plan.staged {
        (Box::new(input), true)
    } else {
        let file = unwrap_file(plan.key, plan.keyring, plan.spool, plan.limits, input)?;
        stats.decrypted_with = file.decrypted_with;
        (file.plaintext, file.plain)
    };
    let (plaintext, digest) = match fingerprint_from(plan) {
        Some(from) => {
            let (hashing, progress) = crate::codec::fingerprint::Hashing::new(plaintext, from);
            (Box::new(hashing) as Box<dyn Read + '_>, Some(progress))
        }
        None => (plaintext, None),
    };
    let json = plan.config.file_type == FileType::Json;
    let columns = json.then(|| json_columns(plan.config, plan.mappings));
    let options = read_options(plan.config, plan.limits);
    let mut rows = match plan.from {
        None => open_reader(json, plaintext, &options, columns)?,
        Some(from) => {
            stats.rows_total = from.rows_total;
            stats.rows_failed = from.rows_failed;
            resume_reader(json, plaintext, &options, columns, &from.at, from.layout)?
        }
    };
    let mapping = CompiledMapping::new(plan.config, plan.mappings, rows.columns())?;
    let mut row = Row::default();
    let mut mapped = MappedRow::default();
    let mut writes = Vec::with_capacity(BATCH_ROWS);
    let mut failed: Vec<Vec<crate::codec::reader::RowError>> = Vec::new();
    let mut piece_bytes = 0usize;
    let mut last_mark = std::time::Instant::now();
    loop {
        match rows.read_row(&mut row) {
            Ok(true) => {
                stats.rows_total += 1;
                piece_bytes += row.byte_len();
                match mapping.map_row(&row, &mut mapped) {
                    Ok(()) => writes.push((mapped.row, plan.builder.build(&mut mapped))),
                    Err(errors) => {
                        stats.rows_failed += 1;
                        failed.push(errors);
                    }
                }
            }
            Ok(false) => break,
            Err(ReadError::Row(e)) => {
                stats.rows_total += 1;
                stats.rows_failed += 1;
                piece_bytes += e.raw.len();
                failed.push(vec![e]);
            }
            Err(ReadError::File(e)) => {
                let e = ProcessError::from(e);
                // Before any row, the file as a whole failed; after rows, those stay
                // ingested and the file is partial with the reason. A retryable read
                // failure is handed back either way (a redelivery reads it again).
                if stats.rows_total == 0 || e.is_retryable() {
                    return Err(e);
                }
                stats.reason = Some(format!(
                    "the file stopped being readable after row {}: {e}",
                    row.number()
                ));
                break;
            }
        }
        if writes.len() + failed.len() < BATCH_ROWS && piece_bytes < BATCH_BYTES {
            continue;
        }
        let piece = Piece::Rows {
            writes: std::mem::take(&mut writes),
            failed: std::mem::take(&mut failed),
        };
        piece_bytes = 0;
        if !emit(piece) {
            break; // the writer stopped; its error is reported
        }
        // A mark only after a piece: every invocation moves the file on.
        let last = plan.marks.stop.load(Ordering::Relaxed);
        let due = plan.marks.every.is_some_and(|e| last_mark.elapsed() >= e);
        if (last || due) && rows.resumable() {
            let mark = Mark {
                at: rows.position(),
                rows_total: stats.rows_total,
                rows_failed: stats.rows_failed,
                bytes: bytes.load(Ordering::Relaxed),
                ranged,
                last,
                digest: digest.as_ref().map(crate::codec::fingerprint::snapshot),
            };
            if !emit(Piece::Mark(mark)) {
                break;
            }
            last_mark = std::time::Instant::now();
            if last {
                stats.stopped = true;
                break;
            }
        }
    }
    if !writes.is_empty() || !failed.is_empty() {
        emit(Piece::Rows { writes, failed });
    }
    stats.bytes = bytes.load(Ordering::Relaxed);
    if !stats.stopped && stats.reason.is_none() {
        stats.sha256 = digest
            .as_ref()
            .and_then(crate::codec::fingerprint::finished);
    }
    Ok(stats)
}

/// Where a read's fingerprint starts, if it takes one: afresh, unless a ranged resume
/// goes on from its checkpoint's digest (a whole resume reads the plaintext again from
/// its first byte, so it hashes it again). None: no fingerprint (a chunk, or a
/// checkpoint from before fingerprints).
fn fingerprint_from(plan: &ReadPlan<'_>) -> Option<crate::codec::fingerprint::Resume> {
    if !plan.fingerprint {
        return None;
    }
    match plan.from {
        Some(from) if from.layout == Resumed::Ranged => {
            let digest = from.digest.clone()?;
            // The stream is the header again, then the plaintext from the position;
            // the digest already holds everything up to its length.
            let ahead = digest.len().checked_sub(from.at.offset)?;
            Some(crate::codec::fingerprint::Resume {
                skip: from.at.header + ahead,
                digest,
            })
        }
        _ => Some(crate::codec::fingerprint::Resume::default()),
    }
}

/// How the import's rows are read.
fn read_options(config: &ImportConfig, limits: &Limits) -> ReadOptions {
    ReadOptions {
        delimiter: u8::try_from(u32::from(config.delimiter)).unwrap_or(b','),
        max_row_bytes: limits.max_row_bytes,
    }
}

/// The JSON keys to read: every mapped column and the kind's key column.
fn json_columns(config: &ImportConfig, mappings: &[ColumnMapping]) -> Vec<String> {
    let mut cols: Vec<String> = mappings.iter().map(|m| m.column.clone()).collect();
    if let ImportKind::AnonymousUsers {
        identifier_column: c,
    }
    | ImportKind::Auxiliary { key_column: c, .. } = &config.kind
        && !cols.contains(c)
    {
        cols.push(c.clone());
    }
    cols
}
