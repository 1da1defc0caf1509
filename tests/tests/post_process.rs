//! Post-processing of source files against moto: tagged with their outcome, moved to
//! a sub-folder or deleted once they end; a failure is recorded and shown and leaves
//! the outcome as it was.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use s3imports::FixedClock;
use s3imports_preview::Api;
use s3imports_tests::{TestEnv, api_call};
use serde_json::{Value, json};

const GOOD: &str = "in/registered_user_data_20261126.csv";
const PARTIAL: &str = "in/registered_user_data_20261127.csv";
const BINARY: &str = "in/registered_user_data_20261128.csv";

fn users(env: &TestEnv) -> Value {
    s3imports_tests::users_config(
        env,
        "users",
        "in",
        json!({"post_processing": {
            "tag": true,
            "move_to": {"imported": "processed", "failed": "failed/"},
            "delete": ["partial"]
        }}),
    )
}

async fn keys(env: &TestEnv, bucket: &str) -> Vec<String> {
    let out = env
        .clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

/// Tags the customer put on an object themselves.
async fn customer_tags(env: &TestEnv, bucket: &str, key: &str, tags: &[(&str, &str)]) {
    let set = tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_s3::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap()
        })
        .collect();
    env.clients
        .s3
        .put_object_tagging()
        .bucket(bucket)
        .key(key)
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .set_tag_set(Some(set))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

