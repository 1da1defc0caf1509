//! Hostile and malformed files through the processor Lambda's handler against moto:
//! a stray quote, non-ASCII headers, binary files, oversized rows, a decompression
//! bomb, a report that would outgrow its cap. Each checks the recorded outcome (the
//! counts add up, the reason names the cause and the parameter) and that permanent
//! failures are not retried.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use s3imports::Clock;
use s3imports::model::ledger::FileRecord;
use s3imports::model::status::FileStatus;
use s3imports_tests::clock;
use s3imports_tests::gpg::{Encrypt, Gpg, KeyType};
use s3imports_tests::{Pipeline, TestEnv};
use std::io::Write as _;

struct World {
    env: TestEnv,
    bucket: String,
    pipe: Pipeline,
}

async fn world() -> World {
    let (env, bucket, pipe) = s3imports_tests::stage("hostile").await;
    World { env, bucket, pipe }
}

const KEY: &str = "aux/aux_data_20261127.csv";

impl World {
    /// An auxiliary-data import of `customer_id,amount` files in `aux/`.
    fn config(&self, extra: serde_json::Value) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": "aux",
            "name": "Amounts",
            "kind": {"type": "auxiliary", "dataset": "amounts", "key_column": "customer_id", "retention_days": 30},
            "source": {"bucket": self.bucket, "folder": "aux", "datetime_format": "yyyymmdd"},
            "mapping": {"columns": [
                {"column": "amount", "attribute": "amount", "type": "number"}
            ]},
            "schedule": {"type": "once"}
        });
        for (k, val) in extra.as_object().cloned().unwrap_or_default() {
            v[k] = val;
        }
        v
    }

    async fn put_config(&self, value: serde_json::Value) {
        self.pipe.put_config(value, Clock::now(&clock())).await;
    }

    /// Makes a PGP key, stores it and its passphrase as secrets, and returns the config
    /// fields that name them.
    async fn pgp(&self, gpg: &Gpg) -> serde_json::Value {
        gpg.key("x@acme.example", KeyType::Curve25519);
        self.env
            .put_secret("k/key", &gpg.secret_key("x@acme.example"), &["aux"])
            .await;
        self.env
            .put_secret("k/pass", &gpg.passphrase, &["aux"])
            .await;
        serde_json::json!({"encryption": {
            "type": "pgp",
            "private_key_ref": format!("{}/k/key", self.env.prefix),
            "passphrase_ref": format!("{}/k/pass", self.env.prefix)
        }})
    }

    /// Uploads `body` as `key`, runs one tick and processes what it queued; returns the
    /// file's ledger record, after checking it was not handed back for a retry.
    async fn import(&self, key: &str, body: impl Into<Vec<u8>>) -> FileRecord {
        self.env.put_object(&self.bucket, key, body).await;
        let (_, messages, response) = self.pipe.run(&clock()).await;
        assert_eq!(messages.len(), 1, "one file queued");
        assert!(
            response.batch_item_failures.is_empty(),
            "a permanent outcome is not retried"
        );
        let f = self
            .pipe
            .processor
            .ledger
            .file("aux", &messages[0].key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            f.rows_total,
            f.rows_ingested + f.rows_failed,
            "counts add up: {f:?}"
        );
        f
    }

    async fn report(&self, f: &FileRecord) -> String {
        self.env
            .report(f.report_key.as_deref().expect("a report"))
            .await
    }

    async fn items(&self) -> usize {
        self.env
            .clients
            .dynamodb
            .scan()
            .table_name(&self.env.stack.auxiliary_table)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .expect("scan")
            .count() as usize
    }
}

