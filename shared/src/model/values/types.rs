//! Attribute types, typed values, and why a cell could not be read.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::encoding::{push_datetime, push_number};
use crate::error::{Classify, ErrorClass};

/// An attribute's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrType {
    String,
    #[serde(alias = "int")]
    Integer,
    #[serde(alias = "double", alias = "float")]
    Number,
    #[serde(alias = "bool")]
    Boolean,
    #[serde(alias = "date", alias = "date_time")]
    Datetime,
    #[serde(alias = "array")]
    List,
}

impl AttrType {
    /// The canonical (serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Datetime => "datetime",
            Self::List => "list",
        }
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Integer(i64),
    Number(f64),
    Boolean(bool),
    DateTime(DateTime<Utc>),
    List(Vec<String>),
}

impl Value {
    /// Text form. A date-time is UTC ISO-8601 (`2022-01-31T12:59:00Z`), with
    /// fractional seconds only when they are not zero; a list joins its items with `,`.
    pub fn to_display_string(&self) -> String {
        match self {
            Self::String(s) => s.clone(),
            Self::Integer(i) => i.to_string(),
            Self::Number(n) => {
                let mut s = String::with_capacity(24);
                push_number(&mut s, *n);
                s
            }
            Self::Boolean(b) => b.to_string(),
            Self::DateTime(t) => {
                let mut s = String::with_capacity(30);
                push_datetime(&mut s, t);
                s
            }
            Self::List(items) => items.join(","),
        }
    }
}

/// Why a cell (or a date-time format) could not be read. The Display is a reason a
/// person can act on; it quotes the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("`{raw}` is not an integer")]
    NotInteger { raw: String },
    #[error("`{raw}` is out of range for an integer (-9223372036854775808 to 9223372036854775807)")]
    IntegerOutOfRange { raw: String },
    #[error("`{raw}` is not a number (use digits with `.` for decimals, e.g. 1234.5)")]
    NotNumber { raw: String },
    #[error(
        "`{raw}` is out of range for a number (DynamoDB stores magnitudes from 1E-130 to 9.99E+125, and 0)"
    )]
    NumberOutOfRange { raw: String },
    #[error("`{raw}` is not a boolean (use true/false, yes/no or 1/0)")]
    NotBoolean { raw: String },
    #[error("`{raw}` does not match the date-time format `{format}`")]
    DateTimeMismatch { raw: String, format: String },
    #[error(
        "`{raw}` is not an ISO-8601 date-time (e.g. 2022-01-31T12:59:00Z, 2022-01-31 12:59:00 or 2022-01-31); set the column's date-time format"
    )]
    NotIsoDateTime { raw: String },
    #[error(
        "`{raw}` does not exist in the time zone {timezone} (the clocks skip it when daylight saving time starts)"
    )]
    NonexistentLocalTime { raw: String, timezone: String },
    #[error(
        "`{format}` is not a date-time format: {reason}; use YYYY-MM-DD, YYYY/MM/DD, DD/MM/YYYY or DD-MM-YYYY (optionally followed by ` hh:mm:ss`, ` hh:mm:ss.s` or `Thh:mm:ss[.s]TZD`), a strftime pattern such as `%d.%m.%Y %H:%M`, or iso8601"
    )]
    BadFormat { format: String, reason: String },
}

impl Classify for ValueError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::values::testing::utc;

    #[test]
    fn attr_type_names_and_aliases() {
        for (name, ty) in [
            ("string", AttrType::String),
            ("integer", AttrType::Integer),
            ("int", AttrType::Integer),
            ("number", AttrType::Number),
            ("double", AttrType::Number),
            ("float", AttrType::Number),
            ("boolean", AttrType::Boolean),
            ("bool", AttrType::Boolean),
            ("datetime", AttrType::Datetime),
            ("date", AttrType::Datetime),
            ("list", AttrType::List),
            ("array", AttrType::List),
        ] {
            let got: AttrType = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(got, ty, "{name}");
        }
        assert!(serde_json::from_value::<AttrType>(serde_json::json!("text")).is_err());
        assert_eq!(
            serde_json::to_value(AttrType::Number).unwrap(),
            serde_json::json!("number")
        );
        assert_eq!(AttrType::Datetime.to_string(), "datetime");
        assert_eq!(AttrType::Boolean.to_string(), "boolean");
    }

    #[test]
    fn display_strings() {
        assert_eq!(Value::Integer(-3).to_display_string(), "-3");
        assert_eq!(Value::Number(1.5).to_display_string(), "1.5");
        assert_eq!(Value::Boolean(true).to_display_string(), "true");
        assert_eq!(
            Value::List(vec!["a".into(), "b".into()]).to_display_string(),
            "a,b"
        );
        assert_eq!(
            Value::DateTime(utc("2022-01-31T12:59:00Z")).to_display_string(),
            "2022-01-31T12:59:00Z"
        );
        assert_eq!(
            Value::DateTime(utc("2022-01-31T12:59:00.5Z")).to_display_string(),
            "2022-01-31T12:59:00.500Z"
        );
        assert_eq!(
            Value::DateTime(utc("2022-01-31T12:59:00.000123Z")).to_display_string(),
            "2022-01-31T12:59:00.000123Z"
        );
    }
}
