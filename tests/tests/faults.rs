//! Recovery under injected faults, over the in-memory fakes of every port (no moto):
//! throttling on every port, a crash after each step of a file, discovery stopping
//! between claiming files and enqueuing them, and a lease lost mid-file. Each test
//! prints its figures; each fails when the recovery code it covers is removed.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;
use std::time::Duration;

use s3imports::model::config::ImportConfig;
use s3imports::model::ledger::FileOutcome;
use s3imports::model::status::FileStatus;
use s3imports::model::values::Value;
use s3imports::ports::Segments as _;
use s3imports::ports::{FileMessage, LedgerReads as _};
use s3imports::process::Processed;
use s3imports::process::delivery::Delivery;
use s3imports::process::error::ProcessError;
use s3imports_tests::fakes::{Crash, FakeWorld};

const BUCKET: &str = "acme";

fn config(
    id: &str,
    kind: serde_json::Value,
    folder: &str,
    schedule: serde_json::Value,
) -> ImportConfig {
    let mut columns = vec![serde_json::json!({"column": "customer_id", "attribute": "user_id"})];
    if kind["type"] == "events" {
        columns.push(serde_json::json!({"column": "at", "attribute": "event_time", "format": "YYYY-MM-DD hh:mm:ss"}));
    }
    columns.push(serde_json::json!({"column": "amount", "attribute": "amount", "type": "number"}));
    ImportConfig::from_value(serde_json::json!({
        "id": id,
        "name": id,
        "kind": kind,
        "source": {"bucket": BUCKET, "folder": folder, "datetime_format": "yyyymmdd"},
        "mapping": {"columns": columns},
        "schedule": schedule,
        "notifications": {"recipients": ["ops@example.com"]}
    }))
    .unwrap()
}

fn events() -> serde_json::Value {
    serde_json::json!({"type": "events", "event_name": "Purchase"})
}

fn users() -> serde_json::Value {
    serde_json::json!({"type": "registered_users"})
}

/// `rows` events (row numbers 2..=rows+1), amount = row number.
fn events_csv(rows: u64) -> String {
    let mut csv = String::from("customer_id,at,amount\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "u{},2026-11-27 09:{:02}:00,{}\n",
            i % 37,
            i % 60,
            i + 2
        ));
    }
    csv
}

/// `rows` user rows over 40 users, amount = row number: the later row wins.
fn users_csv(rows: u64) -> String {
    let mut csv = String::from("customer_id,amount\n");
    for i in 0..rows {
        csv.push_str(&format!("u{},{}\n", i % 40, i + 2));
    }
    csv
}

/// The `FilesProcessed` points the services wrote.
fn finished_points(w: &FakeWorld) -> usize {
    w.emf
        .lines()
        .iter()
        .filter(|l| l.contains("\"FilesProcessed\":1"))
        .count()
}

/// A world with one import and its files, ticked once (no faults yet).
async fn world_with(
    max_receives: u32,
    kind: serde_json::Value,
    files: &[(&str, String)],
) -> FakeWorld {
    let w = FakeWorld::new(7, max_receives);
    let folder = "in";
    w.configs.put(
        config("imp", kind, folder, serde_json::json!({"type": "once"})),
        w.now(),
    );
    for (name, body) in files {
        w.source
            .put(BUCKET, &format!("{folder}/{name}"), body.as_bytes());
    }
    let report = w.tick().await.unwrap().unwrap();
    assert_eq!(report.imports[0].files.len(), files.len(), "{report:?}");
    w
}

/// Every event row is in the table exactly once (one item per row, by its key).
fn assert_events_once(w: &FakeWorld, rows: u64) {
    let table = w.writer.table("events");
    let seen: BTreeSet<i64> = table
        .values()
        .map(|item| match item.get("s3i_row") {
            Some(Value::Integer(r)) => *r,
            other => panic!("s3i_row: {other:?}"),
        })
        .collect();
    assert_eq!(table.len() as u64, rows, "one item per row");
    assert_eq!(seen, (2..rows as i64 + 2).collect(), "every row");
}

