//! The processor Lambda's handler against moto, with files made by GnuPG: each
//! import kind's DynamoDB contents, decryption and verification failures, bad rows,
//! redelivery, and the run's email.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use s3imports::model::config::ImportConfig;
use s3imports::model::status::{FileStatus, RunStatus};
use s3imports::{Clock, FixedClock};
use s3imports_tests::clock;
use s3imports_tests::gpg::{Encrypt, Gpg, KeyType};
use s3imports_tests::{Pipeline, TestEnv};

const KEY_EMAIL: &str = "exports@acme.example";

/// The imports of these tests (the PGP secrets are tagged for them).
const IMPORTS: &[&str] = &["users", "events", "anon", "catalog"];

struct World {
    env: TestEnv,
    bucket: String,
    pipe: Pipeline,
}

async fn world() -> World {
    let (env, bucket, pipe) = s3imports_tests::stage("acme-exports").await;
    World { env, bucket, pipe }
}

impl World {
    async fn put_config(&self, value: serde_json::Value) -> ImportConfig {
        self.pipe.put_config(value, Clock::now(&clock())).await
    }

    /// Stores `gpg`'s secret key for `email` and its passphrase as secrets, for every
    /// import of these tests.
    async fn store_key(&self, gpg: &Gpg, email: &str, name: &str) {
        self.env
            .put_secret(&format!("{name}/key"), &gpg.secret_key(email), IMPORTS)
            .await;
        self.env
            .put_secret(&format!("{name}/pass"), &gpg.passphrase, IMPORTS)
            .await;
    }

    async fn scan(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.env.scan(table).await
    }

    async fn report(&self, key: &str) -> String {
        self.env.report(key).await
    }
}

fn s(item: &HashMap<String, AttributeValue>, k: &str) -> String {
    match item.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        Some(AttributeValue::N(v)) => v.clone(),
        Some(AttributeValue::Bool(b)) => b.to_string(),
        Some(AttributeValue::L(l)) => l
            .iter()
            .filter_map(|v| v.as_s().ok().cloned())
            .collect::<Vec<_>>()
            .join("|"),
        other => panic!("attribute {k}: {other:?} in {item:?}"),
    }
}

fn encrypted_users_config(w: &World, signer: Option<String>) -> serde_json::Value {
    let mut encryption = serde_json::json!({
        "type": "pgp",
        "private_key_ref": format!("{}/acme/key", w.env.prefix),
        "passphrase_ref": format!("{}/acme/pass", w.env.prefix)
    });
    if let Some(k) = signer {
        encryption["signer_public_key"] = k.into();
    }
    serde_json::json!({
        "id": "users",
        "name": "CRM users",
        "kind": {"type": "registered_users"},
        "source": {"bucket": w.bucket, "folder": "users", "datetime_format": "yyyymmdd"},
        "encryption": encryption,
        "mapping": {"columns": [
            {"column": "ID", "attribute": "user_id"},
            {"column": "Email", "attribute": "email"},
            {"column": "Orders", "attribute": "orders", "type": "integer"},
            {"column": "Newsletter", "attribute": "newsletter", "type": "boolean"},
            {"column": "Birthday", "attribute": "birthday", "format": "DD/MM/YYYY"},
            {"column": "Tags", "attribute": "tags", "type": "list"}
        ]},
        "schedule": {"type": "once"},
        "notifications": {"recipients": [w.env.recipient()]}
    })
}

const USERS_CSV: &str = "\u{feff}ID,Email,Orders,Newsletter,Birthday,Tags\r\n\
u1,a@x.com,3,yes,14/02/1990,[a|b]\r\n\
u2,\"b,b@x.com\",0,NO,01/12/1985,\r\n\
u3,c@x.com,12,1,29/02/1992,\"[x|y|z]\"\r\n";

