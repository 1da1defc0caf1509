//! The ledger table (runs and files), one port per role, as template.yaml grants them:
//! what every role reads, discovery's writes (runs and the files they claim, including
//! the runs started by hand: run now, replay and dry runs), and the processor's writes
//! (a file's lease, checkpoints, chunks and outcome, and closing its run). Every state
//! change is conditional, so redeliveries and concurrent workers never count a file
//! twice.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::checkpoint::Checkpoint;
use crate::model::config::ImportConfig;
use crate::model::ledger::{FileOutcome, FileRecord, ManualRun, Replay, RunRecord};
use crate::model::pages::{FilesCursor, FilesPage, RunsCursor, RunsPage};
use crate::model::status::FileStatus;

/// What happened when a worker asked to start a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// This worker holds the lease now; `attempt` counts starts since the file last
    /// made progress, and `checkpoint` is where to go on from.
    Started {
        attempt: u32,
        checkpoint: Option<Checkpoint>,
        /// The file was split into this many chunks already (0: not split).
        chunks: u32,
    },
    /// The file already has its final outcome: nothing to do (redelivery).
    AlreadyDone(FileStatus),
    /// Another live worker holds the lease until this time.
    Busy(DateTime<Utc>),
    /// The ledger has no such file (it was never claimed by discovery).
    Unknown,
    /// The file is in another run now (it was replayed): this message is stale.
    Superseded(String),
}

/// A file the ledger already has, as discovery needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFile {
    pub run_id: String,
    pub status: FileStatus,
    pub attempts: u32,
    pub queued_at: Option<DateTime<Utc>>,
    /// The object's ETag when the file was claimed (or replayed).
    pub etag: String,
    /// A changed ETag already noted (reported once).
    pub changed_etag: Option<String>,
}

impl KnownFile {
    /// Claimed and never started: its message may still be on its way, or lost.
    pub fn waiting(&self) -> bool {
        self.status == FileStatus::Queued && self.attempts == 0
    }
}

/// A replay's run, as [`RunLedger::replay_file`] records it.
#[derive(Debug, Clone)]
pub struct ReplayStart<'a> {
    pub run_id: &'a str,
    pub manual: &'a ManualRun,
    pub replay: &'a Replay,
    /// The object as it is now.
    pub size: u64,
    pub etag: &'a str,
}

/// What every role reads of the ledger.
#[async_trait]
pub trait LedgerReads: Send + Sync {
    /// A page of the import's runs, newest first, each with its first `files_per_run`
    /// files as that run left them. One Query, and one BatchGetItem per 100 files.
    async fn runs_page(
        &self,
        import_id: &str,
        cursor: Option<&RunsCursor>,
        limit: usize,
        files_per_run: usize,
    ) -> Result<RunsPage, StoreError>;

    /// A page of one run's files from `cursor` (the start when None); None when the
    /// import has no such run. One GetItem and one BatchGetItem per 100 files.
    async fn files_page(
        &self,
        import_id: &str,
        run_id: &str,
        cursor: Option<&FilesCursor>,
        limit: usize,
    ) -> Result<Option<FilesPage>, StoreError>;

    async fn file(&self, import_id: &str, key: &str) -> Result<Option<FileRecord>, StoreError>;

