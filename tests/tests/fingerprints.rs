//! Content fingerprints against moto: the ledger keeps each file's size, ETag and the
//! SHA-256 of its plaintext (checked against `sha256sum`), also for gzip and PGP files
//! and files read across invocations or in chunks; a new name repeating imported
//! content is flagged (`warn`), skipped (`skip`) or imported quietly (`import`); an
//! imported name whose object changed is reported in the next run and its email.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::Write as _;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use s3imports::FixedClock;
use s3imports_preview::Api;
use s3imports_tests::gpg::{Encrypt, Gpg, KeyType};
use s3imports_tests::{TestEnv, api_call};
use serde_json::{Value, json};

/// The SHA-256 of `data` as GNU coreutils computes it.
fn sha256sum(data: &[u8]) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn users(env: &TestEnv, folder: &str, extra: Value) -> Value {
    s3imports_tests::users_config(env, "users", folder, extra)
}

fn rows(n: usize, salt: &str) -> String {
    let mut csv = String::from("ID,Age\n");
    for i in 0..n {
        csv.push_str(&format!("{salt}{i},{}\n", 20 + i % 60));
    }
    csv
}

fn t(hour: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, hour, 0, 0).unwrap()
}

fn at(hour: u32) -> FixedClock {
    FixedClock::new(t(hour))
}

#[tokio::test]
async fn the_ledger_keeps_each_files_size_etag_and_plaintext_sha256() {
    let (env, bucket, mut w) = s3imports_tests::stage("acme-exports").await;
    // Users are read 400 rows at a time: 1,000 rows take three invocations.
    let plain = rows(1000, "p");
    let zipped = rows(1000, "z");
    let sealed = rows(50, "s");
    let gpg = Gpg::new();
    gpg.key("imports@acme.example", KeyType::Curve25519);
    let key = env
        .put_secret(
            "acme/key",
            &gpg.secret_key("imports@acme.example"),
            &["users"],
        )
        .await;
    let pass = env
        .put_secret("acme/pass", &gpg.passphrase, &["users"])
        .await;
    env.put_object(
        &bucket,
        "in/registered_user_data_20261125.csv",
        plain.clone(),
    )
    .await;
    env.put_object(
        &bucket,
        "in/registered_user_data_20261126.csv.gz",
        gzip(zipped.as_bytes()),
    )
    .await;
    let encrypted = gpg.encrypt(
        sealed.as_bytes(),
        "imports@acme.example",
        &Encrypt::default(),
    );
    w.put_config(
        users(
            &env,
            "sealed",
            json!({"encryption": {"type": "pgp", "private_key_ref": key, "passphrase_ref": pass}}),
        ),
        t(9),
    )
    .await;
    env.put_object(
        &bucket,
        "sealed/registered_user_data_20261127.csv.pgp",
        encrypted.clone(),
    )
    .await;
    // The plain and gzip files are not encrypted: a second import reads their folder.
    w.put_config(users(&env, "in", json!({"id": "plain"})), t(9))
        .await;
    w.tick(&at(9)).await;
    // A 1 ms budget: every file is read across several invocations.
    let invocations = w
        .drain_within(&at(9), Duration::from_millis(1), u32::MAX)
        .await;
    assert!(invocations > 6, "{invocations}");

    let file = |import: &'static str, key: &'static str| {
        let ledger = w.processor.ledger.clone();
        async move { ledger.file(import, key).await.unwrap().unwrap() }
    };
    let p = file("plain", "in/registered_user_data_20261125.csv").await;
    assert_eq!(p.rows_ingested, 1000);
    assert!(p.invocations > 1, "{p:?}");
    assert_eq!(
        p.sha256.as_deref(),
        Some(sha256sum(plain.as_bytes()).as_str())
    );
    assert_eq!(p.size, plain.len() as u64);
    assert!(!p.etag.is_empty());
    let z = file("plain", "in/registered_user_data_20261126.csv.gz").await;
    assert_eq!(z.rows_ingested, 1000);
    assert_eq!(
        z.sha256.as_deref(),
        Some(sha256sum(zipped.as_bytes()).as_str())
    );
    let s = file("users", "sealed/registered_user_data_20261127.csv.pgp").await;
    assert_eq!(s.rows_ingested, 50, "{s:?}");
    assert_eq!(
        s.sha256.as_deref(),
        Some(sha256sum(sealed.as_bytes()).as_str())
    );
    assert_eq!(s.size, encrypted.len() as u64);

    // A file cut into chunks: the split pass took the whole plaintext's fingerprint.
    let big = rows(3000, "c");
    env.put_object(&bucket, "in/registered_user_data_20261128.csv", big.clone())
        .await;
    w.processor.settings.chunk_bytes = Some(8 * 1024);
    w.run(&at(10)).await;
    w.drain_within(&at(10), Duration::from_secs(600), u32::MAX)
        .await;
    let c = file("plain", "in/registered_user_data_20261128.csv").await;
    assert!(c.chunks_total > 1, "{c:?}");
    assert_eq!(c.rows_ingested, 3000);
    assert_eq!(
        c.sha256.as_deref(),
        Some(sha256sum(big.as_bytes()).as_str())
    );
}

