//! The processor's parts, one at a time, over the in-memory ports: `process::import`
//! (rows mapped, written or reported), `process::split` (a large file cut into chunks
//! that end it once) and `process::finish` (a run closed once, with one email). The
//! same paths run against moto in processor.rs and continuation.rs.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use s3imports::model::config::ImportConfig;
use s3imports::model::status::{FileStatus, RunStatus};
use s3imports::process::{Processed, RecordOutcome};
use s3imports_tests::fakes::FakeWorld;

const BUCKET: &str = "acme";

/// A world with one events import of `folder` and its files, ticked once.
async fn world(files: &[(&str, String)]) -> FakeWorld {
    let w = FakeWorld::new(11, 5);
    let config = ImportConfig::from_value(serde_json::json!({
        "id": "imp",
        "name": "imp",
        "kind": {"type": "events", "event_name": "Purchase"},
        "source": {"bucket": BUCKET, "folder": "in", "datetime_format": "yyyymmdd"},
        "mapping": {"columns": [
            {"column": "customer_id", "attribute": "user_id"},
            {"column": "at", "attribute": "event_time", "format": "YYYY-MM-DD hh:mm:ss"},
            {"column": "amount", "attribute": "amount", "type": "number"}
        ]},
        "schedule": {"type": "once"},
        "notifications": {"recipients": ["ops@example.com"]}
    }))
    .unwrap();
    w.configs.put(config, w.now());
    for (name, body) in files {
        w.source.put(BUCKET, &format!("in/{name}"), body.as_bytes());
    }
    w.tick().await.unwrap().unwrap();
    w
}

fn events(rows: u64) -> String {
    let mut csv = String::from("customer_id,at,amount\n");
    for i in 0..rows {
        csv.push_str(&format!("u{i},2026-11-27 09:00:00,{i}\n"));
    }
    csv
}

#[tokio::test]
async fn import_writes_the_good_rows_and_reports_the_bad_one() {
    let csv = "customer_id,at,amount\nu1,2026-11-27 09:00:00,1\nu2,2026-11-27 09:00:00,lots\nu3,2026-11-27 09:00:00,3\n";
    let w = world(&[("Purchase_20261127.csv", csv.to_string())]).await;
    let drive = w.drive(10).await;
    assert!(
        matches!(
            drive.outcomes.as_slice(),
            [RecordOutcome::File(
                _,
                Processed::Done {
                    rows_total: 3,
                    rows_ingested: 2,
                    rows_failed: 1,
                    ..
                }
            )]
        ),
        "{drive:?}"
    );
    let f = &w.ledger.all_files()[0];
    assert_eq!(f.status, FileStatus::PartiallySucceeded);
    assert!(f.report_key.is_some(), "the bad row is reported: {f:?}");
    assert_eq!(w.writer.table("events").len(), 2);
}

#[tokio::test]
async fn split_cuts_a_large_file_into_chunks_that_end_it_once() {
    let w = world(&[("Purchase_20261127.csv", events(1_000))]).await;
    let mut p = w.worker("worker-1", Duration::from_secs(120));
    p.settings.chunk_bytes = Some(8 * 1024);
    let drive = w.drive_with(&p, 50).await;
    let splits = drive
        .outcomes
        .iter()
        .filter(|o| matches!(o, RecordOutcome::File(_, Processed::Split { .. })))
        .count();
    let chunks = drive
        .outcomes
        .iter()
        .filter(|o| matches!(o, RecordOutcome::File(_, Processed::ChunkDone { .. })))
        .count();
    let f = w
        .ledger
        .all_files()
        .into_iter()
        .find(|f| f.key == "in/Purchase_20261127.csv")
        .unwrap();
    assert_eq!(splits, 1, "{drive:?}");
    assert_eq!(chunks as u32, f.chunks_total, "{drive:?}");
    assert!(f.chunks_total >= 2, "{f:?}");
    assert_eq!((f.status, f.rows_total), (FileStatus::Succeeded, 1_000));
    assert_eq!(w.writer.table("events").len(), 1_000);
}

#[tokio::test]
async fn finish_closes_the_run_once_with_one_email() {
    let w = world(&[
        ("Purchase_20261127.csv", events(3)),
        ("Purchase_20261128.csv", events(4)),
    ])
    .await;
    w.drive(20).await;
    let run = &w.ledger.all_runs()[0];
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!((run.files_done, run.rows_ingested), (2, 7));
    assert!(run.notified);
    assert_eq!(w.mailer.sent().len(), 1, "one email a run");
    // A delivery of a finished file again changes nothing and sends nothing.
    w.drive(20).await;
    assert_eq!(w.mailer.sent().len(), 1);
}
