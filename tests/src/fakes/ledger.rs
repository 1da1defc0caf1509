//! The ledger in memory, with the same conditions as the DynamoDB ledger's writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use s3imports::model::checkpoint::Checkpoint;
use s3imports::model::config::ImportConfig;
use s3imports::model::ledger::{FileOutcome, FileRecord, MAX_HISTORY, ManualRun, RunRecord};
use s3imports::model::pages::{FilesCursor, FilesPage, RunEntry, RunsCursor, RunsPage};
use s3imports::model::status::{FileStatus, RunStatus};
use s3imports::ports::{
    FileLedger, KnownFile, LedgerReads, ReplayStart, RunLedger, StartOutcome, StoreError,
};

use super::Faults;

#[derive(Debug, Clone)]
struct FileItem {
    record: FileRecord,
    lease_owner: Option<String>,
    lease_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct State {
    runs: HashMap<(String, String), (RunRecord, Vec<String>)>,
    files: HashMap<(String, String), FileItem>,
    /// Who holds each run's right to send its email.
    notify_owners: HashMap<(String, String), String>,
    /// Who holds each split file's right to end it, and until when.
    closing: HashMap<(String, String), (String, DateTime<Utc>)>,
    /// The configs dry runs run.
    dry_runs: HashMap<(String, String), ImportConfig>,
    /// Which file first imported each plaintext, by import and SHA-256.
    contents: HashMap<(String, String), s3imports::model::ledger::DuplicateOf>,
}

/// A run record as a new run starts.
fn new_run(
    import_id: &str,
    run_id: &str,
    manual: Option<&ManualRun>,
    now: DateTime<Utc>,
) -> RunRecord {
    RunRecord {
        import_id: import_id.into(),
        run_id: run_id.into(),
        status: RunStatus::Processing,
        started_at: Some(now),
        finished_at: None,
        files_total: 0,
        files_done: 0,
        files_succeeded: 0,
        files_partial: 0,
        files_failed: 0,
        rows_total: 0,
        rows_ingested: 0,
        rows_failed: 0,
        reason: None,
        notified: false,
        notify_until: None,
        manual: manual.cloned(),
        keys_used: Vec::new(),
        replay: None,
        changed_files: Vec::new(),
        alerts: None,
    }
}

pub struct FakeLedger {
    state: Mutex<State>,
    faults: Arc<Faults>,
}

impl FakeLedger {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            faults,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every file record, for assertions.
    pub fn all_files(&self) -> Vec<FileRecord> {
        let mut files: Vec<FileRecord> = self
            .lock()
            .files
            .values()
            .map(|f| f.record.clone())
            .collect();
        files.sort_by(|a, b| a.key.cmp(&b.key));
        files
    }

    /// Records files as imported whole by `run_id`: a folder's history, for tests of
    /// discovery at scale. Each file is `(key, size, etag)`.
    pub fn imported(
        &self,
        import_id: &str,
        run_id: &str,
        bucket: &str,
        files: impl IntoIterator<Item = (String, u64, String)>,
        at: DateTime<Utc>,
    ) {
        let mut s = self.lock();
        for (key, size, etag) in files {
            let mut record = FileRecord::queued(import_id, run_id, bucket, &key, size, &etag, at);
            record.status = FileStatus::Succeeded;
            record.finished_at = Some(at);
            s.files.insert(
                (import_id.to_string(), key),
                FileItem {
                    record,
                    lease_owner: None,
                    lease_until: None,
                },
            );
        }
    }

