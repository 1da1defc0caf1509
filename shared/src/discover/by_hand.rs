//! Runs started by hand: run now, and the replay of one file.

use serde::Serialize;
use tracing::{info, warn};

use super::Discovery;
use super::report::{ImportTick, duplicate_reason};
use super::{MANUAL_RUN_GAP, STRANDED_AFTER, file_message, stalled};
use crate::Clock;
use crate::model::config::ImportStatus;
use crate::model::ledger::{FileOutcome, FileRecord, ManualRun, RunRecord, new_run_id};
use crate::model::status::{FileStatus, RunStatus};
use crate::ports::{FileMessage, SourceError, StoreError};

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

impl Discovery {
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
}
