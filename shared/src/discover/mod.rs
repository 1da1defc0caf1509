//! Discovery: on each tick, find the imports that are due, claim each run, list the
//! import's folder for new files, claim each new file in the ledger and enqueue it.
//!
//! A tick that stops between claiming files and enqueuing them (a crash, a timeout)
//! leaves them queued in the ledger with no message: the next tick lists them again
//! (the newest key only moves past files that were sent) and, once they have waited
//! [`STRANDED_AFTER`] without starting, sends their messages again.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;
use tracing::{Instrument as _, info, warn};

use crate::Clock;
use crate::error::ErrorClass;
use crate::model::config::{ConfigRecord, ImportConfig, ImportStatus};
use crate::model::ledger::{FileOutcome, FileRecord, ManualRun, RunRecord, new_run_id};
use crate::model::status::{FileStatus, RunStatus};
use crate::notify::email;
use crate::ports::{
    Configs, FileMessage, KnownFile, ListedFile, Mailer, ObjectSource, Queue, RunLedger,
    SourceError, StoreError,
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

/// Why a run by hand did not start.
#[derive(Debug, thiserror::Error)]
pub enum RunNowError {
    #[error("no import `{0}`")]
    NotFound(String),
    #[error("import `{id}` is {status}: only an active import can run")]
    NotActive { id: String, status: &'static str },
    #[error(
        "import `{id}` has run `{}` in flight ({} of {} files done, {} rows imported so far); start it again once that run ends",
        run.run_id, run.files_done, run.files_total, run.rows_ingested
    )]
    InFlight { id: String, run: Box<RunRecord> },
    #[error(
        "import `{id}` was started by hand at {last}; one run by hand per {} minutes: try again in {wait_seconds} s",
        MANUAL_RUN_GAP.num_minutes()
    )]
    TooSoon {
        id: String,
        last: chrono::DateTime<chrono::Utc>,
        wait_seconds: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a replay did not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no import `{0}`")]
    NotFound(String),
    #[error(
        "import `{id}` is {status}: only a file of an active or completed import can be replayed"
    )]
    NotActive { id: String, status: &'static str },
    #[error(
        "import `{id}` has no file `{key}`: only a file that already ran can be replayed (give its whole key, folder included)"
    )]
    UnknownFile { id: String, key: String },
    #[error(
        "{} is in flight ({}) in run `{}`; replay it once it ends",
        file.key, file.status.label(), file.run_id
    )]
    InFlight { file: Box<FileRecord> },
    #[error(
        "give a reason for the replay, 1 to {} characters: it is recorded with the run",
        crate::model::ledger::MAX_REPLAY_REASON
    )]
    Reason,
    #[error(
        "{key} was moved to {to} by the import's post-processing: copy it back to replay it under its name"
    )]
    Moved { key: String, to: String },
    #[error(
        "{key} was deleted by the import's post-processing after run {run_id}: upload it again under its name to replay it"
    )]
    Deleted { key: String, run_id: String },
    #[error("the file cannot be replayed: {0}")]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A replay that started: its run, and the outcome it replaces.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayStarted {
    pub import_id: String,
    pub run_id: String,
    pub key: String,
    pub previous_run_id: String,
    pub previous_status: crate::model::status::FileStatus,
    /// The file was queued for this replay already, but its message was lost: it was
    /// sent again.
    pub resent: bool,
}

fn duplicate_reason(other: &str) -> String {
    format!(
        "duplicates active import `{other}` (same type, sub-type, bucket and folder); archive one of them"
    )
}

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

/// What one tick did, per due import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TickReport {
    pub imports: Vec<ImportTick>,
}

/// The most bytes of a tick's report the function returns: Lambda refuses a response
/// over 6 MB (the invocation then fails), and a first run over a large folder queues
/// keys by the hundred thousand.
/// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const MAX_REPORT_BYTES: usize = 4 << 20;

