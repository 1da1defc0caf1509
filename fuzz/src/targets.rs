//! What each target generates, and what it runs on an input.
//!
//! An input of the `csv` and `json` targets starts with one byte of knobs (the
//! delimiter, the row limit, and for JSON whether columns are given) and the file's
//! bytes follow, so a saved input replays exactly. The other targets take the input as
//! it is.

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rand::Rng;
use rand::rngs::StdRng;
use s3imports::Classify;
use s3imports::codec::limits::DEFAULT_MAX_ROW_BYTES;
use s3imports::codec::reader::{ReadError, ReadOptions, Row, RowReader, open_reader};
use s3imports::model::config::ImportConfig;
use s3imports::model::values::{AttrType, ValueDateTimeFormat, ValueOptions, parse_value};
use s3imports::rows::mapping::{
    ColumnMapping, CompiledMapping, MappedRow, MappingSpec, column_problems, parse_manifest,
    suggest_type,
};
use serde_json::Value;

use crate::mutate::{mutate_bytes, mutate_value, pick, random_bytes, random_tokens};
use crate::seeds;

// ---- csv and json

const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

fn delimiter(knobs: u8) -> u8 {
    DELIMITERS[usize::from(knobs & 3)]
}

/// Sometimes a tiny row limit, so oversized rows and headers are common.
fn max_row_bytes(knobs: u8) -> usize {
    match (knobs >> 2) & 7 {
        4 => 1,
        5 => 8,
        6 => 64,
        7 => 300,
        _ => DEFAULT_MAX_ROW_BYTES,
    }
}

/// Columns a JSON reader is given (or `None`: taken from the first object).
fn json_columns(knobs: u8) -> Option<Vec<String>> {
    (knobs & 0x20 != 0).then(|| {
        [
            "id",
            "user.first_name",
            "tags",
            "a.b",
            "x.w",
            "deep",
            "n",
            "id",
            "user",
        ]
        .map(String::from)
        .to_vec()
    })
}

const TYPES: [AttrType; 6] = [
    AttrType::String,
    AttrType::Integer,
    AttrType::Number,
    AttrType::Boolean,
    AttrType::Datetime,
    AttrType::List,
];

const TIMEZONES: [Tz; 5] = [
    Tz::UTC,
    Tz::Europe__Berlin,
    Tz::Asia__Kolkata,
    Tz::America__St_Johns,
    Tz::Pacific__Chatham,
];

/// The date-time formats cells are read with (`None`: the ISO default).
fn formats() -> &'static [Option<ValueDateTimeFormat>] {
    static FORMATS: OnceLock<Vec<Option<ValueDateTimeFormat>>> = OnceLock::new();
    FORMATS.get_or_init(|| {
        let mut all = vec![None];
        for f in [
            "iso8601",
            "YYYY-MM-DD",
            "DD/MM/YYYY",
            "YYYY-MM-DD hh:mm:ss",
            "DD-MM-YYYY hh:mm:ss.s",
            "YYYY/MM/DD hh:mm:ss[.s]",
            "YYYY-MM-DDThh:mm:ssTZD",
            "DD/MM/YYYYThh:mm:ss[.s]TZD",
            "%d.%m.%Y %H:%M",
            "%s",
            "%Y-%m-%dT%H:%M:%S%:z",
            "%b %d %Y %I:%M:%S %p",
        ] {
            all.push(ValueDateTimeFormat::parse(f).ok());
        }
        all
    })
}

/// Reads every row of a CSV or JSON input, parses each cell as some type, and checks
/// that reading ends: at most one row per byte, and `Ok(false)` again once ended.
pub fn exec_rows(json: bool, input: &[u8]) {
    let (knobs, data) = input.split_first().map_or((0, &[][..]), |(k, d)| (*k, d));
    let options = ReadOptions {
        delimiter: delimiter(knobs),
        max_row_bytes: max_row_bytes(knobs),
    };
    let columns = if json { json_columns(knobs) } else { None };
    let mut reader = match open_reader(json, data, &options, columns) {
        Ok(r) => r,
        Err(e) => {
            let _ = (e.to_string(), e.class());
            return;
        }
    };
    let mut row = Row::default();
    for _ in 0..data.len() + 2 {
        match reader.read_row(&mut row) {
            Ok(true) => touch_row(&*reader, &row, knobs),
            Ok(false) => {
                assert!(
                    matches!(reader.read_row(&mut row), Ok(false)),
                    "invariant: a reader at its end must stay there"
                );
                return;
            }
            Err(ReadError::Row(e)) => {
                let _ = (e.to_string(), e.class());
            }
            Err(ReadError::File(e)) => {
                let _ = (e.to_string(), e.class());
                return;
            }
        }
    }
    panic!("invariant: the reader gave more rows than the input has bytes (it never ends)");
}

