//! An import reaches its customer's bucket through the customer's role (with an
//! external id) or an access key kept in Secrets Manager, from discovery to the
//! imported rows: the functions' grants for both, as template.yaml writes them, held
//! by the strict layer (the customer's own side, the assumed session and the access
//! key, is moto's).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use chrono::{TimeZone, Utc};
use s3imports::FixedClock;
use s3imports::model::status::FileStatus;
use serde_json::json;

#[tokio::test]
async fn imports_read_through_a_customers_role_and_through_an_access_key() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    env.put_object(
        &bucket,
        "role/registered_user_data_20261127.csv",
        "ID,Age\nr1,30\n",
    )
    .await;
    env.put_object(
        &bucket,
        "key/registered_user_data_20261127.csv",
        "ID,Age\nk1,40\n",
    )
    .await;
    // The access key's secret, bound to its import and marked as an access key (the
    // only kind discovery's role may read).
    let secret = format!("{}/acme-access-key", env.prefix);
    env.clients
        .secrets
        .create_secret()
        .name(&secret)
        .secret_string("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key(s3imports::ports::SECRET_TAG)
                .value("by-key")
                .build(),
        )
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("s3imports:secret-kind")
                .value("access-key")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let by_role = s3imports_tests::users_config(&env, "by-role", "role", json!({}));
    let mut by_role = by_role;
    by_role["source"]["credentials"] = json!({
        "type": "assume_role",
        "role_arn": "arn:aws:iam::123456789012:role/s3imports-acme-reader",
        "external_id": "acme-7f3c"
    });
    let mut by_key = s3imports_tests::users_config(&env, "by-key", "key", json!({}));
    by_key["source"]["credentials"] = json!({
        "type": "access_key",
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key_ref": secret
    });
    let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
    let clock = FixedClock::new(t0);
    w.put_config(by_role.clone(), t0).await;
    w.put_config(by_key.clone(), t0).await;
    // The preview reads the newest file the same two ways, as its own role.
    let api = s3imports_preview::Api::from_env(
        &env.role_clients(s3imports_tests::Role::Preview),
        &env.stack,
    );
    for config in [&by_role, &by_key] {
        let answer = s3imports_tests::api_call(&api, "POST", "/preview", Some(config)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["rows"].as_array().map(Vec::len), Some(1));
    }
    let (report, messages, response) = w.run(&clock).await;
    assert_eq!(messages.len(), 2, "{report:?}");
    assert!(response.batch_item_failures.is_empty());
    for (id, key) in [
        ("by-role", "role/registered_user_data_20261127.csv"),
        ("by-key", "key/registered_user_data_20261127.csv"),
    ] {
        let file = w.processor.ledger.file(id, key).await.unwrap().unwrap();
        assert_eq!(
            file.status,
            FileStatus::Succeeded,
            "{id}: {:?}",
            file.reason
        );
    }
    assert_eq!(env.scan(&env.stack.users_table).await.len(), 2);
}
