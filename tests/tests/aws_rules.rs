//! Requests AWS refuses and moto takes: each test here failed on a real account (or
//! under the strict layer, docs/testing.md) before its fix. The strict layer checks
//! every request of every test; these are the cases found by reading AWS's rules.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
use s3imports::model::status::FileStatus;
use s3imports_tests::clock;
use serde_json::json;

/// A users file of 400 mapped columns: one `UpdateItem` naming them all would pass
/// DynamoDB's 4 KB expression limit, so every row failed. Now each row's update is
/// cut into expressions within the limit, and every attribute lands.
#[tokio::test]
async fn wide_user_rows_are_written_within_the_expression_limit() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    const WIDE: usize = 400;
    let mut columns = vec![json!({"column": "ID", "attribute": "user_id"})];
    let mut header = vec!["ID".to_string()];
    for i in 0..WIDE {
        columns.push(json!({"column": format!("c{i}"), "attribute": format!("attribute_{i:03}")}));
        header.push(format!("c{i}"));
    }
    let mut body = header.join(",") + "\n";
    for u in 0..3 {
        let row: Vec<String> = std::iter::once(format!("u{u}"))
            .chain((0..WIDE).map(|i| format!("v{u}-{i}")))
            .collect();
        body.push_str(&(row.join(",") + "\n"));
    }
    env.put_object(&bucket, "wide/registered_user_data_20261127.csv", body)
        .await;
    let config = s3imports_tests::users_config(
        &env,
        "wide",
        "wide",
        json!({"mapping": {"columns": columns}, "segment": {"name": "wide-users"}}),
    );
    let c = clock();
    w.put_config(config, s3imports::Clock::now(&c)).await;
    let (_, messages, response) = w.run(&c).await;
    assert_eq!(messages.len(), 1);
    let file = w
        .processor
        .ledger
        .file("wide", "wide/registered_user_data_20261127.csv")
        .await
        .unwrap()
        .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{file:?}");
    assert_eq!(file.status, FileStatus::Succeeded, "{:?}", file.reason);
    assert_eq!((file.rows_ingested, file.rows_failed), (3, 0));
    let users = env.scan(&env.stack.users_table).await;
    assert_eq!(users.len(), 3);
    for u in &users {
        let id = u["user_id"].as_s().unwrap();
        assert_eq!(
            u["attribute_399"].as_s().unwrap(),
            &format!("v{}-399", &id[1..])
        );
        assert!(u.len() > WIDE, "every attribute is on the item");
    }
    // The segment still gets every user, from the first part of each update.
    let members = env.scan(&env.stack.segments_table).await;
    assert_eq!(
        members
            .iter()
            .filter(|m| m["segment"].as_s().unwrap() == "wide-users")
            .count(),
        3
    );
}

/// A file none of whose rows imports, under `on_duplicate_content: skip`, gives its
/// content claim back (a `DeleteItem` on the ledger the processor was not granted):
/// the outcome was never recorded and the file was imported again and again. Now it
/// ends Failed once, with its report linked.
#[tokio::test]
async fn a_file_whose_every_row_failed_records_its_outcome() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    let key = "bad/registered_user_data_20261127.csv";
    env.put_object(&bucket, key, "ID,Age\nu1,old\nu2,older\n")
        .await;
    let config =
        s3imports_tests::users_config(&env, "bad", "bad", json!({"on_duplicate_content": "skip"}));
    let c = clock();
    w.put_config(config, s3imports::Clock::now(&c)).await;
    let (_, messages, response) = w.run(&c).await;
    assert_eq!(messages.len(), 1);
    assert!(
        response.batch_item_failures.is_empty(),
        "the outcome is recorded on the first delivery"
    );
    let file = w.processor.ledger.file("bad", key).await.unwrap().unwrap();
    assert_eq!(file.status, FileStatus::Failed, "{:?}", file.reason);
    assert_eq!((file.rows_total, file.rows_failed), (2, 2));
    assert!(file.report_key.is_some(), "the report is linked");
}

/// A header of ~500 KB naming no `ID` column: the missing-column reason listed every
/// column, the ledger item passed DynamoDB's 400 KB and the outcome could not be
/// recorded. Now the reason names the first columns and how many more.
#[tokio::test]
async fn a_huge_header_still_records_a_bounded_reason() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    let key = "huge/registered_user_data_20261127.csv";
    let header: Vec<String> = (0..40_000).map(|i| format!("col{i:07}")).collect();
    env.put_object(&bucket, key, header.join(",") + "\nx\n")
        .await;
    let config = s3imports_tests::users_config(&env, "huge", "huge", json!({}));
    let c = clock();
    w.put_config(config, s3imports::Clock::now(&c)).await;
    let (_, _, response) = w.run(&c).await;
    assert!(response.batch_item_failures.is_empty());
    let file = w.processor.ledger.file("huge", key).await.unwrap().unwrap();
    assert_eq!(file.status, FileStatus::Failed);
    let reason = file.reason.unwrap();
    assert!(
        reason.len() <= s3imports::model::ledger::MAX_REASON_BYTES,
        "{}",
        reason.len()
    );
    assert!(
        reason.contains("`ID`") && reason.contains("more"),
        "{reason}"
    );
}

/// More than 50 recipients: SES refuses a message with over 50 destinations, so the
/// run's email never went out. Now it goes out in messages of at most 50.
#[tokio::test]
async fn a_run_email_reaches_more_than_fifty_recipients() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    env.put_object(
        &bucket,
        "many/registered_user_data_20261127.csv",
        "ID,Age\nu1,30\n",
    )
    .await;
    let mut recipients: Vec<String> = (0..70)
        .map(|i| format!("ops{i}@{}.example", env.prefix))
        .collect();
    recipients.push(env.recipient());
    let config = s3imports_tests::users_config(
        &env,
        "many",
        "many",
        json!({"notifications": {"recipients": recipients}}),
    );
    let c = clock();
    w.put_config(config, s3imports::Clock::now(&c)).await;
    w.run(&c).await;
    let mail = env.sent_emails().await;
    assert_eq!(mail.len(), 1, "the test's own address gets one message");
    let data = s3imports_tests::moto_data(&env.endpoint);
    let mut reached = 0;
    let mut messages = 0;
    for m in data
        .pointer("/ses/Message")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let to = m
            .pointer("/destinations/ToAddresses")
            .and_then(|a| a.as_array());
        let ours = to.is_some_and(|a| {
            a.iter()
                .any(|x| x.as_str().is_some_and(|x| x.contains(&env.prefix)))
        });
        if ours {
            let n = to.map_or(0, Vec::len);
            assert!(n <= 50, "one message to {n} destinations");
            reached += n;
            messages += 1;
        }
    }
    assert_eq!((messages, reached), (2, 71));
}
