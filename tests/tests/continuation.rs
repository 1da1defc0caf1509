//! Files that outlast an invocation, against moto through the processor handler: with
//! a tiny time budget each invocation stops after its first batch, records a
//! checkpoint and sends a continuation, and the file ends with exactly the items,
//! counts and failed-rows report of a run in one invocation.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use s3imports::model::ledger::FileRecord;
use s3imports::model::status::FileStatus;
use s3imports::ports::{FileMessage, LedgerReads as _, Queue as _};
use s3imports::{Clock, FixedClock};
use s3imports_tests::clock;
use s3imports_tests::{Pipeline, TestEnv};

struct World {
    env: TestEnv,
    bucket: String,
    pipe: Pipeline,
}

async fn world() -> World {
    let (env, bucket, mut pipe) = s3imports_tests::stage("acme-exports").await;
    // The deadline is the budget: no margin, so a tiny budget stops after one batch.
    pipe.processor.settings.deadline_margin = Duration::ZERO;
    World { env, bucket, pipe }
}

fn config(w: &World, id: &str, kind: serde_json::Value, folder: &str) -> serde_json::Value {
    let mut columns = vec![serde_json::json!({"column": "customer_id", "attribute": "user_id"})];
    if kind["type"] == "events" {
        columns.push(
            serde_json::json!({"column": "at", "attribute": "event_time", "format": "YYYY-MM-DD hh:mm:ss"}),
        );
    }
    columns.push(serde_json::json!({"column": "amount", "attribute": "amount", "type": "number"}));
    serde_json::json!({
        "id": id,
        "name": id,
        "kind": kind,
        "source": {"bucket": w.bucket, "folder": folder, "datetime_format": "yyyymmdd"},
        "mapping": {"columns": columns},
        "schedule": {"type": "once"},
        "notifications": {"recipients": [w.env.recipient()]}
    })
}

/// Events with a bad amount every 97th row, a quoted line break now and then, CRLF.
fn events_csv(rows: u64) -> String {
    let mut csv = String::from("customer_id,at,amount\r\n");
    for i in 0..rows {
        let amount = if i % 97 == 5 {
            "x".to_string()
        } else {
            (i + 2).to_string()
        };
        let user = if i % 13 == 0 {
            format!("\"u{}\r\nnext\"", i % 37)
        } else {
            format!("u{}", i % 37)
        };
        csv.push_str(&format!(
            "{user},2026-11-27 09:{:02}:00,{amount}\r\n",
            i % 60
        ));
    }
    csv
}

impl World {
    /// One tick, then the file's message split with chunks of [`CHUNK_BYTES`]: the
    /// chunks' messages (at least two), the last chunk first.
    async fn chunks_last_first(&mut self, c: &FixedClock) -> Vec<FileMessage> {
        self.pipe.tick(c).await;
        self.pipe.processor.settings.chunk_bytes = Some(CHUNK_BYTES);
        let file = self.pipe.take_messages().await;
        assert!(
            self.pipe
                .process(&file, c)
                .await
                .batch_item_failures
                .is_empty()
        );
        let mut chunks = self.pipe.take_messages().await;
        assert!(chunks.len() >= 2, "{} chunks", chunks.len());
        chunks.sort_by_key(|m| std::cmp::Reverse(m.chunk));
        chunks
    }

    async fn file(&self, import_id: &str, key: &str) -> FileRecord {
        self.env
            .ledger()
            .file(import_id, key)
            .await
            .unwrap()
            .unwrap()
    }

    /// Every item of a table (the test tables hold one page).
    async fn scan(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.env.scan(table).await
    }

