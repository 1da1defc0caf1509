//! Streaming row readers for CSV and JSON, with constant memory: rows are read into
//! reused buffers, one at a time. A bad row is an error for that row only (the
//! caller records it and reads on); a file-level problem ends the file.

use std::collections::{HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::io::{BufRead, BufReader, Read};

use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{Classify, ErrorClass};

const BOM: &[u8] = b"\xEF\xBB\xBF";

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
        crate::limits::ROW_LIMIT_PARAMETER,
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
}

fn bad_header(column: &str, position: usize, reason: &str) -> String {
    if column.is_empty() {
        format!("the header's column {position} {reason}")
    } else {
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
    text: String,
    /// Field i's byte range in `text`, or None when absent (JSON null, missing key).
    spans: Vec<Option<(usize, usize)>>,
    raw: RawRow,
    /// For JSON: the element's bytes (swapped with the reader's buffer, not copied).
    raw_bytes: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy)]
enum RawRow {
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

    fn begin(&mut self, number: u64, raw: RawRow) {
        self.number = number;
        self.text.clear();
        self.spans.clear();
        self.raw = raw;
    }

    fn push(&mut self, value: &str) {
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

/// Reads rows one at a time into a caller's [`Row`].
pub trait RowReader {
    fn columns(&self) -> &[String];
    /// The next data row into `row`, reusing its buffers; `Ok(false)` at the end.
    /// `Err(ReadError::Row)` is a bad row (call again to go on); `Err(ReadError::File)`
    /// means the file cannot be read further. A file that ends with no data rows (good
    /// or bad) gives `FileError::ZeroDataRows`.
    fn read_row(&mut self, row: &mut Row) -> Result<bool, ReadError>;
}

/// How rows are read: the CSV delimiter, and the largest row held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    pub delimiter: u8,
    /// A row (CSV record or JSON element) above this many bytes is not held: it fails
    /// with a reason and reading goes on (see [`crate::limits`]).
    pub max_row_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            max_row_bytes: crate::limits::DEFAULT_MAX_ROW_BYTES,
        }
    }
}

/// More fields than this in one CSV record is not a table row; the record is skipped
/// like an oversized one (its field offsets would otherwise grow without a bound).
pub const MAX_FIELDS: usize = 65_536;

/// Drops a UTF-8 byte order mark at the start of a stream. It must go before the csv
/// parser sees it, or a quoted first header would not read as quoted.
struct SkipBom<R> {
    inner: R,
    head: [u8; 3],
    head_len: usize,
    head_pos: usize,
    checked: bool,
}

