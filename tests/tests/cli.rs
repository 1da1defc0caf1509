//! The `s3imports` binary against moto: config validate/put/archive/show, tick, runs.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::Command;

use s3imports_tests::{TestEnv, cli_binary};
use serde_json::{Value, json};

/// The test's "customer" bucket.
fn bucket(env: &TestEnv) -> String {
    env.scoped("acme-exports")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn s3imports(env: &TestEnv, args: &[&str]) -> Run {
    let out = Command::new(cli_binary())
        .args(args)
        .envs(env.process_env())
        .env_remove("S3IMPORTS_PREFIX")
        .output()
        .unwrap_or_else(|e| panic!("run s3imports: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn write(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path.to_string_lossy().to_string()
}

fn users(env: &TestEnv, id: &str, folder: &str) -> Value {
    json!({
        "id": id,
        "name": format!("Users {id}"),
        "kind": {"type": "registered_users"},
        "source": {"bucket": bucket(env), "folder": folder, "datetime_format": "yyyymmdd"},
        "mapping": {"columns": [
            {"column": "ID", "attribute": "user_id"},
            {"column": "Age", "attribute": "age", "type": "integer"}
        ]},
        "schedule": {"type": "once"},
        "notifications": {"recipients": [env.recipient()]}
    })
}

#[tokio::test]
async fn validate_explains_problems_and_keys() {
    let env = TestEnv::new().await;
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", &users(&env, "u", "in/users"));
    let ok = s3imports(&env, &["config", "validate", &good]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("valid"), "{}", ok.stdout);
    assert!(ok.stdout.contains("registered_user_data_"), "{}", ok.stdout);

    let key = s3imports(
        &env,
        &[
            "config",
            "validate",
            &good,
            "--key",
            "in/users/registered_user_data_2026113.csv",
        ],
    );
    assert_eq!(key.code, 1);
    assert!(key.stdout.contains("does not match"), "{}", key.stdout);
    assert!(key.stdout.contains("2026113"), "{}", key.stdout);
    let key = s3imports(
        &env,
        &[
            "config",
            "validate",
            &good,
            "--key",
            "in/users/registered_user_data_20261130.csv.gz.pgp",
        ],
    );
    assert_eq!(key.code, 0, "{}", key.stdout);

    // A local sample: an unmapped column is reported; a missing id column fails.
    let sample = dir.path().join("sample.csv");
    std::fs::write(&sample, "ID,Age,Extra\n1,2,3\n").unwrap();
    let out = s3imports(
        &env,
        &[
            "config",
            "validate",
            &good,
            "--sample",
            sample.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("not mapped (not imported): `Extra`"),
        "{}",
        out.stdout
    );
    std::fs::write(&sample, "Name,Age\nx,2\n").unwrap();
    let out = s3imports(
        &env,
        &[
            "config",
            "validate",
            &good,
            "--sample",
            sample.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("column `ID` (user_id) is not in the file"),
        "{}",
        out.stdout
    );

    let mut v = users(&env, "Bad Id", "/in/");
    v["source"]["credentials"] = json!({"type": "access_key", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "shh-very-secret"});
    let bad = write(dir.path(), "bad.json", &v);
    let out = s3imports(&env, &["--json", "config", "validate", &bad]);
    assert_eq!(out.code, 1);
    let body: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(body["valid"], false);
    assert_eq!(
        body["problems"][0]["field"],
        "source.credentials.secret_access_key"
    );
    assert!(
        !out.stdout.contains("shh-very-secret"),
        "a secret is never echoed"
    );

    // A custom attribute may not take a name s3imports writes itself.
    let mut v = users(&env, "u", "in/users");
    v["mapping"]["columns"][1]["attribute"] = json!("dataset");
    let reserved = write(dir.path(), "reserved.json", &v);
    let out = s3imports(&env, &["config", "validate", &reserved]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("`dataset` is written by s3imports itself"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn put_refuses_duplicates_and_tick_imports_files() {
    let env = TestEnv::new().await;
    env.bucket(&bucket(&env)).await;
    env.put_object(
        &bucket(&env),
        "in/users/registered_user_data_20261126.csv",
        "ID,Age\nu1,30\nu2,x\n",
    )
    .await;
    env.put_object(
        &bucket(&env),
        "in/users/registered_user_data_20261127.csv",
        "ID,Age\nu3,41\n",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "first.json", &users(&env, "first", "in/users"));
    let second = write(
        dir.path(),
        "second.json",
        &users(&env, "second", "in/users"),
    );

    let put = s3imports(&env, &["config", "put", &first]);
    assert_eq!(put.code, 0, "{}{}", put.stdout, put.stderr);
    assert!(
        put.stdout.contains("import first created"),
        "{}",
        put.stdout
    );
    let dup = s3imports(&env, &["config", "put", &second]);
    assert_eq!(dup.code, 1);
    assert!(
        dup.stderr.contains("duplicates active import `first`"),
        "{}",
        dup.stderr
    );

    let tick = s3imports(&env, &["tick"]);
    assert_eq!(tick.code, 0, "{}{}", tick.stdout, tick.stderr);
    assert!(
        tick.stdout.contains("import first: 2 new file(s) queued"),
        "{}",
        tick.stdout
    );
    assert!(tick.stdout.contains("Partial Success in/users/registered_user_data_20261126.csv: 2 rows (1 imported, 1 failed)"), "{}", tick.stdout);
    assert!(
        tick.stdout.contains(
            "Successful in/users/registered_user_data_20261127.csv: 1 rows (1 imported, 0 failed)"
        ),
        "{}",
        tick.stdout
    );
    assert!(
        tick.stdout.contains(
            "summary: 1 import(s) due, 2 file(s) processed, 3 rows (2 imported, 1 failed)"
        ),
        "{}",
        tick.stdout
    );

    let runs = s3imports(&env, &["--json", "runs", "first"]);
    assert_eq!(runs.code, 0, "{}", runs.stderr);
    let body: Value = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(body[0]["run"]["status"], "partially_succeeded");
    assert_eq!(body[0]["run"]["rows_ingested"], 2);
    assert_eq!(body[0]["files"].as_array().unwrap().len(), 2);

    // Archiving frees the folder for another import.
    let archive = s3imports(&env, &["config", "archive", "first"]);
    assert_eq!(archive.code, 0, "{}", archive.stderr);
    let put = s3imports(&env, &["config", "put", &second]);
    assert_eq!(put.code, 0, "{}", put.stderr);
    let show = s3imports(&env, &["--json", "config", "show", "first"]);
    let body: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(body["status"], "archived");
}

#[tokio::test]
async fn errors_exit_non_zero_with_the_reason() {
    let env = TestEnv::new().await;
    let out = s3imports(&env, &["config", "put", "/no/such/file.json"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("/no/such/file.json"), "{}", out.stderr);
    let out = s3imports(&env, &["config", "archive", "no-such-import"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no import `no-such-import`"),
        "{}",
        out.stderr
    );
    let out = s3imports(&env, &["tick", "--now", "yesterday"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("RFC 3339"), "{}", out.stderr);
}

/// `tick` counts only the files it processed itself: a redelivered message for a file
/// that is already done is skipped and adds no rows (three concurrent ticks used to
/// report three times the rows).
#[tokio::test]
async fn tick_counts_only_files_it_processed() {
    let env = TestEnv::new().await;
    env.bucket(&bucket(&env)).await;
    let key = "in/users/registered_user_data_20261127.csv";
    env.put_object(&bucket(&env), key, "ID,Age\nu1,30\nu2,31\n")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "first.json", &users(&env, "first", "in/users"));
    assert_eq!(s3imports(&env, &["config", "put", &config]).code, 0);
    let tick = s3imports(&env, &["--json", "tick"]);
    assert_eq!(tick.code, 0, "{}{}", tick.stdout, tick.stderr);
    let body: Value = serde_json::from_str(&tick.stdout).unwrap();
    assert_eq!(body["rows_total"], 2, "{body}");

    // The same file's message again, as SQS may deliver it twice.
    let ledger = s3imports::aws::ledger::LedgerStore::new(
        env.clients.dynamodb.clone(),
        &env.stack.ledger_table,
    );
    let f = ledger.file("first", key).await.unwrap().unwrap();
    let message = s3imports::aws::queue::FileMessage {
        import_id: f.import_id,
        run_id: f.run_id,
        bucket: f.bucket,
        key: f.key,
        size: f.size,
        etag: f.etag,
    };
    let url = env
        .clients
        .sqs
        .get_queue_url()
        .queue_name(&env.stack.queue_name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    env.clients
        .sqs
        .send_message()
        .queue_url(&url)
        .message_body(serde_json::to_string(&message).unwrap())
        .send()
        .await
        .unwrap();
    let tick = s3imports(&env, &["--json", "tick"]);
    assert_eq!(tick.code, 0, "{}{}", tick.stdout, tick.stderr);
    let body: Value = serde_json::from_str(&tick.stdout).unwrap();
    assert_eq!(body["files"], json!([]), "{body}");
    assert_eq!(body["rows_total"], 0, "{body}");
    // The skipped message is gone from the queue.
    let left = env
        .clients
        .sqs
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    assert!(left.messages().is_empty());
}