async fn tags(env: &TestEnv, bucket: &str, key: &str) -> BTreeMap<String, String> {
    env.clients
        .s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

#[tokio::test]
async fn files_are_tagged_moved_or_deleted_by_outcome_and_never_found_again() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    env.put_object(&bucket, GOOD, "ID,Age\nu1,30\n").await;
    env.put_object(&bucket, PARTIAL, "ID,Age\nu2,31\nu3,old\n")
        .await;
    env.put_object(&bucket, BINARY, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec())
        .await;
    // A tag of the customer's own is kept.
    customer_tags(&env, &bucket, GOOD, &[("owner", "crm")]).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
    let clock = FixedClock::new(t0);
    w.put_config(users(&env), t0).await;
    let (_, messages, _) = w.run(&clock).await;
    assert_eq!(messages.len(), 3);
    let run_id = messages[0].run_id.clone();

    assert_eq!(
        keys(&env, &bucket).await,
        vec![
            "in/failed/registered_user_data_20261128.csv".to_string(),
            "in/processed/registered_user_data_20261126.csv".to_string(),
        ],
        "the partial file is deleted, the others moved"
    );
    let moved = tags(
        &env,
        &bucket,
        "in/processed/registered_user_data_20261126.csv",
    )
    .await;
    assert_eq!(
        moved.get("s3imports-status").map(String::as_str),
        Some("imported")
    );
    assert_eq!(moved.get("s3imports-run"), Some(&run_id));
    assert_eq!(moved.get("owner").map(String::as_str), Some("crm"));
    let failed = tags(&env, &bucket, "in/failed/registered_user_data_20261128.csv").await;
    assert_eq!(
        failed.get("s3imports-status").map(String::as_str),
        Some("failed")
    );

    // Recorded on each file, shown in the API and the email.
    let ledger = &w.processor.ledger;
    let good = ledger.file("users", GOOD).await.unwrap().unwrap();
    let done = good.post_process.unwrap();
    assert_eq!(
        done.moved_to.as_deref(),
        Some("in/processed/registered_user_data_20261126.csv")
    );
    assert!(done.error.is_none());
    let partial = ledger.file("users", PARTIAL).await.unwrap().unwrap();
    assert_eq!(partial.post_process.unwrap().deleted, Some(true));
    let api = Api::from_env(
        &env.role_clients(s3imports_tests::Role::Preview),
        &env.stack,
    );
    let runs = api_call(&api, "GET", "/imports/users/runs", None)
        .await
        .body;
    assert_eq!(
        runs["runs"][0]["files"][0]["post_process"]["done"],
        json!([
            "tagged s3imports-status=imported",
            "moved to in/processed/registered_user_data_20261126.csv"
        ])
    );
    let emails = env.sent_emails().await;
    assert_eq!(emails.len(), 1);
    let body =
        emails[0]["Body"].as_str().unwrap_or_default().to_string() + emails[0].to_string().as_str();
    assert!(
        body.contains("After import: tagged s3imports-status=partial, deleted"),
        "{body}"
    );

    // Moved files are in sub-folders: the next run finds nothing new.
    let (report, _, _) = w.run(&FixedClock::new(t0 + Duration::hours(1))).await;
    assert_eq!(report.imports[0].files, Vec::<String>::new());

    // A moved file cannot be replayed under its old key: the answer says where it is.
    let a = api_call(
        &api,
        "POST",
        "/imports/users/files/replay",
        Some(&json!({"key": GOOD, "reason": "again"})),
    )
    .await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("was moved to in/processed/registered_user_data_20261126.csv"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn a_failed_move_is_recorded_and_the_outcome_stands() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    env.put_object(&bucket, GOOD, "ID,Age\nu1,30\n").await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
    let clock = FixedClock::new(t0);
    w.put_config(users(&env), t0).await;
    // The customer's nine tags leave no room for two more (S3 allows ten).
    let nine: Vec<(String, &str)> = (0..9).map(|i| (format!("k{i}"), "v")).collect();
    let nine: Vec<(&str, &str)> = nine.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    customer_tags(&env, &bucket, GOOD, &nine).await;
    w.run(&clock).await;

    let file = w
        .processor
        .ledger
        .file("users", GOOD)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(file.status.as_str(), "succeeded");
    let done = file.post_process.unwrap();
    // Tagging failed: nothing after it was tried, the file stays where it is.
    assert!(done.done.is_empty(), "{done:?}");
    let error = done.error.unwrap();
    assert!(error.starts_with("tagging s3://"), "{error}");
    assert!(
        error.contains("has 9 tags of its own; S3 allows 10"),
        "{error}"
    );
    assert_eq!(keys(&env, &bucket).await, vec![GOOD.to_string()]);
    let emails = env.sent_emails().await;
    assert!(
        emails[0]
            .to_string()
            .contains("Post-processing failed (the outcome above stands)"),
        "{}",
        emails[0]
    );
}

/// An object over the largest single copy is moved in parts (S3 refuses a
/// `CopyObject` of a source over 5 GB): byte for byte, with its tags. Here the parts
/// are 5 MiB (S3's smallest) and the single-copy limit 5 MiB, on a 12 MiB file.
#[tokio::test]
async fn a_file_over_the_single_copy_limit_is_moved_in_parts() {
    use s3imports::aws::source::{CopyParts, SourceAccess};
    let (env, bucket, mut w) = s3imports_tests::stage("acme-exports").await;
    // Few wide rows (an unmapped note column), so the import itself stays quick.
    let mut body = String::from("ID,Age,Note\n");
    let mut i = 0;
    while body.len() < 12 << 20 {
        body.push_str(&format!("u{i},{},{}\n", 20 + i, "n".repeat(900_000)));
        i += 1;
    }
    env.put_object(&bucket, GOOD, body.clone()).await;
    customer_tags(&env, &bucket, GOOD, &[("owner", "crm")]).await;
    let processor = env.role_clients(s3imports_tests::Role::Processor);
    w.processor.sources = std::sync::Arc::new(SourceAccess::new(&processor.sdk).with_copy_parts(
        CopyParts {
            single: 5 << 20,
            part: 5 << 20,
        },
    ));
    let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
    let clock = FixedClock::new(t0);
    w.put_config(users(&env), t0).await;
    let (_, messages, response) = w.run(&clock).await;
    assert_eq!(messages.len(), 1);
    assert!(response.batch_item_failures.is_empty());
    let moved = "in/processed/registered_user_data_20261126.csv";
    assert_eq!(keys(&env, &bucket).await, vec![moved.to_string()]);
    let copy = env.object(&bucket, moved).await;
    assert_eq!(copy.len(), body.len());
    assert!(copy == body.as_bytes(), "the parts join to the original");
    let t = tags(&env, &bucket, moved).await;
    assert_eq!(t.get("owner").map(String::as_str), Some("crm"), "{t:?}");
    assert_eq!(
        t.get(s3imports::model::post_process::STATUS_TAG)
            .map(String::as_str),
        Some("imported")
    );
}
