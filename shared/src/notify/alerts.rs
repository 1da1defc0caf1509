//! Alerts beyond email: when a run ends, its summary (JSON) goes to the stack's SNS
//! topic, and to an import's own SNS topic or HTTPS webhook (signed with an HMAC key
//! from Secrets Manager, retried with backoff). An import's `alert_when` thresholds
//! mark a run as needing attention, which also sends its email where `on_success` is
//! false. Every delivery is recorded on the run, failures included.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::error::{ErrorClass, ServiceError};
use crate::model::alert::shown;
use crate::model::config::ImportConfig;
use crate::model::ledger::{AlertDelivery, AlertsSent, FileRecord, RunRecord};
use crate::model::status::RunStatus;
use crate::ports::AlertSink;

/// A finished run, as alerts carry it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub import_id: String,
    pub import_name: String,
    pub run_id: String,
    pub status: RunStatus,
    pub needs_attention: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub files: FileCounts,
    pub rows: RowCounts,
    /// The run's own reason, then each file's.
    pub reasons: Vec<String>,
    /// Failed-rows reports: (file key, report key) in the reports bucket.
    pub reports: Vec<ReportRef>,
    pub reports_bucket: String,
    /// Imported files found changed under their names (see the run email).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed_files: Vec<crate::model::ledger::ChangedFile>,
    /// Files whose content repeats an earlier file's, and that file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<Duplicate>,
    /// A list held more than [`MAX_LISTED`] entries: the first are here, the run's
    /// history has them all.
    pub lists_cut: bool,
}

/// A list's first [`MAX_LISTED`] entries.
fn first<T>(mut list: Vec<T>) -> Vec<T> {
    list.truncate(MAX_LISTED);
    list
}