#[tokio::test]
async fn registered_users_from_rsa_armored_pgp_upsert_only_mapped_attributes() {
    let w = world().await;
    let gpg = Gpg::new();
    gpg.key(KEY_EMAIL, KeyType::Rsa);
    w.store_key(&gpg, KEY_EMAIL, "acme").await;
    let file = gpg.encrypt(
        USERS_CSV.as_bytes(),
        KEY_EMAIL,
        &Encrypt {
            armor: true,
            ..Default::default()
        },
    );
    w.env
        .put_object(
            &w.bucket,
            "users/registered_user_data_20261127.csv.asc",
            file,
        )
        .await;
    // u1 already exists with an attribute the file does not map: it must be kept.
    w.env
        .clients
        .dynamodb
        .put_item()
        .table_name(&w.env.stack.users_table)
        .item("user_id", AttributeValue::S("u1".into()))
        .item("loyalty", AttributeValue::S("gold".into()))
        .item("email", AttributeValue::S("old@x.com".into()))
        .send()
        .await
        .unwrap();
    w.put_config(encrypted_users_config(&w, None)).await;

    let (_, messages, response) = w.pipe.run(&clock()).await;
    assert_eq!(messages.len(), 1);
    assert!(response.batch_item_failures.is_empty());

    let users = w.scan(&w.env.stack.users_table).await;
    assert_eq!(users.len(), 3);
    let by_id: HashMap<String, _> = users.iter().map(|u| (s(u, "user_id"), u)).collect();
    let u1 = by_id["u1"];
    assert_eq!(s(u1, "loyalty"), "gold");
    assert_eq!(s(u1, "email"), "a@x.com");
    assert_eq!(s(u1, "orders"), "3");
    assert_eq!(s(u1, "newsletter"), "true");
    assert_eq!(s(u1, "birthday"), "1990-02-14T00:00:00Z");
    assert_eq!(s(u1, "tags"), "a|b");
    assert_eq!(s(by_id["u2"], "email"), "b,b@x.com");
    assert_eq!(s(by_id["u2"], "newsletter"), "false");
    assert!(
        !by_id["u2"].contains_key("tags"),
        "an empty cell writes nothing"
    );
    assert_eq!(s(by_id["u3"], "tags"), "x|y|z");

    let f = w
        .pipe
        .processor
        .ledger
        .file("users", &messages[0].key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.status, FileStatus::Succeeded);
    assert_eq!((f.rows_total, f.rows_ingested, f.rows_failed), (3, 3, 0));
    assert!(f.bytes > 0);

    // Redelivery of the processed message changes nothing.
    let again = w.pipe.process(&messages, &clock()).await;
    assert!(again.batch_item_failures.is_empty());
    let f2 = w
        .pipe
        .processor
        .ledger
        .file("users", &messages[0].key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f2, f);
    let run = w
        .pipe
        .processor
        .ledger
        .run("users", &messages[0].run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((run.files_done, run.status), (1, RunStatus::Succeeded));

    // One email for the run.
    let mails = w.env.sent_emails().await;
    let ours: Vec<_> = mails
        .iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap_or_default()
                .contains("CRM users")
        })
        .collect();
    assert_eq!(ours.len(), 1, "{mails:?}");
    let body = ours[0]["body"].as_str().unwrap_or_default();
    assert!(body.contains("Status: Successful"), "{body}");
    assert!(
        body.contains("Rows: 3 total, 3 imported, 0 failed"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_rows_are_reported_and_good_rows_ingested() {
    let w = world().await;
    let gpg = Gpg::new();
    gpg.key(KEY_EMAIL, KeyType::Curve25519);
    w.store_key(&gpg, KEY_EMAIL, "acme").await;
    let csv = "ID,Email,Orders,Newsletter,Birthday,Tags\n\
u1,a@x.com,3,yes,14/02/1990,\n\
u2,b@x.com,many,no,01/12/1985,\n\
,c@x.com,1,no,01/01/2000,\n\
u4,d@x.com,1,maybe,31/02/1990,\n\
u5,e@x.com,2\n\
u6,f@x.com,7,no,,\n";
    let file = gpg.encrypt(
        csv.as_bytes(),
        KEY_EMAIL,
        &Encrypt {
            compress: Some("zlib"),
            ..Default::default()
        },
    );
    w.env
        .put_object(
            &w.bucket,
            "users/registered_user_data_20261127.csv.pgp",
            file,
        )
        .await;
    w.put_config(encrypted_users_config(&w, None)).await;
    let (_, messages, _) = w.pipe.run(&clock()).await;
    let ledger = &w.pipe.processor.ledger;
    let f = ledger
        .file("users", &messages[0].key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.status, FileStatus::PartiallySucceeded);
    assert_eq!((f.rows_total, f.rows_ingested, f.rows_failed), (6, 2, 4));
    let users = w.scan(&w.env.stack.users_table).await;
    let mut ids: Vec<String> = users.iter().map(|u| s(u, "user_id")).collect();
    ids.sort();
    assert_eq!(ids, ["u1", "u6"]);

    let report = w.report(f.report_key.as_deref().unwrap()).await;
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], "row,column,reason,original_row");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("3,Orders,") && l.contains("`many` is not an integer")),
        "{report}"
    );
    assert!(lines.iter().any(|l| l.starts_with("4,ID,")), "{report}");
    assert!(
        lines.iter().any(|l| l.starts_with("5,Newsletter,")),
        "{report}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("5,Birthday,")),
        "{report}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("6,") && l.contains("fields")),
        "{report}"
    );

    let mails = w.env.sent_emails().await;
    let body = mails
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .unwrap_or_default()
                .contains("CRM users")
        })
        .and_then(|m| m["body"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(body.contains("Partial Success"), "{body}");
    assert!(
        body.contains("Rows: 6 total, 2 imported, 4 failed"),
        "{body}"
    );
    assert!(
        body.contains(
            "Failed rows report: attached as registered_user_data_20261127.csv.pgp.failed.csv"
        ),
        "{body}"
    );
}

/// One PGP case, as a row of the table below: the keys gpg makes, how the file is
/// made, the signer the config names, and what the import makes of the file.
struct PgpCase {
    keys: &'static [(&'static str, KeyType)],
    /// Encrypted to this key (None: the plain CSV, named as if encrypted).
    to: Option<&'static str>,
    encrypt: Encrypt<'static>,
    /// 2,000 rows, uncompressed: a flipped byte in the middle lands in the encrypted data.
    big_and_tampered: bool,
    name: &'static str,
    signer: Option<&'static str>,
    /// Ok: the rows imported; Err: a word of the file's reason (nothing ingested).
    expect: Result<u64, &'static str>,
}

