//! The real SDK clients reach the emulator: a config item written, read back and
//! validated, and every table of the stack provisioned with its key schema.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use chrono::{TimeZone, Utc};
use s3imports::aws::configs::{ConfigStore, PutOutcome};
use s3imports::model::config::{ImportConfig, ImportStatus};
use s3imports::ports::Configs as _;
use s3imports_tests::TestEnv;

#[tokio::test]
async fn a_config_item_round_trips_and_validates() {
    let env = TestEnv::new().await;
    let text =
        std::fs::read_to_string(s3imports_tests::workspace_root().join("examples/events.json"))
            .unwrap();
    let config = ImportConfig::from_json(&text).unwrap();
    let store = ConfigStore::new(env.clients.dynamodb.clone(), &env.stack.configs_table);
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 10, 7, 0).unwrap();
    assert_eq!(store.put(&config, now).await.unwrap(), PutOutcome::Created);
    assert_eq!(store.put(&config, now).await.unwrap(), PutOutcome::Updated);

    let record = store.require(&config.id).await.unwrap();
    assert_eq!(record.config, config);
    record.config.validate().unwrap();
    assert_eq!(record.status, ImportStatus::Active);
    // Every 15 minutes: the next quarter hour.
    assert_eq!(
        record.next_run_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 28, 10, 15, 0).unwrap())
    );
    assert_eq!(record.created_at, Some(now));

    // The raw item is a readable native map, not a JSON string.
    let item = env
        .clients
        .dynamodb
        .get_item()
        .table_name(&env.stack.configs_table)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(config.id.clone()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let doc = item["config"].as_m().unwrap();
    assert_eq!(
        doc["kind"].as_m().unwrap()["event_name"].as_s().unwrap(),
        "Purchase Summary"
    );
}

#[tokio::test]
async fn the_stack_is_provisioned_as_specified() {
    let env = TestEnv::new().await;
    for spec in env.stack.tables() {
        let t = env
            .clients
            .dynamodb
            .describe_table()
            .table_name(&spec.name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        let t = t.table().unwrap();
        let keys: Vec<&str> = t.key_schema().iter().map(|k| k.attribute_name()).collect();
        let mut want = vec![spec.partition_key];
        want.extend(spec.sort_key);
        assert_eq!(keys, want, "{}", spec.name);
        assert_eq!(
            t.global_secondary_indexes().len(),
            spec.indexes.len(),
            "{}",
            spec.name
        );
    }
    let q = env
        .clients
        .sqs
        .get_queue_url()
        .queue_name(&env.stack.queue_name)
        .send()
        .await
        .unwrap();
    assert!(q.queue_url().is_some());
    env.clients
        .s3
        .head_bucket()
        .bucket(&env.stack.reports_bucket)
        .send()
        .await
        .unwrap();
}
