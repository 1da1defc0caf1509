//! An import's actions: run now, replay a file with a reason, dry run (of the newest or
//! a named file), archive and unarchive. Each is asked for by a GET that only shows
//! what will happen, and done by the POST of that page's button; a refusal shows the
//! message the preview API and the CLI give, from the same code.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use s3imports::discover::by_hand::RunNowError;
use s3imports::model::config::ImportStatus;
use s3imports::ports::Configs as _;
use s3imports::{Clock as _, SystemClock};
use serde::Deserialize;

use super::Shared;
use super::page::{Failure, Notice, csrf, enc, layout, notice, status, time};

#[derive(Deserialize, Default)]
pub struct ActionForm {
    action: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    reason: String,
}

/// What an action does, in the words its confirmation shows.
fn describe(id: &str, a: &ActionForm) -> Option<(String, &'static str)> {
    Some(match a.action.as_str() {
        "run" => (
            format!(
                "Start a run of `{id}` now: discovery for this import only, recorded as started by hand. The schedule's next run does not move."
            ),
            "Yes, run now",
        ),
        "replay" => (
            format!(
                "Replay `{}` under its own name: a run of that file alone, recording who asked and why (\"{}\").",
                a.key, a.reason
            ),
            "Yes, replay it",
        ),
        "dry-run" => (
            format!(
                "Read {} through decrypt, verify, parse, map and validate, writing only the failed-rows report. Nothing is written to the destination tables.",
                if a.key.trim().is_empty() {
                    "the newest matching file".to_string()
                } else {
                    format!("`{}`", a.key.trim())
                }
            ),
            "Yes, dry run",
        ),
        "archive" => (
            format!(
                "Archive `{id}`: it never runs again, and its folder is free for another import."
            ),
            "Yes, archive it",
        ),
        "unarchive" => (
            format!(
                "Make `{id}` active again: it runs on its schedule (refused if another active import reads its folder)."
            ),
            "Yes, unarchive it",
        ),
        _ => return None,
    })
}

/// The confirmation: what the action will do, and the button that does it.
pub async fn confirm(
    State(c): State<Shared>,
    Path(id): Path<String>,
    Query(a): Query<ActionForm>,
) -> Result<Markup, Failure> {
    let (what, yes) = describe(&id, &a).ok_or_else(|| Failure::no_action(&c, &a.action))?;
    let body = html! {
        p { (what) }
        form method="post" action={ "/imports/" (enc(&id)) "/act" } {
            (csrf(&c))
            input type="hidden" name="action" value=(a.action);
            input type="hidden" name="key" value=(a.key);
            input type="hidden" name="reason" value=(a.reason);
            button type="submit" { (yes) }
            " "
            a href={ "/imports/" (enc(&id)) } { "Cancel" }
        }
    };
    Ok(layout(&c, "Confirm", body))
}

/// An action's outcome as a page: the message, and the way back.
fn outcome(
    c: &Shared,
    id: &str,
    code: StatusCode,
    kind: Notice,
    text: &str,
    more: Markup,
) -> Response {
    let body = html! {
        (notice(kind, text))
        (more)
        p { a href={ "/imports/" (enc(id)) } { "Back to " (id) } }
    };
    (
        code,
        layout(
            c,
            if matches!(kind, Notice::Done) {
                "Done"
            } else {
                "Refused"
            },
            body,
        ),
    )
        .into_response()
}