fn touch_row(reader: &dyn RowReader, row: &Row, knobs: u8) {
    let _ = (
        row.raw(),
        row.byte_len(),
        row.number(),
        reader.columns().len(),
    );
    let shift = usize::from(knobs >> 6);
    let formats = formats();
    for i in 0..row.len() {
        let Some(cell) = row.get(i) else { continue };
        let n = i + shift + row.number() as usize;
        let opts = ValueOptions {
            datetime_format: formats[n % formats.len()].as_ref(),
            timezone: TIMEZONES[n % TIMEZONES.len()],
            list_delimiter: [None, Some(';'), Some('|')][n % 3],
        };
        if let Ok(Some(v)) = parse_value(cell, TYPES[(i + shift) % TYPES.len()], &opts) {
            let _ = v.to_display_string();
        }
        let _ = suggest_type(cell);
    }
}

/// Cells for generated tables and objects: each type's forms, and the awkward ones.
const CELLS: &[&str] = &[
    "",
    "1",
    "-7",
    "+3",
    "1.5",
    "1e3",
    "1e999",
    "9223372036854775808",
    "yes",
    "N",
    "2022-01-31T12:59:00Z",
    "2022-01-31 12:59:00.123456789",
    "2022-01-31T12:59:00+05:30",
    "31/01/2022",
    "31-01-2022T12:59:00.5Z",
    "2022/01/31 12:59:00",
    "1643633940",
    "Jan 31 2022 01:59:00 PM",
    "2022-03-27 02:30:00",
    "[a|b|c]",
    "[]",
    "a,b",
    "a;b",
    "say \"hi\"",
    "two\nlines",
    "\u{e9}t\u{e9}",
    " x ",
    "\u{feff}",
];

