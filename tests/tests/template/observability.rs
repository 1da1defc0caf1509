//! Logs, alarms, the dashboard and retries, as CloudWatch and Lambda check them.

use serde_norway::Value;

use super::*;

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
