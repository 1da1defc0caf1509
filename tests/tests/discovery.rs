//! The discovery Lambda's handler against moto: due imports, new files, ledger claims
//! and SQS fan-out.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use lambda_runtime::{Context, LambdaEvent};
use s3imports::aws::configs::ConfigStore;
use s3imports::aws::ledger::LedgerStore;
use s3imports::discover::Discovery;
use s3imports::discover::report::{TickOutcome, TickReport};
use s3imports::model::config::{ImportConfig, ImportStatus};
use s3imports::model::ledger::FileRecord;
use s3imports::model::status::{FileStatus, RunStatus};
use s3imports::ports::{
    Configs as _, FileLedger as _, FileMessage, LedgerReads as _, RunLedger as _,
};
use s3imports::{Clock, FixedClock};
use s3imports_tests::TestEnv;

fn users_config(w: &World, id: &str, folder: &str, schedule: serde_json::Value) -> ImportConfig {
    ImportConfig::from_value(serde_json::json!({
        "id": id,
        "name": format!("Users {id}"),
        "kind": {"type": "registered_users"},
        "source": {"bucket": w.bucket, "folder": folder, "datetime_format": "yyyymmdd"},
        "mapping": {"columns": [{"column": "ID", "attribute": "user_id"}]},
        "schedule": schedule,
        "notifications": {"recipients": [w.env.recipient()]}
    }))
    .expect("valid config")
}

fn daily() -> serde_json::Value {
    serde_json::json!({"type": "daily", "time": "09:00"})
}

async fn tick(d: &Discovery, clock: &dyn Clock) -> TickReport {
    s3imports_discovery::handler(
        d,
        clock,
        LambdaEvent::new(serde_json::json!({}), Context::default()),
    )
    .await
    .expect("tick")
}

