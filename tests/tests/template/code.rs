//! The template against the code: tables, names, limits, grants each code path needs.

use serde_norway::Value;

use super::*;

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

/// The destination tables are pre-warmed only when the stack is asked to, with the
/// value asked for, and the parameter admits only values DynamoDB and its quota accept.
#[test]
fn destination_tables_are_prewarmed_only_when_asked() {
    let t = template();
    let p = &t["Parameters"]["DestinationWarmWriteUnits"];
    assert_eq!(p["Default"].as_str(), Some("0"));
    let pattern = regex_lite::Regex::new(p["AllowedPattern"].as_str().unwrap()).unwrap();
    for ok in [
        "0", "4000", "4001", "9999", "10000", "25000", "39999", "40000",
    ] {
        assert!(pattern.is_match(ok), "{ok} should be allowed");
    }
    // Below a new on-demand table's 4,000 (warm throughput only rises), above the
    // default table quota of 40,000, or not a number.
    for bad in ["1", "3999", "40001", "100000", "04000", "-1", "", "4e3"] {
        assert!(!pattern.is_match(bad), "{bad} should be refused");
    }
    let condition = format!("{:?}", t["Conditions"]["PrewarmsDestinations"]);
    assert!(
        condition.contains("DestinationWarmWriteUnits") && condition.contains("Not"),
        "{condition}"
    );
    for table in [
        "UsersTable",
        "AnonymousUsersTable",
        "EventsTable",
        "AuxiliaryTable",
    ] {
        let warm = format!(
            "{:?}",
            t["Resources"][table]["Properties"]["WarmThroughput"]
        );
        assert!(
            warm.contains("PrewarmsDestinations")
                && warm.contains("WriteUnitsPerSecond")
                && warm.contains("DestinationWarmWriteUnits")
                && warm.contains("AWS::NoValue"),
            "{table}: {warm}"
        );
    }
    // The stack's own tables are not the load's: they stay as they start.
    for table in ["ConfigsTable", "LedgerTable", "SegmentsTable"] {
        assert!(
            t["Resources"][table]["Properties"]["WarmThroughput"].is_null(),
            "{table}"
        );
    }
}
