//! Typed values: parsing a cell's text as the attribute type the mapping asks for.
//!
//! This runs once per mapped cell, so the common paths (integers, numbers, booleans,
//! ISO and MoEngage date-times) are hand-rolled byte parsers that allocate nothing
//! beyond the value they return.
//!
//! `types` holds the attribute types, values and errors, `encoding` the hand-written
//! text forms of numbers and date-times, and `datetime` the date-time formats a
//! mapping may name and their parsers.

mod datetime;
mod encoding;
mod types;

use std::num::IntErrorKind;

use chrono_tz::Tz;

use self::datetime::parse_iso;
pub use self::datetime::{DateOrder, Fraction, TimePart, ValueDateTimeFormat};
pub use self::encoding::{push_datetime, push_number};
pub use self::types::{AttrType, Value, ValueError};

/// How to read cells of one column.
#[derive(Debug, Clone, Copy)]
pub struct ValueOptions<'a> {
    /// For `Datetime`; `None` means `iso8601`.
    pub datetime_format: Option<&'a ValueDateTimeFormat>,
    /// The zone of date-times written without an offset.
    pub timezone: Tz,
    /// For `List`; `None` means `|` inside brackets, else `,`.
    pub list_delimiter: Option<char>,
}

impl Default for ValueOptions<'_> {
    fn default() -> Self {
        Self {
            datetime_format: None,
            timezone: Tz::UTC,
            list_delimiter: None,
        }
    }
}

/// Parses a cell as `ty`. Surrounding whitespace is ignored; an empty cell is `None`
/// (it writes nothing).
pub fn parse_value(
    raw: &str,
    ty: AttrType,
    opts: &ValueOptions<'_>,
) -> Result<Option<Value>, ValueError> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let v = match ty {
        AttrType::String => Value::String(s.to_string()),
        AttrType::Integer => Value::Integer(parse_integer(s)?),
        AttrType::Number => Value::Number(parse_number(s)?),
        AttrType::Boolean => Value::Boolean(
            parse_bool(s).ok_or_else(|| ValueError::NotBoolean { raw: s.to_string() })?,
        ),
        AttrType::Datetime => Value::DateTime(match opts.datetime_format {
            Some(f) => f.parse_value(s, opts.timezone)?,
            None => parse_iso(s)
                .ok_or_else(|| ValueError::NotIsoDateTime { raw: s.to_string() })?
                .resolve(s, opts.timezone)?,
        }),
        AttrType::List => Value::List(parse_list(s, opts.list_delimiter)),
    };
    Ok(Some(v))
}

fn parse_integer(s: &str) -> Result<i64, ValueError> {
    // std's parser takes exactly an optional sign and digits, which is the rule here.
    s.parse::<i64>().map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
            ValueError::IntegerOutOfRange { raw: s.to_string() }
        }
        _ => ValueError::NotInteger { raw: s.to_string() },
    })
}

fn parse_number(s: &str) -> Result<f64, ValueError> {
    // std accepts `inf`/`NaN` and overflows to infinity; a finite check rejects all three.
    match s.parse::<f64>() {
        Ok(n) if n.is_finite() && in_dynamodb_range(n) => Ok(n),
        Ok(n) if n.is_finite() => Err(ValueError::NumberOutOfRange { raw: s.to_string() }),
        _ => Err(ValueError::NotNumber { raw: s.to_string() }),
    }
}

/// DynamoDB stores numbers of magnitude 1E-130 to 9.99…E+125 (and zero); any other
/// is refused when its row is written, so it fails here, where the dry run sees it.
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number
pub fn in_dynamodb_range(n: f64) -> bool {
    let m = n.abs();
    m == 0.0 || (1e-130..1e126).contains(&m)
}

fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 5] = ["true", "yes", "1", "t", "y"];
    const FALSE: [&str; 5] = ["false", "no", "0", "f", "n"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

/// `[a|b|c]` (MoEngage's array form, also what the JSON reader writes for arrays)
/// splits on `|`, and on the column's delimiter when one is set; other text splits on
/// the delimiter (default `,`). Items are trimmed; empty items are dropped.
fn parse_list(s: &str, delimiter: Option<char>) -> Vec<String> {
    let split = |body: &str, is_sep: &dyn Fn(char) -> bool| -> Vec<String> {
        body.split(is_sep)
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_string)
            .collect()
    };
    match s.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
        Some(body) => split(body, &|c| c == '|' || Some(c) == delimiter),
        None => {
            let d = delimiter.unwrap_or(',');
            split(s, &|c| c == d)
        }
    }
}

/// Helpers shared by the values' unit tests.
#[cfg(test)]
mod testing {
    use chrono::{DateTime, Utc};

