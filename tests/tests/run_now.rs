//! Runs started by hand: `POST /imports/{id}/run` and `s3imports run ID` against moto.
//! One run at a time (409 while one is in flight), one by hand per 5 minutes (429),
//! the caller recorded on the run, the schedule left alone.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use s3imports::FixedClock;
use s3imports::ports::Configs;
use s3imports_preview::Api;
use s3imports_tests::{API_CALLER, TestEnv, api_call, s3imports};
use serde_json::{Value, json};

fn users(env: &TestEnv, id: &str, folder: &str) -> Value {
    s3imports_tests::users_config(
        env,
        id,
        folder,
        json!({"schedule": {"type": "daily", "time": "09:00"}}),
    )
}

async fn post(api: &Api, path: &str) -> (u16, Value, Option<String>) {
    let a = api_call(api, "POST", path, None).await;
    let retry_after = a
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (a.status, a.body, retry_after)
}

#[tokio::test]
async fn the_api_starts_one_run_at_a_time_and_records_who_asked() {
    let (env, bucket, w) = s3imports_tests::stage("acme-exports").await;
    env.put_object(
        &bucket,
        "in/registered_user_data_20261128.csv",
        "ID,Age\nu1,30\nu2,41\n",
    )
    .await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 14, 0, 0).unwrap();
    w.put_config(users(&env, "users", "in"), t0).await;
    let next_run = w.configs.get("users").await.unwrap().unwrap().next_run_at;
    let clock = Arc::new(FixedClock::new(t0));
    let mut api = Api::from_env(
        &env.role_clients(s3imports_tests::Role::Preview),
        &env.stack,
    );
    api.clock = clock.clone();

    let (status, started, _) = post(&api, "/imports/users/run").await;
    assert_eq!(status, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        started["files"],
        json!(["in/registered_user_data_20261128.csv"])
    );
    let run = w
        .processor
        .ledger
        .run("users", &run_id)
        .await
        .unwrap()
        .unwrap();
    let manual = run.manual.unwrap();
    assert_eq!(
        (manual.requested_by.as_str(), manual.via.as_str()),
        (API_CALLER, "api")
    );
    let record = w.configs.get("users").await.unwrap().unwrap();
    assert_eq!(
        record.next_run_at, next_run,
        "a run by hand moved the schedule"
    );

    // Again while its file waits in the queue: refused, with the run and its progress.
    clock.advance(Duration::minutes(6));
    let (status, body, _) = post(&api, "/imports/users/run").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["run_id"], run_id.as_str());
    assert_eq!(body["progress"]["files_total"], 1);
    assert_eq!(body["progress"]["files_done"], 0);

    // The run ends; within 5 minutes of the last run by hand: 429 with the wait.
    let messages = w.take_messages().await;
    assert_eq!(messages.len(), 1);
    w.process(&messages, clock.as_ref()).await;
    let run = w
        .processor
        .ledger
        .run("users", &run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.rows_ingested, 2);
    clock.set(t0 + Duration::minutes(3));
    let (status, body, retry_after) = post(&api, "/imports/users/run").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["retry_after_seconds"], 120);
    assert_eq!(retry_after.as_deref(), Some("120"));

    // After 5 minutes it runs again (nothing new: the file is in the ledger).
    clock.set(t0 + Duration::minutes(5));
    let (status, body, _) = post(&api, "/imports/users/run").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["outcome"], "no_new_files");
    assert_eq!(body["files"], json!([]));

    // Unknown and archived imports.
    let (status, _, _) = post(&api, "/imports/nobody/run").await;
    assert_eq!(status, 404);
    w.configs
        .finish(
            "users",
            s3imports::model::config::ImportStatus::Archived,
            None,
            s3imports::Clock::now(clock.as_ref()),
        )
        .await
        .unwrap();
    clock.advance(Duration::minutes(10));
    let (status, body, _) = post(&api, "/imports/users/run").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("archived"),
        "{body}"
    );
}

#[tokio::test]
async fn the_cli_starts_a_run_as_its_caller_and_processes_it_here() {
    let (env, bucket, _) = s3imports_tests::stage("acme-exports").await;
    env.put_object(
        &bucket,
        "cli/registered_user_data_20261128.csv",
        "ID,Age\nu7,30\nu8,x\n",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = s3imports_tests::write_json(dir.path(), "c.json", &users(&env, "cli-users", "cli"));
    assert_eq!(s3imports(&env, &["config", "put", &path]).code, 0);

    let run = s3imports(&env, &["run", "cli-users", "--process"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("started by arn:aws:"), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "Partial Success cli/registered_user_data_20261128.csv: 2 rows (1 imported, 1 failed)"
        ),
        "{}",
        run.stdout
    );
    let runs = s3imports(&env, &["--json", "runs", "cli-users"]);
    let body: Value = serde_json::from_str(&runs.stdout).unwrap();
    let manual = &body["runs"][0]["manual"];
    assert_eq!(manual["via"], "cli");
    assert!(
        manual["requested_by"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:"),
        "{manual}"
    );
    let text = s3imports(&env, &["runs", "cli-users"]).stdout;
    assert!(text.contains("started by hand by arn:aws:"), "{text}");

    // A second run within 5 minutes is refused with the wait, and nothing starts.
    let again = s3imports(&env, &["run", "cli-users"]);
    assert_eq!(again.code, 2, "{}{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("one run by hand per 5 minutes"),
        "{}",
        again.stdout
    );
    let runs = s3imports(&env, &["--json", "runs", "cli-users"]);
    let body: Value = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(body["runs"].as_array().unwrap().len(), 1);
}
