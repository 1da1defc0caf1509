//! Message visibility against moto, through the processor's record handler with real
//! receipt handles: a retryable failure comes back after its backoff (not after the
//! queue's visibility timeout), a dead worker's file is taken over within the
//! visibility extension, and row values never reach the logs, even at `trace`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use s3imports::model::status::FileStatus;
use s3imports::process::RecordOutcome;
use s3imports::process::delivery::Delivery;
use s3imports::{Clock, SystemClock};
use s3imports_tests::{Pipeline, TestEnv};
use tracing_subscriber::layer::SubscriberExt as _;

const KEY: &str = "aux/aux_data_20261127.csv";

struct World {
    env: TestEnv,
    bucket: String,
    pipe: Pipeline,
    url: String,
}

async fn world() -> World {
    let (env, bucket, pipe) = s3imports_tests::stage("redelivery").await;
    let url = pipe.queue.url().await.unwrap();
    World {
        env,
        bucket,
        pipe,
        url,
    }
}

impl World {
    /// An auxiliary import of `sku,price` files; `csv` queued by one tick.
    async fn queue_file(&self, csv: String) {
        self.env.put_object(&self.bucket, KEY, csv).await;
        self.queue_config().await;
    }

    /// Puts the import's config and runs one tick, which queues what the folder holds.
    async fn queue_config(&self) {
        self.pipe
            .put_config(
                serde_json::json!({
                    "id": "aux",
                    "name": "Prices",
                    "kind": {"type": "auxiliary", "dataset": "prices", "key_column": "sku", "retention_days": 30},
                    "source": {"bucket": self.bucket, "folder": "aux", "datetime_format": "yyyymmdd"},
                    "mapping": {"columns": [{"column": "price", "attribute": "price", "type": "string"}]},
                    "schedule": {"type": "once"}
                }),
                SystemClock.now(),
            )
            .await;
        self.pipe.tick(&SystemClock).await;
    }

    /// Receives one message as a worker whose queue had a 15-minute visibility
    /// timeout, waiting up to `wait` for one to be visible.
    async fn receive(&self, wait: Duration) -> Option<Delivery> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = self
                .env
                .clients
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .visibility_timeout(900)
                .wait_time_seconds(i32::try_from(left.as_secs().min(2)).unwrap())
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            if let Some(m) = got.messages().first() {
                let record = s3imports::aws::queue::queued(m);
                return Some(record);
            }
            if left.is_zero() {
                return None;
            }
        }
    }

    async fn handle(&self, record: &Delivery) -> RecordOutcome {
        s3imports::process::handle(&self.pipe.processor, &SystemClock, 5, record).await
    }
}

/// A file held by another worker's lease is handed back with its visibility set to
/// when that lease ends, so it comes back in seconds, not after the 15 minutes the
/// receive asked for.
#[tokio::test]
async fn a_retryable_failure_comes_back_after_its_backoff() {
    let w = world().await;
    w.queue_file(rows(3)).await;
    let record = w.receive(Duration::from_secs(5)).await.unwrap();
    // Another worker holds the file for two more seconds.
    let now = SystemClock.now();
    w.pipe
        .processor
        .ledger
        .start_file(
            "aux",
            KEY,
            None,
            "someone-else",
            now + chrono::Duration::seconds(2),
            now,
        )
        .await
        .unwrap();
    let started = Instant::now();
    assert!(matches!(w.handle(&record).await, RecordOutcome::Retry(_)));
    assert!(
        w.receive(Duration::ZERO).await.is_none(),
        "invisible while the lease runs"
    );
    let again = w.receive(Duration::from_secs(30)).await;
    let waited = started.elapsed();
    assert!(again.is_some(), "the message came back");
    assert!(
        waited < Duration::from_secs(30),
        "back after the lease (2 s) and its margin (5 s), not 900 s: {waited:?}"
    );
}

