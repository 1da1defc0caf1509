//! User rows in batches, over moto behind the strict layer (which runs each PartiQL
//! INSERT as DynamoDB does: a put only where the key is free, else `DuplicateItem`).
//! New users go 25 to a `BatchExecuteStatement`; a user already there is upserted
//! alone with every rule of the upsert; throttling of part of a batch, a statement
//! refused inside one and a segment's hot partition lose no row.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;
use s3imports::Clock;
use s3imports::model::status::FileStatus;
use s3imports::process::Processor;
use s3imports::process::settings::ProcessorSettings;
use s3imports_tests::{TestEnv, clock, stage, users_config};
use serde_json::json;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

async fn user(env: &TestEnv, id: &str) -> std::collections::HashMap<String, AttributeValue> {
    env.clients
        .dynamodb
        .get_item()
        .table_name(&env.stack.users_table)
        .key("user_id", s(id))
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no user {id}"))
}

/// The ledger's record of the `users` import's file `key`.
async fn ledger_file(
    w: &s3imports_tests::Pipeline,
    key: &str,
) -> s3imports::model::ledger::FileRecord {
    w.processor
        .ledger
        .file("users", key)
        .await
        .unwrap()
        .unwrap()
}

fn file_of(ids: impl Iterator<Item = (String, i64)>) -> String {
    let mut body = String::from("ID,Age\n");
    for (id, age) in ids {
        body.push_str(&format!("{id},{age}\n"));
    }
    body
}

#[tokio::test]
async fn a_thousand_new_users_take_forty_requests_and_users_already_there_keep_the_upserts_rules() {
    let (env, bucket, w) = stage("acme-exports").await;
    // Already there: its age is the file's to set, its nickname no file sets.
    env.clients
        .dynamodb
        .put_item()
        .table_name(&env.stack.users_table)
        .item("user_id", s("u0007"))
        .item("age", n(1))
        .item("nickname", s("keep"))
        .send()
        .await
        .unwrap();
    let c = clock();
    w.put_config(users_config(&env, "users", "in", json!({})), c.now())
        .await;
    env.put_object(
        &bucket,
        "in/registered_user_data_20261128.csv",
        file_of((0..1000).map(|i| (format!("u{i:04}"), 20 + i % 50))),
    )
    .await;
    c.advance(Duration::hours(1));
    let (_, messages, _) = w.run(&c).await;
    let first = w.writer.requests();
    // 40 batches of 25 inserts, and one upsert for the user already there.
    assert_eq!(first, 41, "DynamoDB requests for 1,000 new users");
    assert!(
        first <= 50,
        "the issue's goal: at most 50 requests per 1,000 users"
    );
    let f = ledger_file(&w, &messages[0].key).await;
    assert_eq!(
        (f.status, f.rows_ingested, f.rows_failed),
        (FileStatus::Succeeded, 1000, 0)
    );
    assert_eq!(env.scan(&env.stack.users_table).await.len(), 1000);
    let u7 = user(&env, "u0007").await;
    assert_eq!(u7["age"], n(27), "the file's value wins: {u7:?}");
    assert_eq!(u7["nickname"], s("keep"), "what no row set stays: {u7:?}");
    assert_eq!(user(&env, "u0999").await["age"], n(20 + 999 % 50));

    // The next file holds the same users, older: every age changes, nothing is lost,
    // and the sink stops inserting first after a few batches of users already there.
    env.put_object(
        &bucket,
        "in/registered_user_data_20261129.csv",
        file_of((0..1000).map(|i| (format!("u{i:04}"), 70 + i % 50))),
    )
    .await;
    c.advance(Duration::days(1));
    let (_, messages, _) = w.run(&c).await;
    let second = w.writer.requests() - first;
    let f = ledger_file(&w, &messages[0].key).await;
    assert_eq!((f.rows_ingested, f.rows_failed), (1000, 0));
    for i in [0, 7, 500, 999] {
        let u = user(&env, &format!("u{i:04}")).await;
        assert_eq!(u["age"], n(70 + i % 50), "{u:?}");
    }
    assert_eq!(user(&env, "u0007").await["nickname"], s("keep"));
    assert!(
        (1000..1040).contains(&second),
        "1,000 upserts and a few wasted batches, not one a row: {second}"
    );
}

