//! Failed-rows reports reach the reader of a run's email for as long as the bucket
//! keeps them: small ones attached to the email, every one fetched by the CLI command
//! and the preview API route the email names (run exactly as written there), against
//! moto.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Command;

use base64::Engine as _;
use lambda_http::Body;
use s3imports::notify::email::MAX_ATTACHED_BYTES;
use s3imports_tests::clock;
use s3imports_tests::{Pipeline, TestEnv, cli_binary, http_get};
use serde_json::{Value, json};

/// An events import whose files' names hold a space (as MoEngage's event files do), so
/// the emailed command and route must quote and encode the key.
async fn setup() -> (TestEnv, String, Pipeline) {
    let env = TestEnv::new().await;
    let bucket = env.scoped("acme-exports");
    env.bucket(&bucket).await;
    let pipe = env.pipeline().await;
    pipe.put_config(
        json!({
            "id": "purchases",
            "name": "Purchases",
            "kind": {"type": "events", "event_name": "Purchase Summary"},
            "source": {"bucket": bucket, "folder": "events", "datetime_format": "yyyymmdd"},
            "mapping": {"columns": [
                {"column": "customer_id", "attribute": "user_id"},
                {"column": "at", "attribute": "event_time", "format": "YYYY-MM-DD hh:mm:ss"},
                {"column": "amount", "attribute": "amount", "type": "number"}
            ]},
            "schedule": {"type": "once"},
            "notifications": {"recipients": [env.recipient()]}
        }),
        s3imports::Clock::now(&clock()),
    )
    .await;
    (env, bucket, pipe)
}

/// `good` importable rows, then `bad` rows whose amount (`pad` bytes long) is no number.
fn events_csv(good: usize, bad: usize, pad: usize) -> String {
    let mut csv = String::from("customer_id,at,amount\n");
    for i in 0..good {
        csv.push_str(&format!("u{i},2026-11-27 09:30:00,{i}.5\n"));
    }
    let junk = "x".repeat(pad);
    for i in 0..bad {
        csv.push_str(&format!("b{i},2026-11-27 10:00:00,{junk}{i}\n"));
    }
    csv
}

async fn report_bytes(env: &TestEnv, key: &str) -> Vec<u8> {
    env.object(&env.stack.reports_bucket, key).await
}

/// What the email says about one file: its report line, CLI command and API route.
#[derive(Debug)]
struct FileBlock {
    report: String,
    cli: String,
    api: String,
}

fn block_for(body: &str, bucket: &str, key: &str) -> FileBlock {
    let head = format!("- s3://{bucket}/{key}:");
    let start = body
        .find(&head)
        .unwrap_or_else(|| panic!("the email does not list {key}:\n{body}"));
    let rest = &body[start + head.len()..];
    let block = rest.split("\n- ").next().unwrap_or_default();
    let after = |label: &str| {
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(label).map(str::to_string))
            .unwrap_or_else(|| panic!("no `{label}` for {key} in the email:\n{body}"))
    };
    FileBlock {
        report: after("Failed rows report: "),
        cli: after("Fetch it with the CLI: "),
        api: after("or the preview API (the stack's ApiUrl): "),
    }
}

