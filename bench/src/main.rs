//! `s3imports-bench`: the measurements behind `make bench` (scripts/bench.sh runs each
//! case in its own process, so peak RSS is per case).
//!
//! - `gen`: writes a CSV of about N MB.
//! - `pipeline`: the in-process processing path (read -> PGP -> CSV -> map -> items) with
//!   the DynamoDB write replaced by a counting sink.
//! - `decrypt`: the PGP stage alone, to /dev/null.
//! - `e2e`: rows/s and DynamoDB requests per 1,000 rows against moto, per import kind.
//! - `discovery`: requests and time to find 10 new files among N old ones in moto.
//! - `discovery-scale`: the same among a million, over the in-memory ports (`sweep.rs`).
//! - `model`: rows/s per worker with DynamoDB simulated by modelled latency, through
//!   checkpoints and continuations (see `model.rs` for the model).

mod model;
mod sweep;

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use chrono::{TimeZone, Utc};
use clap::{Parser, Subcommand};
use s3imports::codec::limits::Limits;
use s3imports::codec::pgp::{PgpKeyring, decrypt_to};
use s3imports::model::config::ImportConfig;
use s3imports::process::read::{Marks, Piece, ReadPlan, read_file};
use s3imports::rows::mapping::ColumnMapping;
use s3imports::rows::report::ReportWriter;
use s3imports::rows::sink::{Write as SinkWrite, WriteBuilder};
use s3imports::{Clock, FixedClock};
use serde_json::json;

// The processor Lambda's allocator, so the numbers are the Lambda's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Gen {
        #[arg(long)]
        mb: u64,
        #[arg(long)]
        out: PathBuf,
    },
    Pipeline {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long)]
        passphrase: Option<String>,
        #[arg(long)]
        signer: Option<PathBuf>,
        /// The plaintext's size, so MB/s is of data, whatever the wrapping.
        #[arg(long)]
        plain_bytes: Option<u64>,
        /// Also build each row's whole DynamoDB item, as the sink does before it sends.
        #[arg(long)]
        items: bool,
        /// A hostile file: failed rows (and a file that ends early) are the point, so
        /// they are reported instead of refused.
        #[arg(long)]
        hostile: bool,
        /// Leave out the plaintext's fingerprint (SHA-256), to measure what it costs.
        #[arg(long)]
        no_fingerprint: bool,
        /// The import kind (`events`, `registered_users`, `anonymous_users`,
        /// `auxiliary`).
        #[arg(long, default_value = "events")]
        kind: String,
        /// Also size each row's item as DynamoDB bills it (bytes, write units).
        #[arg(long)]
        units: bool,
    },
    Decrypt {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        passphrase: String,
    },
    E2e {
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Rows of each users file (the reload case upserts one a row, slow in moto).
        #[arg(long, default_value_t = 10_000)]
        user_rows: u64,
    },
    Discovery {
        #[arg(long, default_value_t = 100_000)]
        old: u64,
    },
    DiscoveryScale {
        #[arg(long, default_value_t = 1_000_000)]
        old: u64,
        /// A modelled `ListObjectsV2` request of 1,000 keys.
        #[arg(long, default_value_t = 150)]
        latency_ms: u64,
    },
    Model {
        /// `users` (a first load: every user new), `users-upserts` (every user already
        /// in the table) or `events`.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        rows: u64,
        /// Each invocation's time to its deadline (the Lambda's timeout).
        #[arg(long, default_value_t = 900.0)]
        budget_secs: f64,
        /// The retry's first backoff (default: the stack's; 1000 is the SDK's own).
        #[arg(long)]
        initial_backoff_ms: Option<u64>,
        /// Processor instances taking messages at once (a split file's chunks).
        #[arg(long, default_value_t = 1)]
        workers: u32,
        /// Split files above this many MB into chunks (`ChunkMB`); none when absent.
        #[arg(long)]
        chunk_mb: Option<u64>,
    },
}

const HEADER: &str = "customer_id,purchased_at,order_id,amount,email,city,items\n";

fn row(i: u64) -> String {
    format!(
        "u{},2026-11-{:02} {:02}:{:02}:{:02},o-{i},{}.{:02},user{}@example.com,City {},[a|b|c]\n",
        i % 50_000,
        1 + i % 28,
        i % 24,
        i % 60,
        (i * 7) % 60,
        i % 1000,
        i % 100,
        i % 50_000,
        i % 97
    )
}

