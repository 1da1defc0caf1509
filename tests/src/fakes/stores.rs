//! The other ports in memory: configs, the source bucket and secrets, the destination
//! tables, reports, the mailer and the files queue.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use s3imports::Clock;
use s3imports::codec::mime::Email;
use s3imports::error::ServiceError;
use s3imports::model::config::{
    ConfigRecord, ImportConfig, ImportKind, ImportStatus, SecretRef, Source,
};
use s3imports::model::naming::FilePattern;
use s3imports::model::segment::{MembersPage, Segment, SegmentRef, SegmentStatus};
use s3imports::model::values::Value;
use s3imports::ports::Segments;
use s3imports::ports::{
    Bounded, Configs, FileMessage, ListedFile, Listing, Mailer, ObjectBody, ObjectSource, Queue,
    RejectedRow, ReportError, Reports, RowSink, RowWriter, Secrets, SourceCleanup, SourceError,
    SourceFolder, StoreError,
};
use s3imports::process::delivery::Delivery;
use s3imports::rows::sink::{FileAttributes, Write, coalesce};

use super::Faults;

/// Objects by (bucket, key).
type Objects = Arc<Mutex<BTreeMap<(String, String), Vec<u8>>>>;
/// Tables by name, items by key.
type Tables = Arc<Mutex<HashMap<&'static str, BTreeMap<String, FakeItem>>>>;
/// Row writes applied: (table, item key, row).
type Applied = Arc<Mutex<Vec<(&'static str, String, u64)>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The configs table.
pub struct FakeConfigs {
    records: Mutex<HashMap<String, ConfigRecord>>,
    faults: Arc<Faults>,
}

impl FakeConfigs {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self {
            records: Mutex::default(),
            faults,
        }
    }

    /// Stores an active import, due at its first run after `now`.
    pub fn put(&self, config: ImportConfig, now: DateTime<Utc>) {
        let next_run_at = config.schedule.first_run(now, config.timezone);
        lock(&self.records).insert(
            config.id.clone(),
            ConfigRecord {
                status: ImportStatus::Active,
                next_run_at,
                status_reason: None,
                created_at: Some(now),
                updated_at: Some(now),
                last_run_id: None,
                last_run_at: None,
                newest_key: None,
                sweep_key: None,
                last_manual_run_at: None,
                config,
            },
        );
    }

    pub fn record(&self, id: &str) -> Option<ConfigRecord> {
        lock(&self.records).get(id).cloned()
    }
}

#[async_trait]
impl Configs for FakeConfigs {
    async fn get(&self, id: &str) -> Result<Option<ConfigRecord>, StoreError> {
        self.faults.enter("configs.get").await?;
        Ok(self.record(id))
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.faults.enter("configs.due").await?;
        let mut ids: Vec<String> = lock(&self.records)
            .values()
            .filter(|r| r.status == ImportStatus::Active && r.next_run_at.is_some_and(|t| t <= now))
            .map(|r| r.config.id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn take_lock(
        &self,
        config: &ImportConfig,
        _now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        self.faults.enter("configs.take_lock").await?;
        let key = config.duplicate_key();
        Ok(lock(&self.records)
            .values()
            .filter(|r| r.status == ImportStatus::Active && r.config.id != config.id)
            .find(|r| r.config.duplicate_key() == key)
            .map(|r| r.config.id.clone()))
    }

    async fn finish(
        &self,
        id: &str,
        status: ImportStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.faults.enter("configs.finish").await?;
        let mut records = lock(&self.records);
        let r = records
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.into()))?;
        r.status = status;
        r.status_reason = reason.map(str::to_string);
        r.next_run_at = None;
        r.updated_at = Some(now);
        Ok(())
    }