async fn pgp_case(case: PgpCase) {
    let w = world().await;
    let gpg = Gpg::new();
    for (email, kind) in case.keys {
        gpg.key(email, *kind);
    }
    w.store_key(&gpg, KEY_EMAIL, "acme").await;
    let file = match case.to {
        None => USERS_CSV.as_bytes().to_vec(),
        Some(to) if case.big_and_tampered => {
            let big: String =
                std::iter::once("ID,Email,Orders,Newsletter,Birthday,Tags\n".to_string())
                    .chain((0..2000).map(|i| format!("u{i},u{i}@x.com,{i},yes,01/01/2000,\n")))
                    .collect();
            let mut file = gpg.encrypt(big.as_bytes(), to, &case.encrypt);
            let mid = file.len() / 2;
            file[mid] ^= 0x55;
            file
        }
        Some(to) => gpg.encrypt(USERS_CSV.as_bytes(), to, &case.encrypt),
    };
    w.env
        .put_object(&w.bucket, &format!("users/{}", case.name), file)
        .await;
    let signer = case.signer.map(|s| gpg.public_key(s));
    w.put_config(encrypted_users_config(&w, signer)).await;
    match case.expect {
        Err(needle) => assert_fails_with(&w, needle).await,
        Ok(rows) => {
            let (_, messages, _) = w.pipe.run(&clock()).await;
            let f = w
                .pipe
                .processor
                .ledger
                .file("users", &messages[0].key)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (f.status, f.rows_ingested),
                (FileStatus::Succeeded, rows),
                "{f:?}"
            );
        }
    }
}

async fn assert_fails_with(w: &World, needle: &str) {
    let (_, messages, response) = w.pipe.run(&clock()).await;
    assert_eq!(messages.len(), 1);
    assert!(
        response.batch_item_failures.is_empty(),
        "a permanent failure is acknowledged"
    );
    let f = w
        .pipe
        .processor
        .ledger
        .file("users", &messages[0].key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.status, FileStatus::Failed, "{f:?}");
    let reason = f.reason.unwrap_or_default();
    assert!(
        reason.contains(needle),
        "reason `{reason}` lacks `{needle}`"
    );
    assert_eq!(f.rows_ingested, 0);
    assert!(
        w.scan(&w.env.stack.users_table).await.is_empty(),
        "nothing ingested"
    );
}