fn reason(f: &FileRecord) -> &str {
    f.reason.as_deref().unwrap_or_default()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A stray quote used to swallow the rest of the file into one field and end
/// "succeeded": now that row fails, the file is partial, and the reason says how many
/// lines were lost and where the quote opened.
#[tokio::test]
async fn an_unclosed_quote_fails_its_row_and_says_how_many_lines_it_took() {
    let w = world().await;
    w.put_config(w.config(serde_json::json!({}))).await;
    let mut csv = String::from("customer_id,amount\nu1,1\nu2,2\n\"u3,3\n");
    for i in 0..5000 {
        csv.push_str(&format!("v{i},{i}\n"));
    }
    let f = w.import(KEY, csv).await;
    assert_eq!(f.status, FileStatus::PartiallySucceeded, "{f:?}");
    assert_eq!((f.rows_total, f.rows_ingested, f.rows_failed), (3, 2, 1));
    assert!(
        reason(&f).contains("row 4 opens a quoted field on line 4 that is never closed")
            && reason(&f).contains("5000 line(s)"),
        "{}",
        reason(&f)
    );
    let report = w.report(&f).await;
    assert!(
        report.contains("a quoted field that starts on line 4 is never closed"),
        "{report}"
    );
    assert_eq!(w.items().await, 2);
}

/// A plain CSV whose header starts with a letter whose UTF-8 lead byte is 0xC3 (the
/// PGP tag byte of a session-key packet) used to be refused as PGP.
#[tokio::test]
async fn a_non_ascii_header_is_text_not_pgp() {
    let w = world().await;
    w.put_config(w.config(serde_json::json!({
        "kind": {"type": "auxiliary", "dataset": "amounts", "key_column": "Éclient", "retention_days": 30},
        "mapping": {"columns": [{"column": "Ñúmero", "attribute": "amount", "type": "number"}]}
    })))
    .await;
    let f = w.import(KEY, "Éclient,Ñúmero\nu1,1\nu2,2\n").await;
    assert_eq!(f.status, FileStatus::Succeeded, "{f:?}");
    assert_eq!(f.rows_ingested, 2);
}

/// A PNG named `.csv` fails as what it is, and is not retried.
#[tokio::test]
async fn a_binary_file_named_csv_says_what_it_looks_like() {
    let w = world().await;
    w.put_config(w.config(serde_json::json!({}))).await;
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10".to_vec();
    png.extend(std::iter::repeat_n(0xAAu8, 4096));
    let f = w.import(KEY, png).await;
    assert_eq!(f.status, FileStatus::Failed, "{f:?}");
    assert!(
        reason(&f).contains("it looks like a PNG image"),
        "{}",
        reason(&f)
    );

    // The same for an encrypted import: "not PGP-encrypted (a PNG image)".
    let w = world().await;
    let gpg = Gpg::new();
    let encryption = w.pgp(&gpg).await;
    w.put_config(w.config(encryption)).await;
    let f = w
        .import(
            "aux/aux_data_20261127.csv.pgp",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
        )
        .await;
    assert!(
        reason(&f).contains("is not encrypted (a PNG image)"),
        "{}",
        reason(&f)
    );
}

/// A row above the row limit fails with the limit and its parameter; the rows around
/// it are imported; the report keeps only the first KiB of it.
#[tokio::test]
async fn an_oversized_row_fails_alone() {
    let mut w = world().await;
    w.pipe.processor.settings.limits.max_row_bytes = 64 * 1024;
    w.put_config(w.config(serde_json::json!({}))).await;
    let csv = format!(
        "customer_id,amount\nu1,1\n{},2\nu3,3\n",
        "x".repeat(200_000)
    );
    let f = w.import(KEY, csv).await;
    assert_eq!(f.status, FileStatus::PartiallySucceeded, "{f:?}");
    assert_eq!((f.rows_total, f.rows_ingested, f.rows_failed), (3, 2, 1));
    let report = w.report(&f).await;
    assert!(
        report.contains("the row is larger than 65536 bytes (200003 bytes, lines 3-3)")
            && report.contains("stack parameter MaxRowBytes"),
        "{report}"
    );
    assert!(
        report.len() < 3000,
        "the report keeps a KiB of the row: {}",
        report.len()
    );
    assert!(report.contains("…[cut: the row has"), "{report}");
}

/// A gzip of one endless line (no line break, 64 MiB of plaintext): the one row fails
/// as too large, memory stays at the row limit (see `make bench` for RSS), nothing
/// is retried.
#[tokio::test]
async fn an_endless_gzipped_line_is_one_failed_row() {
    let w = world().await;
    w.put_config(w.config(serde_json::json!({}))).await;
    let mut line = b"customer_id,amount\n".to_vec();
    line.extend(std::iter::repeat_n(b'a', 64 << 20));
    let f = w.import("aux/aux_data_20261127.csv.gz", gzip(&line)).await;
    assert_eq!(f.status, FileStatus::Failed, "{f:?}");
    assert_eq!((f.rows_total, f.rows_failed), (1, 1));
    let report = w.report(&f).await;
    assert!(
        report.contains("the row is larger than 1048576 bytes"),
        "{report}"
    );
}

/// A decompression bomb stops at the plaintext limit: a permanent failure that names
/// the size and the parameter, never retried (it used to be decompressed five times).
#[tokio::test]
async fn a_gzip_bomb_stops_at_the_plaintext_limit() {
    let mut w = world().await;
    w.pipe.processor.settings.limits.max_plaintext_bytes = 8 << 20;
    w.put_config(w.config(serde_json::json!({}))).await;
    // Rows of 4 KiB (an unmapped padding column), so the 8 MiB before the limit are
    // about 2,000 rows and the 32 MiB of the whole file would be 8,000.
    let mut csv = b"customer_id,amount,pad\n".to_vec();
    let pad = "p".repeat(4090);
    let mut i = 0;
    while csv.len() < 32 << 20 {
        csv.extend_from_slice(format!("u{i},1,{pad}\n").as_bytes());
        i += 1;
    }
    let f = w.import("aux/aux_data_20261127.csv.gz", gzip(&csv)).await;
    // Rows before the limit stay imported; the file is partial with the reason.
    assert_eq!(f.status, FileStatus::PartiallySucceeded, "{f:?}");
    assert!(
        reason(&f).contains("larger than 8 MiB")
            && reason(&f).contains("stack parameter ProcessorEphemeralStorageMB"),
        "{}",
        reason(&f)
    );
    assert!(
        f.rows_ingested > 1000 && f.rows_ingested < 2100,
        "only rows before the limit: {f:?}"
    );

    // Encrypted, the plaintext is refused whole: nothing is parsed before the PGP
    // checks, and the spool stops at the limit.
    let mut w = world().await;
    w.pipe.processor.settings.limits.max_plaintext_bytes = 1 << 20;
    let gpg = Gpg::new();
    let encryption = w.pgp(&gpg).await;
    w.put_config(w.config(encryption)).await;
    let file = gpg.encrypt(
        &csv[..4 << 20],
        "x@acme.example",
        &Encrypt {
            compress: Some("zlib"),
            ..Default::default()
        },
    );
    let f = w.import("aux/aux_data_20261127.csv.pgp", file).await;
    assert_eq!(f.status, FileStatus::Failed, "{f:?}");
    assert_eq!(f.rows_ingested, 0);
    assert!(reason(&f).contains("larger than 1 MiB"), "{}", reason(&f));
    assert_eq!(w.items().await, 0);
}

/// Thousands of bad rows with a tiny report cap: the report stops growing, says how
/// many rows it leaves out, and the counts in the ledger stay exact.
#[tokio::test]
async fn a_full_report_keeps_the_counts() {
    let mut w = world().await;
    w.pipe.processor.settings.limits.max_report_bytes = 16 * 1024;
    w.put_config(w.config(serde_json::json!({}))).await;
    let mut csv = String::from("customer_id,amount\n");
    for i in 0..3000 {
        csv.push_str(&format!("u{i},not-a-number-{}\n", "z".repeat(50)));
    }
    csv.push_str("ok,1\n");
    let f = w.import(KEY, csv).await;
    assert_eq!(
        (f.rows_total, f.rows_ingested, f.rows_failed),
        (3001, 1, 3000)
    );
    let report = w.report(&f).await;
    assert!(report.len() < 17 * 1024, "{}", report.len());
    let listed = report.lines().count() - 2; // header and the closing note
    let omitted = 3000 - listed;
    assert!(
        report.contains(&format!("{omitted} more failed row(s) are not listed")),
        "{report}"
    );
    assert!(
        reason(&f).contains(&format!("({omitted} more reached its size limit)")),
        "{}",
        reason(&f)
    );
}
