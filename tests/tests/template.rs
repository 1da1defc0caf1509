//! template.yaml against the code: every table, index and TTL the code expects exists
//! with the same key schema, and every function gets every name the code reads.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use s3imports::model::status::FileStatus;
use s3imports::stack::Stack;
use serde_norway::Value;

fn template() -> Value {
    let path = s3imports_tests::workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("template.yaml: {e}"))
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
        n if n == stack.segments_table => "SegmentsTable",
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
    names.push(s3imports::process::delivery::ENV_MAX_RECEIVES);
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
        env[s3imports::process::delivery::ENV_MAX_RECEIVES]
            .as_str()
            .map(str::to_string),
        "the processor must know when SQS delivers for the last time"
    );
    assert_eq!(
        receives,
        Some(u64::from(
            s3imports::process::delivery::DEFAULT_MAX_RECEIVES
        )),
        "the CLI and tests assume the template's count when no environment sets it"
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
    use s3imports::codec::limits::{ENV_MAX_REPORT_MB, ENV_MAX_ROW_BYTES, ENV_STORAGE_MB};
    let t = template();
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    for (name, parameter) in [
        (ENV_MAX_ROW_BYTES, "MaxRowBytes"),
        (ENV_MAX_REPORT_MB, "FailedRowsReportMaxMB"),
        (ENV_STORAGE_MB, "ProcessorEphemeralStorageMB"),
        (
            s3imports::process::settings::ENV_WRITES_IN_FLIGHT,
            "WritesInFlight",
        ),
        (s3imports::process::settings::ENV_CHUNK_MB, "ChunkMB"),
    ] {
        assert_eq!(
            ref_target(&env[name]),
            Some(parameter),
            "{name} must be !Ref {parameter}"
        );
        assert!(
            !t["Parameters"][parameter].is_null(),
            "no parameter {parameter}"
        );
    }
    // Each message names the parameter an operator raises.
    assert!(s3imports::codec::limits::ROW_LIMIT_PARAMETER.ends_with("MaxRowBytes"));
    assert!(s3imports::codec::limits::STORAGE_PARAMETER.ends_with("ProcessorEphemeralStorageMB"));
    assert!(s3imports::codec::limits::REPORT_PARAMETER.ends_with("FailedRowsReportMaxMB"));
    let processor = &t["Resources"]["ProcessorFunction"]["Properties"];
    assert_eq!(
        ref_target(&processor["EphemeralStorage"]["Size"]),
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

/// A large file's staged plaintext (decrypted, in the stack's bucket) is encrypted at
/// rest and expires within a day even if nothing deletes it; the staging prefix the
/// code writes is the one the rule names.
#[test]
fn staged_plaintext_is_encrypted_and_expires_within_a_day() {
    let t = template();
    let bucket = &t["Resources"]["ReportsBucket"]["Properties"];
    assert!(
        !bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"].is_null(),
        "the reports bucket is not encrypted"
    );
    let prefix = s3imports::ports::staging_key("i", "r", "f")
        .split('/')
        .next()
        .map(|p| format!("{p}/"))
        .unwrap();
    let rules = bucket["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .unwrap();
    let staging = rules
        .iter()
        .find(|r| r["Prefix"].as_str() == Some(prefix.as_str()))
        .unwrap_or_else(|| panic!("no lifecycle rule for {prefix}"));
    assert_eq!(staging["Status"].as_str(), Some("Enabled"));
    assert_eq!(staging["ExpirationInDays"].as_u64(), Some(1));
}

/// A file that outlasts an invocation sends its own continuation (SendMessageBatch
/// is authorised as sqs:SendMessage), and the joined report's parts are deleted.
#[test]
fn processor_may_send_continuations_and_delete_report_parts() {
    let t = template();
    let actions = actions_on(&t, "ProcessorFunction", "FilesQueue.Arn");
    assert!(
        actions.iter().any(|a| a == "sqs:SendMessage"),
        "no sqs:SendMessage on FilesQueue: {actions:?}"
    );
    let statements = t["Resources"]["ProcessorFunction"]["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|p| p["Statement"].as_sequence().into_iter().flatten());
    let on_reports: Vec<&str> = statements
        .filter(|s| format!("{:?}", s["Resource"]).contains("ReportsBucket.Arn"))
        .flat_map(|s| s["Action"].as_sequence().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert!(
        on_reports.contains(&"s3:DeleteObject"),
        "no s3:DeleteObject on the reports: {on_reports:?}"
    );
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

#[test]
fn functions_that_start_runs_hold_discoverys_writes() {
    let t = template();
    // The preview API's POST /imports/{id}/run runs discovery for one import.
    for f in ["DiscoveryFunction", "PreviewFunction"] {
        for (resource, needed) in [
            (
                "ConfigsTable.Arn",
                // The run's claim, and the duplicate lock (a put; a delete when it ends).
                &[
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem",
                ][..],
            ),
            (
                "LedgerTable.Arn",
                &[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:BatchGetItem",
                ][..],
            ),
            (
                "FilesQueue.Arn",
                &["sqs:SendMessage", "sqs:GetQueueUrl"][..],
            ),
        ] {
            let actions = actions_on(&t, f, resource);
            for a in needed {
                assert!(
                    actions.iter().any(|x| x == a),
                    "{f} may not {a} on {resource}: {actions:?}"
                );
            }
        }
    }
}

#[test]
fn post_processing_of_sources_is_granted_only_when_the_stack_allows_it() {
    let t = template();
    assert_eq!(
        t["Parameters"]["AllowSourcePostProcessing"]["Default"].as_str(),
        Some("false")
    );
    let conditional: Vec<&Value> = t["Resources"]["ProcessorFunction"]["Properties"]["Policies"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| match p {
            Value::Tagged(tagged) if tagged.tag == "If" => tagged.value.as_sequence()?.get(..2),
            _ => None,
        })
        .filter(|parts| parts[0].as_str() == Some("PostProcessesSources"))
        .map(|parts| &parts[1])
        .collect();
    assert_eq!(
        conditional.len(),
        1,
        "no conditional post-processing policy"
    );
    let statement = &conditional[0]["Statement"][0];
    let granted = actions(statement);
    // Tag (keeping other tags), copy (tags copied along), delete.
    for a in [
        "s3:GetObjectTagging",
        "s3:PutObjectTagging",
        "s3:PutObject",
        "s3:DeleteObject",
        // Objects over 5 GB are copied in parts; a failed part aborts the upload.
        "s3:AbortMultipartUpload",
    ] {
        assert!(
            granted.contains(&a),
            "post-processing lacks {a}: {granted:?}"
        );
    }
    let resource = match &statement["Resource"] {
        Value::Tagged(r) => r.value.as_str().unwrap_or_default(),
        _ => "",
    };
    assert!(resource.contains("${SourceBucketPattern}/*"), "{resource}");
    assert!(
        !statement["Condition"]["StringEquals"]["s3:ResourceAccount"].is_null(),
        "the source pattern is not pinned to this account"
    );
    // The condition is the parameter, and nothing else grants writes to sources.
    let condition = format!("{:?}", t["Conditions"]["PostProcessesSources"]);
    assert!(
        condition.contains("AllowSourcePostProcessing"),
        "{condition}"
    );
    for (function, s) in statements(&t) {
        let resource = format!("{:?}", s["Resource"]);
        if resource.contains("SourceBucketPattern") {
            assert!(
                actions(s)
                    .iter()
                    .all(|a| ["s3:GetObject", "s3:ListBucket"].contains(a)),
                "{function} writes to source buckets unconditionally: {s:?}"
            );
        }
    }
}

#[test]
fn run_summaries_go_to_the_stacks_topic_which_the_processor_may_publish_to() {
    let t = template();
    assert_eq!(
        t["Resources"]["AlertsTopic"]["Type"].as_str(),
        Some("AWS::SNS::Topic")
    );
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        ref_target(&env[s3imports::stack::ENV_ALERTS_TOPIC_ARN]),
        Some("AlertsTopic")
    );
    assert_eq!(
        ref_target(&t["Outputs"]["AlertsTopicArn"]["Value"]),
        Some("AlertsTopic")
    );
    let publishes = statements(&t).into_iter().any(|(f, s)| {
        f == "ProcessorFunction"
            && actions(s).contains(&"sns:Publish")
            && s["Resource"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|r| ref_target(r) == Some("AlertsTopic"))
    });
    assert!(
        publishes,
        "ProcessorFunction may not publish to AlertsTopic"
    );
}

#[test]
fn replays_and_dry_runs_hold_their_ledger_transaction() {
    let t = template();
    // A replay's transaction updates the file, puts its run and deletes a split
    // file's chunk items; a dry run's puts its run and file. Every item of a
    // transaction needs its own action.
    let actions = actions_on(&t, "PreviewFunction", "LedgerTable.Arn");
    for a in [
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "PreviewFunction may not {a} on the ledger: {actions:?}"
        );
    }
}

#[test]
fn the_processor_and_api_hold_what_users_and_segments_need() {
    let t = template();
    for (function, resource, needed) in [
        // A chunked users file's older row reads the item a later row wrote.
        (
            "ProcessorFunction",
            "UsersTable.Arn",
            &["dynamodb:UpdateItem", "dynamodb:GetItem"][..],
        ),
        (
            "ProcessorFunction",
            "AnonymousUsersTable.Arn",
            &["dynamodb:UpdateItem", "dynamodb:GetItem"][..],
        ),
        // Members batched beside the user updates; the recount when a run ends.
        (
            "ProcessorFunction",
            "SegmentsTable.Arn",
            &[
                "dynamodb:BatchWriteItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
            ][..],
        ),
        (
            "PreviewFunction",
            "SegmentsTable.Arn",
            &["dynamodb:GetItem", "dynamodb:Query"][..],
        ),
    ] {
        let actions = actions_on(&t, function, resource);
        for a in needed {
            assert!(
                actions.iter().any(|x| x == a),
                "{function} may not {a} on {resource}: {actions:?}"
            );
        }
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

// ------------------------------------------------------------------ event sources
//
// AWS rules that `sam validate` and cfn-lint do not check, but that make `sam deploy`
// (or the running stack) fail. Each is checked for every function and every queue, so a
// new event source or queue is held to them too.

/// Lambda's default timeout when neither the function nor Globals set one.
const LAMBDA_DEFAULT_TIMEOUT: u64 = 3;
/// SQS's default visibility timeout and message retention when a queue sets none.
const SQS_DEFAULT_VISIBILITY: u64 = 30;
const SQS_DEFAULT_RETENTION: u64 = 345_600;

/// Which end of a parameter's allowed range is the worst case for a check.
#[derive(Clone, Copy)]
enum Worst {
    Max,
    Min,
}

/// `!Ref X`, `{Ref: X}` -> X.
fn ref_target(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Mapping(_) => v["Ref"].as_str(),
        _ => None,
    }
}

/// `!GetAtt X.Attr`, `!GetAtt [X, Attr]`, `{Fn::GetAtt: [X, Attr]}` -> (X, Attr).
fn get_att(v: &Value) -> Option<(String, String)> {
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
fn number(t: &Value, v: &Value, worst: Worst, what: &str) -> u64 {
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
fn queue_of(t: &Value, arn: &Value, what: &str) -> String {
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

fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    t["Resources"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .map(|(k, r)| (k.as_str().unwrap_or_default().to_string(), r))
        .collect()
}

/// (function id, event name, queue id, event properties) for every SQS event source.
fn sqs_event_sources(t: &Value) -> Vec<(String, String, String, &Value)> {
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

fn is_fifo(queue: &Value) -> bool {
    queue["Properties"]["FifoQueue"].as_bool() == Some(true)
        || queue["Properties"]["FifoQueue"].as_str() == Some("true")
}

#[test]
fn every_sqs_event_source_is_one_lambda_accepts() {
    let t = template();
    let sources = sqs_event_sources(&t);
    assert!(!sources.is_empty(), "the template has no SQS event source");
    for (f, name, q, props) in sources {
        let what = format!("{f}.Events.{name} (queue {q})");
        let fp = &t["Resources"][f.as_str()]["Properties"];
        let timeout_v = if fp["Timeout"].is_null() {
            &t["Globals"]["Function"]["Timeout"]
        } else {
            &fp["Timeout"]
        };
        let timeout = if timeout_v.is_null() {
            LAMBDA_DEFAULT_TIMEOUT
        } else {
            number(&t, timeout_v, Worst::Max, &format!("{f}.Timeout"))
        };
        let queue = &t["Resources"][q.as_str()];
        let qp = &queue["Properties"];
        let visibility = if qp["VisibilityTimeout"].is_null() {
            SQS_DEFAULT_VISIBILITY
        } else {
            number(&t, &qp["VisibilityTimeout"], Worst::Min, &what)
        };
        // AWS: CreateEventSourceMapping fails with "Queue visibility timeout: N seconds
        // is less than Function timeout: M seconds" (Lambda developer guide, "Using
        // Lambda with Amazon SQS": the visibility timeout must be at least the
        // function's timeout).
        assert!(
            visibility >= timeout,
            "{what}: the queue's visibility timeout {visibility} s is below {f}'s timeout {timeout} s; Lambda refuses the event source"
        );

        // AWS (EventSourceMapping BatchSize, MaximumBatchingWindowInSeconds): standard
        // queues take 1..=10 messages a batch, up to 10,000 only with a batching window
        // of at least 1 s; FIFO queues at most 10; the window is 0..=300 s. The SAM
        // default batch size is 10.
        let batch = if props["BatchSize"].is_null() {
            10
        } else {
            number(&t, &props["BatchSize"], Worst::Max, &what)
        };
        let window = if props["MaximumBatchingWindowInSeconds"].is_null() {
            0
        } else {
            number(
                &t,
                &props["MaximumBatchingWindowInSeconds"],
                Worst::Max,
                &what,
            )
        };
        assert!(window <= 300, "{what}: batching window {window} s > 300 s");
        let max_batch = if is_fifo(queue) || window == 0 {
            10
        } else {
            10_000
        };
        assert!(
            (1..=max_batch).contains(&batch),
            "{what}: batch size {batch} is outside 1..={max_batch}"
        );

        // AWS (EventSourceMapping FunctionResponseTypes): the only valid value.
        for r in props["FunctionResponseTypes"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            assert_eq!(
                r.as_str(),
                Some("ReportBatchItemFailures"),
                "{what}: FunctionResponseTypes"
            );
        }

        // AWS (EventSourceMapping ScalingConfig): MaximumConcurrency is 2..=1000.
        let max_concurrency = &props["ScalingConfig"]["MaximumConcurrency"];
        if !max_concurrency.is_null() {
            let c = number(&t, max_concurrency, Worst::Max, &what);
            assert!((2..=1000).contains(&c), "{what}: MaximumConcurrency {c}");
        }
    }
}

#[test]
fn every_redrive_policy_is_one_sqs_accepts() {
    let t = template();
    let queues = resources_of_type(&t, "AWS::SQS::Queue");
    let mut redriven = 0;
    for (q, queue) in &queues {
        let qp = &queue["Properties"];
        let redrive = &qp["RedrivePolicy"];
        if redrive.is_null() {
            continue;
        }
        redriven += 1;
        // AWS (SQS RedrivePolicy): maxReceiveCount is 1..=1000.
        let receives = number(&t, &redrive["maxReceiveCount"], Worst::Max, q);
        assert!(
            (1..=1000).contains(&receives),
            "{q}: maxReceiveCount {receives} is outside 1..=1000"
        );
        let dlq_id = queue_of(&t, &redrive["deadLetterTargetArn"], &format!("{q} redrive"));
        let dlq = &t["Resources"][dlq_id.as_str()];
        // AWS (SQS dead-letter queues): a FIFO queue's DLQ is FIFO, a standard queue's
        // is standard.
        assert_eq!(
            is_fifo(queue),
            is_fifo(dlq),
            "{q} and {dlq_id} differ in FIFO-ness"
        );
        // AWS (SQS developer guide, "Using dead-letter queues"): a message's expiration
        // is from its original enqueue time, so the DLQ's retention must be at least
        // the source's, or moved messages are dropped before anyone sees them.
        let retention = |v: &Value, worst, what: &str| {
            if v.is_null() {
                SQS_DEFAULT_RETENTION
            } else {
                number(&t, v, worst, what)
            }
        };
        let source_retention = retention(&qp["MessageRetentionPeriod"], Worst::Max, q);
        let dlq_retention = retention(
            &dlq["Properties"]["MessageRetentionPeriod"],
            Worst::Min,
            &dlq_id,
        );
        assert!(
            dlq_retention >= source_retention,
            "{dlq_id} keeps messages {dlq_retention} s, less than {q}'s {source_retention} s"
        );
    }
    assert!(redriven > 0, "no queue has a redrive policy");
}

/// SQS metrics that change when a redrive policy moves a message to a dead-letter
/// queue. `NumberOfMessagesSent` is not among them: AWS (SQS developer guide,
/// "Available CloudWatch metrics"): "messages that are moved to a dead-letter queue by a
/// redrive policy are not reflected in this metric".
const CONSUMED_DLQ_METRICS: &[&str] = &["NumberOfMessagesReceived", "NumberOfMessagesDeleted"];
const UNCONSUMED_DLQ_METRICS: &[&str] = &[
    "ApproximateNumberOfMessagesVisible",
    "ApproximateAgeOfOldestMessage",
];

#[test]
fn every_dead_letter_queue_has_an_alarm_that_can_fire() {
    let t = template();
    let queues = resources_of_type(&t, "AWS::SQS::Queue");
    let consumed: Vec<String> = sqs_event_sources(&t)
        .into_iter()
        .map(|(_, _, q, _)| q)
        .collect();
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    let mut dlqs = 0;
    for (q, queue) in &queues {
        let redrive = &queue["Properties"]["RedrivePolicy"];
        if redrive.is_null() {
            continue;
        }
        dlqs += 1;
        let dlq = queue_of(&t, &redrive["deadLetterTargetArn"], q);
        let on_dlq: Vec<&(String, &Value)> = alarms
            .iter()
            .filter(|(_, a)| {
                a["Properties"]["Namespace"].as_str() == Some("AWS/SQS")
                    && a["Properties"]["Dimensions"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .any(|d| {
                            d["Name"].as_str() == Some("QueueName")
                                && get_att(&d["Value"])
                                    == Some((dlq.clone(), "QueueName".to_string()))
                        })
            })
            .collect();
        assert!(
            !on_dlq.is_empty(),
            "no alarm watches the dead-letter queue {dlq}"
        );
        // A DLQ that a function drains is empty again within seconds: only the count of
        // receives (or deletes) shows arrivals. One nobody drains keeps them visible.
        let fitting = if consumed.contains(&dlq) {
            CONSUMED_DLQ_METRICS
        } else {
            UNCONSUMED_DLQ_METRICS
        };
        for (id, a) in &on_dlq {
            let p = &a["Properties"];
            let metric = p["MetricName"].as_str().unwrap_or_default();
            assert_ne!(
                metric, "NumberOfMessagesSent",
                "{id}: SQS does not count redriven messages in NumberOfMessagesSent"
            );
            assert!(
                fitting.contains(&metric),
                "{id}: {metric} does not show messages arriving in {dlq} (consumed by a function: {}); use one of {fitting:?}",
                consumed.contains(&dlq)
            );
            // One message is enough to fire.
            let threshold = p["Threshold"].as_f64().unwrap_or(f64::NAN);
            let fires_on_one = match p["ComparisonOperator"].as_str() {
                Some("GreaterThanThreshold") => threshold < 1.0,
                Some("GreaterThanOrEqualToThreshold") => threshold <= 1.0,
                _ => false,
            };
            assert!(
                fires_on_one,
                "{id}: one dead-lettered message must breach it"
            );
        }
    }
    assert!(dlqs > 0, "no queue has a dead-letter queue");
}

#[test]
fn the_preview_function_serves_failed_rows_reports() {
    let t = template();
    let p = &t["Resources"]["PreviewFunction"]["Properties"];
    let route = p["Events"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(_, e)| &e["Properties"])
        .any(|e| {
            e["Method"].as_str() == Some("GET")
                && e["Path"].as_str() == Some("/imports/{id}/runs/{run_id}/report")
        });
    assert!(
        route,
        "PreviewFunction has no GET /imports/{{id}}/runs/{{run_id}}/report"
    );
    // It reads the report (inline) or signs a URL for it: both need s3:GetObject on
    // the reports bucket's objects.
    let reads_reports = p["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|policy| policy["Statement"].as_sequence().into_iter().flatten())
        .any(|s| {
            let actions: Vec<&str> = match &s["Action"] {
                Value::Sequence(a) => a.iter().filter_map(Value::as_str).collect(),
                other => other.as_str().into_iter().collect(),
            };
            let resource = match &s["Resource"] {
                Value::Tagged(r) if r.tag == "Sub" => r.value.as_str().unwrap_or_default(),
                _ => "",
            };
            s["Effect"].as_str() == Some("Allow")
                && actions.contains(&"s3:GetObject")
                && resource.starts_with("${ReportsBucket.Arn}/")
        });
    assert!(
        reads_reports,
        "PreviewFunction may not read the reports bucket"
    );
}

// ------------------------------------------------------------------ least privilege

/// Every statement of every function's policies, with the function's name.
fn statements(t: &Value) -> Vec<(String, &Value)> {
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

fn actions(s: &Value) -> Vec<&str> {
    match &s["Action"] {
        Value::Sequence(a) => a.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().into_iter().collect(),
    }
}

/// Actions for which AWS has no resource-level permissions, so `Resource: "*"` is the
/// only form IAM accepts; each with AWS's reason (the Service Authorization Reference
/// lists no resource type for them).
const ONLY_STAR: &[(&str, &str)] = &[
    (
        "xray:PutTraceSegments",
        "X-Ray's trace APIs have no resource types (SAM adds it for `Tracing: Active`)",
    ),
    ("xray:PutTelemetryRecords", "likewise"),
];

#[test]
fn no_statement_grants_every_resource_unless_aws_allows_no_other() {
    let t = template();
    for (function, s) in statements(&t) {
        let star = |r: &Value| r.as_str() == Some("*");
        let r = &s["Resource"];
        if star(r) || r.as_sequence().into_iter().flatten().any(star) {
            for a in actions(s) {
                assert!(
                    ONLY_STAR.iter().any(|(x, _)| *x == a),
                    "{function}: `{a}` on every resource; scope it (only {ONLY_STAR:?} may use \"*\")"
                );
            }
        }
    }
}

#[test]
fn emails_go_from_the_sender_identity_only() {
    let t = template();
    // AWS: `!Select [1, !Split ["@", SenderEmail]]` fails the deployment when the value
    // has no `@`, so the parameter must refuse one first.
    let pattern = t["Parameters"]["SenderEmail"]["AllowedPattern"]
        .as_str()
        .unwrap_or_default();
    assert!(
        pattern.contains('@'),
        "SenderEmail needs an AllowedPattern with `@`"
    );
    for (function, s) in statements(&t) {
        if actions(s).contains(&"ses:SendEmail") {
            let text = format!("{:?}", s["Resource"]);
            assert!(
                text.contains(":identity/${SenderEmail}") && text.contains(":identity/${Domain}"),
                "{function}: ses:SendEmail must name the sender's address and domain identities: {text}"
            );
        }
    }
}

#[test]
fn roles_are_assumed_only_in_listed_accounts_and_with_an_external_id() {
    let t = template();
    let mut seen = 0;
    for (function, s) in statements(&t) {
        if actions(s).contains(&"sts:AssumeRole") {
            seen += 1;
            let c = &s["Condition"];
            assert_eq!(
                ref_target(&c["StringEquals"]["aws:ResourceAccount"]),
                Some("CustomerAccountIds"),
                "{function}: sts:AssumeRole must be limited to CustomerAccountIds"
            );
            assert_eq!(
                c["Null"]["sts:ExternalId"].as_str(),
                Some("false"),
                "{function}: sts:AssumeRole must require an external id"
            );
        }
    }
    assert_eq!(seen, 3, "every function reaches customer buckets");
    let p = &t["Parameters"]["CustomerAccountIds"];
    assert_eq!(p["Type"].as_str(), Some("CommaDelimitedList"));
    assert_eq!(
        p["Default"].as_str(),
        Some(""),
        "no account is trusted by default"
    );
}

#[test]
fn source_bucket_patterns_are_pinned_to_this_account() {
    let t = template();
    for (function, s) in statements(&t) {
        let text = format!("{:?}", s["Resource"]);
        if text.contains("${SourceBucketPattern}") {
            assert_eq!(
                ref_target(&s["Condition"]["StringEquals"]["s3:ResourceAccount"]),
                Some("AWS::AccountId"),
                "{function}: an S3 ARN names no account, so {text} would match buckets of every account"
            );
        }
    }
}

#[test]
fn secrets_are_read_only_when_bound_to_imports_and_discovery_reads_access_keys_only() {
    let t = template();
    let tag = format!(
        "secretsmanager:ResourceTag/{}",
        s3imports::ports::SECRET_TAG
    );
    for (function, s) in statements(&t) {
        let acts = actions(s);
        if !acts.iter().any(|a| a.starts_with("secretsmanager:")) {
            continue;
        }
        assert!(
            acts.contains(&"secretsmanager:DescribeSecret"),
            "{function}: the binding tag is read with DescribeSecret"
        );
        assert_eq!(
            s["Condition"]["Null"][tag.as_str()].as_str(),
            Some("false"),
            "{function}: only secrets tagged for imports"
        );
        if function == "DiscoveryFunction" {
            assert_eq!(
                s["Condition"]["StringEquals"]["secretsmanager:ResourceTag/s3imports:secret-kind"]
                    .as_str(),
                Some("access-key"),
                "discovery lists buckets: it needs access keys, never PGP keys"
            );
        }
    }
}

#[test]
fn customers_can_trust_the_function_roles_by_arn() {
    let t = template();
    for (output, role) in [
        ("DiscoveryRoleArn", "DiscoveryFunctionRole"),
        ("ProcessorRoleArn", "ProcessorFunctionRole"),
        ("PreviewRoleArn", "PreviewFunctionRole"),
    ] {
        assert_eq!(
            get_att(&t["Outputs"][output]["Value"]),
            Some((role.to_string(), "Arn".to_string())),
            "{output}"
        );
        // AWS: SAM creates `<Function>Role` only for a function without its own `Role`;
        // otherwise the GetAtt names no resource and the deployment fails.
        let function = role.trim_end_matches("Role");
        assert!(!t["Resources"][function].is_null(), "{function}");
        assert!(
            t["Resources"][function]["Properties"]["Role"].is_null(),
            "{function} sets its own Role: SAM makes no {role}"
        );
    }
}

/// Log retention values CloudWatch Logs accepts (`PutRetentionPolicy`); any other
/// fails the deploy.
const RETENTION_DAYS: &[u64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// A parameter's `AllowedValues` as numbers.
fn allowed_numbers(t: &Value, parameter: &str) -> Vec<u64> {
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

#[test]
fn every_function_logs_json_to_its_own_group_with_a_valid_retention() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    // Lambda refuses an application or system log level unless the format is JSON.
    assert_eq!(globals["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));
    assert_eq!(
        ref_target(&globals["LoggingConfig"]["ApplicationLogLevel"]),
        Some("LogLevel")
    );
    assert_eq!(ref_target(&globals["Tracing"]), Some("TracingMode"));
    let modes: Vec<&str> = t["Parameters"]["TracingMode"]["AllowedValues"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        modes,
        ["Active", "PassThrough"],
        "Lambda's two tracing modes"
    );
    let retention = allowed_numbers(&t, "LogRetentionDays");
    assert!(!retention.is_empty());
    for days in &retention {
        assert!(
            RETENTION_DAYS.contains(days),
            "{days} is no retention CloudWatch Logs accepts"
        );
    }
    for (id, f) in resources_of_type(&t, "AWS::Serverless::Function") {
        let group = ref_target(&f["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id} names no log group"));
        let g = &t["Resources"][group];
        assert_eq!(g["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{id}");
        assert_eq!(
            ref_target(&g["Properties"]["RetentionInDays"]),
            Some("LogRetentionDays"),
            "{group}"
        );
    }
    let env = &globals["Environment"]["Variables"];
    for name in [
        s3imports::metrics::ENV_NAMESPACE,
        s3imports::metrics::ENV_PER_IMPORT,
        s3imports::metrics::ENV_STACK_NAME,
    ] {
        assert!(
            !env[name].is_null(),
            "Globals.Function.Environment lacks {name}"
        );
    }
}

/// The metric names of our namespace an alarm or widget may use: what the code emits.
fn emitted(name: &str) -> bool {
    s3imports::metrics::METRICS.iter().any(|(n, _)| *n == name)
}

#[test]
fn alarms_are_valid_as_cloudwatch_checks_them_and_reach_the_alarm_topic() {
    let t = template();
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    let id_ok = |id: &str| {
        id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let period_ok = |p: &Value| match ref_target(p) {
        Some(param) => {
            let allowed = allowed_numbers(&t, param);
            !allowed.is_empty() && allowed.iter().all(|s| s % 60 == 0)
        }
        None => p
            .as_u64()
            .is_some_and(|s| s % 60 == 0 || [10, 30].contains(&s)),
    };
    for (id, a) in &alarms {
        let p = &a["Properties"];
        assert_eq!(
            p["AlarmActions"]
                .as_sequence()
                .map(|s| s.iter().filter_map(ref_target).collect::<Vec<_>>()),
            Some(vec!["AlarmTopic"]),
            "{id} does not notify the alarm topic"
        );
        for k in ["EvaluationPeriods", "Threshold", "ComparisonOperator"] {
            assert!(!p[k].is_null(), "{id} lacks {k}");
        }
        match p["Metrics"].as_sequence() {
            Some(metrics) => {
                // CloudWatch refuses a metric-math alarm that also names a metric.
                for k in [
                    "MetricName",
                    "Namespace",
                    "Statistic",
                    "Period",
                    "Dimensions",
                ] {
                    assert!(p[k].is_null(), "{id}: {k} beside Metrics");
                }
                let returned = metrics
                    .iter()
                    .filter(|m| m["ReturnData"].as_bool() == Some(true))
                    .count();
                assert_eq!(returned, 1, "{id}: exactly one entry returns data");
                for m in metrics {
                    let mid = m["Id"].as_str().unwrap_or_default();
                    assert!(
                        id_ok(mid),
                        "{id}: `{mid}` is no metric id CloudWatch accepts"
                    );
                    let stat = &m["MetricStat"];
                    assert!(
                        stat.is_null() != m["Expression"].is_null(),
                        "{id}/{mid}: a MetricStat or an Expression"
                    );
                    if !stat.is_null() {
                        assert!(period_ok(&stat["Period"]), "{id}/{mid}: period");
                        let name = stat["Metric"]["MetricName"].as_str().unwrap_or_default();
                        if ref_target(&stat["Metric"]["Namespace"]) == Some("MetricsNamespace") {
                            assert!(emitted(name), "{id}: the code emits no {name}");
                        }
                    }
                    if let Some(e) = m["Expression"].as_str() {
                        // The expression reads the alarm's other entries.
                        for other in metrics.iter().filter_map(|o| o["Id"].as_str()) {
                            assert!(
                                other == mid || e.contains(other),
                                "{id}: `{other}` is not in `{e}`"
                            );
                        }
                    }
                }
            }
            None => {
                for k in ["MetricName", "Namespace", "Period"] {
                    assert!(!p[k].is_null(), "{id} lacks {k}");
                }
                assert!(
                    !p["Statistic"].is_null() || !p["ExtendedStatistic"].is_null(),
                    "{id} lacks a statistic"
                );
                assert!(period_ok(&p["Period"]), "{id}: period");
            }
        }
    }
    // The alarms an operator sets thresholds for: each threshold is a parameter.
    for (alarm, parameter) in [
        ("ProcessorErrorsAlarm", "ProcessorErrorsThreshold"),
        ("QueueAgeAlarm", "OldestMessageAgeSeconds"),
        ("FileFailureRateAlarm", "FailedFilesPercent"),
    ] {
        assert_eq!(
            ref_target(&t["Resources"][alarm]["Properties"]["Threshold"]),
            Some(parameter),
            "{alarm}"
        );
    }
    // The failure rate covers every outcome the processor records.
    let body = format!("{:?}", t["Resources"]["FileFailureRateAlarm"]);
    for outcome in [
        FileStatus::Succeeded,
        FileStatus::PartiallySucceeded,
        FileStatus::Failed,
    ] {
        assert!(
            body.contains(outcome.as_str()),
            "FileFailureRateAlarm misses {outcome:?}"
        );
    }
}

#[test]
fn the_dashboard_shows_what_the_code_emits_and_every_function_and_queue() {
    let t = template();
    let props = &t["Resources"]["Dashboard"]["Properties"];
    let Value::Tagged(sub) = &props["DashboardBody"] else {
        panic!("DashboardBody is not a !Sub");
    };
    let text = sub.value.as_str().unwrap_or_default();
    // What `!Sub` would substitute: each `${X}` a plain word, so the JSON parses as
    // CloudFormation will hand it over.
    let mut body = String::new();
    let mut rest = text;
    let mut substituted = Vec::new();
    while let Some(start) = rest.find("${") {
        body.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .unwrap_or(rest.len());
        let name = &rest[start + 2..end];
        substituted.push(name.to_string());
        body.push_str(&format!("SUB_{}", name.replace([':', '.'], "_")));
        rest = &rest[(end + 1).min(rest.len())..];
    }
    body.push_str(rest);
    let dashboard: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("DashboardBody is not JSON: {e}"));
    let widgets = dashboard["widgets"].as_array().expect("widgets");
    for w in widgets {
        let p = &w["properties"];
        assert!(
            p["region"].is_string(),
            "a metric widget needs its region: {w}"
        );
        // Rows as CloudWatch reads them: "." repeats the previous row's item at that
        // place, "..." all of the previous row's items before what follows.
        let mut previous: Vec<serde_json::Value> = Vec::new();
        for row in p["metrics"].as_array().into_iter().flatten() {
            let row: Vec<serde_json::Value> = row
                .as_array()
                .expect("a metric row")
                .iter()
                .filter(|v| !v.is_object())
                .cloned()
                .collect();
            let expanded: Vec<serde_json::Value> =
                if row.first().and_then(|v| v.as_str()) == Some("...") {
                    let tail = &row[1..];
                    let keep = previous.len().saturating_sub(tail.len());
                    previous[..keep].iter().chain(tail).cloned().collect()
                } else {
                    row.iter()
                        .enumerate()
                        .map(|(i, v)| match v.as_str() {
                            Some(".") => previous.get(i).cloned().unwrap_or_default(),
                            _ => v.clone(),
                        })
                        .collect()
                };
            if expanded.first().and_then(|v| v.as_str()) == Some("SUB_MetricsNamespace") {
                let name = expanded[1].as_str().unwrap_or_default();
                assert!(
                    emitted(name),
                    "the dashboard shows {name}, which the code never emits"
                );
            }
            previous = expanded;
        }
    }
    for needed in [
        "FilesQueue.QueueName",
        "FilesDeadLetterQueue.QueueName",
        "DiscoveryFunction",
        "ProcessorFunction",
        "PreviewFunction",
        "MetricsNamespace",
    ] {
        assert!(
            substituted.iter().any(|s| s == needed),
            "the dashboard does not show {needed}"
        );
    }
    for metric in [
        s3imports::metrics::FILES_PROCESSED,
        s3imports::metrics::ROWS_IMPORTED,
        s3imports::metrics::ROWS_FAILED,
        s3imports::metrics::FILE_DURATION,
        s3imports::metrics::DYNAMO_THROTTLES,
        s3imports::metrics::RUN_START_DELAY,
        "ApproximateAgeOfOldestMessage",
        "Errors",
        "Throttles",
        "Duration",
    ] {
        assert!(
            body.contains(&format!("\"{metric}\"")),
            "the dashboard has no {metric}"
        );
    }
}

/// A function invoked asynchronously (a schedule, an S3 or SNS event) is retried by
/// Lambda twice when it fails, whatever the event source's own retry policy says;
/// a tick that failed would run three times. Each such function says how many.
/// https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
#[test]
fn asynchronously_invoked_functions_set_their_retries() {
    let t = template();
    const ASYNC: &[&str] = &[
        "Schedule",
        "ScheduleV2",
        "S3",
        "SNS",
        "EventBridgeRule",
        "CloudWatchEvent",
    ];
    let mut checked = 0;
    for (f, r) in resources_of_type(&t, "AWS::Serverless::Function") {
        let events = r["Properties"]["Events"].as_mapping().into_iter().flatten();
        let invoked_async = events
            .filter_map(|(_, e)| e["Type"].as_str())
            .any(|ty| ASYNC.contains(&ty));
        if !invoked_async {
            continue;
        }
        checked += 1;
        let retries = &r["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"];
        assert_eq!(
            retries.as_u64(),
            Some(0),
            "{f} is invoked asynchronously: set EventInvokeConfig.MaximumRetryAttempts (Lambda retries twice by default; the next tick is the retry)"
        );
    }
    assert!(
        checked > 0,
        "discovery's schedule invokes it asynchronously"
    );
}
