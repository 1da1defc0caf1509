//! Discovery: on each tick, find the imports that are due, claim each run, list the
//! import's folder for new files, claim each new file in the ledger and enqueue it.
//!
//! Listing costs what is new, not the folder: where the date-time format sorts by
//! name, a run lists from the newest name it has seen (`StartAfter`), and sweeps the
//! older names [`SWEEP_PAGES`] pages a run, going on where the last run stopped, for
//! imported names whose object changed and names that arrived late. A run makes at
//! most three list requests however large the folder; other formats list it whole.
//!
//! A tick that stops between claiming files and enqueuing them (a crash, a timeout)
//! leaves them queued in the ledger with no message: the next tick lists them again
//! (the newest key only moves past files that were sent) and, once they have waited
//! [`STRANDED_AFTER`] without starting, sends their messages again.

pub mod by_hand;
pub mod report;
pub mod tick;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use tracing::{info, warn};

use self::report::{ImportTick, TickOutcome, stack_fault_reason};
use crate::Clock;
use crate::model::config::{ConfigRecord, ImportConfig};
use crate::model::ledger::{FileOutcome, FileRecord, ManualRun, RunRecord};
use crate::model::naming::FilePattern;
use crate::model::status::RunStatus;
use crate::notify::email;
use crate::ports::{
    Configs, FileMessage, KnownFile, ListedFile, Mailer, ObjectSource, Queue, RunLedger,
    SourceError, SourceFolder, StoreError, sort_listed,
};

/// Ledger claims in flight at once during a run.
const CLAIM_CONCURRENCY: usize = 16;

/// How long a claimed file may wait without starting before discovery sends its
/// message again. Longer than SQS takes to deliver a message to an idle processor,
/// so a file merely waiting its turn is rarely sent twice (and a second message for
/// a file is harmless: the ledger's lease lets one worker process it).
pub const STRANDED_AFTER: chrono::Duration = chrono::Duration::minutes(15);

/// At most one run by hand per import in this time (MoEngage warns that starting an
/// import again while it processes can conflict; here it is refused instead).
pub const MANUAL_RUN_GAP: chrono::Duration = chrono::Duration::minutes(5);

/// A run that recorded no file [`STRANDED_AFTER`] after it started: its discovery
/// stopped (a timeout, a crash) before it listed the folder, and nothing will end it.
/// It does not hold back a run by hand.
fn stalled(run: &RunRecord, now: chrono::DateTime<chrono::Utc>) -> bool {
    run.files_total == 0 && run.started_at.is_some_and(|t| now - t > STRANDED_AFTER)
}

/// The parts discovery works with, built once per process.
#[derive(Clone)]
pub struct Discovery {
    pub configs: Arc<dyn Configs>,
    pub ledger: Arc<dyn RunLedger>,
    pub queue: Arc<dyn Queue>,
    pub sources: Arc<dyn ObjectSource>,
    pub mailer: Arc<dyn Mailer>,
    pub metrics: crate::metrics::Metrics,
}

impl Discovery {
    /// A claimed run: recorded, its folder listed, its new files claimed and queued.
    /// A failure of the stack's own fails the run with a reason that says so, mailed
    /// to the import's recipients like any failed run.
    async fn start_run(
        &self,
        record: &ConfigRecord,
        run_id: &str,
        manual: Option<&ManualRun>,
        clock: &dyn Clock,
    ) -> Result<ImportTick, StoreError> {
        let result = self.start_run_here(record, run_id, manual, clock).await;
        if let Err(e) = &result {
            let config = &record.config;
            let reason = stack_fault_reason(e);
            warn!(import_id = %config.id, run_id, reason = %reason, "run failed: the stack's own failure");
            if let Err(e) = self
                .ledger
                .fail_run(&config.id, run_id, &reason, clock.now())
                .await
            {
                warn!(import_id = %config.id, run_id, error = %e, "the failed run could not be recorded");
            }
            // Claimed, so this run is not tried again before its next time: say so once.
            self.mail_stack_failure(config, run_id, e).await;
        }
        result
    }

    /// Tells the import's recipients that its run failed for the stack's own reason
    /// (as any failed run's email, with a reason that says whose fault it is).
    async fn mail_stack_failure(&self, config: &ImportConfig, run_id: &str, e: &StoreError) {
        if !email::wanted(config, RunStatus::Failed) {
            return;
        }
        let email = email::run_failed_email(config, run_id, &stack_fault_reason(e));
        if let Err(e) = self
            .mailer
            .send(&config.notifications.recipients, &email)
            .await
        {
            warn!(import_id = %config.id, error = %e, "failure email not sent");
        }
    }

