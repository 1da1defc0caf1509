//! The preview Lambda's HTTP handler, driven with API Gateway HTTP API (v2) events,
//! against moto: previews, MoEngage's error messages, import status and run history.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use chrono::Utc;
use lambda_http::Body;
use s3imports::FixedClock;
use s3imports::config::ImportConfig;
use s3imports_tests::gpg::{Encrypt, Gpg, KeyType};
use s3imports_tests::{TestEnv, sdk_config_with, start_moto_with_env};
use serde_json::{Value, json};

/// The test's "customer" bucket.
fn bucket(env: &TestEnv) -> String {
    env.scoped("acme-exports")
}

fn api_event(method: &str, path: &str, body: Option<&Value>) -> lambda_http::Request {
    let event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "r1",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "28/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1_795_856_400_000_i64
        },
        "body": body.map(Value::to_string),
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).unwrap_or_else(|e| panic!("API event: {e}"))
}

async fn call(env: &TestEnv, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let pipe = env.pipeline().await;
    let response = s3imports_preview::handler(&pipe.processor, api_event(method, path, body))
        .await
        .unwrap_or_else(|e| panic!("handler: {e}"));
    let status = response.status().as_u16();
    let text = match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).to_string(),
        Body::Empty => String::new(),
        _ => String::new(),
    };
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn users_config(env: &TestEnv, folder: &str) -> Value {
    json!({
        "id": "users",
        "name": "Users",
        "kind": {"type": "registered_users"},
        "source": {"bucket": bucket(env), "folder": folder, "datetime_format": "yyyymmdd"},
        "mapping": {"columns": [
            {"column": "ID", "attribute": "user_id"},
            {"column": "Email", "attribute": "email"}
        ]},
        "schedule": {"type": "daily", "time": "09:00"}
    })
}

const CSV: &str = "ID,Email,Age,Joined,Tags\n\
u1,a@x.com,31,2024-01-02,[a|b]\n\
u2,b@x.com,22,2024-02-03,\n\
u3,c@x.com,45,2024-03-04,[c]\n\
u4,d@x.com,19,2024-04-05,\n\
u5,e@x.com,60,2024-05-06,\n\
u6,f@x.com,33,2024-06-07,\n";

