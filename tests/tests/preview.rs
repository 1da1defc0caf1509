//! The preview Lambda's HTTP handler, driven with API Gateway HTTP API (v2) events,
//! against moto: previews, MoEngage's error messages, import status and run history.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use chrono::Utc;
use s3imports::FixedClock;
use s3imports::model::ledger::new_run_id;
use s3imports_preview::Api;
use s3imports_tests::gpg::{Encrypt, Gpg, KeyType};
use s3imports_tests::{TestEnv, sdk_config_with, seed_run, start_moto_with_env};
use serde_json::{Value, json};

/// The test's "customer" bucket.
fn bucket(env: &TestEnv) -> String {
    env.scoped("acme-exports")
}

async fn call(env: &TestEnv, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    call_with(
        &Api::from_env(
            &env.role_clients(s3imports_tests::Role::Preview),
            &env.stack,
        ),
        method,
        path,
        body,
    )
    .await
}

async fn call_with(api: &Api, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let answer = s3imports_tests::api_call(api, method, path, body).await;
    (answer.status, answer.body)
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
    assert_eq!(body["columns"][3]["suggested_format"], "YYYY-MM-DD");
    assert_eq!(body["row_failures"], json!([]));

    // The same rows through a mapping they fail: each problem, as the import says it.
    let mut config = users_config(&env, "users");
    config["mapping"]["columns"]
        .as_array_mut()
        .unwrap()
        .push(json!({"column": "Joined", "attribute": "joined", "type": "datetime", "format": "DD/MM/YYYY"}));
    let (status, body) = call(&env, "POST", "/preview", Some(&config)).await;
    assert_eq!(status, 200, "{body}");
    let failures = body["row_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 5, "{body}");
    assert!(
        failures[0].as_str().unwrap().contains("column `Joined`"),
        "{body}"
    );
}

#[tokio::test]
async fn previews_an_encrypted_file_and_explains_a_decryption_failure() {
    let env = TestEnv::new().await;
    env.bucket(&bucket(&env)).await;
    let gpg = Gpg::new();
    gpg.key("k@x.com", KeyType::Curve25519)
        .key("other@x.com", KeyType::Rsa);
    let key = env
        .put_secret("p/key", &gpg.secret_key("k@x.com"), &["users"])
        .await;
    let pass = env.put_secret("p/pass", &gpg.passphrase, &["users"]).await;
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

/// A PGP file is read whole before any row is shown (authenticate before parse): one
/// larger than the preview can decrypt within API Gateway's 30 s is refused at once,
/// pointing at the dry run, instead of timing out. Here the bound is lowered to 1 KB.
#[tokio::test]
async fn a_pgp_file_too_large_to_preview_in_time_points_to_the_dry_run() {
    let env = TestEnv::new().await;
    env.bucket(&bucket(&env)).await;
    let gpg = Gpg::new();
    gpg.key("k@x.com", KeyType::Curve25519);
    let key = env
        .put_secret("p/key", &gpg.secret_key("k@x.com"), &["users"])
        .await;
    let pass = env.put_secret("p/pass", &gpg.passphrase, &["users"]).await;
    let mut config = users_config(&env, "big");
    config["encryption"] = json!({"type": "pgp", "private_key_ref": key, "passphrase_ref": pass});
    let mut rows = String::from("ID,Email\n");
    for i in 0..200 {
        rows.push_str(&format!("u{i},u{i}@x.com\n"));
    }
    let sealed = gpg.encrypt(rows.as_bytes(), "k@x.com", &Encrypt::default());
    assert!(sealed.len() > 1024);
    env.put_object(
        &bucket(&env),
        "big/registered_user_data_20261127.csv.pgp",
        sealed,
    )
    .await;
    let mut api = Api::from_env(
        &env.role_clients(s3imports_tests::Role::Preview),
        &env.stack,
    );
    api.previewer.pgp_max_bytes = 1024;
    let (status, body) = call_with(&api, "POST", "/preview", Some(&config)).await;
    assert_eq!(status, 413, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("registered_user_data_20261127.csv.pgp"),
        "{message}"
    );
    assert!(message.contains("s3imports dry-run"), "{message}");
    assert!(body.get("rows").is_none(), "nothing of the file: {body}");
}

/// The preview as a decryption service, tried: a caller points a config at another
/// import's PGP key, for a file they placed in a bucket they can write.
#[tokio::test]
async fn a_secret_is_used_only_by_the_imports_it_is_tagged_for() {
    let env = TestEnv::new().await;
    env.bucket(&bucket(&env)).await;
    let gpg = Gpg::new();
    gpg.key("k@x.com", KeyType::Curve25519);
    let key = env
        .put_secret("victim/key", &gpg.secret_key("k@x.com"), &["payroll"])
        .await;
    let pass = env
        .put_secret("victim/pass", &gpg.passphrase, &["payroll"])
        .await;
    let untagged = env
        .put_secret("loose/key", &gpg.secret_key("k@x.com"), &[])
        .await;
    env.put_object(
        &bucket(&env),
        "mine/registered_user_data_20261127.csv.pgp",
        gpg.encrypt(CSV.as_bytes(), "k@x.com", &Encrypt::default()),
    )
    .await;
    let mut config = users_config(&env, "mine");
    config["encryption"] = json!({"type": "pgp", "private_key_ref": key, "passphrase_ref": pass});
    let (status, body) = call(&env, "POST", "/preview", Some(&config)).await;
    assert_eq!(status, 403, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("secret `{key}`")), "{detail}");
    assert!(
        detail.contains("its tag `s3imports:import-id` is `payroll`"),
        "{detail}"
    );
    assert!(
        body.get("rows").is_none() && body.get("columns").is_none(),
        "{body}"
    );
    assert!(
        !body.to_string().contains("a@x.com"),
        "nothing of the file: {body}"
    );

    // An untagged secret: IAM refuses it before the function sees its tags (the
    // preview role reads only secrets carrying the tag), as AWS does.
    config["encryption"]["private_key_ref"] = json!(untagged);
    let (status, body) = call(&env, "POST", "/preview", Some(&config)).await;
    assert_eq!(status, 403, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("AccessDeniedException"), "{body}");
    assert!(
        detail.contains("carry the tag `s3imports:import-id`"),
        "{body}"
    );
    let refused = env.take_violations();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["action"], "secretsmanager:DescribeSecret");

    // Taking the victim import's id to pass the tag check only works in its own folder.
    let pipe = env.pipeline().await;
    let mut payroll = users_config(&env, "payroll-folder");
    payroll["id"] = json!("payroll");
    pipe.put_config(payroll, chrono::Utc::now()).await;
    config["id"] = json!("payroll");
    config["encryption"]["private_key_ref"] = json!(key);
    let (status, body) = call(&env, "POST", "/preview", Some(&config)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("a preview with that id reads only that folder"),
        "{body}"
    );
    assert!(!body.to_string().contains("a@x.com"), "{body}");
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
    let secret = env
        .put_secret("bad/secret", "not-the-secret", &["users"])
        .await;
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
    pipe.put_config(value, Utc::now()).await;
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

fn count(requests: &[String], operation: &str) -> usize {
    requests.iter().filter(|r| *r == operation).count()
}

fn keys_of(files: &Value) -> Vec<String> {
    files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn runs_and_their_files_come_in_bounded_pages_read_in_batches() {
    let env = TestEnv::new().await;
    let pipe = env.pipeline().await;
    pipe.put_config(users_config(&env, "users"), Utc::now())
        .await;
    // Five runs, oldest first; the second found 250 files.
    let sizes = [3, 250, 0, 1, 12];
    let start = Utc::now() - chrono::Duration::days(10);
    let mut runs = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let at = start + chrono::Duration::hours(i as i64);
        let run_id = new_run_id(at);
        let keys: Vec<String> = (0..*n)
            .map(|f| format!("users/registered_user_data_2026{:02}01_{f:03}.csv", i + 1))
            .collect();
        seed_run(
            pipe.discovery.ledger.as_ref(),
            "users",
            &run_id,
            &bucket(&env),
            &keys,
            at,
        )
        .await;
        runs.push((run_id, keys));
    }
    let (clients, requests) = env.counted_clients(s3imports_tests::Role::Preview);
    let processor = Api::from_env(&clients, &env.stack);

    // Runs, two a page, newest first: every run exactly once, each page a few requests.
    let mut seen = Vec::new();
    let mut first_files = std::collections::HashMap::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let target = match &cursor {
            Some(c) => format!("/imports/users/runs?limit=2&cursor={c}"),
            None => "/imports/users/runs?limit=2".to_string(),
        };
        let (status, body) = call_with(&processor, "GET", &target, None).await;
        assert_eq!(status, 200, "{body}");
        let sent = requests.take();
        assert!(
            sent.len() <= 4 && count(&sent, "BatchGetItem") <= 1,
            "a page of runs took {sent:?}"
        );
        let page = body["runs"].as_array().unwrap();
        assert!(page.len() <= 2, "{body}");
        for run in page {
            let files = run["files"].as_array().unwrap();
            assert!(files.len() <= 10, "files_limit defaults to 10");
            seen.push(run["run_id"].as_str().unwrap().to_string());
            first_files.insert(
                run["run_id"].as_str().unwrap().to_string(),
                (
                    keys_of(&run["files"]),
                    run["files_listed"].as_u64().unwrap(),
                    run["next_files_cursor"].as_str().map(str::to_string),
                ),
            );
        }
        pages += 1;
        cursor = body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
        assert!(pages < 10, "paging never ends");
    }
    let expected: Vec<String> = runs.iter().rev().map(|(id, _)| id.clone()).collect();
    assert_eq!(seen, expected, "every run once, newest first");
    assert_eq!(pages, sizes.len().div_ceil(2));

    // The big run: its first 10 files, then pages of 100 by its cursor.
    let (big_run, big_keys) = &runs[1];
    let (mut keys, listed, mut cursor) = first_files[big_run].clone();
    assert_eq!((keys.len(), listed), (10, 250));
    while let Some(c) = cursor {
        let (status, body) = call_with(
            &processor,
            "GET",
            &format!("/imports/users/runs/{big_run}/files?limit=100&cursor={c}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let sent = requests.take();
        assert_eq!(count(&sent, "BatchGetItem"), 1, "{sent:?}");
        assert!(sent.len() <= 3, "a page of 100 files took {sent:?}");
        assert!(body["files"].as_array().unwrap().len() <= 100);
        assert_eq!(body["files_total"], 250);
        keys.extend(keys_of(&body["files"]));
        cursor = body["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(
        &keys, big_keys,
        "every file exactly once, in discovery order"
    );
    // A run that showed all its files has no cursor.
    assert_eq!(first_files[&runs[0].0].2, None);
    assert_eq!(first_files[&runs[0].0].0, runs[0].1);

    // All 250 at once: one BatchGetItem per 100 keys, not a GetItem per file.
    let (status, body) = call_with(
        &processor,
        "GET",
        &format!("/imports/users/runs/{big_run}/files?limit=1000"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys_of(&body["files"]), *big_keys);
    assert_eq!(body["next_cursor"], Value::Null);
    let sent = requests.take();
    assert_eq!(
        count(&sent, "BatchGetItem"),
        250usize.div_ceil(100),
        "{sent:?}"
    );
    assert!(count(&sent, "GetItem") <= 2, "{sent:?}");
}

#[tokio::test]
async fn bad_page_requests_are_refused_with_a_reason() {
    let env = TestEnv::new().await;
    let pipe = env.pipeline().await;
    pipe.put_config(users_config(&env, "users"), Utc::now())
        .await;
    let now = Utc::now();
    let (a, b) = (
        new_run_id(now),
        new_run_id(now + chrono::Duration::hours(1)),
    );
    let keys: Vec<String> = (0..3)
        .map(|i| format!("users/registered_user_data_2026112{i}.csv"))
        .collect();
    seed_run(
        pipe.discovery.ledger.as_ref(),
        "users",
        &a,
        &bucket(&env),
        &keys,
        now,
    )
    .await;
    seed_run(
        pipe.discovery.ledger.as_ref(),
        "users",
        &b,
        &bucket(&env),
        &[],
        now,
    )
    .await;

    let (status, body) = call(
        &env,
        "GET",
        "/imports/users/runs?limit=1&files_limit=1",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let runs_cursor = body["next_cursor"].as_str().unwrap().to_string();
    let (status, body) = call(&env, "GET", "/imports/users/runs?files_limit=1", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["runs"][1]["run_id"], a.as_str());
    let files_cursor = body["runs"][1]["next_files_cursor"]
        .as_str()
        .unwrap()
        .to_string();

    for (target, mentions) in [
        (
            "/imports/users/runs?cursor=zz".to_string(),
            "`cursor` is not a cursor",
        ),
        // A files cursor is not a runs cursor, and a run's cursor is for that run only.
        (
            format!("/imports/users/runs?cursor={files_cursor}"),
            "`cursor` is not a cursor",
        ),
        (
            format!("/imports/users/runs/{b}/files?cursor={files_cursor}"),
            "`cursor` is not a cursor",
        ),
        (
            format!("/imports/users/runs/{a}/files?cursor={runs_cursor}"),
            "`cursor` is not a cursor",
        ),
        (
            "/imports/users/runs?limit=0".to_string(),
            "`limit` must be a whole number from 1 to 50",
        ),
        (
            "/imports/users/runs?limit=51".to_string(),
            "`limit` must be a whole number from 1 to 50",
        ),
        (
            "/imports/users/runs?files_limit=21".to_string(),
            "`files_limit` must be a whole number from 0 to 20",
        ),
        (
            format!("/imports/users/runs/{a}/files?limit=1001"),
            "`limit` must be a whole number from 1 to 1000",
        ),
    ] {
        let (status, body) = call(&env, "GET", &target, None).await;
        assert_eq!(status, 400, "{target}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(mentions), "{target}: {message}");
    }
    let (status, body) = call(
        &env,
        "GET",
        "/imports/users/runs/20990101T000000Z-00000000/files",
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = call(&env, "GET", "/imports/nope/runs", None).await;
    assert_eq!(status, 404);
}

/// A cell a whole row long that the mapping refuses: its failure is shown cut, so the
/// preview's answer stays bounded whatever the file holds.
#[tokio::test]
async fn a_huge_cell_the_mapping_refuses_is_shown_cut() {
    let env = TestEnv::new().await;
    env.bucket(&bucket(&env)).await;
    let huge = "x".repeat(200_000);
    env.put_object(
        &bucket(&env),
        "wide/registered_user_data_20261127.csv",
        format!("ID,Email,Age\nu1,a@x.com,{huge}\n"),
    )
    .await;
    let mut config = users_config(&env, "wide");
    config["mapping"]["columns"]
        .as_array_mut()
        .unwrap()
        .push(json!({"column": "Age", "attribute": "age", "type": "integer"}));
    let (status, body) = call(&env, "POST", "/preview", Some(&config)).await;
    assert_eq!(status, 200);
    let failures = body["row_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{:?}", body["row_failures"]);
    let failure = failures[0].as_str().unwrap();
    assert!(failure.starts_with("row "), "{failure}");
    assert!(failure.contains("column `Age`"), "{failure}");
    assert!(
        failure.len() <= 512 && failure.contains("more bytes"),
        "{} bytes",
        failure.len()
    );
}
