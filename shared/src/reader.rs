//! Streaming row readers for CSV and JSON, with constant memory: rows are read into
//! reused buffers, one at a time. A bad row is an error for that row only (the
//! caller records it and reads on); a file-level problem ends the file.

use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

use crate::error::{Classify, ErrorClass};

/// A row that could not be read or mapped: where, why, and the row as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub row: u64,
    pub column: Option<String>,
    pub reason: String,
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

/// A problem with the file as a whole.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("Found zero data rows in the file")]
    ZeroDataRows,
    #[error("the header's column {position} {column}: {reason}")]
    BadHeader {
        column: String,
        position: usize,
        reason: String,
    },
    #[error("the header row is not UTF-8 text")]
    NotUtf8Header,
    #[error("the JSON is malformed: {0}")]
    Json(String),
    #[error("the CSV is malformed: {0}")]
    Csv(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Classify for FileError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Io(e) if e.kind() != std::io::ErrorKind::InvalidData => ErrorClass::Retryable,
            _ => ErrorClass::Permanent,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Row(RowError),
    #[error(transparent)]
    File(FileError),
}

impl Classify for ReadError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Row(_) => ErrorClass::Permanent,
            Self::File(e) => e.class(),
        }
    }
}

/// One row, in buffers reused from row to row.
#[derive(Debug, Default, Clone)]
pub struct Row {
    number: u64,
    /// All field text back to back; `ends[i]` is where field i ends.
    text: String,
    ends: Vec<usize>,
    /// Whether field i is present (JSON null and missing keys are absent).
    present: Vec<bool>,
    raw: RawRow,
}

#[derive(Debug, Default, Clone)]
enum RawRow {
    #[default]
    None,
    Csv(u8),
    Json(String),
}

