//! Run notifications: one email per run, written for the person who owns the import.

use std::collections::HashMap;
use std::fmt::Write;

use crate::config::ImportConfig;
use crate::ledger::{FileRecord, RunRecord, RunStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
}

/// Whether the import asked for an email about a run that ended so.
pub fn wanted(config: &ImportConfig, status: RunStatus) -> bool {
    if config.notifications.recipients.is_empty() {
        return false;
    }
    match status {
        RunStatus::Succeeded => config.notifications.on_success,
        RunStatus::Failed | RunStatus::PartiallySucceeded => config.notifications.on_failure,
        RunStatus::Processing | RunStatus::NoNewFiles => false,
    }
}

/// The email for a finished run. `report_links` maps a file key to a link to its
/// failed-rows report.
pub fn run_email(
    config: &ImportConfig,
    run: &RunRecord,
    files: &[FileRecord],
    report_links: &HashMap<String, String>,
) -> Email {
    let subject = format!(
        "[s3imports] {}: {} ({} of {} rows imported)",
        config.name,
        run.status.label(),
        run.rows_ingested,
        run.rows_total
    );
    let mut t = String::new();
    let _ = writeln!(t, "Import: {} ({})", config.name, config.id);
    let _ = writeln!(t, "Kind: {}", config.kind.describe());
    let _ = writeln!(t, "Run: {}", run.run_id);
    let _ = writeln!(t, "Status: {}", run.status.label());
    let _ = writeln!(
        t,
        "Files: {} ({} successful, {} partial success, {} failed)",
        run.files_total, run.files_succeeded, run.files_partial, run.files_failed
    );
    let _ = writeln!(
        t,
        "Rows: {} total, {} imported, {} failed",
        run.rows_total, run.rows_ingested, run.rows_failed
    );
    if let Some(reason) = &run.reason {
        let _ = writeln!(t, "Reason: {reason}");
    }
    if !files.is_empty() {
        let _ = writeln!(t, "\nFiles:");
    }
    if (files.len() as u64) < run.files_total {
        let _ = writeln!(
            t,
            "(the first {} of {} files are listed; every file has its own ledger record, see `s3imports runs {}`)",
            files.len(),
            run.files_total,
            config.id
        );
    }
    for f in files {
        let _ = writeln!(
            t,
            "- s3://{}/{}: {} ({} rows, {} imported, {} failed)",
            f.bucket,
            f.key,
            f.status.label(),
            f.rows_total,
            f.rows_ingested,
            f.rows_failed
        );
        if let Some(reason) = &f.reason {
            let _ = writeln!(t, "  Reason: {reason}");
        }
        if let Some(link) = report_links.get(&f.key) {
            let _ = writeln!(t, "  Failed rows report: {link}");
        }
    }
    Email { subject, text: t }
}

/// The email for a run that could not start (the bucket could not be read).
pub fn run_failed_email(config: &ImportConfig, run_id: &str, reason: &str) -> Email {
    Email {
        subject: format!("[s3imports] {}: Failed", config.name),
        text: format!(
            "Import: {} ({})\nKind: {}\nRun: {run_id}\nStatus: Failed\nReason: {reason}\n\nThe next scheduled run will try again.\n",
            config.name,
            config.id,
            config.kind.describe()
        ),
    }
}