    /// Every run record, for assertions.
    pub fn all_runs(&self) -> Vec<RunRecord> {
        let mut runs: Vec<RunRecord> = self.lock().runs.values().map(|r| r.0.clone()).collect();
        runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
        runs
    }
}

fn k(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

impl FakeLedger {
    /// A replay's writes, all at once (see [`Ledger::replay_file`]).
    fn replay_now(&self, file: &FileRecord, start: &ReplayStart<'_>, now: DateTime<Utc>) -> bool {
        let mut s = self.lock();
        let id = file.import_id.as_str();
        let Some(item) = s.files.get_mut(&k(id, &file.key)) else {
            return false;
        };
        if item.record.run_id != file.run_id || item.record.status != file.status {
            return false;
        }
        let mut history = item.record.history.clone();
        history.push(item.record.past());
        let excess = history.len().saturating_sub(MAX_HISTORY);
        history.drain(..excess);
        let mut fresh = FileRecord::queued(
            id,
            start.run_id,
            &file.bucket,
            &file.key,
            start.size,
            start.etag,
            now,
        );
        fresh.history = history;
        item.record = fresh;
        item.lease_owner = None;
        item.lease_until = None;
        for i in 0..file.chunks_total {
            s.files
                .remove(&k(id, &s3imports::model::ledger::chunk_key(&file.key, i)));
        }
        s.closing.remove(&k(id, &file.key));
        let mut run = new_run(id, start.run_id, Some(start.manual), now);
        run.files_total = 1;
        run.replay = Some(start.replay.clone());
        s.runs
            .insert(k(id, start.run_id), (run, vec![file.key.clone()]));
        true
    }
}

#[async_trait]
impl LedgerReads for FakeLedger {
    async fn runs_page(
        &self,
        import_id: &str,
        cursor: Option<&RunsCursor>,
        limit: usize,
        files_per_run: usize,
    ) -> Result<RunsPage, StoreError> {
        self.faults.enter("ledger.runs_page").await?;
        let s = self.lock();
        let mut runs: Vec<&(RunRecord, Vec<String>)> = s
            .runs
            .iter()
            .filter(|((id, run_id), _)| {
                id == import_id && cursor.is_none_or(|c| *run_id < c.after_run)
            })
            .map(|(_, v)| v)
            .collect();
        // Newest first, as the table's sort key orders them.
        runs.sort_by(|a, b| b.0.run_id.cmp(&a.0.run_id));
        let more = runs.len() > limit;
        let entries: Vec<RunEntry> = runs
            .into_iter()
            .take(limit)
            .map(|(run, keys)| RunEntry {
                files: keys
                    .iter()
                    .take(files_per_run)
                    .filter_map(|key| s.files.get(&k(import_id, key))?.record.as_of(&run.run_id))
                    .collect(),
                files_listed: keys.len(),
                next_files_cursor: (keys.len() > files_per_run).then(|| {
                    FilesCursor {
                        run: run.run_id.clone(),
                        offset: files_per_run,
                    }
                    .encode()
                }),
                run: run.clone(),
            })
            .collect();
        let next_cursor = more.then(|| entries.last()).flatten().map(|e| {
            RunsCursor {
                after_run: e.run.run_id.clone(),
            }
            .encode()
        });
        Ok(RunsPage {
            runs: entries,
            next_cursor,
        })
    }

    async fn files_page(
        &self,
        import_id: &str,
        run_id: &str,
        cursor: Option<&FilesCursor>,
        limit: usize,
    ) -> Result<Option<FilesPage>, StoreError> {
        self.faults.enter("ledger.files_page").await?;
        let s = self.lock();
        let Some((run, keys)) = s.runs.get(&k(import_id, run_id)) else {
            return Ok(None);
        };
        let from = cursor.map_or(0, |c| c.offset).min(keys.len());
        let to = from.saturating_add(limit).min(keys.len());
        Ok(Some(FilesPage {
            run: run.clone(),
            files: keys[from..to]
                .iter()
                .filter_map(|key| s.files.get(&k(import_id, key))?.record.as_of(run_id))
                .collect(),
            files_listed: keys.len(),
            next_cursor: (to < keys.len()).then(|| {
                FilesCursor {
                    run: run_id.to_string(),
                    offset: to,
                }
                .encode()
            }),
        }))
    }

    async fn file(&self, import_id: &str, key: &str) -> Result<Option<FileRecord>, StoreError> {
        self.faults.enter("ledger.file").await?;
        Ok(self
            .lock()
            .files
            .get(&k(import_id, key))
            .map(|f| f.record.clone()))
    }

    async fn run(&self, import_id: &str, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.faults.enter("ledger.run").await?;
        Ok(self
            .lock()
            .runs
            .get(&k(import_id, run_id))
            .map(|r| r.0.clone()))
    }

    async fn run_files(
        &self,
        import_id: &str,
        run_id: &str,
    ) -> Result<Vec<FileRecord>, StoreError> {
        self.faults.enter("ledger.run_files").await?;
        let s = self.lock();
        let Some((_, keys)) = s.runs.get(&k(import_id, run_id)) else {
            return Ok(Vec::new());
        };
        Ok(keys
            .iter()
            .filter_map(|key| s.files.get(&k(import_id, key))?.record.as_of(run_id))
            .collect())
    }

    async fn dry_run_config(
        &self,
        partition: &str,
        run_id: &str,
    ) -> Result<Option<ImportConfig>, StoreError> {
        Ok(self.lock().dry_runs.get(&k(partition, run_id)).cloned())
    }
}

#[async_trait]
impl RunLedger for FakeLedger {
    async fn create_run(
        &self,
        import_id: &str,
        run_id: &str,
        manual: Option<&ManualRun>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.faults.enter("ledger.create_run").await?;
        self.lock()
            .runs
            .entry(k(import_id, run_id))
            .or_insert_with(|| (new_run(import_id, run_id, manual, now), Vec::new()));
        self.faults.leave("ledger.create_run").await;
        Ok(())
    }

    async fn known_files(
        &self,
        import_id: &str,
        keys: &[String],
    ) -> Result<HashMap<String, KnownFile>, StoreError> {
        self.faults.enter("ledger.known_files").await?;
        let s = self.lock();
        Ok(keys
            .iter()
            .filter_map(|key| {
                s.files.get(&k(import_id, key)).map(|f| {
                    (
                        key.clone(),
                        KnownFile {
                            run_id: f.record.run_id.clone(),
                            status: f.record.status,
                            attempts: f.record.attempts,
                            queued_at: f.record.queued_at,
                            etag: f.record.etag.clone(),
                            changed_etag: f.record.changed_etag.clone(),
                        },
                    )
                })
            })
            .collect())
    }

    async fn claim_file(&self, file: &FileRecord, _now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.faults.enter("ledger.claim_file").await?;
        let claimed = {
            let mut s = self.lock();
            match s.files.entry(k(&file.import_id, &file.key)) {
                // As DynamoDB's adapter: a claim sent again (its first try took
                // effect) is still the claim of the run it names.
                std::collections::hash_map::Entry::Occupied(o) => {
                    o.get().record.run_id == file.run_id
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(FileItem {
                        record: file.clone(),
                        lease_owner: None,
                        lease_until: None,
                    });
                    true
                }
            }
        };
        self.faults.leave("ledger.claim_file").await;
        Ok(claimed)
    }

    async fn requeue_file(
        &self,
        import_id: &str,
        key: &str,
        queued_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults.enter("ledger.requeue_file").await?;
        let taken = match self.lock().files.get_mut(&k(import_id, key)) {
            Some(f)
                if f.record.status == FileStatus::Queued
                    && f.record.attempts == 0
                    && f.record.queued_at == Some(queued_at) =>
            {
                f.record.queued_at = Some(now);
                true
            }
            _ => false,
        };
        self.faults.leave("ledger.requeue_file").await;
        Ok(taken)
    }

    async fn set_run_files(
        &self,
        import_id: &str,
        run_id: &str,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.faults.enter("ledger.set_run_files").await?;
        if let Some((run, files)) = self.lock().runs.get_mut(&k(import_id, run_id)) {
            run.files_total = keys.len() as u64;
            if keys.is_empty() {
                run.status = RunStatus::NoNewFiles;
                run.finished_at = Some(now);
            } else {
                *files = keys.to_vec();
            }
        }
        self.faults.leave("ledger.set_run_files").await;
        Ok(())
    }

    async fn fail_run(
        &self,
        import_id: &str,
        run_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.faults.enter("ledger.fail_run").await?;
        if let Some((run, _)) = self.lock().runs.get_mut(&k(import_id, run_id)) {
            run.status = RunStatus::Failed;
            run.reason = Some(reason.into());
            run.finished_at = Some(now);
        }
        Ok(())
    }

    async fn replay_file(
        &self,
        file: &FileRecord,
        start: &ReplayStart<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults.enter("ledger.replay_file").await?;
        let done = self.replay_now(file, start, now);
        self.faults.leave("ledger.replay_file").await;
        Ok(done)
    }

    async fn note_changed(
        &self,
        import_id: &str,
        key: &str,
        etag_now: &str,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(f) = s.files.get_mut(&k(import_id, key)) else {
            return Ok(false);
        };
        if f.record.etag == etag_now || f.record.changed_etag.as_deref() == Some(etag_now) {
            return Ok(false);
        }
        f.record.changed_etag = Some(etag_now.into());
        Ok(true)
    }

    async fn set_run_changed(
        &self,
        import_id: &str,
        run_id: &str,
        changed: &[s3imports::model::ledger::ChangedFile],
    ) -> Result<(), StoreError> {
        if let Some((run, _)) = self.lock().runs.get_mut(&k(import_id, run_id)) {
            run.changed_files = changed.to_vec();
        }
        Ok(())
    }

    async fn start_dry_run(
        &self,
        config: &ImportConfig,
        file: &FileRecord,
        manual: &ManualRun,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        let id = file.import_id.as_str();
        let mut run = new_run(id, &file.run_id, Some(manual), now);
        run.files_total = 1;
        s.runs
            .insert(k(id, &file.run_id), (run, vec![file.key.clone()]));
        s.files.insert(
            k(id, &file.key),
            FileItem {
                record: file.clone(),
                lease_owner: None,
                lease_until: None,
            },
        );
        s.dry_runs.insert(k(id, &file.run_id), config.clone());
        Ok(())
    }

    async fn fail_queued(
        &self,
        import_id: &str,
        run_id: &str,
        key: &str,
        outcome: &FileOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<RunRecord>, StoreError> {
        FileLedger::finish_file(self, import_id, run_id, key, None, outcome, now).await
    }
}

#[async_trait]
impl FileLedger for FakeLedger {
    async fn start_file(
        &self,
        import_id: &str,
        key: &str,
        run_id: Option<&str>,
        worker: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<StartOutcome, StoreError> {
        self.faults.enter("ledger.start_file").await?;
        let outcome = {
            let mut s = self.lock();
            match s.files.get_mut(&k(import_id, key)) {
                None => StartOutcome::Unknown,
                Some(f) if run_id.is_some_and(|r| r != f.record.run_id) => {
                    StartOutcome::Superseded(f.record.run_id.clone())
                }
                Some(f) if f.record.status.is_final() => StartOutcome::AlreadyDone(f.record.status),
                Some(f)
                    if f.record.status == FileStatus::Queued
                        || (f.record.status == FileStatus::Processing
                            && f.lease_until.is_some_and(|u| u < now)) =>
                {
                    f.record.status = FileStatus::Processing;
                    f.lease_owner = Some(worker.into());
                    f.lease_until = Some(lease_until);
                    f.record.started_at.get_or_insert(now);
                    f.record.attempts += 1;
                    f.record.invocations += 1;
                    StartOutcome::Started {
                        attempt: f.record.attempts,
                        checkpoint: f.record.checkpoint.clone(),
                        chunks: f.record.chunks_total,
                    }
                }
                Some(f) => StartOutcome::Busy(f.lease_until.unwrap_or(now)),
            }
        };
        self.faults.leave("ledger.start_file").await;
        Ok(outcome)
    }

    async fn heartbeat(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults.enter("ledger.heartbeat").await?;
        let mut s = self.lock();
        Ok(match s.files.get_mut(&k(import_id, key)) {
            Some(f)
                if f.lease_owner.as_deref() == Some(worker)
                    && f.record.status == FileStatus::Processing =>
            {
                f.lease_until = Some(lease_until);
                true
            }
            _ => false,
        })
    }

    async fn checkpoint(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        checkpoint: &Checkpoint,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults.enter("ledger.checkpoint").await?;
        let done = {
            let mut s = self.lock();
            match s.files.get_mut(&k(import_id, key)) {
                Some(f)
                    if f.lease_owner.as_deref() == Some(worker)
                        && f.record.status == FileStatus::Processing =>
                {
                    f.lease_until = Some(lease_until);
                    f.record.attempts = 0;
                    f.record.rows_total = checkpoint.rows_total;
                    f.record.rows_ingested = checkpoint.rows_ingested;
                    f.record.rows_failed = checkpoint.rows_failed;
                    f.record.checkpoint = Some(checkpoint.clone());
                    true
                }
                _ => false,
            }
        };
        self.faults.leave("ledger.checkpoint").await;
        Ok(done)
    }

    async fn split_file(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        split: &s3imports::codec::reader::Split,
        chunks: &[FileRecord],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults.enter("ledger.split_file").await?;
        let done = {
            let mut s = self.lock();
            let held = s.files.get(&k(import_id, key)).is_some_and(|f| {
                f.lease_owner.as_deref() == Some(worker)
                    && f.record.status == FileStatus::Processing
                    && f.record.split.is_none()
            });
            if held
                && chunks
                    .iter()
                    .all(|c| !s.files.contains_key(&k(import_id, &c.key)))
            {
                if let Some(f) = s.files.get_mut(&k(import_id, key)) {
                    f.record.split = Some(split.clone());
                    f.record.chunks_total = chunks.len() as u32;
                    f.record.chunks_done = 0;
                    f.lease_until = Some(now - chrono::Duration::seconds(1));
                }
                for c in chunks {
                    s.files.insert(
                        k(import_id, &c.key),
                        FileItem {
                            record: c.clone(),
                            lease_owner: None,
                            lease_until: None,
                        },
                    );
                }
                true
            } else {
                false
            }
        };
        self.faults.leave("ledger.split_file").await;
        Ok(done)
    }

    async fn finish_chunk(
        &self,
        import_id: &str,
        key: &str,
        chunk: u32,
        worker: Option<&str>,
        outcome: &FileOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<(u32, u32)>, StoreError> {
        self.faults.enter("ledger.finish_chunk").await?;
        let counts = {
            let mut s = self.lock();
            let ck = s3imports::model::ledger::chunk_key(key, chunk);
            let Some(c) = s.files.get_mut(&k(import_id, &ck)) else {
                return Ok(None);
            };
            if c.record.status.is_final()
                || worker.is_some_and(|w| c.lease_owner.as_deref() != Some(w))
            {
                return Ok(None);
            }
            c.record.status = outcome.status();
            c.record.rows_total = outcome.rows_total;
            c.record.rows_ingested = outcome.rows_ingested;
            c.record.rows_failed = outcome.rows_failed;
            c.record.bytes = outcome.bytes;
            c.record.finished_at = Some(now);
            c.record.reason.clone_from(&outcome.reason);
            c.record.report_key.clone_from(&outcome.report_key);
            c.lease_owner = None;
            c.lease_until = None;
            let Some(f) = s.files.get_mut(&k(import_id, key)) else {
                return Ok(None);
            };
            f.record.chunks_done += 1;
            f.record.rows_total += outcome.rows_total;
            f.record.rows_ingested += outcome.rows_ingested;
            f.record.rows_failed += outcome.rows_failed;
            Some((f.record.chunks_done, f.record.chunks_total))
        };
        self.faults.leave("ledger.finish_chunk").await;
        Ok(counts)
    }

    async fn claim_close(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults.enter("ledger.claim_close").await?;
        let claimed = {
            let mut s = self.lock();
            let free = s
                .closing
                .get(&k(import_id, key))
                .is_none_or(|(owner, u)| *u < now || owner == worker);
            let ready = s
                .files
                .get(&k(import_id, key))
                .is_some_and(|f| f.record.chunks_done >= f.record.chunks_total);
            if free && ready {
                s.closing
                    .insert(k(import_id, key), (worker.to_string(), until));
                true
            } else {
                false
            }
        };
        self.faults.leave("ledger.claim_close").await;
        Ok(claimed)
    }

    async fn release_lease(
        &self,
        import_id: &str,
        key: &str,
        worker: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        self.faults.enter("ledger.release_lease").await?;
        let mut s = self.lock();
        if let Some(f) = s.files.get_mut(&k(import_id, key))
            && f.lease_owner.as_deref() == Some(worker)
            && f.record.status == FileStatus::Processing
        {
            f.record.status = FileStatus::Queued;
            f.record.last_error = Some(error.into());
            f.lease_owner = None;
            f.lease_until = None;
        }
        Ok(())
    }

    async fn finish_file(
        &self,
        import_id: &str,
        run_id: &str,
        key: &str,
        worker: Option<&str>,
        outcome: &FileOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<RunRecord>, StoreError> {
        self.faults.enter("ledger.finish_file").await?;
        let run = {
            let mut guard = self.lock();
            let s = &mut *guard;
            let Some(f) = s.files.get_mut(&k(import_id, key)) else {
                return Ok(None);
            };
            let allowed = !f.record.status.is_final()
                && f.record.run_id == run_id
                && worker.is_none_or(|w| f.lease_owner.as_deref() == Some(w));
            let Some((run, _)) = s.runs.get_mut(&k(import_id, run_id)) else {
                return Ok(None);
            };
            if !allowed {
                return Ok(None);
            }
            let status = outcome.status();
            f.record.status = status;
            f.record.rows_total = outcome.rows_total;
            f.record.rows_ingested = outcome.rows_ingested;
            f.record.rows_failed = outcome.rows_failed;
            f.record.bytes = outcome.bytes;
            f.record.finished_at = Some(now);
            f.record.reason.clone_from(&outcome.reason);
            f.record.report_key.clone_from(&outcome.report_key);
            f.record.decrypted_with.clone_from(&outcome.decrypted_with);
            f.record.sha256.clone_from(&outcome.sha256);
            f.record.duplicate_of.clone_from(&outcome.duplicate_of);
            f.lease_owner = None;
            f.lease_until = None;
            run.files_done += 1;
            match status {
                FileStatus::Succeeded => run.files_succeeded += 1,
                FileStatus::PartiallySucceeded => run.files_partial += 1,
                _ => run.files_failed += 1,
            }
            run.rows_total += outcome.rows_total;
            run.rows_ingested += outcome.rows_ingested;
            run.rows_failed += outcome.rows_failed;
            if let Some(key) = &outcome.decrypted_with
                && !run.keys_used.contains(key)
            {
                run.keys_used.push(key.clone());
                run.keys_used.sort();
            }
            run.clone()
        };
        self.faults.leave("ledger.finish_file").await;
        Ok(Some(run))
    }

    async fn close_run(
        &self,
        run: &RunRecord,
        worker: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults.enter("ledger.close_run").await?;
        let closed = {
            let mut guard = self.lock();
            let State {
                runs,
                notify_owners,
                ..
            } = &mut *guard;
            match runs.get_mut(&k(&run.import_id, &run.run_id)) {
                Some((r, _))
                    if r.files_done >= r.files_total
                        && !r.notified
                        && r.notify_until.is_none_or(|u| u < now) =>
                {
                    r.status =
                        RunStatus::from_files(r.files_succeeded, r.files_partial, r.files_failed);
                    r.finished_at.get_or_insert(now);
                    r.notify_until = Some(until);
                    notify_owners.insert(
                        (run.import_id.clone(), run.run_id.clone()),
                        worker.to_string(),
                    );
                    true
                }
                _ => false,
            }
        };
        self.faults.leave("ledger.close_run").await;
        Ok(closed)
    }

    async fn release_notification(
        &self,
        import_id: &str,
        run_id: &str,
        worker: &str,
    ) -> Result<(), StoreError> {
        self.faults.enter("ledger.release_notification").await?;
        let mut guard = self.lock();
        let State {
            runs,
            notify_owners,
            ..
        } = &mut *guard;
        let key = k(import_id, run_id);
        if notify_owners.get(&key).map(String::as_str) == Some(worker)
            && let Some((r, _)) = runs.get_mut(&key)
            && !r.notified
        {
            r.notify_until = None;
            notify_owners.remove(&key);
        }
        Ok(())
    }

    async fn mark_notified(&self, import_id: &str, run_id: &str) -> Result<(), StoreError> {
        self.faults.enter("ledger.mark_notified").await?;
        if let Some((r, _)) = self.lock().runs.get_mut(&k(import_id, run_id)) {
            r.notified = true;
            r.notify_until = None;
        }
        self.faults.leave("ledger.mark_notified").await;
        Ok(())
    }

    async fn remember_content(
        &self,
        import_id: &str,
        sha256: &str,
        key: &str,
        run_id: &str,
        _now: DateTime<Utc>,
    ) -> Result<Option<s3imports::model::ledger::DuplicateOf>, StoreError> {
        self.faults.enter("ledger.remember_content").await?;
        let first = self
            .lock()
            .contents
            .entry(k(import_id, sha256))
            .or_insert_with(|| s3imports::model::ledger::DuplicateOf {
                key: key.into(),
                run_id: run_id.into(),
                skipped: false,
            })
            .clone();
        Ok((first.key != key).then_some(first))
    }

    async fn forget_content(
        &self,
        import_id: &str,
        sha256: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.contents
            .get(&k(import_id, sha256))
            .is_some_and(|first| first.key == key)
        {
            s.contents.remove(&k(import_id, sha256));
        }
        Ok(())
    }

    async fn set_run_alerts(
        &self,
        import_id: &str,
        run_id: &str,
        sent: &s3imports::model::ledger::AlertsSent,
    ) -> Result<(), StoreError> {
        self.faults.enter("ledger.set_run_alerts").await?;
        if let Some((run, _)) = self.lock().runs.get_mut(&k(import_id, run_id)) {
            run.alerts = Some(sent.clone());
        }
        Ok(())
    }

    async fn claim_post_process(
        &self,
        import_id: &str,
        key: &str,
        run_id: &str,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        Ok(match s.files.get_mut(&k(import_id, key)) {
            Some(f) if f.record.run_id == run_id && f.record.post_process.is_none() => {
                f.record.post_process = Some(s3imports::model::post_process::PostProcessed {
                    pending: true,
                    ..Default::default()
                });
                true
            }
            _ => false,
        })
    }

    async fn set_post_process(
        &self,
        import_id: &str,
        key: &str,
        run_id: &str,
        done: &s3imports::model::post_process::PostProcessed,
    ) -> Result<(), StoreError> {
        self.faults.enter("ledger.set_post_process").await?;
        if let Some(f) = self.lock().files.get_mut(&k(import_id, key))
            && f.record.run_id == run_id
        {
            f.record.post_process = Some(done.clone());
        }
        Ok(())
    }
}
