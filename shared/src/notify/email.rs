//! Run notifications: one email per run, written for the person who owns the import.
//!
//! Failed-rows reports travel as attachments while they are small; every report is
//! also named with the CLI command and API route that fetch it, which work for as long
//! as the reports bucket keeps it (a presigned link would die with the signing
//! function's session credentials, within hours).

use std::collections::HashMap;
use std::fmt::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::model::config::ImportConfig;
use crate::model::ledger::{FileRecord, RunRecord, RunStatus};
use crate::model::segment::{Segment, SegmentStatus};

/// The most report bytes one email carries as attachments, all reports together.
/// SES v2 accepts messages up to 40 MB after base64 (which adds a third); 5 MB stays
/// far inside that and inside what common mailboxes accept (10 to 25 MB).
pub const MAX_ATTACHED_BYTES: u64 = 5 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

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

/// Characters left as they are in a URL path segment or query value (RFC 3986's
/// unreserved set); everything else is percent-encoded.
const URL_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

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

/// An email header or address that would break the message's structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    #[error("the {0} address contains a line break or is empty")]
    BadAddress(&'static str),
}

impl Email {
    /// The email as a MIME message (RFC 5322, 2045-2047, 2231): the text, then each
    /// attachment, all base64, so no content (customer file names and rows included)
    /// can end a part or add a header.
    pub fn to_mime(
        &self,
        from: &str,
        to: &[String],
        date: DateTime<Utc>,
    ) -> Result<String, MimeError> {
        let address_ok = |a: &str| !a.is_empty() && !a.contains(['\r', '\n']);
        if !address_ok(from) {
            return Err(MimeError::BadAddress("sender"));
        }
        if !to.iter().all(|a| address_ok(a)) {
            return Err(MimeError::BadAddress("recipient"));
        }
        // Unique enough that no base64 line (A-Z a-z 0-9 + / =) can contain it.
        let boundary = format!("=_s3imports_{}", uuid::Uuid::new_v4().simple());
        let mut m = String::new();
        let _ = write!(m, "From: {from}\r\n");
        let _ = write!(m, "To: {}\r\n", to.join(", "));
        let _ = write!(m, "Subject: {}\r\n", encode_header_words(&self.subject));
        let _ = write!(m, "Date: {}\r\n", date.to_rfc2822());
        m.push_str("MIME-Version: 1.0\r\n");
        let _ = write!(
            m,
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
        );
        let _ = write!(m, "--{boundary}\r\n");
        m.push_str("Content-Type: text/plain; charset=UTF-8\r\n");
        m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        push_base64_lines(&mut m, self.text.as_bytes());
        for a in &self.attachments {
            let _ = write!(m, "--{boundary}\r\n");
            let name = short_file_name(&a.filename);
            let ascii_name = ascii_file_name(&name);
            let _ = write!(
                m,
                "Content-Type: {}; name=\"{ascii_name}\"\r\n",
                content_type_token(&a.content_type)
            );
            m.push_str("Content-Transfer-Encoding: base64\r\n");
            let _ = write!(
                m,
                "Content-Disposition: attachment; filename=\"{ascii_name}\""
            );
            // RFC 2231's form only where the plain one had to change the name: some
            // readers prefer the plain one when both are given.
            if ascii_name != name {
                let _ = write!(
                    m,
                    ";\r\n filename*=UTF-8''{}",
                    utf8_percent_encode(&name, URL_VALUE)
                );
            }
            m.push_str("\r\n\r\n");
            push_base64_lines(&mut m, &a.data);
        }
        let _ = write!(m, "--{boundary}--\r\n");
        Ok(m)
    }
}

/// RFC 2047 encoded words, each within the 75-character limit, folded onto lines of
/// their own: any subject (non-ASCII, or with line breaks from a config's name)
/// becomes one safe header value.
fn encode_header_words(s: &str) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        // 45 bytes of UTF-8 encode to 60 characters, 72 with the `=?UTF-8?B?` frame.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", BASE64.encode(w)))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// The most characters of a file name kept in headers: with RFC 2231's encoding (up to
/// 12 bytes a character) a header line stays under RFC 5322's 998.
const MAX_NAME_CHARS: usize = 80;