/// Does a confirmed action.
pub async fn act(
    State(c): State<Shared>,
    Path(id): Path<String>,
    axum::Form(a): axum::Form<ActionForm>,
) -> Result<Response, Failure> {
    let clock = SystemClock;
    let done = |code: StatusCode, text: &str| outcome(&c, &id, code, Notice::Done, text, html! {});
    let refused = |why: String| {
        outcome(
            &c,
            &id,
            StatusCode::CONFLICT,
            Notice::Refused,
            &why,
            html! {},
        )
    };
    Ok(match a.action.as_str() {
        "run" => match c.discovery.run_now(&id, &c.caller, &clock).await {
            Ok(tick) => done(
                StatusCode::ACCEPTED,
                &format!(
                    "Run {} started by {}: {} new file(s) queued{}.",
                    tick.run_id.as_deref().unwrap_or("—"),
                    c.caller.requested_by,
                    tick.files.len(),
                    tick.reason
                        .as_deref()
                        .map(|r| format!("; {r}"))
                        .unwrap_or_default()
                ),
            ),
            Err(e) => {
                let progress = match &e {
                    RunNowError::InFlight { run, .. } => html! {
                        p { "Run " (run.run_id) " so far: " (run.files_done) " of " (run.files_total) " file(s) done, "
                            (run.rows_ingested) " of " (run.rows_total) " rows imported, " (run.rows_failed) " failed." }
                    },
                    _ => html! {},
                };
                let code = match &e {
                    RunNowError::NotFound(_) => StatusCode::NOT_FOUND,
                    RunNowError::TooSoon { .. } => StatusCode::TOO_MANY_REQUESTS,
                    RunNowError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::CONFLICT,
                };
                outcome(&c, &id, code, Notice::Refused, &e.to_string(), progress)
            }
        },
        "replay" => match c
            .discovery
            .replay(&id, a.key.trim(), &c.caller, a.reason.trim(), &clock)
            .await
        {
            Ok(s) => done(
                StatusCode::ACCEPTED,
                &format!(
                    "Run {} replays {} (was {} in run {}), by {}.",
                    s.run_id,
                    s.key,
                    s.previous_status.label(),
                    s.previous_run_id,
                    c.caller.requested_by
                ),
            ),
            Err(e) => refused(e.to_string()),
        },
        "dry-run" => {
            let record = c
                .configs
                .require(&id)
                .await
                .map_err(|e| Failure::store(&c, &e))?;
            let key = Some(a.key.trim()).filter(|k| !k.is_empty());
            match c
                .discovery
                .start_dry_run(&record.config, key, &c.caller, !c.local, &clock)
                .await
            {
                Ok((started, msg)) => {
                    // A local emulator has no processor: the file is read here, as
                    // `s3imports dry-run` does.
                    if c.local
                        && let Err(e) =
                            crate::commands::run::dry_run_here(&c.clients, &c.stack, &msg, &clock)
                                .await
                    {
                        return Ok(outcome(
                            &c,
                            &id,
                            StatusCode::SERVICE_UNAVAILABLE,
                            Notice::Refused,
                            &format!("{e:#}"),
                            html! {},
                        ));
                    }
                    Redirect::to(&format!("/dry-runs/{}", enc(&started.dry_run_id))).into_response()
                }
                Err(e) => refused(e.to_string()),
            }
        }
        "archive" => match c.configs.archive(&id, clock.now()).await {
            Ok(()) => done(
                StatusCode::OK,
                &format!("Import {id} archived; it will not run again."),
            ),
            Err(e) => refused(e.to_string()),
        },
        "unarchive" => {
            let record = c
                .configs
                .require(&id)
                .await
                .map_err(|e| Failure::store(&c, &e))?;
            let mut config = record.config;
            config.status = ImportStatus::Active;
            match crate::commands::config::store_config(&c.clients, &c.stack, &config).await {
                Ok(stored) => done(
                    StatusCode::OK,
                    &format!(
                        "Import {id} is {} again; next run {}.",
                        stored.record.status.as_str(),
                        time(stored.record.next_run_at)
                    ),
                ),
                Err(e) => refused(e.to_string()),
            }
        }
        other => {
            return Err(Failure::no_action(&c, other));
        }
    })
}

/// A dry run's result: counts, a sample of reasons, the report (refreshing while it
/// runs).
pub async fn dry_run(State(c): State<Shared>, Path(id): Path<String>) -> Result<Response, Failure> {
    let view = s3imports::operate::dry_run::view(&c.ledger, &c.reports, &id)
        .await
        .map_err(|e| Failure::store(&c, &e))?
        .ok_or_else(|| {
            Failure::new(
                &c,
                StatusCode::NOT_FOUND,
                "No dry run",
                format!("no dry run `{id}`"),
            )
        })?;
    let body = html! {
        @if !view.done { meta http-equiv="refresh" content="3"; }
        p { "Import " a href={ "/imports/" (enc(&view.import_id)) } { (view.import_id) } ", file " code { (view.key) } ": " (status(view.status.label())) }
        p { (view.rows_total) " rows read, " (view.rows_valid) " valid, " (view.rows_failed) " failed"
            @if let Some(r) = &view.reason { "; " (r) } "." }
        @if !view.sample_reasons.is_empty() {
            table.report {
                caption { "A sample of the failed rows" }
                thead { tr { th scope="col" { "Row" } th scope="col" { "Column" } th scope="col" { "Reason" } } }
                tbody { @for r in &view.sample_reasons { tr { td { (r.row) } td { (r.column) } td { (r.reason) } } } }
            }
        }
        @if let Some(key) = &view.report_key { p { "Failed-rows report: " code { "s3://" (c.stack.reports_bucket) "/" (key) } } }
        p { "Nothing was written to the destination tables." }
        @if let Some(by) = &view.requested_by { p { small { "Requested by " (by) } } }
    };
    Ok(layout(&c, &format!("Dry run {id}"), body).into_response())
}