#[tokio::test]
async fn an_insert_refused_inside_a_batch_is_upserted_alone_and_reported_with_its_reason() {
    let (env, bucket, w) = stage("acme-exports").await;
    let c = clock();
    let config = users_config(
        &env,
        "users",
        "in",
        json!({"mapping": {"columns": [
            {"column": "ID", "attribute": "user_id"},
            {"column": "Bio", "attribute": "bio"}
        ]}}),
    );
    w.put_config(config, c.now()).await;
    // Row 13's item is over DynamoDB's 400 KB: its INSERT fails inside the batch, the
    // 29 others land, and its upsert gives it DynamoDB's own reason.
    let mut body = String::from("ID,Bio\n");
    for i in 0..30 {
        let bio = if i == 12 {
            "x".repeat(420_000)
        } else {
            format!("bio {i}")
        };
        body.push_str(&format!("b{i:02},{bio}\n"));
    }
    env.put_object(&bucket, "in/registered_user_data_20261128.csv", body)
        .await;
    c.advance(Duration::hours(1));
    let (_, messages, _) = w.run(&c).await;
    let f = ledger_file(&w, &messages[0].key).await;
    assert_eq!(
        (f.status, f.rows_ingested, f.rows_failed),
        (FileStatus::PartiallySucceeded, 29, 1)
    );
    assert_eq!(env.scan(&env.stack.users_table).await.len(), 29);
    let report = env.report(f.report_key.as_deref().unwrap()).await;
    assert!(
        report.contains("\n14,,\"DynamoDB refused the row: ValidationException"),
        "{report}"
    );
    // Three requests: the batch of 25 (one statement refused), the batch of 5, then
    // the refused row's own upsert.
    assert_eq!(w.writer.requests(), 3);
    env.take_violations();
}

#[tokio::test]
async fn throttling_of_part_of_a_batch_retries_only_the_statements_it_refused() {
    let (env, bucket, mut w) = stage("acme-exports").await;
    let (counted, sent) = env.counted_clients(s3imports_tests::Role::Processor);
    w.processor = Processor::from_env(&counted, &env.stack, ProcessorSettings::default());
    let c = clock();
    w.put_config(users_config(&env, "users", "in", json!({})), c.now())
        .await;
    env.put_object(
        &bucket,
        "in/registered_user_data_20261128.csv",
        file_of((0..150).map(|i| (format!("t{i:03}"), 20 + i % 50))),
    )
    .await;
    // Each table takes 20 writes a second: of the batches of 25 sent at once, some
    // statements are refused and the rest land.
    env.contention(json!({"table_write_units_per_second": 20}));
    c.advance(Duration::hours(1));
    w.tick(&c).await;
    let messages = w.take_messages().await;
    sent.take();
    let response = w.process(&messages, &c).await;
    assert!(response.batch_item_failures.is_empty());
    let stats = env.strict_stats();
    assert!(stats["throttled"].as_u64().unwrap_or(0) > 0, "{stats}");
    let f = ledger_file(&w, &messages[0].key).await;
    assert_eq!((f.rows_ingested, f.rows_failed), (150, 0));
    assert_eq!(env.scan(&env.stack.users_table).await.len(), 150);
    assert_eq!(user(&env, "t149").await["age"], n(20 + 149 % 50));
    // Refused statements go again as inserts, with the others refused beside them:
    // more batches than 6, and no user upserted one by one.
    let sent = sent.take();
    let count = |op: &str| sent.iter().filter(|s| *s == op).count();
    assert!(count("BatchExecuteStatement") > 6, "{sent:?}");
    assert!(count("UpdateItem") < 10, "{sent:?}");
}

#[tokio::test]
async fn a_segments_hot_partition_is_waited_out_and_every_user_joins() {
    let (env, bucket, w) = stage("acme-exports").await;
    let c = clock();
    w.put_config(
        users_config(&env, "users", "in", json!({"segment": {"name": "hot"}})),
        c.now(),
    )
    .await;
    env.put_object(
        &bucket,
        "in/registered_user_data_20261128.csv",
        file_of((0..150).map(|i| (format!("h{i:03}"), 30))),
    )
    .await;
    // Every member shares the segment's partition key: 50 writes a second there.
    env.contention(json!({"partition_write_units_per_second": 50}));
    c.advance(Duration::hours(1));
    let (_, messages, response) = w.run(&c).await;
    assert!(response.batch_item_failures.is_empty());
    let stats = env.strict_stats();
    assert!(stats["throttled"].as_u64().unwrap_or(0) > 0, "{stats}");
    let f = ledger_file(&w, &messages[0].key).await;
    assert_eq!((f.rows_ingested, f.rows_failed), (150, 0));
    let members: Vec<_> = env
        .scan(&env.stack.segments_table)
        .await
        .into_iter()
        .filter(|i| {
            i.get("id")
                .is_some_and(|v| v.as_s().is_ok_and(|s| s.starts_with('h')))
        })
        .collect();
    assert_eq!(members.len(), 150, "every imported user is a member");
    assert_eq!(env.scan(&env.stack.users_table).await.len(), 150);
}
