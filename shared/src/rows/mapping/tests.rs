use super::*;
use crate::codec::reader::{ReadError, ReadOptions, open_reader};

fn config(kind: serde_json::Value, columns: serde_json::Value) -> ImportConfig {
    ImportConfig::from_value(serde_json::json!({
        "id": "t",
        "name": "T",
        "kind": kind,
        "source": {"bucket": "bucket", "folder": "f", "datetime_format": "yyyymmdd"},
        "mapping": {"columns": columns},
        "schedule": {"type": "once"},
        "timezone": "Asia/Kolkata"
    }))
    .unwrap()
}

/// Maps every row of `csv`: Ok(row) or Err(errors as "column: reason").
fn map_all(c: &ImportConfig, csv: &str) -> (CompiledMapping, Vec<Result<MappedRow, Vec<String>>>) {
    let mut reader = open_reader(false, csv.as_bytes(), &ReadOptions::default(), None).unwrap();
    let m = CompiledMapping::new(c, c.inline_columns().unwrap(), reader.columns()).unwrap();
    let mut row = Row::default();
    let mut out = Vec::new();
    loop {
        match reader.read_row(&mut row) {
            Ok(true) => {
                let mut mapped = MappedRow::default();
                out.push(m.map_row(&row, &mut mapped).map(|()| mapped).map_err(|es| {
                    es.iter()
                        .map(|e| format!("{}: {}", e.column.clone().unwrap_or_default(), e.reason))
                        .collect()
                }));
            }
            Ok(false) | Err(ReadError::File(_)) => return (m, out),
            Err(ReadError::Row(e)) => out.push(Err(vec![e.reason])),
        }
    }
}

fn attr<'a>(m: &CompiledMapping, r: &'a MappedRow, name: &str) -> Option<&'a Value> {
    r.attributes
        .iter()
        .find(|(slot, _)| m.name(*slot) == Some(name))
        .map(|(_, v)| v)
}

#[test]
fn maps_typed_attributes_and_reports_every_bad_column() {
    let c = config(
        serde_json::json!({"type": "registered_users"}),
        serde_json::json!([
            {"column": "ID", "attribute": "user_id"},
            {"column": "Born", "attribute": "birthday", "format": "DD/MM/YYYY"},
            {"column": "Age", "attribute": "age", "type": "integer"},
            {"column": "VIP", "attribute": "vip", "type": "boolean"},
            {"column": "Tags", "attribute": "tags", "type": "list"},
            {"column": "Notes", "skip": true}
        ]),
    );
    let csv = "ID,Born,Age,VIP,Tags,Notes,Extra\n\
u1,14/02/1990,31,yes,[a|b],x,y\n\
u2,31/02/1990,old,maybe,,x,y\n\
,01/01/2000,1,no,,x,y\n";
    let (m, rows) = map_all(&c, csv);
    assert_eq!(m.unmapped, ["Extra"]);
    let r = rows[0].as_ref().unwrap();
    assert_eq!(r.key, "u1");
    assert_eq!(r.row, 2);
    assert_eq!(attr(&m, r, "age"), Some(&Value::Integer(31)));
    assert_eq!(attr(&m, r, "vip"), Some(&Value::Boolean(true)));
    assert_eq!(
        attr(&m, r, "tags"),
        Some(&Value::List(vec!["a".into(), "b".into()]))
    );
    assert_eq!(
        attr(&m, r, "birthday")
            .map(Value::to_display_string)
            .as_deref(),
        Some("1990-02-14T00:00:00Z")
    );
    assert!(attr(&m, r, "Notes").is_none());
    assert!(
        attr(&m, r, "user_id").is_none(),
        "the key is not an attribute"
    );
    let errors = rows[1].as_ref().unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("Born: `31/02/1990` does not match"));
    assert!(errors[1].starts_with("Age: `old` is not an integer"));
    assert!(errors[2].starts_with("VIP: `maybe` is not a boolean"));
    assert_eq!(
        rows[2].as_ref().unwrap_err(),
        &["ID: `user_id` is empty; every row needs one"]
    );
}

#[test]
fn events_need_user_and_time_read_in_the_app_timezone() {
    let c = config(
        serde_json::json!({"type": "events", "event_name": "Buy", "event_time_in": "app"}),
        serde_json::json!([
            {"column": "uid", "attribute": "user_id"},
            {"column": "at", "attribute": "event_time", "format": "YYYY-MM-DD hh:mm:ss"}
        ]),
    );
    let (_, rows) = map_all(&c, "uid,at\nu1,2022-01-31 09:30:00\nu2,\n");
    let r = rows[0].as_ref().unwrap();
    assert_eq!(
        r.event_time.map(|t| t.to_rfc3339()),
        Some("2022-01-31T04:00:00+00:00".into())
    );
    assert_eq!(
        rows[1].as_ref().unwrap_err(),
        &["at: the event time is empty; every event needs one"]
    );
    let problems = column_problems(
        &[ColumnMapping {
            column: "uid".into(),
            attribute: Some("user_id".into()),
            attr_type: None,
            format: None,
            delimiter: None,
            skip: false,
        }],
        &c.kind,
        "mapping.columns",
    );
    assert_eq!(
        problems[0].message,
        "events `Buy` imports need a column mapped to `event_time`"
    );
}