/// A table in `delimiter`: usually well formed, sometimes ragged or badly quoted.
fn random_table(rng: &mut StdRng, delimiter: u8) -> Vec<u8> {
    let cols = rng.random_range(1..=8);
    let rows = rng.random_range(0..=20);
    let crlf = rng.random_bool(0.3);
    let mut out = Vec::new();
    if rng.random_bool(0.1) {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    for r in 0..=rows {
        let width = if rng.random_bool(0.1) {
            rng.random_range(0..=cols + 2)
        } else {
            cols
        };
        for c in 0..width {
            if c > 0 {
                out.push(delimiter);
            }
            let cell = if r == 0 {
                format!("c{c}")
            } else {
                (*pick(rng, CELLS)).to_string()
            };
            let needs = cell
                .bytes()
                .any(|b| b == delimiter || matches!(b, b'"' | b'\n' | b'\r'));
            if needs || rng.random_bool(0.1) {
                out.push(b'"');
                let escape = rng.random_bool(0.95);
                for b in cell.bytes() {
                    if b == b'"' && escape {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            } else {
                out.extend_from_slice(cell.as_bytes());
            }
        }
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    }
    out
}

fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    const KEYS: [&str; 10] = [
        "id",
        "user",
        "first_name",
        "tags",
        "a.b",
        "x",
        "w",
        "deep",
        "n",
        "at",
    ];
    let max = if depth == 0 { 5 } else { 7 };
    match rng.random_range(0..max) {
        0 => Value::String((*pick(rng, CELLS)).to_string()),
        1 => Value::from(rng.random::<i64>() >> rng.random_range(0..64)),
        2 => serde_json::Number::from_f64(rng.random::<f64>() * 1e6)
            .map_or(Value::Null, Value::Number),
        3 => Value::Bool(rng.random()),
        4 => Value::Null,
        5 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.random_range(0..6))
                .map(|_| ((*pick(rng, &KEYS)).to_string(), random_json(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// Objects one per line, or in an array.
fn random_json_file(rng: &mut StdRng) -> Vec<u8> {
    let items: Vec<String> = (0..rng.random_range(0..12))
        .map(|_| match rng.random_range(0..10) {
            0 => random_json(rng, 2).to_string(),
            _ => {
                let fields: serde_json::Map<String, Value> = (0..rng.random_range(0..6))
                    .map(|i| {
                        let key = ["id", "user", "tags", "a.b", "x", "deep", "n"][i % 7];
                        (key.to_string(), random_json(rng, 2))
                    })
                    .collect();
                Value::Object(fields).to_string()
            }
        })
        .collect();
    let text = if rng.random_bool(0.5) {
        items.join(if rng.random_bool(0.8) { "\n" } else { "\r\n" })
    } else {
        format!(
            "[{}]",
            items.join(if rng.random_bool(0.5) { "," } else { ",\n " })
        )
    };
    text.into_bytes()
}

pub fn generate_rows(rng: &mut StdRng, json: bool) -> Vec<u8> {
    let knobs: u8 = rng.random();
    let (seeds, tokens) = if json {
        (seeds::JSON, seeds::JSON_TOKENS)
    } else {
        (seeds::CSV, seeds::CSV_TOKENS)
    };
    let mut data = match rng.random_range(0..100) {
        0..8 => random_bytes(rng),
        8..16 => random_tokens(rng, tokens),
        16..30 => {
            let mut d = if json {
                random_json_file(rng)
            } else {
                random_table(rng, delimiter(knobs))
            };
            if rng.random_bool(0.5) {
                mutate_bytes(rng, &mut d, seeds, tokens);
            }
            d
        }
        _ => {
            let mut d = pick(rng, seeds).to_vec();
            mutate_bytes(rng, &mut d, seeds, tokens);
            d
        }
    };
    data.insert(0, knobs);
    data
}

// ---- config and manifest

/// Text from a JSON seed: mutated as a document (then sometimes as text too), or as text.
fn generate_json_text(rng: &mut StdRng, seeds: &[&str]) -> Vec<u8> {
    let byte_seeds: Vec<&[u8]> = seeds.iter().map(|s| s.as_bytes()).collect();
    match rng.random_range(0..100) {
        0..5 => random_bytes(rng),
        5..10 => random_tokens(rng, seeds::TEXT_TOKENS),
        10..85 => {
            let seed = pick(rng, seeds);
            let mut value: Value = serde_json::from_str(seed).unwrap_or(Value::Null);
            mutate_value(rng, &mut value);
            let mut text = if rng.random_bool(0.5) {
                value.to_string().into_bytes()
            } else {
                serde_json::to_vec_pretty(&value).unwrap_or_default()
            };
            if rng.random_bool(0.1) {
                mutate_bytes(rng, &mut text, &byte_seeds, seeds::TEXT_TOKENS);
            }
            text
        }
        _ => {
            let mut text = pick(rng, seeds).as_bytes().to_vec();
            mutate_bytes(rng, &mut text, &byte_seeds, seeds::TEXT_TOKENS);
            text
        }
    }
}

pub fn generate_config(rng: &mut StdRng) -> Vec<u8> {
    generate_json_text(rng, seeds::CONFIG)
}

pub fn generate_manifest(rng: &mut StdRng) -> Vec<u8> {
    generate_json_text(rng, seeds::MANIFEST)
}

/// Times schedules are asked about: daylight-saving days, a leap day, the far ends.
fn instants() -> [DateTime<Utc>; 5] {
    [
        (2026, 3, 29, 0, 30, 0),
        (2026, 10, 25, 0, 30, 0),
        (2024, 2, 29, 23, 59, 59),
        (1970, 1, 1, 0, 0, 0),
        (2099, 12, 31, 23, 59, 0),
    ]
    .map(|(y, mo, d, h, mi, s)| {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .unwrap_or(DateTime::UNIX_EPOCH)
    })
}

/// Parses a config the two ways the API and CLI do; a valid one is used the ways the
/// services use it, and must read back from its own JSON as the same config.
pub fn exec_config(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    match ImportConfig::from_json(&text) {
        Ok(config) => use_config(&config, input.len()),
        Err(e) => {
            let _ = (e.to_string(), e.class());
        }
    }
    if let Ok(value) = serde_json::from_str::<Value>(&text)
        && let Ok(config) = ImportConfig::for_preview(value)
    {
        let _ = (config.problems(), config.file_pattern().example_name());
    }
}

fn use_config(config: &ImportConfig, salt: usize) {
    let _ = (
        config.redacted(),
        config.duplicate_key(),
        config.inline_columns(),
        config.is_encrypted(),
    );
    let pattern = config.file_pattern();
    let _ = (pattern.max_name_len(), pattern.extensions());
    let example = format!("{}/{}", config.source.folder, pattern.example_name());
    let matched = pattern.match_key(&example);
    // (An event name with a `/` once made a default prefix no file could match; config
    // validation refuses it now.)
    assert!(
        matched.is_ok(),
        "invariant: the example name `{example}` must match its own pattern: {matched:?}"
    );
    if let Ok(m) = &matched {
        let _ = pattern.start_after(m);
    }
    // Keys one edit away from the example.
    let mut key = example.into_bytes();
    if !key.is_empty() {
        let i = salt % key.len();
        key[i] = b"_.9/aZ\xc3"[salt % 7];
        if let Ok(m) = pattern.match_key(&String::from_utf8_lossy(&key)) {
            let _ = pattern.start_after(&m);
        }
    }
    let tz = config.timezone;
    let _ = config.schedule.describe(tz);
    let from = instants()[salt % 5];
    let _ = config.schedule.first_run(from, tz);
    let _ = config.schedule.next_run_after(from, tz);

    let json = serde_json::to_string(config).unwrap_or_default();
    match ImportConfig::from_json(&json) {
        Ok(back) => assert!(
            back == *config,
            "invariant: a config must read back from its JSON as itself: {json}"
        ),
        Err(e) => panic!("invariant: a valid config's JSON must be valid: {e}\n{json}"),
    }
}

/// One config per kind, for binding mappings.
fn kind_configs() -> &'static [ImportConfig] {
    static CONFIGS: OnceLock<Vec<ImportConfig>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        [
            r#"{"type": "registered_users"}"#,
            r#"{"type": "events", "event_name": "Buy", "event_time_in": "app"}"#,
            r#"{"type": "anonymous_users", "identifier_column": "device"}"#,
            r#"{"type": "auxiliary", "dataset": "stores", "key_column": "code", "retention_days": 30}"#,
        ]
        .iter()
        .filter_map(|kind| {
            let text = format!(
                r#"{{"id": "f", "name": "F", "kind": {kind}, "source": {{"bucket": "bucket", "folder": "f", "datetime_format": "yyyymmdd"}},
                "mapping": {{"manifest": "m.json"}}, "schedule": {{"type": "once"}}, "timezone": "Asia/Kolkata"}}"#
            );
            ImportConfig::from_json(&text).ok()
        })
        .collect()
    })
}

/// Reads a mapping file; one that parses is checked for every kind, must read back from
/// its own JSON, and maps a small CSV file whose header is its columns.
pub fn exec_manifest(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let columns = match parse_manifest(&text) {
        Ok(c) => c,
        Err(e) => {
            let _ = (e.to_string(), e.class());
            return;
        }
    };
    let json = serde_json::to_string(&columns).unwrap_or_default();
    match parse_manifest(&json) {
        Ok(back) => assert!(
            back == columns,
            "invariant: a mapping must read back from its JSON as itself: {json}"
        ),
        Err(e) => panic!("invariant: a mapping's JSON must be a valid mapping file: {e}\n{json}"),
    }
    let spec = MappingSpec::Columns {
        columns: columns.clone(),
    };
    for (k, config) in kind_configs().iter().enumerate() {
        let _ = spec.problems(&config.kind);
        let _ = column_problems(&columns, &config.kind, "mapping");
        map_sample(config, &columns, input.len() + k);
    }
}

fn map_sample(config: &ImportConfig, columns: &[ColumnMapping], salt: usize) {
    let mut header: Vec<&str> = columns.iter().map(|c| c.column.as_str()).collect();
    header.extend(["device", "code"]);
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut csv = header
        .iter()
        .map(|h| quote(h))
        .collect::<Vec<_>>()
        .join(",");
    for r in 0..3 {
        csv.push('\n');
        let cells: Vec<String> = (0..header.len())
            .map(|c| quote(CELLS[(salt + r * 7 + c * 3) % CELLS.len()]))
            .collect();
        csv.push_str(&cells.join(","));
    }
    let Ok(mut reader) = open_reader(false, csv.as_bytes(), &ReadOptions::default(), None) else {
        return;
    };
    let mapping = match CompiledMapping::new(config, columns, reader.columns()) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = mapping.mapped_columns().count();
    let mut row = Row::default();
    let mut out = MappedRow::default();
    while let Ok(true) | Err(ReadError::Row(_)) = reader.read_row(&mut row) {
        match mapping.map_row(&row, &mut out) {
            Ok(()) => {
                for (slot, value) in &out.attributes {
                    let _ = (mapping.name(*slot), value.to_display_string());
                }
            }
            Err(errors) => {
                let _ = errors.iter().map(ToString::to_string).count();
            }
        }
    }
}

// ---- sniff

pub fn generate_sniff(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..100) {
        0..30 => random_bytes(rng),
        // A packet header: bit 7 set, then lengths and a body of any bytes.
        30..55 => {
            let mut d = vec![rng.random::<u8>() | 0x80];
            let n = rng.random_range(0..=12);
            d.extend((0..n).map(|_| rng.random::<u8>()));
            d
        }
        _ => {
            let mut d = pick(rng, seeds::SNIFF).to_vec();
            mutate_bytes(rng, &mut d, seeds::SNIFF, seeds::SNIFF);
            d
        }
    }
}

/// Sniffs the input and every prefix of up to 16 bytes of it (heads get cut anywhere).
pub fn exec_sniff(input: &[u8]) {
    let head = &input[..input.len().min(s3imports::codec::sniff::HEAD_BYTES)];
    for bytes in [input, head] {
        let _ = s3imports::codec::pgp::looks_like_pgp(bytes);
        let _ = s3imports::codec::sniff::binary_kind(bytes);
        let _ = s3imports::codec::sniff::describe(bytes);
    }
    for n in 0..input.len().min(16) {
        let _ = s3imports::codec::pgp::looks_like_pgp(&input[..n]);
        let _ = s3imports::codec::sniff::binary_kind(&input[..n]);
    }
}
