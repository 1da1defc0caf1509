//! Alerts beyond email, against moto and a local HTTPS-less webhook receiver: every
//! run's summary goes to the stack's SNS topic, an import's own topic and its webhook
//! (signed with an HMAC key from Secrets Manager, retried with backoff); `alert_when`
//! marks a run as needing attention and sends its email even where emails are off;
//! failed deliveries are recorded on the run.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use s3imports::FixedClock;
use s3imports_preview::Api;
use s3imports_tests::{TestEnv, api_call};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request the receiver got: headers (lowercase names) and body.
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// A webhook receiver on a free loopback port that answers each request with the
/// next of `statuses` (the last one after that).
async fn receiver(statuses: Vec<u16>) -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/s3imports", listener.local_addr().unwrap());
    let got: Received = Arc::default();
    let seen = got.clone();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut data = Vec::new();
            let mut buf = [0u8; 8192];
            // Headers, then as many body bytes as Content-Length says.
            let (head, body) = loop {
                let k = socket.read(&mut buf).await.unwrap();
                data.extend_from_slice(&buf[..k]);
                if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&data[..end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            (k.eq_ignore_ascii_case("content-length"))
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while data.len() < end + 4 + length {
                        let k = socket.read(&mut buf).await.unwrap();
                        data.extend_from_slice(&buf[..k]);
                    }
                    break (
                        head,
                        String::from_utf8_lossy(&data[end + 4..end + 4 + length]).to_string(),
                    );
                }
            };
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            seen.lock().unwrap().push((headers, body));
            let status = statuses[n.min(statuses.len() - 1)];
            n += 1;
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            socket.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    (url, got)
}

/// A queue subscribed to `topic`, returning what it received (SNS envelopes).
async fn subscribe(env: &TestEnv, topic: &str, name: &str) -> String {
    let url = env
        .clients
        .sqs
        .create_queue()
        .queue_name(env.scoped(name))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let arn = env
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    env.clients
        .sns
        .subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .unwrap();
    url
}

async fn summaries(env: &TestEnv, queue: &str) -> Vec<Value> {
    let got = env
        .clients
        .sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    got.messages()
        .iter()
        .map(|m| {
            let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap()
        })
        .collect()
}

fn users(env: &TestEnv, id: &str, folder: &str, webhook: Value, topic: Option<&str>) -> Value {
    let mut notifications = json!({
        "recipients": [env.recipient()],
        "on_success": false,
        "on_failure": false,
        "alert_when": {"rows_failed_percent": 5},
        "webhook": webhook
    });
    if let Some(t) = topic {
        notifications["sns_topic_arn"] = json!(t);
    }
    s3imports_tests::users_config(env, id, folder, json!({"notifications": notifications}))
}

/// `rows` users, `bad` of them with an age that is not a number.
fn file(rows: usize, bad: usize) -> String {
    let mut csv = String::from("ID,Age\n");
    for i in 0..rows {
        if i < bad {
            csv.push_str(&format!("u{i},n/a\n"));
        } else {
            csv.push_str(&format!("u{i},{}\n", 20 + i % 50));
        }
    }
    csv
}

