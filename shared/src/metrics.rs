//! Metrics in CloudWatch's embedded metric format (EMF): one JSON line on standard
//! output per event, which CloudWatch Logs turns into metrics of the stack's namespace
//! (no `PutMetricData` call, no extra permission). Dimensions stay cheap: the stack,
//! and the import id only where the operator opts in (`MetricsPerImport`).
//!
//! Hand-written: the format is a small JSON document, and the maintained crates either
//! pull in a second metrics facade or are not kept for Lambda's Rust runtime;
//! `tests/data/emf.schema.json` (the published specification's rules) checks it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// Environment the template sets.
pub const ENV_NAMESPACE: &str = "S3IMPORTS_METRICS_NAMESPACE";
pub const ENV_PER_IMPORT: &str = "S3IMPORTS_METRICS_PER_IMPORT";
pub const ENV_STACK_NAME: &str = "S3IMPORTS_STACK_NAME";
pub const DEFAULT_NAMESPACE: &str = "s3imports";

/// Every metric the code emits, with its unit: the dashboard and alarms in
/// template.yaml may name only these (a template test holds them).
pub const METRICS: &[(&str, Unit)] = &[
    (FILES_PROCESSED, Unit::Count),
    (ROWS_IMPORTED, Unit::Count),
    (ROWS_FAILED, Unit::Count),
    (BYTES_READ, Unit::Bytes),
    (FILE_DURATION, Unit::Milliseconds),
    (DYNAMO_THROTTLES, Unit::Count),
    (DYNAMO_RETRIES, Unit::Count),
    (RUN_START_DELAY, Unit::Seconds),
    (FILES_QUEUED, Unit::Count),
    (QUEUE_WAIT, Unit::Milliseconds),
    (DISCOVERY_FAILURES, Unit::Count),
    (PROCESSOR_STACK_FAILURES, Unit::Count),
];
pub const FILES_PROCESSED: &str = "FilesProcessed";
pub const ROWS_IMPORTED: &str = "RowsImported";
pub const ROWS_FAILED: &str = "RowsFailed";
pub const BYTES_READ: &str = "BytesRead";
pub const FILE_DURATION: &str = "FileDuration";
pub const DYNAMO_THROTTLES: &str = "DynamoDBThrottles";
pub const DYNAMO_RETRIES: &str = "DynamoDBRetries";
pub const RUN_START_DELAY: &str = "RunStartDelay";
pub const FILES_QUEUED: &str = "FilesQueued";
pub const QUEUE_WAIT: &str = "QueueWait";
/// A due import whose run failed for the stack's own reason (its queue, ledger or
/// configs table: not the customer's bucket or key), by `Cause`.
pub const DISCOVERY_FAILURES: &str = "DiscoveryFailures";
/// A file the processor could not import for the stack's own reason (its tables,
/// queue or reports bucket), by `Cause`.
pub const PROCESSOR_STACK_FAILURES: &str = "ProcessorStackFailures";
/// The dimension the stack-failure metrics are also split by: the service and the
/// kind of failure, e.g. `SQS.NotFound`, `DynamoDB.AccessDenied`.
pub const CAUSE: &str = "Cause";
/// The dimension `FilesProcessed` is split by: succeeded, partially_succeeded, failed.
pub const OUTCOME: &str = "Outcome";
pub const STACK: &str = "Stack";
pub const IMPORT_ID: &str = "ImportId";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Bytes => "Bytes",
            Self::Milliseconds => "Milliseconds",
            Self::Seconds => "Seconds",
        }
    }
}

fn unit_of(name: &str) -> Unit {
    METRICS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(Unit::Count, |(_, u)| *u)
}

/// Where EMF lines go: standard output in a Lambda, a buffer in tests.
pub trait MetricsOut: Send + Sync {
    fn write(&self, line: &str);
}

/// Standard output: Lambda sends it to CloudWatch Logs, which extracts the metrics.
#[derive(Debug, Default)]
pub struct Stdout;

impl MetricsOut for Stdout {
    fn write(&self, line: &str) {
        println!("{line}");
    }
}

/// Keeps the lines (tests read them back).
#[derive(Debug, Default)]
pub struct Captured(Mutex<Vec<String>>);

impl Captured {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl MetricsOut for Captured {
    fn write(&self, line: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.to_string());
    }
}

/// Discards (the CLI's local runs).
#[derive(Debug, Default)]
pub struct Discard;

impl MetricsOut for Discard {
    fn write(&self, _line: &str) {}
}

