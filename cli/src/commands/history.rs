//! `s3imports runs`, `files`, `report` and `status`: an import's history.

use std::process::ExitCode;

use super::{Output, clients};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use s3imports::aws::configs::ConfigStore;
use s3imports::aws::ledger::LedgerStore;
use s3imports::aws::reports::ReportStore;
use s3imports::model::ledger::FileRecord;
use s3imports::model::pages::{
    FILES_LIMIT, FilesCursor, RUN_FILES_LIMIT, RUNS_LIMIT, RunsCursor, plausible_run_id,
};
use s3imports::ports::{LedgerReads as _, find_report};
use s3imports::stack::Stack;
use serde_json::json;

pub async fn runs(
    out: &Output,
    stack: &Stack,
    id: &str,
    limit: Option<usize>,
    cursor: Option<&str>,
    files_limit: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let limit = RUNS_LIMIT.check(limit.unwrap_or(RUNS_LIMIT.default))?;
    let files_limit = RUN_FILES_LIMIT.check(files_limit.unwrap_or(RUN_FILES_LIMIT.default))?;
    let cursor = cursor.map(RunsCursor::decode).transpose()?;
    let clients = clients().await;
    let ledger = LedgerStore::new(clients.dynamodb.clone(), &stack.ledger_table);
    let page = ledger
        .runs_page(id, cursor.as_ref(), limit, files_limit)
        .await?;
    out.emit(s3imports::operate::history::runs_value(id, &page), || {
        if page.runs.is_empty() && cursor.is_none() {
            return format!("import {id} has no runs yet\n");
        }
        let mut t = String::new();
        for e in &page.runs {
            let r = &e.run;
            t.push_str(&format!(
                "run {}: {} — {} file(s), {} rows ({} imported, {} failed){}{}{}\n",
                r.run_id,
                r.status.label(),
                r.files_total,
                r.rows_total,
                r.rows_ingested,
                r.rows_failed,
                r.reason
                    .as_deref()
                    .map(|x| format!("; {x}"))
                    .unwrap_or_default(),
                r.manual
                    .as_ref()
                    .map(|m| format!("; started by hand by {} ({})", m.requested_by, m.via))
                    .unwrap_or_default(),
                if r.keys_used.is_empty() {
                    String::new()
                } else {
                    format!("; decrypted with {}", r.keys_used.join(", "))
                }
            ));
            for c in &r.changed_files {
                t.push_str(&format!(
                    "  changed under its name: {} (ETag {} when run {} imported it, now {})\n",
                    c.key, c.etag_imported, c.run_id, c.etag_now
                ));
            }
            if let Some(a) = &r.alerts {
                if let Some(why) = &a.attention {
                    t.push_str(&format!("  needs attention: {why}\n"));
                }
                for d in a.deliveries.iter().filter(|d| !d.delivered) {
                    t.push_str(&format!(
                        "  summary not delivered to {} after {} attempt(s): {}\n",
                        d.target,
                        d.attempts,
                        d.error.as_deref().unwrap_or("")
                    ));
                }
            }
            if let Some(p) = &r.replay {
                t.push_str(&format!(
                    "  replay of {} (was {} in run {}): {}\n",
                    p.key,
                    p.previous_status.label(),
                    p.previous_run_id,
                    p.reason
                ));
            }
            for f in &e.files {
                t.push_str(&file_line(f));
            }
            if let Some(c) = &e.next_files_cursor {
                t.push_str(&format!(
                    "  ({} more file(s): s3imports runs {id} --run {} --cursor {c})\n",
                    e.files_listed.saturating_sub(e.files.len()),
                    r.run_id
                ));
            }
        }
        if let Some(c) = &page.next_cursor {
            t.push_str(&format!("next page: s3imports runs {id} --cursor {c}\n"));
        }
        t
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn run_files(
    out: &Output,
    stack: &Stack,
    id: &str,
    run_id: &str,
    limit: Option<usize>,
    cursor: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let limit = FILES_LIMIT.check(limit.unwrap_or(FILES_LIMIT.default))?;
    let cursor = cursor.map(|c| FilesCursor::decode(c, run_id)).transpose()?;
    let no_run = || anyhow::anyhow!("import `{id}` has no run `{run_id}`");
    if !plausible_run_id(run_id) {
        return Err(no_run());
    }
    let clients = clients().await;
    let ledger = LedgerStore::new(clients.dynamodb.clone(), &stack.ledger_table);
    let page = ledger
        .files_page(id, run_id, cursor.as_ref(), limit)
        .await?
        .ok_or_else(no_run)?;
    out.emit(
        s3imports::operate::history::files_value(id, run_id, &page),
        || {
            let from = cursor.as_ref().map_or(0, |c| c.offset);
            let mut t = format!(
                "run {}: {} — files {} to {} of {}\n",
                run_id,
                page.run.status.label(),
                (from + 1).min(from + page.files.len()),
                from + page.files.len(),
                page.files_listed
            );
            for f in &page.files {
                t.push_str(&file_line(f));
            }
            if let Some(c) = &page.next_cursor {
                t.push_str(&format!(
                    "next page: s3imports runs {id} --run {run_id} --cursor {c}\n"
                ));
            }
            t
        },
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn file_line(f: &FileRecord) -> String {
    if let Some(p) = f.in_flight() {
        let chunks = if p.chunks_total > 0 {
            format!(", {} of {} chunks done", p.chunks_done, p.chunks_total)
        } else {
            String::new()
        };
        return format!(
            "  {} {}: {} rows so far ({} imported, {} failed) in {} invocation(s){chunks}\n",
            f.status.label(),
            f.key,
            p.rows_so_far,
            p.rows_ingested,
            p.rows_failed,
            p.invocations
        );
    }
    format!(
        "  {} {}: {} rows ({} imported, {} failed){}{}{}\n",
        f.status.label(),
        f.key,
        f.rows_total,
        f.rows_ingested,
        f.rows_failed,
        f.reason
            .as_deref()
            .map(|x| format!("; {x}"))
            .unwrap_or_default(),
        f.report_key
            .as_deref()
            .map(|k| format!("; report {k}"))
            .unwrap_or_default(),
        f.decrypted_with
            .as_deref()
            .map(|k| format!("; decrypted with the {k}"))
            .unwrap_or_default(),
    ) + &file_notes(f)
}

/// A file's further lines: repeated content, a changed object, post-processing.
pub(super) fn file_notes(f: &FileRecord) -> String {
    let mut t = String::new();
    if let Some(d) = &f.duplicate_of {
        t.push_str(&format!(
            "    {} its content repeats {} (run {})\n",
            if d.skipped { "skipped:" } else { "note:" },
            d.key,
            d.run_id
        ));
    }
    if let Some(etag) = &f.changed_etag {
        t.push_str(&format!(
            "    changed since imported: ETag {} now {etag} (not imported again: replay it to import it)\n",
            f.etag
        ));
    }
    if let Some(p) = &f.post_process {
        if p.pending {
            t.push_str("    post-processing was started and not recorded as done\n");
        }
        if !p.done.is_empty() {
            t.push_str(&format!("    after import: {}\n", p.done.join(", ")));
        }
        if let Some(e) = &p.error {
            t.push_str(&format!("    post-processing failed: {e}\n"));
        }
    }
    t
}

/// Streams a run's failed-rows report for a file from the reports bucket to `output`
/// (a file) or stdout, never holding it whole in memory.
pub async fn report(
    out: &Output,
    stack: &Stack,
    import_id: &str,
    run_id: &str,
    file_key: &str,
    output: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let clients = clients().await;
    let ledger = LedgerStore::new(clients.dynamodb.clone(), &stack.ledger_table);
    let reports = ReportStore::new(clients.s3.clone(), &stack.reports_bucket);
    let key = find_report(&ledger, import_id, run_id, file_key).await?;
    let mut object = reports.open(&key).await?;
    let mut sink: Box<dyn std::io::Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {path}"))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut written: u64 = 0;
    while let Some(chunk) = object
        .body
        .try_next()
        .await
        .with_context(|| format!("reading report {key}"))?
    {
        sink.write_all(&chunk).context("writing the report")?;
        written += chunk.len() as u64;
    }
    sink.flush().context("writing the report")?;
    if let Some(path) = output {
        out.emit(
            json!({"report_key": key, "bucket": stack.reports_bucket, "bytes": written, "output": path}),
            || format!("report {key} ({written} bytes) written to {path}\n"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `s3imports status`: every import with its status, last and next run, and the rows
/// its runs started today (UTC) brought in.
pub async fn status(out: &Output, stack: &Stack) -> anyhow::Result<ExitCode> {
    let clients = clients().await;
    let store = ConfigStore::new(clients.dynamodb.clone(), &stack.configs_table);
    let ledger = LedgerStore::new(clients.dynamodb.clone(), &stack.ledger_table);
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(Utc::now);
    let mut lines = Vec::new();
    for r in store.all().await? {
        lines.push(s3imports::operate::history::summary(&ledger, &r, today).await?);
    }
    out.emit(json!({"imports": lines}), || {
        let time = |t: Option<DateTime<Utc>>| {
            t.map_or_else(
                || "-".to_string(),
                |t| t.format("%Y-%m-%d %H:%M").to_string(),
            )
        };
        let mut table = vec![[
            "IMPORT".to_string(),
            "STATUS".into(),
            "LAST RUN".into(),
            "RESULT".into(),
            "NEXT RUN".into(),
            "ROWS TODAY".into(),
            "FAILED TODAY".into(),
        ]];
        for l in &lines {
            table.push([
                l.id.clone(),
                l.status.to_string(),
                time(l.last_run_at),
                l.last_run_status.unwrap_or("-").to_string(),
                time(l.next_run_at),
                l.rows_today.to_string(),
                l.rows_failed_today.to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..7)
            .map(|i| {
                table
                    .iter()
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut t = String::new();
        for row in &table {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            t.push_str(cells.join("  ").trim_end());
            t.push('\n');
        }
        if lines.is_empty() {
            t = "no imports yet: s3imports config put FILE\n".into();
        }
        t
    });
    Ok(ExitCode::SUCCESS)
}