impl TickReport {
    /// The report within `max` bytes of JSON: each import's list of keys halved until
    /// it fits (`files_queued` keeps the count; the ledger has every key).
    pub fn bounded(mut self, max: usize) -> Self {
        for t in &mut self.imports {
            t.files_queued = t.files.len();
        }
        crate::codec::limits::json_within(
            &mut self,
            max,
            |r| {
                r.imports
                    .iter()
                    .map(|t| t.files.len().max(t.requeued.len()).max(t.changed.len()))
                    .max()
                    .unwrap_or(0)
            },
            |r, n| {
                for t in &mut r.imports {
                    t.files.truncate(n);
                    t.requeued.truncate(n);
                    t.changed.truncate(n);
                }
            },
        );
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportTick {
    pub import_id: String,
    pub run_id: Option<String>,
    pub outcome: TickOutcome,
    /// Keys enqueued by this run (the first of them, in a report cut to fit
    /// Lambda's response limit: see [`TickReport::bounded`]).
    pub files: Vec<String>,
    /// How many keys this run enqueued (set in a bounded report).
    #[serde(skip_serializing_if = "is_zero")]
    pub files_queued: usize,
    /// Keys of earlier runs sent again: claimed, but their messages never sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requeued: Vec<String>,
    /// Imported files whose objects changed under their names (reported once).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<crate::model::ledger::ChangedFile>,
    /// ListObjectsV2 requests the listing took.
    pub list_requests: u32,
    pub reason: Option<String>,
    /// The run failed for the stack's own reason (its queue, ledger or configs
    /// table), not the customer's: the cause, as the `DiscoveryFailures` metric
    /// names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_cause: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why a tick failed as a whole (the discovery function then fails, so its `Errors`
/// alarm fires besides `DiscoveryFailures`).
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The due imports could not be read: the configs table.
    #[error("the due imports could not be read: {0}")]
    Configs(#[source] StoreError),
    /// Every due import failed for the same reason of the stack's own: the stack is
    /// broken (a queue or table missing or not granted), not any one import.
    #[error(
        "every due import ({count}) failed for the same reason of the stack's own ({cause}); the first: {first}"
    )]
    Stack {
        count: usize,
        cause: String,
        first: String,
    },
}

impl crate::error::Classify for TickError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Configs(e) => e.class(),
            Self::Stack { .. } => ErrorClass::Retryable,
        }
    }
}

