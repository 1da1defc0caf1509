//! The preview Lambda's HTTP API (API Gateway HTTP API, IAM auth):
//! - `POST /preview`: body is an import config; returns the newest matching file's
//!   columns, samples, suggested types and top 5 rows.
//! - `GET /imports/{id}`: the config (secret references redacted), status, next run.
//! - `POST /imports/{id}/run`: starts a run of the import now (202, with the run id
//!   and the files queued); 409 while its last run is in flight (with that run's
//!   progress) or when the import is not active, 429 within 5 minutes of the last run
//!   by hand (with `Retry-After`). The run records the caller's IAM principal.
//! - `GET /imports/{id}/runs?limit=&cursor=&files_limit=`: a page of runs, newest
//!   first, with their counts, reasons and first files.
//! - `GET /imports/{id}/runs/{run_id}/files?limit=&cursor=`: a page of one run's files.
//! - `GET /imports/{id}/runs/{run_id}/report?file=KEY`: a run's failed-rows report for
//!   a file: the CSV itself, or a short-lived download URL when it is too large for a
//!   Lambda response.
//!
//! - `GET /segments`: every segment, with status, member count and the imports that
//!   feed it; `GET /segments/{name}`: one; `GET /segments/{name}/members?limit=&cursor=`:
//!   a page of its members (name percent-encoded in the path).
//!
//! Pages are bounded (see `s3imports::model::pages::RUNS_LIMIT` & co.) and continue with an
//! opaque cursor, so a response stays small however many runs and files there are.

use lambda_http::http::{Method, StatusCode};
use std::sync::Arc;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use s3imports::aws::Clients;
use s3imports::aws::configs::ConfigStore;
use s3imports::aws::ledger::LedgerStore;
use s3imports::aws::reports::ReportStore;
use s3imports::aws::segments::SegmentStore;
use s3imports::discover::Discovery;
use s3imports::discover::by_hand::{ReplayError, RunNowError};
use s3imports::model::config::ImportConfig;
use s3imports::model::ledger::ManualRun;
use s3imports::model::pages::{
    FILES_LIMIT, FilesCursor, PageError, RUN_FILES_LIMIT, RUNS_LIMIT, RunsCursor, plausible_run_id,
};
use s3imports::model::segment::MEMBERS_LIMIT;
use s3imports::operate::dry_run::DryRunError;
use s3imports::operate::history;
use s3imports::operate::preview::{PreviewError, Previewer};
use s3imports::ports::{
    Bounded, Configs, LedgerReads, ReportError, Reports, Segments, StoreError, find_report,
};
use s3imports::stack::Stack;
use s3imports::{Clock, SystemClock};
use serde_json::{Value, json};

/// What the API reads: the preview service, and the stores behind status and history;
/// and discovery, for the one route that writes (a run started by hand).
#[derive(Clone)]
pub struct Api {
    pub previewer: Previewer,
    pub configs: Arc<dyn Configs>,
    pub ledger: Arc<dyn LedgerReads>,
    pub reports: Arc<dyn Reports>,
    pub discovery: Discovery,
    pub segments: Arc<dyn Segments>,
    pub clock: Arc<dyn Clock>,
}