#[tokio::test]
async fn repeated_content_is_flagged_skipped_or_imported_as_the_import_says() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    let content = rows(20, "u");
    env.put_object(
        &bucket,
        "in/registered_user_data_20261126.csv",
        content.clone(),
    )
    .await;
    w.put_config(users(&env, "in", json!({})), t(9)).await;
    w.run(&at(9)).await;
    // Gzipped, under a new name: the same plaintext.
    env.put_object(
        &bucket,
        "in/registered_user_data_20261127.csv.gz",
        gzip(content.as_bytes()),
    )
    .await;
    w.run(&at(10)).await;
    let ledger = &w.processor.ledger;
    let repeat = ledger
        .file("users", "in/registered_user_data_20261127.csv.gz")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(repeat.rows_ingested, 20, "warn imports it");
    let first = repeat.duplicate_of.clone().unwrap();
    assert_eq!(first.key, "in/registered_user_data_20261126.csv");
    assert!(!first.skipped);
    let emails = env.sent_emails().await;
    let warned = emails.last().unwrap().to_string();
    assert!(
        warned.contains("Warning: its content repeats s3://")
            && warned.contains("registered_user_data_20261126.csv, imported in run"),
        "{warned}"
    );

    // skip: a third copy is fingerprinted first and not imported.
    w.put_config(
        users(&env, "in", json!({"on_duplicate_content": "skip"})),
        t(11),
    )
    .await;
    env.put_object(
        &bucket,
        "in/registered_user_data_20261128.csv",
        content.clone(),
    )
    .await;
    let users_before = env.scan(&env.stack.users_table).await;
    w.run(&at(11)).await;
    let skipped = ledger
        .file("users", "in/registered_user_data_20261128.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            skipped.status.as_str(),
            skipped.rows_total,
            skipped.rows_ingested
        ),
        ("succeeded", 0, 0)
    );
    assert!(skipped.duplicate_of.as_ref().unwrap().skipped);
    assert_eq!(env.scan(&env.stack.users_table).await, users_before);
    let said = env.sent_emails().await.last().unwrap().to_string();
    assert!(
        said.contains("Skipped: its content repeats s3://"),
        "{said}"
    );
    // New content under skip is imported as ever.
    env.put_object(
        &bucket,
        "in/registered_user_data_20261129.csv",
        rows(5, "new"),
    )
    .await;
    w.run(&at(12)).await;
    let fresh = ledger
        .file("users", "in/registered_user_data_20261129.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((fresh.rows_ingested, fresh.duplicate_of), (5, None));

    // import: recorded, not said.
    w.put_config(
        users(&env, "in", json!({"on_duplicate_content": "import"})),
        t(13),
    )
    .await;
    env.put_object(
        &bucket,
        "in/registered_user_data_20261130.csv",
        content.clone(),
    )
    .await;
    w.run(&at(13)).await;
    let quiet = ledger
        .file("users", "in/registered_user_data_20261130.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quiet.rows_ingested, 20);
    assert!(quiet.duplicate_of.is_some());
    let said = env.sent_emails().await.last().unwrap().to_string();
    assert!(!said.contains("content repeats"), "{said}");
}

#[tokio::test]
async fn an_imported_name_whose_object_changed_is_reported_once() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    let key = "in/registered_user_data_20261126.csv";
    env.put_object(&bucket, key, rows(3, "a")).await;
    w.put_config(users(&env, "in", json!({})), t(9)).await;
    w.run(&at(9)).await;
    let imported = w
        .processor
        .ledger
        .file("users", key)
        .await
        .unwrap()
        .unwrap();

    // Replaced under its name: the next run (no new files) reports it and emails.
    env.put_object(&bucket, key, rows(4, "b")).await;
    let (report, messages, _) = w.run(&at(10)).await;
    assert!(messages.is_empty(), "a changed file is not imported again");
    let tick = &report.imports[0];
    assert_eq!(tick.changed.len(), 1, "{tick:?}");
    assert_eq!(tick.changed[0].etag_imported, imported.etag);
    assert_ne!(tick.changed[0].etag_now, imported.etag);
    let emails = env.sent_emails().await;
    let last = emails.last().unwrap().to_string();
    assert!(last.contains("1 imported file(s) changed"), "{last}");
    assert!(
        last.contains(&format!(
            "s3://{bucket}/{key}: imported in run {}",
            imported.run_id
        )),
        "{last}"
    );
    let api = Api::from_env(
        &env.role_clients(s3imports_tests::Role::Preview),
        &env.stack,
    );
    let runs = api_call(&api, "GET", "/imports/users/runs", None)
        .await
        .body;
    assert_eq!(runs["runs"][0]["changed_files"][0]["key"], key, "{runs}");

    // Once: the next run says nothing more of it.
    let (report, _, _) = w.run(&at(11)).await;
    assert!(report.imports[0].changed.is_empty());
    assert_eq!(env.sent_emails().await.len(), emails.len());

    // Changed again, with a new file beside it: the run's own email reports it.
    env.put_object(&bucket, key, rows(5, "c")).await;
    env.put_object(
        &bucket,
        "in/registered_user_data_20261127.csv",
        rows(2, "d"),
    )
    .await;
    w.run(&at(12)).await;
    let last = env.sent_emails().await.last().unwrap().to_string();
    assert!(last.contains("Changed since they were imported"), "{last}");
}
