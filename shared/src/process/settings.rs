//! How the processor works: batch sizes, writes in flight, chunking, leases.

use std::path::PathBuf;
use std::time::Duration;

use crate::codec::limits::Limits;

/// Rows per batch handed from the reading thread to the writer.
pub const BATCH_ROWS: usize = 100;
/// Rows per batch of users and auxiliary data, whose batches are written one at a time
/// (rows naming the same item, merged in row order, never race): four event batches'
/// worth, so one batch keeps as many requests in flight as events do.
pub const SEQUENTIAL_BATCH_ROWS: usize = BATCH_ROWS * DEFAULT_WRITES_IN_FLIGHT;
/// A batch is handed on sooner when its rows reach this many bytes, so memory between
/// reader and writer is bounded by bytes (about `CHANNEL_DEPTH` + `WRITES_IN_FLIGHT`
/// batches), not by a row count that large rows would multiply.
pub(super) const BATCH_BYTES: usize = 1 << 20;
/// Batches in flight between reader and writer: the bound that keeps memory flat.
pub(super) const CHANNEL_DEPTH: usize = 8;
/// Event batches being written at once by default (`WRITES_IN_FLIGHT`, the stack's
/// `WritesInFlight`); with the sink's own concurrency, up to 16 `BatchWriteItem`s in
/// flight per file.
pub const DEFAULT_WRITES_IN_FLIGHT: usize = 4;
pub const ENV_WRITES_IN_FLIGHT: &str = "S3IMPORTS_WRITES_IN_FLIGHT";
/// The largest mapping file read.
pub(super) const MAX_MANIFEST_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct ProcessorSettings {
    /// Identifies this worker's leases.
    pub worker_id: String,
    /// How long a lease lasts without a heartbeat.
    pub lease: Duration,
    /// Where decrypted plaintext and reports are spooled (Lambda: /tmp).
    pub spool_dir: PathBuf,
    /// After this many starts without finishing (timeouts, crashes), the file fails.
    pub max_attempts: u32,
    /// Row, plaintext and report bounds.
    pub limits: Limits,
    /// How long a message stays invisible while its file is worked on; extended on
    /// every heartbeat, so a dead worker's file is taken over within this time.
    pub visibility: Duration,
    /// The first retry's delay after a retryable failure; it doubles per receive, up
    /// to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Taken off the invocation's deadline: the time to write what is in flight,
    /// record a checkpoint and send the continuation.
    pub deadline_margin: Duration,
    /// How often a long invocation records a checkpoint, so a crash loses at most
    /// this much work; None: only at the deadline.
    pub checkpoint_every: Option<Duration>,
    /// Event batches written at once per file.
    pub writes_in_flight: usize,
    /// A plain file of more than this many bytes is split into chunks of about this
    /// size for parallel workers (`ChunkMB`); None: never split.
    pub chunk_bytes: Option<u64>,
    /// The most chunks a file is split into (larger chunks beyond).
    pub max_chunks: usize,
}

pub const ENV_CHUNK_MB: &str = "S3IMPORTS_CHUNK_MB";
pub const DEFAULT_CHUNK_MB: u64 = 64;

impl Default for ProcessorSettings {
    fn default() -> Self {
        Self {
            worker_id: uuid::Uuid::new_v4().to_string(),
            lease: Duration::from_secs(120),
            spool_dir: std::env::temp_dir(),
            max_attempts: 5,
            limits: Limits::from_env(),
            visibility: Duration::from_secs(180),
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(900),
            deadline_margin: Duration::from_secs(60),
            checkpoint_every: Some(Duration::from_secs(120)),
            writes_in_flight: std::env::var(ENV_WRITES_IN_FLIGHT)
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_WRITES_IN_FLIGHT),
            chunk_bytes: Some(
                std::env::var(ENV_CHUNK_MB)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or(DEFAULT_CHUNK_MB)
                    << 20,
            ),
            max_chunks: 64,
        }
    }
}

impl ProcessorSettings {
    /// The lease as a span of ledger time.
    pub fn lease_span(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::minutes(2))
    }

    /// How long a message waits after its `receive_count`th delivery failed retryably:
    /// `retry_base` doubling per receive, at most `retry_max`.
    pub fn retry_delay(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(16);
        (self.retry_base * 2u32.pow(doublings)).min(self.retry_max)
    }
}
