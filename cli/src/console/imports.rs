//! The Imports page (every import, filtered by status and kind) and one import's page:
//! its config, its runs newest first with their files, a chart of rows per run, the
//! failed-rows reports, and the actions (see `actions`).

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};
use s3imports::model::config::ImportStatus;
use s3imports::model::ledger::{FileRecord, RunRecord};
use s3imports::model::pages::{FILES_LIMIT, FilesCursor, RUNS_LIMIT, RunsCursor};
use s3imports::operate::history;
use s3imports::ports::{Bounded, LedgerReads as _, ReportError, Reports as _, find_report};
use serde::Deserialize;

use super::Shared;
use super::page::{Failure, enc, layout, status, time};

#[derive(Deserialize, Default)]
pub struct ListQuery {
    status: Option<String>,
    kind: Option<String>,
    archived: Option<String>,
}

const STATUSES: &[&str] = &["active", "completed", "invalid", "archived"];
const KINDS: &[&str] = &["users", "events", "auxiliary"];

/// Every import: kind, folder, schedule, status, last run and result, next run, rows
/// today (UTC); archived ones on request.
pub async fn list(State(c): State<Shared>, Query(q): Query<ListQuery>) -> Result<Markup, Failure> {
    let records = c.configs.all().await.map_err(|e| Failure::store(&c, &e))?;
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or_else(Utc::now, |t| t.and_utc());
    let want_status = q.status.as_deref().filter(|s| !s.is_empty());
    let want_kind = q.kind.as_deref().filter(|s| !s.is_empty());
    let archived = q.archived.is_some() || want_status == Some("archived");
    let mut rows = Vec::new();
    for r in &records {
        if (r.status == ImportStatus::Archived && !archived)
            || want_status.is_some_and(|s| s != r.status.as_str())
            || want_kind.is_some_and(|k| k != r.config.kind.type_name())
        {
            continue;
        }
        let summary = history::summary(&c.ledger, r, today)
            .await
            .map_err(|e| Failure::store(&c, &e))?;
        rows.push((r, summary));
    }
    let body = html! {
        form.filters method="get" action="/" {
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in STATUSES { option value=(s) selected[want_status == Some(*s)] { (s) } }
                }
            }
            label { "Kind "
                select name="kind" {
                    option value="" { "any" }
                    @for k in KINDS { option value=(k) selected[want_kind == Some(*k)] { (k) } }
                }
            }
            label { input type="checkbox" name="archived" value="1" checked[archived]; " Show archived" }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p { "No imports here yet. " a href="/new" { "Set one up" } "." }
        } @else {
            table.imports {
                caption { (rows.len()) " import" @if rows.len() != 1 { "s" } "; rows today count runs started since 00:00 UTC" }
                thead { tr {
                    th scope="col" { "Import" } th scope="col" { "Kind" } th scope="col" { "Folder" }
                    th scope="col" { "Schedule" } th scope="col" { "Status" } th scope="col" { "Last run" }
                    th scope="col" { "Next run" } th scope="col" { "Rows today" }
                } }
                tbody {
                    @for (r, s) in &rows {
                        tr {
                            td { a href={ "/imports/" (enc(&r.config.id)) } { (r.config.name) } br; small { (r.config.id) } }
                            td { (r.config.kind.describe()) }
                            td { code { "s3://" (r.config.source.bucket) "/" (r.config.source.folder) "/" } }
                            td { (r.config.schedule.describe(r.config.timezone)) }
                            td { (status(r.status.as_str())) }
                            td {
                                (time(s.last_run_at))
                                @if let Some(result) = s.last_run_status { " " (status(result)) }
                            }
                            td { (time(s.next_run_at)) }
                            td { (s.rows_today) " imported" @if s.rows_failed_today > 0 { ", " (s.rows_failed_today) " failed" } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&c, "Imports", body))
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    cursor: Option<String>,
}

/// One import: config, actions, chart, runs (a page at a time, with the cursor).
pub async fn import(
    State(c): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Markup, Failure> {
    use s3imports::ports::Configs as _;
    let record = c
        .configs
        .require(&id)
        .await
        .map_err(|e| Failure::store(&c, &e))?;
    let cursor = q
        .cursor
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(RunsCursor::decode)
        .transpose()
        .map_err(|e| Failure::new(&c, StatusCode::BAD_REQUEST, "Bad page", e.to_string()))?;
    let page = c
        .ledger
        .runs_page(&id, cursor.as_ref(), RUNS_LIMIT.default, 10)
        .await
        .map_err(|e| Failure::store(&c, &e))?;
    let config = &record.config;
    let archived = record.status == ImportStatus::Archived;
    let body = html! {
        dl.facts {
            dt { "Id" } dd { code { (config.id) } }
            dt { "Kind" } dd { (config.kind.describe()) }
            dt { "Status" } dd { (status(record.status.as_str()))
                @if let Some(why) = &record.status_reason { " — " (why) } }
            dt { "Files" } dd { code { "s3://" (config.source.bucket) "/" (config.source.folder) "/" (config.file_pattern().example_name()) } }
            dt { "Schedule" } dd { (config.schedule.describe(config.timezone)) }
            dt { "Next run" } dd { (time(record.next_run_at)) }
            dt { "Last run" } dd { (time(record.last_run_at)) }
        }
        section aria-labelledby="actions" {
            h2 #actions { "Actions" }
            div.actions {
                form method="get" action={ "/imports/" (enc(&id)) "/confirm" } {
                    input type="hidden" name="action" value="run";
                    button type="submit" disabled[archived] { "Run now" }
                }
                form method="get" action={ "/imports/" (enc(&id)) "/confirm" } {
                    input type="hidden" name="action" value="dry-run";
                    label { "File (empty: the newest) " input type="text" name="key" placeholder={ (config.source.folder) "/…" }; }
                    button type="submit" { "Dry run" }
                }
                form method="get" action={ "/imports/" (enc(&id)) "/confirm" } {
                    input type="hidden" name="action" value=(if archived { "unarchive" } else { "archive" });
                    button type="submit" { @if archived { "Unarchive" } @else { "Archive" } }
                }
                a.button href={ "/imports/" (enc(&id)) "/edit" } { "Edit config" }
            }
        }
        section aria-labelledby="runs" {
            h2 #runs { "Runs" }
            @if page.runs.is_empty() {
                p { "No runs yet." }
            } @else {
                (chart(page.runs.iter().map(|e| &e.run).collect()))
                @for entry in &page.runs {
                    (run_section(&id, &entry.run, &entry.files, entry.files_listed))
                }
                @if let Some(next) = &page.next_cursor {
                    p { a href={ "/imports/" (enc(&id)) "?cursor=" (enc(next)) } { "Older runs" } }
                }
            }
        }
        details.config {
            summary { "Config (secret references hidden)" }
            pre { (serde_json::to_string_pretty(&config.redacted()).unwrap_or_default()) }
        }
    };
    Ok(layout(&c, &config.name, body))
}

/// Rows imported and failed per run, oldest on the left, with the same figures as a
/// table for those who do not see the chart.
fn chart(runs: Vec<&RunRecord>) -> Markup {
    let runs: Vec<&RunRecord> = runs.into_iter().rev().collect();
    let max = runs
        .iter()
        .map(|r| r.rows_ingested + r.rows_failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let (height, bar, gap) = (120.0_f64, 18.0_f64, 6.0_f64);
    #[allow(clippy::cast_precision_loss)] // row counts far below 2^52
    let scale = |n: u64| n as f64 / max as f64 * height;
    #[allow(clippy::cast_precision_loss)]
    let width = runs.len() as f64 * (bar + gap) + gap;
    html! {
        figure.chart {
            svg role="img" aria-labelledby="chart-title" viewBox={ "0 0 " (width) " " (height + 2.0) } width=(width.max(200.0)) height=(height + 2.0) {
                title #chart-title { "Rows imported (green) and failed (red) per run, oldest first" }
                @for (i, r) in runs.iter().enumerate() {
                    @let x = gap + i as f64 * (bar + gap);
                    @let ok = scale(r.rows_ingested);
                    @let bad = scale(r.rows_failed);
                    g {
                        title { "run " (r.run_id) ": " (r.rows_ingested) " imported, " (r.rows_failed) " failed" }
                        rect.ok x=(x) y=(height - ok) width=(bar) height=(ok) {}
                        rect.bad x=(x) y=(height - ok - bad) width=(bar) height=(bad) {}
                    }
                }
            }
            figcaption { "Rows per run: " span.key-ok { "imported" } " and " span.key-bad { "failed" } "." }
            details {
                summary { "The chart as a table" }
                table {
                    thead { tr { th scope="col" { "Run" } th scope="col" { "Started" } th scope="col" { "Imported" } th scope="col" { "Failed" } } }
                    tbody { @for r in &runs { tr { td { (r.run_id) } td { (time(r.started_at)) } td { (r.rows_ingested) } td { (r.rows_failed) } } } }
                }
            }
        }
    }
}

fn run_section(id: &str, run: &RunRecord, files: &[FileRecord], listed: usize) -> Markup {
    html! {
        section.run {
            h3 {
                "Run " (run.run_id) " " (status(run.status.label()))
            }
            p {
                "Started " (time(run.started_at))
                @if let Some(f) = run.finished_at { ", ended " (time(Some(f))) }
                ". " (run.files_done) " of " (run.files_total) " file(s) done; "
                (run.rows_ingested) " rows imported, " (run.rows_failed) " failed."
                @if let Some(m) = &run.manual { " Started by hand by " code { (m.requested_by) } " (" (m.via) ")." }
                @if let Some(r) = &run.replay { " Replays " code { (r.key) } " (was " (r.previous_status.label()) " in run " (r.previous_run_id) "): " q { (r.reason) } }
            }
            @if let Some(reason) = &run.reason { p.reason { (reason) } }
            @if !files.is_empty() {
                (files_table(id, files))
            }
            @if (files.len() as u64) < run.files_total {
                p { a href={ "/imports/" (enc(id)) "/runs/" (enc(&run.run_id)) } { "All " (run.files_total) " files of this run" } }
            } @else if files.len() < listed {
                p { a href={ "/imports/" (enc(id)) "/runs/" (enc(&run.run_id)) } { "All files of this run" } }
            }
        }
    }
}

/// A run's files: the reason of a failed or partial file on hover (the status's title)
/// and on click (the status opens to it), the report to view and download.
fn files_table(id: &str, files: &[FileRecord]) -> Markup {
    html! {
        table.files {
            thead { tr {
                th scope="col" { "File" } th scope="col" { "Status" } th scope="col" { "Rows" }
                th scope="col" { "Imported" } th scope="col" { "Failed" } th scope="col" { "Work" } th scope="col" { "Report" }
                th scope="col" { "Replay" }
            } }
            tbody {
                @for f in files {
                    tr {
                        td { code { (f.key) } }
                        td {
                            @if let Some(reason) = f.reason.as_ref().or(f.last_error.as_ref()) {
                                details.reason {
                                    summary title=(reason) { (status(f.status.label())) }
                                    p { (reason) }
                                }
                            } @else {
                                (status(f.status.label()))
                            }
                        }
                        td { (f.rows_total) }
                        td { (f.rows_ingested) }
                        td { (f.rows_failed) }
                        td {
                            @if let Some(flight) = f.in_flight() {
                                "in flight: " (flight.invocations) " invocation(s)"
                                @if flight.chunks_total > 0 { ", " (flight.chunks_done) " of " (flight.chunks_total) " chunks" }
                            } @else if f.invocations > 0 {
                                (f.invocations) " invocation(s)"
                                @if f.chunks_total > 0 { ", " (f.chunks_total) " chunks" }
                            }
                        }
                        td {
                            @if f.report_key.is_some() {
                                a href={ "/imports/" (enc(id)) "/runs/" (enc(&f.run_id)) "/report?file=" (enc(&f.key)) } { "View" }
                                " · "
                                a href={ "/imports/" (enc(id)) "/runs/" (enc(&f.run_id)) "/report.csv?file=" (enc(&f.key)) } { "Download" }
                            }
                        }
                        td {
                            @if f.status.is_final() {
                                details.replay {
                                    summary { "Replay" }
                                    form method="get" action={ "/imports/" (enc(id)) "/confirm" } {
                                        input type="hidden" name="action" value="replay";
                                        input type="hidden" name="key" value=(f.key);
                                        label { "Why " input type="text" name="reason" required; }
                                        button type="submit" { "Replay this file" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One run's files, a page at a time.
pub async fn run(
    State(c): State<Shared>,
    Path((id, run_id)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Markup, Failure> {
    let cursor = q
        .cursor
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| FilesCursor::decode(s, &run_id))
        .transpose()
        .map_err(|e| Failure::new(&c, StatusCode::BAD_REQUEST, "Bad page", e.to_string()))?;
    let page = c
        .ledger
        .files_page(&id, &run_id, cursor.as_ref(), FILES_LIMIT.default)
        .await
        .map_err(|e| Failure::store(&c, &e))?
        .ok_or_else(|| {
            Failure::new(
                &c,
                StatusCode::NOT_FOUND,
                "No such run",
                format!("import `{id}` has no run `{run_id}`"),
            )
        })?;
    let body = html! {
        p { a href={ "/imports/" (enc(&id)) } { "Back to " (id) } }
        (run_section(&id, &page.run, &[], 0))
        (files_table(&id, &page.files))
        @if let Some(next) = &page.next_cursor {
            p { a href={ "/imports/" (enc(&id)) "/runs/" (enc(&run_id)) "?cursor=" (enc(next)) } { "More files" } }
        }
    };
    Ok(layout(&c, &format!("Run {run_id}"), body))
}

#[derive(Deserialize)]
pub struct ReportQuery {
    file: String,
}

/// The first rows of a report the viewer shows.
const VIEW_ROWS: usize = 50;
/// The most of a report read to show its first rows.
const VIEW_BYTES: u64 = 1024 * 1024;
/// The largest report sent through the console; a larger one is a signed S3 link.
const DOWNLOAD_BYTES: u64 = 64 * 1024 * 1024;
const DOWNLOAD_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

fn report_failure(c: &Shared, e: &ReportError) -> Failure {
    let status = match e {
        ReportError::Ledger(_) | ReportError::Service(_) | ReportError::Io(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ReportError::Expired(_) => StatusCode::GONE,
        _ => StatusCode::NOT_FOUND,
    };
    Failure::new(c, status, "No report", e.to_string())
}

/// The failed-rows report's first rows, as a table.
pub async fn report(
    State(c): State<Shared>,
    Path((id, run_id)): Path<(String, String)>,
    Query(q): Query<ReportQuery>,
) -> Result<Markup, Failure> {
    let key = find_report(&c.ledger, &id, &run_id, &q.file)
        .await
        .map_err(|e| report_failure(&c, &e))?;
    let download = format!(
        "/imports/{}/runs/{}/report.csv?file={}",
        enc(&id),
        enc(&run_id),
        enc(&q.file)
    );
    let data = match c
        .reports
        .read_bounded(&key, VIEW_BYTES)
        .await
        .map_err(|e| report_failure(&c, &e))?
    {
        Bounded::Read(data) => Some(data),
        Bounded::TooLarge(_) => None,
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    if let Some(data) = &data {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(data.as_slice());
        for record in reader.records().take(VIEW_ROWS + 1) {
            match record {
                Ok(r) => rows.push(r.iter().map(str::to_string).collect()),
                Err(_) => break,
            }
        }
    }
    let body = html! {
        p { a href={ "/imports/" (enc(&id)) } { "Back to " (id) } }
        p { "The failed rows of " code { (q.file) } " in run " (run_id) ", each with its row, column and reason. "
            a href=(download) { "Download the whole report (CSV)" } }
        @if data.is_none() {
            p { "The report is larger than the viewer reads (1 MiB): download it." }
        } @else if let Some((head, body)) = rows.split_first() {
            table.report {
                caption { "First " (body.len().min(VIEW_ROWS)) " failed row(s)" }
                thead { tr { @for h in head { th scope="col" { (h) } } } }
                tbody { @for r in body.iter().take(VIEW_ROWS) { tr { @for v in r { td { (v) } } } } }
            }
        } @else {
            p { "The report is empty." }
        }
    };
    Ok(layout(&c, "Failed-rows report", body))
}

/// The whole report, as a CSV download (a signed S3 link when it is large).
pub async fn report_download(
    State(c): State<Shared>,
    Path((id, run_id)): Path<(String, String)>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, Failure> {
    let key = find_report(&c.ledger, &id, &run_id, &q.file)
        .await
        .map_err(|e| report_failure(&c, &e))?;
    match c
        .reports
        .read_bounded(&key, DOWNLOAD_BYTES)
        .await
        .map_err(|e| report_failure(&c, &e))?
    {
        Bounded::Read(data) => {
            let name = q.file.rsplit('/').next().unwrap_or("report").replace(
                |ch: char| !ch.is_ascii_alphanumeric() && ch != '.' && ch != '-',
                "_",
            );
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"failed_rows_{name}.csv\""),
                    ),
                ],
                data,
            )
                .into_response())
        }
        Bounded::TooLarge(_) => {
            let url = c
                .reports
                .presigned_url(&key, DOWNLOAD_URL_LIFETIME)
                .await
                .map_err(|e| report_failure(&c, &e))?;
            Ok(Redirect::to(&url).into_response())
        }
    }
}
