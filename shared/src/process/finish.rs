//! A file's end: its outcome recorded, its post-processing, and when the run's last
//! file ends, the run closed and its one email and alerts sent.

use std::collections::HashMap;
use std::io::{Read, Seek, Write as _};
use std::time::Duration;

use tracing::{info, warn};

use super::error::ProcessError;
use super::{Processed, Processor};
use crate::Clock;
use crate::codec::mime::Attachment;
use crate::error::{Classify, ErrorClass};
use crate::model::checkpoint::ReportSummary;
use crate::model::ledger::{FileOutcome, RunRecord};
use crate::model::segment::Segment;
use crate::model::status::FileStatus;
use crate::notify::email::{self, ReportDelivery};
use crate::ports::{Bounded, FileMessage, ReportError, Reports, StoreError};
use crate::rows::report::SPOOL_PREFIX;

/// Runs a ledger write, trying a transient failure again a few times in place (for
/// writes whose loss would repeat something already done: an email, alerts).
pub(super) async fn retried<F, Fut>(mut write: F) -> Result<(), StoreError>
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

impl Processor {
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
    pub(super) async fn record_file(
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
    pub(super) async fn file_metrics(
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
    pub(super) async fn notify_pending(
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
    pub(super) async fn close_run(
        &self,
        run: &RunRecord,
        clock: &dyn Clock,
    ) -> Result<(), ProcessError> {
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
    pub(super) async fn notify_run(
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
    pub(super) async fn report_attachments(
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

    /// Tags, moves or deletes the file's object as the import's `post_processing`
    /// says, and records what it did. A failure is recorded and logged: the file's
    /// outcome stands.
    pub(super) async fn post_process(&self, msg: &FileMessage, status: FileStatus) {
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
}

/// Further tries at a write whose loss would repeat what is done (that a run's email
/// went out, its alerts; see [`retried`]).
pub(super) const RECORD_TRIES: u32 = 4;

/// A file's reason when some of its rows failed.
pub(super) fn failed_rows_reason(outcome: &FileOutcome) -> String {
    format!(
        "{} of {} rows failed; see the failed-rows report",
        outcome.rows_failed, outcome.rows_total
    )
}

/// What the reason adds when the report does not list every failed row.
pub(super) fn report_note(summary: &ReportSummary) -> String {
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

/// The failed-rows report as uploaded parts: each checkpoint uploads what the spool
/// gained since the last, and the file's end joins them into the one report.
pub(super) struct ReportParts<'a> {
    pub(super) key: &'a str,
    pub(super) path: &'a std::path::Path,
    /// Parts uploaded so far (by every invocation).
    pub(super) count: u32,
    /// Spool bytes already in parts (this invocation's spool).
    pub(super) sent: u64,
}

impl ReportParts<'_> {
    /// Uploads what the spool holds past the last part, as the next part.
    pub(super) async fn send(
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
    pub(super) async fn join(
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
    pub(super) fn keys(&self) -> Vec<String> {
        (0..self.count)
            .map(|n| crate::model::checkpoint::part_key(self.key, n))
            .collect()
    }
}

/// Joins objects of the reports bucket, in order and after `head`, into `dest`. One
/// that is gone is left out (a lost part must not keep the file from ending).
pub(super) async fn join_objects(
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
