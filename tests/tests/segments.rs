//! Segments of imported users against moto, through the processor, the CLI and the
//! API: every user a run imports joins the import's segment (failed rows do not),
//! first-added times survive later runs, an archived segment still gets its users and
//! the email says so, members page, and membership costs a batched write per 25 users,
//! not a request per row.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use chrono::Duration;
use s3imports::FixedClock;
use s3imports::ports::Configs;
use s3imports::process::Processor;
use s3imports::process::settings::ProcessorSettings;
use s3imports_preview::Api;
use s3imports_tests::{TestEnv, api_call, s3imports, write_json};
use serde_json::{Value, json};

const SEGMENT: &str = "VIP customers";

/// A user import's config; `key`: the attribute the ID column maps to (None for
/// anonymous users, keyed by their identifier column).
fn config(env: &TestEnv, id: &str, folder: &str, kind: Value, key: Option<&str>) -> Value {
    let mut columns = vec![json!({"column": "Age", "attribute": "age", "type": "integer"})];
    if let Some(key) = key {
        columns.insert(0, json!({"column": "ID", "attribute": key}));
    }
    json!({
        "id": id,
        "name": format!("Import {id}"),
        "kind": kind,
        "source": {"bucket": env.scoped("acme-exports"), "folder": folder, "datetime_format": "yyyymmdd"},
        "mapping": {"columns": columns},
        "schedule": {"type": "daily", "time": "09:00"},
        "notifications": {"recipients": [env.recipient()]},
        "segment": {"name": SEGMENT, "description": "Customers the CRM marks as VIP"}
    })
}

async fn get(api: &Api, path: &str) -> (u16, Value) {
    let a = api_call(api, "GET", path, None).await;
    (a.status, a.body)
}

