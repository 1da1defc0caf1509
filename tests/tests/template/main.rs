//! template.yaml against the code: every table, index and TTL the code expects exists
//! with the same key schema, and every function gets every name the code reads; AWS's
//! deploy-time rules; least privilege; logs, alarms and the dashboard. This file reads
//! the template; each module holds one group of checks.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use s3imports::model::status::FileStatus;
use s3imports::stack::Stack;
use serde_norway::Value;

mod code;
mod events;
mod observability;
mod privilege;

pub(crate) fn template() -> Value {
    let path = s3imports_tests::workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

pub(crate) fn keys(schema: &Value) -> Vec<(String, String)> {
    schema
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap_or_default().to_string(),
                k["KeyType"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub(crate) fn expected(pk: &str, sk: Option<&str>) -> Vec<(String, String)> {
    let mut v = vec![(pk.to_string(), "HASH".to_string())];
    if let Some(sk) = sk {
        v.push((sk.to_string(), "RANGE".to_string()));
    }
    v
}

/// The logical id that holds each of the stack's tables.
pub(crate) fn logical_id(stack: &Stack, name: &str) -> &'static str {
    match name {
        n if n == stack.configs_table => "ConfigsTable",
        n if n == stack.ledger_table => "LedgerTable",
        n if n == stack.users_table => "UsersTable",
        n if n == stack.anonymous_users_table => "AnonymousUsersTable",
        n if n == stack.events_table => "EventsTable",
        n if n == stack.auxiliary_table => "AuxiliaryTable",
        n if n == stack.segments_table => "SegmentsTable",
        other => panic!("no logical id known for table {other}"),
    }
}

/// The actions a function's policy allows on one of the stack's resources.
pub(crate) fn actions_on(t: &Value, function: &str, resource: &str) -> Vec<String> {
    t["Resources"][function]["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|p| p["Statement"].as_sequence().into_iter().flatten())
        .filter(|s| {
            // `!GetAtt X.Arn` parses as a tagged string.
            let mentions = |r: &Value| match r {
                Value::Tagged(t) => t.value.as_str() == Some(resource),
                other => other.as_str() == Some(resource),
            };
            let r = &s["Resource"];
            mentions(r) || r.as_sequence().into_iter().flatten().any(mentions)
        })
        .flat_map(|s| s["Action"].as_sequence().into_iter().flatten())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// Lambda's default timeout when neither the function nor Globals set one.
pub(crate) const LAMBDA_DEFAULT_TIMEOUT: u64 = 3;

/// SQS's default visibility timeout and message retention when a queue sets none.
pub(crate) const SQS_DEFAULT_VISIBILITY: u64 = 30;

pub(crate) const SQS_DEFAULT_RETENTION: u64 = 345_600;

/// Which end of a parameter's allowed range is the worst case for a check.
#[derive(Clone, Copy)]
pub(crate) enum Worst {
    Max,
    Min,
}

/// `!Ref X`, `{Ref: X}` -> X.
pub(crate) fn ref_target(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Mapping(_) => v["Ref"].as_str(),
        _ => None,
    }
}

/// `!GetAtt X.Attr`, `!GetAtt [X, Attr]`, `{Fn::GetAtt: [X, Attr]}` -> (X, Attr).
pub(crate) fn get_att(v: &Value) -> Option<(String, String)> {
    let args = match v {
        Value::Tagged(t) if t.tag == "GetAtt" => &t.value,
        Value::Mapping(_) if !v["Fn::GetAtt"].is_null() => &v["Fn::GetAtt"],
        _ => return None,
    };
    match args {
        Value::String(s) => s
            .split_once('.')
            .map(|(r, a)| (r.to_string(), a.to_string())),
        Value::Sequence(seq) if seq.len() == 2 => {
            Some((seq[0].as_str()?.to_string(), seq[1].as_str()?.to_string()))
        }
        _ => None,
    }
}

/// A number in the template: a literal (number or numeric string) or `!Ref` to a
/// parameter, taken at its worst case (MaxValue or MinValue; Default when unbounded).
pub(crate) fn number(t: &Value, v: &Value, worst: Worst, what: &str) -> u64 {
    if let Some(n) = v.as_u64() {
        return n;
    }
    if let Some(n) = v.as_str().and_then(|s| s.parse().ok()) {
        return n;
    }
    let param = ref_target(v).unwrap_or_else(|| panic!("{what}: cannot resolve {v:?}"));
    let p = &t["Parameters"][param];
    assert!(!p.is_null(), "{what}: !Ref {param} is not a parameter");
    let bound = match worst {
        Worst::Max => &p["MaxValue"],
        Worst::Min => &p["MinValue"],
    };
    let chosen = if bound.is_null() {
        &p["Default"]
    } else {
        bound
    };
    number(t, chosen, worst, &format!("{what} (parameter {param})"))
}

/// The logical id of the `AWS::SQS::Queue` an ARN expression names.
pub(crate) fn queue_of(t: &Value, arn: &Value, what: &str) -> String {
    let (id, attr) = get_att(arn)
        .unwrap_or_else(|| panic!("{what}: the queue {arn:?} is not `!GetAtt Queue.Arn` of this stack, so it cannot be checked"));
    assert_eq!(attr, "Arn", "{what}");
    assert_eq!(
        t["Resources"][id.as_str()]["Type"].as_str(),
        Some("AWS::SQS::Queue"),
        "{what}: {id} is not a queue"
    );
    id
}

pub(crate) fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    t["Resources"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .map(|(k, r)| (k.as_str().unwrap_or_default().to_string(), r))
        .collect()
}

/// (function id, event name, queue id, event properties) for every SQS event source.
pub(crate) fn sqs_event_sources(t: &Value) -> Vec<(String, String, String, &Value)> {
    let mut out = Vec::new();
    for (f, r) in resources_of_type(t, "AWS::Serverless::Function") {
        for (name, event) in r["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if event["Type"].as_str() != Some("SQS") {
                continue;
            }
            let name = name.as_str().unwrap_or_default().to_string();
            let props = &event["Properties"];
            let q = queue_of(t, &props["Queue"], &format!("{f}.{name}"));
            out.push((f.clone(), name, q, props));
        }
    }
    out
}

pub(crate) fn is_fifo(queue: &Value) -> bool {
    queue["Properties"]["FifoQueue"].as_bool() == Some(true)
        || queue["Properties"]["FifoQueue"].as_str() == Some("true")
}

/// SQS metrics that change when a redrive policy moves a message to a dead-letter
/// queue. `NumberOfMessagesSent` is not among them: AWS (SQS developer guide,
/// "Available CloudWatch metrics"): "messages that are moved to a dead-letter queue by a
/// redrive policy are not reflected in this metric".
pub(crate) const CONSUMED_DLQ_METRICS: &[&str] =
    &["NumberOfMessagesReceived", "NumberOfMessagesDeleted"];

pub(crate) const UNCONSUMED_DLQ_METRICS: &[&str] = &[
    "ApproximateNumberOfMessagesVisible",
    "ApproximateAgeOfOldestMessage",
];

/// Every statement of every function's policies, with the function's name.
pub(crate) fn statements(t: &Value) -> Vec<(String, &Value)> {
    resources_of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .flat_map(|(name, f)| {
            f["Properties"]["Policies"]
                .as_sequence()
                .into_iter()
                .flatten()
                .flat_map(|p| p["Statement"].as_sequence().into_iter().flatten())
                .map(move |s| (name.clone(), s))
        })
        .collect()
}

pub(crate) fn actions(s: &Value) -> Vec<&str> {
    match &s["Action"] {
        Value::Sequence(a) => a.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().into_iter().collect(),
    }
}

/// Actions for which AWS has no resource-level permissions, so `Resource: "*"` is the
/// only form IAM accepts; each with AWS's reason (the Service Authorization Reference
/// lists no resource type for them).
pub(crate) const ONLY_STAR: &[(&str, &str)] = &[
    (
        "xray:PutTraceSegments",
        "X-Ray's trace APIs have no resource types (SAM adds it for `Tracing: Active`)",
    ),
    ("xray:PutTelemetryRecords", "likewise"),
];

/// Log retention values CloudWatch Logs accepts (`PutRetentionPolicy`); any other
/// fails the deploy.
pub(crate) const RETENTION_DAYS: &[u64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// A parameter's `AllowedValues` as numbers.
pub(crate) fn allowed_numbers(t: &Value, parameter: &str) -> Vec<u64> {
    t["Parameters"][parameter]["AllowedValues"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .collect()
}

/// The metric names of our namespace an alarm or widget may use: what the code emits.
pub(crate) fn emitted(name: &str) -> bool {
    s3imports::metrics::METRICS.iter().any(|(n, _)| *n == name)
}