async fn drain(env: &TestEnv, _d: &Discovery) -> Vec<FileMessage> {
    let queue = env.queue();
    let mut out = Vec::new();
    loop {
        let got = env
            .clients
            .sqs
            .receive_message()
            .queue_url(
                queue
                    .url()
                    .await
                    .unwrap_or_else(|e| panic!("queue url: {e}")),
            )
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        if got.messages().is_empty() {
            return out;
        }
        for m in got.messages() {
            out.push(serde_json::from_str(m.body().unwrap_or_default()).expect("message json"));
            env.clients
                .sqs
                .delete_message()
                .queue_url(
                    queue
                        .url()
                        .await
                        .unwrap_or_else(|e| panic!("queue url: {e}")),
                )
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

struct World {
    env: TestEnv,
    bucket: String,
    discovery: Discovery,
    configs: ConfigStore,
    ledger: LedgerStore,
}

async fn world() -> World {
    let env = TestEnv::new().await;
    let bucket = env.scoped("customer-data");
    env.bucket(&bucket).await;
    let discovery = Discovery::from_env(
        &env.role_clients(s3imports_tests::Role::Discovery),
        &env.stack,
    )
    .await
    .expect("discovery");
    World {
        bucket,
        configs: env.configs(),
        ledger: env.ledger(),
        discovery,
        env,
    }
}

fn at(d: u32, h: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
}

#[tokio::test]
async fn enqueues_only_new_matching_files_directly_in_the_folder() {
    let w = world().await;
    let folder = "exports/users";
    for name in [
        "registered_user_data_20261101.csv",
        "registered_user_data_20261102.csv",
        "registered_user_data_20261103.csv.gz",
        "registered_user_data_2026113.csv", // not a yyyymmdd date
        "sub/registered_user_data_20261104.csv", // in a sub-folder
    ] {
        w.env
            .put_object(&w.bucket, &format!("{folder}/{name}"), "ID\n1\n")
            .await;
    }
    let config = users_config(&w, "users", folder, daily());
    let clock = FixedClock::new(at(1, 8));
    w.configs.put(&config, clock.now()).await.expect("put");
    // The first file is already in the ledger (an earlier run imported it).
    let old = FileRecord {
        run_id: "earlier".into(),
        status: FileStatus::Succeeded,
        rows_total: 1,
        rows_ingested: 1,
        bytes: 5,
        queued_at: None,
        attempts: 1,
        invocations: 1,
        ..FileRecord::queued(
            "users",
            "earlier",
            &w.bucket,
            &format!("{folder}/registered_user_data_20261101.csv"),
            5,
            "",
            at(1, 8),
        )
    };
    // Claimed five minutes before the run by another tick, its message on its way.
    let old_key = old.key.clone();
    assert!(
        w.ledger
            .claim_file(&old, at(1, 9) - chrono::Duration::minutes(5))
            .await
            .unwrap()
    );

    // Not due yet at 08:00 (daily at 09:00).
    assert!(tick(&w.discovery, &clock).await.imports.is_empty());
    clock.set(at(1, 9));
    let report = tick(&w.discovery, &clock).await;
    assert_eq!(report.imports.len(), 1, "{report:?}");
    let t = &report.imports[0];
    assert_eq!(t.outcome, TickOutcome::Enqueued);

    let messages = drain(&w.env, &w.discovery).await;
    let keys: BTreeSet<_> = messages.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "exports/users/registered_user_data_20261102.csv",
            "exports/users/registered_user_data_20261103.csv.gz",
        ])
    );
    let m = &messages[0];
    assert_eq!(m.import_id, "users");
    assert_eq!(m.bucket, w.bucket);
    assert_eq!(Some(&m.run_id), t.run_id.as_ref());
    assert_eq!(m.size, 5);
    assert!(!m.etag.is_empty());

    // The ledger holds each as queued, and the run knows its two files.
    let run_id = t.run_id.clone().unwrap();
    let run = w.ledger.run("users", &run_id).await.unwrap().unwrap();
    assert_eq!((run.status, run.files_total), (RunStatus::Processing, 2));
    let files = w.ledger.run_files("users", &run_id).await.unwrap();
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|f| f.status == FileStatus::Queued));

    // Workers take the files (the one claimed earlier too).
    for key in files.iter().map(|f| &f.key).chain([&old_key]) {
        w.ledger
            .start_file("users", key, None, "worker", at(1, 10), at(1, 9))
            .await
            .unwrap();
    }
    // The next run is tomorrow at 09:00; the same files are never enqueued again.
    let record = w.configs.require("users").await.unwrap();
    assert_eq!(record.next_run_at, Some(at(2, 9)));
    clock.set(at(2, 9));
    let again = tick(&w.discovery, &clock).await;
    assert_eq!(again.imports[0].outcome, TickOutcome::NoNewFiles);
    assert!(again.imports[0].requeued.is_empty());
    assert!(drain(&w.env, &w.discovery).await.is_empty());
    let quiet = w
        .ledger
        .run("users", again.imports[0].run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quiet.status, RunStatus::NoNewFiles);
}

#[tokio::test]
async fn two_concurrent_ticks_enqueue_each_file_once() {
    let w = world().await;
    for d in 1..=5 {
        w.env
            .put_object(
                &w.bucket,
                &format!("in/registered_user_data_202611{d:02}.csv"),
                "ID\n1\n",
            )
            .await;
    }
    let clock = FixedClock::new(at(3, 10));
    let config = users_config(
        &w,
        "race",
        "in",
        serde_json::json!({"type": "every", "minutes": 5}),
    );
    w.configs.put(&config, clock.now()).await.unwrap();
    let second = Discovery::from_env(
        &w.env.role_clients(s3imports_tests::Role::Discovery),
        &w.env.stack,
    )
    .await
    .unwrap();
    let (a, b) = tokio::join!(tick(&w.discovery, &clock), tick(&second, &clock));
    let outcomes: BTreeSet<_> = a
        .imports
        .iter()
        .chain(&b.imports)
        .map(|t| format!("{:?}", t.outcome))
        .collect();
    assert!(outcomes.contains("Enqueued"), "{outcomes:?}");
    let messages = drain(&w.env, &w.discovery).await;
    let keys: BTreeSet<_> = messages.iter().map(|m| m.key.clone()).collect();
    assert_eq!(messages.len(), 5, "each file exactly once: {messages:?}");
    assert_eq!(keys.len(), 5);
}