fn events_config(
    bucket: &str,
    folder: &str,
    kind: serde_json::Value,
) -> anyhow::Result<ImportConfig> {
    let mut columns = vec![
        json!({"column": "order_id", "attribute": "order_id"}),
        json!({"column": "amount", "attribute": "amount", "type": "number"}),
        json!({"column": "email", "attribute": "email"}),
        json!({"column": "city", "attribute": "city"}),
        json!({"column": "items", "attribute": "items", "type": "list"}),
    ];
    match kind["type"].as_str() {
        Some("events") => {
            columns.push(json!({"column": "customer_id", "attribute": "user_id"}));
            columns.push(json!({"column": "purchased_at", "attribute": "event_time", "format": "YYYY-MM-DD hh:mm:ss"}));
        }
        Some("registered_users") => {
            columns.push(json!({"column": "customer_id", "attribute": "user_id"}))
        }
        _ => {}
    }
    Ok(ImportConfig::from_value(json!({
        "id": format!("bench-{}", kind["type"].as_str().unwrap_or("x").replace('_', "-")),
        "name": "Bench",
        "kind": kind,
        "source": {"bucket": bucket, "folder": folder, "datetime_format": "yyyymmdd", "file_prefix": "bench_"},
        "mapping": {"columns": columns},
        "schedule": {"type": "once"}
    }))?)
}

/// An import kind by its type's name, as the e2e case configures it.
fn kind_value(kind: &str) -> serde_json::Value {
    match kind {
        "registered_users" => json!({"type": "registered_users"}),
        "anonymous_users" => json!({"type": "anonymous_users", "identifier_column": "customer_id"}),
        "auxiliary" => {
            json!({"type": "auxiliary", "dataset": "orders", "key_column": "order_id", "retention_days": 30})
        }
        _ => json!({"type": "events", "event_name": "Purchase"}),
    }
}