fn cli_json(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = s3imports(env, &all);
    assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

/// The body of the one email that names `file`.
async fn email_naming(env: &TestEnv, file: &str) -> String {
    let bodies: Vec<String> = env
        .sent_emails()
        .await
        .iter()
        .filter_map(|e| e["body"].as_str().map(str::to_string))
        .filter(|b| b.contains(file))
        .collect();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    bodies[0].clone()
}

fn count(sent: &[String], op: &str) -> usize {
    sent.iter().filter(|s| *s == op).count()
}

#[tokio::test]
async fn user_imports_fill_their_segment_archived_or_not() {
    let env = TestEnv::new().await;
    let bucket = env.scoped("acme-exports");
    env.bucket(&bucket).await;
    let dir = tempfile::tempdir().unwrap();
    let registered = config(
        &env,
        "vip",
        "vip",
        json!({"type": "registered_users"}),
        Some("user_id"),
    );
    let put = s3imports(
        &env,
        &[
            "config",
            "put",
            &write_json(dir.path(), "vip.json", &registered),
        ],
    );
    assert_eq!(put.code, 0, "{}{}", put.stdout, put.stderr);
    assert!(
        put.stdout
            .contains("adds its users to segment \"VIP customers\""),
        "{}",
        put.stdout
    );
    // The segment exists from the moment a config names it.
    let listed = cli_json(&env, &["segments", "list"]);
    assert_eq!(listed["segments"][0]["name"], SEGMENT);
    assert_eq!(listed["segments"][0]["member_count"], 0);
    assert_eq!(listed["segments"][0]["imports"], json!(["vip"]));
    assert_eq!(listed["segments"][0]["status"], "active");

    // Run 1: 60 users and one bad row, processed with a counting DynamoDB client.
    let mut rows = String::from("ID,Age\n");
    for i in 0..60 {
        rows.push_str(&format!("u{i:02},{}\n", 20 + i));
    }
    rows.push_str("bad,not-a-number\n");
    env.put_object(&bucket, "vip/registered_user_data_20261201.csv", rows)
        .await;
    let mut w = env.pipeline().await;
    let (counted, requests) = env.counted_clients(s3imports_tests::Role::Processor);
    w.processor = Processor::from_env(&counted, &env.stack, ProcessorSettings::default());
    let due = w
        .configs
        .get("vip")
        .await
        .unwrap()
        .unwrap()
        .next_run_at
        .unwrap();
    let clock = FixedClock::new(due + Duration::minutes(1));
    let first_run_at = due + Duration::minutes(1);
    w.tick(&clock).await;
    let messages = w.take_messages().await;
    requests.take();
    w.process(&messages, &clock).await;
    let sent = requests.take();
    // 60 new users inserted 25 to a request, and their 60 members put 25 to a
    // request: 6 requests, none per row (the UpdateItems are the ledger's).
    assert_eq!(count(&sent, "BatchExecuteStatement"), 3, "{sent:?}");
    assert_eq!(count(&sent, "BatchWriteItem"), 3, "{sent:?}");
    assert!(count(&sent, "UpdateItem") < 10, "{sent:?}");
    assert_eq!(count(&sent, "PutItem"), 0, "{sent:?}");

    let shown = cli_json(&env, &["segments", "show", SEGMENT]);
    assert_eq!(
        shown["member_count"], 60,
        "the failed row is no member: {shown}"
    );
    assert_eq!(shown["description"], "Customers the CRM marks as VIP");
    let body = email_naming(&env, "registered_user_data_20261201.csv").await;
    assert!(
        body.contains("Segment: VIP customers (60 members)"),
        "{body}"
    );
    assert!(!body.contains("archived"), "{body}");

    // Archived: run 2 still adds (u00 again, and a new user), and the email says so.
    let archived = s3imports(&env, &["segments", "archive", SEGMENT]);
    assert_eq!(archived.code, 0, "{}", archived.stderr);
    assert!(
        archived
            .stdout
            .contains("imports vip still add their users to it"),
        "{}",
        archived.stdout
    );
    env.put_object(
        &bucket,
        "vip/registered_user_data_20261202.csv",
        "ID,Age\nu00,99\nnew,18\n",
    )
    .await;
    clock.advance(Duration::days(1));
    w.run(&clock).await;
    let body = email_naming(&env, "registered_user_data_20261202.csv").await;
    assert!(
        body.contains("Segment: VIP customers (61 members)"),
        "{body}"
    );
    assert!(
        body.contains("The segment is archived: this import still adds its users to it"),
        "{body}"
    );

    // An anonymous import feeds the same segment: its `u00` is another member.
    let anonymous = config(
        &env,
        "anon",
        "anon",
        json!({"type": "anonymous_users", "identifier_column": "ID"}),
        None,
    );
    let put = s3imports(
        &env,
        &[
            "config",
            "put",
            &write_json(dir.path(), "anon.json", &anonymous),
        ],
    );
    assert_eq!(put.code, 0, "{}{}", put.stdout, put.stderr);
    env.put_object(
        &bucket,
        "anon/anonymous_user_data_20261203.csv",
        "ID,Age\nu00,5\n",
    )
    .await;
    clock.advance(Duration::days(1));
    w.run(&clock).await;

    // The API: the segment, archived, fed by both imports, 62 members.
    let api = Api::from_env(
        &env.role_clients(s3imports_tests::Role::Preview),
        &env.stack,
    );
    let (status, all) = get(&api, "/segments").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["segments"].as_array().unwrap().len(), 1);
    let (status, one) = get(&api, "/segments/VIP%20customers").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["status"], "archived");
    assert_eq!(one["member_count"], 62);
    assert_eq!(one["imports"], json!(["anon", "vip"]));
    let (status, _) = get(&api, "/segments/nobody").await;
    assert_eq!(status, 404);
    let (status, bad) = get(&api, "/segments/VIP%20customers/members?cursor=zz").await;
    assert_eq!(status, 400, "{bad}");

    // Members, 25 a page, every one once; u00 kept its first-added time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let target = match &cursor {
            Some(c) => format!("/segments/VIP%20customers/members?limit=25&cursor={c}"),
            None => "/segments/VIP%20customers/members?limit=25".into(),
        };
        let (status, page) = get(&api, &target).await;
        assert_eq!(status, 200, "{page}");
        let members = page["members"].as_array().unwrap();
        assert!(members.len() <= 25);
        seen.extend(members.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 62);
    let member = |kind: &str, id: &str| {
        seen.iter()
            .find(|m| m["kind"] == kind && m["id"] == id)
            .unwrap_or_else(|| panic!("no {kind} member {id}"))
            .clone()
    };
    let u00 = member("registered", "u00");
    let at = |t: chrono::DateTime<chrono::Utc>| {
        json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    assert_eq!(u00["first_added"], at(first_run_at), "{u00}");
    assert_eq!(
        u00["last_added"],
        at(first_run_at + Duration::days(1)),
        "{u00}"
    );
    assert_eq!(u00["import_id"], "vip");
    assert_eq!(member("anonymous", "u00")["import_id"], "anon");
    assert!(seen.iter().all(|m| m["id"] != "bad"));

    // The CLI pages too, and unarchives.
    let page = cli_json(&env, &["segments", "members", SEGMENT, "--limit", "2"]);
    assert_eq!(page["members"].as_array().unwrap().len(), 2);
    let next = page["next_cursor"].as_str().unwrap();
    let page2 = cli_json(
        &env,
        &[
            "segments", "members", SEGMENT, "--limit", "2", "--cursor", next,
        ],
    );
    assert_ne!(page2["members"][0], page["members"][0]);
    let back = cli_json(&env, &["segments", "unarchive", SEGMENT]);
    assert_eq!(back["status"], "active");
    let missing = s3imports(&env, &["segments", "show", "nobody"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("no segment `nobody`"),
        "{}",
        missing.stderr
    );
}