    async fn claim_run(
        &self,
        id: &str,
        due_at: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults.enter("configs.claim_run").await?;
        let claimed = {
            let mut records = lock(&self.records);
            match records.get_mut(id) {
                Some(r) if r.status == ImportStatus::Active && r.next_run_at == Some(due_at) => {
                    r.next_run_at = next;
                    r.last_run_id = Some(run_id.into());
                    r.last_run_at = Some(now);
                    true
                }
                _ => false,
            }
        };
        self.faults.leave("configs.claim_run").await;
        Ok(claimed)
    }

    async fn claim_manual_run(
        &self,
        id: &str,
        run_id: &str,
        not_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults.enter("configs.claim_manual_run").await?;
        let claimed = match lock(&self.records).get_mut(id) {
            Some(r)
                if r.status == ImportStatus::Active
                    && r.last_manual_run_at.is_none_or(|t| t <= not_after) =>
            {
                r.last_manual_run_at = Some(now);
                r.last_run_id = Some(run_id.into());
                r.last_run_at = Some(now);
                true
            }
            _ => false,
        };
        self.faults.leave("configs.claim_manual_run").await;
        Ok(claimed)
    }

    async fn set_newest_key(&self, id: &str, key: &str) -> Result<(), StoreError> {
        self.faults.enter("configs.set_newest_key").await?;
        if let Some(r) = lock(&self.records).get_mut(id)
            && r.newest_key.as_deref().is_none_or(|k| k < key)
        {
            r.newest_key = Some(key.into());
        }
        self.faults.leave("configs.set_newest_key").await;
        Ok(())
    }

    async fn set_sweep_key(&self, id: &str, key: Option<&str>) -> Result<(), StoreError> {
        self.faults.enter("configs.set_sweep_key").await?;
        if let Some(r) = lock(&self.records).get_mut(id) {
            r.sweep_key = key.map(str::to_string);
        }
        self.faults.leave("configs.set_sweep_key").await;
        Ok(())
    }
}

/// Buckets of objects (key to bytes), reached with any credentials.
pub struct FakeSource {
    objects: Objects,
    faults: Arc<Faults>,
    /// Each list request's modelled latency, and the time all of them took.
    list_latency: ListLatency,
}

type ListLatency = Arc<Mutex<(Duration, Duration)>>;

/// A fake object's ETag: its size, so replacing it with other bytes of another size
/// changes it.
pub fn etag_of(body: &[u8]) -> String {
    format!("{:x}", body.len())
}

/// Keys a list request returns, as S3's `ListObjectsV2` (`MaxKeys` defaults to 1,000).
/// https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
pub const LIST_PAGE: usize = 1_000;

impl FakeSource {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self {
            objects: Arc::default(),
            faults,
            list_latency: Arc::default(),
        }
    }

    /// Models each list request as taking `latency` (S3's takes tens to hundreds of
    /// milliseconds), without waiting it.
    pub fn set_list_latency(&self, latency: Duration) {
        lock(&self.list_latency).0 = latency;
    }

    /// The modelled time of every list request so far.
    pub fn list_time(&self) -> Duration {
        lock(&self.list_latency).1
    }

    pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        lock(&self.objects).insert((bucket.into(), key.into()), body.into());
    }
}

#[async_trait]
impl ObjectSource for FakeSource {
    async fn connect(
        &self,
        source: &Source,
        _session: &str,
    ) -> Result<Box<dyn SourceFolder>, SourceError> {
        self.faults.enter("source.connect").await?;
        Ok(Box::new(FakeFolder {
            objects: self.objects.clone(),
            bucket: source.bucket.clone(),
            folder: source.folder.clone(),
            faults: self.faults.clone(),
            list_latency: self.list_latency.clone(),
        }))
    }
}

struct FakeFolder {
    objects: Objects,
    bucket: String,
    folder: String,
    faults: Arc<Faults>,
    list_latency: ListLatency,
}

impl FakeFolder {
    fn object(&self, key: &str) -> Result<Vec<u8>, SourceError> {
        lock(&self.objects)
            .get(&(self.bucket.clone(), key.to_string()))
            .cloned()
            .ok_or_else(|| SourceError::NoSuchKey {
                bucket: self.bucket.clone(),
                key: key.into(),
            })
    }
}