    async fn start_run_here(
        &self,
        record: &ConfigRecord,
        run_id: &str,
        manual: Option<&ManualRun>,
        clock: &dyn Clock,
    ) -> Result<ImportTick, StoreError> {
        let config = &record.config;
        let id = config.id.as_str();
        let run_id = run_id.to_string();
        self.ledger
            .create_run(id, &run_id, manual, clock.now())
            .await?;
        let result = self.list_and_enqueue(record, &run_id, clock).await;
        let mut tick = ImportTick::new(id, TickOutcome::Enqueued);
        tick.run_id = Some(run_id.clone());
        match result {
            Ok(listed) => {
                let (files, requests) = (listed.enqueued, listed.requests);
                tick.requeued = listed.requeued;
                tick.changed = listed.changed;
                tick.list_requests = requests;
                // With new files, the run's email reports the changes; without, this.
                if files.is_empty()
                    && !tick.changed.is_empty()
                    && email::wanted(config, RunStatus::PartiallySucceeded)
                {
                    let email = email::changed_files_email(config, &run_id, &tick.changed);
                    if let Err(e) = self
                        .mailer
                        .send(&config.notifications.recipients, &email)
                        .await
                    {
                        warn!(import_id = %id, error = %e, "changed-files email not sent");
                    }
                }
                tick.outcome = if files.is_empty() {
                    TickOutcome::NoNewFiles
                } else {
                    TickOutcome::Enqueued
                };
                tick.files = files;
                info!(import_id = %id, run_id = %run_id, files = tick.files.len(), "run started");
            }
            Err(RunError::Source(e)) => {
                let reason = e.to_string();
                warn!(import_id = %id, run_id = %run_id, reason = %reason, "run failed");
                self.ledger
                    .fail_run(id, &run_id, &reason, clock.now())
                    .await?;
                if email::wanted(config, RunStatus::Failed) {
                    let email = email::run_failed_email(config, &run_id, &reason);
                    if let Err(e) = self
                        .mailer
                        .send(&config.notifications.recipients, &email)
                        .await
                    {
                        warn!(import_id = %id, error = %e, "failure email not sent");
                    }
                }
                tick.outcome = TickOutcome::Failed;
                tick.reason = Some(reason);
            }
            Err(RunError::Store(e)) => return Err(e),
        }
        Ok(tick)
    }

