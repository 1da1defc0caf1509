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

/// The largest JSON row (line or array element) held in memory; a bigger one means the
/// file is not row-shaped (e.g. one huge object) and reading it would not be streaming.
pub const MAX_JSON_ROW_BYTES: usize = 16 << 20;

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
        "row {row} is larger than {} MiB; JSON files must hold one object per line or an array of objects",
        limit >> 20
    )]
    RowTooLarge { row: u64, limit: usize },
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    pub delimiter: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self { delimiter: b',' }
    }
}

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

/// CSV with a header row.
pub struct CsvRowReader<R: Read> {
    inner: csv::Reader<SkipBom<R>>,
    columns: Vec<String>,
    record: csv::ByteRecord,
    delimiter: u8,
    /// The spreadsheet number of the last record read (the header is 1).
    number: u64,
    /// Data rows handed out, good or bad.
    yielded: u64,
    done: bool,
}

impl<R: Read> CsvRowReader<R> {
    /// Reads and checks the header. An empty file is `FileError::ZeroDataRows`.
    pub fn new(read: R, options: &CsvOptions) -> Result<Self, FileError> {
        let mut inner = csv::ReaderBuilder::new()
            .delimiter(options.delimiter)
            .has_headers(false)
            // Ragged rows become row errors instead of ending the file.
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(SkipBom::new(read));
        let mut header = csv::ByteRecord::new();
        // Blank lines before the header are skipped by the csv parser itself.
        if !inner.read_byte_record(&mut header).map_err(csv_error)? {
            return Err(FileError::ZeroDataRows);
        }
        let mut columns: Vec<String> = Vec::with_capacity(header.len());
        for (i, field) in header.iter().enumerate() {
            let name = std::str::from_utf8(field)
                .map_err(|_| FileError::NotUtf8Header)?
                .trim()
                .to_string();
            if name.is_empty() {
                return Err(FileError::BadHeader {
                    column: name,
                    position: i + 1,
                    reason: "has no name; name every column".into(),
                });
            }
            if let Some(first) = columns.iter().position(|c| *c == name) {
                return Err(FileError::BadHeader {
                    column: name,
                    position: i + 1,
                    reason: format!("repeats column {}; column names must be unique", first + 1),
                });
            }
            columns.push(name);
        }
        Ok(Self {
            inner,
            columns,
            record: csv::ByteRecord::new(),
            delimiter: options.delimiter,
            number: 1,
            yielded: 0,
            done: false,
        })
    }

    /// Reads the next record that is not entirely blank.
    fn next_record(&mut self) -> Result<bool, FileError> {
        loop {
            if !self.inner.read_byte_record(&mut self.record).map_err(csv_error)? {
                return Ok(false);
            }
            self.number += 1;
            // Blank lines never reach here (the parser skips them); a record of only
            // empty or space fields (`,,,`) is a spreadsheet's empty row: skip it too.
            if self.record.iter().all(|f| f.trim_ascii().is_empty()) {
                continue;
            }
            return Ok(true);
        }
    }
}

fn csv_error(e: csv::Error) -> FileError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => FileError::Io(io),
        other => FileError::Csv(format!("{other:?}")),
    }
}

impl<R: Read> RowReader for CsvRowReader<R> {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn read_row(&mut self, row: &mut Row) -> Result<bool, ReadError> {
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
        let bad_field = match std::str::from_utf8(record.as_slice()) {
            Ok(all) => {
                row.text.push_str(all);
                let mut start = 0;
                for i in 0..record.len() {
                    let end = record.range(i).map_or(start, |r| r.end);
                    row.spans.push(Some((start, end)));
                    start = end;
                }
                None
            }
            Err(_) => {
                let mut bad = None;
                for (i, field) in record.iter().enumerate() {
                    if std::str::from_utf8(field).is_err() && bad.is_none() {
                        bad = Some(i);
                    }
                    row.push(&String::from_utf8_lossy(field));
                }
                bad
            }
        };
        if record.len() != self.columns.len() {
            return Err(ReadError::Row(RowError {
                row: self.number,
                column: None,
                reason: format!(
                    "row {} has {} fields, the header has {}",
                    self.number,
                    record.len(),
                    self.columns.len()
                ),
                raw: row.raw(),
            }));
        }
        if let Some(i) = bad_field {
            return Err(ReadError::Row(RowError {
                row: self.number,
                column: self.columns.get(i).cloned(),
                reason: "the value is not UTF-8 text; save the file as UTF-8".into(),
                raw: row.raw(),
            }));
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
    done: bool,
}

/// How many elements to read ahead looking for an object to take columns from.
const MAX_LOOKAHEAD: usize = 100;

impl<R: Read> JsonRowReader<R> {
    /// `columns`: the dot paths to read; `None` takes them from the first object, in
    /// its key order (for previews). An empty input is `FileError::ZeroDataRows`.
    pub fn new(read: R, columns: Option<Vec<String>>) -> Result<Self, FileError> {
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
        while self.pending.len() < MAX_LOOKAHEAD {
            let row = self.rows + self.pending.len() as u64 + 1;
            let mut buf = Vec::new();
            if !self.next_element(&mut buf, row)? {
                break;
            }
            let mut paths = Vec::new();
            let mut de = serde_json::Deserializer::from_slice(&buf);
            let found = PathsSeed { out: &mut paths }
                .deserialize(&mut de)
                .and_then(|()| de.end())
                .is_ok();
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
        match self.shape {
            JsonShape::Lines => self.next_line(out, row),
            JsonShape::Array(_) => self.next_array_element(out, row),
        }
    }

    fn next_line(&mut self, out: &mut Vec<u8>, row: u64) -> Result<bool, FileError> {
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
            out.extend_from_slice(&chunk[..take]);
            self.inner.consume(take);
            self.offset += take as u64;
            if out.len() > MAX_JSON_ROW_BYTES {
                return Err(FileError::RowTooLarge {
                    row,
                    limit: MAX_JSON_ROW_BYTES,
                });
            }
            if eol {
                if out.trim_ascii().is_empty() {
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
            out.extend_from_slice(&chunk[..used]);
            self.inner.consume(used);
            self.offset += used as u64;
            if out.len() > MAX_JSON_ROW_BYTES {
                return Err(FileError::RowTooLarge {
                    row,
                    limit: MAX_JSON_ROW_BYTES,
                });
            }
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
        let result = self.fill(row);
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
    csv: &CsvOptions,
    columns: Option<Vec<String>>,
) -> Result<Box<dyn RowReader + 'a>, FileError> {
    if json {
        Ok(Box::new(JsonRowReader::new(read, columns)?))
    } else {
        Ok(Box::new(CsvRowReader::new(read, csv)?))
    }
}
