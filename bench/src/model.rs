//! `model`: the processor against DynamoDB simulated by a writer with modelled
//! latency, so rows/s per worker and the wall time of a large file can be measured
//! without AWS. The rest of the stack is the in-memory fakes of `tests/src/fakes`, and
//! the file is read, mapped, checkpointed and continued exactly as in the Lambda.
//!
//! The model (written next to the numbers in docs/performance.md):
//! - `BatchExecuteStatement` of 25 PartiQL INSERTs (users, one per item after a
//!   batch's rows are merged: a first load, every user new): 10 ms, 8 in flight per
//!   batch of 400 rows, batches one at a time, as the DynamoDB sink sends them;
//! - `BatchWriteItem` of 25 items (events): 10 ms, 4 in flight per batch of 100 rows,
//!   `WritesInFlight` batches at once;
//! - `UpdateItem` (a user already there, one a row): 6 ms, 16 in flight per batch
//!   of 400 rows;
//!   `--kind users-upserts` models a file of such users only;
//! - 2% of requests throttled; a throttled request waits as the SDK's retry is set up
//!   to (full jitter: a random fraction of `aws::INITIAL_BACKOFF` doubling per attempt,
//!   at most 20 s) and is sent again.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use s3imports::aws::sink::{INSERT_CONCURRENCY, STATEMENT_LIMIT};
use s3imports::model::config::ImportKind;
use s3imports::ports::{RejectedRow, RowSink, RowWriter, StoreError};
use s3imports::rows::sink::{FileAttributes, Write, coalesce};
use serde_json::json;

const UPDATE_LATENCY: Duration = Duration::from_millis(6);
const BATCH_LATENCY: Duration = Duration::from_millis(10);
const THROTTLED_PERCENT: u64 = 2;
const UPDATE_CONCURRENCY: usize = 16;
const PUT_CONCURRENCY: usize = 4;
const BATCH_ITEMS: usize = 25;

pub struct Model {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    /// The retry's first backoff ceiling (the stack's `aws::INITIAL_BACKOFF`; the
    /// SDK's default of 1 s to compare).
    pub initial_backoff: Duration,
    /// Users files model users already there (`users-upserts`).
    pub upserts: bool,
    rng: Mutex<u64>,
}

impl Model {
    fn random(&self) -> u64 {
        let mut s = self
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // xorshift64*: deterministic, no dependency.
        if *s == 0 {
            *s = 0x9E37_79B9_7F4A_7C15;
        }
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        s.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// One request of `latency`, sent again after a modelled backoff while throttled.
    async fn request(&self, latency: Duration) {
        let mut attempt = 0u32;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(latency).await;
            if self.random() % 100 >= THROTTLED_PERCENT {
                return;
            }
            self.throttled.fetch_add(1, Ordering::Relaxed);
            let cap =
                (self.initial_backoff * 2u32.pow(attempt.min(16))).min(Duration::from_secs(20));
            let cap_us = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX).max(1);
            tokio::time::sleep(Duration::from_micros(self.random() % cap_us)).await;
            attempt += 1;
        }
    }
}

pub struct ModelWriter(pub Arc<Model>);

struct ModelSink {
    model: Arc<Model>,
    events: bool,
    /// Users already in the table: one `UpdateItem` each.
    upserts: bool,
    file: FileAttributes,
}

impl RowWriter for ModelWriter {
    fn sink(&self, kind: &ImportKind, file: FileAttributes) -> Box<dyn RowSink> {
        Box::new(ModelSink {
            model: self.0.clone(),
            events: matches!(kind, ImportKind::Events { .. }),
            upserts: self.0.upserts,
            file,
        })
    }
}

#[async_trait]
impl RowSink for ModelSink {
    async fn write(&self, rows: Vec<(u64, Write)>) -> Result<Vec<RejectedRow>, StoreError> {
        let model = &self.model;
        if self.events {
            let requests = rows.len().div_ceil(BATCH_ITEMS);
            futures::stream::iter(0..requests)
                .map(|_| model.request(BATCH_LATENCY))
                .buffer_unordered(PUT_CONCURRENCY)
                .collect::<Vec<()>>()
                .await;
        } else if self.upserts {
            let items = coalesce(rows, &self.file).len();
            futures::stream::iter(0..items)
                .map(|_| model.request(UPDATE_LATENCY))
                .buffer_unordered(UPDATE_CONCURRENCY)
                .collect::<Vec<()>>()
                .await;
        } else {
            let items = coalesce(rows, &self.file).len();
            futures::stream::iter(0..items.div_ceil(STATEMENT_LIMIT))
                .map(|_| model.request(BATCH_LATENCY))
                .buffer_unordered(INSERT_CONCURRENCY)
                .collect::<Vec<()>>()
                .await;
        }
        Ok(Vec::new())
    }
}