#[async_trait]
impl SourceFolder for FakeFolder {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Pages of [`LIST_PAGE`] keys from a sorted map, as S3 lists them (sub-folders
    /// left out); each request adds the modelled list latency to the source's time.
    async fn list_pages(
        &self,
        pattern: &FilePattern,
        start_after: Option<String>,
        max_pages: Option<u32>,
    ) -> Result<Listing, SourceError> {
        self.faults.enter("source.list").await?;
        let prefix = format!("{}/{}", pattern.folder.trim_matches('/'), pattern.prefix);
        let mut listing = Listing::default();
        let mut after = start_after.filter(|s| *s >= prefix);
        loop {
            {
                let (latency, time) = &mut *lock(&self.list_latency);
                *time += *latency;
            }
            listing.requests += 1;
            // A block, so the lock is not held across the next request's wait.
            let more = {
                let objects = lock(&self.objects);
                let from = (
                    self.bucket.clone(),
                    after.clone().unwrap_or_else(|| prefix.clone()),
                );
                let page: Vec<(&String, &Vec<u8>)> = objects
                    .range(from..)
                    .take_while(|((b, k), _)| *b == self.bucket && k.starts_with(&prefix))
                    .filter(|((_, k), _)| {
                        after.as_ref() != Some(k) && !k[prefix.len()..].contains('/')
                    })
                    .take(LIST_PAGE + 1)
                    .map(|((_, k), body)| (k, body))
                    .collect();
                for (key, body) in page.iter().take(LIST_PAGE) {
                    match pattern.match_key(key) {
                        Ok(file) => listing.files.push(ListedFile {
                            file,
                            size: body.len() as u64,
                            etag: etag_of(body),
                            last_modified: None,
                        }),
                        Err(m) => listing.mismatched.push(((*key).clone(), m)),
                    }
                }
                after = page.get(LIST_PAGE - 1).map(|(k, _)| (*k).clone());
                page.len() > LIST_PAGE
            };
            if !more {
                break;
            }
            if max_pages.is_some_and(|m| listing.requests >= m) {
                listing.resume_after = after;
                break;
            }
        }
        listing.sort();
        Ok(listing)
    }

    async fn folder_exists(&self) -> Result<bool, SourceError> {
        self.faults.enter("source.folder_exists").await?;
        let prefix = format!("{}/", self.folder);
        Ok(lock(&self.objects)
            .keys()
            .any(|(b, k)| b == &self.bucket && k.starts_with(&prefix)))
    }

    async fn open(&self, key: &str) -> Result<(ObjectBody, u64), SourceError> {
        self.faults.enter("source.open").await?;
        let body = self.object(key)?;
        let size = body.len() as u64;
        Ok((Box::pin(std::io::Cursor::new(body)), size))
    }

    async fn open_range(
        &self,
        key: &str,
        _etag: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<ObjectBody, SourceError> {
        self.faults.enter("source.open_range").await?;
        Ok(byte_range(&self.object(key)?, from, to))
    }

    async fn read_text(&self, key: &str, max: u64) -> Result<String, SourceError> {
        self.faults.enter("source.read_text").await?;
        let body = self.object(key)?;
        if body.len() as u64 > max {
            return Err(SourceError::ObjectTooLarge {
                bucket: self.bucket.clone(),
                key: key.into(),
                size: body.len() as u64,
                max,
            });
        }
        String::from_utf8(body).map_err(|_| SourceError::NotText {
            bucket: self.bucket.clone(),
            key: key.into(),
        })
    }

    async fn head(&self, key: &str) -> Result<(u64, String), SourceError> {
        self.faults.enter("source.head").await?;
        let body = self.object(key)?;
        Ok((body.len() as u64, etag_of(&body)))
    }

    fn cleanup(&self) -> &dyn SourceCleanup {
        self
    }
}

#[async_trait]
impl SourceCleanup for FakeFolder {
    async fn tag(&self, key: &str, _tags: &[(String, String)]) -> Result<(), SourceError> {
        self.faults.enter("source.tag").await?;
        self.object(key).map(|_| ())
    }

    async fn copy(&self, key: &str, _etag: &str, to: &str) -> Result<(), SourceError> {
        self.faults.enter("source.copy").await?;
        let body = self.object(key)?;
        lock(&self.objects).insert((self.bucket.clone(), to.to_string()), body);
        Ok(())
    }

    async fn delete(&self, key: &str, _etag: &str) -> Result<(), SourceError> {
        self.faults.enter("source.delete").await?;
        lock(&self.objects).remove(&(self.bucket.clone(), key.to_string()));
        Ok(())
    }
}

/// Bytes `from..to` (`None`: to the end) of an object, as a ranged GET returns them.
fn byte_range(data: &[u8], from: u64, to: Option<u64>) -> ObjectBody {
    let end = to.map_or(data.len(), |t| (t as usize).min(data.len()));
    let start = (from as usize).min(end);
    Box::pin(std::io::Cursor::new(data[start..end].to_vec()))
}

/// Secrets by id, each with its `s3imports:import-id` tag.
pub struct FakeSecrets {
    secrets: Mutex<HashMap<String, (String, Option<String>)>>,
    faults: Arc<Faults>,
}

impl FakeSecrets {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self {
            secrets: Mutex::default(),
            faults,
        }
    }

    /// A secret for the imports `tag` names.
    pub fn put(&self, id: &str, value: &str, tag: Option<&str>) {
        lock(&self.secrets).insert(id.into(), (value.into(), tag.map(str::to_string)));
    }
}

#[async_trait]
impl Secrets for FakeSecrets {
    async fn secret(&self, r: &SecretRef, import_id: &str) -> Result<String, SourceError> {
        self.faults.enter("secrets.secret").await?;
        let (id, _) = r.parts();
        let (value, tag) =
            lock(&self.secrets)
                .get(id)
                .cloned()
                .ok_or_else(|| SourceError::Secret {
                    secret: id.into(),
                    reason: "no such secret".into(),
                })?;
        s3imports::ports::check_secret_tag(id, tag.as_deref(), import_id)?;
        Ok(value)
    }
}

/// An item as the fake tables keep it: attribute name to typed value.
pub type FakeItem = HashMap<String, Value>;

/// The destination tables, each item keyed as DynamoDB would key it.
pub struct FakeWriter {
    tables: Tables,
    /// Every row write applied, in order: (table, item key, row number).
    applied: Applied,
    faults: Arc<Faults>,
}

impl FakeWriter {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self {
            tables: Arc::default(),
            applied: Arc::default(),
            faults,
        }
    }