/// A failure of the stack's own resources, as a run's reason, email and API say it:
/// not the customer's fault, and what the operator should check.
pub fn stack_fault_reason(e: &StoreError) -> String {
    let check = match e {
        StoreError::Service(s) => match s.service {
            "SQS" => {
                "the files queue exists (S3IMPORTS_QUEUE_NAME) and the function's role may use it (sqs:GetQueueUrl, sqs:SendMessage in template.yaml)"
            }
            "DynamoDB" => {
                "the ledger and configs tables exist (S3IMPORTS_LEDGER_TABLE, S3IMPORTS_CONFIGS_TABLE) and the function's role may write them (template.yaml); a throttled table needs capacity"
            }
            "S3" => {
                "the reports bucket exists (S3IMPORTS_REPORTS_BUCKET) and the function's role may write it"
            }
            _ => "the stack's resources and the function's role (template.yaml)",
        },
        _ => "the stack's resources and the function's role (template.yaml)",
    };
    format!(
        "the s3imports stack could not run this import ({e}). This is the stack's own failure, not a problem with your files or bucket: its operator should check that {check}. The next run tries again."
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TickOutcome {
    /// New files were enqueued.
    Enqueued,
    NoNewFiles,
    /// The run failed as a whole (bucket unreachable, folder missing, ...).
    Failed,
    /// Another tick claimed this run first.
    ClaimedElsewhere,
    /// The import duplicates another active one and was marked invalid.
    Duplicate,
}

impl ImportTick {
    fn new(import_id: &str, outcome: TickOutcome) -> Self {
        Self {
            import_id: import_id.to_string(),
            run_id: None,
            outcome,
            files: Vec::new(),
            files_queued: 0,
            requeued: Vec::new(),
            changed: Vec::new(),
            list_requests: 0,
            reason: None,
            stack_cause: None,
        }
    }
}

impl Discovery {
    /// One tick: every due import, one after another. An import's failure is recorded
    /// on its run and does not stop the others. A failure of the stack's own (its
    /// queue, ledger, configs table) is counted in `DiscoveryFailures` by cause and
    /// mailed to the import's recipients; the tick fails when the configs table cannot
    /// be read or every due import failed for the same such cause, so the function's
    /// `Errors` alarm fires too.
    pub async fn tick(&self, clock: &dyn Clock) -> Result<TickReport, TickError> {
        let now = clock.now();
        let mut report = TickReport::default();
        let due = match self.configs.due(now).await {
            Ok(due) => due,
            Err(e) => {
                self.stack_failure("", &e, clock);
                return Err(TickError::Configs(e));
            }
        };
        for id in due {
            let span = tracing::error_span!("import", import_id = %id);
            match self.run_import(&id, clock).instrument(span).await {
                Ok(Some(t)) => report.imports.push(t),
                Ok(None) => {}
                Err(e) => {
                    warn!(import_id = %id, error = %e, "discovery failed for import: the stack's own failure");
                    let mut t = ImportTick::new(&id, TickOutcome::Failed);
                    t.stack_cause = self.stack_failure(&id, &e, clock);
                    t.reason = Some(match t.stack_cause {
                        Some(_) => stack_fault_reason(&e),
                        None => e.to_string(),
                    });
                    report.imports.push(t);
                }
            }
        }
        let causes: Vec<&str> = report
            .imports
            .iter()
            .map(|t| t.stack_cause.as_deref().unwrap_or_default())
            .collect();
        if let Some(cause) = causes.first().filter(|c| !c.is_empty())
            && causes.iter().all(|c| c == cause)
        {
            return Err(TickError::Stack {
                count: causes.len(),
                cause: (*cause).to_string(),
                first: report.imports[0].reason.clone().unwrap_or_default(),
            });
        }
        Ok(report)
    }

    /// Counts a failure of the stack's own in `DiscoveryFailures`; returns its cause
    /// (None for a failure that is no service's: a corrupt config).
    fn stack_failure(&self, import_id: &str, e: &StoreError, clock: &dyn Clock) -> Option<String> {
        let StoreError::Service(s) = e else {
            return None;
        };
        let cause = s.cause();
        self.metrics.emit(
            &crate::metrics::Event::stack_failure(
                crate::metrics::DISCOVERY_FAILURES,
                import_id,
                cause.clone(),
            ),
            clock.now(),
        );
        Some(cause)
    }

    async fn run_import(
        &self,
        id: &str,
        clock: &dyn Clock,
    ) -> Result<Option<ImportTick>, StoreError> {
        let now = clock.now();
        let Some(record) = self.configs.get(id).await? else {
            return Ok(None);
        };
        let Some(due_at) = record.next_run_at.filter(|t| *t <= now) else {
            return Ok(None);
        };
        if record.status != ImportStatus::Active {
            return Ok(None);
        }
        let run_id = new_run_id(now);
        self.run_due(&record, due_at, &run_id, clock)
            .await
            .map(Some)
    }

    /// A due import's run, once its config is read.
    async fn run_due(
        &self,
        record: &ConfigRecord,
        due_at: chrono::DateTime<chrono::Utc>,
        run_id: &str,
        clock: &dyn Clock,
    ) -> Result<ImportTick, StoreError> {
        let now = clock.now();
        let config = &record.config;
        let id = config.id.as_str();
        let run_id = run_id.to_string();
        if let Some(other) = self.configs.take_lock(config, now).await? {
            let reason = duplicate_reason(&other);
            self.configs
                .finish(id, ImportStatus::Invalid, Some(&reason), now)
                .await?;
            let mut t = ImportTick::new(id, TickOutcome::Duplicate);
            t.reason = Some(reason);
            return Ok(t);
        }
        let next = config.schedule.next_run_after(now, config.timezone);
        if !self
            .configs
            .claim_run(id, due_at, next, &run_id, now)
            .await?
        {
            return Ok(ImportTick::new(id, TickOutcome::ClaimedElsewhere));
        }
        let tick = self.start_run(record, &run_id, None, clock).await?;
        // How late the scheduled run started (the tick's period and its own delay).
        self.metrics.emit(
            &crate::metrics::Event {
                import_id: id,
                properties: vec![("RunId", run_id.clone())],
                outcome: None,
                values: vec![
                    (
                        crate::metrics::RUN_START_DELAY,
                        (now - due_at).num_milliseconds().max(0) as f64 / 1000.0,
                    ),
                    (crate::metrics::FILES_QUEUED, tick.files.len() as f64),
                ],
                cause: None,
            },
            clock.now(),
        );
        if config.schedule.is_one_time()
            && let Err(e) = self
                .configs
                .finish(id, ImportStatus::Completed, None, clock.now())
                .await
        {
            // The run is under way: it is not failed for this. The import stays
            // active, and its next tick finds no new file.
            warn!(import_id = %id, error = %e, "a one-time import could not be marked completed");
            self.stack_failure(id, &e, clock);
        }
        Ok(tick)
    }

    /// Starts a run of one import now, by hand: discovery for that import only, the
    /// files then processed as usual. Refused while the import's last run is in
    /// flight, and more often than once per [`MANUAL_RUN_GAP`]; the schedule's next
    /// run does not move.
    pub async fn run_now(
        &self,
        id: &str,
        manual: &ManualRun,
        clock: &dyn Clock,
    ) -> Result<ImportTick, RunNowError> {
        let now = clock.now();
        let record = self
            .configs
            .get(id)
            .await?
            .ok_or_else(|| RunNowError::NotFound(id.to_string()))?;
        if let Some(run_id) = &record.last_run_id
            && let Some(run) = self.ledger.run(id, run_id).await?
            && run.status == RunStatus::Processing
            && !stalled(&run, now)
        {
            return Err(RunNowError::InFlight {
                id: id.to_string(),
                run: Box::new(run),
            });
        }
        // The same guard as a scheduled run: a duplicate of another active import
        // never runs, by hand or not.
        if record.status == ImportStatus::Active
            && let Some(other) = self.configs.take_lock(&record.config, now).await?
        {
            let reason = duplicate_reason(&other);
            self.configs
                .finish(id, ImportStatus::Invalid, Some(&reason), now)
                .await?;
            return Err(RunNowError::NotActive {
                id: id.to_string(),
                status: ImportStatus::Invalid.as_str(),
            });
        }
        let run_id = new_run_id(now);
        if !self
            .configs
            .claim_manual_run(id, &run_id, now - MANUAL_RUN_GAP, now)
            .await?
        {
            // Refused: say why, from what the table holds now.
            let record = self
                .configs
                .get(id)
                .await?
                .ok_or_else(|| RunNowError::NotFound(id.to_string()))?;
            if record.status != ImportStatus::Active {
                return Err(RunNowError::NotActive {
                    id: id.to_string(),
                    status: record.status.as_str(),
                });
            }
            let last = record.last_manual_run_at.unwrap_or(now);
            return Err(RunNowError::TooSoon {
                id: id.to_string(),
                last,
                wait_seconds: (last + MANUAL_RUN_GAP - now).num_seconds().max(1),
            });
        }
        info!(import_id = %id, run_id = %run_id, requested_by = %manual.requested_by, via = %manual.via, "run started by hand");
        Ok(self
            .start_run(&record, &run_id, Some(manual), clock)
            .await?)
    }

    /// Replays one file that already ran, under its own name: a run of that file
    /// alone, recording who asked, through what and why. Refused while the file is
    /// in flight. Its earlier outcome stays in the file's history (and its run's
    /// files); events keep their ids, so a replay adds no duplicate events.
    pub async fn replay(
        &self,
        id: &str,
        key: &str,
        manual: &ManualRun,
        reason: &str,
        clock: &dyn Clock,
    ) -> Result<ReplayStarted, ReplayError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > crate::model::ledger::MAX_REPLAY_REASON {
            return Err(ReplayError::Reason);
        }
        let record = self
            .configs
            .get(id)
            .await?
            .ok_or_else(|| ReplayError::NotFound(id.to_string()))?;
        if !matches!(
            record.status,
            ImportStatus::Active | ImportStatus::Completed
        ) {
            return Err(ReplayError::NotActive {
                id: id.to_string(),
                status: record.status.as_str(),
            });
        }
        let unknown = || ReplayError::UnknownFile {
            id: id.to_string(),
            key: key.to_string(),
        };
        // A chunk's ledger key is no file of the folder.
        if key.contains('\u{1}') {
            return Err(unknown());
        }
        let file = self.ledger.file(id, key).await?.ok_or_else(unknown)?;
        let now = clock.now();
        if !file.status.is_final() {
            // Queued and never started for long: its message was lost (the sender
            // stopped, or SQS failed it). Send it again rather than refuse for ever.
            if let Some(queued_at) = file.queued_at.filter(|t| {
                file.status == FileStatus::Queued
                    && file.attempts == 0
                    && *t + STRANDED_AFTER <= now
            }) && self.ledger.requeue_file(id, key, queued_at, now).await?
            {
                let msg = file_message(&file, false);
                self.queue.send_all(std::slice::from_ref(&msg)).await?;
                warn!(import_id = %id, run_id = %file.run_id, key, "a queued file's message was sent again");
                let run = self.ledger.run(id, &file.run_id).await?;
                let replay = run.and_then(|r| r.replay);
                return Ok(ReplayStarted {
                    import_id: id.to_string(),
                    run_id: file.run_id.clone(),
                    key: key.to_string(),
                    previous_run_id: replay
                        .as_ref()
                        .map_or_else(|| file.run_id.clone(), |r| r.previous_run_id.clone()),
                    previous_status: replay.map_or(FileStatus::Queued, |r| r.previous_status),
                    resent: true,
                });
            }
            return Err(ReplayError::InFlight {
                file: Box::new(file),
            });
        }
        let bucket = self.sources.connect(&record.config.source, id).await?;
        let (size, etag) = match (bucket.head(key).await, &file.post_process) {
            (Err(SourceError::NoSuchKey { .. }), Some(p)) if p.moved_to.is_some() => {
                return Err(ReplayError::Moved {
                    key: key.to_string(),
                    to: p.moved_to.clone().unwrap_or_default(),
                });
            }
            (Err(SourceError::NoSuchKey { .. }), Some(p)) if p.deleted == Some(true) => {
                return Err(ReplayError::Deleted {
                    key: key.to_string(),
                    run_id: file.run_id.clone(),
                });
            }
            (head, _) => head?,
        };
        let run_id = new_run_id(now);
        let replay = crate::model::ledger::Replay {
            key: key.to_string(),
            reason: reason.to_string(),
            previous_run_id: file.run_id.clone(),
            previous_status: file.status,
        };
        let start = crate::ports::ReplayStart {
            run_id: &run_id,
            manual,
            replay: &replay,
            size,
            etag: &etag,
        };
        if !self.ledger.replay_file(&file, &start, now).await? {
            // Another replay took it first.
            let file = self.ledger.file(id, key).await?.ok_or_else(unknown)?;
            return Err(ReplayError::InFlight {
                file: Box::new(file),
            });
        }
        let msg = FileMessage {
            run_id: run_id.clone(),
            size,
            etag,
            ..file_message(&file, false)
        };
        if !self
            .queue
            .send_all(std::slice::from_ref(&msg))
            .await?
            .is_empty()
        {
            let outcome = FileOutcome::failed("SQS refused the replay's message; replay it again");
            self.ledger
                .fail_queued(id, &run_id, key, &outcome, clock.now())
                .await?;
        }
        info!(import_id = %id, run_id = %run_id, key, requested_by = %manual.requested_by, via = %manual.via, "file replayed");
        Ok(ReplayStarted {
            import_id: id.to_string(),
            run_id,
            key: key.to_string(),
            previous_run_id: replay.previous_run_id,
            previous_status: replay.previous_status,
            resent: false,
        })
    }

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
        // The whole folder: new names, and imported names whose object changed (which
        // the ledger is asked about only when written since shortly before the last
        // run, so its reads stay with what is new).
        let listing = bucket.list(&pattern, None).await?;
        if listing.files.is_empty()
            && record.newest_key.is_none()
            && !bucket.folder_exists().await?
        {
            return Err(RunError::Source(SourceError::FolderNotFound {
                bucket: config.source.bucket.clone(),
                folder: config.source.folder.clone(),
            }));
        }
        // The files the ledger is asked about: past the newest one seen, or written
        // lately (possibly replaced). The others were taken by earlier runs, unchanged.
        let since = record.last_run_at.map(|t| t - CHANGED_MARGIN);
        let asked: Vec<&ListedFile> = listing
            .files
            .iter()
            .filter(|f| {
                start_after.as_ref().is_none_or(|s| f.file.key > *s)
                    || match (since, f.last_modified) {
                        (Some(since), Some(at)) => at >= since,
                        _ => true,
                    }
            })
            .collect();
        let keys: Vec<String> = asked.iter().map(|f| f.file.key.clone()).collect();
        let known = self.ledger.known_files(id, &keys).await?;
        let now = clock.now();
        let changed = self.changed(id, &asked, &known).await?;
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
        let new_files: Vec<ListedFile> = asked
            .iter()
            .filter(|f| !known.contains_key(&f.file.key))
            .map(|f| (*f).clone())
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
            .stranded(id, &config.source.bucket, &listing.files, &known, now)
            .await?;
        let requeued: Vec<String> = stranded.iter().map(|m| m.key.clone()).collect();
        messages.extend(stranded);
        let refused = self.queue.send_all(&messages).await?;
        // The messages are out: from here the run goes on whatever fails, so nothing
        // below fails it (a failure is counted and logged).
        if let Err(e) = self
            .after_send(id, &refused, &listing.files, &known, clock)
            .await
        {
            warn!(import_id = %id, run_id, error = %e, "after its files were queued");
            self.stack_failure(id, &e, clock);
        }
        Ok(Enqueued {
            enqueued,
            requeued,
            requests: listing.requests,
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
        listed: &[&ListedFile],
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

/// How long before the last run an object written counts as possibly changed since:
/// S3 dates a multipart upload by its start, which may be well before it completes.
const CHANGED_MARGIN: chrono::Duration = chrono::Duration::days(1);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_of_a_huge_first_run_fits_lambdas_response_limit() {
        let mut t = ImportTick::new("big", TickOutcome::Enqueued);
        // 200,000 keys of 100 bytes: 20 MB of keys.
        t.files = (0..200_000)
            .map(|i| format!("{}{i:08}", "k".repeat(92)))
            .collect();
        let report = TickReport { imports: vec![t] }.bounded(MAX_REPORT_BYTES);
        let size = serde_json::to_vec(&report).unwrap().len();
        assert!(size <= MAX_REPORT_BYTES, "{size}");
        assert_eq!(report.imports[0].files_queued, 200_000);
        assert!(!report.imports[0].files.is_empty());
    }
}