/// Every user holds the amount of its last row.
fn assert_users_last_row_wins(w: &FakeWorld, rows: u64) {
    let table = w.writer.table("users");
    assert_eq!(table.len(), 40);
    for u in 0..40u64 {
        let last = (0..rows).filter(|i| i % 40 == u).max().unwrap() + 2;
        assert_eq!(
            table[&format!("u{u}")].get("amount"),
            Some(&Value::Number(last as f64)),
            "u{u}"
        );
    }
}

/// Every file final with counts that add up, every run closed with its totals and
/// notified, and exactly one email per run.
fn assert_runs_complete(w: &FakeWorld, expect_rows: u64) {
    let files = w.ledger.all_files();
    let mut total = 0;
    for f in &files {
        assert_eq!(f.status, FileStatus::Succeeded, "{f:?}");
        assert_eq!(f.rows_ingested + f.rows_failed, f.rows_total, "{f:?}");
        total += f.rows_ingested;
    }
    assert_eq!(total, expect_rows, "rows ingested");
    // A run that found no new files sends no email.
    let runs: Vec<_> = w
        .ledger
        .all_runs()
        .into_iter()
        .filter(|r| r.files_total > 0)
        .collect();
    for r in &runs {
        assert!(r.notified, "{r:?}");
        assert_eq!(r.files_done, r.files_total, "{r:?}");
        let files_of_run: Vec<_> = files.iter().filter(|f| f.run_id == r.run_id).collect();
        assert_eq!(
            r.rows_ingested,
            files_of_run.iter().map(|f| f.rows_ingested).sum::<u64>(),
            "{r:?}"
        );
    }
    // Never more than one finished-file metric per file, however often its message
    // came back (a crash right after the outcome is recorded loses the point).
    assert!(finished_points(w) <= files.len(), "FilesProcessed points");
    let emails = w.mailer.sent();
    assert_eq!(
        emails.len(),
        runs.len(),
        "one email per run: {:#?}",
        emails.iter().map(|e| &e.1.subject).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn twenty_percent_of_every_port_call_throttled_loses_no_row() {
    let w = world_with(200, events(), &[("Purchase_20261127.csv", events_csv(600))]).await;
    // A users import beside it, in the same world.
    w.configs.put(
        config(
            "imp-users",
            users(),
            "users",
            serde_json::json!({"type": "once"}),
        ),
        w.now(),
    );
    w.source.put(
        BUCKET,
        "users/registered_user_data_20261127.csv",
        users_csv(300).as_bytes(),
    );
    w.tick().await.unwrap().unwrap();

    w.faults.throttle(20);
    let drive = w.drive(2_000).await;
    println!(
        "20% throttled: {} port calls, {} throttled, {} deliveries ({} retried), {} row writes applied",
        w.faults.total_calls(),
        w.faults.throttled(),
        drive.deliveries,
        drive.retries,
        w.writer.applied()
    );
    assert!(w.faults.throttled() > 20, "the faults were injected");
    assert!(w.queue.is_empty(), "every message done: {drive:?}");
    assert_events_once(&w, 600);
    assert_users_last_row_wins(&w, 300);
    assert_runs_complete(&w, 900);
    // Throttles crash nothing: every file's point, once.
    assert_eq!(finished_points(&w), w.ledger.all_files().len());
}

/// One crash at `at` while a 250-row events file is processed, then SQS's redelivery.
async fn crash_then_redeliver(at: Crash) {
    let w = world_with(5, events(), &[("Purchase_20261127.csv", events_csv(250))]).await;
    w.faults.crash(at.clone());
    let drive = w.drive(20).await;
    println!(
        "crash {at:?}: {} deliveries, {} crashed, {} retried, {} row writes applied for 250 rows",
        drive.deliveries,
        drive.crashes,
        drive.retries,
        w.writer.applied()
    );
    assert_eq!(drive.crashes, 1, "the crash happened: {drive:?}");
    assert!(w.queue.is_empty(), "{drive:?}");
    assert_events_once(&w, 250);
    assert_runs_complete(&w, 250);
}

#[tokio::test]
async fn a_crash_after_the_lease_is_taken_over_when_it_runs_out() {
    crash_then_redeliver(Crash::After("ledger.start_file", 1)).await;
}

#[tokio::test]
async fn a_crash_mid_write_rewrites_the_same_items() {
    crash_then_redeliver(Crash::Before("writer.write", 2)).await;
}

#[tokio::test]
async fn a_crash_after_the_writes_before_the_outcome_counts_each_row_once() {
    crash_then_redeliver(Crash::Before("ledger.finish_file", 1)).await;
}

#[tokio::test]
async fn a_crash_after_the_outcome_before_the_email_still_sends_one_email() {
    crash_then_redeliver(Crash::After("ledger.finish_file", 1)).await;
}

#[tokio::test]
async fn a_crash_after_taking_the_email_sends_it_when_that_lease_runs_out() {
    crash_then_redeliver(Crash::After("ledger.close_run", 1)).await;
}

#[tokio::test]
async fn a_users_file_crashed_mid_write_still_ends_with_the_later_rows() {
    let w = world_with(
        5,
        users(),
        &[("registered_user_data_20261127.csv", users_csv(1000))],
    )
    .await;
    // Users are written 400 rows a call: the third call is the file's last.
    w.faults.crash(Crash::Before("writer.write", 3));
    let drive = w.drive(20).await;
    assert_eq!(drive.crashes, 1);
    assert_users_last_row_wins(&w, 1000);
    assert_runs_complete(&w, 1000);
}

#[tokio::test]
async fn a_retryable_email_failure_sends_it_on_the_redelivery() {
    let w = world_with(5, events(), &[("Purchase_20261127.csv", events_csv(10))]).await;
    w.faults.fail_nth("mailer.send", 1);
    let drive = w.drive(20).await;
    println!(
        "email throttled once: {} deliveries, {} retried",
        drive.deliveries, drive.retries
    );
    // The failed sender gave its claim back: the redelivery sends it at once.
    assert_eq!(drive.retries, 1, "{drive:?}");
    assert_runs_complete(&w, 10);
}

#[tokio::test]
async fn a_retried_email_does_not_send_the_runs_summary_again() {
    let w = world_with(5, events(), &[("Purchase_20261127.csv", events_csv(10))]).await;
    w.faults.fail_nth("mailer.send", 1);
    let drive = w.drive(20).await;
    assert_eq!(drive.retries, 1, "{drive:?}");
    assert_runs_complete(&w, 10);
    // Published once, before the email that failed; recorded on the run.
    assert_eq!(w.alerts.published().len(), 1);
    let run = &w.ledger.all_runs()[0];
    assert!(run.alerts.as_ref().unwrap().deliveries[0].delivered);
}

#[tokio::test]
async fn a_summary_sns_refuses_is_retried_then_recorded_and_the_email_goes_out() {
    let w = world_with(5, events(), &[("Purchase_20261127.csv", events_csv(10))]).await;
    for n in 1..=3 {
        w.faults.fail_nth("alerts.publish", n);
    }
    let drive = w.drive(20).await;
    assert_eq!(drive.retries, 0, "{drive:?}");
    assert_runs_complete(&w, 10);
    let sent = w.ledger.all_runs()[0].alerts.clone().unwrap();
    assert_eq!(sent.deliveries[0].attempts, 3, "{sent:?}");
    assert!(!sent.deliveries[0].delivered);
    assert_eq!(w.mailer.sent().len(), 1);
}

#[tokio::test]
async fn files_claimed_by_a_tick_that_stopped_before_enqueuing_are_sent_by_a_later_tick() {
    let w = FakeWorld::new(7, 5);
    w.configs.put(
        config(
            "imp",
            events(),
            "in",
            serde_json::json!({"type": "every", "minutes": 20}),
        ),
        w.now(),
    );
    for day in 25..28 {
        w.source.put(
            BUCKET,
            &format!("in/Purchase_202611{day}.csv"),
            events_csv(20).as_bytes(),
        );
    }
    w.advance(chrono::Duration::minutes(20));
    // The tick stops after its second claim: files claimed, no message sent.
    w.faults.crash(Crash::After("ledger.claim_file", 2));
    assert!(w.tick().await.is_none(), "the tick crashed");
    assert!(w.queue.is_empty());
    let stranded: Vec<_> = w
        .ledger
        .all_files()
        .into_iter()
        .filter(|f| f.status == FileStatus::Queued)
        .collect();
    assert!(stranded.len() >= 2, "{stranded:?}");

    // The next run, 20 minutes later: the claimed files are sent again.
    w.advance(chrono::Duration::minutes(20));
    let report = w.tick().await.unwrap().unwrap();
    let t = &report.imports[0];
    println!(
        "tick after the crash: {} new, {} sent again",
        t.files.len(),
        t.requeued.len()
    );
    assert_eq!(t.files.len() + t.requeued.len(), 3, "{report:?}");
    assert_eq!(t.requeued.len(), stranded.len(), "{report:?}");
    w.drive(20).await;
    assert!(
        w.ledger
            .all_files()
            .iter()
            .all(|f| f.status == FileStatus::Succeeded),
        "{:#?}",
        w.ledger.all_files()
    );
    assert_eq!(w.writer.table("events").len(), 60);
    assert_runs_complete(&w, 60);
    // And a later run lists nothing again.
    w.advance(chrono::Duration::minutes(20));
    let report = w.tick().await.unwrap().unwrap();
    assert!(report.imports[0].files.is_empty() && report.imports[0].requeued.is_empty());
}

#[tokio::test]
async fn a_lease_lost_mid_file_refuses_the_late_workers_writes_and_outcome() {
    let w = world_with(
        5,
        users(),
        &[("registered_user_data_20261127.csv", users_csv(2000))],
    )
    .await;
    let msg: FileMessage =
        serde_json::from_str(w.queue.receive(1)[0].body.as_deref().unwrap()).unwrap();
    // Worker 1 writes slowly (one batch at a time for users) and heartbeats every
    // 100 ms on a 300 ms lease.
    w.faults.delay("writer.write", Duration::from_millis(150));
    let w1 = w.worker("worker-1", Duration::from_millis(300));
    let w2 = w.worker("worker-2", Duration::from_secs(120));
    let clock = w.clock.clone();
    let first = {
        let (w1, msg, clock) = (w1.clone(), msg.clone(), clock.clone());
        tokio::spawn(async move {
            let delivery = Delivery {
                receive_count: 1,
                last: false,
                receipt: None,
                deadline: None,
                ..Default::default()
            };
            w1.process(&msg, &delivery, clock.as_ref()).await
        })
    };
    while w.faults.calls("writer.write") < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Worker 1 stalls past its lease; worker 2 gets the message again and takes over.
    w.advance(chrono::Duration::seconds(5));
    let writes_before = w.faults.calls("writer.write");
    let second = w2
        .process(
            &msg,
            &Delivery {
                receive_count: 2,
                last: false,
                receipt: None,
                deadline: None,
                ..Default::default()
            },
            w.clock.as_ref(),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            second,
            Processed::Done {
                status: FileStatus::Succeeded,
                ..
            }
        ),
        "{second:?}"
    );
    let lost = first.await.unwrap();
    assert!(
        matches!(lost, Err(ProcessError::Busy { .. })),
        "worker 1 stopped: {lost:?}"
    );
    let w2_writes = 2000u64.div_ceil(s3imports::process::settings::SEQUENTIAL_BATCH_ROWS as u64);
    let late_writes = w.faults.calls("writer.write") - writes_before - w2_writes;
    println!("lease lost: worker 1 made {late_writes} write call(s) after worker 2 took over");
    assert!(
        late_writes <= 1,
        "at most the write in flight when the lease was lost"
    );
    // Worker 1's outcome, had it got that far, is refused: the file is worker 2's.
    let refused = w1
        .finish(
            &msg,
            Some("worker-1"),
            FileOutcome::failed("late"),
            w.clock.as_ref(),
        )
        .await
        .unwrap();
    assert!(matches!(refused, Processed::Skipped { .. }), "{refused:?}");
    let file = w.ledger.file("imp", &msg.key).await.unwrap().unwrap();
    assert_eq!(file.status, FileStatus::Succeeded);
    assert_eq!(file.rows_ingested, 2000);
    assert_users_last_row_wins(&w, 2000);
    assert_runs_complete(&w, 2000);
}

#[tokio::test]
async fn a_crash_mid_file_resumes_from_the_last_checkpoint_not_row_one() {
    let w = world_with(5, events(), &[("Purchase_20261127.csv", events_csv(2_000))]).await;
    // A checkpoint after every batch of 100 rows; the worker dies before its 15th write.
    let mut p = w.worker("worker-1", Duration::from_secs(120));
    p.settings.checkpoint_every = Some(Duration::ZERO);
    p.settings.writes_in_flight = 1;
    w.faults.crash(Crash::Before("writer.write", 15));
    let drive = w.drive_with(&p, 20).await;
    println!(
        "crash at batch 15 of 20 with checkpoints: {} deliveries, {} row writes applied for 2,000 rows",
        drive.deliveries,
        w.writer.applied()
    );
    assert_eq!(drive.crashes, 1, "{drive:?}");
    // Resumed after batch 14: no batch before it was written again (from row 1, the
    // 1,400 rows before the crash would have been written twice).
    assert_eq!(w.writer.applied(), 2_000);
    let f = &w.ledger.all_files()[0];
    assert_eq!(f.invocations, 2);
    assert_events_once(&w, 2_000);
    assert_runs_complete(&w, 2_000);
}

/// A file split into chunks, delivered with `crash` injected: every row once, the file
/// closed once with the chunks' counts, one email.
async fn chunks_with(crash: Crash) {
    let w = world_with(5, events(), &[("Purchase_20261127.csv", events_csv(2_000))]).await;
    let mut p = w.worker("worker-1", Duration::from_secs(120));
    p.settings.chunk_bytes = Some(8 * 1024);
    w.faults.crash(crash.clone());
    let drive = w.drive_with(&p, 100).await;
    let files = w.ledger.all_files();
    let file = files
        .iter()
        .find(|f| f.key == "in/Purchase_20261127.csv")
        .unwrap();
    println!(
        "chunks, crash {crash:?}: {} chunks, {} deliveries, {} crashed, {} row writes applied",
        file.chunks_total,
        drive.deliveries,
        drive.crashes,
        w.writer.applied()
    );
    assert_eq!(drive.crashes, 1, "{drive:?}");
    assert!(w.queue.is_empty(), "{drive:?}");
    assert!(file.chunks_total >= 4, "{file:?}");
    assert_eq!(file.chunks_done, file.chunks_total);
    assert_eq!(file.status, FileStatus::Succeeded, "{file:?}");
    assert_eq!((file.rows_total, file.rows_ingested), (2_000, 2_000));
    assert_events_once(&w, 2_000);
    let run = &w.ledger.all_runs()[0];
    assert_eq!((run.files_done, run.rows_ingested), (1, 2_000), "{run:?}");
    assert_eq!(w.mailer.sent().len(), 1);
}

#[tokio::test]
async fn a_crash_mid_chunk_is_taken_over_and_the_file_closes_once() {
    chunks_with(Crash::Before("writer.write", 7)).await;
}

#[tokio::test]
async fn a_crash_before_the_split_file_is_closed_closes_it_on_the_redelivery() {
    chunks_with(Crash::Before("ledger.finish_file", 1)).await;
}

#[tokio::test]
async fn a_crash_after_the_split_before_the_chunks_are_sent_sends_them_on_the_redelivery() {
    chunks_with(Crash::After("ledger.split_file", 1)).await;
}

#[tokio::test]
async fn a_retryable_segment_recount_failure_ends_the_run_on_the_redelivery() {
    let w = FakeWorld::new(7, 5);
    let mut value = serde_json::to_value(config(
        "imp",
        users(),
        "in",
        serde_json::json!({"type": "once"}),
    ))
    .unwrap();
    value["segment"] = serde_json::json!({"name": "VIP"});
    w.configs
        .put(ImportConfig::from_value(value).unwrap(), w.now());
    w.source.put(
        BUCKET,
        "in/registered_user_data_20261127.csv",
        b"customer_id,amount\nu1,1\nu2,2\n",
    );
    w.tick().await.unwrap().unwrap();
    w.faults.fail_nth("segments.recount", 1);
    let drive = w.drive(20).await;
    // The recount failed before the email: the claim to send it was given back, and
    // the redelivery recounted and sent it, once.
    assert_eq!(drive.retries, 1, "{drive:?}");
    assert_runs_complete(&w, 2);
    let sent = w.mailer.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].1.text.contains("Segment: VIP"),
        "{}",
        sent[0].1.text
    );
    let segment = w.segments.list().await.unwrap();
    assert_eq!(segment[0].imports, vec!["imp".to_string()]);
    assert!(segment[0].counted_at.is_some());
}