/// The stack's metrics writer.
#[derive(Clone)]
pub struct Metrics {
    namespace: String,
    stack: String,
    per_import: bool,
    out: Arc<dyn MetricsOut>,
    /// The process's DynamoDB counters (see [`Counters`]).
    pub dynamo: Counters,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .field("stack", &self.stack)
            .field("per_import", &self.per_import)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(DEFAULT_NAMESPACE, "s3imports", false, Arc::new(Discard))
    }
}

/// What one event measured, and what it is about.
#[derive(Debug, Default)]
pub struct Event<'a> {
    pub import_id: &'a str,
    /// Extra members (not dimensions): run id, file key, ... to find the log line.
    pub properties: Vec<(&'static str, String)>,
    /// `FilesProcessed`'s outcome, when the event is a finished file.
    pub outcome: Option<&'static str>,
    pub values: Vec<(&'static str, f64)>,
    /// A stack failure's cause: its values are also published by `Cause`.
    pub cause: Option<String>,
}

impl<'a> Event<'a> {
    /// One stack failure of `metric`, for `import_id`, by `cause`.
    pub fn stack_failure(metric: &'static str, import_id: &'a str, cause: String) -> Self {
        Self {
            import_id,
            values: vec![(metric, 1.0)],
            cause: Some(cause),
            ..Self::default()
        }
    }
}

impl Metrics {
    pub fn new(
        namespace: impl Into<String>,
        stack: impl Into<String>,
        per_import: bool,
        out: Arc<dyn MetricsOut>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            stack: stack.into(),
            per_import,
            out,
            dynamo: Counters::default(),
        }
    }

    /// Counts DynamoDB's throttles and retries with `counters` (the client's).
    pub fn with_counters(mut self, counters: Counters) -> Self {
        self.dynamo = counters;
        self
    }

    /// The template's settings, writing to standard output in a Lambda (where
    /// CloudWatch Logs reads it) and nowhere elsewhere (the CLI's output is the
    /// operator's).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let out: Arc<dyn MetricsOut> = if var("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            Arc::new(Stdout)
        } else {
            Arc::new(Discard)
        };
        Self::new(
            var(ENV_NAMESPACE).unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            var(ENV_STACK_NAME).unwrap_or_else(|| "s3imports".into()),
            var(ENV_PER_IMPORT).is_some_and(|v| v == "true"),
            out,
        )
    }

    /// The same settings, writing elsewhere.
    pub fn with_out(mut self, out: Arc<dyn MetricsOut>) -> Self {
        self.out = out;
        self
    }

    /// Writes one event as an EMF line.
    pub fn emit(&self, event: &Event<'_>, at: DateTime<Utc>) {
        self.out.write(&self.line(event, at));
    }

    /// The EMF document of an event: `FilesProcessed` (when the event has an outcome)
    /// under `[Stack, Outcome]`, every other value under `[Stack]`; with
    /// `per_import`, also each with `ImportId`.
    pub fn line(&self, event: &Event<'_>, at: DateTime<Utc>) -> String {
        let mut root = Map::new();
        let mut directives = Vec::new();
        let sets = |extra: &[&'static str]| -> Vec<Vec<&'static str>> {
            let mut sets = vec![[&[STACK][..], extra].concat()];
            if self.per_import {
                sets.push([&[STACK, IMPORT_ID][..], extra].concat());
            }
            sets
        };
        let definition = |name: &str| json!({"Name": name, "Unit": unit_of(name).as_str()});
        let (outcome_values, plain): (Vec<_>, Vec<_>) = event
            .values
            .iter()
            .partition(|(name, _)| *name == FILES_PROCESSED && event.outcome.is_some());
        if let (Some(outcome), false) = (event.outcome, outcome_values.is_empty()) {
            root.insert(OUTCOME.into(), outcome.into());
            directives.push(json!({
                "Namespace": self.namespace,
                "Dimensions": sets(&[OUTCOME]),
                "Metrics": outcome_values.iter().map(|(n, _)| definition(n)).collect::<Vec<_>>(),
            }));
        }
        if !plain.is_empty() {
            let mut dimensions = sets(&[]);
            if let Some(cause) = &event.cause {
                // Also by cause (the dashboard); the alarm reads the sum over causes.
                root.insert(CAUSE.into(), cause.clone().into());
                dimensions.extend(sets(&[CAUSE]));
            }
            directives.push(json!({
                "Namespace": self.namespace,
                "Dimensions": dimensions,
                "Metrics": plain.iter().map(|(n, _)| definition(n)).collect::<Vec<_>>(),
            }));
        }
        root.insert(
            "_aws".into(),
            json!({"Timestamp": at.timestamp_millis(), "CloudWatchMetrics": directives}),
        );
        root.insert(STACK.into(), self.stack.clone().into());
        root.insert(IMPORT_ID.into(), event.import_id.into());
        for (k, v) in &event.properties {
            root.insert((*k).into(), v.clone().into());
        }
        for (name, value) in &event.values {
            root.insert((*name).into(), number(*value));
        }
        Value::Object(root).to_string()
    }
}