    /// Lists the folder, claims new files and enqueues them, and sends again the
    /// messages of files an earlier tick claimed but never sent.
    async fn list_and_enqueue(
        &self,
        record: &ConfigRecord,
        run_id: &str,
        clock: &dyn Clock,
    ) -> Result<Enqueued, RunError> {
        let config = &record.config;
        let id = config.id.as_str();
        let pattern = config.file_pattern();
        let bucket = self.sources.connect(&config.source, id).await?;
        let start_after = record
            .newest_key
            .as_deref()
            .and_then(|k| pattern.match_key(k).ok())
            .and_then(|newest| pattern.start_after(&newest));
        // New names: from the newest one seen on where the format sorts by name (its
        // cost grows with what is new, not with the folder), else the whole folder.
        let listing = bucket.list(&pattern, start_after.clone()).await?;
        if listing.files.is_empty()
            && record.newest_key.is_none()
            && !bucket.folder_exists().await?
        {
            return Err(RunError::Source(SourceError::FolderNotFound {
                bucket: config.source.bucket.clone(),
                folder: config.source.folder.clone(),
            }));
        }
        // Older names, a bounded step a run: imported names whose object changed, and
        // names that arrived late or lost their ledger record.
        let sweep = match &start_after {
            Some(stem) => sweep(&*bucket, &pattern, record.sweep_key.clone(), stem).await?,
            None => Sweep::default(),
        };
        // Every file listed, new and swept (disjoint: the sweep keeps names up to the
        // stem, the new listing starts past it), in the order runs take them.
        let mut all: Vec<ListedFile> = sweep.files;
        all.extend(listing.files.iter().cloned());
        sort_listed(&mut all);
        let keys: Vec<String> = all.iter().map(|f| f.file.key.clone()).collect();
        let known = self.ledger.known_files(id, &keys).await?;
        let now = clock.now();
        let changed = self.changed(id, &all, &known).await?;
        if !changed.is_empty() {
            // The run item lists the first ones (an item holds 400 KB); each file's own
            // item says it changed.
            let listed = &changed[..changed.len().min(crate::model::ledger::MAX_CHANGED_LISTED)];
            self.ledger.set_run_changed(id, run_id, listed).await?;
            warn!(import_id = %id, run_id, files = changed.len(), "imported files changed under their names");
        }
        // Claims are independent conditional writes: a few in flight at once keep a first
        // run over a large folder inside the Lambda's timeout. `buffered` keeps the order.
        // Owned files: a stream over borrowed ones makes the future lose `Send` proofs
        // (higher-ranked lifetimes), which the API's handler needs.
        let new_files: Vec<ListedFile> = all
            .iter()
            .filter(|f| !known.contains_key(&f.file.key))
            .cloned()
            .collect();
        let claims: Vec<Result<Option<FileMessage>, StoreError>> = futures::stream::iter(new_files)
            .map(|f| async move {
                let file = FileRecord::queued(
                    id,
                    run_id,
                    &config.source.bucket,
                    &f.file.key,
                    f.size,
                    &f.etag,
                    now,
                );
                // A lost race (another tick claimed it) just means it is not ours to send.
                Ok(self
                    .ledger
                    .claim_file(&file, now)
                    .await?
                    .then(|| message(id, run_id, &config.source.bucket, &f)))
            })
            .buffered(CLAIM_CONCURRENCY)
            .collect()
            .await;
        let mut messages = Vec::new();
        for claim in claims {
            messages.extend(claim?);
        }
        let enqueued: Vec<String> = messages.iter().map(|m| m.key.clone()).collect();
        // The run knows its file count before any message can be processed, so the last
        // file to finish is the one that closes the run.
        self.ledger
            .set_run_files(id, run_id, &enqueued, now)
            .await?;
        let stranded = self
            .stranded(id, &config.source.bucket, &all, &known, now)
            .await?;
        let requeued: Vec<String> = stranded.iter().map(|m| m.key.clone()).collect();
        messages.extend(stranded);
        let refused = self.queue.send_all(&messages).await?;
        // The messages are out: from here the run goes on whatever fails, so nothing
        // below fails it (a failure is counted and logged).
        let sent = self
            .after_send(id, &refused, &listing.files, &known, clock)
            .await;
        // Moved on only once the swept names are claimed: a run that fails before
        // sweeps them again.
        let swept = match start_after {
            Some(_) => self.configs.set_sweep_key(id, sweep.next.as_deref()).await,
            None => Ok(()),
        };
        if let Err(e) = sent.and(swept) {
            warn!(import_id = %id, run_id, error = %e, "after its files were queued");
            self.stack_failure(id, &e, clock);
        }
        Ok(Enqueued {
            enqueued,
            requeued,
            requests: listing.requests + sweep.requests,
            changed,
        })
    }

    /// Records the files SQS refused as failed, and moves the import's newest key on.
    async fn after_send(
        &self,
        id: &str,
        refused: &[FileMessage],
        listed: &[ListedFile],
        known: &std::collections::HashMap<String, KnownFile>,
        clock: &dyn Clock,
    ) -> Result<(), StoreError> {
        for m in refused {
            let outcome = FileOutcome::failed(
                "SQS refused the message; delete the file's ledger record to import it again",
            );
            self.ledger
                .fail_queued(id, &m.run_id, &m.key, &outcome, clock.now())
                .await?;
        }
        // The newest key moves on past every listed file except those still waiting to
        // start (sent again or not), so a file whose message may have been lost is
        // listed again.
        let newest = match listed
            .iter()
            .position(|f| known.get(&f.file.key).is_some_and(KnownFile::waiting))
        {
            Some(0) => None,
            Some(i) => listed.get(i - 1),
            None => listed.last(),
        };
        if let Some(newest) = newest {
            self.configs.set_newest_key(id, &newest.file.key).await?;
        }
        Ok(())
    }

    /// Imported files whose object now has another ETag, each noted once.
    async fn changed(
        &self,
        id: &str,
        listed: &[ListedFile],
        known: &std::collections::HashMap<String, KnownFile>,
    ) -> Result<Vec<crate::model::ledger::ChangedFile>, StoreError> {
        let mut changed = Vec::new();
        for f in listed {
            if let Some(k) = known.get(&f.file.key)
                && k.status.is_final()
                && !k.etag.is_empty()
                && k.etag != f.etag
                && k.changed_etag.as_deref() != Some(f.etag.as_str())
                && self.ledger.note_changed(id, &f.file.key, &f.etag).await?
            {
                changed.push(crate::model::ledger::ChangedFile {
                    key: f.file.key.clone(),
                    run_id: k.run_id.clone(),
                    etag_imported: k.etag.clone(),
                    etag_now: f.etag.clone(),
                });
            }
        }
        Ok(changed)
    }