#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub file: String,
    pub repeats: String,
    pub skipped: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileCounts {
    pub total: u64,
    pub succeeded: u64,
    pub partially_succeeded: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowCounts {
    pub total: u64,
    pub imported: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportRef {
    pub file: String,
    pub report_key: String,
}

impl RunSummary {
    pub fn new(
        config: &ImportConfig,
        run: &RunRecord,
        files: &[FileRecord],
        attention: Option<String>,
        reports_bucket: &str,
    ) -> Self {
        let reasons: Vec<String> = run
            .reason
            .iter()
            .cloned()
            .chain(
                files
                    .iter()
                    .filter_map(|f| f.reason.as_ref().map(|r| format!("{}: {r}", f.key))),
            )
            .map(|r| r.chars().take(MAX_REASON_CHARS).collect())
            .collect();
        let reports: Vec<ReportRef> = files
            .iter()
            .filter_map(|f| {
                Some(ReportRef {
                    file: f.key.clone(),
                    report_key: f.report_key.clone()?,
                })
            })
            .collect();
        let duplicates: Vec<Duplicate> = files
            .iter()
            .filter_map(|f| {
                let d = f.duplicate_of.as_ref()?;
                Some(Duplicate {
                    file: f.key.clone(),
                    repeats: d.key.clone(),
                    skipped: d.skipped,
                })
            })
            .collect();
        let lists_cut = [
            reasons.len(),
            reports.len(),
            duplicates.len(),
            run.changed_files.len(),
        ]
        .iter()
        .any(|n| *n > MAX_LISTED);
        Self {
            import_id: config.id.clone(),
            import_name: config.name.clone(),
            run_id: run.run_id.clone(),
            status: run.status,
            needs_attention: attention.is_some(),
            attention,
            started_at: run.started_at,
            finished_at: run.finished_at,
            files: FileCounts {
                total: run.files_total,
                succeeded: run.files_succeeded,
                partially_succeeded: run.files_partial,
                failed: run.files_failed,
            },
            rows: RowCounts {
                total: run.rows_total,
                imported: run.rows_ingested,
                failed: run.rows_failed,
            },
            reasons: first(reasons),
            reports: first(reports),
            reports_bucket: reports_bucket.to_string(),
            changed_files: first(run.changed_files.clone()),
            duplicates: first(duplicates),
            lists_cut,
        }
    }

    /// The summary as JSON of at most `max` bytes: its lists are halved (and
    /// `lists_cut` set) until it fits. The lists are bounded by count, but their entries
    /// (keys, reasons) by bytes only each, so fifty of each can pass SNS's limit.
    pub fn to_json_within(&mut self, max: usize) -> String {
        crate::codec::limits::json_within(
            self,
            max,
            |s| {
                [
                    s.reasons.len(),
                    s.reports.len(),
                    s.changed_files.len(),
                    s.duplicates.len(),
                ]
                .into_iter()
                .max()
                .unwrap_or(0)
            },
            |s, n| {
                s.reasons.truncate(n);
                s.reports.truncate(n);
                s.changed_files.truncate(n);
                s.duplicates.truncate(n);
                s.lists_cut = true;
            },
        )
    }

    /// A short subject line: SNS takes ASCII only, no line breaks or control
    /// characters, fewer than 100 characters.
    /// https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
    pub fn subject(&self) -> String {
        let s = format!(
            "s3imports {}: {}{}",
            self.import_id,
            self.status.label(),
            if self.needs_attention {
                " (needs attention)"
            } else {
                ""
            }
        );
        s.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .take(MAX_SUBJECT_CHARS)
            .collect()
    }
}

/// Where a stack sends run summaries: its sink, its own topic, and the bucket the
/// summaries' report keys are in.
#[derive(Clone)]
pub struct Alerting {
    pub sink: std::sync::Arc<dyn AlertSink>,
    /// The stack's topic, which gets every run's summary (None: no such topic).
    pub topic_arn: Option<String>,
    pub reports_bucket: String,
}

impl Alerting {
    /// Sends a finished run's summary to the stack's topic and the import's own topic
    /// and webhook; returns each delivery, failed ones included.
    pub async fn send(
        &self,
        config: &ImportConfig,
        run: &RunRecord,
        files: &[FileRecord],
        attention: Option<String>,
        secrets: &dyn crate::ports::Secrets,
        now: DateTime<Utc>,
    ) -> AlertsSent {
        let mut summary =
            RunSummary::new(config, run, files, attention.clone(), &self.reports_bucket);
        let body = summary.to_json_within(MAX_BODY_BYTES);
        let subject = summary.subject();
        let n = &config.notifications;
        let mut deliveries = Vec::new();
        let topics = self.topic_arn.iter().chain(n.sns_topic_arn.iter());
        for topic in topics {
            deliveries.push(
                deliver(format!("sns:{topic}"), || {
                    self.sink.publish(topic, &subject, &body)
                })
                .await,
            );
        }
        if let Some(hook) = &n.webhook {
            let target = format!("webhook:{}", shown(&hook.url));
            let delivery = match secrets.secret(&hook.signing_key_ref, &config.id).await {
                Ok(key) => {
                    let at = now.timestamp();
                    let headers = vec![
                        (
                            SIGNATURE_HEADER.to_string(),
                            sign(key.as_bytes(), at, &body),
                        ),
                        (TIMESTAMP_HEADER.to_string(), at.to_string()),
                        (DELIVERY_HEADER.to_string(), run.run_id.clone()),
                    ];
                    deliver(target, || self.sink.post(&hook.url, &headers, &body)).await
                }
                Err(e) => AlertDelivery {
                    target,
                    delivered: false,
                    attempts: 0,
                    error: Some(format!("the signing key: {e}")),
                },
            };
            deliveries.push(delivery);
        }
        AlertsSent {
            attention,
            deliveries,
        }
    }
}

/// The most entries of each list a summary carries (SNS takes 256 KB a message).
pub const MAX_LISTED: usize = 50;
/// The largest summary body sent: SNS's message limit (256 KB, in bytes).
/// https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
pub const MAX_BODY_BYTES: usize = 262_144;
/// SNS subjects must be shorter than 100 characters.
const MAX_SUBJECT_CHARS: usize = 99;
/// The most characters of each reason a summary carries.
const MAX_REASON_CHARS: usize = 500;

/// The header that names the run a webhook delivery is for.
pub const DELIVERY_HEADER: &str = "x-s3imports-run";

/// The header that carries a webhook's signature.
pub const SIGNATURE_HEADER: &str = "x-s3imports-signature";
/// The header that carries the time signed with the body (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-s3imports-timestamp";

/// The webhook signature of `body` sent at `timestamp`: `v1=` and the hex HMAC-SHA256,
/// under `key`, of `<timestamp>.<body>` (the time is signed so a receiver can refuse
/// an old delivery replayed).
pub fn sign(key: &[u8], timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

/// Tries per delivery, and the wait before the second (doubling after).
pub const ATTEMPTS: u32 = 3;
pub const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(500);

/// Sends one delivery, retrying a retryable failure with backoff.
pub async fn deliver<F, Fut>(target: String, mut send: F) -> AlertDelivery
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ServiceError>>,
{
    let mut attempts = 0;
    let mut wait = FIRST_BACKOFF;
    loop {
        attempts += 1;
        match send().await {
            Ok(()) => {
                return AlertDelivery {
                    target,
                    delivered: true,
                    attempts,
                    error: None,
                };
            }
            Err(e) if e.class == ErrorClass::Retryable && attempts < ATTEMPTS => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => {
                return AlertDelivery {
                    target,
                    delivered: false,
                    attempts,
                    error: Some(e.to_string()),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::run;

    #[test]
    fn signatures_are_hmac_sha256_of_time_and_body() {
        // python3 -c "import hmac,hashlib; print(hmac.new(b'key', b'1700000000.{}',
        // hashlib.sha256).hexdigest())"
        let sig = sign(b"key", 1_700_000_000, "{}");
        assert_eq!(
            sig,
            "v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
        assert_ne!(sig, sign(b"key", 1_700_000_001, "{}"));
        assert_ne!(sig, sign(b"other", 1_700_000_000, "{}"));
    }

    #[test]
    fn subjects_and_bodies_fit_sns() {
        let config = ImportConfig::from_value(serde_json::json!({
            "id": "i", "name": "n", "kind": {"type": "registered_users"},
            "source": {"bucket": "acme-exports", "folder": "f", "datetime_format": "yyyymmdd"},
            "mapping": {"columns": [{"column": "ID", "attribute": "user_id"}]},
            "schedule": {"type": "hourly", "minute": 0}
        }))
        .unwrap();
        let mut r = run(10, 10);
        r.reason = Some("x".repeat(10_000));
        // Keys of 1,024 bytes (S3's most), reasons of 4-byte characters.
        let long_key = "😀".repeat(255);
        let files: Vec<FileRecord> = (0..50)
            .map(|i| {
                let mut f = FileRecord::queued(
                    "i",
                    "r",
                    "b",
                    &format!("{long_key}{i}"),
                    1,
                    "e",
                    Utc::now(),
                );
                f.reason = Some("😀".repeat(2000));
                f.report_key = Some(format!("failed-rows/{long_key}{i}.csv"));
                f.duplicate_of = Some(crate::model::ledger::DuplicateOf {
                    key: format!("{long_key}{i}-first"),
                    run_id: "r0".into(),
                    skipped: false,
                });
                f
            })
            .collect();
        let mut summary = RunSummary::new(&config, &r, &files, Some("a\nb".repeat(80)), "bucket");
        let before = serde_json::to_string(&summary).unwrap().len();
        assert!(
            before > MAX_BODY_BYTES,
            "the case is over SNS's limit: {before}"
        );
        let body = summary.to_json_within(MAX_BODY_BYTES);
        assert!(body.len() <= MAX_BODY_BYTES, "{}", body.len());
        assert!(summary.lists_cut && !summary.reasons.is_empty());
        let subject = summary.subject();
        assert!(
            subject.chars().count() < 100 && subject.is_ascii(),
            "{subject}"
        );
        assert!(!subject.contains('\n'));
    }
}