/// Runs the emailed CLI command line through a shell, as an operator pasting it would,
/// with `s3imports` on PATH; `extra` is appended. Returns stdout's bytes.
fn run_emailed_command(env: &TestEnv, command: &str, extra: &str) -> Vec<u8> {
    let bin_dir = cli_binary().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{command} {extra}"))
        .envs(env.cli_env(&["report"]))
        .env_remove("S3IMPORTS_PREFIX")
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{command} {extra}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Calls the preview handler with the emailed route (`GET /path?query`), as API Gateway
/// would deliver it. Returns status, content type and body bytes.
async fn call_emailed_route(env: &TestEnv, route: &str) -> (u16, String, Vec<u8>) {
    let (method, target) = route.split_once(' ').unwrap();
    let request = s3imports_tests::api_request(method, target, None);
    let response = s3imports_preview::handler(
        &s3imports_preview::Api::from_env(
            &env.role_clients(s3imports_tests::Role::Preview),
            &env.stack,
        ),
        request,
    )
    .await
    .unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match response.body() {
        Body::Text(t) => t.as_bytes().to_vec(),
        Body::Binary(b) => b.clone(),
        _ => Vec::new(),
    };
    (response.status().as_u16(), content_type, body)
}

#[tokio::test]
async fn a_small_report_is_attached_and_the_emailed_command_and_route_fetch_it() {
    let (env, bucket, pipe) = setup().await;
    let key = "events/Purchase Summary_20261127.csv";
    env.put_object(&bucket, key, events_csv(3, 2, 5)).await;
    pipe.run(&clock()).await;

    let file = pipe
        .processor
        .ledger
        .file("purchases", key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((file.rows_ingested, file.rows_failed), (3, 2));
    let report_key = file.report_key.clone().unwrap();
    let report = report_bytes(&env, &report_key).await;
    assert!(report.len() > 100, "{}", String::from_utf8_lossy(&report));

    let mails = env.sent_emails().await;
    assert_eq!(mails.len(), 1, "one email for the run: {mails:?}");
    let mail = &mails[0];
    // The attachment, as an independent MIME parser reads it, is the report in S3.
    let attachments = mail["attachments"].as_array().cloned().unwrap_or_default();
    assert_eq!(attachments.len(), 1, "{mail}");
    let data = base64::engine::general_purpose::STANDARD
        .decode(attachments[0]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, report);
    let name = report_key.rsplit('/').next().unwrap();
    assert_eq!(attachments[0]["filename"], name);
    assert_eq!(attachments[0]["content_type"], "text/csv");
    assert_eq!(
        mail["subject"],
        "[s3imports] Purchases: Partial Success (3 of 5 rows imported)"
    );

    let body = mail["body"].as_str().unwrap();
    let block = block_for(body, &bucket, key);
    assert_eq!(block.report, format!("attached as {name}"));
    assert!(!body.contains("http"), "no link that will die: {body}");

    // The emailed CLI command, to stdout and to a file.
    assert_eq!(run_emailed_command(&env, &block.cli, ""), report);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.csv");
    run_emailed_command(&env, &block.cli, &format!("--output '{}'", out.display()));
    assert_eq!(std::fs::read(&out).unwrap(), report);

    // The emailed API route returns the CSV itself.
    let (status, content_type, got) = call_emailed_route(&env, &block.api).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&got));
    assert_eq!(content_type, "text/csv");
    assert_eq!(got, report);

    // Another run's id, or a file without failed rows, is refused.
    let other = block.api.replace(&file.run_id, "20261128T090000Z-00000000");
    let (status, _, got) = call_emailed_route(&env, &other).await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&got));
    let (status, _, got) = call_emailed_route(
        &env,
        &format!("GET /imports/purchases/runs/{}/report", file.run_id),
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&got));
}

#[tokio::test]
async fn an_oversized_report_is_not_attached_and_the_email_says_how_to_fetch_it() {
    let (env, bucket, pipe) = setup().await;
    // Each bad row's report line repeats the row: 2,800 rows of ~2 KB make a report
    // over the email's attachment budget (and over the API's inline bound).
    let big_key = "events/Purchase Summary_20261126.csv";
    let small_key = "events/Purchase Summary_20261127.csv";
    env.put_object(&bucket, big_key, events_csv(1, 2_800, 2_000))
        .await;
    env.put_object(&bucket, small_key, events_csv(1, 1, 5))
        .await;
    pipe.run(&clock()).await;

    let ledger = &pipe.processor.ledger;
    let big = ledger.file("purchases", big_key).await.unwrap().unwrap();
    let small = ledger.file("purchases", small_key).await.unwrap().unwrap();
    let big_report = report_bytes(&env, big.report_key.as_deref().unwrap()).await;
    let small_report = report_bytes(&env, small.report_key.as_deref().unwrap()).await;
    assert!(
        big_report.len() as u64 > MAX_ATTACHED_BYTES,
        "the test's report is only {} bytes",
        big_report.len()
    );

    let mails = env.sent_emails().await;
    assert_eq!(mails.len(), 1, "one email for the run");
    let mail = &mails[0];
    let body = mail["body"].as_str().unwrap();
    // The large report is not attached and the email says why; the small one still is.
    let big_block = block_for(body, &bucket, big_key);
    assert_eq!(
        big_block.report,
        format!(
            "not attached ({} bytes; an email carries at most 5 MB of reports)",
            big_report.len()
        )
    );
    let attachments = mail["attachments"].as_array().cloned().unwrap_or_default();
    assert_eq!(attachments.len(), 1, "only the small report: {body}");
    let data = base64::engine::general_purpose::STANDARD
        .decode(attachments[0]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, small_report);
    assert!(
        block_for(body, &bucket, small_key)
            .report
            .starts_with("attached as ")
    );

    // The emailed command streams the whole report.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.csv");
    run_emailed_command(&env, &big_block.cli, &format!("-o '{}'", out.display()));
    assert!(std::fs::read(&out).unwrap() == big_report);

    // The emailed route is too large to answer inline: a short-lived URL instead, that
    // downloads the report.
    let (status, content_type, got) = call_emailed_route(&env, &big_block.api).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&got));
    assert_eq!(content_type, "application/json");
    let answer: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(answer["bytes"], big_report.len());
    assert_eq!(answer["expires_in_seconds"], 900);
    let url = answer["url"].as_str().unwrap();
    let path = url.strip_prefix(&env.endpoint).unwrap();
    assert!(path.contains("X-Amz-Expires=900"), "{url}");
    assert!(http_get(&env.endpoint, path).as_bytes() == big_report);
}
