//! One row in reused buffers, the reader's interface and position, and what can go
//! wrong reading one.

use std::fmt;
use std::io::{BufRead, Read};

use serde::{Deserialize, Serialize};

use crate::error::{Classify, ErrorClass};

/// A row that could not be read or mapped: where, why, and the row as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row number as a person sees it (see [`Row::number`]).
    pub row: u64,
    pub column: Option<String>,
    pub reason: String,
    /// The original row (see [`Row::raw`]).
    pub raw: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "row {}, column `{c}`: {}", self.row, self.reason),
            None => write!(f, "row {}: {}", self.row, self.reason),
        }
    }
}

impl std::error::Error for RowError {}

impl Classify for RowError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// A problem with the file as a whole.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Also the preview's message, word for word.
    #[error("Found zero data rows in the file")]
    ZeroDataRows,
    /// `position` is 1-based; `column` is the trimmed name (empty when it has none).
    #[error("{}", bad_header(column, *position, reason))]
    BadHeader {
        column: String,
        position: usize,
        reason: String,
    },
    #[error("the header row is not UTF-8 text; save the file as UTF-8")]
    NotUtf8Header,
    #[error("the JSON is malformed: {0}")]
    Json(String),
    #[error(
        "the header row is larger than {limit} bytes ({}){}",
        crate::codec::limits::ROW_LIMIT_PARAMETER,
        if *unclosed_quote { ": a quoted header is never closed" } else { "" }
    )]
    HeaderTooLarge { limit: usize, unclosed_quote: bool },
    /// The file ends inside a quoted field: the rows after it were read into it.
    #[error(
        "row {row} opens a quoted field on line {line} that is never closed; the file ends inside it, so the {lines} line(s) after it were not imported as rows"
    )]
    UnclosedQuote { row: u64, line: u64, lines: u64 },
    #[error("the CSV is malformed: {0}")]
    Csv(String),
    #[error("the file could not be read: {0}")]
    Io(#[from] std::io::Error),
    /// A checkpoint does not fit the file read again (it changed, or the ledger is
    /// corrupt): nothing after the checkpoint can be placed.
    #[error("the file cannot be resumed from its checkpoint: {0}")]
    Resume(String),
}

fn bad_header(column: &str, position: usize, reason: &str) -> String {
    if column.is_empty() {
        format!("the header's column {position} {reason}")
    } else {
        // A header cell may be as long as a row may be: quote its start only.
        let column = crate::codec::limits::bounded(column, 100);
        format!("the header's column {position} `{column}` {reason}")
    }
}

impl Classify for FileError {
    fn class(&self) -> ErrorClass {
        match self {
            // A read that failed on the way (network, throttling) may work next time;
            // bytes that decode wrongly (a corrupt or truncated stream) will not.
            Self::Io(e)
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
                ) =>
            {
                ErrorClass::Retryable
            }
            _ => ErrorClass::Permanent,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// This row is bad; reading goes on.
    #[error(transparent)]
    Row(RowError),
    /// The file cannot be read further.
    #[error(transparent)]
    File(FileError),
}

impl From<FileError> for ReadError {
    fn from(e: FileError) -> Self {
        Self::File(e)
    }
}

impl Classify for ReadError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Row(e) => e.class(),
            Self::File(e) => e.class(),
        }
    }
}

/// One row, in buffers reused from row to row.
#[derive(Debug, Default, Clone)]
pub struct Row {
    number: u64,
    /// All field text back to back, in the order it was read.
    pub(super) text: String,
    /// Field i's byte range in `text`, or None when absent (JSON null, missing key).
    pub(super) spans: Vec<Option<(usize, usize)>>,
    raw: RawRow,
    /// For JSON: the element's bytes (swapped with the reader's buffer, not copied).
    pub(super) raw_bytes: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy)]
pub(super) enum RawRow {
    #[default]
    None,
    /// Re-encode the fields with this delimiter.
    Csv(u8),
    /// `raw_bytes` holds the text.
    Json,
}

impl Row {
    /// The row number as a person sees it: for CSV the header is row 1 and records
    /// (not physical lines) are counted; for JSON the 1-based object index.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The number of fields (the column count for a good row).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The bytes the row holds (field text, and a JSON row's own text).
    pub fn byte_len(&self) -> usize {
        self.text.len() + self.raw_bytes.len()
    }

    /// Field `i`, or None when absent (out of range, JSON null or missing key).
    pub fn get(&self, i: usize) -> Option<&str> {
        let (start, end) = (*self.spans.get(i)?)?;
        self.text.get(start..end)
    }

    /// The row as it was, for the failed-rows report: for CSV one CSV line with the
    /// file's delimiter, for JSON the object's text.
    pub fn raw(&self) -> String {
        match self.raw {
            RawRow::None => String::new(),
            RawRow::Json => String::from_utf8_lossy(self.raw_bytes.trim_ascii()).into_owned(),
            RawRow::Csv(delimiter) => {
                let mut out = String::with_capacity(self.text.len() + self.len() * 3);
                for i in 0..self.len() {
                    if i > 0 {
                        out.push(char::from(delimiter));
                    }
                    csv_quote(self.get(i).unwrap_or(""), delimiter, &mut out);
                }
                out
            }
        }
    }

    pub(super) fn begin(&mut self, number: u64, raw: RawRow) {
        self.number = number;
        self.text.clear();
        self.spans.clear();
        self.raw = raw;
    }

