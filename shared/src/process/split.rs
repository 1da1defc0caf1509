//! A large file cut into chunks that workers import in parallel, and joined again:
//! its counts, report parts and outcome.

use std::io::{BufWriter, Write as _};
use std::sync::Arc;

use tokio_util::io::SyncIoBridge;
use tracing::{info, warn};

use super::error::{ProcessError, lease_lost};
use super::finish::{failed_rows_reason, join_objects};
use super::read::{
    IO_BUF, MAX_STAGED_BYTES, Marks, Opened, Tee, UntilStopped, Unwrapped, json_columns,
    read_options, unwrap_file,
};
use super::{Processed, Processor};
use crate::Clock;
use crate::codec::reader::Position;
use crate::error::{ErrorClass, ServiceError};
use crate::model::config::ImportKind;
use crate::model::ledger::{FileOutcome, FileRecord};
use crate::model::naming::FileType;
use crate::ports::{FileMessage, report_key, staging_key};
use crate::rows::report::SPOOL_PREFIX;

/// A chunk of a split file, as its worker reads it.
pub(super) struct ChunkPlan {
    pub(super) of: u32,
    pub(super) start: Position,
    pub(super) end: u64,
    /// Read from the staged plaintext, not the object.
    pub(super) staged: bool,
}

impl Processor {
    /// Where chunk `i` of the message's file starts and ends.
    pub(super) async fn chunk_plan(
        &self,
        msg: &FileMessage,
        i: u32,
    ) -> Result<ChunkPlan, ProcessError> {
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
    pub(super) async fn try_split(
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
    pub(super) async fn send_chunks(
        &self,
        msg: &FileMessage,
        chunks: u32,
    ) -> Result<(), ProcessError> {
        let messages: Vec<FileMessage> = (0..chunks).map(|i| msg.for_chunk(i)).collect();
        self.send(&messages).await
    }

    /// Sends chunks' messages; one refused brings the file's message back.
    pub(super) async fn send(&self, messages: &[FileMessage]) -> Result<(), ProcessError> {
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
    pub(super) async fn finish_chunk(
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
    pub(super) async fn close_split(
        &self,
        msg: &FileMessage,
        clock: &dyn Clock,
    ) -> Result<(), ProcessError> {
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
    pub(super) async fn end_split(
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
