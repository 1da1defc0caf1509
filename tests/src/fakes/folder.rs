//! A large folder over the in-memory ports: an import whose folder holds files by the
//! million, all imported by an earlier run, with S3's page of 1,000 keys and a modelled
//! latency a list request (for tests and the bench of discovery at scale).

use std::time::Duration;

use chrono::TimeZone;
use s3imports::model::config::ImportConfig;
use s3imports::ports::Configs as _;

use super::FakeWorld;

pub const BUCKET: &str = "acme";
pub const IMPORT: &str = "imp";
/// Every file's body (its size is its fake ETag).
pub const BODY: &[u8] = b"ID\nu1\n";

/// The key of a file named `secs` seconds after 1 November 2026.
pub fn name(secs: u64) -> String {
    let base = chrono::Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let at = base + chrono::Duration::seconds(secs as i64);
    format!("in/bench_{}.csv", at.format("%Y%m%d%H%M%S"))
}

/// The key of the `i`-th old file: one every two seconds, so names fit between them.
pub fn old(i: u64) -> String {
    name(2 * i)
}

/// A users import every five minutes whose folder holds `files` old files, all
/// imported, the newest key at the last; each list request modelled as `latency`.
pub async fn imported_folder(files: u64, latency: Duration) -> anyhow::Result<FakeWorld> {
    let w = FakeWorld::new(7, 5);
    let config = ImportConfig::from_value(serde_json::json!({
        "id": IMPORT, "name": IMPORT, "kind": {"type": "registered_users"},
        "source": {"bucket": BUCKET, "folder": "in", "datetime_format": "%Y%m%d%H%M%S", "file_prefix": "bench_"},
        "mapping": {"columns": [{"column": "ID", "attribute": "user_id"}]},
        "schedule": {"type": "every", "minutes": 5},
        "notifications": {"recipients": ["ops@example.com"]}
    }))?;
    w.configs.put(config, w.now());
    for i in 0..files {
        w.source.put(BUCKET, &old(i), BODY);
    }
    let etag = super::stores::etag_of(BODY);
    w.ledger.imported(
        IMPORT,
        "r-old",
        BUCKET,
        (0..files).map(|i| (old(i), BODY.len() as u64, etag.clone())),
        w.now(),
    );
    if files > 0 {
        w.configs.set_newest_key(IMPORT, &old(files - 1)).await?;
    }
    w.source.set_list_latency(latency);
    Ok(w)
}