#[tokio::test]
async fn a_file_for_another_key_fails_and_ingests_nothing() {
    pgp_case(PgpCase {
        keys: &[(KEY_EMAIL, KeyType::Rsa), ("other@x.com", KeyType::Rsa)],
        to: Some("other@x.com"),
        encrypt: Encrypt::default(),
        big_and_tampered: false,
        name: "registered_user_data_20261127.csv.gpg",
        signer: None,
        expect: Err("not encrypted to the configured key"),
    })
    .await;
}

#[tokio::test]
async fn a_tampered_file_fails_and_ingests_nothing() {
    pgp_case(PgpCase {
        keys: &[(KEY_EMAIL, KeyType::Rsa)],
        to: Some(KEY_EMAIL),
        encrypt: Encrypt {
            compress: Some("none"),
            ..Default::default()
        },
        big_and_tampered: true,
        name: "registered_user_data_20261127.csv.pgp",
        signer: None,
        expect: Err("corrupt"),
    })
    .await;
}

#[tokio::test]
async fn a_signature_by_another_key_fails_and_ingests_nothing() {
    pgp_case(PgpCase {
        keys: &[
            (KEY_EMAIL, KeyType::Curve25519),
            ("partner@x.com", KeyType::Curve25519),
            ("intruder@x.com", KeyType::Curve25519),
        ],
        to: Some(KEY_EMAIL),
        encrypt: Encrypt {
            sign_with: Some("intruder@x.com"),
            armor: true,
            ..Default::default()
        },
        big_and_tampered: false,
        name: "registered_user_data_20261127.csv.asc",
        signer: Some("partner@x.com"),
        expect: Err("signature"),
    })
    .await;
}

#[tokio::test]
async fn a_signed_file_by_the_configured_signer_imports() {
    pgp_case(PgpCase {
        keys: &[
            (KEY_EMAIL, KeyType::Rsa),
            ("partner@x.com", KeyType::Curve25519),
        ],
        to: Some(KEY_EMAIL),
        encrypt: Encrypt {
            sign_with: Some("partner@x.com"),
            compress: Some("bzip2"),
            ..Default::default()
        },
        big_and_tampered: false,
        name: "registered_user_data_20261127.csv.gpg",
        signer: Some("partner@x.com"),
        expect: Ok(3),
    })
    .await;
}

#[tokio::test]
async fn an_unencrypted_file_for_an_encrypted_import_fails() {
    pgp_case(PgpCase {
        keys: &[(KEY_EMAIL, KeyType::Rsa)],
        to: None,
        encrypt: Encrypt::default(),
        big_and_tampered: false,
        name: "registered_user_data_20261127.csv.pgp",
        signer: None,
        expect: Err("is not encrypted"),
    })
    .await;
}

fn events_config(w: &World, file_type: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": "events",
        "name": "Purchases",
        "kind": {"type": "events", "event_name": "Purchase Summary", "event_time_in": "app"},
        "source": {"bucket": w.bucket, "folder": "events", "datetime_format": "yyyymmdd"},
        "file_type": file_type,
        "mapping": {"columns": [
            {"column": "customer_id", "attribute": "user_id"},
            {"column": "at", "attribute": "event_time", "format": "YYYY-MM-DD hh:mm:ss"},
            {"column": "amount", "attribute": "amount", "type": "number"}
        ]},
        "schedule": {"type": "once"},
        "timezone": "Asia/Kolkata"
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in e {
            o.insert(k.clone(), val.clone());
        }
    }
    v
}

