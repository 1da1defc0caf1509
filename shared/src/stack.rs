//! The stack's own resources, named in one place.
//!
//! Names come from the environment (set by `template.yaml` on each function) with
//! defaults that match the template, so the CLI and tests find the same resources.
//! `tests/` provisions exactly these in moto and a test checks them against the
//! template.

use std::env;

/// Environment variables a function or the CLI reads, with their defaults.
pub const ENV_CONFIGS_TABLE: &str = "S3IMPORTS_CONFIGS_TABLE";
pub const ENV_LEDGER_TABLE: &str = "S3IMPORTS_LEDGER_TABLE";
pub const ENV_USERS_TABLE: &str = "S3IMPORTS_USERS_TABLE";
pub const ENV_ANONYMOUS_TABLE: &str = "S3IMPORTS_ANONYMOUS_USERS_TABLE";
pub const ENV_EVENTS_TABLE: &str = "S3IMPORTS_EVENTS_TABLE";
pub const ENV_AUXILIARY_TABLE: &str = "S3IMPORTS_AUXILIARY_TABLE";
pub const ENV_SEGMENTS_TABLE: &str = "S3IMPORTS_SEGMENTS_TABLE";
pub const ENV_QUEUE_NAME: &str = "S3IMPORTS_QUEUE_NAME";
pub const ENV_DLQ_NAME: &str = "S3IMPORTS_DLQ_NAME";
pub const ENV_REPORTS_BUCKET: &str = "S3IMPORTS_REPORTS_BUCKET";
pub const ENV_SENDER: &str = "S3IMPORTS_SENDER";
pub const ENV_ALERTS_TOPIC_ARN: &str = "S3IMPORTS_ALERTS_TOPIC_ARN";

/// The due-imports index on the configs table: active imports by next run time.
pub const DUE_INDEX: &str = "due-index";

/// Names of every resource the stack owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub configs_table: String,
    pub ledger_table: String,
    pub users_table: String,
    pub anonymous_users_table: String,
    pub events_table: String,
    pub auxiliary_table: String,
    pub segments_table: String,
    pub queue_name: String,
    pub dlq_name: String,
    pub reports_bucket: String,
    /// The verified SES identity emails are sent from.
    pub sender: String,
    /// The stack's SNS topic for run summaries (empty: none).
    pub alerts_topic_arn: String,
}

/// A DynamoDB table's key schema (all keys are strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub name: String,
    pub partition_key: &'static str,
    pub sort_key: Option<&'static str>,
    pub indexes: Vec<IndexSpec>,
    pub ttl_attribute: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: Option<&'static str>,
}

impl Default for Stack {
    fn default() -> Self {
        Self::with_prefix("s3imports")
    }
}

impl Stack {
    /// Every resource named `<prefix>-<role>`; tests use a unique prefix each.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            configs_table: format!("{prefix}-configs"),
            ledger_table: format!("{prefix}-ledger"),
            users_table: format!("{prefix}-users"),
            anonymous_users_table: format!("{prefix}-anonymous-users"),
            events_table: format!("{prefix}-events"),
            auxiliary_table: format!("{prefix}-auxiliary"),
            segments_table: format!("{prefix}-segments"),
            queue_name: format!("{prefix}-files"),
            dlq_name: format!("{prefix}-files-dlq"),
            reports_bucket: format!("{prefix}-reports"),
            sender: "s3imports@example.com".into(),
            // The local emulator's account and region (in AWS the template sets it).
            alerts_topic_arn: format!("arn:aws:sns:us-east-1:123456789012:{prefix}-alerts"),
        }
    }

    /// Names from the environment, defaulting to [`Stack::default`].
    pub fn from_env() -> Self {
        Self::from_lookup(|k| env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let pick =
            |key: &str, default: String| get(key).filter(|v| !v.is_empty()).unwrap_or(default);
        Self {
            configs_table: pick(ENV_CONFIGS_TABLE, d.configs_table),
            ledger_table: pick(ENV_LEDGER_TABLE, d.ledger_table),
            users_table: pick(ENV_USERS_TABLE, d.users_table),
            anonymous_users_table: pick(ENV_ANONYMOUS_TABLE, d.anonymous_users_table),
            events_table: pick(ENV_EVENTS_TABLE, d.events_table),
            auxiliary_table: pick(ENV_AUXILIARY_TABLE, d.auxiliary_table),
            segments_table: pick(ENV_SEGMENTS_TABLE, d.segments_table),
            queue_name: pick(ENV_QUEUE_NAME, d.queue_name),
            dlq_name: pick(ENV_DLQ_NAME, d.dlq_name),
            reports_bucket: pick(ENV_REPORTS_BUCKET, d.reports_bucket),
            sender: pick(ENV_SENDER, d.sender),
            alerts_topic_arn: pick(ENV_ALERTS_TOPIC_ARN, d.alerts_topic_arn),
        }
    }

    /// The environment that makes [`Stack::from_env`] return `self`.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (ENV_CONFIGS_TABLE, self.configs_table.clone()),
            (ENV_LEDGER_TABLE, self.ledger_table.clone()),
            (ENV_USERS_TABLE, self.users_table.clone()),
            (ENV_ANONYMOUS_TABLE, self.anonymous_users_table.clone()),
            (ENV_EVENTS_TABLE, self.events_table.clone()),
            (ENV_AUXILIARY_TABLE, self.auxiliary_table.clone()),
            (ENV_SEGMENTS_TABLE, self.segments_table.clone()),
            (ENV_QUEUE_NAME, self.queue_name.clone()),
            (ENV_DLQ_NAME, self.dlq_name.clone()),
            (ENV_REPORTS_BUCKET, self.reports_bucket.clone()),
            (ENV_SENDER, self.sender.clone()),
            (ENV_ALERTS_TOPIC_ARN, self.alerts_topic_arn.clone()),
        ]
    }

    /// Every table with its key schema: the one definition the code, the test
    /// provisioning and the template check share.
    pub fn tables(&self) -> Vec<TableSpec> {
        let table = |name: &String, pk, sk| TableSpec {
            name: name.clone(),
            partition_key: pk,
            sort_key: sk,
            indexes: Vec::new(),
            ttl_attribute: None,
        };
        vec![
            TableSpec {
                indexes: vec![IndexSpec {
                    name: DUE_INDEX,
                    partition_key: "status",
                    sort_key: Some("next_run_at"),
                }],
                ..table(&self.configs_table, "id", None)
            },
            table(&self.ledger_table, "pk", Some("sk")),
            table(&self.users_table, "user_id", None),
            table(&self.anonymous_users_table, "anonymous_id", None),
            table(&self.events_table, "user_id", Some("event_key")),
            TableSpec {
                ttl_attribute: Some("expires_at"),
                ..table(&self.auxiliary_table, "dataset", Some("record_key"))
            },
            // A partition per segment for its members; `#segments` for the segments.
            table(&self.segments_table, "segment", Some("member")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_round_trip() {
        let s = Stack::with_prefix("t1");
        let env = s.to_env();
        let back =
            Stack::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()));
        assert_eq!(back, s);
    }

    #[test]
    fn defaults_when_unset_or_empty() {
        let s = Stack::from_lookup(|k| (k == ENV_USERS_TABLE).then(String::new));
        assert_eq!(s, Stack::default());
        assert_eq!(s.users_table, "s3imports-users");
    }
}