impl<R: Read> SkipBom<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            head: [0; 3],
            head_len: 0,
            head_pos: 0,
            checked: false,
        }
    }
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.checked {
            // Readers may return a byte at a time: gather up to three first.
            while self.head_len < 3 {
                match self.inner.read(&mut self.head[self.head_len..]) {
                    Ok(0) => break,
                    Ok(n) => self.head_len += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.checked = true;
            if self.head[..self.head_len] == *BOM {
                self.head_len = 0;
            }
        }
        if self.head_pos < self.head_len {
            let n = (self.head_len - self.head_pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.head_pos..self.head_pos + n]);
            self.head_pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// One record as `csv_core` cut it, in buffers reused from record to record. Only the
/// first `max_row_bytes` of field data and [`MAX_FIELDS`] field ends are kept: the
/// rest of an oversized record streams through `scratch` and is dropped, so memory
/// stays bounded whatever the input (an endless line, a stray quote).
#[derive(Debug, Default)]
struct Record {
    /// Field data in `buf[..len]`; the buffer only grows (no clearing per record).
    buf: Vec<u8>,
    len: usize,
    /// Field ends in `bounds[..nfields]`.
    bounds: Vec<usize>,
    nfields: usize,
    /// The record's bytes in the file (quotes and delimiters included).
    raw_bytes: u64,
    /// It did not fit: only a prefix was kept.
    oversized: bool,
    /// The file ended inside a quoted field of this record.
    unclosed_quote: bool,
    /// Physical lines (1-based) where the record starts and ends.
    first_line: u64,
    last_line: u64,
}

impl Record {
    fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn ends(&self) -> &[usize] {
        &self.bounds[..self.nfields]
    }

    fn field(&self, i: usize) -> Option<&[u8]> {
        let ends = self.ends();
        let end = *ends.get(i)?;
        let start = if i == 0 { 0 } else { ends[i - 1] };
        self.data().get(start..end)
    }

    fn fields(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.nfields).filter_map(|i| self.field(i))
    }
}

/// CSV with a header row, parsed with `csv_core` into bounded buffers.
pub struct CsvRowReader<R: Read> {
    input: BufReader<SkipBom<R>>,
    core: csv_core::Reader,
    record: Record,
    /// Where the parts of an oversized record go.
    scratch: Vec<u8>,
    scratch_ends: Vec<usize>,
    max_row_bytes: usize,
    columns: Vec<String>,
    delimiter: u8,
    /// The spreadsheet number of the last record read (the header is 1).
    number: u64,
    /// Data rows handed out, good or bad.
    yielded: u64,
    /// A file error to give after the row that caused it.
    pending: Option<FileError>,
    /// The end-of-input line break went in (see `read_record`).
    eof_probed: bool,
    /// The last record ended with `\r` (its `\n` may follow).
    prev_cr: bool,
    /// The last byte of the file read so far was `\n`.
    after_nl: bool,
    /// The file's last line, once its end is reached.
    last_line: u64,
    done: bool,
}

impl<R: Read> CsvRowReader<R> {
    /// Reads and checks the header. An empty file is `FileError::ZeroDataRows`.
    pub fn new(read: R, options: &ReadOptions) -> Result<Self, FileError> {
        let core = csv_core::ReaderBuilder::new()
            .delimiter(options.delimiter)
            .build();
        let max_row_bytes = options.max_row_bytes.max(1);
        let mut me = Self {
            input: BufReader::with_capacity(256 * 1024, SkipBom::new(read)),
            core,
            record: Record::default(),
            scratch: vec![0; 64 * 1024],
            scratch_ends: vec![0; 1024],
            max_row_bytes,
            columns: Vec::new(),
            delimiter: options.delimiter,
            number: 1,
            yielded: 0,
            pending: None,
            eof_probed: false,
            prev_cr: false,
            after_nl: false,
            last_line: 0,
            done: false,
        };
        // Blank lines before the header are skipped by the parser itself.
        if !me.read_record()? {
            return Err(FileError::ZeroDataRows);
        }
        if me.record.oversized || me.record.unclosed_quote {
            return Err(FileError::HeaderTooLarge {
                limit: max_row_bytes,
                unclosed_quote: me.record.unclosed_quote,
            });
        }
        let mut columns: Vec<String> = Vec::with_capacity(me.record.nfields);
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(me.record.nfields);
        for (i, field) in me.record.fields().enumerate() {
            let name = std::str::from_utf8(field)
                .map_err(|_| FileError::NotUtf8Header)?
                .trim();
            if name.is_empty() {
                return Err(FileError::BadHeader {
                    column: String::new(),
                    position: i + 1,
                    reason: "has no name; name every column".into(),
                });
            }
            if let Some(first) = seen.insert(name, i) {
                return Err(FileError::BadHeader {
                    column: name.to_string(),
                    position: i + 1,
                    reason: format!("repeats column {}; column names must be unique", first + 1),
                });
            }
            columns.push(name.to_string());
        }
        me.columns = columns;
        Ok(me)
    }

    /// Reads one record (blank lines are skipped by the parser) into `self.record`;
    /// false at the end of the file.
    fn read_record(&mut self) -> Result<bool, FileError> {
        use csv_core::ReadRecordResult as R;
        let rec = &mut self.record;
        rec.len = 0;
        rec.nfields = 0;
        rec.raw_bytes = 0;
        rec.oversized = false;
        rec.unclosed_quote = false;
        // csv_core counts lines from 1; after a record ended by `\r` its `\n` is still
        // to come, and belongs to the line before.
        rec.first_line = self.core.line();
        if self.prev_cr && self.input.fill_buf()?.first() == Some(&b'\n') {
            rec.first_line += 1;
        }
        let (mut out_len, mut ends_len) = (0usize, 0usize);
        loop {
            let mut input = self.input.fill_buf()?;
            // At the end of the input, one line break goes in first: csv_core ends a
            // record silently at the end even inside quotes, but a line break shows
            // where it is. Inside a quoted field it is copied out as data (the record
            // goes on); anywhere else it ends the record or is skipped as blank.
            let probe = input.is_empty() && !self.eof_probed;
            if probe {
                self.eof_probed = true;
                // The file's last line, for a record the end of the file cut off.
                self.last_line = self.core.line() - u64::from(self.after_nl);
                input = b"\n";
            }
            let (res, nin, nout, nend) = if rec.oversized {
                self.core
                    .read_record(input, &mut self.scratch, &mut self.scratch_ends)
            } else {
                // One byte past the limit, so a row of exactly the limit fits.
                if out_len == rec.buf.len() {
                    let grown = (rec.buf.len() * 2).max(1024).min(self.max_row_bytes + 1);
                    rec.buf.resize(grown, 0);
                }
                if ends_len == rec.bounds.len() {
                    let grown = (rec.bounds.len() * 2).clamp(64, MAX_FIELDS);
                    rec.bounds.resize(grown, 0);
                }
                self.core
                    .read_record(input, &mut rec.buf[out_len..], &mut rec.bounds[ends_len..])
            };
            let ended_nl = nin > 0 && input.get(nin - 1) == Some(&b'\n');
            let in_quotes = probe && res == R::InputEmpty && nout == 1;
            if probe {
                rec.unclosed_quote |= in_quotes;
            } else if nin > 0 {
                self.after_nl = ended_nl;
                self.input.consume(nin);
                rec.raw_bytes += nin as u64;
            }
            // The probe's line break is no data of the file.
            if !rec.oversized && !in_quotes {
                out_len += nout;
                ends_len += nend;
            }
            match res {
                R::InputEmpty => {}
                R::OutputFull | R::OutputEndsFull => {
                    let full = if matches!(res, R::OutputFull) {
                        out_len > self.max_row_bytes
                    } else {
                        ends_len >= MAX_FIELDS
                    };
                    if full && !rec.oversized {
                        // Keep what fits (for the report) and drop the rest as it streams.
                        rec.oversized = true;
                        rec.len = out_len.min(self.max_row_bytes);
                        rec.nfields = ends_len;
                    }
                }
                R::Record => {
                    if !rec.oversized {
                        rec.len = out_len;
                        rec.nfields = ends_len;
                        if rec.unclosed_quote {
                            // csv_core counted the probe's line break into the last
                            // field's end; the data left it out.
                            for end in &mut rec.bounds[..ends_len] {
                                *end = (*end).min(out_len);
                            }
                        }
                    } else if rec.ends().last().is_none_or(|&e| e < rec.len) {
                        // The kept prefix ends inside a field: show it as one.
                        if rec.nfields == rec.bounds.len() {
                            rec.bounds.push(rec.len);
                        } else {
                            rec.bounds[rec.nfields] = rec.len;
                        }
                        rec.nfields += 1;
                    }
                    self.prev_cr = nin > 0 && !ended_nl;
                    rec.last_line = if rec.unclosed_quote {
                        self.last_line
                    } else {
                        self.core.line() - u64::from(ended_nl)
                    }
                    .max(rec.first_line);
                    return Ok(true);
                }
                R::End => return Ok(false),
            }
        }
    }

    /// Reads the next record that is not entirely blank.
    fn next_record(&mut self) -> Result<bool, FileError> {
        loop {
            if !self.read_record()? {
                return Ok(false);
            }
            self.number += 1;
            // Blank lines never reach here (the parser skips them); a record of only
            // empty or space fields (`,,,`) is a spreadsheet's empty row: skip it too.
            let r = &self.record;
            if !r.oversized && !r.unclosed_quote && r.fields().all(|f| f.trim_ascii().is_empty()) {
                continue;
            }
            return Ok(true);
        }
    }

    fn row_error(&self, row: &Row, column: Option<usize>, reason: String) -> ReadError {
        ReadError::Row(RowError {
            row: self.number,
            column: column.and_then(|i| self.columns.get(i).cloned()),
            reason,
            raw: row.raw(),
        })
    }
}

impl<R: Read> RowReader for CsvRowReader<R> {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn read_row(&mut self, row: &mut Row) -> Result<bool, ReadError> {
        if let Some(e) = self.pending.take() {
            return Err(e.into());
        }
        if self.done {
            return Ok(false);
        }
        if !self.next_record()? {
            self.done = true;
            return match self.yielded {
                0 => Err(FileError::ZeroDataRows.into()),
                _ => Ok(false),
            };
        }
        self.yielded += 1;
        row.begin(self.number, RawRow::Csv(self.delimiter));
        let record = &self.record;
        // Fast path: the whole record is valid UTF-8, so copy it once and slice it by
        // the record's own field bounds.
        let bad_field = match std::str::from_utf8(record.data()) {
            Ok(all) => {
                row.text.push_str(all);
                let mut start = 0;
                for &end in record.ends() {
                    row.spans.push(Some((start, end)));
                    start = end;
                }
                None
            }
            Err(_) => {
                let mut bad = None;
                for (i, field) in record.fields().enumerate() {
                    if std::str::from_utf8(field).is_err() && bad.is_none() {
                        bad = Some(i);
                    }
                    row.push(&String::from_utf8_lossy(field));
                }
                bad
            }
        };
        if record.unclosed_quote {
            let lines = record.last_line.saturating_sub(record.first_line);
            self.done = true;
            self.pending = Some(FileError::UnclosedQuote {
                row: self.number,
                line: record.first_line,
                lines,
            });
            let reason = format!(
                "a quoted field that starts on line {} is never closed: the file ends inside it, so the {lines} line(s) after that line were read into this row and not imported; fix the stray `\"` and upload the file again",
                record.first_line
            );
            return Err(self.row_error(row, None, reason));
        }
        if record.oversized {
            let reason = format!(
                "the row is larger than {} bytes ({} bytes, lines {}-{}), the most one row may hold ({}); it was skipped",
                self.max_row_bytes,
                record.raw_bytes,
                record.first_line,
                record.last_line,
                crate::limits::ROW_LIMIT_PARAMETER
            );
            return Err(self.row_error(row, None, reason));
        }
        if record.nfields != self.columns.len() {
            let span = if record.last_line > record.first_line {
                format!(
                    " (it spans lines {}-{}: is a quote left open?)",
                    record.first_line, record.last_line
                )
            } else {
                String::new()
            };
            let reason = format!(
                "row {} has {} fields, the header has {}{span}",
                self.number,
                record.nfields,
                self.columns.len()
            );
            return Err(self.row_error(row, None, reason));
        }
        if let Some(i) = bad_field {
            let reason = "the value is not UTF-8 text; save the file as UTF-8".to_string();
            return Err(self.row_error(row, Some(i), reason));
        }
        Ok(true)
    }
}

/// Where each wanted JSON key goes: top-level keys, and `parent.child` paths by parent.
#[derive(Debug, Default)]
struct ColumnIndex {
    top: HashMap<String, Entry>,
}

#[derive(Debug, Default)]
struct Entry {
    /// Columns named exactly this key (several when a column is listed twice).
    slots: Vec<usize>,
    /// Columns under this key, by child key.
    nested: Option<HashMap<String, Vec<usize>>>,
}

impl ColumnIndex {
    fn new(columns: &[String]) -> Self {
        let mut top: HashMap<String, Entry> = HashMap::new();
        for (i, c) in columns.iter().enumerate() {
            // A literal key `a.b` and a nested `{"a": {"b": ..}}` both fill `a.b`.
            top.entry(c.clone()).or_default().slots.push(i);
            if let Some((parent, child)) = c.split_once('.') {
                top.entry(parent.to_string())
                    .or_default()
                    .nested
                    .get_or_insert_with(HashMap::new)
                    .entry(child.to_string())
                    .or_default()
                    .push(i);
            }
        }
        Self { top }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonShape {
    /// One object per line.
    Lines,
    /// `[` seen; elements are cut out one by one.
    Array(ArrayState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    /// Expecting the first element or `]`.
    Start,
    /// Expecting `,` or `]`.
    AfterElement,
    /// Expecting an element (a trailing `,` before `]` is tolerated).
    AfterComma,
    /// `]` seen.
    Closed,
}

/// JSON: one object per line (NDJSON) or one top-level array of objects, streamed
/// element by element.
pub struct JsonRowReader<R: Read> {
    inner: BufReader<R>,
    columns: Vec<String>,
    index: ColumnIndex,
    shape: JsonShape,
    /// The current element's bytes; swapped into the row so both buffers are reused.
    buf: Vec<u8>,
    /// Elements read ahead while looking for the first object (columns from data).
    pending: VecDeque<Vec<u8>>,
    /// Elements handed out, good or bad: the row number.
    rows: u64,
    /// Bytes consumed, for messages about malformed arrays.
    offset: u64,
    /// The largest element kept; the rest of a bigger one is skipped as it streams.
    max_row_bytes: usize,
    /// The current element's full size in bytes (it may exceed what `buf` kept).
    element_bytes: u64,
    done: bool,
}

/// How many elements to read ahead looking for an object to take columns from (also
/// capped at the row limit in total, so memory stays bounded).
const MAX_LOOKAHEAD: usize = 100;

impl<R: Read> JsonRowReader<R> {
    /// `columns`: the dot paths to read; `None` takes them from the first object, in
    /// its key order (for previews). An empty input is `FileError::ZeroDataRows`.
    pub fn new(
        read: R,
        columns: Option<Vec<String>>,
        options: &ReadOptions,
    ) -> Result<Self, FileError> {
        let mut inner = BufReader::with_capacity(256 * 1024, read);
        let mut offset = 0u64;
        // The BOM check needs three bytes even from a reader that yields one at a time.
        let mut head = Vec::with_capacity(3);
        while head.len() < 3 {
            let chunk = inner.fill_buf()?;
            let Some(&b) = chunk.first() else { break };
            if b != BOM[head.len()] {
                break;
            }
            head.push(b);
            inner.consume(1);
        }
        let shape = if head == BOM {
            offset += 3;
            skip_ws(&mut inner, &mut offset)?
        } else if head.is_empty() {
            skip_ws(&mut inner, &mut offset)?
        } else {
            // Part of a BOM and then something else: not JSON we can stream.
            return Err(FileError::Json(
                "the file starts with bytes that are not JSON".into(),
            ));
        };
        let shape = match shape {
            None => return Err(FileError::ZeroDataRows),
            Some(b'[') => {
                inner.consume(1);
                offset += 1;
                JsonShape::Array(ArrayState::Start)
            }
            Some(_) => JsonShape::Lines,
        };
        let mut me = Self {
            inner,
            columns: Vec::new(),
            index: ColumnIndex::default(),
            shape,
            buf: Vec::new(),
            pending: VecDeque::new(),
            rows: 0,
            offset,
            max_row_bytes: options.max_row_bytes.max(1),
            element_bytes: 0,
            done: false,
        };
        let columns = match columns {
            Some(c) => c,
            None => me.discover_columns()?,
        };
        me.index = ColumnIndex::new(&columns);
        me.columns = columns;
        Ok(me)
    }

    /// Reads ahead to the first object and lists its dot paths; what was read ahead is
    /// handed out as rows later, in order.
    fn discover_columns(&mut self) -> Result<Vec<String>, FileError> {
        let mut held = 0usize;
        while self.pending.len() < MAX_LOOKAHEAD && held < self.max_row_bytes {
            let row = self.rows + self.pending.len() as u64 + 1;
            let mut buf = Vec::new();
            if !self.next_element(&mut buf, row)? {
                break;
            }
            if self.element_bytes > self.max_row_bytes as u64 {
                // An oversized element is no sample; it is skipped when read again.
                return Err(FileError::Json(format!(
                    "row {row} is larger than {} bytes ({}) before any object to take columns from",
                    self.max_row_bytes,
                    crate::limits::ROW_LIMIT_PARAMETER
                )));
            }
            let mut paths = Vec::new();
            let mut de = serde_json::Deserializer::from_slice(&buf);
            let found = PathsSeed { out: &mut paths }
                .deserialize(&mut de)
                .and_then(|()| de.end())
                .is_ok();
            held += buf.len();
            self.pending.push_back(buf);
            if found {
                return Ok(paths);
            }
        }
        Ok(Vec::new())
    }

    /// Cuts the next element (a non-blank line, or an array element) into `out`.
    /// `row` is the number it will get, for messages.
    fn next_element(&mut self, out: &mut Vec<u8>, row: u64) -> Result<bool, FileError> {
        out.clear();
        self.element_bytes = 0;
        match self.shape {
            JsonShape::Lines => self.next_line(out),
            JsonShape::Array(_) => self.next_array_element(out, row),
        }
    }

    fn next_line(&mut self, out: &mut Vec<u8>) -> Result<bool, FileError> {
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                // The last line may lack its newline.
                return Ok(!out.trim_ascii().is_empty());
            }
            let (take, eol) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            keep(out, &chunk[..take], self.max_row_bytes);
            self.element_bytes += take as u64;
            self.inner.consume(take);
            self.offset += take as u64;
            if eol {
                if self.element_bytes <= self.max_row_bytes as u64 && out.trim_ascii().is_empty() {
                    self.element_bytes = 0;
                    out.clear();
                    continue;
                }
                return Ok(true);
            }
        }
    }

    fn next_array_element(&mut self, out: &mut Vec<u8>, row: u64) -> Result<bool, FileError> {
        let JsonShape::Array(mut state) = self.shape else {
            return Ok(false);
        };
        // Between elements: whitespace, one `,`, or the closing `]`.
        loop {
            if state == ArrayState::Closed {
                self.shape = JsonShape::Array(state);
                return match skip_ws(&mut self.inner, &mut self.offset)? {
                    None => Ok(false),
                    Some(b) => Err(FileError::Json(format!(
                        "unexpected `{}` after the closing `]` at byte {}",
                        char::from(b),
                        self.offset
                    ))),
                };
            }
            let Some(b) = skip_ws(&mut self.inner, &mut self.offset)? else {
                return Err(FileError::Json(
                    "the file ends before the array's closing `]`".into(),
                ));
            };
            match (state, b) {
                (_, b']') => state = ArrayState::Closed,
                (ArrayState::AfterElement, b',') => state = ArrayState::AfterComma,
                (ArrayState::AfterElement, other) => {
                    return Err(FileError::Json(format!(
                        "expected `,` or `]` after row {} at byte {}, found `{}`",
                        row - 1,
                        self.offset,
                        char::from(other)
                    )));
                }
                (_, b',') => {
                    return Err(FileError::Json(format!(
                        "unexpected `,` at byte {}",
                        self.offset
                    )));
                }
                _ => break,
            }
            self.inner.consume(1);
            self.offset += 1;
        }
        // One element: a string, an object or array (to its matching close, tracking
        // strings and escapes), or a bare scalar (to the next `,`, `]` or space).
        let (mut depth, mut in_string, mut escaped) = (0u32, false, false);
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Err(FileError::Json(format!(
                    "the file ends inside row {row} of the array"
                )));
            }
            let mut used = 0;
            let mut finished = false;
            for &b in chunk {
                if in_string {
                    used += 1;
                    match (escaped, b) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => {
                            in_string = false;
                            finished = depth == 0;
                        }
                        _ => {}
                    }
                } else {
                    match b {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' if depth > 0 => {
                            depth -= 1;
                            finished = depth == 0;
                        }
                        // A bare scalar ends before these; they are not part of it.
                        b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n' if depth == 0 => {
                            finished = true;
                            if used == 0 && out.is_empty() {
                                return Err(FileError::Json(format!(
                                    "unexpected `{}` at byte {}",
                                    char::from(b),
                                    self.offset
                                )));
                            }
                            break;
                        }
                        _ => {}
                    }
                    used += 1;
                }
                if finished {
                    break;
                }
            }
            keep(out, &chunk[..used], self.max_row_bytes);
            self.element_bytes += used as u64;
            self.inner.consume(used);
            self.offset += used as u64;
            if finished {
                self.shape = JsonShape::Array(ArrayState::AfterElement);
                return Ok(true);
            }
        }
    }

    /// Parses `self.buf` into `row`, or says why it is not a row.
    fn fill(&self, row: &mut Row) -> Result<(), String> {
        row.spans.resize(self.columns.len(), None);
        let mut de = serde_json::Deserializer::from_slice(&self.buf);
        let seed = RowSeed {
            index: &self.index,
            out: Out {
                text: &mut row.text,
                spans: &mut row.spans,
            },
        };
        seed.deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => format!("the row is not a JSON object ({e})"),
                _ => format!("the row is not valid JSON ({e})"),
            })
    }
}

