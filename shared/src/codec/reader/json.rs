//! The JSON reader: NDJSON or one top-level array, cut into elements as it streams
//! (the fields of each are picked by `json_fields`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};

use serde::de::DeserializeSeed;

use super::json_fields::{ColumnIndex, Out, PathsSeed, RowSeed};
use super::row::{BOM, Position, ReadOptions, Resumed, RowReader, skip};
use super::row::{FileError, RawRow, ReadError, Row, RowError};

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
    /// Where the first element may start (after a byte order mark, blanks, `[`).
    header: u64,
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
            header: offset,
        };
        let columns = match columns {
            Some(c) => c,
            None => me.discover_columns()?,
        };
        me.index = ColumnIndex::new(&columns);
        me.columns = columns;
        Ok(me)
    }

    /// A reader that goes on from `at` (see [`super::resume_reader`]). What comes
    /// before the first element is only a byte order mark, blanks and `[`, so it is
    /// skipped, not read again: the shape comes from the checkpoint.
    pub fn resumed(
        read: R,
        columns: Vec<String>,
        options: &ReadOptions,
        at: &Position,
        layout: Resumed,
    ) -> Result<Self, FileError> {
        if at.offset < at.header {
            return Err(FileError::Resume(format!(
                "its position {} is before its first row at {}",
                at.offset, at.header
            )));
        }
        let mut inner = BufReader::with_capacity(256 * 1024, read);
        skip(
            &mut inner,
            match layout {
                Resumed::Whole => at.offset,
                Resumed::Ranged => at.header,
            },
        )?;
        let shape = match (at.in_array, at.row) {
            (false, _) => JsonShape::Lines,
            (true, 0) => JsonShape::Array(ArrayState::Start),
            (true, _) => JsonShape::Array(ArrayState::AfterElement),
        };
        Ok(Self {
            inner,
            index: ColumnIndex::new(&columns),
            columns,
            shape,
            buf: Vec::new(),
            pending: VecDeque::new(),
            rows: at.row,
            offset: at.offset,
            max_row_bytes: options.max_row_bytes.max(1),
            element_bytes: 0,
            done: false,
            header: at.header,
        })
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
                    crate::codec::limits::ROW_LIMIT_PARAMETER
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

    fn resumable(&self) -> bool {
        !self.done && self.pending.is_empty()
    }

    fn position(&self) -> Position {
        Position {
            offset: self.offset,
            header: self.header,
            row: self.rows,
            in_array: matches!(self.shape, JsonShape::Array(_)),
            ..Position::default()
        }
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
                crate::codec::limits::ROW_LIMIT_PARAMETER
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::reader::testing::*;
    use crate::error::{Classify, ErrorClass};

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
}