    /// A table's items by key.
    pub fn table(&self, name: &str) -> BTreeMap<String, FakeItem> {
        lock(&self.tables).get(name).cloned().unwrap_or_default()
    }

    /// Row writes applied so far (a retried batch counts again).
    pub fn applied(&self) -> usize {
        lock(&self.applied).len()
    }
}

/// The table an import kind writes to.
pub fn table_of(kind: &ImportKind) -> &'static str {
    match kind {
        ImportKind::RegisteredUsers {} => "users",
        ImportKind::AnonymousUsers { .. } => "anonymous_users",
        ImportKind::Events { .. } => "events",
        ImportKind::Auxiliary { .. } => "auxiliary",
    }
}

impl RowWriter for FakeWriter {
    fn sink(&self, kind: &ImportKind, file: FileAttributes) -> Box<dyn RowSink> {
        Box::new(FakeSink {
            table: table_of(kind),
            file,
            tables: self.tables.clone(),
            applied: self.applied.clone(),
            faults: self.faults.clone(),
        })
    }
}

struct FakeSink {
    table: &'static str,
    file: FileAttributes,
    tables: Tables,
    applied: Applied,
    faults: Arc<Faults>,
}

fn text(item: &FakeItem, name: &str) -> String {
    match item.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_display_string(),
        None => String::new(),
    }
}

