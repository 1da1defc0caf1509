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
    inner: BufReader<std::io::Chain<std::io::Cursor<Vec<u8>>, R>>,
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
        let mut read = read;
        let head = strip_bom(&mut read)?;
        let mut inner = BufReader::with_capacity(256 * 1024, std::io::Cursor::new(head).chain(read));
        skip_ws(&mut inner)?;
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

/// Reads up to three bytes and returns them unless they are a UTF-8 BOM (reads may
/// hand out fewer bytes than asked, so a BOM is not looked for in one read).
fn strip_bom<R: Read>(r: &mut R) -> Result<Vec<u8>, FileError> {
    let mut head = Vec::with_capacity(3);
    while head.len() < 3 && b"\xEF\xBB\xBF".starts_with(&head) {
        let mut byte = [0u8; 1];
        if r.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    if head == b"\xEF\xBB\xBF" {
        head.clear();
    }
    Ok(head)
}

fn skip_ws<R: BufRead>(r: &mut R) -> Result<(), FileError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out one byte per read, to prove the readers stream.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    use std::io;

    /// Every row: Ok(values) or Err(error text); then the final outcome.
    fn read_all(mut r: Box<dyn RowReader + '_>) -> (Vec<Result<Vec<Option<String>>, String>>, Option<String>) {
        let mut row = Row::default();
        let mut out = Vec::new();
        let width = r.columns().len();
        loop {
            match r.read_row(&mut row) {
                Ok(true) => out.push(Ok((0..width).map(|i| row.get(i).map(str::to_string)).collect())),
                Ok(false) => return (out, None),
                Err(ReadError::Row(e)) => out.push(Err(format!("{} | {}", e, e.raw))),
                Err(ReadError::File(e)) => return (out, Some(e.to_string())),
            }
        }
    }

    fn csv(text: &str, delimiter: u8) -> Box<dyn RowReader + '_> {
        open_reader(false, text.as_bytes(), &CsvOptions { delimiter }, None).unwrap()
    }

    fn some(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn csv_quirks() {
        let text = "\u{feff}ID, Name ,Note\r\n1,\"Doe, Jane\",\"said \"\"hi\"\"\"\r\n\r\n2,Bob,\"two\nlines\"\r\n";
        let r = csv(text, b',');
        assert_eq!(r.columns(), ["ID", "Name", "Note"]);
        let (rows, end) = read_all(r);
        assert_eq!(end, None);
        assert_eq!(
            rows,
            [Ok(some(&["1", "Doe, Jane", "said \"hi\""])), Ok(some(&["2", "Bob", "two\nlines"]))]
        );
    }

    #[test]
    fn other_delimiters() {
        let (rows, _) = read_all(csv("a;b\n1;2,5\n", b';'));
        assert_eq!(rows, [Ok(some(&["1", "2,5"]))]);
        let (rows, _) = read_all(csv("a\tb\n1\t2\n", b'\t'));
        assert_eq!(rows, [Ok(some(&["1", "2"]))]);
    }

    #[test]
    fn ragged_and_non_utf8_rows_are_row_errors() {
        let mut bytes = b"a,b,c\n1,2,3\n4,5\n6,\xff\xfe,8\n9,10,11\n".to_vec();
        bytes.extend_from_slice(b"12,13,14,15\n");
        let r = open_reader(false, &bytes[..], &CsvOptions::default(), None).unwrap();
        let (rows, end) = read_all(r);
        assert_eq!(end, None);
        assert_eq!(rows[0], Ok(some(&["1", "2", "3"])));
        assert_eq!(rows[1], Err("row 3: row 3 has 2 fields, the header has 3 | 4,5".into()));
        let e = rows[2].clone().unwrap_err();
        assert!(e.starts_with("row 4, column `b`: the value is not UTF-8 text"), "{e}");
        assert_eq!(rows[3], Ok(some(&["9", "10", "11"])));
        assert!(rows[4].clone().unwrap_err().contains("has 4 fields"));
    }

    #[test]
    fn row_numbers_count_records_from_the_header() {
        let mut r = csv("a\n\"x\ny\"\nz\n", b',');
        let mut row = Row::default();
        assert!(r.read_row(&mut row).unwrap());
        assert_eq!(row.number(), 2);
        assert!(r.read_row(&mut row).unwrap());
        assert_eq!(row.number(), 3);
        assert_eq!(row.raw(), "z");
    }

    #[test]
    fn zero_data_rows() {
        for text in ["", "a,b\n", "a,b\r\n\r\n", "\u{feff}"] {
            let outcome = open_reader(false, text.as_bytes(), &CsvOptions::default(), None)
                .map(|r| read_all(r).1)
                .unwrap_or_else(|e| Some(e.to_string()));
            assert_eq!(outcome.as_deref(), Some("Found zero data rows in the file"), "{text:?}");
        }
        for text in ["", "\n\n", "[]", " [ ] "] {
            let r = open_reader(true, text.as_bytes(), &CsvOptions::default(), Some(vec!["a".into()])).unwrap();
            assert_eq!(read_all(r).1.as_deref(), Some("Found zero data rows in the file"), "{text:?}");
        }
    }

    #[test]
    fn bad_headers_name_the_column() {
        let e = open_reader(false, "a,,c\n1,2,3\n".as_bytes(), &CsvOptions::default(), None)
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "the header's column 2 : has no name");
        let e = open_reader(false, "a,b,a\n".as_bytes(), &CsvOptions::default(), None)
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "the header's column 3 `a`: appears twice");
        let e = open_reader(false, &b"a,\xff\n1,2\n"[..], &CsvOptions::default(), None)
            .err()
            .unwrap();
        assert!(matches!(e, FileError::NotUtf8Header));
    }

    #[test]
    fn ndjson_with_nested_keys_arrays_and_nulls() {
        let text = "{\"id\": \"u1\", \"user\": {\"first_name\": \"Ana\", \"age\": 31}, \"tags\": [\"a\", 2], \"ok\": true}\n\
\n\
{\"id\": \"u2\", \"user\": {\"first_name\": null}, \"tags\": [], \"ok\": \"\"}\n\
not json\n\
[1, 2]\n\
{\"id\": \"u3\"}";
        let cols = vec!["id".into(), "user.first_name".into(), "user.age".into(), "tags".into(), "ok".into()];
        let r = open_reader(true, text.as_bytes(), &CsvOptions::default(), Some(cols)).unwrap();
        let (rows, end) = read_all(r);
        assert_eq!(end, None);
        assert_eq!(
            rows[0],
            Ok(vec![
                Some("u1".into()),
                Some("Ana".into()),
                Some("31".into()),
                Some("[a|2]".into()),
                Some("true".into())
            ])
        );
        assert_eq!(rows[1], Ok(vec![Some("u2".into()), None, None, Some("[]".into()), None]));
        assert!(rows[2].clone().unwrap_err().starts_with("row 3: not valid JSON"));
        assert!(rows[3].clone().unwrap_err().starts_with("row 4: the value is not a JSON object"));
        assert_eq!(rows[4], Ok(vec![Some("u3".into()), None, None, None, None]));
    }

    #[test]
    fn a_top_level_array_streams_element_by_element() {
        let text = "\u{feff} [ {\"a\": \"x,]}\\\"\", \"n\": {\"b\": [1, {\"c\": 2}]}} ,\n {\"a\": \"y\"}, 5 ] ";
        let r: Box<dyn RowReader> = Box::new(JsonRowReader::new(Trickle(text.as_bytes()), None).unwrap());
        assert_eq!(r.columns(), ["a", "n.b"]);
        let (rows, end) = read_all(r);
        assert_eq!(end, None);
        assert_eq!(rows[0], Ok(vec![Some("x,]}\"".into()), Some("[1|{\"c\":2}]".into())]));
        assert_eq!(rows[1], Ok(vec![Some("y".into()), None]));
        assert!(rows[2].clone().unwrap_err().contains("not a JSON object"));
        let unclosed = JsonRowReader::new("[{\"a\": 1}".as_bytes(), Some(vec!["a".into()])).unwrap();
        let (rows, end) = read_all(Box::new(unclosed));
        assert_eq!(rows.len(), 1);
        assert!(end.unwrap().contains("not closed"));
    }

    #[test]
    fn csv_streams_through_one_byte_reads() {
        let text = "a,b\n1,\"x\ny\"\n2,z\n";
        let r = CsvRowReader::new(Trickle(text.as_bytes()), &CsvOptions::default()).unwrap();
        let (rows, end) = read_all(Box::new(r));
        assert_eq!(end, None);
        assert_eq!(rows, [Ok(some(&["1", "x\ny"])), Ok(some(&["2", "z"]))]);
    }
}