#[tokio::test]
async fn archived_and_not_yet_due_imports_do_nothing() {
    let w = world().await;
    w.env
        .put_object(&w.bucket, "a/registered_user_data_20261101.csv", "ID\n1\n")
        .await;
    w.env
        .put_object(&w.bucket, "b/registered_user_data_20261101.csv", "ID\n1\n")
        .await;
    let clock = FixedClock::new(at(5, 9));
    w.configs
        .put(&users_config(&w, "archived", "a", daily()), clock.now())
        .await
        .unwrap();
    w.configs.archive("archived", clock.now()).await.unwrap();
    let mut later = users_config(
        &w,
        "later",
        "b",
        serde_json::json!({"type": "once", "at": "2026-12-25T10:00:00"}),
    );
    later.status = ImportStatus::Active;
    w.configs.put(&later, clock.now()).await.unwrap();

    clock.set(at(20, 9));
    let report = tick(&w.discovery, &clock).await;
    assert!(report.imports.is_empty(), "{report:?}");
    assert!(drain(&w.env, &w.discovery).await.is_empty());
    assert_eq!(
        w.configs.require("archived").await.unwrap().status,
        ImportStatus::Archived
    );
}

#[tokio::test]
async fn a_one_time_import_runs_once() {
    let w = world().await;
    w.env
        .put_object(
            &w.bucket,
            "once/registered_user_data_20261101.csv",
            "ID\n1\n",
        )
        .await;
    let clock = FixedClock::new(at(6, 12));
    w.configs
        .put(
            &users_config(&w, "once", "once", serde_json::json!({"type": "once"})),
            clock.now(),
        )
        .await
        .unwrap();
    let first = tick(&w.discovery, &clock).await;
    assert_eq!(first.imports[0].outcome, TickOutcome::Enqueued);
    assert_eq!(drain(&w.env, &w.discovery).await.len(), 1);
    let record = w.configs.require("once").await.unwrap();
    assert_eq!(record.status, ImportStatus::Completed);
    assert_eq!(record.next_run_at, None);

    // A new file later is not picked up: the import has completed.
    w.env
        .put_object(
            &w.bucket,
            "once/registered_user_data_20261102.csv",
            "ID\n1\n",
        )
        .await;
    clock.set(at(7, 12));
    assert!(tick(&w.discovery, &clock).await.imports.is_empty());
    assert!(drain(&w.env, &w.discovery).await.is_empty());
}