    pub(super) fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Classify, ErrorClass};

    fn opts() -> ValueOptions<'static> {
        ValueOptions::default()
    }

    fn parse(raw: &str, ty: AttrType) -> Result<Option<Value>, ValueError> {
        parse_value(raw, ty, &opts())
    }

    #[test]
    fn empty_and_whitespace_is_none() {
        for ty in [
            AttrType::String,
            AttrType::Integer,
            AttrType::Number,
            AttrType::Boolean,
            AttrType::Datetime,
            AttrType::List,
        ] {
            assert_eq!(parse("", ty).unwrap(), None);
            assert_eq!(parse("  \t ", ty).unwrap(), None);
        }
    }

    #[test]
    fn strings_are_trimmed() {
        assert_eq!(
            parse("  Ada Lovelace ", AttrType::String).unwrap(),
            Some(Value::String("Ada Lovelace".into()))
        );
    }

    #[test]
    fn integers() {
        assert_eq!(
            parse("42", AttrType::Integer).unwrap(),
            Some(Value::Integer(42))
        );
        assert_eq!(
            parse(" -7 ", AttrType::Integer).unwrap(),
            Some(Value::Integer(-7))
        );
        assert_eq!(
            parse("+3", AttrType::Integer).unwrap(),
            Some(Value::Integer(3))
        );
        assert_eq!(
            parse("9223372036854775807", AttrType::Integer).unwrap(),
            Some(Value::Integer(i64::MAX))
        );
        for bad in ["1.5", "1e3", "abc", "1,000", "+", "-", "0x10", "1 2"] {
            let e = parse(bad, AttrType::Integer).unwrap_err();
            assert_eq!(e.to_string(), format!("`{bad}` is not an integer"));
        }
        let e = parse("9223372036854775808", AttrType::Integer).unwrap_err();
        assert!(matches!(e, ValueError::IntegerOutOfRange { .. }));
        assert!(
            e.to_string()
                .starts_with("`9223372036854775808` is out of range")
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            parse("1.5", AttrType::Number).unwrap(),
            Some(Value::Number(1.5))
        );
        assert_eq!(
            parse("-0.25", AttrType::Number).unwrap(),
            Some(Value::Number(-0.25))
        );
        assert_eq!(
            parse("1e3", AttrType::Number).unwrap(),
            Some(Value::Number(1000.0))
        );
        assert_eq!(
            parse("42", AttrType::Number).unwrap(),
            Some(Value::Number(42.0))
        );
        for bad in [
            "NaN", "nan", "inf", "-inf", "Infinity", "1,000", "1e999", "abc", "1.2.3",
        ] {
            let e = parse(bad, AttrType::Number).unwrap_err();
            assert!(matches!(e, ValueError::NotNumber { .. }), "{bad}");
            assert!(
                e.to_string()
                    .starts_with(&format!("`{bad}` is not a number"))
            );
        }
        // Numbers f64 holds but DynamoDB refuses fail here, not when written.
        for far in ["1e200", "-1e126", "5e-324", "1e-131"] {
            let e = parse(far, AttrType::Number).unwrap_err();
            assert!(matches!(e, ValueError::NumberOutOfRange { .. }), "{far}");
        }
        for near in ["9.9e125", "1e-130", "0", "-0.0"] {
            assert!(parse(near, AttrType::Number).is_ok(), "{near}");
        }
    }

    #[test]
    fn booleans() {
        for t in ["true", "TRUE", "Yes", "y", "Y", "1", "t", "T"] {
            assert_eq!(
                parse(t, AttrType::Boolean).unwrap(),
                Some(Value::Boolean(true)),
                "{t}"
            );
        }
        for f in ["false", "False", "NO", "n", "0", "f"] {
            assert_eq!(
                parse(f, AttrType::Boolean).unwrap(),
                Some(Value::Boolean(false)),
                "{f}"
            );
        }
        let e = parse("maybe", AttrType::Boolean).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`maybe` is not a boolean (use true/false, yes/no or 1/0)"
        );
        assert!(parse("2", AttrType::Boolean).is_err());
    }

    #[test]
    fn lists() {
        let list = |raw: &str, d: Option<char>| {
            let o = ValueOptions {
                list_delimiter: d,
                ..ValueOptions::default()
            };
            match parse_value(raw, AttrType::List, &o).unwrap() {
                Some(Value::List(items)) => items,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(list("[1|2|3]", None), ["1", "2", "3"]);
        assert_eq!(list("[ a | b ||c ]", None), ["a", "b", "c"]);
        assert_eq!(list("a, b,,c", None), ["a", "b", "c"]);
        assert_eq!(list("a;b;c", Some(';')), ["a", "b", "c"]);
        assert_eq!(list("a,b", Some(';')), ["a,b"]);
        // Bracketed text also honours the column's delimiter.
        assert_eq!(list("[a;b|c]", Some(';')), ["a", "b", "c"]);
        assert_eq!(list("[]", None), Vec::<String>::new());
        assert_eq!(list("single", None), ["single"]);
        // Brackets that do not enclose the whole value are ordinary text.
        assert_eq!(list("[a,b", None), ["[a", "b"]);
    }

    #[test]
    fn errors_are_permanent() {
        let e = parse("x", AttrType::Integer).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Permanent);
    }
}