    /// Messages for files an earlier tick claimed and never sent (it stopped between
    /// the claims and the sends): queued, never started, for longer than
    /// [`STRANDED_AFTER`]. A run whose file list was never recorded gets it now, so the
    /// last of its files still closes it.
    async fn stranded(
        &self,
        id: &str,
        bucket: &str,
        listed: &[ListedFile],
        known: &std::collections::HashMap<String, KnownFile>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<FileMessage>, StoreError> {
        let mut by_run: BTreeMap<&str, Vec<&ListedFile>> = BTreeMap::new();
        for f in listed {
            if let Some(k) = known.get(&f.file.key)
                && k.waiting()
                && let Some(queued_at) = k.queued_at.filter(|t| *t + STRANDED_AFTER <= now)
                // Taking it moves its queued time on: one tick sends it, and not again
                // for STRANDED_AFTER (a backlog may still be on its way to it).
                && self
                    .ledger
                    .requeue_file(id, &f.file.key, queued_at, now)
                    .await?
            {
                by_run.entry(k.run_id.as_str()).or_default().push(f);
            }
        }
        let mut messages = Vec::new();
        for (run_id, files) in by_run {
            // Whatever the run's status (it may have failed as a whole after its claims),
            // its files' outcomes must find it knowing them, or the first would close it.
            if let Some(run) = self.ledger.run(id, run_id).await?
                && run.files_total == 0
            {
                let keys: Vec<String> = files.iter().map(|f| f.file.key.clone()).collect();
                self.ledger.set_run_files(id, run_id, &keys, now).await?;
            }
            warn!(import_id = %id, run_id, files = files.len(), "sending the messages of files claimed but never enqueued");
            messages.extend(files.into_iter().map(|f| message(id, run_id, bucket, f)));
        }
        Ok(messages)
    }
}

/// What one run's listing enqueued.
struct Enqueued {
    enqueued: Vec<String>,
    requeued: Vec<String>,
    requests: u32,
    changed: Vec<crate::model::ledger::ChangedFile>,
}

/// List requests a run's sweep of older names makes. With the one that lists new
/// names, a run lists in three requests however large the folder; a pass over `n`
/// older names takes `n / 2,000` runs (S3 returns up to 1,000 keys a request:
/// https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html).
pub const SWEEP_PAGES: u32 = 2;

/// One run's step of the sweep over the names up to the newest one seen.
#[derive(Default)]
struct Sweep {
    files: Vec<ListedFile>,
    /// Where the next run's step starts (None: this pass is complete).
    next: Option<String>,
    requests: u32,
}

/// Lists [`SWEEP_PAGES`] pages of the folder from `from`, keeping the names up to
/// `stem` (the names past it are the new listing's).
async fn sweep(
    bucket: &dyn SourceFolder,
    pattern: &FilePattern,
    from: Option<String>,
    stem: &str,
) -> Result<Sweep, SourceError> {
    let mut listing = bucket.list_pages(pattern, from, Some(SWEEP_PAGES)).await?;
    listing.files.retain(|f| f.file.key.as_str() <= stem);
    Ok(Sweep {
        files: listing.files,
        next: listing.resume_after.filter(|k| k.as_str() < stem),
        requests: listing.requests,
    })
}

/// The message of a file the ledger has.
pub fn file_message(f: &FileRecord, dry_run: bool) -> FileMessage {
    FileMessage {
        import_id: f.import_id.clone(),
        run_id: f.run_id.clone(),
        bucket: f.bucket.clone(),
        key: f.key.clone(),
        size: f.size,
        etag: f.etag.clone(),
        chunk: None,
        dry_run,
    }
}

fn message(import_id: &str, run_id: &str, bucket: &str, f: &ListedFile) -> FileMessage {
    FileMessage {
        import_id: import_id.to_string(),
        run_id: run_id.to_string(),
        bucket: bucket.to_string(),
        key: f.file.key.clone(),
        size: f.size,
        etag: f.etag.clone(),
        chunk: None,
        dry_run: false,
    }
}

enum RunError {
    Source(SourceError),
    Store(StoreError),
}

impl From<SourceError> for RunError {
    fn from(e: SourceError) -> Self {
        Self::Source(e)
    }
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}
