//! Processing one file: lease it in the ledger, stream it from S3, PGP-decrypt and
//! verify it (into ephemeral storage, so only authenticated plaintext is parsed),
//! gunzip, read rows, map, write them to DynamoDB, report failed rows, record the
//! outcome, and when the run's last file ends, send the run's one email.
//!
//! Memory stays flat: the file streams through fixed buffers; rows flow to the
//! writer through a bounded channel.

pub mod delivery;
pub mod error;
pub mod finish;
pub mod import;
pub mod read;
pub mod settings;
pub mod split;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tracing::{Instrument as _, error, info, warn};

use self::delivery::Delivery;
use self::error::{ProcessError, lease_lost};
use self::settings::ProcessorSettings;
use crate::Clock;
use crate::error::{Classify, ErrorClass, ServiceError};
use crate::metrics;
use crate::model::checkpoint::Checkpoint;
use crate::model::config::ImportConfig;
use crate::model::ledger::FileOutcome;
use crate::model::status::FileStatus;
use crate::ports::Segments;
use crate::ports::{
    Configs, FileLedger, FileMessage, Mailer, ObjectSource, Queue, Reports, RowWriter, Secrets,
    StartOutcome,
};

/// Everything processing needs, built once per process: the ports it works through
/// and its settings.
#[derive(Clone)]
pub struct Processor {
    pub configs: Arc<dyn Configs>,
    pub ledger: Arc<dyn FileLedger>,
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

/// What became of one message.
#[derive(Debug)]
pub enum RecordOutcome {
    /// A file message, processed (or skipped) by this delivery.
    File(FileMessage, Processed),
    /// A dead letter, recorded as the file's failure (or skipped).
    DeadLetter(FileMessage, Processed),
    /// To be delivered again (the message's visibility is already set).
    Retry(String),
    /// Not a file message: dropped, since retrying cannot help.
    Dropped,
}

/// Handles one message: a file to process, or a dead letter to record.
pub async fn handle(
    processor: &Processor,
    clock: &dyn Clock,
    max_receives: u32,
    message: &Delivery,
) -> RecordOutcome {
    let id = &message.id;
    let Some(msg) = message
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<FileMessage>(b).ok())
    else {
        error!(message_id = %id, "message is not a file message; dropped");
        return RecordOutcome::Dropped;
    };
    if message.dead_letter {
        let span = tracing::error_span!(
            "dead_letter",
            import_id = %msg.import_id,
            run_id = %msg.run_id,
            key = %msg.key
        );
        return match processor
            .dead_letter(&msg, clock)
            .instrument(span.clone())
            .await
        {
            Ok(p) => RecordOutcome::DeadLetter(msg, p),
            Err(e) => {
                span.in_scope(
                    || warn!(message_id = %id, error = %e, "dead letter not recorded; will retry"),
                );
                RecordOutcome::Retry(e.to_string())
            }
        };
    }
    let delivery = Delivery {
        receive_count: message.receive_count.max(1),
        last: message.last || message.receive_count >= max_receives,
        ..message.clone()
    };
    let before = processor.metrics.dynamo.snapshot();
    let started = clock.now();
    // Every line logged about the file carries its import, run and key.
    let span = tracing::error_span!(
        "file",
        import_id = %msg.import_id,
        run_id = %msg.run_id,
        key = %msg.key,
        chunk = tracing::field::Empty
    );
    if let Some(chunk) = msg.chunk {
        span.record("chunk", chunk);
    }
    let result = processor
        .process(&msg, &delivery, clock)
        .instrument(span.clone())
        .await;
    // What this delivery waited in the queue and cost DynamoDB in throttles and retries.
    let dynamo = processor.metrics.dynamo.snapshot().since(before);
    let mut values = vec![
        (metrics::DYNAMO_THROTTLES, dynamo.throttles as f64),
        (metrics::DYNAMO_RETRIES, dynamo.retries as f64),
    ];
    // The first delivery only: `SentTimestamp` is the first send, so a redelivery's
    // wait would include its earlier attempts and backoff.
    if let Some(sent) = message.sent_at.filter(|_| message.receive_count <= 1) {
        values.push((
            metrics::QUEUE_WAIT,
            (started - sent).num_milliseconds().max(0) as f64,
        ));
    }
    processor.metrics.emit(
        &metrics::Event {
            import_id: &msg.import_id,
            properties: vec![("RunId", msg.run_id.clone()), ("FileKey", msg.key.clone())],
            outcome: None,
            values,
            cause: None,
        },
        clock.now(),
    );
    match result {
        Ok(p) => RecordOutcome::File(msg, p),
        Err(e) => {
            span.in_scope(|| warn!(message_id = %id, error = %e, "file will be retried"));
            RecordOutcome::Retry(e.to_string())
        }
    }
}