#[tokio::test]
async fn events_in_a_gzipped_csv_are_idempotent_and_in_app_time() {
    let w = world().await;
    let csv = "customer_id,at,amount\nu1,2026-11-27 09:30:00,10.5\nu2,2026-11-27 23:59:59,3\nu1,2026-11-27 09:30:00,10.5\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
    w.env
        .put_object(
            &w.bucket,
            "events/Purchase Summary_20261127.csv.gz",
            gz.finish().unwrap(),
        )
        .await;
    w.put_config(events_config(&w, "csv", serde_json::json!({})))
        .await;
    let (_, messages, _) = w.pipe.run(&clock()).await;
    let events = w.scan(&w.env.stack.events_table).await;
    assert_eq!(events.len(), 3, "two identical rows are two events");
    let mut times: Vec<String> = events.iter().map(|e| s(e, "event_time")).collect();
    times.sort();
    // 09:30 in Asia/Kolkata (+05:30) is 04:00 UTC.
    assert_eq!(
        times,
        [
            "2026-11-27T04:00:00Z",
            "2026-11-27T04:00:00Z",
            "2026-11-27T18:29:59Z"
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| s(e, "event_name") == "Purchase Summary")
    );

    // Processing the same file again (a lost ledger write, say) writes the same keys.
    w.env
        .clients
        .dynamodb
        .update_item()
        .table_name(&w.env.stack.ledger_table)
        .key("pk", AttributeValue::S("events".into()))
        .key("sk", AttributeValue::S(format!("FILE#{}", messages[0].key)))
        .update_expression("SET #s = :q")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":q", AttributeValue::S("queued".into()))
        .send()
        .await
        .unwrap();
    w.pipe.process(&messages, &clock()).await;
    assert_eq!(w.scan(&w.env.stack.events_table).await.len(), 3);
}

#[tokio::test]
async fn anonymous_users_and_auxiliary_data_from_json() {
    let w = world().await;
    let ndjson = "{\"device\": \"d1\", \"geo\": {\"city\": \"Pune\"}, \"visits\": 3}\n\
{\"device\": \"d2\", \"geo\": {\"city\": null}, \"visits\": 1}\n";
    w.env
        .put_object(&w.bucket, "anon/anonymous_user_data_20261127.json", ndjson)
        .await;
    w.put_config(serde_json::json!({
        "id": "anon",
        "name": "Visitors",
        "kind": {"type": "anonymous_users", "identifier_column": "device"},
        "source": {"bucket": w.bucket, "folder": "anon", "datetime_format": "yyyymmdd"},
        "file_type": "json",
        "mapping": {"columns": [
            {"column": "geo.city", "attribute": "city"},
            {"column": "visits", "attribute": "visits", "type": "integer"}
        ]},
        "schedule": {"type": "once"}
    }))
    .await;
    let aux = "[{\"sku\": \"s1\", \"price\": 9.99}, {\"sku\": \"s2\", \"price\": 1}]";
    w.env
        .put_object(&w.bucket, "aux/aux_data_20261127.json", aux)
        .await;
    w.put_config(serde_json::json!({
        "id": "catalog",
        "name": "Catalog",
        "kind": {"type": "auxiliary", "dataset": "products", "key_column": "sku", "retention_days": 30},
        "source": {"bucket": w.bucket, "folder": "aux", "datetime_format": "yyyymmdd"},
        "file_type": "json",
        "mapping": {"columns": [{"column": "price", "attribute": "price", "type": "number"}]},
        "schedule": {"type": "once"}
    }))
    .await;
    let (_, messages, _) = w.pipe.run(&clock()).await;
    assert_eq!(messages.len(), 2);
    let anon = w.scan(&w.env.stack.anonymous_users_table).await;
    let by_id: HashMap<String, _> = anon.iter().map(|u| (s(u, "anonymous_id"), u)).collect();
    assert_eq!(s(by_id["d1"], "city"), "Pune");
    assert_eq!(s(by_id["d1"], "visits"), "3");
    assert!(!by_id["d2"].contains_key("city"), "null writes nothing");
    let aux = w.scan(&w.env.stack.auxiliary_table).await;
    assert_eq!(aux.len(), 2);
    let expected = (Clock::now(&clock()) + chrono::Duration::days(30)).timestamp();
    for item in &aux {
        assert_eq!(s(item, "dataset"), "products");
        assert_eq!(s(item, "expires_at"), expected.to_string());
    }
}

