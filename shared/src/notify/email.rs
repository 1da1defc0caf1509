//! Run notifications: one email per run, written for the person who owns the import.
//!
//! Failed-rows reports travel as attachments while they are small; every report is
//! also named with the CLI command and API route that fetch it, which work for as long
//! as the reports bucket keeps it (a presigned link would die with the signing
//! function's session credentials, within hours).

use std::collections::HashMap;
use std::fmt::Write;

use percent_encoding::utf8_percent_encode;

use crate::codec::mime::{Email, URL_VALUE};
use crate::model::config::ImportConfig;
use crate::model::ledger::{FileRecord, RunRecord};
use crate::model::segment::{Segment, SegmentStatus};
use crate::model::status::RunStatus;

/// The most report bytes one email carries as attachments, all reports together.
/// SES v2 accepts messages up to 40 MB after base64 (which adds a third); 5 MB stays
/// far inside that and inside what common mailboxes accept (10 to 25 MB).
pub const MAX_ATTACHED_BYTES: u64 = 5 * 1024 * 1024;

/// How a file's failed-rows report reaches the reader of the email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportDelivery {
    /// Attached under this file name.
    Attached { filename: String },
    /// Over what the email still had room for ([`MAX_ATTACHED_BYTES`] in all).
    TooLarge { bytes: u64 },
    /// It could not be read when the email was sent.
    Unavailable,
}

/// The preview API route that returns a run's failed-rows report for a file.
pub fn report_api_route(import_id: &str, run_id: &str, file_key: &str) -> String {
    format!(
        "GET /imports/{}/runs/{}/report?file={}",
        utf8_percent_encode(import_id, URL_VALUE),
        utf8_percent_encode(run_id, URL_VALUE),
        utf8_percent_encode(file_key, URL_VALUE)
    )
}

/// The CLI command that downloads a run's failed-rows report for a file, quoted for
/// a POSIX shell.
pub fn report_cli_command(import_id: &str, run_id: &str, file_key: &str) -> String {
    format!(
        "s3imports report {} {} {}",
        shell_quote(import_id),
        shell_quote(run_id),
        shell_quote(file_key)
    )
}

/// `s` as one POSIX shell word: unchanged when it is plainly safe, else single-quoted
/// (file keys come from customers and may hold spaces, quotes or `$`).
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:@%+=,-".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
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

/// The email for a finished run. `reports` says, by file key, how each failed-rows
/// report travels; the caller adds the attachments.
pub fn run_email(
    config: &ImportConfig,
    run: &RunRecord,
    files: &[FileRecord],
    reports: &HashMap<String, ReportDelivery>,
    segment: Option<&Segment>,
    attention: Option<&str>,
) -> Email {
    let subject = format!(
        "[s3imports]{} {}: {} ({} of {} rows imported)",
        if attention.is_some() {
            " Needs attention:"
        } else {
            ""
        },
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
    if let Some(why) = attention {
        let _ = writeln!(t, "Needs attention: {why}");
    }
    if let Some(s) = segment {
        let _ = writeln!(
            t,
            "Segment: {} ({} members); the users this run imported were added to it",
            s.name, s.member_count
        );
        if s.status == SegmentStatus::Archived {
            let _ = writeln!(
                t,
                "  The segment is archived: this import still adds its users to it (nothing is dropped). Unarchive it with `s3imports segments unarchive \"{}\"`, or remove `segment` from the import's config.",
                s.name
            );
        }
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
        match &f.duplicate_of {
            Some(d) if d.skipped => {
                let _ = writeln!(
                    t,
                    "  Skipped: its content repeats s3://{}/{}, imported in run {} (on_duplicate_content: skip)",
                    f.bucket, d.key, d.run_id
                );
            }
            Some(d)
                if config.on_duplicate_content == crate::model::config::DuplicateContent::Warn =>
            {
                let _ = writeln!(
                    t,
                    "  Warning: its content repeats s3://{}/{}, imported in run {}; it was imported again (on_duplicate_content: warn)",
                    f.bucket, d.key, d.run_id
                );
            }
            _ => {}
        }
        if let Some(p) = &f.post_process {
            if !p.done.is_empty() {
                let _ = writeln!(t, "  After import: {}", p.done.join(", "));
            }
            if let Some(e) = &p.error {
                let _ = writeln!(
                    t,
                    "  Post-processing failed (the outcome above stands): {e}"
                );
            }
        }
        if f.report_key.is_some() {
            let how = match reports.get(&f.key) {
                Some(ReportDelivery::Attached { filename }) => format!("attached as {filename}"),
                Some(ReportDelivery::TooLarge { bytes }) => format!(
                    "not attached ({bytes} bytes; an email carries at most {} MB of reports)",
                    MAX_ATTACHED_BYTES / (1024 * 1024)
                ),
                Some(ReportDelivery::Unavailable) | None => {
                    "not attached (it could not be read when this email was sent)".to_string()
                }
            };
            let _ = writeln!(t, "  Failed rows report: {how}");
            let _ = writeln!(
                t,
                "  Fetch it with the CLI: {}",
                report_cli_command(&config.id, &run.run_id, &f.key)
            );
            let _ = writeln!(
                t,
                "  or the preview API (the stack's ApiUrl): {}",
                report_api_route(&config.id, &run.run_id, &f.key)
            );
        }
    }
    changed_lines(&mut t, config, &run.changed_files);
    if files.iter().any(|f| f.report_key.is_some()) {
        let _ = writeln!(
            t,
            "\nReports are kept in the stack's reports bucket for its ReportRetentionDays (30 days unless changed)."
        );
    }
    Email {
        subject,
        text: t,
        attachments: Vec::new(),
    }
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
        attachments: Vec::new(),
    }
}