impl Api {
    pub fn from_env(clients: &Clients, stack: &Stack) -> Self {
        Self {
            previewer: Previewer::from_env(clients, stack, std::env::temp_dir(), limits()),
            configs: Arc::new(ConfigStore::new(
                clients.dynamodb.clone(),
                &stack.configs_table,
            )),
            ledger: Arc::new(LedgerStore::new(
                clients.dynamodb.clone(),
                &stack.ledger_table,
            )),
            reports: Arc::new(ReportStore::new(clients.s3.clone(), &stack.reports_bucket)),
            discovery: Discovery::wired(clients, stack),
            segments: Arc::new(SegmentStore::new(
                clients.dynamodb.clone(),
                &stack.segments_table,
            )),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The preview function's `/tmp` (its `EphemeralStorage` in template.yaml): a PGP
/// file is decrypted there in full before its top rows are shown.
pub const STORAGE_MB: u64 = 2048;

/// The preview's bounds: its own storage, no report.
pub fn limits() -> s3imports::codec::limits::Limits {
    let processor = s3imports::codec::limits::Limits::from_env();
    s3imports::codec::limits::Limits::for_storage(
        STORAGE_MB,
        "the preview function's EphemeralStorage in template.yaml",
        0,
        processor.max_row_bytes,
    )
}

/// Every route the handler serves (method, API Gateway path): the template routes each.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/preview"),
    ("GET", "/imports/{id}"),
    ("POST", "/imports/{id}/run"),
    ("POST", "/imports/{id}/files/replay"),
    ("POST", "/dry-run"),
    ("GET", "/dry-runs/{id}"),
    ("GET", "/imports/{id}/runs"),
    ("GET", "/imports/{id}/runs/{run_id}/files"),
    ("GET", "/imports/{id}/runs/{run_id}/report"),
    ("GET", "/segments"),
    ("GET", "/segments/{name}"),
    ("GET", "/segments/{name}/members"),
];

pub async fn handler(api: &Api, request: Request) -> Result<Response<Body>, Error> {
    let path = request.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let (&Method::GET, ["imports", id, "runs", run_id, "report"]) =
        (request.method(), parts.as_slice())
    {
        return Ok(report(api, id, run_id, &request).await);
    }
    match (request.method(), parts.as_slice()) {
        (&Method::POST, ["imports", id, "run"]) => return Ok(run_now(api, id, &request).await),
        (&Method::POST, ["imports", id, "files", "replay"]) => {
            return Ok(replay(api, id, &request).await);
        }
        (&Method::POST, ["dry-run"]) => return Ok(dry_run(api, &request).await),
        _ => {}
    }
    let query = request.query_string_parameters();
    let param = |name: &str| query.first(name);
    let result = match (request.method(), parts.as_slice()) {
        (&Method::POST, ["preview"]) => preview(api, request.body()).await,
        (&Method::GET, ["imports", id]) => import(api, id).await,
        (&Method::GET, ["imports", id, "runs"]) => {
            runs(
                api,
                id,
                param("limit"),
                param("cursor"),
                param("files_limit"),
            )
            .await
        }
        (&Method::GET, ["imports", id, "runs", run_id, "files"]) => {
            files(api, id, run_id, param("limit"), param("cursor")).await
        }
        (&Method::GET, ["dry-runs", id]) => {
            match s3imports::operate::dry_run::view(api.ledger.as_ref(), api.reports.as_ref(), id)
                .await
            {
                Ok(Some(view)) => Ok(serde_json::to_value(view).unwrap_or_default()),
                Ok(None) => Err(PreviewError {
                    status: 404,
                    message: format!("no dry run `{id}`"),
                    detail: None,
                    problems: Vec::new(),
                }),
                Err(e) => Err(store_error(e)),
            }
        }
        (&Method::GET, ["segments"]) => api
            .segments
            .list()
            .await
            .map(|all| json!({"segments": all}))
            .map_err(store_error),
        (&Method::GET, ["segments", name]) => segment(api, &decode(name)).await,
        (&Method::GET, ["segments", name, "members"]) => {
            members(api, &decode(name), param("limit"), param("cursor")).await
        }
        _ => Err(PreviewError {
            status: 404,
            message: format!("no route {} {path}", request.method()),
            detail: None,
            problems: Vec::new(),
        }),
    };
    Ok(match result {
        Ok(value) => respond(StatusCode::OK, &value),
        Err(e) => respond(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            &serde_json::to_value(&e).unwrap_or_default(),
        ),
    })
}

/// The caller's IAM principal, as API Gateway's IAM authorization saw it.
fn principal(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref())
            .and_then(|iam| iam.user_arn.clone().or_else(|| iam.caller_id.clone())),
        _ => None,
    }
    .unwrap_or_else(|| "unknown principal".to_string())
}

