//! Metrics and logs an operator reads: the EMF lines an import writes (names, units,
//! dimensions, and values equal to the run's counts, checked against the embedded
//! metric format's rules), the DynamoDB throttle and retry counter on a throttling
//! endpoint, and the log lines of a file (import, run, key and request id on each; no
//! row value at any level).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Duration;
use lambda_runtime::{Context, LambdaEvent};
use s3imports::metrics::{Captured, Metrics};
use s3imports::ports::Configs;
use s3imports::{Clock, FixedClock};
use s3imports_tests::{TestEnv, workspace_root};
use serde_json::{Value, json};

/// What the tests' log writer collects.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Lines;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The processor's logs, as the Lambda writes them (one subscriber per test binary).
fn logs() -> &'static Lines {
    static LOGS: std::sync::OnceLock<Lines> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let lines = Lines::default();
        // At `trace`: no row value may appear at any level.
        s3imports::telemetry::init_lambda_with("trace", true, lines.clone());
        lines
    })
}

/// Checks EMF documents against the format's rules (tests/data/emf.schema.json) with
/// an independent validator (Python's jsonschema, in the tests' venv).
fn assert_valid_emf(lines: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("emf.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let root = workspace_root();
    let script = "import json,sys,jsonschema\n\
        schema=json.load(open(sys.argv[1]))\n\
        for line in open(sys.argv[2]):\n    jsonschema.validate(json.loads(line), schema)\n";
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .args(["-c", script])
        .arg(root.join("tests/data/emf.schema.json"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "EMF not valid: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What a schema cannot say: every metric and dimension a directive names is a
    // member of the document.
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap();
        for d in v["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for m in d["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert!(v[name].is_number(), "{name} has no value: {line}");
            }
            for set in d["Dimensions"].as_array().unwrap() {
                for dim in set.as_array().unwrap() {
                    assert!(v[dim.as_str().unwrap()].is_string(), "{dim}: {line}");
                }
            }
        }
    }
}

fn users_config(env: &TestEnv) -> Value {
    json!({
        "id": "crm",
        "name": "CRM users",
        "kind": {"type": "registered_users"},
        "source": {"bucket": env.scoped("acme"), "folder": "in", "datetime_format": "yyyymmdd"},
        "mapping": {"columns": [
            {"column": "ID", "attribute": "user_id"},
            {"column": "Age", "attribute": "age", "type": "integer"}
        ]},
        "schedule": {"type": "daily", "time": "09:00"}
    })
}

#[tokio::test]
async fn an_import_writes_metrics_equal_to_its_counts_and_logs_that_name_the_file() {
    let logs = logs();
    let env = TestEnv::new().await;
    env.bucket(&env.scoped("acme")).await;
    let good = "ID,Age\nu1,30\nu2,41\nu3,52\n";
    // A value that must never reach a log line, in a good row and in a failed one.
    let partial = "ID,Age\nzz-secret-id-QZXW,18\nu5,never-logged-QZXW\n";
    env.put_object(
        &env.scoped("acme"),
        "in/registered_user_data_20261201.csv",
        good,
    )
    .await;
    env.put_object(
        &env.scoped("acme"),
        "in/registered_user_data_20261202.csv",
        partial,
    )
    .await;
    let mut w = env.pipeline().await;
    let emf = Arc::new(Captured::default());
    let metrics = Metrics::new("s3i-test", "teststack", true, emf.clone())
        .with_counters(env.clients.dynamo_counters.clone());
    w.processor.metrics = metrics.clone();
    w.discovery.metrics = metrics;
    w.put_config(users_config(&env), chrono::Utc::now()).await;
    let due = w
        .configs
        .get("crm")
        .await
        .unwrap()
        .unwrap()
        .next_run_at
        .unwrap();
    let clock = FixedClock::new(due + Duration::seconds(90));
    w.tick(&clock).await;
    let messages = w.take_messages().await;
    assert_eq!(messages.len(), 2);
    // As Lambda delivers them: sent 5 s ago, in an invocation with a request id.
    let sent = (clock.now() - Duration::seconds(5)).timestamp_millis();
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut r = SqsMessage::default();
            r.message_id = Some(format!("m{i}"));
            r.body = Some(serde_json::to_string(m).unwrap());
            r.attributes
                .insert("ApproximateReceiveCount".into(), "1".into());
            r.attributes
                .insert("SentTimestamp".into(), sent.to_string());
            r
        })
        .collect();
    let mut context = Context::default();
    context.request_id = "req-0001".into();
    s3imports_processor::handler(
        &w.processor,
        &env.stack.dlq_name,
        &clock,
        5,
        LambdaEvent::new(event, context),
    )
    .await
    .unwrap();

    let lines = emf.lines();
    assert_valid_emf(&lines);
    let docs: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Discovery: the run started 90 s after it was due and queued two files.
    let run = docs
        .iter()
        .find(|d| d["RunStartDelay"].is_number())
        .unwrap();
    assert_eq!(run["RunStartDelay"], 90);
    assert_eq!(run["FilesQueued"], 2);
    assert_eq!(run["Stack"], "teststack");
    assert_eq!(run["ImportId"], "crm");
    // Each file: by outcome, with the ledger's counts.
    let files: HashMap<String, &Value> = docs
        .iter()
        .filter(|d| d["FilesProcessed"].is_number())
        .map(|d| (d["FileKey"].as_str().unwrap().to_string(), d))
        .collect();
    assert_eq!(files.len(), 2);
    for m in &messages {
        let record = w
            .processor
            .ledger
            .file("crm", &m.key)
            .await
            .unwrap()
            .unwrap();
        let d = files[&m.key];
        assert_eq!(d["Outcome"], record.status.as_str());
        assert_eq!(d["FilesProcessed"], 1);
        assert_eq!(d["RowsImported"], record.rows_ingested);
        assert_eq!(d["RowsFailed"], record.rows_failed);
        assert_eq!(d["BytesRead"], record.bytes);
        assert_eq!(d["FileDuration"], record.duration_ms.unwrap());
        assert_eq!(d["RunId"], m.run_id.as_str());
        let directives = &d["_aws"]["CloudWatchMetrics"];
        assert_eq!(directives[0]["Namespace"], "s3i-test");
        assert_eq!(
            directives[0]["Dimensions"],
            json!([["Stack", "Outcome"], ["Stack", "ImportId", "Outcome"]])
        );
        assert_eq!(
            directives[0]["Metrics"],
            json!([{"Name": "FilesProcessed", "Unit": "Count"}])
        );
        assert_eq!(
            directives[1]["Metrics"],
            json!([
                {"Name": "RowsImported", "Unit": "Count"},
                {"Name": "RowsFailed", "Unit": "Count"},
                {"Name": "BytesRead", "Unit": "Bytes"},
                {"Name": "FileDuration", "Unit": "Milliseconds"}
            ])
        );
    }
    let outcomes: Vec<&str> = files
        .values()
        .map(|d| d["Outcome"].as_str().unwrap())
        .collect();
    assert!(outcomes.contains(&"succeeded") && outcomes.contains(&"partially_succeeded"));
    // Each delivery: its wait in the queue, and DynamoDB's throttles and retries.
    let deliveries: Vec<&Value> = docs.iter().filter(|d| d["QueueWait"].is_number()).collect();
    assert_eq!(deliveries.len(), 2);
    for d in deliveries {
        assert_eq!(d["QueueWait"], 5000);
        assert_eq!(d["DynamoDBThrottles"], 0, "moto never throttles");
        assert!(d["DynamoDBRetries"].is_number());
    }

    // The logs: the file's lines carry the request id, import, run and key.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let finished: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "file finished")
        .collect();
    assert!(finished.len() >= 2, "{text}");
    for line in &finished {
        let spans = line["spans"].as_array().unwrap();
        let field = |name: &str| {
            spans
                .iter()
                .find_map(|s| s[name].as_str().map(str::to_string))
        };
        assert_eq!(field("request_id").as_deref(), Some("req-0001"), "{line}");
        assert_eq!(field("import_id").as_deref(), Some("crm"), "{line}");
        assert!(
            field("run_id").is_some() && field("key").is_some(),
            "{line}"
        );
    }
    // Every line of ours about a file (its key in a field) is inside the file's span
    // (or the discovery run's), and a file's lines inside the invocation's. (The
    // SDK's debug lines include the test's own uploads.)
    for line in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| ["INFO", "WARN", "ERROR"].contains(&l["level"].as_str().unwrap_or("")))
    {
        let about_file = line["fields"].as_object().is_some_and(|f| {
            f.values().any(|v| {
                v.as_str()
                    .is_some_and(|s| s.contains("registered_user_data_"))
            })
        });
        let spans = line["spans"].as_array().cloned().unwrap_or_default();
        if about_file {
            assert!(
                spans
                    .iter()
                    .any(|s| s["name"] == "file" || s["name"] == "import"),
                "a line about a file outside its span: {line}"
            );
        }
        if spans.iter().any(|s| s["name"] == "file") {
            assert!(
                spans.iter().any(|s| s["request_id"] == "req-0001"),
                "{line}"
            );
        }
    }
    assert!(
        !text.contains("QZXW"),
        "a row value reached the logs: {}",
        text.lines()
            .find(|l| l.contains("QZXW"))
            .unwrap_or_default()
    );
}

/// A DynamoDB endpoint that throttles the first request and answers the second.
async fn throttling_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        for answer in 0.. {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                let (status, body) = if answer == 0 {
                    (
                        "400 Bad Request",
                        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#,
                    )
                } else {
                    ("200 OK", r#"{"TableNames":[]}"#)
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_dynamodb_counter_sees_throttles_the_sdk_retries() {
    let endpoint = throttling_endpoint().await;
    let sdk = s3imports_tests::sdk_config(&endpoint)
        .into_builder()
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(std::time::Duration::from_millis(1)),
        )
        .build();
    let counters = s3imports::metrics::Counters::default();
    let ddb = s3imports::aws::dynamodb_client(&sdk, &counters);
    ddb.list_tables().send().await.unwrap();
    let seen = counters.snapshot();
    assert_eq!((seen.throttles, seen.retries), (1, 1));
}
