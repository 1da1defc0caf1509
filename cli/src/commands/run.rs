//! `s3imports tick`, `run-now`, `replay` and `dry-run`: runs, here or by the stack.

use std::process::ExitCode;

use super::config::read_config;
use super::history::file_line;
use super::{Output, clients};
use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use s3imports::aws::Clients;
use s3imports::aws::ledger::LedgerStore;
use s3imports::aws::queue::SqsQueue;
use s3imports::aws::reports::ReportStore;
use s3imports::discover::Discovery;
use s3imports::discover::report::TickOutcome;
use s3imports::model::ledger::FileRecord;
use s3imports::process::RecordOutcome;
use s3imports::process::delivery::DEFAULT_MAX_RECEIVES;
use s3imports::process::settings::ProcessorSettings;
use s3imports::process::{Processed, Processor};
use s3imports::stack::Stack;
use s3imports::{Clock, FixedClock, SystemClock};
use serde_json::json;

pub async fn tick(out: &Output, stack: &Stack, now: Option<&str>) -> anyhow::Result<ExitCode> {
    let clock: Box<dyn Clock> = match now {
        Some(t) => Box::new(FixedClock::new(
            DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--now {t}: use RFC 3339, e.g. 2026-12-01T09:00:00Z"))?
                .with_timezone(&Utc),
        )),
        None => Box::new(SystemClock),
    };
    let clients = clients().await;
    let discovery = Discovery::from_env(&clients, stack).await?;
    let processor = Processor::from_env(&clients, stack, ProcessorSettings::default());
    let report = discovery.tick(clock.as_ref()).await?;
    let mut lines = Vec::new();
    for t in &report.imports {
        let line = match t.outcome {
            TickOutcome::Enqueued => format!(
                "import {}: {} new file(s) queued",
                t.import_id,
                t.files.len()
            ),
            TickOutcome::NoNewFiles => format!("import {}: no new files", t.import_id),
            TickOutcome::Failed => format!(
                "import {}: run failed: {}",
                t.import_id,
                t.reason.as_deref().unwrap_or("")
            ),
            TickOutcome::ClaimedElsewhere => format!(
                "import {}: run already claimed by another tick",
                t.import_id
            ),
            TickOutcome::Duplicate => format!(
                "import {}: invalid: {}",
                t.import_id,
                t.reason.as_deref().unwrap_or("")
            ),
        };
        if !out.json {
            println!("{line}");
        }
        lines.push(line);
    }
    let processed = drain(out, &clients, stack, &processor, clock.as_ref()).await?;
    let ingested: u64 = processed.iter().map(|f| f.rows_ingested).sum();
    let failed: u64 = processed.iter().map(|f| f.rows_failed).sum();
    let total: u64 = processed.iter().map(|f| f.rows_total).sum();
    out.emit(
        json!({"tick": report, "files": processed, "rows_total": total, "rows_ingested": ingested, "rows_failed": failed}),
        || {
            format!(
                "summary: {} import(s) due, {} file(s) processed, {total} rows ({ingested} imported, {failed} failed)\n",
                report.imports.len(),
                processed.len()
            )
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// Processes every queued message in-process, as the processor Lambda would, until the
/// queue is empty; returns the files this call finished.
pub(super) async fn drain(
    out: &Output,
    clients: &Clients,
    stack: &Stack,
    processor: &Processor,
    clock: &dyn Clock,
) -> anyhow::Result<Vec<FileRecord>> {
    let ledger = &processor.ledger;
    let queue = SqsQueue::named(clients.sqs.clone(), &stack.queue_name);
    let visibility = i32::try_from(processor.settings.visibility.as_secs()).unwrap_or(i32::MAX);
    let mut processed = Vec::new();
    loop {
        let got = queue
            .receive(Some(visibility))
            .await
            .context("receiving from the files queue")?;
        if got.is_empty() {
            break;
        }
        for m in &got {
            let outcome =
                s3imports::process::handle(processor, clock, DEFAULT_MAX_RECEIVES, m).await;
            // A message to retry stays in the queue: the handler has set when it comes
            // back (with backoff), exactly as in the Lambda; a later tick takes it.
            if !matches!(outcome, RecordOutcome::Retry(_)) {
                queue
                    .delete(m.receipt.as_deref().unwrap_or_default())
                    .await
                    .context("deleting a processed message")?;
            }
            // Only files this tick processed count: a message another tick or worker
            // already finished (skipped here) is theirs.
            if let RecordOutcome::File(msg, Processed::Done { .. }) = outcome
                && let Some(f) = ledger.file(&msg.import_id, &msg.key).await?
            {
                // A dry run's caller shows its own lines (nothing was imported).
                if !out.json && !msg.dry_run {
                    print!("{}", file_line(&f));
                }
                processed.push(f);
            }
        }
    }
    Ok(processed)
}

/// `s3imports run ID`: starts a run of one import now (by hand), as the API's
/// `POST /imports/{id}/run` does; with `process`, also processes its files here.
pub async fn run_now(
    out: &Output,
    stack: &Stack,
    id: &str,
    process: bool,
) -> anyhow::Result<ExitCode> {
    use s3imports::discover::by_hand::RunNowError;
    let clients = clients().await;
    let manual = cli_caller(&clients).await?;
    let discovery = Discovery::wired(&clients, stack);
    let clock = SystemClock;
    let tick = match discovery.run_now(id, &manual, &clock).await {
        Ok(tick) => tick,
        Err(e @ (RunNowError::InFlight { .. } | RunNowError::TooSoon { .. })) => {
            out.emit(json!({"error": e.to_string()}), || {
                format!("refused: {e}\n")
            });
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let run_id = tick.run_id.clone().unwrap_or_default();
    if !out.json {
        println!(
            "import {id}: run {run_id} started by {}: {} new file(s) queued{}",
            manual.requested_by,
            tick.files.len(),
            tick.reason
                .as_deref()
                .map(|r| format!("; {r}"))
                .unwrap_or_default()
        );
    }
    let processed = process_here(process, out, &clients, stack, &clock).await?;
    out.emit(
        json!({"run": tick, "requested_by": manual.requested_by, "files": processed}),
        String::new,
    );
    Ok(ExitCode::SUCCESS)
}

/// With `--process`: the queued files, processed here as `tick` does (for a local
/// emulator; a deployed stack's processor takes them from the queue).
pub(super) async fn process_here(
    process: bool,
    out: &Output,
    clients: &Clients,
    stack: &Stack,
    clock: &dyn Clock,
) -> anyhow::Result<Vec<FileRecord>> {
    if !process {
        return Ok(Vec::new());
    }
    let processor = Processor::from_env(clients, stack, ProcessorSettings::default());
    drain(out, clients, stack, &processor, clock).await
}

/// Who is running this command, as the run records it: the STS caller identity.
pub(crate) async fn cli_caller(
    clients: &Clients,
) -> anyhow::Result<s3imports::model::ledger::ManualRun> {
    let caller = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .context("STS GetCallerIdentity (who is starting the run)")?;
    Ok(s3imports::model::ledger::ManualRun {
        requested_by: caller.arn().unwrap_or("unknown principal").to_string(),
        via: "cli".into(),
    })
}

pub async fn replay(
    out: &Output,
    stack: &Stack,
    id: &str,
    key: &str,
    reason: &str,
    process: bool,
) -> anyhow::Result<ExitCode> {
    use s3imports::discover::by_hand::ReplayError;
    let clients = clients().await;
    let manual = cli_caller(&clients).await?;
    let discovery = Discovery::wired(&clients, stack);
    let clock = SystemClock;
    let started = match discovery.replay(id, key, &manual, reason, &clock).await {
        Ok(s) => s,
        Err(e @ (ReplayError::InFlight { .. } | ReplayError::Reason)) => {
            out.emit(json!({"error": e.to_string()}), || {
                format!("refused: {e}\n")
            });
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    if !out.json {
        println!(
            "import {id}: run {} replays {key} (was {} in run {}), by {}",
            started.run_id,
            started.previous_status.label(),
            started.previous_run_id,
            manual.requested_by
        );
    }
    let processed = process_here(process, out, &clients, stack, &clock).await?;
    out.emit(
        json!({"replay": started, "requested_by": manual.requested_by, "files": processed}),
        String::new,
    );
    Ok(ExitCode::SUCCESS)
}

/// A dry run's file read here, whole, as the stack's processor would (for a local
/// emulator, or `--process`): no deadline and no chunks, one call reads it all.
pub(crate) async fn dry_run_here(
    clients: &Clients,
    stack: &Stack,
    msg: &s3imports::ports::FileMessage,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let settings = ProcessorSettings {
        chunk_bytes: None,
        ..ProcessorSettings::default()
    };
    let processor = Processor::from_env(clients, stack, settings);
    let delivery = s3imports::process::delivery::Delivery {
        receive_count: 1,
        last: true,
        receipt: None,
        deadline: None,
        ..Default::default()
    };
    processor.process(msg, &delivery, clock).await?;
    Ok(())
}

/// How long `dry-run` waits for the stack's processor (a file may take several
/// invocations of up to 15 minutes).
pub(super) const DRY_RUN_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

pub async fn dry_run(
    out: &Output,
    stack: &Stack,
    file: &str,
    key: Option<&str>,
    process: bool,
) -> anyhow::Result<ExitCode> {
    let config = read_config(file)?.with_context(|| format!("{file}: not a valid config"))?;
    let clients = clients().await;
    let manual = cli_caller(&clients).await?;
    let discovery = Discovery::wired(&clients, stack);
    let clock = SystemClock;
    // Here (a local emulator, or --process): this file only, in this process.
    let here = process || clients.sdk.endpoint_url().is_some();
    let (started, msg) = discovery
        .start_dry_run(&config, key, &manual, !here, &clock)
        .await?;
    if !out.json {
        println!(
            "dry run {} of import {}: {} ({} bytes)",
            started.dry_run_id, started.import_id, started.key, started.size
        );
    }
    let ledger = LedgerStore::new(clients.dynamodb.clone(), &stack.ledger_table);
    let reports = ReportStore::new(clients.s3.clone(), &stack.reports_bucket);
    if here {
        dry_run_here(&clients, stack, &msg, &clock).await?;
    }
    // Else the stack's processor does the work: wait for it, a while.
    let started_at = std::time::Instant::now();
    let view = loop {
        match s3imports::operate::dry_run::view(&ledger, &reports, &started.dry_run_id).await? {
            Some(v) if v.done => break v,
            _ if started_at.elapsed() > DRY_RUN_WAIT => {
                bail!(
                    "dry run {} is still running after {} minutes; see `GET /dry-runs/{}` for its result",
                    started.dry_run_id,
                    DRY_RUN_WAIT.as_secs() / 60,
                    started.dry_run_id
                )
            }
            _ => tokio::time::sleep(std::time::Duration::from_secs(2)).await,
        }
    };
    out.emit(serde_json::to_value(&view).unwrap_or_default(), || {
        let mut text = format!(
            "{}: {} rows read, {} valid, {} failed{}\n",
            view.status.label(),
            view.rows_total,
            view.rows_valid,
            view.rows_failed,
            view.reason
                .as_deref()
                .map(|r| format!("; {r}"))
                .unwrap_or_default()
        );
        for r in &view.sample_reasons {
            let column = if r.column.is_empty() {
                String::new()
            } else {
                format!(", column {}", r.column)
            };
            text.push_str(&format!("  row {}{column}: {}\n", r.row, r.reason));
        }
        if let Some(key) = &view.report_key {
            text.push_str(&format!(
                "failed-rows report: s3://{}/{key}\nnothing was written to the destination tables\n",
                stack.reports_bucket
            ));
        } else {
            text.push_str("nothing was written to the destination tables\n");
        }
        text
    });
    Ok(
        if view.status == s3imports::model::status::FileStatus::Failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}