/// Appends to `out` only what fits under `max`: an oversized element streams past.
fn keep(out: &mut Vec<u8>, bytes: &[u8], max: usize) {
    let room = max.saturating_sub(out.len());
    out.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Skips whitespace and returns the next byte without consuming it.
fn skip_ws<R: Read>(r: &mut BufReader<R>, offset: &mut u64) -> Result<Option<u8>, FileError> {
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(None);
        }
        let n = chunk.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if n < chunk.len() {
            let b = chunk[n];
            r.consume(n);
            *offset += n as u64;
            return Ok(Some(b));
        }
        let len = chunk.len();
        r.consume(len);
        *offset += len as u64;
    }
}

impl<R: Read> RowReader for JsonRowReader<R> {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn read_row(&mut self, row: &mut Row) -> Result<bool, ReadError> {
        if self.done {
            return Ok(false);
        }
        let got = match self.pending.pop_front() {
            Some(b) => {
                self.buf = b;
                true
            }
            None => {
                let mut buf = std::mem::take(&mut self.buf);
                let got = self.next_element(&mut buf, self.rows + 1);
                self.buf = buf;
                got?
            }
        };
        if !got {
            self.done = true;
            return match self.rows {
                0 => Err(FileError::ZeroDataRows.into()),
                _ => Ok(false),
            };
        }
        self.rows += 1;
        row.begin(self.rows, RawRow::Json);
        let result = if self.element_bytes > self.max_row_bytes as u64 {
            Err(format!(
                "the row is larger than {} bytes ({} bytes), the most one row may hold ({}); it was skipped",
                self.max_row_bytes,
                self.element_bytes,
                crate::limits::ROW_LIMIT_PARAMETER
            ))
        } else {
            self.fill(row)
        };
        // The row keeps the element's text for the report; its old buffer is reused.
        std::mem::swap(&mut self.buf, &mut row.raw_bytes);
        match result {
            Ok(()) => Ok(true),
            Err(reason) => {
                row.text.clear();
                row.spans.clear();
                Err(ReadError::Row(RowError {
                    row: self.rows,
                    column: None,
                    reason,
                    raw: row.raw(),
                }))
            }
        }
    }
}