impl Row {
    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i`, or None when absent (missing, null).
    pub fn get(&self, i: usize) -> Option<&str> {
        if !*self.present.get(i)? {
            return None;
        }
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..end)
    }

    /// The row as it was, for the failed-rows report.
    pub fn raw(&self) -> String {
        match &self.raw {
            RawRow::Json(s) => s.clone(),
            RawRow::Csv(delimiter) => {
                let mut w = csv::WriterBuilder::new()
                    .delimiter(*delimiter)
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_writer(Vec::new());
                let fields: Vec<&str> =
                    (0..self.len()).map(|i| self.get(i).unwrap_or("")).collect();
                let _ = w.write_record(&fields);
                let bytes = w.into_inner().unwrap_or_default();
                String::from_utf8_lossy(&bytes)
                    .trim_end_matches('\n')
                    .to_string()
            }
            RawRow::None => String::new(),
        }
    }

    fn clear(&mut self, number: u64) {
        self.number = number;
        self.text.clear();
        self.ends.clear();
        self.present.clear();
    }

    fn push(&mut self, value: Option<&str>) {
        if let Some(v) = value {
            self.text.push_str(v);
        }
        self.ends.push(self.text.len());
        self.present.push(value.is_some());
    }
}

/// Reads rows one at a time into a caller's [`Row`].
pub trait RowReader {
    fn columns(&self) -> &[String];
    /// The next data row into `row`; `Ok(false)` at the end. `Err(ReadError::Row)` is a
    /// bad row (call again to go on); `Err(ReadError::File)` ends the file. A file that
    /// ends with no data rows gives `FileError::ZeroDataRows`.
    fn read_row(&mut self, row: &mut Row) -> Result<bool, ReadError>;
}

#[derive(Debug, Clone, Copy)]
pub struct CsvOptions {
    pub delimiter: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self { delimiter: b',' }
    }
}

/// CSV with a header row.
pub struct CsvRowReader<R: Read> {
    inner: csv::Reader<R>,
    columns: Vec<String>,
    record: csv::ByteRecord,
    delimiter: u8,
    rows: u64,
    /// Records read, counting the header, as a spreadsheet numbers them.
    number: u64,
    done: bool,
}

impl<R: Read> CsvRowReader<R> {
    pub fn new(read: R, options: &CsvOptions) -> Result<Self, FileError> {
        let mut inner = csv::ReaderBuilder::new()
            .delimiter(options.delimiter)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(read);
        let mut header = csv::ByteRecord::new();
        // Blank lines before the header are skipped by the csv crate itself.
        let has_header = inner.read_byte_record(&mut header).map_err(csv_error)?;
        if !has_header {
            return Err(FileError::ZeroDataRows);
        }
        let mut columns = Vec::with_capacity(header.len());
        let mut seen = HashSet::new();
        for (i, field) in header.iter().enumerate() {
            let field = if i == 0 {
                field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
            } else {
                field
            };
            let name = std::str::from_utf8(field)
                .map_err(|_| FileError::NotUtf8Header)?
                .trim()
                .to_string();
            if name.is_empty() {
                return Err(FileError::BadHeader {
                    column: String::new(),
                    position: i + 1,
                    reason: "has no name".into(),
                });
            }
            if !seen.insert(name.clone()) {
                return Err(FileError::BadHeader {
                    column: format!("`{name}`"),
                    position: i + 1,
                    reason: "appears twice".into(),
                });
            }
            columns.push(name);
        }
        Ok(Self {
            inner,
            columns,
            record: csv::ByteRecord::new(),
            delimiter: options.delimiter,
            rows: 0,
            number: 1,
            done: false,
        })
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
        loop {
            let more = self
                .inner
                .read_byte_record(&mut self.record)
                .map_err(|e| ReadError::File(csv_error(e)))?;
            if !more {
                self.done = true;
                return if self.rows == 0 {
                    Err(ReadError::File(FileError::ZeroDataRows))
                } else {
                    Ok(false)
                };
            }
            // A blank line reads as one empty field: not a row.
            if self.record.len() == 1 && self.record[0].is_empty() {
                continue;
            }
            break;
        }
        self.rows += 1;
        self.number += 1;
        row.clear(self.number);
        row.raw = RawRow::Csv(self.delimiter);
        let mut bad_column = None;
        for (i, field) in self.record.iter().enumerate() {
            match std::str::from_utf8(field) {
                Ok(s) => row.push(Some(s)),
                Err(_) => {
                    row.push(Some(&String::from_utf8_lossy(field)));
                    if bad_column.is_none() {
                        bad_column = Some(i);
                    }
                }
            }
        }
        if self.record.len() != self.columns.len() {
            return Err(ReadError::Row(RowError {
                row: self.number,
                column: None,
                reason: format!(
                    "row {} has {} fields, the header has {}",
                    self.number,
                    self.record.len(),
                    self.columns.len()
                ),
                raw: row.raw(),
            }));
        }
        if let Some(i) = bad_column {
            return Err(ReadError::Row(RowError {
                row: self.number,
                column: self.columns.get(i).cloned(),
                reason: "the value is not UTF-8 text".into(),
                raw: row.raw(),
            }));
        }
        Ok(true)
    }
}

/// JSON: one object per line (NDJSON) or one top-level array of objects, streamed.
pub struct JsonRowReader<R: Read> {
    inner: BufReader<R>,
    columns: Vec<String>,
    array: bool,
    /// For arrays: whether the closing `]` was seen.
    done: bool,
    buf: Vec<u8>,
    rows: u64,
    /// The first object, already read to find the columns.
    pending: Option<(Vec<u8>, serde_json::Value)>,
}

impl<R: Read> JsonRowReader<R> {
    pub fn new(read: R, columns: Option<Vec<String>>) -> Result<Self, FileError> {
        let mut inner = BufReader::with_capacity(256 * 1024, read);
        skip_ws_and_bom(&mut inner)?;
        let first = inner.fill_buf()?.first().copied();
        let array = first == Some(b'[');
        if array {
            inner.consume(1);
        }
        let mut me = Self {
            inner,
            columns: columns.clone().unwrap_or_default(),
            array,
            done: first.is_none(),
            buf: Vec::new(),
            rows: 0,
            pending: None,
        };
        if columns.is_none() {
            // Columns come from the first object (for previews).
            if let Some(bytes) = me.next_element()? {
                match serde_json::from_slice(&bytes) {
                    Ok(v @ serde_json::Value::Object(_)) => {
                        let mut cols = Vec::new();
                        collect_paths(&v, "", 0, &mut cols);
                        me.columns = cols;
                        me.pending = Some((bytes, v));
                    }
                    // Not an object: keep it to report as a row error.
                    _ => me.pending = Some((bytes, serde_json::Value::Null)),
                }
            }
        }
        Ok(me)
    }

    /// The bytes of the next element (a line for NDJSON, an array element otherwise).
    fn next_element(&mut self) -> Result<Option<Vec<u8>>, FileError> {
        if self.done {
            return Ok(None);
        }
        self.buf.clear();
        if !self.array {
            loop {
                let n = self.inner.read_until(b'\n', &mut self.buf)?;
                if n == 0 {
                    self.done = true;
                    return Ok(if self.buf.iter().all(u8::is_ascii_whitespace) {
                        None
                    } else {
                        Some(std::mem::take(&mut self.buf))
                    });
                }
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    self.buf.clear();
                    continue;
                }
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
        }
        // Array: skip separators, then cut out one value by tracking strings and depth.
        loop {
            let b = match self.inner.fill_buf()?.first().copied() {
                Some(b) => b,
                None => return Err(FileError::Json("the array is not closed with `]`".into())),
            };
            match b {
                b',' | b' ' | b'\t' | b'\r' | b'\n' => self.inner.consume(1),
                b']' => {
                    self.inner.consume(1);
                    self.done = true;
                    return Ok(None);
                }
                _ => break,
            }
        }
        let (mut depth, mut in_string, mut escaped) = (0i32, false, false);
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Err(FileError::Json("the file ends inside a value".into()));
            }
            let mut used = 0;
            let mut finished = false;
            for &b in chunk {
                used += 1;
                if in_string {
                    match (escaped, b) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth < 0 {
                            // The array's own `]` right after a scalar element.
                            used -= 1;
                            finished = true;
                            break;
                        }
                        if depth == 0 {
                            finished = true;
                            break;
                        }
                    }
                    b',' if depth == 0 => {
                        used -= 1;
                        finished = true;
                        break;
                    }
                    _ => {}
                }
            }
            self.buf.extend_from_slice(&chunk[..used]);
            self.inner.consume(used);
            if finished {
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
        }
    }
}

fn skip_ws_and_bom<R: Read>(r: &mut BufReader<R>) -> Result<(), FileError> {
    if r.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        r.consume(3);
    }
    loop {
        let buf = r.fill_buf()?;
        let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if n == 0 {
            return Ok(());
        }
        r.consume(n);
    }
}

/// Dot paths of an object's leaves, two levels deep.
fn collect_paths(v: &serde_json::Value, prefix: &str, depth: usize, out: &mut Vec<String>) {
    if let serde_json::Value::Object(map) = v {
        for (k, child) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match child {
                serde_json::Value::Object(_) if depth == 0 => collect_paths(child, &path, 1, out),
                _ => out.push(path),
            }
        }
    }
}

fn lookup<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    if let Some(found) = v.get(path) {
        return Some(found);
    }
    let (parent, child) = path.split_once('.')?;
    v.get(parent)?.get(child)
}

/// A JSON value as the text a CSV cell would hold; None for null and "".
fn cell(v: &serde_json::Value, out: &mut String) -> bool {
    use serde_json::Value as J;
    match v {
        J::Null => false,
        J::String(s) if s.is_empty() => false,
        J::String(s) => {
            out.push_str(s);
            true
        }
        J::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                match item {
                    J::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
            }
            out.push(']');
            true
        }
        other => {
            out.push_str(&other.to_string());
            true
        }
    }
}

impl<R: Read> RowReader for JsonRowReader<R> {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn read_row(&mut self, row: &mut Row) -> Result<bool, ReadError> {
        let (bytes, parsed) = match self.pending.take() {
            Some((b, v)) if v.is_object() => (b, Ok(v)),
            Some((b, _)) => {
                let p = serde_json::from_slice::<serde_json::Value>(&b);
                (b, p)
            }
            None => match self.next_element().map_err(ReadError::File)? {
                Some(b) => {
                    let p = serde_json::from_slice::<serde_json::Value>(&b);
                    (b, p)
                }
                None => {
                    return if self.rows == 0 {
                        self.rows = u64::MAX; // report zero rows once
                        Err(ReadError::File(FileError::ZeroDataRows))
                    } else {
                        Ok(false)
                    };
                }
            },
        };
        self.rows = self.rows.saturating_add(1);
        let number = self.rows;
        row.clear(number);
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        let value = match parsed {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) => {
                return Err(ReadError::Row(RowError {
                    row: number,
                    column: None,
                    reason: "the value is not a JSON object".into(),
                    raw: text,
                }));
            }
            Err(e) => {
                return Err(ReadError::Row(RowError {
                    row: number,
                    column: None,
                    reason: format!("not valid JSON: {e}"),
                    raw: text,
                }));
            }
        };
        let mut scratch = String::new();
        for c in &self.columns {
            scratch.clear();
            match lookup(&value, c) {
                Some(v) if cell(v, &mut scratch) => row.push(Some(&scratch)),
                _ => row.push(None),
            }
        }
        row.raw = RawRow::Json(text);
        Ok(true)
    }
}

/// A reader for the file type: JSON when `json`, CSV otherwise.
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
