//! Failures of the stack's own resources (its queue, ledger, configs table), told
//! apart from a customer's: counted by cause, alarmed on, mailed to the import's
//! recipients with a reason that says whose fault it is, and failing the tick when
//! every due import failed for the same cause. Driven through the Lambda handlers
//! against moto, with the strict layer refusing what the stack's roles may not do.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use lambda_runtime::{Context, LambdaEvent};
use s3imports::FixedClock;
use s3imports::discover::Discovery;
use s3imports::metrics::{Captured, DISCOVERY_FAILURES, Metrics, PROCESSOR_STACK_FAILURES};
use s3imports::model::status::FileStatus;
use s3imports_tests::{Role, TestEnv};
use serde_json::{Value, json};

const KEY: &str = "users/registered_user_data_20261127.csv";

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap()
}

/// The metric lines of `name` that were written, as JSON.
fn lines_of(captured: &Captured, name: &str) -> Vec<Value> {
    captured
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get(name).is_some())
        .collect()
}

/// The metric an alarm of template.yaml watches.
fn alarm_metric(alarm: &str) -> String {
    let path = s3imports_tests::workspace_root().join("template.yaml");
    let t: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    t["Resources"][alarm]["Properties"]["MetricName"]
        .as_str()
        .unwrap_or_else(|| panic!("no alarm {alarm} in template.yaml"))
        .to_string()
}

/// A users import due now, with a file waiting; discovery as its Lambda wires it,
/// on `stack`, writing its metrics where the test reads them.
async fn due_import(
    env: &TestEnv,
    stack: &s3imports::stack::Stack,
) -> (Discovery, Arc<Captured>, FixedClock) {
    let bucket = env.scoped("acme-exports");
    env.bucket(&bucket).await;
    env.put_object(&bucket, KEY, "ID,Age\nu1,30\n").await;
    let config = s3imports::model::config::ImportConfig::from_value(s3imports_tests::users_config(
        env,
        "users",
        "users",
        json!({}),
    ))
    .unwrap();
    env.configs().put(&config, t0()).await.unwrap();
    let mut discovery = Discovery::from_env(&env.role_clients(Role::Discovery), stack)
        .await
        .unwrap();
    let captured = Arc::new(Captured::default());
    discovery.metrics = Metrics::new("s3imports", "test", false, captured.clone());
    (
        discovery,
        captured,
        FixedClock::new(t0() + Duration::hours(1)),
    )
}

async fn tick(
    discovery: &Discovery,
    clock: &FixedClock,
) -> Result<s3imports::discover::report::TickReport, lambda_runtime::Error> {
    s3imports_discovery::handler(
        discovery,
        clock,
        LambdaEvent::new(json!({}), Context::default()),
    )
    .await
}

/// The one email the test's recipient got, and that it blames the stack.
async fn stack_email(env: &TestEnv, check: &str) {
    let mail = env.sent_emails().await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    let body = mail[0]["body"].as_str().unwrap_or_default();
    assert!(body.contains("Status: Failed"), "{body}");
    assert!(body.contains("the stack's own failure"), "{body}");
    assert!(body.contains(check), "{body}");
}

#[tokio::test]
async fn a_deleted_queue_fails_the_tick_and_is_counted_mailed_and_alarmed() {
    let env = TestEnv::new().await;
    let (discovery, captured, clock) = due_import(&env, &env.stack.clone()).await;
    // The stack's own queue, granted to discovery, is gone.
    let url = env.queue().url().await.unwrap();
    env.clients
        .sqs
        .delete_queue()
        .queue_url(url)
        .send()
        .await
        .unwrap();
    let err = tick(&discovery, &clock).await.unwrap_err().to_string();
    assert!(err.contains("every due import (1) failed"), "{err}");
    assert!(err.contains("SQS.NotFound"), "{err}");

    let failures = lines_of(&captured, DISCOVERY_FAILURES);
    assert_eq!(failures.len(), 1, "{:?}", captured.lines());
    assert_eq!(failures[0]["Cause"], "SQS.NotFound");
    assert_eq!(failures[0]["ImportId"], "users");
    assert_eq!(alarm_metric("DiscoveryFailuresAlarm"), DISCOVERY_FAILURES);
    stack_email(&env, "S3IMPORTS_QUEUE_NAME").await;

    // The run says so too, for `s3imports runs` and the API.
    let configs = env.configs();
    let run_id = s3imports::ports::Configs::get(&configs, "users")
        .await
        .unwrap()
        .unwrap()
        .last_run_id
        .unwrap();
    let ledger = env.ledger();
    let run = s3imports::ports::LedgerReads::run(&ledger, "users", &run_id)
        .await
        .unwrap()
        .unwrap();
    assert!(run.reason.unwrap().contains("stack's own failure"));
}

