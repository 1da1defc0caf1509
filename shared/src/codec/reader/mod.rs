//! Streaming row readers for CSV and JSON, with constant memory: rows are read into
//! reused buffers, one at a time. A bad row is an error for that row only (the
//! caller records it and reads on); a file-level problem ends the file.
//!
//! `row` holds the row and its errors, `csv` and `json` the two readers, and
//! `json_fields` the serde visitors that pick a JSON object's wanted fields.

mod csv;
mod json;
mod json_fields;
mod row;

use std::io::Read;

use serde::{Deserialize, Serialize};

pub use self::csv::CsvRowReader;
pub use self::json::JsonRowReader;
pub use self::row::{
    FileError, MAX_FIELDS, Position, ReadError, ReadOptions, Resumed, Row, RowError, RowReader,
};

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

/// A reader that goes on from `at`: it reads the header from `read` again, then
/// the rows after `at` (skipping to it when the input is [`Resumed::Whole`]).
pub fn resume_reader<'a, R: Read + 'a>(
    json: bool,
    read: R,
    options: &ReadOptions,
    columns: Option<Vec<String>>,
    at: &Position,
    layout: Resumed,
) -> Result<Box<dyn RowReader + 'a>, FileError> {
    if json {
        let columns = columns.ok_or_else(|| {
            FileError::Resume("a JSON read resumes with its columns given".into())
        })?;
        Ok(Box::new(JsonRowReader::resumed(
            read, columns, options, at, layout,
        )?))
    } else {
        let mut r = CsvRowReader::new(read, options)?;
        r.resume(at, layout)?;
        Ok(Box::new(r))
    }
}

/// A file cut into chunks at row boundaries: chunk `i` is the rows from `starts[i]`
/// up to `starts[i + 1].offset` (the last to `end`), each read as a resumed read from
/// its start (a quoted line break never splits a row).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub starts: Vec<Position>,
    /// The plaintext's length.
    pub end: u64,
    /// The plaintext is staged in the stack's bucket (a PGP or gzip file), not read
    /// from the object itself.
    #[serde(default)]
    pub staged: bool,
    /// Which of the import's PGP keys decrypted the file (the split pass read it);
    /// the file's outcome records it when its last chunk ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decrypted_with: Option<String>,
    /// The plaintext's SHA-256 (the split pass read it all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Split {
    pub fn chunks(&self) -> usize {
        self.starts.len()
    }

    /// Where chunk `i` ends (exclusive).
    pub fn chunk_end(&self, i: usize) -> u64 {
        self.starts.get(i + 1).map_or(self.end, |p| p.offset)
    }
}

/// Reads a file through to find where to cut it into chunks of about `chunk_bytes`
/// (at most `max_chunks`, larger chunks when more would be needed). None when it does
/// not split: under two chunks, a JSON array (its elements are cut by commas a resumed
/// read cannot place), or a file error (the whole read reports it).
pub fn split_points<R: Read>(
    json: bool,
    read: R,
    options: &ReadOptions,
    columns: Option<Vec<String>>,
    chunk_bytes: u64,
    max_chunks: usize,
    total_hint: u64,
) -> Result<Option<Split>, FileError> {
    let mut rows = open_reader(json, read, options, columns)?;
    let first = rows.position();
    if first.in_array {
        return Ok(None);
    }
    let chunk_bytes = chunk_bytes
        .max(total_hint.div_ceil(max_chunks.max(1) as u64))
        .max(1);
    let mut starts = vec![first];
    let mut row = Row::default();
    loop {
        match rows.read_row(&mut row) {
            Ok(true) | Err(ReadError::Row(_)) => {}
            Ok(false) => break,
            Err(ReadError::File(_)) => return Ok(None),
        }
        let at = rows.position();
        let from = starts.last().map_or(0, |p| p.offset);
        if at.offset >= from + chunk_bytes && rows.resumable() && starts.len() < max_chunks {
            starts.push(at);
        }
    }
    let last = rows.position();
    // A cut after the last row would leave a chunk of no rows.
    if starts.len() > 1 && starts.last().is_some_and(|p| p.row >= last.row) {
        starts.pop();
    }
    let end = last.offset;
    Ok((starts.len() >= 2).then_some(Split {
        starts,
        end,
        staged: false,
        decrypted_with: None,
        sha256: None,
    }))
}

/// Readers and helpers shared by the readers' unit tests.
#[cfg(test)]
mod testing {
    use super::*;

    /// Hands out one byte per read, to prove nothing assumes whole chunks.
    pub(super) struct OneByte<'a>(pub(super) &'a [u8]);

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
    pub(super) struct Failing {
        pub(super) data: Vec<u8>,
        pub(super) pos: usize,
        pub(super) kind: std::io::ErrorKind,
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
    pub(super) type Outcome = (u64, Result<Vec<Option<String>>, String>, String);

    pub(super) fn drain(r: &mut dyn RowReader) -> Vec<Outcome> {
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

    pub(super) fn csv_reader(data: &[u8], delimiter: u8) -> CsvRowReader<&[u8]> {
        CsvRowReader::new(
            data,
            &ReadOptions {
                delimiter,
                ..Default::default()
            },
        )
        .unwrap()
    }

    pub(super) fn fields(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::error::{Classify, ErrorClass};

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
}
