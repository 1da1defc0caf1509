//! Properties over generated inputs (proptest, which shrinks a failure to a minimal
//! case): CSV written by the `csv` crate reads back field for field, and merging a
//! batch's writes to the same item gives what writing the rows one by one gives, and
//! a read resumed from any row's position goes on exactly as the unbroken read.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use s3imports::codec::reader::{
    Position, ReadError, ReadOptions, Resumed, Row, RowReader, open_reader, resume_reader,
    split_points,
};
use s3imports::model::values::Value;
use s3imports::rows::sink::{FileAttributes, Write, coalesce};

/// Field text with everything CSV must quote: quotes, delimiters, line breaks.
fn field() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z0-9\",;\r\néß]{0,10}").unwrap()
}

/// A table: a width, then at least one record (a file of no rows fails as "zero data
/// rows") of that many fields, none blank (the reader skips a record of nothing but
/// delimiters and white space, as it skips an empty line).
fn table() -> impl Strategy<Value = (usize, Vec<Vec<String>>)> {
    (1usize..5).prop_flat_map(|width| {
        let record = proptest::collection::vec(field(), width).prop_filter("not blank", |r| {
            r.iter().any(|f| !f.trim_ascii().is_empty())
        });
        (Just(width), proptest::collection::vec(record, 1..20))
    })
}

/// Each outcome of reading on (row number, fields or the error, the position after
/// when it can be resumed from).
type Outcome = (u64, Result<Vec<Option<String>>, String>, Option<Position>);

