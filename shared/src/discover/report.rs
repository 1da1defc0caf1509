//! What a tick did, per import, and how its failures are classed and told.

use serde::Serialize;

use crate::error::ErrorClass;
use crate::ports::StoreError;

/// What one tick did, per due import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TickReport {
    pub imports: Vec<ImportTick>,
}

/// The most bytes of a tick's report the function returns: Lambda refuses a response
/// over 6 MB (the invocation then fails), and a first run over a large folder queues
/// keys by the hundred thousand.
/// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const MAX_REPORT_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Serialize)]
pub struct ImportTick {
    pub import_id: String,
    pub run_id: Option<String>,
    pub outcome: TickOutcome,
    /// Keys enqueued by this run (the first of them, in a report cut to fit
    /// Lambda's response limit: see [`TickReport::bounded`]).
    pub files: Vec<String>,
    /// How many keys this run enqueued (set in a bounded report).
    #[serde(skip_serializing_if = "is_zero")]
    pub files_queued: usize,
    /// Keys of earlier runs sent again: claimed, but their messages never sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requeued: Vec<String>,
    /// Imported files whose objects changed under their names (reported once).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<crate::model::ledger::ChangedFile>,
    /// ListObjectsV2 requests the listing took.
    pub list_requests: u32,
    pub reason: Option<String>,
    /// The run failed for the stack's own reason (its queue, ledger or configs
    /// table), not the customer's: the cause, as the `DiscoveryFailures` metric
    /// names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_cause: Option<String>,
}

pub(super) fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why a tick failed as a whole (the discovery function then fails, so its `Errors`
/// alarm fires besides `DiscoveryFailures`).
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The due imports could not be read: the configs table.
    #[error("the due imports could not be read: {0}")]
    Configs(#[source] StoreError),
    /// Every due import failed for the same reason of the stack's own: the stack is
    /// broken (a queue or table missing or not granted), not any one import.
    #[error(
        "every due import ({count}) failed for the same reason of the stack's own ({cause}); the first: {first}"
    )]
    Stack {
        count: usize,
        cause: String,
        first: String,
    },
}

/// A failure of the stack's own resources, as a run's reason, email and API say it:
/// not the customer's fault, and what the operator should check.
pub fn stack_fault_reason(e: &StoreError) -> String {
    let check = match e {
        StoreError::Service(s) => match s.service {
            "SQS" => {
                "the files queue exists (S3IMPORTS_QUEUE_NAME) and the function's role may use it (sqs:GetQueueUrl, sqs:SendMessage in template.yaml)"
            }
            "DynamoDB" => {
                "the ledger and configs tables exist (S3IMPORTS_LEDGER_TABLE, S3IMPORTS_CONFIGS_TABLE) and the function's role may write them (template.yaml); a throttled table needs capacity"
            }
            "S3" => {
                "the reports bucket exists (S3IMPORTS_REPORTS_BUCKET) and the function's role may write it"
            }
            _ => "the stack's resources and the function's role (template.yaml)",
        },
        _ => "the stack's resources and the function's role (template.yaml)",
    };
    format!(
        "the s3imports stack could not run this import ({e}). This is the stack's own failure, not a problem with your files or bucket: its operator should check that {check}. The next run tries again."
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TickOutcome {
    /// New files were enqueued.
    Enqueued,
    NoNewFiles,
    /// The run failed as a whole (bucket unreachable, folder missing, ...).
    Failed,
    /// Another tick claimed this run first.
    ClaimedElsewhere,
    /// The import duplicates another active one and was marked invalid.
    Duplicate,
}

impl TickReport {
    /// The report within `max` bytes of JSON: each import's list of keys halved until
    /// it fits (`files_queued` keeps the count; the ledger has every key).
    pub fn bounded(mut self, max: usize) -> Self {
        for t in &mut self.imports {
            t.files_queued = t.files.len();
        }
        crate::codec::limits::json_within(
            &mut self,
            max,
            |r| {
                r.imports
                    .iter()
                    .map(|t| t.files.len().max(t.requeued.len()).max(t.changed.len()))
                    .max()
                    .unwrap_or(0)
            },
            |r, n| {
                for t in &mut r.imports {
                    t.files.truncate(n);
                    t.requeued.truncate(n);
                    t.changed.truncate(n);
                }
            },
        );
        self
    }
}

impl crate::error::Classify for TickError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Configs(e) => e.class(),
            Self::Stack { .. } => ErrorClass::Retryable,
        }
    }
}

impl ImportTick {
    pub(super) fn new(import_id: &str, outcome: TickOutcome) -> Self {
        Self {
            import_id: import_id.to_string(),
            run_id: None,
            outcome,
            files: Vec::new(),
            files_queued: 0,
            requeued: Vec::new(),
            changed: Vec::new(),
            list_requests: 0,
            reason: None,
            stack_cause: None,
        }
    }
}

pub(super) fn duplicate_reason(other: &str) -> String {
    format!(
        "duplicates active import `{other}` (same type, sub-type, bucket and folder); archive one of them"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_report_of_a_huge_first_run_fits_lambdas_response_limit() {
        let mut t = ImportTick::new("big", TickOutcome::Enqueued);
        // 200,000 keys of 100 bytes: 20 MB of keys.
        t.files = (0..200_000)
            .map(|i| format!("{}{i:08}", "k".repeat(92)))
            .collect();
        let report = TickReport { imports: vec![t] }.bounded(MAX_REPORT_BYTES);
        let size = serde_json::to_vec(&report).unwrap().len();
        assert!(size <= MAX_REPORT_BYTES, "{size}");
        assert_eq!(report.imports[0].files_queued, 200_000);
        assert!(!report.imports[0].files.is_empty());
    }
}