/// Where cell text goes while an object is walked.
struct Out<'r> {
    text: &'r mut String,
    spans: &'r mut [Option<(usize, usize)>],
}

impl Out<'_> {
    fn reborrow(&mut self) -> Out<'_> {
        Out {
            text: &mut *self.text,
            spans: &mut *self.spans,
        }
    }

    /// Marks the text written since `start` as the value of `slots`.
    fn set(&mut self, slots: &[usize], start: usize) {
        let end = self.text.len();
        for &i in slots {
            if let Some(s) = self.spans.get_mut(i) {
                *s = Some((start, end));
            }
        }
    }
}

/// The top-level object: routes each wanted key to its cell, skips the rest.
struct RowSeed<'a, 'r> {
    index: &'a ColumnIndex,
    out: Out<'r>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let top = &self.index.top;
        while let Some(entry) = map.next_key_seed(KeySeed(top))? {
            match entry {
                Some(e) => map.next_value_seed(CellSeed {
                    slots: &e.slots,
                    nested: e.nested.as_ref(),
                    out: self.out.reborrow(),
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Looks a key up without allocating it (borrowed or transient, serde gives a `&str`).
struct KeySeed<'a, V>(&'a HashMap<String, V>);

impl<'de, 'a, V> DeserializeSeed<'de> for KeySeed<'a, V> {
    type Value = Option<&'a V>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'a, V> Visitor<'de> for KeySeed<'a, V> {
    type Value = Option<&'a V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.get(key))
    }
}

/// One wanted value: its text goes to `slots`; an object with wanted children is
/// walked one level further.
struct CellSeed<'a, 'r> {
    slots: &'a [usize],
    nested: Option<&'a HashMap<String, Vec<usize>>>,
    out: Out<'r>,
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl CellSeed<'_, '_> {
    fn write(mut self, f: impl FnOnce(&mut String)) {
        if self.slots.is_empty() {
            return;
        }
        let start = self.out.text.len();
        f(self.out.text);
        self.out.set(self.slots, start);
    }
}

impl<'de> Visitor<'de> for CellSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.write(|t| t.push_str(if v { "true" } else { "false" }));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.write(|t| {
            let _ = write!(t, "{v}");
        });
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.write(|t| {
            let _ = write!(t, "{v}");
        });
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // Shortest text that reads back as the same number (`1.5`, `0.1`).
        self.write(|t| {
            let _ = write!(t, "{v}");
        });
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        // An empty string is absent, like null.
        if !v.is_empty() {
            self.write(|t| t.push_str(v));
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if self.slots.is_empty() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        // `[a|b|c]`: MoEngage's array form, which list attributes parse.
        let start = self.out.text.len();
        self.out.text.push('[');
        let mut first = true;
        loop {
            if !first {
                self.out.text.push('|');
            }
            if seq
                .next_element_seed(ItemSeed {
                    text: &mut *self.out.text,
                })?
                .is_none()
            {
                if !first {
                    self.out.text.pop();
                }
                break;
            }
            first = false;
        }
        self.out.text.push(']');
        self.out.set(self.slots, start);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        if let Some(nested) = self.nested {
            while let Some(slots) = map.next_key_seed(KeySeed(nested))? {
                match slots {
                    Some(slots) => map.next_value_seed(CellSeed {
                        slots,
                        nested: None,
                        out: self.out.reborrow(),
                    })?,
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            return Ok(());
        }
        // A wanted object deeper than two levels: its JSON text.
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.write(|t| {
            let _ = write!(t, "{v}");
        });
        Ok(())
    }
}

/// One array item inside `[a|b|c]`: strings as they are, scalars as JSON, null as
/// nothing, nested arrays and objects as JSON text.
struct ItemSeed<'r> {
    text: &'r mut String,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.text.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        let _ = write!(self.text, "{v}");
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let _ = write!(self.text, "{v}");
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let _ = write!(self.text, "{v}");
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.text.push_str(v);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        let _ = write!(self.text, "{v}");
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        let _ = write!(self.text, "{v}");
        Ok(())
    }
}

/// Lists an object's dot paths in key order: `key` for a value, `key.child` for each
/// key of a nested object (two levels deep).
struct PathsSeed<'o> {
    out: &'o mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for PathsSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PathsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let children = map.next_value_seed(ChildKeys)?;
            let paths: Vec<String> = match children {
                Some(keys) => keys.into_iter().map(|k| format!("{key}.{k}")).collect(),
                None => vec![key],
            };
            for p in paths {
                // Duplicate keys in one object name one column.
                if !self.out.contains(&p) {
                    self.out.push(p);
                }
            }
        }
        Ok(())
    }
}

/// A value's keys when it is an object, else None.
struct ChildKeys;

impl<'de> DeserializeSeed<'de> for ChildKeys {
    type Value = Option<Vec<String>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ChildKeys {
    type Value = Option<Vec<String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            keys.push(k);
        }
        // An empty object still names a column, so the preview shows it.
        Ok((!keys.is_empty()).then_some(keys))
    }
}