#[tokio::test]
async fn unreachable_bucket_fails_the_run_with_a_reason_and_an_email() {
    let w = world().await;
    let clock = FixedClock::new(at(8, 9));
    // The access key's secret is not in Secrets Manager.
    let mut bad_key = users_config(&w, "badkey", "x", daily());
    bad_key.source.credentials = s3imports::model::config::Credentials::AccessKey {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key_ref: s3imports::model::config::SecretRef(format!(
            "{}/missing/secret",
            w.env.prefix
        )),
    };
    w.configs.put(&bad_key, clock.now()).await.unwrap();
    // The folder does not exist.
    w.configs
        .put(
            &users_config(&w, "nofolder", "no/such/folder", daily()),
            clock.now(),
        )
        .await
        .unwrap();
    let report = tick(&w.discovery, &clock).await;
    assert_eq!(report.imports.len(), 2);
    for t in &report.imports {
        assert_eq!(t.outcome, TickOutcome::Failed, "{t:?}");
        let run = w
            .ledger
            .run(&t.import_id, t.run_id.as_ref().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        let reason = run.reason.unwrap();
        match t.import_id.as_str() {
            "badkey" => assert!(reason.contains("missing/secret"), "{reason}"),
            _ => assert!(
                reason.starts_with("Please check the folder path and try again"),
                "{reason}"
            ),
        }
    }
    // Not retried until the next scheduled run.
    assert_eq!(
        w.configs.require("nofolder").await.unwrap().next_run_at,
        Some(at(9, 9))
    );
    let mails = w.env.sent_emails().await;
    let subjects: Vec<String> = mails
        .iter()
        .filter_map(|m| {
            m.get("subject")
                .and_then(|s| s.as_str())
                .map(str::to_string)
        })
        .collect();
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("Users nofolder") && s.contains("Failed")),
        "{mails:?}"
    );
    // A secret that is not there carries no binding tag: AWS refuses it by the
    // discovery role's policy before it can say it does not exist.
    let refused = w.env.take_violations();
    assert!(
        refused
            .iter()
            .all(|v| v["action"] == "secretsmanager:DescribeSecret"
                && v["resource"]
                    .as_str()
                    .is_some_and(|r| r.contains("missing/secret"))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_duplicate_import_is_refused_or_marked_invalid() {
    let w = world().await;
    w.env
        .put_object(
            &w.bucket,
            "dup/registered_user_data_20261101.csv",
            "ID\n1\n",
        )
        .await;
    let clock = FixedClock::new(at(10, 9));
    w.configs
        .put(&users_config(&w, "first", "dup", daily()), clock.now())
        .await
        .unwrap();
    // `config put` refuses a second active import of the same folder, atomically.
    let second = users_config(&w, "second", "dup", daily());
    let refused = w.configs.put(&second, clock.now()).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("duplicates active import `first`"),
        "{refused}"
    );

    // An operator writing the item straight to DynamoDB bypasses that check: discovery
    // marks the newer import invalid and runs only the first.
    let doc = serde_json::to_value(&second).unwrap();
    w.env
        .clients
        .dynamodb
        .put_item()
        .table_name(&w.env.stack.configs_table)
        .item("id", s3imports::aws::item::s("second"))
        .item("status", s3imports::aws::item::s("active"))
        .item(
            "next_run_at",
            s3imports::aws::item::s(s3imports::clock::to_key(at(10, 9))),
        )
        .item("config", s3imports::aws::item::from_json(&doc))
        .send()
        .await
        .unwrap();
    let report = tick(&w.discovery, &clock).await;
    let outcome = |id: &str| {
        report
            .imports
            .iter()
            .find(|t| t.import_id == id)
            .map(|t| t.outcome)
    };
    assert_eq!(outcome("first"), Some(TickOutcome::Enqueued), "{report:?}");
    assert_eq!(
        outcome("second"),
        Some(TickOutcome::Duplicate),
        "{report:?}"
    );
    let record = w.configs.require("second").await.unwrap();
    assert_eq!(record.status, ImportStatus::Invalid);
    assert!(record.status_reason.unwrap().contains("`first`"));
    assert_eq!(drain(&w.env, &w.discovery).await.len(), 1);
}

/// The queue's URL is looked up when first needed, not at start-up: a Lambda that
/// cannot find its queue starts, and the run fails with a reason that names the queue
/// (in the tick's report, the ledger and the logs), instead of the function dying in
/// init unreported.
#[tokio::test]
async fn a_missing_queue_fails_the_tick_not_the_start() {
    let w = world().await;
    let mut stack = w.env.stack.clone();
    stack.queue_name = "no-such-queue".into();
    let discovery = Discovery::from_env(
        &w.env.role_clients(s3imports_tests::Role::Discovery),
        &stack,
    )
    .await
    .expect("starts without reaching SQS");
    w.env
        .put_object(&w.bucket, "in/registered_user_data_20261101.csv", "ID\n1\n")
        .await;
    let config = users_config(&w, "users", "in", serde_json::json!({"type": "once"}));
    let clock = FixedClock::new(at(1, 9));
    w.configs.put(&config, clock.now()).await.expect("put");
    // Its one due import failed for the stack's own reason: the tick fails (so the
    // function's Errors alarm fires), naming the queue (stack_failures.rs has the rest).
    let err = s3imports_discovery::handler(
        &discovery,
        &clock,
        LambdaEvent::new(serde_json::json!({}), Context::default()),
    )
    .await
    .expect_err("the tick fails")
    .to_string();
    assert!(err.contains("queue `no-such-queue`"), "{err}");
    // Not the stack's queue: the discovery role may not reach it (AWS's answer).
    let refused = w.env.take_violations();
    assert!(
        refused.iter().all(|v| v["action"] == "sqs:GetQueueUrl"),
        "{refused:?}"
    );
}

/// A tick that stopped between claiming files and sending their messages (a timeout, a
/// crash) leaves them queued in the ledger with no message; a later tick sends them.
/// (The in-memory fault tests stop a real tick there; this one checks the ledger
/// reads and sends against moto.)
#[tokio::test]
async fn a_later_tick_sends_files_claimed_but_never_enqueued() {
    let w = world().await;
    let key = "in/registered_user_data_20261101.csv";
    w.env.put_object(&w.bucket, key, "ID\n1\n").await;
    let config = users_config(
        &w,
        "users",
        "in",
        serde_json::json!({"type": "every", "minutes": 5}),
    );
    let clock = FixedClock::new(at(1, 9));
    w.configs.put(&config, clock.now()).await.expect("put");
    // The stopped tick: its run and its claim, and nothing sent.
    w.ledger
        .create_run("users", "stopped", None, at(1, 9))
        .await
        .unwrap();
    let file = FileRecord::queued("users", "stopped", &w.bucket, key, 5, "e", at(1, 9));
    assert!(w.ledger.claim_file(&file, at(1, 9)).await.unwrap());

    // Within STRANDED_AFTER the message may still be on its way: nothing is sent.
    clock.set(at(1, 9) + chrono::Duration::minutes(5));
    let first = tick(&w.discovery, &clock).await;
    assert!(first.imports[0].requeued.is_empty(), "{first:?}");
    assert!(drain(&w.env, &w.discovery).await.is_empty());

    clock.set(at(1, 10));
    let report = tick(&w.discovery, &clock).await;
    assert_eq!(report.imports[0].requeued, [key], "{report:?}");
    let messages = drain(&w.env, &w.discovery).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (messages[0].key.as_str(), messages[0].run_id.as_str()),
        (key, "stopped")
    );
    // The stopped run now knows its file, so that file's outcome closes it.
    let run = w.ledger.run("users", "stopped").await.unwrap().unwrap();
    assert_eq!(run.files_total, 1);

    // Sent again, it waits its turn like any other: the next ticks leave it be.
    clock.set(at(1, 10) + chrono::Duration::minutes(10));
    let next = tick(&w.discovery, &clock).await;
    assert!(next.imports[0].requeued.is_empty(), "{next:?}");
    assert!(drain(&w.env, &w.discovery).await.is_empty());
}

