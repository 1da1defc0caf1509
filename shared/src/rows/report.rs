//! The failed-rows report as it is written: one CSV line per reason (row, column,
//! reason, original row), bounded in size. A line keeps at most
//! [`REPORT_ROW_BYTES`] of its original row (marked when cut), the original row is
//! written once per row (on its first line), and once the report reaches its cap it
//! stops growing but keeps counting, so the counts in the ledger never depend on it.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use crate::codec::limits::{REPORT_PARAMETER, REPORT_ROW_BYTES};
use crate::codec::reader::RowError;
use crate::model::checkpoint::{ReportProgress, ReportSummary};

/// Report temp files start with this, so a cold start can sweep what a crash left.
pub const SPOOL_PREFIX: &str = "s3imports-report-";

pub const HEADER: [&str; 4] = ["row", "column", "reason", "original_row"];

pub struct ReportWriter {
    out: csv::Writer<BufWriter<File>>,
    max_bytes: u64,
    summary: ReportSummary,
    full: bool,
}

impl ReportWriter {
    /// `header`: the report starts with its header line (a chunk's share has none).
    pub fn new(file: File, max_bytes: u64, header: bool) -> Self {
        let mut me = Self {
            out: csv::Writer::from_writer(BufWriter::with_capacity(64 * 1024, file)),
            max_bytes,
            summary: ReportSummary::default(),
            full: false,
        };
        if header {
            me.write(&HEADER);
        }
        me
    }

    /// Goes on with a report a checkpoint left off (its earlier lines are in uploaded
    /// parts, the header with the first), the size limit counting what they hold.
    /// `header`: this report starts the file's (not a later chunk's share).
    pub fn resume(file: File, max_bytes: u64, progress: &ReportProgress, header: bool) -> Self {
        let mut me = Self {
            out: csv::Writer::from_writer(BufWriter::with_capacity(64 * 1024, file)),
            max_bytes,
            summary: progress.summary(),
            full: progress.full,
        };
        // No part uploaded yet: the header never left the last invocation's spool.
        if progress.parts == 0 && header {
            me.write(&HEADER);
        }
        me
    }

    /// Writes out what is buffered and tells where the report stands, for a
    /// checkpoint (the spool file then holds every line so far).
    pub fn progress(&mut self, parts: u32) -> ReportProgress {
        if let Err(e) = self.out.flush()
            && self.summary.error.is_none()
        {
            self.summary.error = Some(e.to_string());
        }
        ReportProgress {
            parts,
            rows_listed: self.summary.rows_listed,
            rows_omitted: self.summary.rows_omitted,
            bytes: self.summary.bytes,
            error: self.summary.error.clone(),
            full: self.full,
        }
    }

    /// Lists one failed row with each of its reasons.
    pub fn row_failed(&mut self, errors: &[RowError]) {
        let Some(first) = errors.first() else {
            return;
        };
        if self.full || self.summary.error.is_some() {
            self.summary.rows_omitted += 1;
            return;
        }
        let row = first.row.to_string();
        let raw = cut(&first.raw);
        let size: u64 = errors
            .iter()
            .map(|e| {
                (row.len() + e.column.as_deref().map_or(0, str::len) + e.reason.len() + 8) as u64
            })
            .sum::<u64>()
            + raw.len() as u64;
        if self.summary.bytes + size > self.max_bytes {
            self.full = true;
            self.summary.rows_omitted += 1;
            return;
        }
        for (i, e) in errors.iter().enumerate() {
            // The original row once per row: a row with five reasons is not copied five times.
            let original = if i == 0 { raw.as_ref() } else { "" };
            self.write(&[
                row.as_str(),
                e.column.as_deref().unwrap_or(""),
                e.reason.as_str(),
                original,
            ]);
        }
        self.summary.bytes += size;
        self.summary.rows_listed += 1;
    }

    fn write(&mut self, fields: &[&str; 4]) {
        if self.summary.error.is_some() {
            return;
        }
        if let Err(e) = self.out.write_record(fields) {
            self.summary.error = Some(e.to_string());
        }
    }

    /// Ends the report: a last line says how many rows it could not list.
    pub fn finish(mut self) -> ReportSummary {
        if self.summary.rows_omitted > 0 {
            let note = format!(
                "the report reached its limit of {} MiB ({REPORT_PARAMETER}); {} more failed row(s) are not listed",
                self.max_bytes >> 20,
                self.summary.rows_omitted
            );
            self.write(&["", "", note.as_str(), ""]);
        }
        if let Err(e) = self.out.flush()
            && self.summary.error.is_none()
        {
            self.summary.error = Some(e.to_string());
        }
        self.summary
    }
}

/// The header line as the writer writes it, for a report joined from pieces.
pub fn header_line() -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = w.write_record(HEADER);
    w.into_inner().unwrap_or_default()
}

/// At most [`REPORT_ROW_BYTES`] of a row, cut on a character boundary and marked.
fn cut(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.len() <= REPORT_ROW_BYTES {
        return raw.into();
    }
    let mut end = REPORT_ROW_BYTES;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[cut: the row has {} bytes]", &raw[..end], raw.len()).into()
}

/// Removes report files a crashed invocation left in `dir` (a Lambda environment
/// keeps `/tmp` across invocations). Call once at start-up, before any work.
pub fn sweep_spool(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(SPOOL_PREFIX)
            && entry.file_type()?.is_file()
        {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(row: u64, column: &str, raw: &str) -> RowError {
        RowError {
            row,
            column: Some(column.into()),
            reason: format!("bad {column}"),
            raw: raw.into(),
        }
    }

    fn read(f: &tempfile::NamedTempFile) -> String {
        std::fs::read_to_string(f.path()).unwrap()
    }

    #[test]
    fn the_original_row_is_kept_once_and_cut() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut w = ReportWriter::new(f.reopen().unwrap(), 1 << 20, true);
        let long = "é".repeat(2000);
        w.row_failed(&[err(2, "a", &long), err(2, "b", &long)]);
        let s = w.finish();
        assert_eq!((s.rows_listed, s.rows_omitted, s.error), (1, 0, None));
        let text = read(&f);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "row,column,reason,original_row");
        assert!(lines[1].starts_with("2,a,bad a,"), "{}", lines[1]);
        assert!(lines[1].contains("…[cut: the row has 4000 bytes]"));
        assert!(lines[1].len() < REPORT_ROW_BYTES + 100);
        assert_eq!(lines[2], "2,b,bad b,");
    }

    #[test]
    fn a_full_report_stops_growing_and_keeps_counting() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut w = ReportWriter::new(f.reopen().unwrap(), 4096, true);
        for i in 0..1000 {
            w.row_failed(&[err(i + 2, "x", &"v".repeat(100))]);
        }
        let s = w.finish();
        assert_eq!(s.rows_listed + s.rows_omitted, 1000);
        assert!(s.rows_omitted > 900, "{s:?}");
        let text = read(&f);
        assert!(text.len() < 4096 + 300, "{}", text.len());
        assert!(
            text.contains(&format!(
                "{} more failed row(s) are not listed",
                s.rows_omitted
            )),
            "{text}"
        );
    }

    #[test]
    fn sweep_removes_only_report_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!("{SPOOL_PREFIX}abc")), "x").unwrap();
        std::fs::write(dir.path().join("other"), "x").unwrap();
        assert_eq!(sweep_spool(dir.path()).unwrap(), 1);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }
}