/// Processes one generated file of `rows` rows through the real processor (fakes for
/// everything but the modelled writer), each invocation given `budget`, and prints
/// rows/s, invocations and the projected wall time of the two large files.
pub async fn run(
    kind: &str,
    rows: u64,
    budget: Duration,
    initial_backoff: Duration,
    workers: u32,
    chunk_mb: Option<u64>,
) -> anyhow::Result<()> {
    use s3imports_tests::fakes::FakeWorld;
    let model = Arc::new(Model {
        requests: AtomicU64::new(0),
        throttled: AtomicU64::new(0),
        initial_backoff,
        upserts: kind == "users-upserts",
        rng: Mutex::new(0),
    });
    let mut w = FakeWorld::new(11, 5);
    w.processor.writer = Arc::new(ModelWriter(model.clone()));
    // The Lambda's margin, scaled to the budget (it stops at most a quarter early).
    w.processor.settings.deadline_margin = Duration::from_secs(60);
    w.invocation_budget = Some(budget);
    w.processor.settings.chunk_bytes = chunk_mb.map(|mb| mb << 20);
    let kind_value = match kind {
        "users" | "users-upserts" => json!({"type": "registered_users"}),
        _ => json!({"type": "events", "event_name": "Purchase"}),
    };
    let config = crate::events_config("bench", "in", kind_value)?;
    w.configs.put(config, w.now());
    let mut csv = String::from(crate::HEADER);
    for i in 0..rows {
        let row = crate::row(i);
        if kind.starts_with("users") {
            // Each user once, as a first load: the sink inserts each (the bench's
            // shared rows name a user every 50,000 rows, which the real sink would
            // upsert the second time and this model would not).
            let rest = row.find(',').map_or("", |at| &row[at..]);
            csv.push_str(&format!("u{i}{rest}"));
        } else {
            csv.push_str(&row);
        }
    }
    let bytes = csv.len();
    w.source
        .put("bench", "in/bench_20261128.csv", csv.as_bytes());
    drop(csv);
    w.tick()
        .await
        .ok_or_else(|| anyhow::anyhow!("tick crashed"))??;
    let start = Instant::now();
    let deliveries = w.drive_parallel(workers).await;
    let secs = start.elapsed().as_secs_f64();
    let file = w
        .ledger
        .all_files()
        .into_iter()
        .find(|f| f.key == "in/bench_20261128.csv")
        .ok_or_else(|| anyhow::anyhow!("no file"))?;
    anyhow::ensure!(
        file.rows_ingested == rows,
        "{} of {rows} rows ingested after {deliveries} deliveries: {file:?}",
        file.rows_ingested
    );
    // Invocations: the file's own and every chunk's.
    let invocations: u32 = w
        .ledger
        .all_files()
        .iter()
        .filter(|f| f.key.starts_with("in/bench_20261128.csv"))
        .map(|f| f.invocations)
        .sum();
    let per_s = rows as f64 / secs;
    let large = if kind.starts_with("users") {
        5_000_000.0
    } else {
        50_000_000.0
    };
    println!(
        "{}",
        json!({
            "model": kind,
            "rows": rows,
            "bytes": bytes,
            "secs": secs,
            "rows_per_s": per_s,
            "invocations": invocations,
            "workers": workers,
            "chunks": file.chunks_total,
            "budget_s": budget.as_secs_f64(),
            "initial_backoff_ms": initial_backoff.as_millis(),
            "requests": model.requests.load(Ordering::Relaxed),
            "throttled": model.throttled.load(Ordering::Relaxed),
            "large_rows": large,
            "large_minutes": large / per_s / 60.0,
            // The file is held in memory by the fake source: not the Lambda's RSS.
            "peak_rss_mb": crate::peak_rss_mb(),
        })
    );
    Ok(())
}