/// The SDK sends a request again when a response is lost (a timeout after the write):
/// a conditional write that already took effect then fails its condition. The ledger
/// must still answer "yours" to the caller that made it, and "not yours" to anyone else.
#[tokio::test]
async fn a_claim_or_email_right_sent_twice_is_still_the_senders() {
    let w = world().await;
    let now = at(1, 9);
    let key = "in/registered_user_data_20261101.csv";
    w.ledger.create_run("users", "r1", None, now).await.unwrap();
    let mine = FileRecord::queued("users", "r1", &w.bucket, key, 5, "e", now);
    assert!(w.ledger.claim_file(&mine, now).await.unwrap());
    assert!(
        w.ledger.claim_file(&mine, now).await.unwrap(),
        "the retry of our claim"
    );
    let other = FileRecord::queued("users", "r2", &w.bucket, key, 5, "e", now);
    assert!(
        !w.ledger.claim_file(&other, now).await.unwrap(),
        "another run's"
    );

    w.ledger
        .set_run_files("users", "r1", &[key.to_string()], now)
        .await
        .unwrap();
    w.ledger
        .start_file(
            "users",
            key,
            None,
            "w1",
            now + chrono::Duration::minutes(2),
            now,
        )
        .await
        .unwrap();
    let outcome = s3imports::model::ledger::FileOutcome {
        rows_total: 1,
        rows_ingested: 1,
        ..Default::default()
    };
    let run = w
        .ledger
        .finish_file("users", "r1", key, Some("w1"), &outcome, now)
        .await
        .unwrap()
        .expect("the lease holder's outcome");
    let until = now + chrono::Duration::minutes(2);
    assert!(w.ledger.close_run(&run, "w1", until, now).await.unwrap());
    assert!(
        w.ledger.close_run(&run, "w1", until, now).await.unwrap(),
        "the retry of our claim on the email"
    );
    assert!(!w.ledger.close_run(&run, "w2", until, now).await.unwrap());
    w.ledger
        .release_notification("users", "r1", "w1")
        .await
        .unwrap();
    assert!(
        w.ledger.close_run(&run, "w2", until, now).await.unwrap(),
        "released, another worker takes it at once"
    );
    w.ledger.mark_notified("users", "r1").await.unwrap();
    assert!(!w.ledger.close_run(&run, "w2", until, now).await.unwrap());
    // A second outcome for the finished file is refused, not an error.
    assert!(
        w.ledger
            .finish_file("users", "r1", key, Some("w1"), &outcome, now)
            .await
            .unwrap()
            .is_none()
    );
}