async fn run_now(api: &Api, id: &str, request: &Request) -> Response<Body> {
    let manual = ManualRun {
        requested_by: principal(request),
        via: "api".into(),
    };
    match api.discovery.run_now(id, &manual, api.clock.as_ref()).await {
        Ok(tick) => respond(
            StatusCode::ACCEPTED,
            &json!({
                "import_id": id,
                "run_id": tick.run_id,
                "outcome": tick.outcome,
                "files": tick.files,
                "reason": tick.reason,
                "requested_by": manual.requested_by,
            }),
        ),
        Err(e) => {
            let message = e.to_string();
            match e {
                RunNowError::NotFound(_) => {
                    respond(StatusCode::NOT_FOUND, &json!({"message": message}))
                }
                RunNowError::NotActive { status, .. } => respond(
                    StatusCode::CONFLICT,
                    &json!({"message": message, "status": status}),
                ),
                RunNowError::InFlight { run, .. } => respond(
                    StatusCode::CONFLICT,
                    &json!({
                        "message": message,
                        "run_id": run.run_id,
                        "progress": {
                            "files_total": run.files_total,
                            "files_done": run.files_done,
                            "rows_total": run.rows_total,
                            "rows_ingested": run.rows_ingested,
                            "rows_failed": run.rows_failed,
                        },
                    }),
                ),
                RunNowError::TooSoon { wait_seconds, .. } => {
                    let mut r = respond(
                        StatusCode::TOO_MANY_REQUESTS,
                        &json!({"message": message, "retry_after_seconds": wait_seconds}),
                    );
                    if let Ok(v) =
                        lambda_http::http::HeaderValue::from_str(&wait_seconds.to_string())
                    {
                        r.headers_mut().insert("retry-after", v);
                    }
                    r
                }
                RunNowError::Store(e) => respond(
                    StatusCode::from_u16(store_error_status(&e))
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    &json!({"message": message}),
                ),
            }
        }
    }
}

/// `POST /imports/{id}/files/replay` with `{"key": ..., "reason": ...}`.
async fn replay(api: &Api, id: &str, request: &Request) -> Response<Body> {
    let body: Value = serde_json::from_slice(request.body().as_ref()).unwrap_or_default();
    let (Some(key), Some(reason)) = (body["key"].as_str(), body["reason"].as_str()) else {
        return respond(
            StatusCode::BAD_REQUEST,
            &json!({"message": "The body must be {\"key\": \"the file's key\", \"reason\": \"why it is replayed\"}"}),
        );
    };
    let manual = ManualRun {
        requested_by: principal(request),
        via: "api".into(),
    };
    match api
        .discovery
        .replay(id, key, &manual, reason, api.clock.as_ref())
        .await
    {
        Ok(started) => {
            let mut value = serde_json::to_value(&started).unwrap_or_default();
            value["requested_by"] = json!(manual.requested_by);
            respond(StatusCode::ACCEPTED, &value)
        }
        Err(e) => {
            let message = e.to_string();
            let mut value = json!({"message": message});
            if let ReplayError::InFlight { file } = &e {
                value["run_id"] = json!(file.run_id);
                value["status"] = json!(file.status);
                value["in_flight"] = json!(file.in_flight());
            }
            let status = match e {
                ReplayError::Reason => StatusCode::BAD_REQUEST,
                ReplayError::NotFound(_) | ReplayError::UnknownFile { .. } => StatusCode::NOT_FOUND,
                ReplayError::InFlight { .. }
                | ReplayError::NotActive { .. }
                | ReplayError::Moved { .. }
                | ReplayError::Deleted { .. } => StatusCode::CONFLICT,
                ReplayError::Source(s) => StatusCode::from_u16(PreviewError::from(s).status)
                    .unwrap_or(StatusCode::BAD_GATEWAY),
                ReplayError::Store(s) => StatusCode::from_u16(store_error_status(&s))
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            };
            respond(status, &value)
        }
    }
}