/// A worker that dies mid-file: its message was kept invisible only in short
/// extensions, so it comes back within seconds here (the stack: 3 minutes, not the
/// queue's 90), the lease has run out, and the next delivery finishes the file with
/// every row exactly once.
#[tokio::test]
async fn a_dead_workers_file_is_taken_over_within_the_extension() {
    let mut w = world().await;
    let settings = &mut w.pipe.processor.settings;
    settings.lease = Duration::from_secs(1);
    settings.visibility = Duration::from_secs(3);
    w.queue_file(rows(3000)).await;
    let record = w.receive(Duration::from_secs(5)).await.unwrap();
    // The worker "crashes" a moment into the file (its future is dropped mid-write).
    let crashed = tokio::time::timeout(Duration::from_millis(400), w.handle(&record)).await;
    assert!(
        crashed.is_err(),
        "the worker was still writing when it died"
    );
    let died = Instant::now();
    let again = w
        .receive(Duration::from_secs(30))
        .await
        .expect("the message comes back");
    assert!(
        died.elapsed() < Duration::from_secs(15),
        "taken over after the visibility extension, not 900 s: {:?}",
        died.elapsed()
    );
    // The lease has run out by now: the second delivery takes the file over.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    match w.handle(&again).await {
        RecordOutcome::File(_, s3imports::process::Processed::Done { status, .. }) => {
            assert_eq!(status, FileStatus::Succeeded);
        }
        other => panic!("{other:?}"),
    }
    let f = w
        .pipe
        .processor
        .ledger
        .file("aux", KEY)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((f.rows_total, f.rows_ingested, f.attempts), (3000, 3000, 2));
    let items = w
        .env
        .clients
        .dynamodb
        .scan()
        .table_name(&w.env.stack.auxiliary_table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(items.count(), 3000);
}

/// Captures log lines in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// At `trace` (the most anyone can ask for with `RUST_LOG`), the logs show the work
/// being done but never a row's value: not the items written, not the failed-rows
/// report uploaded, not the email.
#[tokio::test(flavor = "current_thread")]
async fn row_values_never_reach_the_logs_even_at_trace() {
    let w = world().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("trace"))
        .with(s3imports::telemetry::body_cap())
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(move || writer.clone()),
        );
    let _guard = tracing::subscriber::set_default(subscriber);
    // One good row and one whose key is missing (it goes to the report).
    w.queue_file("sku,price\ns1,SECRET-PRICE-VALUE\n,SECRET-FAILED-ROW\n".into())
        .await;
    let record = w.receive(Duration::from_secs(5)).await.unwrap();
    assert!(matches!(w.handle(&record).await, RecordOutcome::File(..)));
    drop(_guard);
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(
        logs.len() > 10_000,
        "trace logging was on: {} bytes",
        logs.len()
    );
    assert!(logs.contains("file finished"), "our own lines are there");
    for value in ["SECRET-PRICE-VALUE", "SECRET-FAILED-ROW"] {
        let at = logs
            .find(value)
            .map(|i| &logs[i.saturating_sub(300)..(i + 100).min(logs.len())]);
        assert!(at.is_none(), "{value} logged: {at:?}");
    }
}

fn rows(n: usize) -> String {
    let mut csv = String::from("sku,price\n");
    for i in 0..n {
        csv.push_str(&format!("s{i},{i}\n"));
    }
    csv
}

/// A file uploaded in parts (with a composite checksum, as the AWS CLI and SDKs upload
/// large files) imports without the SDK's "part-level checksum" warning on each read.
#[tokio::test(flavor = "current_thread")]
async fn a_multipart_upload_reads_without_a_checksum_warning() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
    let w = world().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("warn"))
        .with(s3imports::telemetry::body_cap())
        .with(tracing_subscriber::fmt::layer().with_writer(move || writer.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    // Two parts: S3 wants at least 5 MiB in every part but the last (here six rows
    // with a padding column the mapping leaves out).
    let mut first = b"sku,price,pad\n".to_vec();
    for i in 0..6 {
        first.extend_from_slice(format!("s{i},{i},{}\n", "p".repeat(1_000_000)).as_bytes());
    }
    let s3 = &w.env.clients.s3;
    let upload = s3
        .create_multipart_upload()
        .bucket(&w.bucket)
        .key(KEY)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let mut parts = Vec::new();
    for (n, body) in [(1, first), (2, b"s6,6,p\n".to_vec())] {
        let part = s3
            .upload_part()
            .bucket(&w.bucket)
            .key(KEY)
            .upload_id(id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(body.into())
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(part.e_tag().map(str::to_string))
                .set_checksum_crc32(part.checksum_crc32().map(str::to_string))
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(&w.bucket)
        .key(KEY)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    // The object as S3 stored it: read it through the import.
    w.queue_config().await;
    let record = w.receive(Duration::from_secs(5)).await.unwrap();
    match w.handle(&record).await {
        RecordOutcome::File(_, s3imports::process::Processed::Done { status, .. }) => {
            assert_eq!(status, FileStatus::Succeeded);
        }
        other => panic!("{other:?}"),
    }
    drop(_guard);
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(!logs.contains("part-level checksum"), "{logs}");
}