fn read_on(reader: &mut dyn RowReader) -> Vec<Outcome> {
    let mut row = Row::default();
    let mut out = Vec::new();
    loop {
        let got = match reader.read_row(&mut row) {
            Ok(true) => (
                row.number(),
                Ok((0..reader.columns().len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect()),
            ),
            Ok(false) => break,
            Err(ReadError::Row(e)) => (e.row, Err(e.to_string())),
            Err(ReadError::File(e)) => (0, Err(format!("file: {e}"))),
        };
        let stop = got.0 == 0;
        out.push((got.0, got.1, reader.resumable().then(|| reader.position())));
        if stop {
            break;
        }
    }
    out
}

/// Plaintext with what breaks naive resuming: a byte order mark, CRLF and CR line ends,
/// blank lines, quoted line breaks, stray quotes, rows of only delimiters; NDJSON or an
/// array, with blank lines and bad elements.
fn plaintext() -> impl Strategy<Value = (bool, Vec<u8>)> {
    let csv = (
        any::<bool>(),
        proptest::string::string_regex("(h1,h2|\"h 1\",h2)(\r\n|\n|\r)").unwrap(),
        proptest::string::string_regex("([a-c,\" ]{0,6}(\r\n|\n|\r)){1,12}").unwrap(),
    )
        .prop_map(|(bom, header, body)| {
            let bom = if bom { "\u{feff}" } else { "" };
            (false, format!("{bom}{header}{body}").into_bytes())
        });
    let element = prop_oneof![
        proptest::string::string_regex("\\{\"a\": ?\"[a-c,\\]\\[ ]{0,4}\"\\}").unwrap(),
        Just("{\"a\": 1, \"b\": [1, {\"c\": \"]\"}]}".to_string()),
        Just("[1]".to_string()),
        Just("\"x\"".to_string()),
    ];
    let json =
        (any::<bool>(), proptest::collection::vec(element, 1..10)).prop_map(|(array, els)| {
            let text = if array {
                format!("[\n {}\n]\n", els.join(" ,\n"))
            } else {
                format!("\n{}\n", els.join("\n\n"))
            };
            (true, text.into_bytes())
        });
    prop_oneof![csv, json]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn a_read_resumed_at_any_row_goes_on_as_the_unbroken_read(
        (json, bytes) in plaintext(),
        cut in any::<prop::sample::Index>(),
    ) {
        let options = ReadOptions::default();
        let columns = json.then(|| vec!["a".to_string(), "b.c".to_string()]);
        let Ok(mut reader) = open_reader(json, bytes.as_slice(), &options, columns.clone()) else {
            return Ok(());
        };
        let all = read_on(reader.as_mut());
        // Resume after any row that leaves the reader between rows.
        let resumable: Vec<usize> = (0..all.len()).filter(|&i| all[i].0 != 0 && all[i].2.is_some()).collect();
        if resumable.is_empty() {
            return Ok(());
        }
        let i = resumable[cut.index(resumable.len())];
        let at = all[i].2.clone().unwrap();
        let rest = &all[i + 1..];
        let mut whole = resume_reader(json, bytes.as_slice(), &options, columns.clone(), &at, Resumed::Whole).unwrap();
        prop_assert_eq!(read_on(whole.as_mut()), rest.to_vec());
        let header = at.header as usize;
        let ranged_bytes = [&bytes[..header], &bytes[at.offset as usize..]].concat();
        let mut ranged = resume_reader(json, ranged_bytes.as_slice(), &options, columns, &at, Resumed::Ranged).unwrap();
        // The ranged read sees the same rows; its offsets are of the whole file too.
        prop_assert_eq!(read_on(ranged.as_mut()), rest.to_vec());
    }

    #[test]
    fn chunks_read_apart_give_the_rows_of_the_whole_read(
        (json, bytes) in plaintext(),
        chunk_bytes in 1u64..40,
    ) {
        let options = ReadOptions::default();
        let columns = json.then(|| vec!["a".to_string(), "b.c".to_string()]);
        let Ok(mut reader) = open_reader(json, bytes.as_slice(), &options, columns.clone()) else {
            return Ok(());
        };
        let strip = |v: Vec<Outcome>| v.into_iter().map(|(r, o, _)| (r, o)).collect::<Vec<_>>();
        let whole = strip(read_on(reader.as_mut()));
        let Some(split) = split_points(json, bytes.as_slice(), &options, columns.clone(), chunk_bytes, 64, 0).unwrap() else {
            return Ok(());
        };
        prop_assert_eq!(split.end, bytes.len() as u64);
        let mut apart = Vec::new();
        for (i, at) in split.starts.iter().enumerate() {
            let chunk = [&bytes[..at.header as usize], &bytes[at.offset as usize..split.chunk_end(i) as usize]].concat();
            let mut r = resume_reader(json, chunk.as_slice(), &options, columns.clone(), at, Resumed::Ranged).unwrap();
            apart.extend(strip(read_on(r.as_mut())));
        }
        prop_assert_eq!(apart, whole);
    }

    #[test]
    fn csv_written_by_the_csv_crate_reads_back_field_for_field(
        (width, records) in table(),
        crlf in any::<bool>(),
        delimiter in prop_oneof![Just(b','), Just(b';'), Just(b'\t'), Just(b'|')],
    ) {
        let header: Vec<String> = (0..width).map(|i| format!("c{i}")).collect();
        let mut out = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
            .from_writer(Vec::new());
        out.write_record(&header).unwrap();
        for r in &records {
            out.write_record(r).unwrap();
        }
        let bytes = out.into_inner().unwrap();
        let options = ReadOptions { delimiter, ..ReadOptions::default() };
        let mut reader = open_reader(false, bytes.as_slice(), &options, None).unwrap();
        prop_assert_eq!(reader.columns(), header.as_slice());
        let mut row = Row::default();
        let mut read = Vec::new();
        while reader.read_row(&mut row).unwrap() {
            read.push((0..row.len()).map(|i| row.get(i).unwrap_or_default().to_string()).collect::<Vec<_>>());
        }
        prop_assert_eq!(read, records);
    }

    #[test]
    fn merged_writes_leave_what_row_by_row_writes_leave(
        rows in proptest::collection::vec(
            // Config validation maps an attribute from one column only.
            (0u8..4, proptest::collection::btree_map(0u32..4, -5i64..5, 1..4)),
            0..40,
        ),
    ) {
        let file = FileAttributes {
            key: "user_id".into(),
            names: (0..4).map(|i| format!("a{i}")).collect(),
            common: Vec::new(),
            put_key: None,
            ordered: None,
            segment: None,
        };
        let writes: Vec<(u64, Write)> = rows
            .iter()
            .enumerate()
            .map(|(i, (user, set))| {
                (
                    i as u64 + 2,
                    Write::Update {
                        key: format!("u{user}"),
                        set: set.iter().map(|(a, v)| (*a, Value::Integer(*v))).collect(),
                    },
                )
            })
            .collect();
        let apply = |items: &mut HashMap<String, BTreeMap<u32, Value>>, w: &Write| {
            if let Write::Update { key, set } = w {
                let item = items.entry(key.clone()).or_default();
                for (a, v) in set {
                    item.insert(*a, v.clone());
                }
            }
        };
        let mut one_by_one = HashMap::new();
        for (_, w) in &writes {
            apply(&mut one_by_one, w);
        }
        let merged = coalesce(writes.clone(), &file);
        let mut batched = HashMap::new();
        for (_, w) in &merged {
            apply(&mut batched, w);
        }
        prop_assert_eq!(batched, one_by_one);
        // Each row is behind exactly one merged write, which names its item once.
        let mut behind: Vec<u64> = merged.iter().flat_map(|(r, _)| r.all().collect::<Vec<_>>()).collect();
        behind.sort_unstable();
        prop_assert_eq!(behind, (2..writes.len() as u64 + 2).collect::<Vec<_>>());
        let keys: std::collections::HashSet<_> = merged.iter().map(|(_, w)| match w {
            Write::Update { key, .. } => key.clone(),
            Write::Put(_) => String::new(),
        }).collect();
        prop_assert_eq!(keys.len(), merged.len());
    }
}

#[test]
fn a_csv_with_a_quoted_line_break_splits_between_rows_only() {
    let csv = b"id,note\r\n1,\"a\r\nb\"\r\n2,x\r\n3,\"c\nd\"\r\n4,y\r\n";
    let split = split_points(false, &csv[..], &ReadOptions::default(), None, 4, 64, 0)
        .unwrap()
        .unwrap();
    let offsets: Vec<u64> = split.starts.iter().map(|p| p.offset).collect();
    let rows: Vec<u64> = split.starts.iter().map(|p| p.row).collect();
    // After the header, then after each row (csv_core ends a record at its `\r`):
    // never inside the quoted breaks, and no chunk after the last row.
    assert_eq!(offsets, [8, 18, 23, 32]);
    assert_eq!(rows, [1, 2, 3, 4]);
    assert_eq!(split.end, csv.len() as u64);
}