    async fn run(&self, import_id: &str, run_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// The files of a run, in the order discovery found them, each as that run left
    /// it (a file replayed since shows its outcome in that run).
    async fn run_files(&self, import_id: &str, run_id: &str)
    -> Result<Vec<FileRecord>, StoreError>;

    /// The config a dry run runs.
    async fn dry_run_config(
        &self,
        partition: &str,
        run_id: &str,
    ) -> Result<Option<ImportConfig>, StoreError>;
}

/// Discovery's writes: runs, the files they claim, and the runs started by hand.
#[async_trait]
pub trait RunLedger: LedgerReads {
    async fn create_run(
        &self,
        import_id: &str,
        run_id: &str,
        manual: Option<&ManualRun>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The ones of `keys` the ledger already has.
    async fn known_files(
        &self,
        import_id: &str,
        keys: &[String],
    ) -> Result<HashMap<String, KnownFile>, StoreError>;

    /// Claims a new file for a run; false when the ledger already has it.
    async fn claim_file(&self, file: &FileRecord, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Takes a claimed file whose message was never sent (queued, never started,
    /// queued at `queued_at`) to send it again, moving its queued time to `now`; false
    /// when it has started or another tick took it first.
    async fn requeue_file(
        &self,
        import_id: &str,
        key: &str,
        queued_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Records the files a run enqueued; a run with none ends as "no new files".
    async fn set_run_files(
        &self,
        import_id: &str,
        run_id: &str,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Ends a run that failed as a whole.
    async fn fail_run(
        &self,
        import_id: &str,
        run_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Queues `file` (final, as read) again for a replay's run: keeps its outcome in
    /// its history, records the run (with who and why) and drops a split file's chunk
    /// items, all at once. False when the file moved on since it was read (it is in
    /// flight again).
    async fn replay_file(
        &self,
        file: &FileRecord,
        start: &ReplayStart<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Notes that a final file's object now has ETag `etag_now`; true the first time
    /// this ETag is noted (so a change is reported once).
    async fn note_changed(
        &self,
        import_id: &str,
        key: &str,
        etag_now: &str,
    ) -> Result<bool, StoreError>;

    /// Records the changed files a run found.
    async fn set_run_changed(
        &self,
        import_id: &str,
        run_id: &str,
        changed: &[crate::model::ledger::ChangedFile],
    ) -> Result<(), StoreError>;

    /// Records a dry run: its run, holding the config it runs (which need not be put),
    /// and its one file, queued; both under the dry run's own partition
    /// (`file.import_id`, see [`crate::model::ledger::dry_run_partition`]).
    async fn start_dry_run(
        &self,
        config: &ImportConfig,
        file: &FileRecord,
        manual: &ManualRun,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Fails a file discovery queued whose message the queue refused (or a replay's or
    /// dry run's): its outcome is recorded and added to its run, as
    /// [`FileLedger::finish_file`] does for a file no worker holds.
    async fn fail_queued(
        &self,
        import_id: &str,
        run_id: &str,
        key: &str,
        outcome: &FileOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<RunRecord>, StoreError>;
}

/// The processor's writes: a file's lease, checkpoints, chunks and outcome, and
/// closing its run (its email, alerts and post-processing recorded once).
#[async_trait]
pub trait FileLedger: LedgerReads {
    /// Takes the file's lease for `worker` until `lease_until`, unless it is final or
    /// another live worker holds it; an expired lease is taken over.
    /// `run_id`: only while the file is in that run (a replay moves it to another, and
    /// a late message of the earlier run must not take it: [`StartOutcome::Superseded`]).
    async fn start_file(
        &self,
        import_id: &str,
        key: &str,
        run_id: Option<&str>,
        worker: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<StartOutcome, StoreError>;

    /// Extends this worker's lease; false when it has lost it.
    async fn heartbeat(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Records how far this worker has imported the file, keeping its lease until
    /// `lease_until` (`now` hands it straight to a continuation); false when the lease
    /// is lost. Progress resets the attempts: only starts without progress count
    /// towards giving up.
    async fn checkpoint(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        checkpoint: &Checkpoint,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Cuts a file this worker holds into chunks: records `split` on the file, claims
    /// a ledger item per chunk (`chunks`, keyed by [`crate::model::ledger::chunk_key`]) and
    /// ends the file's lease, all at once; false when the lease is lost or the file is
    /// split already.
    async fn split_file(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        split: &crate::codec::reader::Split,
        chunks: &[FileRecord],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Records a chunk's outcome (as [`Ledger::finish_file`] does a file's, but
    /// counted on its file, not its run) and returns the file's chunks ended and in
    /// all; None when the chunk was final already or the lease was lost.
    async fn finish_chunk(
        &self,
        import_id: &str,
        key: &str,
        chunk: u32,
        worker: Option<&str>,
        outcome: &FileOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<(u32, u32)>, StoreError>;

    /// Takes the right to end a split file whose chunks have all ended, until `until`
    /// (so a closer that stops is replaced once it runs out); true for the one caller
    /// that should end it now. Its holder gives it back with an `until` before `now`.
    async fn claim_close(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Hands a file back after a retryable failure, remembering why.
    async fn release_lease(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Records a file's outcome and adds it to its run, once and atomically: only the
    /// lease holder (or anyone, with `worker = None`, while the file is not final) can.
    /// Returns the run as it now stands, or None when the file was already final or
    /// the lease was lost.
    async fn finish_file(
        &self,
        import_id: &str,
        run_id: &str,
        key: &str,
        worker: Option<&str>,
        outcome: &FileOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<RunRecord>, StoreError>;

    /// Closes a run whose files are all done and takes the right to send its email
    /// until `until` (so a crashed sender's email is sent by a redelivery); true for
    /// the one caller that should send it now.
    async fn close_run(
        &self,
        run: &RunRecord,
        worker: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives back the right to send the run's email (the send failed and will be
    /// tried again), if this worker still holds it.
    async fn release_notification(
        &self,
        import_id: &str,
        run_id: &str,
        worker: &str,
    ) -> Result<(), StoreError>;

    /// Records that the run's email went out (or was not wanted).
    async fn mark_notified(&self, import_id: &str, run_id: &str) -> Result<(), StoreError>;

    /// Remembers that `key` imported content `sha256` (the first file to do so keeps
    /// it); returns that first file when it is another one.
    async fn remember_content(
        &self,
        import_id: &str,
        sha256: &str,
        key: &str,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::model::ledger::DuplicateOf>, StoreError>;

    /// Forgets that `key` holds content `sha256` (it imported none of it after all),
    /// unless another file holds it.
    async fn forget_content(
        &self,
        import_id: &str,
        sha256: &str,
        key: &str,
    ) -> Result<(), StoreError>;

    /// Records the run's alerts once they are sent (so a retried email does not send
    /// them again).
    async fn set_run_alerts(
        &self,
        import_id: &str,
        run_id: &str,
        sent: &crate::model::ledger::AlertsSent,
    ) -> Result<(), StoreError>;

    /// Takes on post-processing a file of run `run_id`: false when another worker has
    /// (or the file is in another run now).
    async fn claim_post_process(
        &self,
        import_id: &str,
        key: &str,
        run_id: &str,
    ) -> Result<bool, StoreError>;

    /// Records what post-processing did to a file's object, while the file is still
    /// in run `run_id`.
    async fn set_post_process(
        &self,
        import_id: &str,
        key: &str,
        run_id: &str,
        done: &crate::model::post_process::PostProcessed,
    ) -> Result<(), StoreError>;
}

/// The whole ledger: what a process that plays every role holds (`s3imports tick`,
/// the tests' in-memory world).
pub trait Ledger: RunLedger + FileLedger {}

impl<T: RunLedger + FileLedger + ?Sized> Ledger for T {}
