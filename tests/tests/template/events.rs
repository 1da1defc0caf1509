//! AWS rules `sam validate` and cfn-lint do not check, but that make `sam deploy` (or
//! the running stack) fail: event sources, redrive policies, dead-letter alarms.

use serde_norway::Value;

use super::*;

// ------------------------------------------------------------------ event sources
//
// AWS rules that `sam validate` and cfn-lint do not check, but that make `sam deploy`
// (or the running stack) fail. Each is checked for every function and every queue, so a
// new event source or queue is held to them too.

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