#[tokio::test]
async fn a_moengage_named_pgp_file_mapped_by_a_moengage_mapping_file() {
    let w = world().await;
    let gpg = Gpg::new();
    gpg.key(KEY_EMAIL, KeyType::Rsa);
    w.store_key(&gpg, KEY_EMAIL, "acme").await;
    let csv = "User ID,E-mail,Born,Spend,VIP,Phone\n\
u1,a@x.com,14/02/1990,10.5,true,+91 1\n\
u2,b@x.com,01/12/1985,0,false,+91 2\n";
    w.env
        .put_object(
            &w.bucket,
            "moe/registered_user_data_20261127.csv.pgp",
            gpg.encrypt(csv.as_bytes(), KEY_EMAIL, &Encrypt::default()),
        )
        .await;
    let mapping = r#"{"mapping": [
        {"column": "User ID", "moe_attr": "uid", "type": "string"},
        {"column": "E-mail", "moe_attr": "u_em", "type": "string"},
        {"column": "Born", "moe_attr": "u_bd", "type": "datetime", "datetime_format": "DD/MM/YYYY"},
        {"column": "Spend", "moe_attr": "spend", "type": "double"},
        {"column": "VIP", "moe_attr": "vip", "type": "bool"},
        {"column": "Phone", "moe_attr": "u_mb", "type": "string", "is_skipped": true},
        {"column": "Not In File", "moe_attr": "nothing", "type": "string"}
    ]}"#;
    w.env
        .put_object(&w.bucket, "moe/users.mapping.json", mapping)
        .await;
    let mut config = encrypted_users_config(&w, None);
    config["source"]["folder"] = "moe".into();
    config["mapping"] = serde_json::json!({"manifest": "users.mapping.json"});
    w.put_config(config).await;
    let (_, messages, _) = w.pipe.run(&clock()).await;
    assert_eq!(messages.len(), 1, "the default prefix matched");
    let f = w
        .pipe
        .processor
        .ledger
        .file("users", &messages[0].key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (f.status, f.rows_ingested),
        (FileStatus::Succeeded, 2),
        "{f:?}"
    );
    let users = w.scan(&w.env.stack.users_table).await;
    let u1 = users.iter().find(|u| s(u, "user_id") == "u1").unwrap();
    assert_eq!(s(u1, "email"), "a@x.com");
    assert_eq!(s(u1, "birthday"), "1990-02-14T00:00:00Z");
    assert_eq!(s(u1, "spend"), "10.5");
    assert_eq!(s(u1, "vip"), "true");
    assert!(
        !u1.contains_key("mobile"),
        "a skipped column writes nothing"
    );
}

#[tokio::test]
async fn an_encrypted_file_for_a_plain_import_fails() {
    let w = world().await;
    let gpg = Gpg::new();
    gpg.key(KEY_EMAIL, KeyType::Curve25519);
    w.env
        .put_object(
            &w.bucket,
            "users/registered_user_data_20261127.csv.pgp",
            gpg.encrypt(USERS_CSV.as_bytes(), KEY_EMAIL, &Encrypt::default()),
        )
        .await;
    let mut config = encrypted_users_config(&w, None);
    config.as_object_mut().unwrap().remove("encryption");
    w.put_config(config).await;
    assert_fails_with(
        &w,
        "PGP-encrypted, but the import has no `encryption` settings",
    )
    .await;
}

