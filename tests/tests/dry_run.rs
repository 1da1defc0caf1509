//! Whole-file dry runs: `POST /dry-run`, `GET /dry-runs/{id}` and `s3imports dry-run`
//! against moto. The whole file goes through the import's own path (continuations
//! included) and its failed-rows report is written; nothing reaches the destination
//! tables, the import's ledger or anyone's inbox.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use s3imports::FixedClock;
use s3imports_preview::Api;
use s3imports_tests::{API_CALLER, TestEnv, api_call, s3imports, write_json};
use serde_json::{Value, json};

const NEWEST: &str = "in/registered_user_data_20261128.csv";
const OLDER: &str = "in/registered_user_data_20261127.csv";

fn users(env: &TestEnv) -> Value {
    s3imports_tests::users_config(
        env,
        "users",
        "in",
        json!({
            "schedule": {"type": "once"},
            "notifications": {"recipients": [env.recipient()], "on_success": true}
        }),
    )
}

/// 900 users, every 100th with an age that is not a number (users are read 400 rows
/// at a time: three invocations at least).
fn big_file() -> String {
    let mut csv = String::from("ID,Age\n");
    for i in 0..900 {
        if i % 100 == 7 {
            csv.push_str(&format!("u{i},about {i}\n"));
        } else {
            csv.push_str(&format!("u{i},{}\n", 20 + i % 50));
        }
    }
    csv
}

#[tokio::test]
async fn a_dry_run_reads_the_whole_file_across_invocations_and_writes_nothing() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    env.put_object(&bucket, OLDER, "ID,Age\nold,1\n").await;
    env.put_object(&bucket, NEWEST, big_file()).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
    let clock = Arc::new(FixedClock::new(t0));
    let mut api = Api::from_env(
        &env.role_clients(s3imports_tests::Role::Preview),
        &env.stack,
    );
    api.clock = clock.clone();

    // The config is not put: a dry run is how an operator checks it first.
    let a = api_call(
        &api,
        "POST",
        "/dry-run",
        Some(&json!({"config": users(&env)})),
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["key"], NEWEST);
    assert_eq!(a.body["requested_by"], API_CALLER);
    let id = a.body["dry_run_id"].as_str().unwrap().to_string();
    let path = format!("/dry-runs/{id}");
    let queued = api_call(&api, "GET", &path, None).await.body;
    assert_eq!(queued["status"], "queued", "{queued}");
    assert_eq!(queued["done"], false);

    // A 1 ms budget: the processor checkpoints and continues, as for an import.
    let invocations = w
        .drain_within(clock.as_ref(), Duration::from_millis(1), u32::MAX)
        .await;
    assert!(invocations >= 3, "{invocations} invocation(s)");
    let view = api_call(&api, "GET", &path, None).await.body;
    assert_eq!(view["done"], true, "{view}");
    assert_eq!(view["status"], "partially_succeeded");
    assert_eq!(
        (
            &view["rows_total"],
            &view["rows_valid"],
            &view["rows_failed"]
        ),
        (&json!(900), &json!(891), &json!(9))
    );
    let sample = view["sample_reasons"].as_array().unwrap();
    assert_eq!(sample.len(), 9, "{view}");
    assert_eq!(sample[0]["row"], "9");
    assert_eq!(sample[0]["column"], "Age");
    assert!(
        sample[0]["reason"].as_str().unwrap().contains("about 7"),
        "{view}"
    );

    // Nothing written: no users, no import runs or files, no email.
    assert!(env.scan(&env.stack.users_table).await.is_empty());
    assert!(
        env.scan(&env.stack.ledger_table)
            .await
            .iter()
            .all(|i| i["pk"].as_s().unwrap().starts_with("dry-run:")),
        "the dry run wrote to an import's ledger"
    );
    assert!(env.sent_emails().await.is_empty());

    // The real import of the same file: the same counts and the same report.
    let dry_report = env.report(view["report_key"].as_str().unwrap()).await;
    w.put_config(users(&env), t0).await;
    env.clients
        .s3
        .delete_object()
        .bucket(&bucket)
        .key(OLDER)
        .send()
        .await
        .unwrap();
    w.run(clock.as_ref()).await;
    let file = w
        .processor
        .ledger
        .file("users", NEWEST)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (file.rows_total, file.rows_ingested, file.rows_failed),
        (900, 891, 9)
    );
    assert_eq!(
        env.report(file.report_key.as_deref().unwrap()).await,
        dry_report
    );
    assert_eq!(env.scan(&env.stack.users_table).await.len(), 891);

    // A named file, a file of another folder, an unknown dry run.
    let a = api_call(
        &api,
        "POST",
        "/dry-run",
        Some(&json!({"config": users(&env), "key": "other/registered_user_data_20261128.csv"})),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("is not a file of this import")
    );
    assert_eq!(
        api_call(&api, "GET", "/dry-runs/20261129T090000Z-00000000", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_dry_run_may_not_borrow_a_stored_imports_id() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    env.put_object(
        &bucket,
        "elsewhere/registered_user_data_20261128.csv",
        "ID,Age\nu,1\n",
    )
    .await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
    w.put_config(users(&env), t0).await;
    let mut config = users(&env);
    config["source"]["folder"] = json!("elsewhere");
    let api = Api::from_env(
        &env.role_clients(s3imports_tests::Role::Preview),
        &env.stack,
    );
    let a = api_call(&api, "POST", "/dry-run", Some(&json!({"config": config}))).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(w.take_messages().await.is_empty());
}

#[tokio::test]
async fn the_cli_dry_runs_a_config_file_and_shows_counts_and_reasons() {
    let (env, bucket, _) = s3imports_tests::stage("acme-exports").await;
    env.put_object(&bucket, NEWEST, "ID,Age\nu1,30\nu2,forty\nu3,\n")
        .await;
    env.put_object(&bucket, OLDER, "ID,Age\nu0,1\n").await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_json(dir.path(), "users.json", &users(&env));

    let out = s3imports(&env, &["dry-run", &config]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(NEWEST), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Partial Success: 3 rows read, 2 valid, 1 failed"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("row 3, column Age:"), "{}", out.stdout);
    assert!(
        out.stdout.contains("failed-rows report: s3://"),
        "{}",
        out.stdout
    );

    let older = s3imports(&env, &["--json", "dry-run", &config, "--key", OLDER]);
    assert_eq!(older.code, 0, "{}{}", older.stdout, older.stderr);
    let view: Value = serde_json::from_str(older.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(view["key"], OLDER);
    assert_eq!(
        (&view["rows_valid"], &view["rows_failed"]),
        (&json!(1), &json!(0))
    );
    assert!(env.scan(&env.stack.users_table).await.is_empty());
}
