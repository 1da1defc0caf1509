//! Replaying a file under its own name: `POST /imports/{id}/files/replay` and
//! `s3imports replay` against moto. The earlier outcome stays in the history, the
//! replay records who, when and why, a file in flight is refused, and events keep
//! their ids (a replay adds no duplicate events).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use s3imports::FixedClock;
use s3imports_preview::Api;
use s3imports_tests::{API_CALLER, TestEnv, api_call, s3imports};
use serde_json::{Value, json};

const KEY: &str = "events/purchases_20261128.csv";

fn events(env: &TestEnv, amount_type: &str) -> Value {
    json!({
        "id": "purchases",
        "name": "Purchases",
        "kind": {"type": "events", "event_name": "Purchase"},
        "source": {"bucket": env.scoped("acme-exports"), "folder": "events", "file_prefix": "purchases_", "datetime_format": "yyyymmdd"},
        "mapping": {"columns": [
            {"column": "customer_id", "attribute": "user_id"},
            {"column": "at", "attribute": "event_time", "format": "YYYY-MM-DD hh:mm:ss"},
            {"column": "amount", "attribute": "amount", "type": amount_type}
        ]},
        "schedule": {"type": "daily", "time": "09:00"}
    })
}

async fn replay(api: &Api, body: Value) -> (u16, Value) {
    let a = api_call(api, "POST", "/imports/purchases/files/replay", Some(&body)).await;
    (a.status, a.body)
}

#[tokio::test]
async fn a_replay_keeps_the_history_records_why_and_adds_no_duplicate_events() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    env.put_object(&bucket, KEY, "customer_id,at,amount\nc1,2026-11-28 10:00:00,10\nc2,2026-11-28 10:05:00,ten\nc3,2026-11-28 11:00:00,30\n")
        .await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
    let clock = Arc::new(FixedClock::new(t0));
    w.put_config(events(&env, "number"), t0).await;
    let (_, first_messages, _) = w.run(clock.as_ref()).await;
    let first = w
        .processor
        .ledger
        .file("purchases", KEY)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.rows_ingested, first.rows_failed), (2, 1));
    assert_eq!(env.scan(&env.stack.events_table).await.len(), 2);

    let mut api = Api::from_env(
        &env.role_clients(s3imports_tests::Role::Preview),
        &env.stack,
    );
    api.clock = clock.clone();
    // A reason is required; only a file the import has run can be replayed.
    let (status, body) = replay(&api, json!({"key": KEY, "reason": " "})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = replay(
        &api,
        json!({"key": "events/purchases_20261127.csv", "reason": "x"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // The mapping was wrong: `amount` holds text. Fixed, the file is replayed.
    clock.advance(Duration::hours(1));
    w.put_config(
        events(&env, "string"),
        s3imports::Clock::now(clock.as_ref()),
    )
    .await;
    let why = "amount is free text: mapping fixed (TICKET-42)";
    let (status, started) = replay(&api, json!({"key": KEY, "reason": why})).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["previous_run_id"], first.run_id.as_str());
    assert_eq!(started["previous_status"], "partially_succeeded");
    assert_eq!(started["requested_by"], API_CALLER);
    let run_id = started["run_id"].as_str().unwrap().to_string();

    // Queued, not yet processed: a second replay is refused, naming the run.
    let (status, body) = replay(&api, json!({"key": KEY, "reason": why})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["run_id"], run_id.as_str());
    assert_eq!(body["status"], "queued");

    let messages = w.take_messages().await;
    assert_eq!(messages.len(), 1);
    // A late copy of the first run's message (SQS delivers at least once) finds the
    // file in the replay's run: it neither takes it nor counts it in the first run.
    let stale = w.process(&first_messages, clock.as_ref()).await;
    assert!(stale.batch_item_failures.is_empty());
    let first_run = w
        .processor
        .ledger
        .run("purchases", &first.run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first_run.files_done, 1);
    w.process(&messages, clock.as_ref()).await;
    let now = w
        .processor
        .ledger
        .file("purchases", KEY)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (now.status.as_str(), now.rows_ingested, now.rows_failed),
        ("succeeded", 3, 0)
    );
    // c1 and c3 kept their event ids: three events, not five.
    assert_eq!(env.scan(&env.stack.events_table).await.len(), 3);

    // The history: the replay's run says who, when and why; the first run still shows
    // the file as it left it, with its report.
    let runs = api_call(&api, "GET", "/imports/purchases/runs", None)
        .await
        .body;
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let (newest, oldest) = (&runs[0], &runs[1]);
    assert_eq!(newest["run_id"], run_id.as_str());
    assert_eq!(newest["status"], "succeeded");
    assert_eq!(newest["replay"]["reason"], why);
    assert_eq!(newest["replay"]["key"], KEY);
    assert_eq!(newest["replay"]["previous_status"], "partially_succeeded");
    assert_eq!(newest["manual"]["requested_by"], API_CALLER);
    assert!(
        newest["started_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-29T10:00")
    );
    assert_eq!(newest["files"][0]["rows_ingested"], 3);
    assert_eq!(oldest["run_id"], first.run_id.as_str());
    assert_eq!(oldest["status"], "partially_succeeded");
    assert_eq!(oldest["files"][0]["status"], "partially_succeeded");
    assert_eq!(oldest["files"][0]["rows_failed"], 1);
    let report = oldest["files"][0]["report_key"].as_str().unwrap();
    assert!(env.report(report).await.contains("ten"));
    let history = &newest["files"][0]["history"];
    assert_eq!(history[0]["run_id"], first.run_id.as_str(), "{history}");
}

#[tokio::test]
async fn the_cli_replays_as_its_caller_and_refuses_a_file_in_flight() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    env.put_object(
        &bucket,
        KEY,
        "customer_id,at,amount\nc1,2026-11-28 10:00:00,10\n",
    )
    .await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
    w.put_config(events(&env, "number"), t0).await;
    w.run(&FixedClock::new(t0)).await;

    let out = s3imports(
        &env,
        &["replay", "purchases", KEY, "--reason", "resend for QA"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("replays events/purchases_20261128.csv (was Successful"),
        "{}",
        out.stdout
    );
    let again = s3imports(&env, &["replay", "purchases", KEY, "--reason", "twice"]);
    assert_eq!(again.code, 2, "{}{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("is in flight (Queued)"),
        "{}",
        again.stdout
    );

    // Processed here; the runs listing names the replay.
    let done = s3imports(&env, &["tick"]);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    let runs = s3imports(&env, &["runs", "purchases"]);
    assert!(
        runs.stdout
            .contains("replay of events/purchases_20261128.csv (was Successful in run")
            && runs.stdout.contains("resend for QA"),
        "{}",
        runs.stdout
    );
    assert_eq!(env.scan(&env.stack.events_table).await.len(), 1);
}