#[test]
fn anonymous_and_auxiliary_keys_come_from_their_columns() {
    let c = config(
        serde_json::json!({"type": "anonymous_users", "identifier_column": "device"}),
        serde_json::json!([{"column": "city", "attribute": "city"}]),
    );
    let (m, rows) = map_all(&c, "device,city\nd1,Pune\n,Goa\n");
    assert!(
        m.unmapped.is_empty(),
        "the identifier column is not unmapped"
    );
    assert_eq!(rows[0].as_ref().unwrap().key, "d1");
    assert!(rows[1].as_ref().unwrap_err()[0].contains("identifier is empty"));
    let mut reader = open_reader(
        false,
        "city\nPune\n".as_bytes(),
        &ReadOptions::default(),
        None,
    )
    .unwrap();
    let e = CompiledMapping::new(&c, c.inline_columns().unwrap(), reader.columns()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "column `device` (anonymous user identifier) is not in the file; its columns are: `city`"
    );
    let _ = reader.read_row(&mut Row::default());
}

#[test]
fn mapping_problems_name_the_field() {
    let kind = ImportKind::RegisteredUsers {};
    let cols: Vec<ColumnMapping> = serde_json::from_value(serde_json::json!([
        {"column": "ID", "attribute": "user_id"},
        {"column": "ID", "attribute": "x"},
        {"column": "A"},
        {"column": "B", "attribute": "birthday", "type": "integer"},
        {"column": "C", "attribute": "moe_x"},
        {"column": "D", "attribute": "d", "format": "DD/MM/YYYY"},
        {"column": "E", "attribute": "e", "delimiter": ";"},
        {"column": "F", "attribute": "event_time"},
        {"column": "G", "attribute": "x"},
        {"column": "H", "attribute": "dataset"}
    ]))
    .unwrap();
    let fields: Vec<String> = column_problems(&cols, &kind, "mapping.columns")
        .iter()
        .map(|p| p.field.clone())
        .collect();
    assert_eq!(
        fields,
        [
            "mapping.columns[1].column",
            "mapping.columns[2].attribute",
            "mapping.columns[3].type",
            "mapping.columns[4].attribute",
            "mapping.columns[5].format",
            "mapping.columns[6].delimiter",
            "mapping.columns[7].attribute",
            "mapping.columns[8].attribute",
            "mapping.columns[9].attribute"
        ]
    );
}

#[test]
fn reads_moengage_mapping_files_as_they_are() {
    let text = r#"{"mapping": [
            {"column": "ID", "moe_attr": "uid", "type": "string"},
            {"column": "Mail", "moe_attr": "u_em", "type": "string", "is_skipped": false},
            {"column": "Born", "moe_attr": "u_bd", "type": "datetime", "datetime_format": "DD/MM/YYYY"},
            {"column": "Spend", "moe_attr": "spend", "type": "double"},
            {"column": "VIP", "moe_attr": "vip", "type": "bool"},
            {"column": "Phone", "moe_attr": "u_mb", "type": "string", "is_skipped": true},
            {"column": "Junk", "moe_attr": ""}
        ]}"#;
    let m = parse_manifest(text).unwrap();
    let attrs: Vec<Option<&str>> = m.iter().map(|c| c.attribute.as_deref()).collect();
    assert_eq!(
        attrs,
        [
            Some("user_id"),
            Some("email"),
            Some("birthday"),
            Some("spend"),
            Some("vip"),
            Some("mobile"),
            None
        ]
    );
    assert_eq!(m[3].attr_type(), AttrType::Number);
    assert_eq!(m[4].attr_type(), AttrType::Boolean);
    assert_eq!(m[2].format.as_ref().map(|f| f.as_str()), Some("DD/MM/YYYY"));
    assert!(m[5].skip && m[6].skip);
    assert!(column_problems(&m, &ImportKind::RegisteredUsers {}, "m").is_empty());
    // Our own format, and its errors.
    let ours =
        parse_manifest(r#"{"columns": [{"column": "ID", "attribute": "user_id"}]}"#).unwrap();
    assert_eq!(ours[0].attribute.as_deref(), Some("user_id"));
    let e = parse_manifest(r#"{"mapping": [{"column": "x", "moe_attr": "x", "type": "blob"}]}"#)
        .unwrap_err();
    assert!(e.to_string().contains("unknown type `blob`"), "{e}");
}

#[test]
fn suggested_types() {
    assert_eq!(suggest_type("42"), AttrType::Integer);
    assert_eq!(suggest_type("4.2"), AttrType::Number);
    assert_eq!(suggest_type("true"), AttrType::Boolean);
    assert_eq!(suggest_type("2022-01-31"), AttrType::Datetime);
    assert_eq!(suggest_type("[a|b]"), AttrType::List);
    assert_eq!(suggest_type("hello"), AttrType::String);
}

#[test]
fn suggested_datetime_formats_read_every_value() {
    // The issue's case: a date alone is offered a date's format.
    assert_eq!(
        suggest_datetime_format(["2026-01-05", " 2026-02-11"]),
        Some("YYYY-MM-DD")
    );
    assert_eq!(
        suggest_datetime_format(["2026-01-05 10:00:00"]),
        Some("YYYY-MM-DD hh:mm:ss")
    );
    // Day first, as MoEngage reads a slash; month first only when a day says so.
    assert_eq!(suggest_datetime_format(["05/01/2026"]), Some("DD/MM/YYYY"));
    assert_eq!(
        suggest_datetime_format(["05/01/2026", "01/31/2026"]),
        Some("%m/%d/%Y")
    );
    assert_eq!(
        suggest_datetime_format(["2026-01-05T10:00:00+05:30", "2026-01-06T10:00:00.5Z"]),
        Some("YYYY-MM-DDThh:mm:ss[.s]TZD")
    );
    // Empty cells say nothing; values no format reads get none.
    assert_eq!(
        suggest_datetime_format(["", "31.01.2026"]),
        Some("%d.%m.%Y")
    );
    assert_eq!(suggest_datetime_format(["", " "]), None);
    assert_eq!(suggest_datetime_format(["2026-01-05", "soon"]), None);
}