/// `POST /dry-run` with `{"config": {...}, "key": "optional key"}`.
async fn dry_run(api: &Api, request: &Request) -> Response<Body> {
    let refuse = |e: PreviewError| {
        respond(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            &serde_json::to_value(&e).unwrap_or_default(),
        )
    };
    let mut value: Value = match serde_json::from_slice(request.body().as_ref()) {
        Ok(v) => v,
        Err(e) => {
            return refuse(bad_request(
                "The body must be {\"config\": an import config, \"key\": an optional file key}",
                e.to_string(),
            ));
        }
    };
    let key = match value.get("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(other) => {
            return refuse(bad_request("`key` must be a string", other.to_string()));
        }
    };
    let config = match ImportConfig::from_value(value["config"].take()) {
        Ok(c) => c,
        Err(e) => return refuse(e.into()),
    };
    let manual = ManualRun {
        requested_by: principal(request),
        via: "api".into(),
    };
    match api
        .discovery
        .start_dry_run(&config, key.as_deref(), &manual, true, api.clock.as_ref())
        .await
    {
        Ok((started, _)) => {
            let mut value = serde_json::to_value(&started).unwrap_or_default();
            value["requested_by"] = json!(manual.requested_by);
            value["status_path"] = json!(format!("/dry-runs/{}", started.dry_run_id));
            respond(StatusCode::ACCEPTED, &value)
        }
        Err(e) => {
            let message = e.to_string();
            let status = match e {
                DryRunError::BorrowedId(_) => 403,
                DryRunError::NoFile(_) => 404,
                DryRunError::NotItsFile { .. } => 400,
                DryRunError::Source(s) => PreviewError::from(s).status,
                DryRunError::Store(s) => store_error_status(&s),
            };
            respond(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                &json!({"message": message}),
            )
        }
    }
}