/// S3's own paging, through the adapter discovery uses: a listing cut at its page
/// limit says where it stopped, and the next goes on from there with nothing lost or
/// listed twice (sub-folders and names that do not match never end a page's count
/// short of where the next starts).
#[tokio::test]
async fn a_listing_cut_at_its_page_limit_goes_on_where_it_stopped() {
    use s3imports::ports::ObjectSource as _;
    let w = world().await;
    let folder = "big";
    let day = |i: i64| (at(1, 0) - chrono::Duration::days(i)).format("%Y%m%d");
    let mut keys: Vec<String> = (0..1_150)
        .map(|i| format!("{folder}/registered_user_data_{}.csv", day(i)))
        .collect();
    keys.push(format!("{folder}/notes.txt"));
    keys.push(format!("{folder}/sub/registered_user_data_20261101.csv"));
    for lot in keys.chunks(64) {
        futures::future::join_all(
            lot.iter()
                .map(|k| w.env.put_object(&w.bucket, k, "ID\n1\n")),
        )
        .await;
    }
    let config = users_config(&w, "big", folder, daily());
    let source = s3imports::aws::source::SourceAccess::new(
        &w.env.role_sdk(s3imports_tests::Role::Discovery),
    );
    let bucket = source
        .connect(&config.source, "big")
        .await
        .expect("connect");
    let pattern = config.file_pattern();

    let first = bucket
        .list_pages(&pattern, None, Some(1))
        .await
        .expect("page");
    assert_eq!(first.requests, 1);
    let resume = first.resume_after.clone().expect("more to list");
    let rest = bucket
        .list_pages(&pattern, Some(resume), Some(1))
        .await
        .expect("rest");
    assert_eq!(rest.resume_after, None, "the folder's end");
    let mut listed: Vec<String> = first
        .files
        .iter()
        .chain(&rest.files)
        .map(|f| f.file.key.clone())
        .collect();
    listed.sort();
    let mut expected: Vec<String> = keys[..1_150].to_vec();
    expected.sort();
    assert_eq!(listed, expected);
    let whole = bucket.list(&pattern, None).await.expect("whole");
    assert_eq!((whole.files.len(), whole.requests), (1_150, 2));
}