#[tokio::test]
async fn a_dead_workers_file_is_taken_over_and_a_live_one_is_left_alone() {
    let w = world().await;
    let c = clock();
    let messages = one_queued_event_file(&w, &c).await;
    let ledger = &w.pipe.processor.ledger;
    let key = &messages[0].key;
    // A worker is mid-file with a live lease: the redelivery backs off (SQS retries later).
    let now = Clock::now(&c);
    let started = ledger
        .start_file(
            "events",
            key,
            None,
            "other-worker",
            now + chrono::Duration::minutes(2),
            now,
        )
        .await
        .unwrap();
    assert!(matches!(
        started,
        s3imports::ports::StartOutcome::Started { attempt: 1, .. }
    ));
    let busy = w.pipe.process(&messages, &c).await;
    assert_eq!(
        busy.batch_item_failures.len(),
        1,
        "a live lease is respected"
    );
    assert!(w.scan(&w.env.stack.events_table).await.is_empty());
    // That worker died (its lease ran out without a heartbeat): the next delivery takes over.
    c.advance(chrono::Duration::minutes(3));
    let done = w.pipe.process(&messages, &c).await;
    assert!(done.batch_item_failures.is_empty());
    let f = ledger.file("events", key).await.unwrap().unwrap();
    assert_eq!(
        (f.status, f.rows_ingested, f.attempts),
        (FileStatus::Succeeded, 1, 2)
    );
    // The dead worker's late finish cannot count the file again.
    let late = ledger
        .finish_file(
            "events",
            &messages[0].run_id,
            key,
            Some("other-worker"),
            &s3imports::model::ledger::FileOutcome::default(),
            Clock::now(&c),
        )
        .await
        .unwrap();
    assert!(late.is_none());
    let run = ledger
        .run("events", &messages[0].run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((run.files_done, run.rows_ingested), (1, 1));
}

#[tokio::test]
async fn events_are_written_25_to_a_request() {
    let w = world().await;
    let mut csv = String::from("customer_id,at,amount\n");
    for i in 0..1000 {
        csv.push_str(&format!("u{},2026-11-27 09:{:02}:00,{i}\n", i % 37, i % 60));
    }
    w.env
        .put_object(&w.bucket, "events/Purchase Summary_20261127.csv", csv)
        .await;
    w.put_config(events_config(&w, "csv", serde_json::json!({})))
        .await;
    w.pipe.run(&clock()).await;
    assert_eq!(w.scan(&w.env.stack.events_table).await.len(), 1000);
    let requests = w.pipe.writer.requests();
    assert_eq!(requests, 40, "1,000 events in BatchWriteItems of 25");
}

#[tokio::test]
async fn a_dead_letter_fails_the_file_with_the_last_reason() {
    let w = world().await;
    let c = clock();
    let messages = one_queued_event_file(&w, &c).await;
    let ledger = &w.pipe.processor.ledger;
    let now = Clock::now(&c);
    // A worker took the file and failed for a retryable reason, then SQS gave up.
    ledger
        .start_file(
            "events",
            &messages[0].key,
            None,
            "w1",
            now + chrono::Duration::minutes(2),
            now,
        )
        .await
        .unwrap();
    ledger
        .release_lease(
            "events",
            &messages[0].key,
            "w1",
            "S3: SlowDown: reduce your request rate",
        )
        .await
        .unwrap();
    let mut event = s3imports_tests::sqs_event(&[(messages[0].clone(), 6)]);
    event.payload.records[0].event_source_arn = Some(format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        w.env.stack.dlq_name
    ));
    let response = s3imports_processor::handler(
        &w.pipe.processor,
        &w.pipe.dlq_name,
        &c,
        s3imports::process::delivery::DEFAULT_MAX_RECEIVES,
        event,
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let f = ledger
        .file("events", &messages[0].key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.status, FileStatus::Failed);
    assert_eq!(
        f.reason.as_deref(),
        Some(
            "processing did not finish after 1 attempt(s); last error: S3: SlowDown: reduce your request rate"
        )
    );
    assert!(w.scan(&w.env.stack.events_table).await.is_empty());
    let run = ledger
        .run("events", &messages[0].run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((run.status, run.files_failed), (RunStatus::Failed, 1));
}

/// One single-row events file, discovered and taken off the queue (not yet processed).
async fn one_queued_event_file(w: &World, c: &FixedClock) -> Vec<s3imports::ports::FileMessage> {
    w.env
        .put_object(
            &w.bucket,
            "events/Purchase Summary_20261127.csv",
            "customer_id,at,amount\nu1,2026-11-27 09:30:00,1\n",
        )
        .await;
    w.put_config(events_config(w, "csv", serde_json::json!({})))
        .await;
    w.pipe.tick(c).await;
    w.pipe.take_messages().await
}

/// Rows that name the same user or record: the later row wins, within a batch and
/// across batches, and every row counts as ingested.
#[tokio::test]
async fn the_later_row_for_the_same_item_wins() {
    let w = world().await;
    let mut users = String::from("id,plan,seats\n");
    let mut aux = String::from("sku,price\n");
    for i in 0..250 {
        // Row 2 and rows 50, 240 (data rows 49 and 239) name the same user and record.
        let (id, sku) = if matches!(i, 0 | 48 | 238) {
            ("dup".to_string(), "dup".to_string())
        } else {
            (format!("u{i}"), format!("s{i}"))
        };
        let seats = if i == 48 {
            String::new()
        } else {
            i.to_string()
        };
        users.push_str(&format!("{id},plan{i},{seats}\n"));
        aux.push_str(&format!("{sku},{i}\n"));
    }
    w.env
        .put_object(&w.bucket, "users/registered_user_data_20261127.csv", users)
        .await;
    w.env
        .put_object(&w.bucket, "aux/aux_data_20261127.csv", aux)
        .await;
    let users_config = w
        .put_config(serde_json::json!({
            "id": "users",
            "name": "Users",
            "kind": {"type": "registered_users"},
            "source": {"bucket": w.bucket, "folder": "users", "datetime_format": "yyyymmdd"},
            "mapping": {"columns": [
                {"column": "id", "attribute": "user_id"},
                {"column": "plan", "attribute": "plan"},
                {"column": "seats", "attribute": "seats", "type": "integer"}
            ]},
            "schedule": {"type": "once"}
        }))
        .await;
    let aux_config = w
        .put_config(serde_json::json!({
            "id": "catalog",
            "name": "Catalog",
            "kind": {"type": "auxiliary", "dataset": "products", "key_column": "sku", "retention_days": 30},
            "source": {"bucket": w.bucket, "folder": "aux", "datetime_format": "yyyymmdd"},
            "mapping": {"columns": [{"column": "price", "attribute": "price", "type": "number"}]},
            "schedule": {"type": "once"}
        }))
        .await;
    let (_, messages, _) = w.pipe.run(&clock()).await;
    assert_eq!(messages.len(), 2);
    for (config, key) in [
        (&users_config, "users/registered_user_data_20261127.csv"),
        (&aux_config, "aux/aux_data_20261127.csv"),
    ] {
        let f = w
            .pipe
            .processor
            .ledger
            .file(&config.id, key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.rows_total, f.rows_ingested, f.rows_failed),
            (250, 250, 0)
        );
    }
    let users = w.scan(&w.env.stack.users_table).await;
    assert_eq!(users.len(), 248);
    let dup = users.iter().find(|u| s(u, "user_id") == "dup").unwrap();
    assert_eq!(s(dup, "plan"), "plan238");
    assert_eq!(s(dup, "seats"), "238");
    let aux = w.scan(&w.env.stack.auxiliary_table).await;
    assert_eq!(aux.len(), 248);
    let dup = aux.iter().find(|r| s(r, "record_key") == "dup").unwrap();
    assert_eq!(s(dup, "price"), "238");
}

/// An import whose config names another import's key: the file fails, naming the secret
/// and its tag, and nothing is decrypted or ingested.
#[tokio::test]
async fn an_import_cannot_use_a_secret_tagged_for_another() {
    let w = world().await;
    let gpg = Gpg::new();
    gpg.key(KEY_EMAIL, KeyType::Curve25519);
    w.env
        .put_secret("other/key", &gpg.secret_key(KEY_EMAIL), &["payroll"])
        .await;
    w.env
        .put_secret("other/pass", &gpg.passphrase, &["payroll"])
        .await;
    w.env
        .put_object(
            &w.bucket,
            "users/registered_user_data_20261127.csv.pgp",
            gpg.encrypt(USERS_CSV.as_bytes(), KEY_EMAIL, &Encrypt::default()),
        )
        .await;
    let mut config = encrypted_users_config(&w, None);
    config["encryption"]["private_key_ref"] = format!("{}/other/key", w.env.prefix).into();
    config["encryption"]["passphrase_ref"] = format!("{}/other/pass", w.env.prefix).into();
    w.put_config(config).await;
    let (_, messages, response) = w.pipe.run(&clock()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "permanent, not retried"
    );
    let f = w
        .pipe
        .processor
        .ledger
        .file("users", &messages[0].key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.status, FileStatus::Failed);
    let reason = f.reason.unwrap();
    assert!(
        reason.contains(&format!(
            "secret `{}/other/key` is not for import `users`",
            w.env.prefix
        )) && reason.contains("its tag `s3imports:import-id` is `payroll`"),
        "{reason}"
    );
    assert!(w.scan(&w.env.stack.users_table).await.is_empty());
}