    pub(super) fn push(&mut self, value: &str) {
        let start = self.text.len();
        self.text.push_str(value);
        self.spans.push(Some((start, self.text.len())));
    }
}

/// Quotes a field the way the csv crate does by default: only when it holds the
/// delimiter, a quote or a line break.
fn csv_quote(field: &str, delimiter: u8, out: &mut String) {
    let needs = field
        .bytes()
        .any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r');
    if needs {
        out.push('"');
        for c in field.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(field);
    }
}

pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads rows one at a time into a caller's [`Row`].
pub trait RowReader {
    fn columns(&self) -> &[String];
    /// The next data row into `row`, reusing its buffers; `Ok(false)` at the end.
    /// `Err(ReadError::Row)` is a bad row (call again to go on); `Err(ReadError::File)`
    /// means the file cannot be read further. A file that ends with no data rows (good
    /// or bad) gives `FileError::ZeroDataRows`.
    fn read_row(&mut self, row: &mut Row) -> Result<bool, ReadError>;

    /// Where the next row starts, to resume from (see [`resume_reader`]). Valid
    /// between rows, when [`RowReader::resumable`].
    fn position(&self) -> Position;

    /// Whether [`RowReader::position`] can be resumed from: not when the reader holds
    /// what it read ahead (a file error due after the last row, looked-ahead rows).
    fn resumable(&self) -> bool;
}

/// A point between two rows of the plaintext, as a checkpoint records it: reading
/// resumes there with the same row numbers and messages as an unbroken read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Plaintext bytes before the next row (a byte order mark included).
    pub offset: u64,
    /// Plaintext bytes a reader takes before its first row (the CSV header, a JSON
    /// array's `[`): read again on resuming, since they name the columns.
    pub header: u64,
    /// Rows handed out so far, good or bad (CSV: the spreadsheet number of the last
    /// record, the header being 1).
    pub row: u64,
    /// CSV: the physical line the next record starts on, and whether the last record
    /// ended with `\r` or the last byte read was `\n` (messages count lines).
    #[serde(default)]
    pub line: u64,
    #[serde(default)]
    pub after_cr: bool,
    #[serde(default)]
    pub after_nl: bool,
    /// JSON: the file is one array (its elements are between `,`s), not lines.
    #[serde(default)]
    pub in_array: bool,
}

/// How a resumed reader's input is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// The whole plaintext from byte 0: the reader skips from the header to the
    /// position itself (a decrypted or gunzipped stream, which cannot be ranged).
    Whole,
    /// The header's bytes, then the plaintext from the position on (two ranged reads
    /// of a plain object): nothing to skip.
    Ranged,
}

/// Skips `n` bytes of `input`, reading them through its buffer.
pub(crate) fn skip<R: Read>(
    input: &mut std::io::BufReader<R>,
    mut n: u64,
) -> Result<(), FileError> {
    while n > 0 {
        let got = input.fill_buf()?.len();
        if got == 0 {
            return Err(FileError::Resume(format!(
                "the plaintext ends {n} bytes before the checkpoint's position"
            )));
        }
        let take = (got as u64).min(n) as usize;
        input.consume(take);
        n -= take as u64;
    }
    Ok(())
}

/// How rows are read: the CSV delimiter, and the largest row held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    pub delimiter: u8,
    /// A row (CSV record or JSON element) above this many bytes is not held: it fails
    /// with a reason and reading goes on (see [`crate::codec::limits`]).
    pub max_row_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            max_row_bytes: crate::codec::limits::DEFAULT_MAX_ROW_BYTES,
        }
    }
}

/// More fields than this in one CSV record is not a table row; the record is skipped
/// like an oversized one (its field offsets would otherwise grow without a bound).
pub const MAX_FIELDS: usize = 65_536;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::reader::RowReader;
    use crate::codec::reader::testing::*;

    #[test]
    fn row_error_display() {
        let e = RowError {
            row: 7,
            column: Some("age".into()),
            reason: "`abc` is not an integer".into(),
            raw: "x".into(),
        };
        assert_eq!(
            e.to_string(),
            "row 7, column `age`: `abc` is not an integer"
        );
    }

    #[test]
    fn row_default_and_reuse() {
        let row = Row::default();
        assert_eq!(
            (row.number(), row.get(0), row.raw(), row.len()),
            (0, None, String::new(), 0)
        );
        // The same Row across two files of different widths keeps no stale fields.
        let mut row = Row::default();
        let mut r = csv_reader(b"a,b,c\n1,2,3\n", b',');
        assert!(r.read_row(&mut row).unwrap());
        let mut r = csv_reader(b"a\n9\n", b',');
        assert!(r.read_row(&mut row).unwrap());
        assert_eq!((row.len(), row.get(0), row.get(1)), (1, Some("9"), None));
    }

    #[test]
    fn csv_raw_quotes_only_when_needed() {
        let mut r = csv_reader(b"a,b,c\n\"x\",\"1,2\",\"q\"\"\"\n", b',');
        let rows = drain(&mut r);
        assert_eq!(rows[0].2, "x,\"1,2\",\"q\"\"\"");
        let mut r = csv_reader(b"a\tb\n\"1,2\"\t\"x\ty\"\n", b'\t');
        assert_eq!(drain(&mut r)[0].2, "1,2\t\"x\ty\"");
    }
}
