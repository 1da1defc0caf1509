//! The `s3imports` binary against moto: config validate/put/archive/show, tick, runs.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use chrono::Utc;
use s3imports::model::ledger::new_run_id;
use s3imports_tests::{TestEnv, s3imports, seed_run, write_json as write};
use serde_json::{Value, json};

/// The test's "customer" bucket.
fn bucket(env: &TestEnv) -> String {
    env.scoped("acme-exports")
}

fn users(env: &TestEnv, id: &str, folder: &str) -> Value {
    s3imports_tests::users_config(env, id, folder, json!({"schedule": {"type": "once"}}))
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

    // An assumed role without an external id is refused (the confused deputy).
    let mut v = users(&env, "u", "in/users");
    v["source"]["credentials"] = json!({
        "type": "assume_role", "role_arn": "arn:aws:iam::111122223333:role/s3imports-reader"
    });
    let no_external_id = write(dir.path(), "role.json", &v);
    let out = s3imports(&env, &["--json", "config", "validate", &no_external_id]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let body: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        body["problems"][0]["field"],
        "source.credentials.external_id"
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
    assert_eq!(body["runs"][0]["status"], "partially_succeeded");
    assert_eq!(body["runs"][0]["rows_ingested"], 2);
    assert_eq!(body["runs"][0]["files"].as_array().unwrap().len(), 2);
    assert_eq!(body["next_cursor"], Value::Null);

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
    let body: Value =
        serde_json::from_str(&tick.stdout).unwrap_or_else(|e| panic!("{e}: {}", tick.stdout));
    assert_eq!(body["rows_total"], 2, "{body}");

    // The same file's message again, as SQS may deliver it twice.
    let ledger = s3imports::aws::ledger::LedgerStore::new(
        env.clients.dynamodb.clone(),
        &env.stack.ledger_table,
    );
    let f = s3imports::ports::LedgerReads::file(&ledger, "first", key)
        .await
        .unwrap()
        .unwrap();
    let message = s3imports::discover::file_message(&f, false);
    let url = env.queue().url().await.unwrap();
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

/// The cursor in a `next page: ... --cursor C` line of text output.
fn next_cursor(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find(|l| l.starts_with("next page:"))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_string)
}

#[tokio::test]
async fn runs_pages_through_runs_and_a_runs_files() {
    let env = TestEnv::new().await;
    let ledger = env.pipeline().await.discovery.ledger;
    let now = Utc::now();
    let (old, new) = (
        new_run_id(now - chrono::Duration::hours(1)),
        new_run_id(now),
    );
    let keys: Vec<String> = (0..120)
        .map(|i| format!("in/users/registered_user_data_20261127_{i:03}.csv"))
        .collect();
    seed_run(ledger.as_ref(), "paged", &old, &bucket(&env), &keys, now).await;
    seed_run(
        ledger.as_ref(),
        "paged",
        &new,
        &bucket(&env),
        &keys[..0],
        now,
    )
    .await;

    // Text: a page of one run ends with the command for the next.
    let first = s3imports(&env, &["runs", "paged", "--limit", "1"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains(&format!("run {new}")),
        "{}",
        first.stdout
    );
    assert!(
        !first.stdout.contains(&format!("run {old}")),
        "{}",
        first.stdout
    );
    let cursor = next_cursor(&first.stdout).unwrap_or_else(|| panic!("{}", first.stdout));
    let second = s3imports(
        &env,
        &["runs", "paged", "--limit", "1", "--cursor", &cursor],
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stdout.contains(&format!("run {old}")),
        "{}",
        second.stdout
    );
    assert_eq!(next_cursor(&second.stdout), None, "{}", second.stdout);
    // The big run shows 10 files and says how to see the other 110.
    assert_eq!(
        second.stdout.matches("Queued in/users/").count(),
        10,
        "{}",
        second.stdout
    );
    assert!(
        second.stdout.contains(&format!(
            "110 more file(s): s3imports runs paged --run {old} --cursor "
        )),
        "{}",
        second.stdout
    );

    // JSON: the run's files, 50 a page, each exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = vec!["--json", "runs", "paged", "--run", &old, "--limit", "50"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let out = s3imports(&env, &args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let body: Value = serde_json::from_str(&out.stdout).unwrap();
        let files = body["files"].as_array().unwrap();
        assert!(files.len() <= 50);
        seen.extend(files.iter().map(|f| f["key"].as_str().unwrap().to_string()));
        cursor = body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, keys);

    let bad = s3imports(&env, &["runs", "paged", "--cursor", "not-a-cursor"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("`cursor` is not a cursor"),
        "{}",
        bad.stderr
    );
    let bad = s3imports(&env, &["runs", "paged", "--limit", "51"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("from 1 to 50"), "{}", bad.stderr);
    let none = s3imports(
        &env,
        &["runs", "paged", "--run", "20990101T000000Z-00000000"],
    );
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("has no run"), "{}", none.stderr);
}

#[tokio::test]
async fn validate_refuses_what_would_fail_every_run() {
    let env = TestEnv::new().await;
    let dir = tempfile::tempdir().unwrap();
    let signer = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEawvjNBYJKwYBBAHaRw8BAQdA\n=tg9u\n-----END PGP PUBLIC KEY BLOCK-----\n";
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "kind",
            Box::new(|v: &mut Value| v["kind"] = json!({"type": "registered_users", "bogus": 1})),
            "unknown field `bogus`",
        ),
        (
            "credentials",
            Box::new(|v: &mut Value| {
                v["source"]["credentials"] = json!({"type": "default", "role_arn": "arn:aws:iam::123456789012:role/s3imports-r"});
            }),
            "unknown field `role_arn`",
        ),
        (
            "folder",
            Box::new(|v: &mut Value| v["source"]["folder"] = json!("x".repeat(1000))),
            "source.folder: the folder is too long",
        ),
        (
            "cr",
            Box::new(|v: &mut Value| v["delimiter"] = json!("\r")),
            "delimiter: use one ASCII character other than a quote, a line break",
        ),
        (
            "nul-delimiter",
            Box::new(|v: &mut Value| v["delimiter"] = json!("\u{0}")),
            "delimiter: use one ASCII character other than a quote, a line break",
        ),
        (
            "signer",
            Box::new(move |v: &mut Value| {
                v["encryption"] = json!({"type": "pgp", "private_key_ref": "s3imports/k", "signer_public_key": signer});
            }),
            "encryption.signer_public_key: the signer's public key is not an ASCII-armored OpenPGP public key",
        ),
        (
            "nul-folder",
            Box::new(|v: &mut Value| v["source"]["folder"] = json!("in/us\u{0}ers")),
            "source.folder: a NUL character",
        ),
        (
            "nul-column",
            Box::new(|v: &mut Value| v["mapping"]["columns"][1]["column"] = json!("A\u{0}ge")),
            "mapping.columns[1].column: a NUL character",
        ),
        (
            "dataset",
            Box::new(|v: &mut Value| {
                v["kind"] = json!({"type": "auxiliary", "dataset": "d".repeat(101), "key_column": "ID", "retention_days": 7});
            }),
            "kind.dataset: at most 100 characters",
        ),
    ];
    for (name, change, reason) in cases {
        let mut v = users(&env, "u", "in/users");
        change(&mut v);
        let file = write(dir.path(), &format!("{name}.json"), &v);
        let out = s3imports(&env, &["config", "validate", &file]);
        assert_eq!(out.code, 1, "{name}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("not valid"), "{name}: {}", out.stdout);
        assert!(out.stdout.contains(reason), "{name}: {}", out.stdout);
    }
}

#[tokio::test]
async fn status_shows_every_import_with_its_runs_and_todays_rows() {
    let env = TestEnv::new().await;
    env.bucket(&bucket(&env)).await;
    env.put_object(
        &bucket(&env),
        "st/users/registered_user_data_20261127.csv",
        "ID,Age\nu1,30\nu2,x\nu3,9\n",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let once = write(dir.path(), "once.json", &users(&env, "ran", "st/users"));
    let mut later = users(&env, "later", "st/other");
    later["schedule"] = json!({"type": "daily", "time": "09:00"});
    let later = write(dir.path(), "later.json", &later);
    for f in [&once, &later] {
        assert_eq!(s3imports(&env, &["config", "put", f]).code, 0);
    }
    assert_eq!(s3imports(&env, &["tick"]).code, 0);

    let out = s3imports(&env, &["--json", "status"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let body: Value = serde_json::from_str(&out.stdout).unwrap();
    let imports = body["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 2, "{body}");
    let ran = imports.iter().find(|i| i["id"] == "ran").unwrap();
    assert_eq!(ran["status"], "completed");
    assert_eq!(ran["rows_today"], 2);
    assert_eq!(ran["rows_failed_today"], 1);
    assert_eq!(ran["last_run_status"], "Partial Success");
    let later = imports.iter().find(|i| i["id"] == "later").unwrap();
    assert_eq!(later["status"], "active");
    assert_eq!(later["last_run_id"], Value::Null);
    assert!(later["next_run_at"].is_string());
    assert_eq!(later["rows_today"], 0);

    let text = s3imports(&env, &["status"]).stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("IMPORT") && lines[0].contains("ROWS TODAY"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ran ") && l.contains("Partial Success")),
        "{text}"
    );
}

/// `local provision` as the operator's `local` group (docs/operator-policy.json) on a
/// stack that exists: it creates nothing twice and asks for nothing more.
#[tokio::test]
async fn local_provision_runs_as_the_operator_policy_allows() {
    let env = TestEnv::new().await;
    let out = s3imports(&env, &["local", "provision"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let again = s3imports(&env, &["local", "provision"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
}
