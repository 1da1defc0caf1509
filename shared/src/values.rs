//! Typed values: parsing a cell's text as the attribute type the mapping asks for.

use std::fmt;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Datetime => "datetime",
            Self::List => "list",
        })
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
    /// Text form: a date-time as UTC ISO-8601 (`2022-01-31T12:59:00Z`, fractions only
    /// when present).
    pub fn to_display_string(&self) -> String {
        match self {
            Self::String(s) => s.clone(),
            Self::Integer(i) => i.to_string(),
            Self::Number(n) => n.to_string(),
            Self::Boolean(b) => b.to_string(),
            Self::DateTime(t) => {
                if t.nanosecond() == 0 {
                    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
                } else {
                    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                }
            }
            Self::List(items) => items.join(","),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

impl Classify for ValueError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// How a date-time cell is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueDateTimeFormat {
    text: String,
    kind: DtKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DtKind {
    /// RFC 3339, or an ISO date / date-time without offset.
    Iso,
    /// A chrono strftime pattern; `offset` when it carries a zone.
    Strftime {
        pattern: String,
        offset: bool,
        date_only: bool,
    },
    /// MoEngage's names: date order, separator, time part.
    MoEngage { ymd: bool, sep: char, time: MoTime },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MoTime {
    None,
    /// ` hh:mm:ss`, optionally with `.s`.
    Space {
        fraction: bool,
    },
    /// `Thh:mm:ss[.s]TZD`.
    Zoned {
        fraction: bool,
    },
}

impl ValueDateTimeFormat {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let text = s.trim().to_string();
        let kind = if text.eq_ignore_ascii_case("iso8601") || text.eq_ignore_ascii_case("rfc3339") {
            DtKind::Iso
        } else if text.contains('%') {
            let offset = ["%z", "%:z", "%::z", "%#z", "%Z", "%+", "%s"]
                .iter()
                .any(|z| text.contains(z));
            let has_time = ["%H", "%I", "%M", "%S", "%T", "%R", "%s", "%+", "%r", "%X"]
                .iter()
                .any(|t| text.contains(t));
            // Reject patterns chrono cannot use before any row meets them.
            if chrono::format::StrftimeItems::new(&text)
                .any(|i| matches!(i, chrono::format::Item::Error))
            {
                return Err(ValueError(format!(
                    "`{text}` is not a valid strftime pattern"
                )));
            }
            DtKind::Strftime {
                pattern: text.clone(),
                offset,
                date_only: !has_time,
            }
        } else {
            moengage_format(&text).ok_or_else(|| {
                ValueError(format!(
                    "`{text}` is not a date-time format: use YYYY-MM-DD, YYYY/MM/DD, DD/MM/YYYY or DD-MM-YYYY (optionally with ` hh:mm:ss`, ` hh:mm:ss.s` or `Thh:mm:ss[.s]TZD`), a strftime pattern such as `%d.%m.%Y %H:%M`, or iso8601"
                ))
            })?
        };
        Ok(Self { text, kind })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Parses a cell; local times are in `tz`.
    pub fn parse_value(&self, raw: &str, tz: Tz) -> Result<DateTime<Utc>, ValueError> {
        let fail = || {
            ValueError(format!(
                "`{raw}` does not match the date-time format `{}`",
                self.text
            ))
        };
        match &self.kind {
            DtKind::Iso => parse_iso(raw, tz).ok_or_else(|| {
                ValueError(format!(
                    "`{raw}` is not an ISO-8601 date-time (e.g. 2022-01-31T12:59:00Z or 2022-01-31)"
                ))
            })?,
            DtKind::Strftime {
                pattern,
                offset,
                date_only,
            } => {
                if *offset {
                    DateTime::parse_from_str(raw, pattern)
                        .map(|t| Ok(t.with_timezone(&Utc)))
                        .map_err(|_| fail())?
                } else if *date_only {
                    let d = NaiveDate::parse_from_str(raw, pattern).map_err(|_| fail())?;
                    local(d.and_hms_opt(0, 0, 0).ok_or_else(fail)?, tz, raw)
                } else {
                    local(
                        NaiveDateTime::parse_from_str(raw, pattern).map_err(|_| fail())?,
                        tz,
                        raw,
                    )
                }
            }
            DtKind::MoEngage { ymd, sep, time } => {
                parse_moengage(raw, *ymd, *sep, *time, tz).ok_or_else(fail)?
            }
        }
    }
}

fn moengage_format(text: &str) -> Option<DtKind> {
    let (date, rest) = text.split_at(text.len().min(10));
    let (ymd, sep) = match date {
        "YYYY-MM-DD" => (true, '-'),
        "YYYY/MM/DD" => (true, '/'),
        "DD/MM/YYYY" => (false, '/'),
        "DD-MM-YYYY" => (false, '-'),
        _ => return None,
    };
    let time = match rest {
        "" => MoTime::None,
        " hh:mm:ss" => MoTime::Space { fraction: false },
        " hh:mm:ss.s" => MoTime::Space { fraction: true },
        "Thh:mm:ssTZD" => MoTime::Zoned { fraction: false },
        "Thh:mm:ss.sTZD" | "Thh:mm:ss[.s]TZD" => MoTime::Zoned { fraction: true },
        _ => return None,
    };
    Some(DtKind::MoEngage { ymd, sep, time })
}

fn two(s: &str) -> Option<u32> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

fn parse_moengage(
    raw: &str,
    ymd: bool,
    sep: char,
    time: MoTime,
    tz: Tz,
) -> Option<Result<DateTime<Utc>, ValueError>> {
    if raw.len() < 10 || !raw.is_char_boundary(10) {
        return None;
    }
    let (date, rest) = raw.split_at(10);
    let parts: Vec<&str> = date.split(sep).collect();
    if parts.len() != 3 {
        return None;
    }
    let (y, m, d) = if ymd {
        (parts[0], parts[1], parts[2])
    } else {
        (parts[2], parts[1], parts[0])
    };
    if y.len() != 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(y.parse().ok()?, two(m)?, two(d)?)?;
    let hms = |t: &str| -> Option<(u32, u32, u32)> {
        let p: Vec<&str> = t.split(':').collect();
        (p.len() == 3).then_some(())?;
        Some((two(p[0])?, two(p[1])?, two(p[2])?))
    };
    let fraction = |f: &str| -> Option<u32> {
        if f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = f.parse().ok()?;
        Some(n * 10u32.pow(9 - f.len() as u32))
    };
    match time {
        MoTime::None => {
            if !rest.is_empty() {
                return None;
            }
            Some(local(date.and_hms_opt(0, 0, 0)?, tz, raw))
        }
        MoTime::Space { fraction: frac } => {
            let t = rest.strip_prefix(' ')?;
            let (clock, nanos) = if frac {
                let (c, f) = t.split_once('.')?;
                (c, fraction(f)?)
            } else {
                (t, 0)
            };
            let (h, mi, s) = hms(clock)?;
            Some(local(date.and_hms_nano_opt(h, mi, s, nanos)?, tz, raw))
        }
        MoTime::Zoned { fraction: frac } => {
            let t = rest.strip_prefix('T')?;
            let (body, offset_secs) = if let Some(b) = t.strip_suffix('Z') {
                (b, 0)
            } else {
                let at = t.len().checked_sub(6)?;
                let (b, z) = t.split_at(at);
                let sign = match z.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let (hh, mm) = z[1..].split_once(':')?;
                (b, sign * (two(hh)? * 3600 + two(mm)? * 60) as i32)
            };
            let (clock, nanos) = match body.split_once('.') {
                Some((c, f)) if frac => (c, fraction(f)?),
                Some(_) => return None,
                None => (body, 0),
            };
            let (h, mi, s) = hms(clock)?;
            let naive = date.and_hms_nano_opt(h, mi, s, nanos)?;
            let offset = chrono::FixedOffset::east_opt(offset_secs)?;
            Some(Ok(offset
                .from_local_datetime(&naive)
                .single()?
                .with_timezone(&Utc)))
        }
    }
}

fn parse_iso(raw: &str, tz: Tz) -> Option<Result<DateTime<Utc>, ValueError>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(Ok(t.with_timezone(&Utc)));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(raw, f) {
            return Some(local(n, tz, raw));
        }
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| local(n, tz, raw))
}

/// A local time in `tz` as UTC: the earlier instant when ambiguous; an error when the
/// time does not exist (a DST gap).
fn local(n: NaiveDateTime, tz: Tz, raw: &str) -> Result<DateTime<Utc>, ValueError> {
    match tz.from_local_datetime(&n) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Ok(a.min(b).with_timezone(&Utc)),
        LocalResult::None => Err(ValueError(format!(
            "`{raw}` does not exist in {tz} (clocks skip it for daylight saving)"
        ))),
    }
}

