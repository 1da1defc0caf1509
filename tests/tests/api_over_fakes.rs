//! The preview API's router and its response shaping, over the in-memory ports: the
//! handler is written over the ports (`operate::history`, `operate::dry_run`), so it
//! runs here without moto. preview.rs proves the same routes against moto.

#![allow(clippy::unwrap_used)]

use s3imports::codec::limits::Limits;
use s3imports::model::config::ImportConfig;
use s3imports::operate::preview::{PREVIEW_PGP_MAX_BYTES, Previewer};
use s3imports_preview::Api;
use s3imports_tests::api_call;
use s3imports_tests::fakes::FakeWorld;

const BUCKET: &str = "acme";

/// A world whose import ran once: one good file and one with a bad row.
async fn ran() -> (FakeWorld, Api) {
    let w = FakeWorld::new(3, 5);
    let config = ImportConfig::from_value(serde_json::json!({
        "id": "imp",
        "name": "imp",
        "kind": {"type": "registered_users"},
        "source": {"bucket": BUCKET, "folder": "in", "datetime_format": "yyyymmdd"},
        "mapping": {"columns": [
            {"column": "id", "attribute": "user_id"},
            {"column": "age", "attribute": "age", "type": "integer"}
        ]},
        "schedule": {"type": "once"},
        "notifications": {"recipients": ["ops@example.com"]}
    }))
    .unwrap();
    w.configs.put(config, w.now());
    w.source.put(
        BUCKET,
        "in/registered_user_data_20261127.csv",
        "id,age\nu1,30\n",
    );
    w.source.put(
        BUCKET,
        "in/registered_user_data_20261128.csv",
        "id,age\nu2,old\nu3,41\n",
    );
    w.tick().await.unwrap().unwrap();
    w.drive(20).await;
    let api = Api {
        previewer: Previewer {
            configs: w.configs.clone(),
            sources: w.source.clone(),
            secrets: w.secrets.clone(),
            spool_dir: std::env::temp_dir(),
            limits: Limits::default(),
            pgp_max_bytes: PREVIEW_PGP_MAX_BYTES,
        },
        configs: w.configs.clone(),
        ledger: w.ledger.clone(),
        reports: w.reports.clone(),
        discovery: w.discovery.clone(),
        segments: w.segments.clone(),
        clock: w.clock.clone(),
    };
    (w, api)
}

#[tokio::test]
async fn the_history_pages_through_the_router() {
    let (_w, api) = ran().await;
    let runs = api_call(&api, "GET", "/imports/imp/runs?files_limit=1", None).await;
    assert_eq!(runs.status, 200, "{}", runs.body);
    let run = &runs.body["runs"][0];
    assert_eq!(run["status_label"], "Partial Success", "{run}");
    assert_eq!(
        (run["rows_ingested"].as_u64(), run["rows_failed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(run["files"].as_array().unwrap().len(), 1);
    assert_eq!(run["files_listed"], 2);
    let cursor = run["next_files_cursor"].as_str().unwrap();
    let run_id = run["run_id"].as_str().unwrap();
    let files = api_call(
        &api,
        "GET",
        &format!("/imports/imp/runs/{run_id}/files?cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(files.status, 200, "{}", files.body);
    assert_eq!(files.body["files_total"], 2);
    assert_eq!(
        files.body["files"][0]["key"],
        "in/registered_user_data_20261128.csv"
    );
    assert_eq!(files.body["files"][0]["status_label"], "Partial Success");
}

#[tokio::test]
async fn a_failed_rows_report_and_the_routes_refusals() {
    let (_w, api) = ran().await;
    let runs = api_call(&api, "GET", "/imports/imp/runs", None).await;
    let run_id = runs.body["runs"][0]["run_id"].as_str().unwrap().to_string();
    let report = api_call(
        &api,
        "GET",
        &format!("/imports/imp/runs/{run_id}/report?file=in/registered_user_data_20261128.csv"),
        None,
    )
    .await;
    assert_eq!(report.status, 200);
    assert_eq!(
        report.headers["content-type"], "text/csv",
        "the report itself, inline"
    );
    let unknown = api_call(&api, "GET", "/imports/nope/runs", None).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let bad = api_call(&api, "GET", "/imports/imp/runs?limit=0", None).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
}