fn respond(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

fn bad_request(message: &str, detail: String) -> PreviewError {
    PreviewError {
        status: 400,
        message: message.into(),
        detail: Some(detail),
        problems: Vec::new(),
    }
}

async fn preview(api: &Api, body: &Body) -> Result<Value, PreviewError> {
    let value: Value = serde_json::from_slice(body.as_ref())
        .map_err(|e| bad_request("The body must be an import config (JSON)", e.to_string()))?;
    let config = ImportConfig::for_preview(value)?;
    let preview = api.previewer.preview(&config).await?;
    Ok(serde_json::to_value(preview).unwrap_or_default())
}

/// A path segment as sent (API Gateway passes the raw, percent-encoded path).
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

async fn segment(api: &Api, name: &str) -> Result<Value, PreviewError> {
    let segment = api
        .segments
        .get(name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| store_error(StoreError::NoSegment(name.to_string())))?;
    Ok(serde_json::to_value(segment).unwrap_or_default())
}

async fn members(
    api: &Api,
    name: &str,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<Value, PreviewError> {
    let limit = MEMBERS_LIMIT.parse(limit).map_err(page_error)?;
    segment(api, name).await?;
    let page = api
        .segments
        .members(name, limit, cursor)
        .await
        .map_err(store_error)?;
    Ok(json!({"segment": name, "members": page.members, "next_cursor": page.next_cursor}))
}

fn store_error_status(e: &StoreError) -> u16 {
    match e {
        StoreError::NotFound(_) | StoreError::NoSegment(_) => 404,
        StoreError::Page(_) => 400,
        StoreError::Service(_) => 503,
        _ => 500,
    }
}

fn store_error(e: StoreError) -> PreviewError {
    PreviewError {
        status: store_error_status(&e),
        message: e.to_string(),
        detail: None,
        problems: Vec::new(),
    }
}

async fn import(api: &Api, id: &str) -> Result<Value, PreviewError> {
    let r = api.configs.require(id).await.map_err(store_error)?;
    Ok(json!({
        "id": id,
        "status": r.status.as_str(),
        "status_reason": r.status_reason,
        "next_run_at": r.next_run_at,
        "last_run_id": r.last_run_id,
        "last_run_at": r.last_run_at,
        "schedule": r.config.schedule.describe(r.config.timezone),
        "config": r.config.redacted(),
    }))
}

fn page_error(e: PageError) -> PreviewError {
    PreviewError {
        status: 400,
        message: e.to_string(),
        detail: None,
        problems: Vec::new(),
    }
}

async fn runs(
    api: &Api,
    id: &str,
    limit: Option<&str>,
    cursor: Option<&str>,
    files_limit: Option<&str>,
) -> Result<Value, PreviewError> {
    // Parameters first: a bad request costs no reads.
    let limit = RUNS_LIMIT.parse(limit).map_err(page_error)?;
    let files_limit = RUN_FILES_LIMIT.parse(files_limit).map_err(page_error)?;
    let cursor = cursor
        .map(RunsCursor::decode)
        .transpose()
        .map_err(page_error)?;
    api.configs.require(id).await.map_err(store_error)?;
    let page = api
        .ledger
        .runs_page(id, cursor.as_ref(), limit, files_limit)
        .await
        .map_err(store_error)?;
    Ok(history::runs_value(id, &page))
}

async fn files(
    api: &Api,
    id: &str,
    run_id: &str,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<Value, PreviewError> {
    let limit = FILES_LIMIT.parse(limit).map_err(page_error)?;
    let cursor = cursor
        .map(|c| FilesCursor::decode(c, run_id))
        .transpose()
        .map_err(page_error)?;
    api.configs.require(id).await.map_err(store_error)?;
    let no_run = || PreviewError {
        status: 404,
        message: format!("import `{id}` has no run `{run_id}`"),
        detail: None,
        problems: Vec::new(),
    };
    if !plausible_run_id(run_id) {
        return Err(no_run());
    }
    let page = api
        .ledger
        .files_page(id, run_id, cursor.as_ref(), limit)
        .await
        .map_err(store_error)?
        .ok_or_else(no_run)?;
    Ok(history::files_value(id, run_id, &page))
}

/// The largest report returned in the response itself. Lambda caps a synchronous
/// response at 6 MB and a binary body travels base64-encoded (4/3 the size), so 4 MiB
/// (5.6 MB encoded) leaves room for the envelope.
pub const INLINE_REPORT_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// How long the download URL for a larger report works. Short, because it is signed
/// with this function's session credentials, which expire within hours.
pub const REPORT_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

async fn report(api: &Api, id: &str, run_id: &str, request: &Request) -> Response<Body> {
    match report_response(api, id, run_id, request).await {
        Ok(response) => response,
        Err(e) => respond(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            &serde_json::to_value(&e).unwrap_or_default(),
        ),
    }
}

async fn report_response(
    api: &Api,
    id: &str,
    run_id: &str,
    request: &Request,
) -> Result<Response<Body>, PreviewError> {
    let query = request.query_string_parameters();
    let Some(file_key) = query.first("file").filter(|k| !k.is_empty()) else {
        return Err(bad_request(
            "Give the data file's key: ?file=FOLDER/NAME",
            "the `file` query parameter is missing".into(),
        ));
    };
    let key = find_report(api.ledger.as_ref(), id, run_id, file_key)
        .await
        .map_err(report_error)?;
    match api
        .reports
        .read_bounded(&key, INLINE_REPORT_MAX_BYTES)
        .await
        .map_err(report_error)?
    {
        Bounded::Read(data) => {
            let mut response = Response::new(Body::Binary(data));
            response.headers_mut().insert(
                "content-type",
                lambda_http::http::HeaderValue::from_static("text/csv"),
            );
            Ok(response)
        }
        Bounded::TooLarge(bytes) => {
            let url = api
                .reports
                .presigned_url(&key, REPORT_URL_LIFETIME)
                .await
                .map_err(report_error)?;
            Ok(respond(
                StatusCode::OK,
                &json!({
                    "report_key": key,
                    "bytes": bytes,
                    "url": url,
                    "expires_in_seconds": REPORT_URL_LIFETIME.as_secs(),
                }),
            ))
        }
    }
}

fn report_error(e: ReportError) -> PreviewError {
    let status = match &e {
        ReportError::Ledger(_) | ReportError::Service(_) | ReportError::Io(_) => 503,
        ReportError::Expired(_) => 410,
        _ => 404,
    };
    PreviewError {
        status,
        message: e.to_string(),
        detail: None,
        problems: Vec::new(),
    }
}