impl Serialize for ValueDateTimeFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ValueDateTimeFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ValueDateTimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

pub struct ValueOptions<'a> {
    pub datetime_format: Option<&'a ValueDateTimeFormat>,
    pub timezone: Tz,
    pub list_delimiter: Option<char>,
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
        AttrType::Number => match s.parse::<f64>() {
            Ok(n) if n.is_finite() && !s.contains(['i', 'I', 'n', 'N']) => Value::Number(n),
            _ => return Err(ValueError(format!("`{s}` is not a number"))),
        },
        AttrType::Boolean => Value::Boolean(parse_bool(s).ok_or_else(|| {
            ValueError(format!(
                "`{s}` is not a boolean (use true/false, yes/no or 1/0)"
            ))
        })?),
        AttrType::Datetime => {
            let t = match opts.datetime_format {
                Some(f) => f.parse_value(s, opts.timezone)?,
                None => parse_iso(s, opts.timezone).ok_or_else(|| {
                    ValueError(format!(
                        "`{s}` is not an ISO-8601 date-time (e.g. 2022-01-31T12:59:00Z or 2022-01-31); give the column a `format`"
                    ))
                })??,
            };
            Value::DateTime(t)
        }
        AttrType::List => {
            let (body, bracketed) = match s.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
                Some(b) => (b, true),
                None => (s, false),
            };
            let delimiter = match (bracketed, opts.list_delimiter) {
                (true, None) => '|',
                (_, Some(d)) => d,
                (false, None) => ',',
            };
            let items: Vec<String> = body
                .split(|c| c == delimiter || (bracketed && c == '|'))
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_string)
                .collect();
            if items.is_empty() {
                return Ok(None);
            }
            Value::List(items)
        }
    };
    Ok(Some(v))
}