#[async_trait]
impl RowSink for FakeSink {
    async fn write(&self, rows: Vec<(u64, Write)>) -> Result<Vec<RejectedRow>, StoreError> {
        self.faults.enter("writer.write").await?;
        {
            let mut tables = lock(&self.tables);
            let table = tables.entry(self.table).or_default();
            let mut applied = lock(&self.applied);
            for (rows, write) in coalesce(rows, &self.file) {
                let key = match write {
                    Write::Put(attrs) => {
                        let item: FakeItem = self.file.named(attrs).collect();
                        let key = match self.table {
                            "events" => {
                                format!("{}|{}", text(&item, "user_id"), text(&item, "event_key"))
                            }
                            _ => text(&item, "record_key"),
                        };
                        table.insert(key.clone(), item);
                        key
                    }
                    Write::Update { key, set } => {
                        let item = table.entry(key.clone()).or_default();
                        item.insert(self.file.key.clone(), Value::String(key.clone()));
                        item.extend(self.file.named(set));
                        key
                    }
                };
                applied.extend(rows.all().map(|row| (self.table, key.clone(), row)));
            }
        }
        self.faults.leave("writer.write").await;
        Ok(Vec::new())
    }
}

/// The reports bucket.
pub struct FakeReports {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    faults: Arc<Faults>,
}

impl FakeReports {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self {
            objects: Mutex::default(),
            faults,
        }
    }
}

#[async_trait]
impl Reports for FakeReports {
    async fn presigned_url(
        &self,
        key: &str,
        lifetime: std::time::Duration,
    ) -> Result<String, ReportError> {
        self.faults.enter("reports.presigned_url").await?;
        Ok(format!(
            "memory://reports/{key}?expires={}",
            lifetime.as_secs()
        ))
    }

    async fn upload(&self, key: &str, path: &Path) -> Result<(), ReportError> {
        self.faults.enter("reports.upload").await?;
        let data = std::fs::read(path)?;
        lock(&self.objects).insert(key.into(), data);
        self.faults.leave("reports.upload").await;
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), ReportError> {
        self.faults.enter("reports.delete").await?;
        let mut objects = lock(&self.objects);
        for k in keys {
            objects.remove(k);
        }
        Ok(())
    }

    async fn open_range(
        &self,
        key: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<s3imports::ports::ObjectBody, ReportError> {
        self.faults.enter("reports.open_range").await?;
        let objects = lock(&self.objects);
        let data = objects
            .get(key)
            .ok_or_else(|| ReportError::Expired(key.into()))?;
        Ok(byte_range(data, from, to))
    }

    async fn read_bounded(&self, key: &str, max_bytes: u64) -> Result<Bounded, ReportError> {
        self.faults.enter("reports.read_bounded").await?;
        let data = lock(&self.objects)
            .get(key)
            .cloned()
            .ok_or_else(|| ReportError::Expired(key.into()))?;
        Ok(if data.len() as u64 > max_bytes {
            Bounded::TooLarge(data.len() as u64)
        } else {
            Bounded::Read(data)
        })
    }
}

/// Emails sent.
pub struct FakeMailer {
    sent: Mutex<Vec<(Vec<String>, Email)>>,
    faults: Arc<Faults>,
}

impl FakeMailer {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self {
            sent: Mutex::default(),
            faults,
        }
    }

    pub fn sent(&self) -> Vec<(Vec<String>, Email)> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl Mailer for FakeMailer {
    async fn send(&self, to: &[String], email: &Email) -> Result<(), ServiceError> {
        self.faults.enter("mailer.send").await?;
        lock(&self.sent).push((to.to_vec(), email.clone()));
        self.faults.leave("mailer.send").await;
        Ok(())
    }
}

/// A webhook request: url, headers, body.
pub type Posted = (String, Vec<(String, String)>, String);

/// Run summaries published (topic, subject, body) and posted.
pub struct FakeAlerts {
    pub published: Mutex<Vec<(String, String, String)>>,
    pub posted: Mutex<Vec<Posted>>,
    faults: Arc<Faults>,
}

impl FakeAlerts {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self {
            published: Mutex::default(),
            posted: Mutex::default(),
            faults,
        }
    }

