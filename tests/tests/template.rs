//! template.yaml against the code: every table, index and TTL the code expects exists
//! with the same key schema, and every function gets every name the code reads.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use s3imports::stack::Stack;
use serde_yaml::Value;

fn template() -> Value {
    let path = s3imports_tests::workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

fn keys(schema: &Value) -> Vec<(String, String)> {
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

fn expected(pk: &str, sk: Option<&str>) -> Vec<(String, String)> {
    let mut v = vec![(pk.to_string(), "HASH".to_string())];
    if let Some(sk) = sk {
        v.push((sk.to_string(), "RANGE".to_string()));
    }
    v
}

/// The logical id that holds each of the stack's tables.
fn logical_id(stack: &Stack, name: &str) -> &'static str {
    match name {
        n if n == stack.configs_table => "ConfigsTable",
        n if n == stack.ledger_table => "LedgerTable",
        n if n == stack.users_table => "UsersTable",
        n if n == stack.anonymous_users_table => "AnonymousUsersTable",
        n if n == stack.events_table => "EventsTable",
        n if n == stack.auxiliary_table => "AuxiliaryTable",
        other => panic!("no logical id known for table {other}"),
    }
}

#[test]
fn tables_match_the_code() {
    let t = template();
    let stack = Stack::default();
    for spec in stack.tables() {
        let id = logical_id(&stack, &spec.name);
        let props = &t["Resources"][id]["Properties"];
        assert_eq!(
            t["Resources"][id]["Type"].as_str(),
            Some("AWS::DynamoDB::Table"),
            "{id}"
        );
        assert_eq!(
            keys(&props["KeySchema"]),
            expected(spec.partition_key, spec.sort_key),
            "{id} key schema"
        );
        assert_eq!(
            props["BillingMode"].as_str(),
            Some("PAY_PER_REQUEST"),
            "{id}"
        );
        assert_eq!(
            props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
            Some(true),
            "{id} point-in-time recovery"
        );
        for index in &spec.indexes {
            let found = props["GlobalSecondaryIndexes"]
                .as_sequence()
                .into_iter()
                .flatten()
                .find(|i| i["IndexName"].as_str() == Some(index.name))
                .unwrap_or_else(|| panic!("{id} lacks index {}", index.name));
            assert_eq!(
                keys(&found["KeySchema"]),
                expected(index.partition_key, index.sort_key)
            );
        }
        let ttl = props["TimeToLiveSpecification"]["AttributeName"].as_str();
        assert_eq!(ttl, spec.ttl_attribute, "{id} TTL");
        // Every key attribute is declared as a string.
        let defs: Vec<(String, String)> = props["AttributeDefinitions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|d| {
                (
                    d["AttributeName"].as_str().unwrap_or_default().to_string(),
                    d["AttributeType"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let mut needed: Vec<&str> = vec![spec.partition_key];
        needed.extend(spec.sort_key);
        for i in &spec.indexes {
            needed.push(i.partition_key);
            needed.extend(i.sort_key);
        }
        for n in needed {
            assert!(
                defs.contains(&(n.to_string(), "S".to_string())),
                "{id} does not define {n} as S"
            );
        }
    }
}

#[test]
fn every_function_gets_every_name_the_code_reads() {
    let t = template();
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    let mut names: Vec<&str> = Stack::default()
        .to_env()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    names.push(s3imports_processor::ENV_MAX_RECEIVES);
    for name in names {
        assert!(
            !env[name].is_null(),
            "Globals.Function.Environment lacks {name}"
        );
    }
    for f in ["DiscoveryFunction", "ProcessorFunction", "PreviewFunction"] {
        let r = &t["Resources"][f];
        assert_eq!(r["Type"].as_str(), Some("AWS::Serverless::Function"));
        assert_eq!(
            r["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{f}"
        );
        // A function's own Environment would replace, not extend, the globals' list.
        assert!(
            r["Properties"]["Environment"].is_null(),
            "{f} overrides the global environment"
        );
    }
}

#[test]
fn queue_redrive_matches_the_processor() {
    let t = template();
    let q = &t["Resources"]["FilesQueue"]["Properties"];
    let receives = q["RedrivePolicy"]["maxReceiveCount"].as_u64();
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        receives.map(|r| r.to_string()),
        env[s3imports_processor::ENV_MAX_RECEIVES]
            .as_str()
            .map(str::to_string),
        "the processor must know when SQS delivers for the last time"
    );
    let visibility = q["VisibilityTimeout"].as_u64().unwrap_or(0);
    assert!(
        visibility >= 900,
        "visibility timeout {visibility} is below the processor's maximum timeout"
    );
    let events =
        &t["Resources"]["ProcessorFunction"]["Properties"]["Events"]["Files"]["Properties"];
    assert_eq!(
        events["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
}

/// The limits the code reads come from the stack's parameters, and the preview's
/// storage limit is the storage its function has.
#[test]
fn limits_come_from_parameters() {
    use s3imports::limits::{ENV_MAX_REPORT_MB, ENV_MAX_ROW_BYTES, ENV_STORAGE_MB};
    let t = template();
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    for (name, parameter) in [
        (ENV_MAX_ROW_BYTES, "MaxRowBytes"),
        (ENV_MAX_REPORT_MB, "FailedRowsReportMaxMB"),
        (ENV_STORAGE_MB, "ProcessorEphemeralStorageMB"),
    ] {
        assert_eq!(
            reference(&env[name]).as_deref(),
            Some(parameter),
            "{name} must be !Ref {parameter}"
        );
        assert!(
            !t["Parameters"][parameter].is_null(),
            "no parameter {parameter}"
        );
    }
    // Each message names the parameter an operator raises.
    assert!(s3imports::limits::ROW_LIMIT_PARAMETER.ends_with("MaxRowBytes"));
    assert!(s3imports::limits::STORAGE_PARAMETER.ends_with("ProcessorEphemeralStorageMB"));
    assert!(s3imports::limits::REPORT_PARAMETER.ends_with("FailedRowsReportMaxMB"));
    let processor = &t["Resources"]["ProcessorFunction"]["Properties"];
    assert_eq!(
        reference(&processor["EphemeralStorage"]["Size"]).as_deref(),
        Some("ProcessorEphemeralStorageMB")
    );
    let preview = &t["Resources"]["PreviewFunction"]["Properties"];
    assert_eq!(
        preview["EphemeralStorage"]["Size"].as_u64(),
        Some(s3imports_preview::STORAGE_MB)
    );
}

/// The processor keeps a file's message invisible while it works on it and sets the
/// backoff of a retry: it needs ChangeMessageVisibility on the files queue, which
/// SAM's SQS event source policy does not grant.
#[test]
fn processor_may_change_message_visibility() {
    let actions = actions_on(&template(), "ProcessorFunction", "FilesQueue.Arn");
    assert!(
        actions.iter().any(|a| a == "sqs:ChangeMessageVisibility"),
        "no sqs:ChangeMessageVisibility on FilesQueue: {actions:?}"
    );
}

/// The parameter a `!Ref` names.
fn reference(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str().map(str::to_string),
        _ => v["Ref"].as_str().map(str::to_string),
    }
}

#[test]
fn the_api_routes_every_path_the_preview_handler_serves() {
    let t = template();
    let mut routed: Vec<(String, String)> =
        t["Resources"]["PreviewFunction"]["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|e| e["Type"].as_str() == Some("HttpApi"))
            .map(|e| {
                (
                    e["Properties"]["Method"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    e["Properties"]["Path"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
    routed.sort();
    let mut served: Vec<(String, String)> = s3imports_preview::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(routed, served);
}

#[test]
fn functions_that_read_a_runs_files_may_batch_read_the_ledger() {
    let t = template();
    // The preview API pages runs' files, and the processor reads a run's files for
    // its email, with BatchGetItem.
    for f in ["PreviewFunction", "ProcessorFunction"] {
        let actions = actions_on(&t, f, "LedgerTable.Arn");
        assert!(
            actions.iter().any(|a| a == "dynamodb:BatchGetItem"),
            "{f} may not BatchGetItem the ledger: {actions:?}"
        );
    }
}

/// The actions a function's policy allows on one of the stack's resources.
fn actions_on(t: &Value, function: &str, resource: &str) -> Vec<String> {
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
