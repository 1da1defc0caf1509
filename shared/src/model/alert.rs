//! An import's alert settings: the thresholds that make a run need attention, and its
//! own webhook.

use serde::{Deserialize, Serialize};

use crate::model::config::SecretRef;
use crate::model::ledger::RunRecord;

/// Thresholds above which a run needs attention (config `notifications.alert_when`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertWhen {
    /// Failed rows as a percentage of the rows read, above which the run needs attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_failed_percent: Option<f64>,
    /// Failed rows above which the run needs attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_failed: Option<u64>,
}

/// An import's own webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `https://…` (`http://` only to localhost or 127.0.0.1, for local testing).
    pub url: String,
    /// The HMAC-SHA256 key the body is signed with, in Secrets Manager.
    pub signing_key_ref: SecretRef,
}

impl AlertWhen {
    /// Why a run needs attention, when it does.
    pub fn attention(&self, run: &RunRecord) -> Option<String> {
        let failed = run.rows_failed;
        if let Some(max) = self.rows_failed
            && failed > max
        {
            return Some(format!(
                "{failed} rows failed, above alert_when.rows_failed ({max})"
            ));
        }
        if let Some(max) = self.rows_failed_percent
            && run.rows_total > 0
        {
            let percent = failed as f64 * 100.0 / run.rows_total as f64;
            if percent > max {
                return Some(format!(
                    "{percent:.1}% of rows failed ({failed} of {}), above alert_when.rows_failed_percent ({max}%)",
                    run.rows_total
                ));
            }
        }
        None
    }

    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if let Some(pct) = self.rows_failed_percent
            && !(0.0..100.0).contains(&pct)
        {
            p.push((
                "notifications.alert_when.rows_failed_percent".into(),
                "a percentage from 0 to below 100".into(),
            ));
        }
        if self.rows_failed_percent.is_none() && self.rows_failed.is_none() {
            p.push((
                "notifications.alert_when".into(),
                "give rows_failed_percent, rows_failed or both".into(),
            ));
        }
        p
    }
}

impl Webhook {
    pub fn problems(&self) -> Vec<(String, String)> {
        let ok = url::Url::parse(&self.url).is_ok_and(|u| {
            let host = u.host_str().unwrap_or_default();
            u.username().is_empty()
                && u.password().is_none()
                && !host.is_empty()
                && match u.scheme() {
                    "https" => true,
                    "http" => host == "localhost" || host == "127.0.0.1",
                    _ => false,
                }
        });
        let mut p = Vec::new();
        if !ok || self.url.len() > 2048 {
            p.push((
                "notifications.webhook.url".into(),
                "an https:// URL without a user or password (http:// only to localhost or 127.0.0.1)"
                    .into(),
            ));
        }
        if self.signing_key_ref.0.trim().is_empty() {
            p.push((
                "notifications.webhook.signing_key_ref".into(),
                "the Secrets Manager secret holding the HMAC key".into(),
            ));
        }
        p
    }
}

/// Whether `arn` is an SNS topic ARN.
pub fn topic_arn_problem(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && !parts[5].is_empty()
        && parts[5].len() <= 256
        && parts[5]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (!ok).then(|| "an SNS topic ARN, arn:aws:sns:<region>:<account>:<name>".to_string())
}

/// A webhook URL as records and logs show it: its scheme and host only (its path and
/// query often carry a token).
pub fn shown(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "(an unreadable URL)".to_string(),
        |u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::test_support::run;

    #[test]
    fn thresholds_mark_runs_above_them() {
        let pct = AlertWhen {
            rows_failed_percent: Some(5.0),
            rows_failed: None,
        };
        assert_eq!(pct.attention(&run(100, 5)), None);
        let why = pct.attention(&run(100, 6)).unwrap();
        assert!(why.starts_with("6.0% of rows failed (6 of 100)"), "{why}");
        assert_eq!(pct.attention(&run(0, 0)), None);
        let count = AlertWhen {
            rows_failed_percent: None,
            rows_failed: Some(10),
        };
        assert_eq!(count.attention(&run(1_000_000, 10)), None);
        assert!(count.attention(&run(1_000_000, 11)).is_some());
        assert_eq!(AlertWhen::default().problems().len(), 1);
        let bad = AlertWhen {
            rows_failed_percent: Some(100.0),
            rows_failed: None,
        };
        assert_eq!(bad.problems().len(), 1);
    }

    #[test]
    fn urls_and_topics_are_checked() {
        let hook = |url: &str| Webhook {
            url: url.into(),
            signing_key_ref: SecretRef("s3imports/hook".into()),
        };
        assert!(hook("https://hooks.example.com/x").problems().is_empty());
        assert!(hook("http://127.0.0.1:8080/x").problems().is_empty());
        for bad in [
            "http://hooks.example.com/x",
            "https://",
            "ftp://x",
            "http://localhost:@attacker.example/",
            "https://user:pw@hooks.example.com/",
        ] {
            assert_eq!(hook(bad).problems().len(), 1, "{bad}");
        }
        assert_eq!(
            shown("https://hooks.example.com/s3imports?token=s3cret"),
            "https://hooks.example.com"
        );
        assert!(topic_arn_problem("arn:aws:sns:us-east-1:123456789012:s3imports-alerts").is_none());
        assert!(topic_arn_problem("arn:aws:sqs:us-east-1:123456789012:q").is_some());
        assert!(topic_arn_problem("arn:aws:sns:us-east-1:1234:t").is_some());
    }
}