/// The lines that report imported files whose objects changed under their names.
fn changed_lines(
    t: &mut String,
    config: &ImportConfig,
    changed: &[crate::model::ledger::ChangedFile],
) {
    if changed.is_empty() {
        return;
    }
    let _ = writeln!(
        t,
        "\nChanged since they were imported (not imported again; `s3imports replay {} KEY --reason ...` imports a file's new content):",
        config.id
    );
    for c in changed
        .iter()
        .take(crate::model::ledger::MAX_CHANGED_LISTED)
    {
        let _ = writeln!(
            t,
            "- s3://{}/{}: imported in run {} (ETag {}), now ETag {}",
            config.source.bucket, c.key, c.run_id, c.etag_imported, c.etag_now
        );
    }
    if changed.len() > crate::model::ledger::MAX_CHANGED_LISTED {
        let _ = writeln!(
            t,
            "- and {} more (`s3imports runs {}` shows each file)",
            changed.len() - crate::model::ledger::MAX_CHANGED_LISTED,
            config.id
        );
    }
}

/// The email for a run that found no new files but imported files changed under
/// their names.
pub fn changed_files_email(
    config: &ImportConfig,
    run_id: &str,
    changed: &[crate::model::ledger::ChangedFile],
) -> Email {
    let mut t = format!(
        "Import: {} ({})\nKind: {}\nRun: {run_id}\nStatus: No new files\n",
        config.name,
        config.id,
        config.kind.describe()
    );
    changed_lines(&mut t, config, changed);
    Email {
        subject: format!(
            "[s3imports] {}: {} imported file(s) changed",
            config.name,
            changed.len()
        ),
        text: t,
        attachments: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cli_arguments_are_quoted_for_the_shell() {
        assert_eq!(
            report_cli_command(
                "users",
                "20261128T090000Z-1a2b3c4d",
                "users/registered_user_data_20261127.csv"
            ),
            "s3imports report users 20261128T090000Z-1a2b3c4d users/registered_user_data_20261127.csv"
        );
        assert_eq!(
            shell_quote("Purchase Summary_1.csv"),
            "'Purchase Summary_1.csv'"
        );
        assert_eq!(shell_quote("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn api_routes_encode_the_file_key() {
        assert_eq!(
            report_api_route("p", "r-1", "events/Purchase Summary_20261127.csv"),
            "GET /imports/p/runs/r-1/report?file=events%2FPurchase%20Summary_20261127.csv"
        );
        assert_eq!(
            report_api_route("p", "r", "a+b&c=d#e"),
            "GET /imports/p/runs/r/report?file=a%2Bb%26c%3Dd%23e"
        );
    }
}