/// A reader for the file type: JSON when `json`, CSV otherwise. `columns` applies to
/// JSON only (CSV columns come from its header).
pub fn open_reader<'a, R: Read + 'a>(
    json: bool,
    read: R,
    options: &ReadOptions,
    columns: Option<Vec<String>>,
) -> Result<Box<dyn RowReader + 'a>, FileError> {
    if json {
        Ok(Box::new(JsonRowReader::new(read, columns, options)?))
    } else {
        Ok(Box::new(CsvRowReader::new(read, options)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out one byte per read, to prove nothing assumes whole chunks.
    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.is_empty()) {
                (Some((&b, rest)), false) => {
                    buf[0] = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    /// Fails with `kind` after `ok` bytes.
    struct Failing {
        data: Vec<u8>,
        pos: usize,
        kind: std::io::ErrorKind,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.pos >= self.data.len() {
                return Err(std::io::Error::new(self.kind, "boom"));
            }
            let n = buf.len().min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    /// Each outcome of reading to the end: `Ok(fields)` or `Err(message)`, with the row
    /// number and raw text.
    type Outcome = (u64, Result<Vec<Option<String>>, String>, String);

    fn drain(r: &mut dyn RowReader) -> Vec<Outcome> {
        let mut row = Row::default();
        let mut out = Vec::new();
        loop {
            match r.read_row(&mut row) {
                Ok(true) => out.push((
                    row.number(),
                    Ok((0..r.columns().len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect()),
                    row.raw(),
                )),
                Ok(false) => break,
                Err(ReadError::Row(e)) => out.push((e.row, Err(e.to_string()), e.raw)),
                Err(ReadError::File(e)) => panic!("file error: {e}"),
            }
        }
        // Once at the end, always at the end.
        assert!(matches!(r.read_row(&mut row), Ok(false)));
        out
    }

    fn csv_reader(data: &[u8], delimiter: u8) -> CsvRowReader<&[u8]> {
        CsvRowReader::new(
            data,
            &ReadOptions {
                delimiter,
                ..Default::default()
            },
        )
        .unwrap()
    }

    fn fields(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn csv_basic_rows_and_numbers() {
        let mut r = csv_reader(b"id,name, age \n1,Ada,36\n2,Grace,45\n", b',');
        assert_eq!(r.columns(), ["id", "name", "age"]);
        let rows = drain(&mut r);
        assert_eq!(
            rows,
            vec![
                (2, Ok(fields(&["1", "Ada", "36"])), "1,Ada,36".to_string()),
                (
                    3,
                    Ok(fields(&["2", "Grace", "45"])),
                    "2,Grace,45".to_string()
                ),
            ]
        );
    }

    #[test]
    fn csv_bom_crlf_and_quoting() {
        let data = b"\xEF\xBB\xBF\"id\",\"note\"\r\n1,\"a, b\"\r\n2,\"say \"\"hi\"\"\"\r\n3,\"two\r\nlines\"\r\n4,last";
        let mut r = csv_reader(data, b',');
        assert_eq!(r.columns(), ["id", "note"]);
        let rows = drain(&mut r);
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[0],
            (2, Ok(fields(&["1", "a, b"])), "1,\"a, b\"".into())
        );
        assert_eq!(
            rows[1],
            (
                3,
                Ok(fields(&["2", "say \"hi\""])),
                "2,\"say \"\"hi\"\"\"".into()
            )
        );
        // A quoted line break is one record: the next row is still numbered by records.
        assert_eq!(
            rows[2],
            (
                4,
                Ok(fields(&["3", "two\r\nlines"])),
                "3,\"two\r\nlines\"".into()
            )
        );
        assert_eq!(rows[3], (5, Ok(fields(&["4", "last"])), "4,last".into()));
    }

    #[test]
    fn csv_bom_read_one_byte_at_a_time() {
        let data = b"\xEF\xBB\xBF\"a\";b\n1;2\n";
        let mut r = CsvRowReader::new(
            OneByte(data),
            &ReadOptions {
                delimiter: b';',
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.columns(), ["a", "b"]);
        assert_eq!(
            drain(&mut r),
            vec![(2, Ok(fields(&["1", "2"])), "1;2".into())]
        );
    }

    #[test]
    fn csv_tab_and_semicolon_delimiters() {
        let mut r = csv_reader(b"a\tb\n1\tx,y\n", b'\t');
        assert_eq!(r.columns(), ["a", "b"]);
        assert_eq!(
            drain(&mut r),
            vec![(2, Ok(fields(&["1", "x,y"])), "1\tx,y".into())]
        );

        let mut r = csv_reader(b"a;b\n1;\"x;y\"\n2,5;z\n", b';');
        assert_eq!(
            drain(&mut r),
            vec![
                (2, Ok(fields(&["1", "x;y"])), "1;\"x;y\"".into()),
                (3, Ok(fields(&["2,5", "z"])), "2,5;z".into()),
            ]
        );
    }

    #[test]
    fn csv_ragged_rows_are_row_errors() {
        let mut r = csv_reader(b"a,b,c,d\n1,2,3,4\n1,2,3\n5,6,7,8\n1,2,3,4,5\n", b',');
        let rows = drain(&mut r);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].1, Ok(fields(&["1", "2", "3", "4"])));
        assert_eq!(
            rows[1],
            (
                3,
                Err("row 3: row 3 has 3 fields, the header has 4".into()),
                "1,2,3".into()
            )
        );
        assert_eq!(
            rows[2],
            (4, Ok(fields(&["5", "6", "7", "8"])), "5,6,7,8".into())
        );
        assert_eq!(
            rows[3],
            (
                5,
                Err("row 5: row 5 has 5 fields, the header has 4".into()),
                "1,2,3,4,5".into()
            )
        );
    }

    #[test]
    fn csv_invalid_utf8_field_is_a_row_error_and_reading_goes_on() {
        let mut r = csv_reader(b"id,name\n1,Ada\n2,Gr\xFFce\n3,Linus\n", b',');
        let mut row = Row::default();
        assert!(r.read_row(&mut row).unwrap());
        let e = match r.read_row(&mut row) {
            Err(ReadError::Row(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(e.row, 3);
        assert_eq!(e.column.as_deref(), Some("name"));
        assert_eq!(
            e.to_string(),
            "row 3, column `name`: the value is not UTF-8 text; save the file as UTF-8"
        );
        assert_eq!(e.raw, "2,Gr\u{FFFD}ce");
        assert!(r.read_row(&mut row).unwrap());
        assert_eq!((row.number(), row.get(1)), (4, Some("Linus")));
        assert!(!r.read_row(&mut row).unwrap());
    }

    #[test]
    fn csv_blank_lines_and_empty_rows_are_skipped() {
        let mut r = csv_reader(b"\n\na,b\n\n1,2\n\r\n,\n  ,  \n3,4\n\n", b',');
        assert_eq!(r.columns(), ["a", "b"]);
        let rows = drain(&mut r);
        // Blank lines are not records; `,` and `  ,  ` are (numbers 3 and 4) but empty.
        assert_eq!(
            rows,
            vec![
                (2, Ok(fields(&["1", "2"])), "1,2".into()),
                (5, Ok(fields(&["3", "4"])), "3,4".into()),
            ]
        );
    }

    #[test]
    fn csv_values_are_not_trimmed_but_header_is() {
        let mut r = csv_reader(b" a , b\n x ,\n", b',');
        assert_eq!(r.columns(), ["a", "b"]);
        assert_eq!(
            drain(&mut r),
            vec![(2, Ok(fields(&[" x ", ""])), " x ,".into())]
        );
    }

    #[test]
    fn csv_zero_data_rows() {
        for data in [
            &b""[..],
            b"\n\n",
            b"a,b\n",
            b"a,b",
            b"\xEF\xBB\xBF",
            b"a,b\n\n,\n",
        ] {
            let mut row = Row::default();
            let err = match CsvRowReader::new(data, &ReadOptions::default()) {
                Err(e) => e,
                Ok(mut r) => match r.read_row(&mut row) {
                    Err(ReadError::File(e)) => {
                        assert!(matches!(r.read_row(&mut row), Ok(false)));
                        e
                    }
                    other => panic!("{data:?}: {other:?}"),
                },
            };
            assert!(matches!(err, FileError::ZeroDataRows), "{data:?}");
            assert_eq!(err.to_string(), "Found zero data rows in the file");
        }
    }

    #[test]
    fn csv_only_bad_rows_is_not_zero_rows() {
        let mut r = csv_reader(b"a,b\n1\n", b',');
        let rows = drain(&mut r);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].1.is_err());
    }

    #[test]
    fn csv_bad_headers() {
        let e = CsvRowReader::new(&b"id,,name\n1,2,3\n"[..], &ReadOptions::default())
            .err()
            .unwrap();
        assert!(matches!(&e, FileError::BadHeader { position: 2, .. }));
        assert_eq!(
            e.to_string(),
            "the header's column 2 has no name; name every column"
        );

        let e = CsvRowReader::new(&b"id,name, id \n"[..], &ReadOptions::default())
            .err()
            .unwrap();
        match &e {
            FileError::BadHeader {
                column, position, ..
            } => assert_eq!((column.as_str(), *position), ("id", 3)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            e.to_string(),
            "the header's column 3 `id` repeats column 1; column names must be unique"
        );

        let e = CsvRowReader::new(&b"id,n\xFFme\n1,2\n"[..], &ReadOptions::default())
            .err()
            .unwrap();
        assert!(matches!(e, FileError::NotUtf8Header));
        assert_eq!(e.class(), ErrorClass::Permanent);
    }

    fn capped(data: &[u8], max_row_bytes: usize) -> CsvRowReader<&[u8]> {
        CsvRowReader::new(
            data,
            &ReadOptions {
                max_row_bytes,
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn csv_unclosed_quote_fails_the_row_then_ends_the_file() {
        let data = b"a,b\n1,2\n\"3,4\n5,6\n7,8\n";
        let mut r = csv_reader(data, b',');
        let mut row = Row::default();
        assert!(r.read_row(&mut row).unwrap());
        let e = match r.read_row(&mut row) {
            Err(ReadError::Row(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(e.row, 3);
        assert!(
            e.reason.contains(
                "starts on line 3 is never closed: the file ends inside it, so the 2 line(s)"
            ),
            "{}",
            e.reason
        );
        match r.read_row(&mut row) {
            Err(ReadError::File(FileError::UnclosedQuote { row, line, lines })) => {
                assert_eq!((row, line, lines), (3, 3, 2));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(r.read_row(&mut row), Ok(false)));
        // A closed quote at the very end, with or without a final line break, is fine.
        for data in [
            &b"a,b\n1,\"x\"\n"[..],
            b"a,b\n1,\"x\"",
            b"a,b\n1,\"x\ny\"\r\n",
        ] {
            let rows = drain(&mut csv_reader(data, b','));
            assert!(rows.iter().all(|r| r.1.is_ok()), "{data:?}: {rows:?}");
        }
    }

    #[test]
    fn csv_a_quote_left_open_until_a_later_quote_is_named() {
        // The stray quote on line 3 closes at line 5's quote: one ragged record.
        let data = b"a,b\n1,2\n\"3,4\n5,6\nx,\"7\"\n9,10\n";
        let rows = drain(&mut csv_reader(data, b','));
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert!(
            rows[1]
                .1
                .as_ref()
                .unwrap_err()
                .contains("it spans lines 3-5: is a quote left open?"),
            "{rows:?}"
        );
        assert_eq!(rows[2].1, Ok(fields(&["9", "10"])));
    }

    #[test]
    fn csv_an_oversized_row_fails_alone_and_memory_stays_at_the_cap() {
        let mut data = b"a,b\n1,2\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 100_000));
        data.extend_from_slice(b",y\n3,4\n");
        let mut r = capped(&data, 1000);
        let rows = drain(&mut r);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].1, Ok(fields(&["1", "2"])));
        let reason = rows[1].1.as_ref().unwrap_err();
        assert!(
            reason.contains("larger than 1000 bytes (100003 bytes, lines 3-3)"),
            "{reason}"
        );
        assert_eq!(rows[1].2.len(), 1000, "the kept prefix");
        assert_eq!(rows[2].1, Ok(fields(&["3", "4"])));
        assert!(
            r.record.buf.capacity() <= 2048,
            "{}",
            r.record.buf.capacity()
        );

        // An endless quoted field: one failed row, bounded, then the unclosed quote.
        let mut data = b"a\n\"".to_vec();
        data.extend(std::iter::repeat_n(b"line\n", 50_000).flatten());
        let mut r = capped(&data, 4096);
        let mut row = Row::default();
        match r.read_row(&mut row) {
            Err(ReadError::Row(e)) => assert!(e.reason.contains("never closed"), "{}", e.reason),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r.read_row(&mut row),
            Err(ReadError::File(FileError::UnclosedQuote {
                lines: 49_999,
                ..
            }))
        ));
        assert!(r.record.buf.capacity() <= 8192);
    }

    #[test]
    fn csv_too_many_fields_is_an_oversized_row() {
        let mut data = b"a\n".to_vec();
        data.extend(std::iter::repeat_n(b',', MAX_FIELDS + 10));
        data.extend_from_slice(b"x\nok\n");
        let rows = drain(&mut csv_reader(&data, b','));
        assert_eq!(rows.len(), 2);
        assert!(rows[0].1.as_ref().unwrap_err().contains("larger than"));
        assert_eq!(rows[1].1, Ok(fields(&["ok"])));
    }

    #[test]
    fn csv_an_oversized_or_unclosed_header_is_a_file_error() {
        let e = CsvRowReader::new(
            &b"aaaaaaaaaaaaaaaaaaaa,b\n1,2\n"[..],
            &ReadOptions {
                max_row_bytes: 8,
                ..Default::default()
            },
        )
        .err()
        .unwrap();
        assert!(
            e.to_string().contains("header row is larger than 8 bytes"),
            "{e}"
        );
        let e = CsvRowReader::new(&b"\"a,b\n1,2\n"[..], &ReadOptions::default())
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("a quoted header is never closed"),
            "{e}"
        );
    }

    #[test]
    fn json_oversized_rows_fail_alone() {
        let options = ReadOptions {
            max_row_bytes: 64,
            ..Default::default()
        };
        let big = format!("{{\"id\":\"{}\"}}", "x".repeat(1000));
        let lines = format!("{{\"id\":\"a\"}}\n{big}\n{{\"id\":\"b\"}}\n");
        let array = format!("[{{\"id\":\"a\"}},{big},{{\"id\":\"b\"}}]");
        for data in [lines, array] {
            let mut r = JsonRowReader::new(data.as_bytes(), Some(vec!["id".to_string()]), &options)
                .unwrap();
            let rows = drain(&mut r);
            assert_eq!(rows.len(), 3, "{data}");
            assert_eq!(rows[0].1, Ok(opt(&[Some("a")])));
            let reason = rows[1].1.as_ref().unwrap_err();
            assert!(reason.contains("larger than 64 bytes (10"), "{reason}");
            assert_eq!(rows[1].2.len(), 64);
            assert_eq!(rows[2].1, Ok(opt(&[Some("b")])));
        }
    }

    /// The bounded reader cuts records exactly as the csv crate does, for any mix of
    /// quotes, delimiters and line breaks (the end of the input included), and flags an
    /// unclosed quote exactly when the input ends inside one.
    #[test]
    fn csv_records_match_the_csv_crate_on_random_input() {
        let mut next = crate::test_support::xorshift(0x2545_f491_4f6c_dd1d);
        let alphabet: &[&[u8]] = &[b"a", b"b", b",", b"\"", b"\n", b"\r", b" ", "é".as_bytes()];
        for case in 0..20_000 {
            let mut body = Vec::new();
            for _ in 0..next() % 60 {
                body.extend_from_slice(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            let mut data = b"h\n".to_vec();
            data.extend_from_slice(&body);
            let mut expected = Vec::new();
            let mut theirs = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(&data[..]);
            let mut record = csv::ByteRecord::new();
            while theirs.read_byte_record(&mut record).unwrap() {
                expected.push(record.iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
            }
            expected.remove(0);
            let mut ours = capped(&data, 1 << 20);
            let mut got = Vec::new();
            let mut unclosed = false;
            while ours.read_record().unwrap() {
                got.push(ours.record.fields().map(<[u8]>::to_vec).collect::<Vec<_>>());
                unclosed |= ours.record.unclosed_quote;
            }
            assert_eq!(
                got,
                expected,
                "case {case}: {:?}",
                String::from_utf8_lossy(&body)
            );
            // The quoting rules, as a small state machine: a quote opens a field only
            // at its start, and `\"\"` inside quotes is a quote, not the end.
            #[derive(PartialEq)]
            enum Q {
                Start,
                Unquoted,
                Quoted,
                QuoteInQuoted,
            }
            let mut q = Q::Start;
            for &b in &data {
                let separator = matches!(b, b',' | b'\n' | b'\r');
                q = match (q, b) {
                    (Q::Start, b'"') | (Q::QuoteInQuoted, b'"') => Q::Quoted,
                    (Q::Quoted, b'"') => Q::QuoteInQuoted,
                    (Q::Quoted, _) => Q::Quoted,
                    (_, _) if separator => Q::Start,
                    _ => Q::Unquoted,
                };
            }
            let open = q == Q::Quoted;
            assert_eq!(
                unclosed,
                open,
                "case {case}: {:?}",
                String::from_utf8_lossy(&body)
            );
            // With a tiny row limit: every record is still one row, good or failed, and
            // nothing panics.
            let mut small = capped(&data, 8);
            let mut row = Row::default();
            let mut rows = 0;
            while let Ok(true) | Err(ReadError::Row(_)) = small.read_row(&mut row) {
                rows += 1;
            }
            // Blank records are skipped, unless too large or cut off inside a quote.
            let last = expected.len().saturating_sub(1);
            let counted = expected
                .iter()
                .enumerate()
                .filter(|(i, r)| {
                    let bytes: usize = r.iter().map(Vec::len).sum();
                    bytes > 8
                        || (open && *i == last)
                        || !r.iter().all(|f| f.trim_ascii().is_empty())
                })
                .count();
            assert_eq!(
                rows,
                counted,
                "case {case}: {:?}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn csv_raw_quotes_only_when_needed() {
        let mut r = csv_reader(b"a,b,c\n\"x\",\"1,2\",\"q\"\"\"\n", b',');
        let rows = drain(&mut r);
        assert_eq!(rows[0].2, "x,\"1,2\",\"q\"\"\"");
        let mut r = csv_reader(b"a\tb\n\"1,2\"\t\"x\ty\"\n", b'\t');
        assert_eq!(drain(&mut r)[0].2, "1,2\t\"x\ty\"");
    }

    #[test]
    fn io_errors_are_file_errors_and_classified() {
        let mut r = CsvRowReader::new(
            Failing {
                data: b"a,b\n1,2\n".to_vec(),
                pos: 0,
                kind: std::io::ErrorKind::ConnectionReset,
            },
            &ReadOptions::default(),
        )
        .unwrap();
        let mut row = Row::default();
        assert!(r.read_row(&mut row).unwrap());
        let e = r.read_row(&mut row).unwrap_err();
        assert!(matches!(e, ReadError::File(FileError::Io(_))));
        assert_eq!(e.class(), ErrorClass::Retryable);

        let bad = FileError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "x"));
        assert_eq!(bad.class(), ErrorClass::Permanent);
        let bad = ReadError::Row(RowError {
            row: 2,
            column: None,
            reason: "r".into(),
            raw: String::new(),
        });
        assert_eq!(bad.class(), ErrorClass::Permanent);
        assert_eq!(FileError::ZeroDataRows.class(), ErrorClass::Permanent);

        let mut r = JsonRowReader::new(
            Failing {
                data: b"{\"a\":1}\n".to_vec(),
                pos: 0,
                kind: std::io::ErrorKind::TimedOut,
            },
            None,
            &ReadOptions::default(),
        )
        .unwrap();
        assert!(r.read_row(&mut row).unwrap());
        let e = r.read_row(&mut row).unwrap_err();
        assert!(matches!(e, ReadError::File(FileError::Io(_))));
        assert_eq!(e.class(), ErrorClass::Retryable);
    }

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

    fn json<'a>(data: &'a [u8], columns: Option<&[&str]>) -> JsonRowReader<&'a [u8]> {
        JsonRowReader::new(
            data,
            columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
            &ReadOptions::default(),
        )
        .unwrap()
    }

    fn opt(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|s| s.map(str::to_string)).collect()
    }

    #[test]
    fn ndjson_columns_from_first_object_in_order() {
        let data = br#"{"id":"u1","user":{"first_name":"Ada","last":"L"},"age":36,"vip":true,"tags":["a","b",3],"gone":null}
{"id":"u2","user":{"first_name":"Grace"},"age":45.5,"vip":false,"tags":[],"gone":""}
"#;
        let mut r = json(data, None);
        assert_eq!(
            r.columns(),
            [
                "id",
                "user.first_name",
                "user.last",
                "age",
                "vip",
                "tags",
                "gone"
            ]
        );
        let rows = drain(&mut r);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, 1);
        assert_eq!(
            rows[0].1,
            Ok(opt(&[
                Some("u1"),
                Some("Ada"),
                Some("L"),
                Some("36"),
                Some("true"),
                Some("[a|b|3]"),
                None
            ]))
        );
        assert_eq!(
            rows[0].2,
            r#"{"id":"u1","user":{"first_name":"Ada","last":"L"},"age":36,"vip":true,"tags":["a","b",3],"gone":null}"#
        );
        assert_eq!(rows[1].0, 2);
        assert_eq!(
            rows[1].1,
            Ok(opt(&[
                Some("u2"),
                Some("Grace"),
                None,
                Some("45.5"),
                Some("false"),
                Some("[]"),
                None
            ]))
        );
    }

    #[test]
    fn json_given_columns_and_nesting() {
        let data = br#"{"a.b":"literal","x":{"y":{"z":1},"w":[1,[2,3],{"k":null}]},"n":-7,"big":18446744073709551615,"f":1e3,"s":"with \"quote\" and \u00e9","deep":{"k":"v"}}"#;
        let cols = ["id", "a.b", "x.y", "x.w", "n", "big", "f", "s", "deep", "n"];
        let mut r = json(data, Some(&cols));
        assert_eq!(r.columns(), cols);
        let rows = drain(&mut r);
        assert_eq!(
            rows[0].1,
            Ok(opt(&[
                None,
                Some("literal"),
                Some(r#"{"z":1}"#),
                Some(r#"[1|[2,3]|{"k":null}]"#),
                Some("-7"),
                Some("18446744073709551615"),
                Some("1000"),
                Some("with \"quote\" and é"),
                Some(r#"{"k":"v"}"#),
                // A column listed twice gets the value in both places.
                Some("-7"),
            ]))
        );
    }

    #[test]
    fn ndjson_bad_lines_then_good_lines() {
        let data = b"{\"id\":1}\n{not json}\n\n[1,2]\n  \r\n\"str\"\n{\"id\":2} trailing\n{\"id\":3}\r\n{\"id\":4}";
        let mut r = json(data, None);
        assert_eq!(r.columns(), ["id"]);
        let rows = drain(&mut r);
        let summary: Vec<(u64, bool)> = rows.iter().map(|(n, res, _)| (*n, res.is_ok())).collect();
        assert_eq!(
            summary,
            [
                (1, true),
                (2, false),
                (3, false),
                (4, false),
                (5, false),
                (6, true),
                (7, true)
            ]
        );
        let (_, err, raw) = &rows[1];
        assert!(
            err.as_ref()
                .unwrap_err()
                .starts_with("row 2: the row is not valid JSON"),
            "{err:?}"
        );
        assert_eq!(raw, "{not json}");
        let (_, err, raw) = &rows[2];
        assert!(
            err.as_ref()
                .unwrap_err()
                .starts_with("row 3: the row is not a JSON object"),
            "{err:?}"
        );
        assert_eq!(raw, "[1,2]");
        assert_eq!(rows[5].1, Ok(opt(&[Some("3")])));
        assert_eq!(rows[5].2, "{\"id\":3}");
        assert_eq!(rows[6].1, Ok(opt(&[Some("4")])));
    }

    #[test]
    fn json_columns_come_from_first_object_even_after_bad_lines() {
        let mut r = json(b"oops\n{\"b\":1,\"a\":2}\n", None);
        assert_eq!(r.columns(), ["b", "a"]);
        let rows = drain(&mut r);
        assert_eq!(rows[0].0, 1);
        assert!(rows[0].1.is_err());
        assert_eq!(
            rows[1],
            (
                2,
                Ok(opt(&[Some("1"), Some("2")])),
                "{\"b\":1,\"a\":2}".into()
            )
        );
    }

    #[test]
    fn json_array_streams_one_byte_at_a_time() {
        let data = "\u{FEFF} [ {\"id\": \"a]\\\"}\", \"v\": [1, 2]} ,\n{\"id\":\"b\",\"v\":{\"x\":1}},\r\n 7, \"s\", {\"id\": \"c\"} ]\n";
        let mut r =
            JsonRowReader::new(OneByte(data.as_bytes()), None, &ReadOptions::default()).unwrap();
        assert_eq!(r.columns(), ["id", "v"]);
        let rows = drain(&mut r);
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[0],
            (
                1,
                Ok(opt(&[Some("a]\"}"), Some("[1|2]")])),
                "{\"id\": \"a]\\\"}\", \"v\": [1, 2]}".into()
            )
        );
        assert_eq!(rows[1].1, Ok(opt(&[Some("b"), Some("{\"x\":1}")])));
        assert_eq!(rows[2].0, 3);
        assert!(
            rows[2]
                .1
                .as_ref()
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert_eq!(rows[2].2, "7");
        assert_eq!(rows[3].2, "\"s\"");
        assert_eq!(
            rows[4],
            (5, Ok(opt(&[Some("c"), None])), "{\"id\": \"c\"}".into())
        );
    }

    #[test]
    fn json_array_bad_element_then_good() {
        let mut r = json(br#"[{"id":1},{"id":tru},{"id":3},]"#, Some(&["id"]));
        let rows = drain(&mut r);
        assert_eq!(rows.len(), 3);
        assert!(
            rows[1]
                .1
                .as_ref()
                .unwrap_err()
                .starts_with("row 2: the row is not valid JSON")
        );
        assert_eq!(rows[1].2, r#"{"id":tru}"#);
        assert_eq!(rows[2].1, Ok(opt(&[Some("3")])));
    }

    #[test]
    fn json_malformed_arrays_are_file_errors() {
        for (data, want) in [
            (
                &br#"[{"id":1}"#[..],
                "the file ends before the array's closing `]`",
            ),
            (br#"[{"id":1} {"id":2}]"#, "expected `,` or `]` after row 1"),
            (br#"[{"id":1"#, "the file ends inside row 1 of the array"),
            (br#"[{"id":1}] x"#, "unexpected `x` after the closing `]`"),
            (br#"[,{"id":1}]"#, "unexpected `,`"),
            (br#"[}]"#, "unexpected `}`"),
        ] {
            let mut r = json(data, Some(&["id"]));
            let mut row = Row::default();
            let err = loop {
                match r.read_row(&mut row) {
                    Ok(true) | Err(ReadError::Row(_)) => {}
                    Ok(false) => panic!("{data:?} ended cleanly"),
                    Err(ReadError::File(e)) => break e,
                }
            };
            assert!(matches!(err, FileError::Json(_)), "{err:?}");
            assert!(err.to_string().contains(want), "{err} / {want}");
            assert_eq!(err.class(), ErrorClass::Permanent);
        }
    }

    #[test]
    fn json_zero_data_rows() {
        for data in [
            &b""[..],
            b"  \n ",
            b"\xEF\xBB\xBF",
            b"[]",
            b" [ \n ] ",
            b"\n\n\n",
        ] {
            let mut row = Row::default();
            let err = match JsonRowReader::new(data, None, &ReadOptions::default()) {
                Err(e) => e,
                Ok(mut r) => match r.read_row(&mut row) {
                    Err(ReadError::File(e)) => {
                        assert!(matches!(r.read_row(&mut row), Ok(false)));
                        e
                    }
                    other => panic!("{data:?}: {other:?}"),
                },
            };
            assert!(matches!(err, FileError::ZeroDataRows), "{data:?}: {err:?}");
        }
    }

    #[test]
    fn json_bom_ndjson_and_missing_keys() {
        let mut r = json(
            b"\xEF\xBB\xBF{\"a\":\"x\"}\n{\"b\":1}\n",
            Some(&["a", "b", "c.d"]),
        );
        let rows = drain(&mut r);
        assert_eq!(rows[0].1, Ok(opt(&[Some("x"), None, None])));
        assert_eq!(rows[1].1, Ok(opt(&[None, Some("1"), None])));
    }

    #[test]
    fn open_reader_picks_the_format() {
        let mut r = open_reader(
            false,
            &b"a;b\n1;2\n"[..],
            &ReadOptions {
                delimiter: b';',
                ..Default::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(r.columns(), ["a", "b"]);
        assert_eq!(drain(r.as_mut()).len(), 1);
        let mut r = open_reader(true, &b"{\"a\":1}\n"[..], &ReadOptions::default(), None).unwrap();
        assert_eq!(r.columns(), ["a"]);
        assert_eq!(drain(r.as_mut()).len(), 1);
        assert!(matches!(
            open_reader(true, &b""[..], &ReadOptions::default(), None).map(|_| ()),
            Err(FileError::ZeroDataRows)
        ));
    }

    /// Throughput of the CSV hot path (read and parse every cell); run optimised with
    /// `cargo test --release -p s3imports --lib reader::tests::csv_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn csv_throughput() {
        let mut data = b"id,name,email,age,score,signed_up\n".to_vec();
        let mut i = 0u64;
        while data.len() < 200 << 20 {
            data.extend_from_slice(
                format!(
                    "{i},User {i},user{i}@example.com,{},{}.5,2022-01-31T12:59:00Z\n",
                    i % 90,
                    i % 1000
                )
                .as_bytes(),
            );
            i += 1;
        }
        let start = std::time::Instant::now();
        let mut r = csv_reader(&data, b',');
        let mut row = Row::default();
        let mut n = 0u64;
        use crate::values::{AttrType as T, ValueOptions, parse_value};
        let types = [
            T::Integer,
            T::String,
            T::String,
            T::Integer,
            T::Number,
            T::Datetime,
        ];
        let opts = ValueOptions::default();
        while r.read_row(&mut row).unwrap() {
            for (i, ty) in types.iter().enumerate() {
                if parse_value(row.get(i).unwrap(), *ty, &opts)
                    .unwrap()
                    .is_some()
                {
                    n += 1;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!("{} MB/s ({n})", data.len() as f64 / secs / 1e6);
    }
}