    /// The keys in the stack's reports bucket that contain `part`.
    async fn reports_bucket_keys(&self, part: &str) -> Vec<String> {
        let out = self
            .env
            .clients
            .s3
            .list_objects_v2()
            .bucket(&self.env.stack.reports_bucket)
            .send()
            .await
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key())
            .filter(|k| k.contains(part))
            .map(str::to_string)
            .collect()
    }

    /// The events of a file by row: each item's attributes, without the ones that
    /// name the import or file.
    async fn events_of(&self, file: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        self.scan(&self.env.stack.events_table)
            .await
            .iter()
            .filter(|i| i.get("s3i_file").and_then(|v| v.as_s().ok()) == Some(&file.to_string()))
            .map(|i| {
                let row = i["s3i_row"].as_n().unwrap().clone();
                let attrs = i
                    .iter()
                    .filter(|(k, _)| {
                        !["s3i_file", "s3i_import_id", "event_key", "s3i_updated_at"]
                            .contains(&k.as_str())
                    })
                    .map(|(k, v)| (k.clone(), show(v)))
                    .collect();
                (row, attrs)
            })
            .collect()
    }
}

/// The same events file (450 rows, 5 bad) for two imports, `whole` and `other`, each
/// in a folder of its name; returns their messages after a tick.
async fn twin_files(
    w: &World,
    c: &FixedClock,
    other: &str,
) -> (Vec<FileMessage>, Vec<FileMessage>) {
    let csv = events_csv(450);
    for id in ["whole", other] {
        let kind = serde_json::json!({"type": "events", "event_name": "Purchase"});
        w.pipe.put_config(config(w, id, kind, id), c.now()).await;
        w.env
            .put_object(
                &w.bucket,
                &format!("{id}/Purchase_20261127.csv"),
                csv.clone(),
            )
            .await;
    }
    w.pipe.tick(c).await;
    let messages = w.pipe.take_messages().await;
    assert_eq!(messages.len(), 2);
    messages.into_iter().partition(|m| m.import_id == "whole")
}