fn parse_integer(s: &str) -> Result<i64, ValueError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError(format!("`{s}` is not an integer")));
    }
    s.parse::<i64>()
        .map_err(|_| ValueError(format!("`{s}` is too large for an integer")))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "t" | "y" => Some(true),
        "false" | "no" | "0" | "f" | "n" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Asia::Kolkata;

    fn opts(format: Option<&ValueDateTimeFormat>) -> ValueOptions<'_> {
        ValueOptions {
            datetime_format: format,
            timezone: Tz::UTC,
            list_delimiter: None,
        }
    }

    fn parse(raw: &str, ty: AttrType) -> Result<Option<Value>, ValueError> {
        parse_value(raw, ty, &opts(None))
    }

    fn dt(raw: &str, format: &str) -> Result<String, String> {
        let f = ValueDateTimeFormat::parse(format).map_err(|e| e.to_string())?;
        match parse_value(raw, AttrType::Datetime, &opts(Some(&f))) {
            Ok(Some(v)) => Ok(v.to_display_string()),
            Ok(None) => Err("empty".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn type_names_and_aliases() {
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
        assert_eq!(AttrType::Number.to_string(), "number");
    }

    #[test]
    fn scalars() {
        assert_eq!(parse("  hi  ", AttrType::String).unwrap(), Some(Value::String("hi".into())));
        assert_eq!(parse("", AttrType::Integer).unwrap(), None);
        assert_eq!(parse("   ", AttrType::String).unwrap(), None);
        assert_eq!(parse("-42", AttrType::Integer).unwrap(), Some(Value::Integer(-42)));
        assert_eq!(parse("+7", AttrType::Integer).unwrap(), Some(Value::Integer(7)));
        for bad in ["1.5", "1e3", "abc", "99999999999999999999", "--1"] {
            assert!(parse(bad, AttrType::Integer).is_err(), "{bad}");
        }
        assert_eq!(
            parse("abc", AttrType::Integer).unwrap_err().to_string(),
            "`abc` is not an integer"
        );
        assert_eq!(parse("3.25", AttrType::Number).unwrap(), Some(Value::Number(3.25)));
        assert_eq!(parse("-1e3", AttrType::Number).unwrap(), Some(Value::Number(-1000.0)));
        for bad in ["NaN", "inf", "1,000", "x"] {
            assert!(parse(bad, AttrType::Number).is_err(), "{bad}");
        }
    }

    #[test]
    fn booleans_in_any_case() {
        for t in ["true", "TRUE", "Yes", "y", "1", "t"] {
            assert_eq!(parse(t, AttrType::Boolean).unwrap(), Some(Value::Boolean(true)), "{t}");
        }
        for f in ["false", "No", "N", "0", "F"] {
            assert_eq!(parse(f, AttrType::Boolean).unwrap(), Some(Value::Boolean(false)), "{f}");
        }
        assert_eq!(
            parse("maybe", AttrType::Boolean).unwrap_err().to_string(),
            "`maybe` is not a boolean (use true/false, yes/no or 1/0)"
        );
    }

    #[test]
    fn lists() {
        let list = |raw: &str, d: Option<char>| {
            let o = ValueOptions {
                datetime_format: None,
                timezone: Tz::UTC,
                list_delimiter: d,
            };
            parse_value(raw, AttrType::List, &o).unwrap()
        };
        let v = |items: &[&str]| Some(Value::List(items.iter().map(|s| s.to_string()).collect()));
        assert_eq!(list("[1|2|3]", None), v(&["1", "2", "3"]));
        assert_eq!(list("a, b ,,c", None), v(&["a", "b", "c"]));
        assert_eq!(list("a;b", Some(';')), v(&["a", "b"]));
        assert_eq!(list("[a;b|c]", Some(';')), v(&["a", "b", "c"]));
        assert_eq!(list("[]", None), None);
    }

    #[test]
    fn moengage_datetime_formats() {
        let cases = [
            ("2022-01-31", "YYYY-MM-DD", "2022-01-31T00:00:00Z"),
            ("2022/01/31", "YYYY/MM/DD", "2022-01-31T00:00:00Z"),
            ("31/01/2022", "DD/MM/YYYY", "2022-01-31T00:00:00Z"),
            ("31-01-2022", "DD-MM-YYYY", "2022-01-31T00:00:00Z"),
            ("2022-01-31 12:59:30", "YYYY-MM-DD hh:mm:ss", "2022-01-31T12:59:30Z"),
            ("31/01/2022 12:59:30", "DD/MM/YYYY hh:mm:ss", "2022-01-31T12:59:30Z"),
            ("2022/01/31 12:59:30.5", "YYYY/MM/DD hh:mm:ss.s", "2022-01-31T12:59:30.500Z"),
            ("31-01-2022 12:59:30.123456", "DD-MM-YYYY hh:mm:ss.s", "2022-01-31T12:59:30.123456Z"),
            ("2022-01-31T12:59:30Z", "YYYY-MM-DDThh:mm:ssTZD", "2022-01-31T12:59:30Z"),
            ("2022-01-31T12:59:30+05:30", "YYYY-MM-DDThh:mm:ssTZD", "2022-01-31T07:29:30Z"),
            ("31/01/2022T12:59:30-02:00", "DD/MM/YYYYThh:mm:ssTZD", "2022-01-31T14:59:30Z"),
            ("2022-01-31T12:59:30.25Z", "YYYY-MM-DDThh:mm:ss.sTZD", "2022-01-31T12:59:30.250Z"),
            ("2022-01-31T12:59:30Z", "YYYY-MM-DDThh:mm:ss[.s]TZD", "2022-01-31T12:59:30Z"),
        ];
        for (raw, format, want) in cases {
            assert_eq!(dt(raw, format).as_deref(), Ok(want), "{raw} as {format}");
        }
        for (raw, format) in [
            ("31/02/2022", "DD/MM/YYYY"),
            ("2022-01-31", "DD/MM/YYYY"),
            ("2022-01-31 12:59", "YYYY-MM-DD hh:mm:ss"),
            ("2022-01-31 12:59:30.1234567", "YYYY-MM-DD hh:mm:ss.s"),
            ("2022-01-31T12:59:30", "YYYY-MM-DDThh:mm:ssTZD"),
        ] {
            let e = dt(raw, format).unwrap_err();
            assert!(e.contains("does not match the date-time format"), "{raw}: {e}");
        }
        assert!(ValueDateTimeFormat::parse("MM/DD/YY").is_err());
    }

    #[test]
    fn strftime_and_iso_formats() {
        assert_eq!(dt("31.01.2022 12:59", "%d.%m.%Y %H:%M").as_deref(), Ok("2022-01-31T12:59:00Z"));
        assert_eq!(dt("31.01.2022", "%d.%m.%Y").as_deref(), Ok("2022-01-31T00:00:00Z"));
        assert_eq!(
            dt("2022-01-31T12:59:30+01:00", "%Y-%m-%dT%H:%M:%S%:z").as_deref(),
            Ok("2022-01-31T11:59:30Z")
        );
        assert_eq!(dt("1643633970", "%s").as_deref(), Ok("2022-01-31T12:59:30Z"));
        assert_eq!(dt("2022-01-31T12:59:30Z", "iso8601").as_deref(), Ok("2022-01-31T12:59:30Z"));
        assert_eq!(dt("2022-01-31", "iso8601").as_deref(), Ok("2022-01-31T00:00:00Z"));
        assert_eq!(dt("2022-01-31 12:59:30", "iso8601").as_deref(), Ok("2022-01-31T12:59:30Z"));
        assert!(ValueDateTimeFormat::parse("%Q").is_err());
        // Without a format, ISO-8601 is expected.
        assert!(parse("31/01/2022", AttrType::Datetime).unwrap_err().to_string().contains("format"));
    }

    #[test]
    fn local_times_use_the_given_timezone() {
        let f = ValueDateTimeFormat::parse("YYYY-MM-DD hh:mm:ss").unwrap();
        let o = ValueOptions {
            datetime_format: Some(&f),
            timezone: Kolkata,
            list_delimiter: None,
        };
        let v = parse_value("2022-01-31 09:30:00", AttrType::Datetime, &o).unwrap().unwrap();
        assert_eq!(v.to_display_string(), "2022-01-31T04:00:00Z");
        // An offset in the value wins over the timezone.
        let f = ValueDateTimeFormat::parse("YYYY-MM-DDThh:mm:ssTZD").unwrap();
        let o = ValueOptions {
            datetime_format: Some(&f),
            timezone: Kolkata,
            list_delimiter: None,
        };
        let v = parse_value("2022-01-31T09:30:00Z", AttrType::Datetime, &o).unwrap().unwrap();
        assert_eq!(v.to_display_string(), "2022-01-31T09:30:00Z");
        // A local time in a DST gap does not exist.
        let f = ValueDateTimeFormat::parse("YYYY-MM-DD hh:mm:ss").unwrap();
        let o = ValueOptions {
            datetime_format: Some(&f),
            timezone: chrono_tz::America::New_York,
            list_delimiter: None,
        };
        let e = parse_value("2027-03-14 02:30:00", AttrType::Datetime, &o).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