#[tokio::test]
async fn summaries_reach_topics_and_a_signed_webhook_and_thresholds_mark_attention() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    let stack_queue = subscribe(&env, &env.stack.alerts_topic_arn, "stack-alerts").await;
    let own_topic = env
        .clients
        .sns
        .create_topic()
        .name(env.scoped("acme-alerts"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let own_queue = subscribe(&env, &own_topic, "acme-alerts").await;
    // The receiver is busy once: the delivery is retried.
    let (url, got) = receiver(vec![503, 200]).await;
    let key = "whsec-0123456789abcdef";
    let secret = env.put_secret("webhook", key, &["users"]).await;
    let hook = json!({"url": url, "signing_key_ref": secret});
    env.put_object(&bucket, "in/registered_user_data_20261128.csv", file(20, 2))
        .await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
    w.put_config(
        users(&env, "users", "in", hook.clone(), Some(&own_topic)),
        t0,
    )
    .await;
    let (_, messages, _) = w.run(&FixedClock::new(t0)).await;
    let run_id = messages[0].run_id.clone();

    // 2 of 20 rows (10%) failed, above 5%: the email goes out though both
    // `on_success` and `on_failure` are off, and says why.
    let emails = env.sent_emails().await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let email = emails[0].to_string();
    assert!(email.contains("Needs attention:"), "{email}");
    assert!(email.contains("10.0% of rows failed (2 of 20)"), "{email}");

    for queue in [&stack_queue, &own_queue] {
        let got = summaries(&env, queue).await;
        assert_eq!(got.len(), 1, "{got:?}");
        let s = &got[0];
        assert_eq!(s["import_id"], "users");
        assert_eq!(s["run_id"], run_id.as_str());
        assert_eq!(s["status"], "partially_succeeded");
        assert_eq!(s["needs_attention"], true);
        assert_eq!(s["rows"], json!({"total": 20, "imported": 18, "failed": 2}));
        assert_eq!(s["reports_bucket"], env.stack.reports_bucket.as_str());
        assert!(
            s["reports"][0]["report_key"]
                .as_str()
                .unwrap()
                .starts_with("failed-rows/users/")
        );
        assert!(
            s["reasons"][0]
                .as_str()
                .unwrap()
                .contains("2 of 20 rows failed"),
            "{s}"
        );
    }

    // Two attempts (503, then 200), the same body, signed with the secret's key.
    let requests = got.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let (headers, body) = &requests[1];
    assert_eq!(&requests[0].1, body);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let timestamp = header("x-s3imports-timestamp");
    assert_eq!(timestamp, t0.timestamp().to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(header("x-s3imports-signature"), format!("v1={expected}"));
    assert_eq!(header("x-s3imports-run"), run_id);
    let summary: Value = serde_json::from_str(body).unwrap();
    assert_eq!(summary["needs_attention"], true);

    // Every delivery is on the run.
    let api = Api::from_env(
        &env.role_clients(s3imports_tests::Role::Preview),
        &env.stack,
    );
    let runs = api_call(&api, "GET", "/imports/users/runs", None)
        .await
        .body;
    let alerts = &runs["runs"][0]["alerts"];
    assert!(
        alerts["attention"]
            .as_str()
            .unwrap()
            .contains("above alert_when"),
        "{alerts}"
    );
    let deliveries = alerts["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 3, "{alerts}");
    assert!(
        deliveries.iter().all(|d| d["delivered"] == true),
        "{alerts}"
    );
    assert_eq!(deliveries[2]["attempts"], 2, "{alerts}");

    // Below the threshold: summaries still go out, but no email (both are off).
    env.put_object(&bucket, "in/registered_user_data_20261129.csv", file(20, 0))
        .await;
    w.run(&FixedClock::new(t0 + Duration::hours(1))).await;
    assert_eq!(env.sent_emails().await.len(), 1);
    let calm = summaries(&env, &stack_queue).await;
    assert_eq!(calm.len(), 1);
    assert_eq!(calm[0]["needs_attention"], false);
    assert_eq!(calm[0]["status"], "succeeded");
}

#[tokio::test]
async fn a_webhook_that_cannot_be_reached_is_retried_then_recorded() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let secret = env.put_secret("webhook", "k", &["users"]).await;
    env.put_object(&bucket, "in/registered_user_data_20261128.csv", file(20, 0))
        .await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
    let mut config = users(
        &env,
        "users",
        "in",
        json!({"url": url, "signing_key_ref": secret}),
        None,
    );
    config["notifications"]["on_success"] = json!(true);
    w.put_config(config, t0).await;
    w.run(&FixedClock::new(t0)).await;

    let file = w
        .processor
        .ledger
        .file("users", "in/registered_user_data_20261128.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(file.status.as_str(), "succeeded");
    let run = w
        .processor
        .ledger
        .run("users", &file.run_id)
        .await
        .unwrap()
        .unwrap();
    let sent = run.alerts.unwrap();
    assert_eq!(sent.attention, None);
    let hook = sent
        .deliveries
        .iter()
        .find(|d| d.target.starts_with("webhook:"))
        .unwrap();
    assert!(!hook.delivered);
    assert_eq!(hook.attempts, 3);
    assert!(
        hook.error.as_deref().unwrap().contains("webhook POST"),
        "{hook:?}"
    );
    // The stack's topic still got it, and the email went out as asked.
    assert!(
        sent.deliveries
            .iter()
            .any(|d| d.target.starts_with("sns:") && d.delivered)
    );
    assert_eq!(env.sent_emails().await.len(), 1);
}