/// Peak resident set size of this process, from /proc.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn keyring(
    key: Option<&PathBuf>,
    passphrase: Option<&str>,
    signer: Option<&PathBuf>,
) -> anyhow::Result<Option<PgpKeyring>> {
    let Some(key) = key else { return Ok(None) };
    let signer = signer.map(std::fs::read_to_string).transpose()?;
    Ok(Some(PgpKeyring::new(
        &std::fs::read_to_string(key)?,
        passphrase,
        signer.as_deref(),
    )?))
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Gen { mb, out } => {
            let mut w = BufWriter::new(std::fs::File::create(&out)?);
            w.write_all(HEADER.as_bytes())?;
            let (mut written, mut i) = (HEADER.len() as u64, 0u64);
            while written < mb * 1_000_000 {
                let r = row(i);
                w.write_all(r.as_bytes())?;
                written += r.len() as u64;
                i += 1;
            }
            w.flush()?;
            println!("{}", json!({"file": out, "bytes": written, "rows": i}));
        }
        Command::Pipeline {
            file,
            key,
            passphrase,
            signer,
            plain_bytes,
            items: build_items,
            hostile,
            no_fingerprint,
            kind,
            units,
        } => {
            let keys = keyring(key.as_ref(), passphrase.as_deref(), signer.as_ref())?;
            let config = events_config("bench", "in", kind_value(&kind))?;
            let mappings: Vec<ColumnMapping> = config
                .inline_columns()
                .map(<[_]>::to_vec)
                .unwrap_or_default();
            let now = Utc
                .with_ymd_and_hms(2026, 11, 28, 0, 0, 0)
                .single()
                .context("time")?;
            let builder =
                WriteBuilder::new(&config, &mappings, "in/bench_20261128.csv", "etag", now);
            let spool = tempfile::tempdir()?;
            let limits = Limits::default();
            let mut report =
                ReportWriter::new(tempfile::tempfile()?, limits.max_report_bytes, true);
            let marks = Marks {
                stop: AtomicBool::new(false),
                every: None,
            };
            let plan = ReadPlan {
                config: &config,
                mappings: &mappings,
                keyring: keys.as_ref(),
                key: "in/bench_20261128.csv",
                spool: spool.path(),
                builder: &builder,
                limits: &limits,
                from: None,
                staged: false,
                fingerprint: !no_fingerprint,
                marks: &marks,
            };
            let input = std::fs::File::open(&file)?;
            let bytes_in = input.metadata()?.len();
            let data_bytes = plain_bytes.unwrap_or(bytes_in);
            let (mut items, mut batches) = (0u64, 0u64);
            let (mut item_bytes, mut write_units) = (0u64, 0u64);
            let start = Instant::now();
            let file_attributes = builder.file_attributes().clone();
            let stats = read_file(&plan, input, &mut |piece| {
                let Piece::Rows { writes, failed } = piece else {
                    return true;
                };
                for errors in &failed {
                    report.row_failed(errors);
                }
                items += writes.len() as u64;
                batches += 1;
                if units {
                    for (_, write) in &writes {
                        let bytes =
                            s3imports::aws::sink::write_bytes(&file_attributes, write.clone());
                        item_bytes += bytes as u64;
                        write_units += s3imports::aws::item::write_units(bytes);
                    }
                }
                if build_items {
                    for (_, write) in writes {
                        if let SinkWrite::Put(attrs) = write {
                            // The item as the DynamoDB writer encodes it.
                            std::hint::black_box(s3imports::aws::sink::item_of(
                                &file_attributes,
                                attrs,
                            ));
                        }
                    }
                }
                true
            });
            let secs = start.elapsed().as_secs_f64();
            // A hostile file may also fail as a whole (e.g. past the plaintext limit).
            let (stats, failure) = match stats {
                Ok(s) => (s, None),
                Err(e) if hostile => (Default::default(), Some(e.to_string())),
                Err(e) => return Err(e.into()),
            };
            anyhow::ensure!(
                hostile || stats.rows_failed == 0,
                "{} rows failed",
                stats.rows_failed
            );
            let summary = report.finish();
            println!(
                "{}",
                json!({
                    "bytes_in": bytes_in, "plain_bytes": data_bytes, "rows": stats.rows_total, "items": items,
                    "rows_failed": stats.rows_failed, "report_bytes": summary.bytes,
                    "reason": stats.reason.or(failure),
                    "batches": batches, "secs": secs,
                    "mb_per_s": data_bytes as f64 / 1e6 / secs, "rows_per_s": stats.rows_total as f64 / secs,
                    "peak_rss_mb": peak_rss_mb(),
                    "item_bytes_per_row": units.then(|| item_bytes as f64 / items.max(1) as f64),
                    "write_units_per_row": units.then(|| write_units as f64 / items.max(1) as f64),
                })
            );
        }
        Command::Decrypt {
            file,
            key,
            passphrase,
        } => {
            let keys = keyring(Some(&key), Some(&passphrase), None)?.context("key")?;
            let input = std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(&file)?);
            let bytes_in = std::fs::metadata(&file)?.len();
            let start = Instant::now();
            let d = decrypt_to(input, std::io::sink(), &keys)?;
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{}",
                json!({"bytes_in": bytes_in, "plaintext": d.bytes, "secs": secs,
                       "mb_per_s": bytes_in as f64 / 1e6 / secs, "peak_rss_mb": peak_rss_mb()})
            );
        }
        Command::E2e { rows, user_rows } => {
            tokio::runtime::Runtime::new()?.block_on(e2e(rows, user_rows))?;
        }
        Command::Discovery { old } => tokio::runtime::Runtime::new()?.block_on(discovery(old))?,
        Command::DiscoveryScale { old, latency_ms } => {
            tokio::runtime::Runtime::new()?.block_on(sweep::at_scale(old, latency_ms))?
        }
        Command::Model {
            kind,
            rows,
            budget_secs,
            initial_backoff_ms,
            workers,
            chunk_mb,
        } => tokio::runtime::Runtime::new()?.block_on(model::run(
            &kind,
            rows,
            std::time::Duration::from_secs_f64(budget_secs),
            initial_backoff_ms.map_or(
                s3imports::aws::INITIAL_BACKOFF,
                std::time::Duration::from_millis,
            ),
            workers,
            chunk_mb,
        ))?,
    }
    Ok(())
}

