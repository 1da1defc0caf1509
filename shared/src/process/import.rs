//! Importing one file (or one chunk of it): open, read, map and write its rows through
//! a bounded channel, report failed rows, and stop at a mark before the deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;
use tracing::info;

use super::error::ProcessError;
use super::finish::{ReportParts, failed_rows_reason, report_note};
use super::read::{
    Mark, Marks, Opened, Origin, Piece, ReadPlan, Start, UntilStopped, keyring, mapping,
    open_resumed, read_file, unwrap_file,
};
use super::settings::CHANNEL_DEPTH;
use super::{Processor, Step};
use crate::Clock;
use crate::codec::pgp::PgpKeyring;
use crate::error::Classify;
use crate::model::checkpoint::{Checkpoint, ReportProgress};
use crate::model::config::{ImportConfig, ImportKind};
use crate::model::ledger::FileOutcome;
use crate::model::segment::{MemberKind, Membership};
use crate::ports::{FileMessage, RowWriter, SourceFolder, StoreError, report_key, staging_key};
use crate::rows::report::{ReportWriter, SPOOL_PREFIX};
use crate::rows::sink::WriteBuilder;

impl Processor {
    pub(super) async fn import_file(
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

    /// `on_duplicate_content: skip`: the file's fingerprint, taken in a pass before any
    /// row is read; the outcome of a file skipped because an earlier file of the
    /// import imported the same content. None: import it (new content, or a pass the
    /// deadline stopped, after which the import flags it as `warn` does).
    pub(super) async fn skip_repeated(
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
}

/// A piece once written.
pub(super) enum Written {
    Rows(
        Result<(u64, Vec<crate::ports::RejectedRow>), StoreError>,
        Vec<Vec<crate::codec::reader::RowError>>,
    ),
    Mark(Mark),
    Skipped,
}