/// A file name cut to its last [`MAX_NAME_CHARS`] characters (which hold its
/// extension).
fn short_file_name(name: &str) -> String {
    let count = name.chars().count();
    name.chars()
        .skip(count.saturating_sub(MAX_NAME_CHARS))
        .collect()
}

/// The name as an RFC 2045 quoted string's content: printable ASCII other than `"`
/// and `\`, anything else replaced by `_`.
fn ascii_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A media type made only of token characters (falls back to octet-stream).
fn content_type_token(t: &str) -> &str {
    let ok = t.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"/.+-".contains(&c))
    });
    if ok { t } else { "application/octet-stream" }
}

/// Base64 in lines of 76 characters (RFC 2045).
fn push_base64_lines(out: &mut String, data: &[u8]) {
    let encoded = BASE64.encode(data);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn decode_words(header: &str) -> String {
        header
            .split("\r\n ")
            .map(|w| {
                let inner = w
                    .strip_prefix("=?UTF-8?B?")
                    .and_then(|w| w.strip_suffix("?="))
                    .unwrap();
                String::from_utf8(BASE64.decode(inner).unwrap()).unwrap()
            })
            .collect()
    }

    #[test]
    fn subjects_become_short_encoded_words_whatever_they_hold() {
        for subject in [
            "",
            "[s3imports] CRM users: Successful (3 of 3 rows imported)",
            "Zahlungen für Ünïcödé — 日本語のインポート名がとても長い場合 ✓✓✓✓✓✓✓✓✓✓",
            "evil\r\nBcc: attacker@example.com",
        ] {
            let encoded = encode_header_words(subject);
            assert_eq!(decode_words(&encoded), subject);
            for line in encoded.split("\r\n") {
                assert!(line.len() <= 76, "{line}");
                assert!(!line.contains('\r') && !line.contains('\n'));
            }
        }
    }

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

    #[test]
    fn mime_refuses_addresses_that_would_add_headers() {
        let email = Email {
            subject: "s".into(),
            text: "t".into(),
            attachments: Vec::new(),
        };
        let now = Utc::now();
        assert_eq!(
            email.to_mime("a@x\r\nBcc: e@x", &["b@x".into()], now),
            Err(MimeError::BadAddress("sender"))
        );
        assert_eq!(
            email.to_mime("a@x", &["b@x\nBcc: e@x".into()], now),
            Err(MimeError::BadAddress("recipient"))
        );
    }

    #[test]
    fn attachment_names_and_types_cannot_break_their_headers() {
        let email = Email {
            subject: "s".into(),
            text: "t".into(),
            attachments: vec![Attachment {
                filename: "a\"b\r\nX-Evil: 1.csv".into(),
                content_type: "text/csv\r\nX-Evil: 2".into(),
                data: b"row\n".to_vec(),
            }],
        };
        let mime = email.to_mime("a@x", &["b@x".into()], Utc::now()).unwrap();
        assert!(!mime.contains("\r\nX-Evil"), "{mime}");
        assert!(mime.contains("filename=\"a_b__X-Evil: 1.csv\""), "{mime}");
        assert!(
            mime.contains("filename*=UTF-8''a%22b%0D%0AX-Evil%3A%201.csv"),
            "{mime}"
        );
        assert!(
            mime.contains("Content-Type: application/octet-stream;"),
            "{mime}"
        );
    }

    #[test]
    fn long_file_names_keep_their_end_and_header_lines_stay_short() {
        let email = Email {
            subject: "s".into(),
            text: "t".into(),
            attachments: vec![Attachment {
                filename: format!("{}.failed.csv", "日".repeat(300)),
                content_type: "text/csv".into(),
                data: b"row\n".to_vec(),
            }],
        };
        let mime = email.to_mime("a@x", &["b@x".into()], Utc::now()).unwrap();
        assert!(mime.lines().all(|l| l.len() <= 998));
        assert!(mime.contains(".failed.csv\""), "{mime}");
    }
}