#[tokio::test]
async fn a_ledger_write_refused_is_counted_mailed_and_fails_the_tick() {
    let env = TestEnv::new().await;
    // The discovery role without dynamodb:PutItem: the run's item cannot be written.
    env.register(&[("discovery", "dynamodb:PutItem")]);
    let (discovery, captured, clock) = due_import(&env, &env.stack.clone()).await;
    let err = tick(&discovery, &clock).await.unwrap_err().to_string();
    assert!(err.contains("DynamoDB.AccessDenied"), "{err}");
    let failures = lines_of(&captured, DISCOVERY_FAILURES);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["Cause"], "DynamoDB.AccessDenied");
    assert_eq!(alarm_metric("DiscoveryFailuresAlarm"), DISCOVERY_FAILURES);
    stack_email(&env, "S3IMPORTS_LEDGER_TABLE").await;
    let refused = env.take_violations();
    assert!(!refused.is_empty());
    for v in &refused {
        let message = v["message"].as_str().unwrap();
        assert!(message.contains("discovery"), "{message}");
        assert!(message.contains("dynamodb:PutItem"), "{message}");
        assert!(message.contains(&env.stack.ledger_table), "{message}");
    }
}

#[tokio::test]
async fn one_imports_customer_failure_still_never_fails_the_tick() {
    let env = TestEnv::new().await;
    let (discovery, captured, clock) = due_import(&env, &env.stack.clone()).await;
    // A second import whose bucket does not exist: the customer's side.
    let mut other = s3imports_tests::users_config(&env, "other", "users", json!({}));
    other["source"]["bucket"] = json!(env.scoped("not-there"));
    let other = s3imports::model::config::ImportConfig::from_value(other).unwrap();
    env.configs().put(&other, t0()).await.unwrap();
    let report = tick(&discovery, &clock).await.unwrap();
    assert_eq!(report.imports.len(), 2);
    assert!(lines_of(&captured, DISCOVERY_FAILURES).is_empty());
    let failed: Vec<_> = report
        .imports
        .iter()
        .filter(|t| t.reason.is_some())
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].stack_cause.is_none());
}

#[tokio::test]
async fn a_throttled_configs_table_fails_the_tick_and_is_counted() {
    let env = TestEnv::new().await;
    let (discovery, captured, clock) = due_import(&env, &env.stack.clone()).await;
    // No read capacity left on any partition: every read of the configs table is
    // throttled, past the SDK's own retries.
    env.contention(json!({"partition_read_units_per_second": 0.0001}));
    let err = tick(&discovery, &clock).await.unwrap_err().to_string();
    env.contention(json!({"partition_read_units_per_second": 3000}));
    assert!(err.contains("the due imports could not be read"), "{err}");
    let failures = lines_of(&captured, DISCOVERY_FAILURES);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["Cause"], "DynamoDB.Throttled");
    assert_eq!(alarm_metric("DiscoveryFailuresAlarm"), DISCOVERY_FAILURES);
    // Which imports were due is unknown: no email can be addressed, and the
    // function's Errors alarm fires with DiscoveryFailuresAlarm.
    assert!(env.sent_emails().await.is_empty());
}

/// A processor refused a ledger write on every delivery (here: giving back the content
/// claim of a file none of whose rows imported, with dynamodb:DeleteItem taken away):
/// when SQS gives up, the file fails with that error, not "timed out or crashed".
#[tokio::test]
async fn a_dead_lettered_file_keeps_the_stacks_real_error() {
    let (env, bucket, mut w) = s3imports_tests::stage("acme-exports").await;
    env.register(&[("processor", "dynamodb:DeleteItem")]);
    env.put_object(
        &bucket,
        "bad/registered_user_data_20261127.csv",
        "ID,Age\nu1,old\n",
    )
    .await;
    let config =
        s3imports_tests::users_config(&env, "bad", "bad", json!({"on_duplicate_content": "skip"}));
    w.put_config(config, t0()).await;
    let captured = Arc::new(Captured::default());
    w.processor.metrics = Metrics::new("s3imports", "test", false, captured.clone());
    let clock_later = FixedClock::new(t0() + Duration::hours(1));
    w.tick(&clock_later).await;
    let messages = w.take_messages().await;
    assert_eq!(messages.len(), 1);
    let response = w.process(&messages, &clock_later).await;
    assert_eq!(response.batch_item_failures.len(), 1, "the delivery fails");
    let stack_failures = lines_of(&captured, PROCESSOR_STACK_FAILURES);
    assert_eq!(stack_failures.len(), 1);
    assert_eq!(stack_failures[0]["Cause"], "DynamoDB.AccessDenied");
    assert_eq!(
        alarm_metric("ProcessorStackFailuresAlarm"),
        PROCESSOR_STACK_FAILURES
    );

    // SQS gives up: the dead-letter queue's delivery records the file's outcome.
    let mut event = s3imports_tests::sqs_event(&[(messages[0].clone(), 6)]);
    event.payload.records[0].event_source_arn = Some(format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        env.stack.dlq_name
    ));
    let response = s3imports_processor::handler(
        &w.processor,
        &w.dlq_name,
        &clock_later,
        s3imports::process::delivery::DEFAULT_MAX_RECEIVES,
        event,
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let file = w
        .processor
        .ledger
        .file("bad", &messages[0].key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(file.status, FileStatus::Failed);
    let reason = file.reason.unwrap();
    assert!(reason.contains("AccessDenied"), "{reason}");
    assert!(!reason.contains("timed out or crashed"), "{reason}");
    let refused = env.take_violations();
    assert!(
        refused.iter().all(|v| v["action"] == "dynamodb:DeleteItem"),
        "{refused:?}"
    );
}
