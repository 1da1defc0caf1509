//! Contention as DynamoDB produces it, over moto through the strict layer: 20 files of
//! one run and the 8 chunks of one of them finish at once, while every partition takes
//! few writes a second (a segment's members share one) and transactions on one item
//! conflict. Every row lands once, the counts add up, one email goes out, and no
//! delivery fails: conflicts and throttling are waited out in place.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use chrono::{TimeZone, Utc};
use s3imports::FixedClock;
use s3imports::model::status::{FileStatus, RunStatus};
use serde_json::json;

const SMALL_FILES: usize = 19;
const SMALL_ROWS: usize = 10;
const CHUNK_BYTES: u64 = 2048;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_files_and_eight_chunks_finishing_at_once_under_throttling() {
    let (env, bucket, mut w) = s3imports_tests::stage("acme-exports").await;
    let mut rows = 0;
    for f in 0..SMALL_FILES {
        let mut body = String::from("ID,Age\n");
        for r in 0..SMALL_ROWS {
            body.push_str(&format!("s{f:02}-{r:02},{}\n", 20 + r));
            rows += 1;
        }
        env.put_object(
            &bucket,
            &format!("in/registered_user_data_202611{:02}.csv", f + 1),
            body,
        )
        .await;
    }
    let big_key = "in/registered_user_data_20261127.csv";
    let mut big = String::from("ID,Age\n");
    while big.len() < 8 * CHUNK_BYTES as usize - 64 {
        big.push_str(&format!("big-{rows:05},{}\n", 20 + rows % 50));
        rows += 1;
    }
    env.put_object(&bucket, big_key, big).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
    w.put_config(
        s3imports_tests::users_config(&env, "users", "in", json!({"segment": {"name": "hot"}})),
        t0,
    )
    .await;
    w.processor.settings.chunk_bytes = Some(CHUNK_BYTES);
    // DynamoDB's behaviour, tightened: few writes a second on any partition (the
    // segment's members all share one), and transactions holding their items long
    // enough for the run's and the split file's items to conflict.
    env.contention(json!({
        "partition_write_units_per_second": 150,
        "transaction_hold_ms": 25
    }));
    let later = FixedClock::new(t0);
    let report = w.tick(&later).await;
    eprintln!("{report:?}");
    let mut round = 0;
    let mut failed_deliveries = 0;
    loop {
        let messages = w.take_messages().await;
        eprintln!("round {round}: {} messages", messages.len());
        if messages.is_empty() {
            break;
        }
        round += 1;
        assert!(round <= 4, "the queue keeps filling");
        let deliveries = messages.iter().enumerate().map(|(i, m)| {
            w.process_as(
                format!("worker-{round}-{i}"),
                std::slice::from_ref(m),
                &later,
            )
        });
        let responses = futures::future::join_all(deliveries).await;
        for (m, r) in messages.iter().zip(&responses) {
            if !r.batch_item_failures.is_empty() {
                failed_deliveries += 1;
                let file = w
                    .processor
                    .ledger
                    .file("users", &m.ledger_key())
                    .await
                    .unwrap();
                eprintln!("a delivery failed: {file:?}");
                // As SQS would: the message comes back.
                s3imports::ports::Queue::send_all(&w.queue, std::slice::from_ref(m))
                    .await
                    .unwrap();
            }
        }
    }
    let stats = env.strict_stats();
    eprintln!("contention: {stats}");
    assert!(
        stats["throttled"].as_u64().unwrap_or(0) > 0,
        "the partitions were throttled: {stats}"
    );
    assert!(
        stats["conflicts"].as_u64().unwrap_or(0) > 0,
        "transactions conflicted: {stats}"
    );
    assert_eq!(
        failed_deliveries, 0,
        "contention failed a delivery ({stats})"
    );

    let run_id = w
        .processor
        .ledger
        .file("users", big_key)
        .await
        .unwrap()
        .unwrap()
        .run_id;
    let run = w
        .processor
        .ledger
        .run("users", &run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!((run.files_total, run.files_done), (20, 20));
    assert_eq!((run.rows_ingested, run.rows_failed), (rows as u64, 0));
    for f in w
        .processor
        .ledger
        .run_files("users", &run_id)
        .await
        .unwrap()
    {
        assert_eq!(f.status, FileStatus::Succeeded, "{f:?}");
    }
    let big = w
        .processor
        .ledger
        .file("users", big_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(big.chunks_total, 8);
    assert_eq!(env.scan(&env.stack.users_table).await.len(), rows);
    let members = env
        .scan(&env.stack.segments_table)
        .await
        .into_iter()
        .filter(|m| m["segment"].as_s().is_ok_and(|s| s == "hot"))
        .count();
    assert_eq!(members, rows, "every user joined the segment once");
    assert_eq!(env.sent_emails().await.len(), 1, "one email for the run");
}