async fn e2e(rows: u64, user_rows: u64) -> anyhow::Result<()> {
    let env = s3imports_tests::TestEnv::new().await;
    let bucket = env.scoped("bench");
    env.bucket(&bucket).await;
    let file = |n: u64| {
        let mut csv = String::from(HEADER);
        for i in 0..n {
            csv.push_str(&row(i));
        }
        csv
    };
    let kinds = [
        "events",
        "registered_users",
        // The same users again: each is there, so each is upserted alone.
        "registered_users_again",
        // Other new users, each also joining a segment (batched member writes).
        "registered_users_in_segment",
        "anonymous_users",
        "auxiliary",
    ]
    .map(|name| {
        let kind = name
            .trim_end_matches("_in_segment")
            .trim_end_matches("_again");
        (name, kind_value(kind))
    });
    let clock = FixedClock::new(Utc::now());
    for (name, kind) in kinds {
        let folder = format!("e2e-{name}");
        let n = if name.contains("users") {
            user_rows
        } else {
            rows
        };
        let mut body = file(n);
        if name.ends_with("in_segment") {
            // Users the table does not hold yet (`s…` instead of `u…`).
            body = body.replace("\nu", "\ns");
        }
        env.put_object(&bucket, &format!("{folder}/bench_20261128.csv"), body)
            .await;
        let mut config = events_config(&bucket, &folder, kind)?;
        if name.ends_with("_again") {
            config.id.push_str("-again");
        }
        if name.ends_with("in_segment") {
            config.id.push_str("-segment");
            config.segment = Some(s3imports::model::segment::SegmentRef {
                name: "bench".into(),
                description: None,
            });
        }
        let pipe = env.pipeline().await;
        pipe.configs.put(&config, clock.now()).await?;
        let start = Instant::now();
        let (_, messages, _) = pipe.run(&clock).await;
        let secs = start.elapsed().as_secs_f64();
        let f = pipe
            .processor
            .ledger
            .file(&config.id, &messages.first().context("no file")?.key)
            .await?
            .context("no ledger record")?;
        let requests = pipe.writer.requests();
        println!(
            "{}",
            json!({"kind": name, "rows": f.rows_total, "ingested": f.rows_ingested, "secs": secs,
                   "rows_per_s": f.rows_ingested as f64 / secs,
                   "requests_per_1000_rows": requests as f64 * 1000.0 / f.rows_ingested.max(1) as f64})
        );
    }
    Ok(())
}

/// Deletes every message in the queue (moto allows one purge a minute).
async fn drain(queue: &s3imports::aws::queue::SqsQueue) -> anyhow::Result<()> {
    loop {
        let got = queue.receive(None).await?;
        if got.is_empty() {
            return Ok(());
        }
        for m in &got {
            queue
                .delete(m.receipt.as_deref().unwrap_or_default())
                .await?;
        }
    }
}

async fn discovery(old: u64) -> anyhow::Result<()> {
    let env = s3imports_tests::TestEnv::new().await;
    let bucket = env.scoped("disc");
    env.bucket(&bucket).await;
    let day = |i: u64| {
        (Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
            + chrono::Duration::minutes(i as i64))
        .format("%Y%m%d%H%M%S")
        .to_string()
    };
    let put = |i: u64| {
        let s3 = env.clients.s3.clone();
        let bucket = bucket.clone();
        async move {
            s3.put_object()
                .bucket(&bucket)
                .key(format!("in/bench_{}.csv", day(i)))
                .body(b"ID\n1\n".to_vec().into())
                .send()
                .await
        }
    };
    let config = ImportConfig::from_value(json!({
        "id": "bench-discovery", "name": "Bench", "kind": {"type": "registered_users"},
        "source": {"bucket": bucket, "folder": "in", "datetime_format": "%Y%m%d%H%M%S", "file_prefix": "bench_"},
        "mapping": {"columns": [{"column": "ID", "attribute": "user_id"}]},
        "schedule": {"type": "every", "minutes": 5}
    }))?;
    let clock = FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0)
            .single()
            .context("time")?,
    );
    let pipe = env.pipeline().await;
    pipe.configs.put(&config, clock.now()).await?;
    // The old files arrive 2,000 at a time, each lot taken by a run (claimed in the
    // ledger, enqueued) whose messages are then dropped: moto's SQS scans the whole
    // queue on every send, so one run over all of them would measure moto.
    const LOT: u64 = 2_000;
    let start = Instant::now();
    let (mut next, mut runs, mut taken) = (0u64, 0u64, 0usize);
    while next < old {
        let lot = (next + LOT).min(old);
        while next < lot {
            let batch: Vec<_> = (next..(next + 64).min(lot)).map(put).collect();
            for r in futures::future::join_all(batch).await {
                r?;
            }
            next = (next + 64).min(lot);
        }
        let report = pipe.tick(&clock).await;
        let t = report.imports.first().context("a run did not start")?;
        anyhow::ensure!(t.reason.is_none(), "run failed: {:?}", t.reason);
        taken += t.files.len();
        runs += 1;
        drain(&pipe.queue).await?;
        clock.advance(chrono::Duration::minutes(5));
    }
    eprintln!(
        "{old} old files put and taken by {runs} runs ({taken} files) in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    anyhow::ensure!(taken as u64 == old, "the runs took {taken} of {old} files");
    for i in 0..10 {
        put(old + 1000 + i).await?;
    }
    let start = Instant::now();
    let report = pipe.tick(&clock).await;
    let secs = start.elapsed().as_secs_f64();
    let t = report.imports.first().context("no tick")?;
    println!(
        "{}",
        json!({"old_files": old, "new_files_found": t.files.len(), "list_requests": t.list_requests, "secs": secs})
    );
    Ok(())
}