/// Whole numbers as integers (as CloudWatch shows them), others as they are.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        #[allow(clippy::cast_possible_truncation)]
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event() -> Event<'static> {
        Event {
            import_id: "crm-users",
            properties: vec![("RunId", "r1".into())],
            outcome: Some("succeeded"),
            values: vec![
                (FILES_PROCESSED, 1.0),
                (ROWS_IMPORTED, 42.0),
                (FILE_DURATION, 1.5),
            ],
            cause: None,
        }
    }

    #[test]
    fn a_stack_failure_is_counted_per_stack_and_by_cause() {
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
        let m = Metrics::new("ns", "prod", false, Arc::new(Discard));
        let e = Event::stack_failure(DISCOVERY_FAILURES, "crm", "SQS.NotFound".into());
        let v: Value = serde_json::from_str(&m.line(&e, at)).unwrap();
        let d = &v["_aws"]["CloudWatchMetrics"];
        assert_eq!(d[0]["Dimensions"], json!([["Stack"], ["Stack", "Cause"]]));
        assert_eq!(v["Cause"], "SQS.NotFound");
        assert_eq!(v["DiscoveryFailures"], 1);
    }

    #[test]
    fn a_file_event_splits_files_by_outcome_and_keeps_the_rest_per_stack() {
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
        let m = Metrics::new("ns", "prod", false, Arc::new(Discard));
        let v: Value = serde_json::from_str(&m.line(&event(), at)).unwrap();
        let d = &v["_aws"]["CloudWatchMetrics"];
        assert_eq!(d[0]["Dimensions"], json!([["Stack", "Outcome"]]));
        assert_eq!(
            d[0]["Metrics"],
            json!([{"Name": "FilesProcessed", "Unit": "Count"}])
        );
        assert_eq!(d[1]["Dimensions"], json!([["Stack"]]));
        assert_eq!(
            d[1]["Metrics"][1],
            json!({"Name": "FileDuration", "Unit": "Milliseconds"})
        );
        assert_eq!(v["_aws"]["Timestamp"], at.timestamp_millis());
        assert_eq!(
            (v["Stack"].clone(), v["Outcome"].clone()),
            (json!("prod"), json!("succeeded"))
        );
        assert_eq!(
            (v["RowsImported"].clone(), v["FileDuration"].clone()),
            (json!(42), json!(1.5))
        );
        assert_eq!(v["RunId"], "r1");
        let per_import = Metrics::new("ns", "prod", true, Arc::new(Discard));
        let v: Value = serde_json::from_str(&per_import.line(&event(), at)).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][1]["Dimensions"],
            json!([["Stack"], ["Stack", "ImportId"]])
        );
    }

    #[test]
    fn every_metric_is_named_once_and_a_name_cloudwatch_takes() {
        let mut names: Vec<&str> = METRICS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "a metric named twice");
        for name in names {
            assert!(
                (1..=255).contains(&name.len()) && name.is_ascii() && name != OUTCOME,
                "{name}"
            );
        }
    }
}

/// DynamoDB calls, attempts and throttled answers, counted by an interceptor on the
/// process's DynamoDB client (and the writer's rounds of unprocessed items): a file's
/// throttles and retries are the difference over its processing.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    calls: Arc<std::sync::atomic::AtomicU64>,
    attempts: Arc<std::sync::atomic::AtomicU64>,
    throttles: Arc<std::sync::atomic::AtomicU64>,
}

/// What [`Counters`] held at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    pub throttles: u64,
    pub retries: u64,
}

impl Counters {
    pub fn call(&self) {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn attempt(&self) {
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// A throttled answer (or a round of items DynamoDB left unprocessed), retried.
    pub fn throttled(&self) {
        self.throttles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        use std::sync::atomic::Ordering::Relaxed;
        let calls = self.calls.load(Relaxed);
        CountersSnapshot {
            throttles: self.throttles.load(Relaxed),
            retries: self.attempts.load(Relaxed).saturating_sub(calls),
        }
    }
}

impl CountersSnapshot {
    pub fn since(self, earlier: Self) -> Self {
        Self {
            throttles: self.throttles.saturating_sub(earlier.throttles),
            retries: self.retries.saturating_sub(earlier.retries),
        }
    }
}
