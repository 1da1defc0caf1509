//! The CSV reader: `csv_core` into bounded buffers, a header row first.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

use super::row::{BOM, MAX_FIELDS, Position, ReadOptions, Resumed, RowReader, skip};
use super::row::{FileError, RawRow, ReadError, Row, RowError};

/// Drops a UTF-8 byte order mark at the start of a stream. It must go before the csv
/// parser sees it, or a quoted first header would not read as quoted.
struct SkipBom<R> {
    inner: R,
    head: [u8; 3],
    head_len: usize,
    head_pos: usize,
    checked: bool,
    /// A byte order mark was dropped (it still counts in plaintext offsets).
    stripped: bool,
}

impl<R: Read> SkipBom<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            head: [0; 3],
            head_len: 0,
            head_pos: 0,
            checked: false,
            stripped: false,
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
                self.stripped = true;
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
    /// Bytes consumed after any byte order mark.
    consumed: u64,
    /// The plaintext offset where the header ends.
    header: u64,
    /// Lines before the ones `csv_core` counted (a resumed read starts mid-file).
    line_base: u64,
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
            consumed: 0,
            header: 0,
            line_base: 0,
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
        me.header = me.offset();
        Ok(me)
    }

    /// The plaintext offset read to (a byte order mark included).
    fn offset(&self) -> u64 {
        self.consumed + if self.input.get_ref().stripped { 3 } else { 0 }
    }

    /// The physical line `csv_core` is on, counted from the file's start.
    fn line(&self) -> u64 {
        self.core.line() + self.line_base
    }

    /// Goes on from `at`, the header just read (see [`super::resume_reader`]).
    pub fn resume(&mut self, at: &Position, layout: Resumed) -> Result<(), FileError> {
        let here = self.offset();
        if here != at.header || at.offset < here || at.line < self.core.line() {
            return Err(FileError::Resume(format!(
                "the header ends at byte {here}, the checkpoint's at byte {}",
                at.header
            )));
        }
        if layout == Resumed::Whole {
            skip(&mut self.input, at.offset - here)?;
        }
        self.consumed += at.offset - here;
        self.line_base = at.line - self.core.line();
        self.number = at.row;
        self.yielded = u64::from(at.row > 1);
        self.prev_cr = at.after_cr;
        self.after_nl = at.after_nl;
        Ok(())
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
        rec.first_line = self.core.line() + self.line_base;
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
                self.last_line = (self.core.line() + self.line_base) - u64::from(self.after_nl);
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
                self.consumed += nin as u64;
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
                        (self.core.line() + self.line_base) - u64::from(ended_nl)
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

    fn resumable(&self) -> bool {
        !self.done && self.pending.is_none()
    }

    fn position(&self) -> Position {
        Position {
            offset: self.offset(),
            header: self.header,
            row: self.number,
            line: self.line(),
            after_cr: self.prev_cr,
            after_nl: self.after_nl,
            in_array: false,
        }
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
                crate::codec::limits::ROW_LIMIT_PARAMETER
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

#[cfg(test)]
mod tests;