    pub fn published(&self) -> Vec<(String, String, String)> {
        lock(&self.published).clone()
    }
}

#[async_trait]
impl s3imports::ports::AlertSink for FakeAlerts {
    async fn publish(
        &self,
        topic_arn: &str,
        subject: &str,
        body: &str,
    ) -> Result<(), ServiceError> {
        self.faults.enter("alerts.publish").await?;
        lock(&self.published).push((topic_arn.into(), subject.into(), body.into()));
        Ok(())
    }

    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(), ServiceError> {
        self.faults.enter("alerts.post").await?;
        lock(&self.posted).push((url.into(), headers.to_vec(), body.into()));
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    body: String,
    receipt: Option<String>,
    receive_count: u32,
    visible_at: DateTime<Utc>,
}

/// The files queue and its dead-letter queue, on the world's clock: a received
/// message stays invisible for the visibility timeout unless its receipt changes it,
/// and after `max_receives` receives it moves to the dead-letter queue.
pub struct FakeQueue {
    state: Mutex<(Vec<Entry>, Vec<Entry>, u64)>,
    clock: Arc<dyn Clock>,
    /// The queue's visibility timeout.
    pub visibility: chrono::Duration,
    pub max_receives: u32,
    faults: Arc<Faults>,
}

impl FakeQueue {
    pub fn new(faults: Arc<Faults>, clock: Arc<dyn Clock>, max_receives: u32) -> Self {
        Self {
            state: Mutex::default(),
            clock,
            visibility: chrono::Duration::seconds(5400),
            max_receives,
            faults,
        }
    }

    /// Receives the visible messages (up to `max`), dead-letter queue first.
    pub fn receive(&self, max: usize) -> Vec<Delivery> {
        let now = self.clock.now();
        let mut guard = lock(&self.state);
        let (queue, dlq, next) = &mut *guard;
        // Messages past their last receive move to the dead-letter queue.
        let (dead, live): (Vec<Entry>, Vec<Entry>) = std::mem::take(queue)
            .into_iter()
            .partition(|e| e.receive_count >= self.max_receives && e.visible_at <= now);
        *queue = live;
        dlq.extend(dead.into_iter().map(|mut e| {
            e.receive_count = 0;
            e
        }));
        let mut out = Vec::new();
        for (list, dead_letter) in [(&mut *dlq, true), (&mut *queue, false)] {
            for e in list.iter_mut().filter(|e| e.visible_at <= now) {
                if out.len() >= max {
                    break;
                }
                *next += 1;
                e.receive_count += 1;
                e.visible_at = now + self.visibility;
                let receipt = format!("r{}-{}", e.id, next);
                e.receipt = Some(receipt.clone());
                out.push(Delivery {
                    id: e.id.to_string(),
                    body: Some(e.body.clone()),
                    receipt: Some(receipt),
                    receive_count: e.receive_count,
                    last: false,
                    dead_letter,
                    deadline: None,
                    sent_at: None,
                });
            }
        }
        out
    }

    /// Deletes a received message (the consumer is done with it).
    pub fn delete(&self, receipt: &str) {
        let mut guard = lock(&self.state);
        let (queue, dlq, _) = &mut *guard;
        queue.retain(|e| e.receipt.as_deref() != Some(receipt));
        dlq.retain(|e| e.receipt.as_deref() != Some(receipt));
    }