fn show(v: &AttributeValue) -> String {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn a_file_with_a_tiny_time_budget_ends_as_one_invocation_would() {
    let w = world().await;
    let c = clock();
    // The same file for two imports: one read in one invocation, one in many.
    let (whole, pieces) = twin_files(&w, &c, "pieces").await;
    let response = w.pipe.process(&whole, &c).await;
    assert!(response.batch_item_failures.is_empty());
    // The other file's message goes back on the queue, to be drained with a budget.
    w.pipe.queue.send_all(&pieces).await.unwrap();
    let invocations = w
        .pipe
        .drain_within(&c, Duration::from_millis(1), u32::MAX)
        .await;
    println!("450 rows over {invocations} invocations");
    assert!(invocations >= 3, "{invocations} invocations");

    let one = w.file("whole", &whole[0].key).await;
    let many = w.file("pieces", &pieces[0].key).await;
    assert_eq!(one.invocations, 1);
    assert_eq!(many.invocations, invocations);
    assert_eq!(many.status, FileStatus::PartiallySucceeded, "{many:?}");
    assert_eq!(
        (many.rows_total, many.rows_ingested, many.rows_failed),
        (one.rows_total, one.rows_ingested, one.rows_failed)
    );
    assert_eq!((many.rows_total, many.rows_failed), (450, 5));
    assert_eq!(many.reason, one.reason);
    // The report is one CSV, as the one invocation wrote it, and its parts are gone.
    let (one_report, many_report) = (
        w.env.report(one.report_key.as_deref().unwrap()).await,
        w.env.report(many.report_key.as_deref().unwrap()).await,
    );
    assert_eq!(many_report, one_report);
    assert_eq!(
        many_report.lines().filter(|l| l.contains("amount")).count(),
        5
    );
    let parts = w.reports_bucket_keys(".part-").await;
    assert!(parts.is_empty(), "{parts:?}");
    // Exactly the items of the one-invocation run, row for row.
    let (a, b) = (w.events_of(&one.key).await, w.events_of(&many.key).await);
    assert_eq!(a.len(), 445);
    assert_eq!(b, a);
    // One email for each run, with the same totals.
    let emails = w.env.sent_emails().await;
    assert_eq!(emails.len(), 2, "{emails:?}");
}

#[tokio::test]
async fn a_gzipped_users_file_resumes_by_streaming_again_and_the_later_row_wins() {
    let w = world().await;
    let c = clock();
    w.pipe
        .put_config(
            config(
                &w,
                "users",
                serde_json::json!({"type": "registered_users"}),
                "users",
            ),
            c.now(),
        )
        .await;
    // 40 users, each named in many batches: the last row of each must win.
    let mut csv = String::from("customer_id,amount\n");
    for i in 0..1200u64 {
        csv.push_str(&format!("u{},{}\n", i % 40, i + 2));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
    w.env
        .put_object(
            &w.bucket,
            "users/registered_user_data_20261127.csv.gz",
            gz.finish().unwrap(),
        )
        .await;
    w.pipe.tick(&c).await;
    let budget = Duration::from_millis(1);
    assert_eq!(w.pipe.drain_within(&c, budget, 1).await, 1);
    // In flight: `runs` shows the rows so far and the invocations taken (users are
    // read 400 rows to a batch).
    let f = w
        .file("users", "users/registered_user_data_20261127.csv.gz")
        .await;
    let p = f.in_flight().unwrap();
    assert_eq!(
        (p.rows_so_far, p.rows_ingested, p.invocations),
        (400, 400, 1)
    );
    let invocations = 1 + w.pipe.drain_within(&c, budget, u32::MAX).await;
    assert!(invocations >= 3, "{invocations} invocations");
    let f = w
        .file("users", "users/registered_user_data_20261127.csv.gz")
        .await;
    assert_eq!(f.status, FileStatus::Succeeded, "{f:?}");
    assert_eq!(
        (f.rows_total, f.rows_ingested, f.invocations),
        (1200, 1200, invocations)
    );
    let items = w.scan(&w.env.stack.users_table).await;
    assert_eq!(items.len(), 40);
    for item in &items {
        let user: u64 = show(&item["user_id"])[1..].parse().unwrap();
        let last = (0..1200u64).filter(|i| i % 40 == user).max().unwrap() + 2;
        assert_eq!(show(&item["amount"]), last.to_string(), "{item:?}");
    }
}

/// Chunks of about 4 KB: the test files split into several.
const CHUNK_BYTES: u64 = 4096;

#[tokio::test]
async fn a_file_split_into_chunks_for_concurrent_workers_ends_as_one_read_would() {
    let mut w = world().await;
    let c = clock();
    let (whole, chunked) = twin_files(&w, &c, "chunked").await;
    assert!(
        w.pipe
            .process(&whole, &c)
            .await
            .batch_item_failures
            .is_empty()
    );
    w.pipe.processor.settings.chunk_bytes = Some(CHUNK_BYTES);
    // The file's message splits it and sends one message per chunk.
    assert!(
        w.pipe
            .process(&chunked, &c)
            .await
            .batch_item_failures
            .is_empty()
    );
    let chunks = w.pipe.take_messages().await;
    assert!(chunks.len() >= 4, "{} chunks", chunks.len());
    assert!(
        chunks
            .iter()
            .all(|m| m.chunk.is_some() && m.key == chunked[0].key)
    );
    let split = w.file("chunked", &chunked[0].key).await;
    assert_eq!(split.chunks_total as usize, chunks.len());
    assert_eq!(split.status, FileStatus::Processing);
    // One chunk first: the API's runs show the file in flight.
    let (first, rest) = chunks.split_first().unwrap();
    assert!(
        w.pipe
            .process(std::slice::from_ref(first), &c)
            .await
            .batch_item_failures
            .is_empty()
    );
    let api = s3imports_preview::Api::from_env(
        &w.env.role_clients(s3imports_tests::Role::Preview),
        &w.env.stack,
    );
    let body = s3imports_tests::api_call(&api, "GET", "/imports/chunked/runs", None)
        .await
        .body;
    let in_flight = &body["runs"][0]["files"][0]["in_flight"];
    let first_rows = w
        .file(
            "chunked",
            &s3imports::model::ledger::chunk_key(&chunked[0].key, 0),
        )
        .await
        .rows_total;
    assert_eq!(in_flight["chunks_done"], 1, "{body}");
    assert_eq!(in_flight["chunks_total"], chunks.len(), "{body}");
    assert_eq!(in_flight["rows_so_far"], first_rows, "{body}");
    // The rest at once, each its own invocation.
    let responses = futures::future::join_all(rest.iter().enumerate().map(|(i, m)| {
        w.pipe
            .process_as(format!("instance-{i}"), std::slice::from_ref(m), &c)
    }))
    .await;
    assert!(responses.iter().all(|r| r.batch_item_failures.is_empty()));

    let one = w.file("whole", &whole[0].key).await;
    let many = w.file("chunked", &chunked[0].key).await;
    assert_eq!(many.status, FileStatus::PartiallySucceeded, "{many:?}");
    assert_eq!(many.chunks_done, many.chunks_total);
    assert_eq!(
        (many.rows_total, many.rows_ingested, many.rows_failed),
        (one.rows_total, one.rows_ingested, one.rows_failed)
    );
    assert_eq!(many.reason, one.reason);
    assert_eq!(
        w.env.report(many.report_key.as_deref().unwrap()).await,
        w.env.report(one.report_key.as_deref().unwrap()).await
    );
    let (a, b) = (w.events_of(&one.key).await, w.events_of(&many.key).await);
    assert_eq!(a.len(), 445);
    assert_eq!(b, a);
    // One email per run, the chunked file's once all its chunks ended.
    assert_eq!(w.env.sent_emails().await.len(), 2);
    // The chunks' own reports are gone once joined.
    let chunk_reports = w.reports_bucket_keys(".chunk-").await;
    assert!(chunk_reports.is_empty(), "{chunk_reports:?}");
}

#[tokio::test]
async fn a_user_named_in_two_chunks_keeps_the_later_row_whatever_order_they_end_in() {
    let mut w = world().await;
    let c = clock();
    let mut users = config(
        &w,
        "users",
        serde_json::json!({"type": "registered_users"}),
        "users",
    );
    users["mapping"]["columns"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"column": "note", "attribute": "note"}));
    w.pipe.put_config(users, c.now()).await;
    // u0 first and last; the rest once each. The last row leaves `note` empty: the
    // first row's note stays, as in a sequential read.
    let mut csv = String::from("customer_id,amount,note\n");
    for i in 0..1_000u64 {
        let (user, note) = match i {
            0 => (0, "first"),
            999 => (0, ""),
            _ => (i, "x"),
        };
        csv.push_str(&format!("u{user},{},{note}\n", i + 2));
    }
    w.env
        .put_object(&w.bucket, "users/registered_user_data_20261127.csv", csv)
        .await;
    // The last chunk ends first; the first chunk's older row for u0 comes after it.
    let chunks = w.chunks_last_first(&c).await;
    // A worker killed mid-chunk (its invocation dropped) is taken over once its lease
    // runs out: nothing lost or doubled.
    let killed = chunks[1].clone();
    let _ = tokio::time::timeout(
        Duration::from_millis(20),
        w.pipe.process(std::slice::from_ref(&killed), &c),
    )
    .await;
    let later = FixedClock::new(c.now() + chrono::Duration::minutes(5));
    let mut other = w.pipe.processor.clone();
    other.settings.worker_id = "worker-2".into();
    for m in &chunks {
        let response = s3imports_processor::handler(
            &other,
            &w.pipe.dlq_name,
            &later,
            s3imports::process::delivery::DEFAULT_MAX_RECEIVES,
            s3imports_tests::sqs_event(&[(m.clone(), 2)]),
        )
        .await
        .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    let f = w
        .file("users", "users/registered_user_data_20261127.csv")
        .await;
    assert_eq!(f.status, FileStatus::Succeeded, "{f:?}");
    assert_eq!((f.rows_total, f.rows_ingested), (1_000, 1_000));
    let items = w.scan(&w.env.stack.users_table).await;
    assert_eq!(items.len(), 999);
    for item in &items {
        let user: u64 = show(&item["user_id"])[1..].parse().unwrap();
        let expect = if user == 0 { 1_001 } else { user + 2 };
        assert_eq!(show(&item["amount"]), expect.to_string(), "{item:?}");
        let note = if user == 0 { "first" } else { "x" };
        assert_eq!(show(&item["note"]), note, "{item:?}");
    }
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn a_gzipped_file_is_staged_for_its_chunks_and_the_staging_is_gone_in_every_outcome() {
    let mut w = world().await;
    let c = clock();
    let all_bad = events_csv(450).replace(",2026-11-27", ",not a date");
    let files = [
        ("good", events_csv(450).replace(",x\r\n", ",1\r\n")),
        ("partial", events_csv(450)),
        ("failed", all_bad),
    ];
    for (id, csv) in &files {
        w.pipe
            .put_config(
                config(
                    &w,
                    id,
                    serde_json::json!({"type": "events", "event_name": "Purchase"}),
                    id,
                ),
                c.now(),
            )
            .await;
        w.env
            .put_object(
                &w.bucket,
                &format!("{id}/Purchase_20261127.csv.gz"),
                gzip(csv),
            )
            .await;
    }
    w.pipe.tick(&c).await;
    w.pipe.processor.settings.chunk_bytes = Some(CHUNK_BYTES);
    let messages = w.pipe.take_messages().await;
    assert!(
        w.pipe
            .process(&messages, &c)
            .await
            .batch_item_failures
            .is_empty()
    );
    // Staged while the chunks run.
    assert_eq!(w.reports_bucket_keys("staging/").await.len(), 3);
    let chunks = w.pipe.take_messages().await;
    assert!(chunks.len() >= 9, "{} chunks", chunks.len());
    let responses = futures::future::join_all(chunks.iter().enumerate().map(|(i, m)| {
        w.pipe
            .process_as(format!("instance-{i}"), std::slice::from_ref(m), &c)
    }))
    .await;
    assert!(responses.iter().all(|r| r.batch_item_failures.is_empty()));
    let status = |id: &'static str| {
        let w = &w;
        async move { w.file(id, &format!("{id}/Purchase_20261127.csv.gz")).await }
    };
    let good = status("good").await;
    assert_eq!(
        (good.status, good.rows_ingested),
        (FileStatus::Succeeded, 450),
        "{good:?}"
    );
    let partial = status("partial").await;
    assert_eq!(
        partial.status,
        FileStatus::PartiallySucceeded,
        "{partial:?}"
    );
    assert_eq!((partial.rows_total, partial.rows_failed), (450, 5));
    let failed = status("failed").await;
    assert_eq!(failed.status, FileStatus::Failed, "{failed:?}");
    assert_eq!((failed.rows_total, failed.rows_failed), (450, 450));
    // The staged plaintext is gone in every outcome.
    assert!(w.reports_bucket_keys("staging/").await.is_empty());
    assert_eq!(w.events_of(&partial.key).await.len(), 445);
}

#[tokio::test]
async fn a_file_that_cannot_be_split_still_finishes_by_continuation() {
    let mut w = world().await;
    let c = clock();
    w.pipe
        .put_config(
            config(
                &w,
                "quoted",
                serde_json::json!({"type": "events", "event_name": "Purchase"}),
                "quoted",
            ),
            c.now(),
        )
        .await;
    // Row 4 opens a quote that is never closed: the rest of the file is one field,
    // so there is no row boundary to cut at after it.
    let mut csv = String::from("customer_id,at,amount\n");
    for i in 0..450 {
        let quote = if i == 3 { "\"" } else { "" };
        csv.push_str(&format!("{quote}u{i},2026-11-27 09:00:00,{i}\n"));
    }
    w.env
        .put_object(&w.bucket, "quoted/Purchase_20261127.csv", csv)
        .await;
    w.pipe.tick(&c).await;
    w.pipe.processor.settings.chunk_bytes = Some(CHUNK_BYTES);
    let invocations = w
        .pipe
        .drain_within(&c, Duration::from_millis(1), u32::MAX)
        .await;
    let f = w.file("quoted", "quoted/Purchase_20261127.csv").await;
    assert_eq!(f.chunks_total, 0, "not split: {f:?}");
    assert_eq!(f.invocations, invocations);
    assert_eq!(f.status, FileStatus::PartiallySucceeded, "{f:?}");
    assert_eq!(
        (f.rows_total, f.rows_ingested, f.rows_failed),
        (4, 3, 1),
        "{f:?}"
    );
    assert!(
        f.reason
            .as_deref()
            .unwrap_or_default()
            .contains("never closed"),
        "{f:?}"
    );
}

/// A row too wide for one update expression, in a file split into chunks: each of its
/// updates carries the later-row-wins condition, so the later row still wins
/// attribute by attribute whichever chunk ends first.
#[tokio::test]
async fn a_wide_user_in_two_chunks_keeps_the_later_row_in_every_attribute() {
    // Past one expression with the condition's row attributes (about 170 columns).
    const WIDE: usize = 200;
    let mut w = world().await;
    let c = clock();
    let mut users = config(
        &w,
        "wide",
        serde_json::json!({"type": "registered_users"}),
        "wide",
    );
    let columns = users["mapping"]["columns"].as_array_mut().unwrap();
    let mut header = String::from("customer_id,amount");
    for i in 0..WIDE {
        columns.push(
            serde_json::json!({"column": format!("c{i}"), "attribute": format!("attr_{i:03}")}),
        );
        header.push_str(&format!(",c{i}"));
    }
    w.pipe.put_config(users, c.now()).await;
    // u0 first (old values) and last (new ones, `c7` left empty: the old one stays).
    let row = |user: u64, amount: u64, tag: &str, skip: Option<usize>| {
        let mut r = format!("u{user},{amount}");
        for i in 0..WIDE {
            if skip == Some(i) {
                r.push(',');
            } else {
                r.push_str(&format!(",{tag}{i}"));
            }
        }
        r + "\n"
    };
    let mut csv = header + "\n";
    csv.push_str(&row(0, 1, "old", None));
    for i in 1..8u64 {
        csv.push_str(&row(i, i, "x", None));
    }
    csv.push_str(&row(0, 2, "new", Some(7)));
    w.env
        .put_object(&w.bucket, "wide/registered_user_data_20261127.csv", csv)
        .await;
    // The last chunk (the newer u0) ends first.
    let chunks = w.chunks_last_first(&c).await;
    for m in &chunks {
        assert!(
            w.pipe
                .process(std::slice::from_ref(m), &c)
                .await
                .batch_item_failures
                .is_empty()
        );
    }
    let f = w
        .file("wide", "wide/registered_user_data_20261127.csv")
        .await;
    assert_eq!(f.status, FileStatus::Succeeded, "{f:?}");
    assert_eq!((f.rows_total, f.rows_ingested), (9, 9));
    let items = w.scan(&w.env.stack.users_table).await;
    let u0 = items.iter().find(|i| show(&i["user_id"]) == "u0").unwrap();
    assert_eq!(show(&u0["amount"]), "2");
    for i in 0..WIDE {
        let want = if i == 7 {
            format!("old{i}")
        } else {
            format!("new{i}")
        };
        assert_eq!(show(&u0[&format!("attr_{i:03}")]), want, "attr_{i:03}");
    }
}