#[tokio::test]
async fn previews_the_newest_matching_file() {
    let env = TestEnv::new().await;
    env.bucket(&bucket(&env)).await;
    env.put_object(
        &bucket(&env),
        "users/registered_user_data_20261101.csv",
        "ID,Old\n1,2\n",
    )
    .await;
    env.put_object(
        &bucket(&env),
        "users/registered_user_data_20261127.csv",
        CSV,
    )
    .await;
    env.put_object(
        &bucket(&env),
        "users/sub/registered_user_data_20261231.csv",
        "ID\nx\n",
    )
    .await;
    let (status, body) = call(&env, "POST", "/preview", Some(&users_config(&env, "users"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["file"]["name"], "registered_user_data_20261127.csv");
    let columns: Vec<&str> = body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["ID", "Email", "Age", "Joined", "Tags"]);
    assert_eq!(body["columns"][0]["sample"], "u1");
    assert_eq!(body["columns"][0]["attribute"], "user_id");
    assert_eq!(body["columns"][2]["suggested_type"], "integer");
    assert_eq!(body["columns"][3]["suggested_type"], "datetime");
    assert_eq!(body["columns"][4]["suggested_type"], "list");
    assert_eq!(body["rows"].as_array().unwrap().len(), 5);
    assert_eq!(body["rows"][4][0], "u5");
    assert_eq!(body["unmapped_columns"], json!(["Age", "Joined", "Tags"]));
}

#[tokio::test]
async fn previews_an_encrypted_file_and_explains_a_decryption_failure() {
    let env = TestEnv::new().await;
    env.bucket(&bucket(&env)).await;
    let gpg = Gpg::new();
    gpg.key("k@x.com", KeyType::Curve25519)
        .key("other@x.com", KeyType::Rsa);
    let key = env.put_secret("p/key", &gpg.secret_key("k@x.com")).await;
    let pass = env.put_secret("p/pass", &gpg.passphrase).await;
    let mut config = users_config(&env, "enc");
    config["encryption"] = json!({"type": "pgp", "private_key_ref": key, "passphrase_ref": pass});
    env.put_object(
        &bucket(&env),
        "enc/registered_user_data_20261127.csv.pgp",
        gpg.encrypt(CSV.as_bytes(), "k@x.com", &Encrypt::default()),
    )
    .await;
    let (status, body) = call(&env, "POST", "/preview", Some(&config)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"][0][1], "a@x.com");

    env.put_object(
        &bucket(&env),
        "enc/registered_user_data_20261128.csv.pgp",
        gpg.encrypt(CSV.as_bytes(), "other@x.com", &Encrypt::default()),
    )
    .await;
    let (status, body) = call(&env, "POST", "/preview", Some(&config)).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.starts_with("The file could not be decrypted"),
        "{message}"
    );
    assert!(
        message.contains("not encrypted to the configured key"),
        "{message}"
    );
}

#[tokio::test]
async fn wrong_folder_and_empty_files_get_moengage_messages() {
    let env = TestEnv::new().await;
    env.bucket(&bucket(&env)).await;
    let (status, body) = call(
        &env,
        "POST",
        "/preview",
        Some(&users_config(&env, "nowhere")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("Please check the folder path and try again")),
        "{body}"
    );

    env.put_object(&bucket(&env), "other/some_file.csv", "x\n1\n")
        .await;
    let (status, body) = call(&env, "POST", "/preview", Some(&users_config(&env, "other"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("Please check the folder path and try again")),
        "no matching file: {body}"
    );

    env.put_object(
        &bucket(&env),
        "empty/registered_user_data_20261127.csv",
        "ID,Email\r\n",
    )
    .await;
    let (status, body) = call(&env, "POST", "/preview", Some(&users_config(&env, "empty"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("Found zero data rows in the file")),
        "{body}"
    );

    let mut bad = users_config(&env, "x");
    bad["source"]["folder"] = json!("/x/");
    let (status, body) = call(&env, "POST", "/preview", Some(&bad)).await;
    assert_eq!(status, 400);
    assert_eq!(body["problems"][0]["field"], "source.folder");
}

#[tokio::test]
async fn an_invalid_access_key_is_reported_as_moengage_says() {
    // A moto that checks access keys: the first three actions (creating an admin user
    // and its key) run unauthenticated, everything after needs a real key.
    let endpoint = start_moto_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    let bootstrap = aws_sdk_iam_free_bootstrap(&endpoint).await;
    let sdk = sdk_config_with(&endpoint, &bootstrap.0, &bootstrap.1);
    let env = TestEnv::with_sdk(endpoint, sdk).await;
    env.bucket(&bucket(&env)).await;
    env.put_object(
        &bucket(&env),
        "keyed/registered_user_data_20261127.csv",
        CSV,
    )
    .await;
    let secret = env.put_secret("bad/secret", "not-the-secret").await;
    let mut config = users_config(&env, "keyed");
    config["source"]["credentials"] = json!({
        "type": "access_key",
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key_ref": secret
    });
    let (status, body) = call(&env, "POST", "/preview", Some(&config)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("Given S3 Access Key is not valid")),
        "{body}"
    );

    // The stack's own credentials still work.
    let (status, _) = call(&env, "POST", "/preview", Some(&users_config(&env, "keyed"))).await;
    assert_eq!(status, 200);
}

/// Creates an IAM user with full access and returns its key, using moto's three
/// unauthenticated actions.
async fn aws_sdk_iam_free_bootstrap(endpoint: &str) -> (String, String) {
    s3imports_tests::moto_admin_key(endpoint).await
}

#[tokio::test]
async fn import_status_and_run_history() {
    let env = TestEnv::new().await;
    env.bucket(&bucket(&env)).await;
    env.put_object(
        &bucket(&env),
        "users/registered_user_data_20261127.csv",
        CSV,
    )
    .await;
    let pipe = env.pipeline().await;
    let mut value = users_config(&env, "users");
    value["schedule"] = json!({"type": "once"});
    value["encryption"] = Value::Null;
    value.as_object_mut().unwrap().remove("encryption");
    let config = ImportConfig::from_value(value).unwrap();
    pipe.discovery
        .configs
        .put(&config, Utc::now())
        .await
        .unwrap();
    pipe.run(&FixedClock::new(Utc::now())).await;

    let (status, body) = call(&env, "GET", "/imports/users", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["config"]["source"]["folder"], "users");

    let (status, body) = call(&env, "GET", "/imports/users/runs", None).await;
    assert_eq!(status, 200, "{body}");
    let run = &body["runs"][0];
    assert_eq!(run["status_label"], "Successful");
    assert_eq!(run["rows_ingested"], 6);
    assert_eq!(run["files"][0]["status_label"], "Successful");

    let (status, body) = call(&env, "GET", "/imports/nope", None).await;
    assert_eq!(status, 404, "{body}");
}
