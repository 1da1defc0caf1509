use super::*;
use crate::codec::reader::testing::*;
use crate::error::{Classify, ErrorClass};

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
                bytes > 8 || (open && *i == last) || !r.iter().all(|f| f.trim_ascii().is_empty())
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

/// Throughput of the CSV hot path (read and parse every cell); run optimised with
/// `cargo test --release -p s3imports --lib reader::csv::tests::csv_throughput -- --ignored --nocapture`.
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
    use crate::model::values::{AttrType as T, ValueOptions, parse_value};
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