    /// Messages in either queue.
    pub fn len(&self) -> usize {
        let guard = lock(&self.state);
        guard.0.len() + guard.1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the next message becomes visible.
    pub fn next_visible(&self) -> Option<DateTime<Utc>> {
        let guard = lock(&self.state);
        guard
            .0
            .iter()
            .chain(guard.1.iter())
            .map(|e| e.visible_at)
            .min()
    }
}

#[async_trait]
impl Queue for FakeQueue {
    async fn send_all(&self, messages: &[FileMessage]) -> Result<Vec<FileMessage>, StoreError> {
        self.faults.enter("queue.send_all").await?;
        {
            let now = self.clock.now();
            let mut guard = lock(&self.state);
            for m in messages {
                guard.2 += 1;
                let id = guard.2;
                guard.0.push(Entry {
                    id,
                    body: serde_json::to_string(m).unwrap_or_default(),
                    receipt: None,
                    receive_count: 0,
                    visible_at: now,
                });
            }
        }
        self.faults.leave("queue.send_all").await;
        Ok(Vec::new())
    }

    async fn set_visibility(&self, receipt: &str, seconds: u32) -> Result<(), StoreError> {
        self.faults.enter("queue.set_visibility").await?;
        let now = self.clock.now();
        let mut guard = lock(&self.state);
        let (queue, dlq, _) = &mut *guard;
        if let Some(e) = queue
            .iter_mut()
            .chain(dlq.iter_mut())
            .find(|e| e.receipt.as_deref() == Some(receipt))
        {
            e.visible_at = now + chrono::Duration::seconds(i64::from(seconds));
        }
        Ok(())
    }
}

/// Segments' own records (members are the writer's business): recounts can fail.
pub struct FakeSegments {
    segments: Mutex<BTreeMap<String, Segment>>,
    faults: Arc<Faults>,
}

impl FakeSegments {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self {
            segments: Mutex::default(),
            faults,
        }
    }

    fn upsert(&self, name: &str, import_id: &str, now: DateTime<Utc>) -> Segment {
        let mut all = lock(&self.segments);
        let s = all.entry(name.to_string()).or_insert_with(|| Segment {
            name: name.to_string(),
            description: None,
            status: SegmentStatus::Active,
            imports: Vec::new(),
            created_at: Some(now),
            updated_at: None,
            member_count: 0,
            counted_at: None,
        });
        if !s.imports.iter().any(|i| i == import_id) {
            s.imports.push(import_id.to_string());
            s.imports.sort();
        }
        s.updated_at = Some(now);
        s.clone()
    }
}

#[async_trait]
impl Segments for FakeSegments {
    async fn ensure(
        &self,
        segment: &SegmentRef,
        import_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Segment, StoreError> {
        self.faults.enter("segments.ensure").await?;
        let mut s = self.upsert(&segment.name, import_id, now);
        if let Some(d) = &segment.description {
            s.description = Some(d.clone());
            lock(&self.segments).insert(s.name.clone(), s.clone());
        }
        Ok(s)
    }

    async fn recount(
        &self,
        name: &str,
        import_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Segment, StoreError> {
        self.faults.enter("segments.recount").await?;
        let mut s = self.upsert(name, import_id, now);
        s.counted_at = Some(now);
        lock(&self.segments).insert(s.name.clone(), s.clone());
        self.faults.leave("segments.recount").await;
        Ok(s)
    }

    async fn get(&self, name: &str) -> Result<Option<Segment>, StoreError> {
        Ok(lock(&self.segments).get(name).cloned())
    }

    async fn list(&self) -> Result<Vec<Segment>, StoreError> {
        Ok(lock(&self.segments).values().cloned().collect())
    }

    async fn members(
        &self,
        _name: &str,
        _limit: usize,
        _cursor: Option<&str>,
    ) -> Result<MembersPage, StoreError> {
        Ok(MembersPage {
            members: Vec::new(),
            next_cursor: None,
        })
    }

    async fn set_status(
        &self,
        name: &str,
        status: SegmentStatus,
        now: DateTime<Utc>,
    ) -> Result<Segment, StoreError> {
        let mut all = lock(&self.segments);
        let s = all
            .get_mut(name)
            .ok_or_else(|| StoreError::NoSegment(name.to_string()))?;
        s.status = status;
        s.updated_at = Some(now);
        Ok(s.clone())
    }
}
