//! Date-time cells: the formats a mapping may name (`iso8601`, MoEngage's names, or a
//! strftime pattern) and their parsers, hand-rolled for the common forms.

use std::fmt;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::types::ValueError;

/// How a date-time cell is written. Parsed once from the mapping's text (which is kept
/// for messages and serialization), then applied to every cell of the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueDateTimeFormat {
    /// `iso8601` / `rfc3339`: RFC 3339 with an offset, or a naive ISO date-time or date.
    Iso8601 { text: String },
    /// One of MoEngage's named formats.
    MoEngage {
        text: String,
        order: DateOrder,
        separator: u8,
        time: TimePart,
    },
    /// A chrono strftime pattern, pre-parsed.
    Strftime {
        text: String,
        items: Vec<Item<'static>>,
    },
}

/// Field order of a MoEngage date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateOrder {
    /// `YYYY?MM?DD`
    YearFirst,
    /// `DD?MM?YYYY`
    DayFirst,
}

/// The time part of a MoEngage format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimePart {
    /// Date only (local midnight).
    None,
    /// ` hh:mm:ss`; `fraction` says whether `.s` is required, allowed or absent.
    Local { fraction: Fraction },
    /// `Thh:mm:ss[.s]TZD`: with an offset, so the time zone setting does not apply.
    Zoned { fraction: Fraction },
}

/// Whether fractional seconds (1 to 6 digits) may follow the seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fraction {
    Forbidden,
    Required,
    Optional,
}

impl ValueDateTimeFormat {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let text = s.trim().to_string();
        let bad = |reason: &str| ValueError::BadFormat {
            format: text.clone(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if text.eq_ignore_ascii_case("iso8601")
            || text.eq_ignore_ascii_case("iso-8601")
            || text.eq_ignore_ascii_case("rfc3339")
        {
            return Ok(Self::Iso8601 { text });
        }
        if text.contains('%') {
            let items = StrftimeItems::new(&text)
                .parse_to_owned()
                .map_err(|_| bad("it is not a valid strftime pattern"))?;
            // Round-trip a sample instant so a pattern that can never yield a
            // date-time (e.g. `%H:%M` alone) fails here, not on every row.
            let sample = FixedOffset::east_opt(19_800)
                .and_then(|o| o.with_ymd_and_hms(2021, 11, 23, 13, 45, 56).single())
                .ok_or_else(|| bad("internal sample date-time"))?;
            let mut formatted = String::new();
            fmt::write(
                &mut formatted,
                format_args!("{}", sample.format_with_items(items.iter())),
            )
            .map_err(|_| bad("it is not a valid strftime pattern"))?;
            if parse_strftime(&formatted, &items).is_none() {
                return Err(bad(
                    "it does not describe a whole date (it needs e.g. %Y, %m and %d, or %s)",
                ));
            }
            return Ok(Self::Strftime { text, items });
        }
        let (order, separator, time) =
            moengage_format(&text).ok_or_else(|| bad("it is not one of the supported formats"))?;
        Ok(Self::MoEngage {
            text,
            order,
            separator,
            time,
        })
    }

    /// The format as the mapping wrote it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Iso8601 { text } | Self::MoEngage { text, .. } | Self::Strftime { text, .. } => {
                text
            }
        }
    }

    /// Parses an (already trimmed) cell; times without an offset are local to `tz`.
    pub fn parse_value(&self, raw: &str, tz: Tz) -> Result<DateTime<Utc>, ValueError> {
        let parsed = match self {
            Self::Iso8601 { .. } => {
                return parse_iso(raw)
                    .ok_or_else(|| ValueError::NotIsoDateTime {
                        raw: raw.to_string(),
                    })
                    .and_then(|p| p.resolve(raw, tz));
            }
            Self::MoEngage {
                order,
                separator,
                time,
                ..
            } => parse_moengage(raw.as_bytes(), *order, *separator, *time),
            Self::Strftime { items, .. } => parse_strftime(raw, items),
        };
        parsed
            .ok_or_else(|| ValueError::DateTimeMismatch {
                raw: raw.to_string(),
                format: self.as_str().to_string(),
            })
            .and_then(|p| p.resolve(raw, tz))
    }
}

impl Serialize for ValueDateTimeFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
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
        f.write_str(self.as_str())
    }
}

/// Recognises MoEngage's format names, case-insensitively.
fn moengage_format(text: &str) -> Option<(DateOrder, u8, TimePart)> {
    let upper = text.to_ascii_uppercase();
    if upper.len() < 10 || !upper.is_char_boundary(10) {
        return None;
    }
    let (date, rest) = upper.split_at(10);
    let (order, separator) = match date {
        "YYYY-MM-DD" => (DateOrder::YearFirst, b'-'),
        "YYYY/MM/DD" => (DateOrder::YearFirst, b'/'),
        "DD/MM/YYYY" => (DateOrder::DayFirst, b'/'),
        "DD-MM-YYYY" => (DateOrder::DayFirst, b'-'),
        _ => return None,
    };
    let time = match rest {
        "" => TimePart::None,
        " HH:MM:SS" => TimePart::Local {
            fraction: Fraction::Forbidden,
        },
        " HH:MM:SS.S" => TimePart::Local {
            fraction: Fraction::Required,
        },
        " HH:MM:SS[.S]" => TimePart::Local {
            fraction: Fraction::Optional,
        },
        "THH:MM:SSTZD" => TimePart::Zoned {
            fraction: Fraction::Forbidden,
        },
        "THH:MM:SS.STZD" => TimePart::Zoned {
            fraction: Fraction::Required,
        },
        "THH:MM:SS[.S]TZD" => TimePart::Zoned {
            fraction: Fraction::Optional,
        },
        _ => return None,
    };
    Some((order, separator, time))
}

/// A parsed date-time before the time zone is applied.
pub(super) enum Parsed2 {
    /// A wall-clock time in the caller's time zone.
    Local(NaiveDateTime),
    /// An absolute instant (the text carried an offset or was a timestamp).
    Absolute(DateTime<Utc>),
}

impl Parsed2 {
    pub(super) fn resolve(self, raw: &str, tz: Tz) -> Result<DateTime<Utc>, ValueError> {
        match self {
            Self::Absolute(t) => Ok(t),
            Self::Local(n) => local(n, tz, raw),
        }
    }
}

/// A local time in `tz` as UTC: the earlier instant when it is ambiguous (clocks go
/// back), an error when it does not exist (clocks go forward).
fn local(n: NaiveDateTime, tz: Tz, raw: &str) -> Result<DateTime<Utc>, ValueError> {
    if tz == Tz::UTC {
        // The usual case, and chrono-tz's transition search costs more than the parse.
        return Ok(n.and_utc());
    }
    match tz.from_local_datetime(&n) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Ok(a.with_timezone(&Utc).min(b.with_timezone(&Utc))),
        LocalResult::None => Err(ValueError::NonexistentLocalTime {
            raw: raw.to_string(),
            timezone: tz.name().to_string(),
        }),
    }
}

/// A small cursor over ASCII bytes for the hand-rolled date-time parsers.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self { b, i: 0 }
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let s = self.b.get(self.i..self.i + n)?;
        let mut v = 0u32;
        for &c in s {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i += n;
        Some(v)
    }

    /// `.` then 1..=max digits, as nanoseconds.
    fn fraction(&mut self, max: usize) -> Option<u32> {
        self.eat(b'.')?;
        let start = self.i;
        let mut v = 0u32;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            if self.i - start == max {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 {
            return None;
        }
        Some(v * 10u32.pow(9 - n as u32))
    }

    /// `hh:mm:ss` with the fraction rule.
    fn time(&mut self, fraction: Fraction) -> Option<NaiveTime> {
        let h = self.digits(2)?;
        self.eat(b':')?;
        let m = self.digits(2)?;
        self.eat(b':')?;
        let s = self.digits(2)?;
        let nanos = match (fraction, self.peek()) {
            (Fraction::Forbidden, _) | (Fraction::Optional, Some(b'Z' | b'+' | b'-') | None) => 0,
            (Fraction::Required | Fraction::Optional, _) => self.fraction(6)?,
        };
        NaiveTime::from_hms_nano_opt(h, m, s, nanos)
    }

    /// `Z`, or `+hh:mm` / `-hh:mm` (also `+hhmm` and `+hh` when `lenient`), in seconds.
    fn offset(&mut self, lenient: bool) -> Option<i32> {
        let sign = match self.peek()? {
            b'Z' | b'z' => {
                self.i += 1;
                return Some(0);
            }
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.i += 1;
        let h = self.digits(2)?;
        let m = if self.eat(b':').is_some() {
            self.digits(2)?
        } else if lenient && self.done() {
            0
        } else if lenient {
            self.digits(2)?
        } else {
            return None;
        };
        if h > 23 || m > 59 {
            return None;
        }
        Some(sign * (h * 3600 + m * 60) as i32)
    }
}

fn absolute(date: NaiveDate, time: NaiveTime, offset: i32) -> Option<Parsed2> {
    let offset = FixedOffset::east_opt(offset)?;
    let t = offset
        .from_local_datetime(&date.and_time(time))
        .single()?
        .with_timezone(&Utc);
    Some(Parsed2::Absolute(t))
}

fn parse_moengage(b: &[u8], order: DateOrder, sep: u8, time: TimePart) -> Option<Parsed2> {
    let mut c = Cursor::new(b);
    let (y, m, d) = match order {
        DateOrder::YearFirst => {
            let y = c.digits(4)?;
            c.eat(sep)?;
            let m = c.digits(2)?;
            c.eat(sep)?;
            (y, m, c.digits(2)?)
        }
        DateOrder::DayFirst => {
            let d = c.digits(2)?;
            c.eat(sep)?;
            let m = c.digits(2)?;
            c.eat(sep)?;
            (c.digits(4)?, m, d)
        }
    };
    let date = NaiveDate::from_ymd_opt(y as i32, m, d)?;
    let parsed = match time {
        TimePart::None => Parsed2::Local(date.and_time(NaiveTime::MIN)),
        TimePart::Local { fraction } => {
            c.eat(b' ')?;
            Parsed2::Local(date.and_time(c.time(fraction)?))
        }
        TimePart::Zoned { fraction } => {
            c.eat(b'T')?;
            let t = c.time(fraction)?;
            let offset = c.offset(false)?;
            absolute(date, t, offset)?
        }
    };
    c.done().then_some(parsed)
}

/// ISO 8601 / RFC 3339: `YYYY-MM-DD`, optionally `T` or a space and `hh:mm[:ss[.f]]`,
/// optionally `Z` or an offset (`+hh:mm`, `+hhmm`, `+hh`). Without an offset the time
/// is local.
pub(super) fn parse_iso(raw: &str) -> Option<Parsed2> {
    let mut c = Cursor::new(raw.as_bytes());
    let y = c.digits(4)?;
    c.eat(b'-')?;
    let m = c.digits(2)?;
    c.eat(b'-')?;
    let d = c.digits(2)?;
    let date = NaiveDate::from_ymd_opt(y as i32, m, d)?;
    if c.done() {
        return Some(Parsed2::Local(date.and_time(NaiveTime::MIN)));
    }
    match c.peek()? {
        b'T' | b't' | b' ' => c.i += 1,
        _ => return None,
    }
    let h = c.digits(2)?;
    c.eat(b':')?;
    let mi = c.digits(2)?;
    let (s, nanos) = if c.eat(b':').is_some() {
        let s = c.digits(2)?;
        let nanos = if c.peek() == Some(b'.') {
            c.fraction(9)?
        } else {
            0
        };
        (s, nanos)
    } else {
        (0, 0)
    };
    let time = NaiveTime::from_hms_nano_opt(h, mi, s, nanos)?;
    if c.done() {
        return Some(Parsed2::Local(date.and_time(time)));
    }
    let offset = c.offset(true)?;
    c.done().then_some(())?;
    absolute(date, time, offset)
}

/// A strftime pattern: absolute when the text carries an offset or a timestamp, else
/// local; a pattern without a time reads as local midnight.
fn parse_strftime(raw: &str, items: &[Item<'static>]) -> Option<Parsed2> {
    let mut p = Parsed::new();
    chrono::format::parse(&mut p, raw, items.iter()).ok()?;
    if p.timestamp().is_some() || p.offset().is_some() {
        return Some(Parsed2::Absolute(p.to_datetime().ok()?.with_timezone(&Utc)));
    }
    let date = p.to_naive_date().ok()?;
    let time = if p.hour_div_12().is_none() && p.minute().is_none() {
        NaiveTime::MIN
    } else {
        p.to_naive_time().ok()?
    };
    Some(Parsed2::Local(date.and_time(time)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::values::testing::utc;
    use crate::model::values::{AttrType, Value, ValueOptions, parse_value};

    fn dt(raw: &str, format: &str, tz: Tz) -> Result<DateTime<Utc>, ValueError> {
        let f = ValueDateTimeFormat::parse(format).unwrap();
        let o = ValueOptions {
            datetime_format: Some(&f),
            timezone: tz,
            list_delimiter: None,
        };
        match parse_value(raw, AttrType::Datetime, &o)? {
            Some(Value::DateTime(t)) => Ok(t),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn iso_auto() {
        let iso = |raw: &str, tz: Tz| match parse_value(
            raw,
            AttrType::Datetime,
            &ValueOptions {
                timezone: tz,
                ..ValueOptions::default()
            },
        ) {
            Ok(Some(Value::DateTime(t))) => Ok(t),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        let tz = Tz::Asia__Kolkata;
        assert_eq!(
            iso("2022-01-31T12:59:00Z", tz).unwrap(),
            utc("2022-01-31T12:59:00Z")
        );
        assert_eq!(
            iso("2022-01-31T12:59:00+05:30", Tz::UTC).unwrap(),
            utc("2022-01-31T07:29:00Z")
        );
        assert_eq!(
            iso("2022-01-31T12:59:00.25-0100", Tz::UTC).unwrap(),
            utc("2022-01-31T13:59:00.25Z")
        );
        assert_eq!(
            iso("2022-01-31T12:59:00.123456789z", Tz::UTC).unwrap(),
            utc("2022-01-31T12:59:00.123456789Z")
        );
        // Naive forms are local to the time zone.
        assert_eq!(
            iso("2022-01-31T12:59:00", tz).unwrap(),
            utc("2022-01-31T07:29:00Z")
        );
        assert_eq!(
            iso("2022-01-31 12:59:00", tz).unwrap(),
            utc("2022-01-31T07:29:00Z")
        );
        assert_eq!(
            iso("2022-01-31 12:59", tz).unwrap(),
            utc("2022-01-31T07:29:00Z")
        );
        assert_eq!(iso("2022-01-31", tz).unwrap(), utc("2022-01-30T18:30:00Z"));
        assert_eq!(
            iso("2022-01-31", Tz::UTC).unwrap(),
            utc("2022-01-31T00:00:00Z")
        );
        for bad in [
            "31/01/2022",
            "2022-02-30",
            "2022-01-31T25:00:00",
            "2022-01-31T12:59:00+",
            "2022-01-31T12:59:00 junk",
            "20220131",
            "yesterday",
        ] {
            let e = iso(bad, Tz::UTC).unwrap_err();
            assert!(matches!(e, ValueError::NotIsoDateTime { .. }), "{bad}: {e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("`{bad}` is not an ISO-8601"))
            );
        }
        // The explicit names behave the same way.
        assert_eq!(
            dt("2022-01-31", "iso8601", Tz::UTC).unwrap(),
            utc("2022-01-31T00:00:00Z")
        );
        assert_eq!(
            dt("2022-01-31T12:59:00Z", "RFC3339", tz).unwrap(),
            utc("2022-01-31T12:59:00Z")
        );
    }

    #[test]
    fn moengage_formats() {
        let tz = Tz::Asia__Kolkata; // +05:30, no daylight saving
        assert_eq!(
            dt("2022-01-31", "YYYY-MM-DD", Tz::UTC).unwrap(),
            utc("2022-01-31T00:00:00Z")
        );
        assert_eq!(
            dt("2022/01/31", "YYYY/MM/DD", Tz::UTC).unwrap(),
            utc("2022-01-31T00:00:00Z")
        );
        assert_eq!(
            dt("31/01/2022", "DD/MM/YYYY", Tz::UTC).unwrap(),
            utc("2022-01-31T00:00:00Z")
        );
        assert_eq!(
            dt("31-01-2022", "DD-MM-YYYY", Tz::UTC).unwrap(),
            utc("2022-01-31T00:00:00Z")
        );
        assert_eq!(
            dt("31-01-2022", "DD-MM-YYYY", tz).unwrap(),
            utc("2022-01-30T18:30:00Z")
        );
        assert_eq!(
            dt("2022-01-31 12:59:00", "YYYY-MM-DD hh:mm:ss", tz).unwrap(),
            utc("2022-01-31T07:29:00Z")
        );
        assert_eq!(
            dt("31/01/2022 12:59:00.5", "DD/MM/YYYY hh:mm:ss.s", Tz::UTC).unwrap(),
            utc("2022-01-31T12:59:00.5Z")
        );
        assert_eq!(
            dt(
                "2022-01-31T12:59:00.123456+05:30",
                "YYYY-MM-DDThh:mm:ss.sTZD",
                Tz::UTC
            )
            .unwrap(),
            utc("2022-01-31T07:29:00.123456Z")
        );
        // A zoned format ignores the time zone setting.
        assert_eq!(
            dt("31/01/2022T12:59:00Z", "DD/MM/YYYYThh:mm:ssTZD", tz).unwrap(),
            utc("2022-01-31T12:59:00Z")
        );
        assert_eq!(
            dt(
                "31-01-2022T12:59:00-02:00",
                "DD-MM-YYYYThh:mm:ss[.s]TZD",
                tz
            )
            .unwrap(),
            utc("2022-01-31T14:59:00Z")
        );
        assert_eq!(
            dt(
                "31-01-2022T12:59:00.1-02:00",
                "DD-MM-YYYYThh:mm:ss[.s]TZD",
                tz
            )
            .unwrap(),
            utc("2022-01-31T14:59:00.1Z")
        );
        // Format names are case-insensitive.
        assert_eq!(
            dt("2022-01-31", "yyyy-mm-dd", Tz::UTC).unwrap(),
            utc("2022-01-31T00:00:00Z")
        );

        for (raw, format) in [
            ("31/02/2022", "DD/MM/YYYY"),
            ("2022-01-31", "DD-MM-YYYY"),
            ("2022-1-31", "YYYY-MM-DD"),
            ("2022-01-31 12:59", "YYYY-MM-DD hh:mm:ss"),
            ("2022-01-31 12:59:00", "YYYY-MM-DD"),
            ("2022-01-31 12:59:00", "YYYY-MM-DD hh:mm:ss.s"),
            ("2022-01-31 12:59:00.5", "YYYY-MM-DD hh:mm:ss"),
            ("2022-01-31 12:59:00.1234567", "YYYY-MM-DD hh:mm:ss.s"),
            ("2022-01-31T12:59:00", "YYYY-MM-DDThh:mm:ssTZD"),
            ("2022-01-31T12:59:00+0530", "YYYY-MM-DDThh:mm:ssTZD"),
            ("2022-01-31T12:59:00.5Z", "YYYY-MM-DDThh:mm:ssTZD"),
            ("2022-01-31T24:00:00Z", "YYYY-MM-DDThh:mm:ssTZD"),
        ] {
            let e = dt(raw, format, Tz::UTC).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("`{raw}` does not match the date-time format `{format}`")
            );
        }
    }

    #[test]
    fn strftime_formats() {
        let tz = Tz::Europe__Berlin; // +01:00 in winter
        assert_eq!(
            dt("31.01.2022 12:59", "%d.%m.%Y %H:%M", tz).unwrap(),
            utc("2022-01-31T11:59:00Z")
        );
        assert_eq!(
            dt("31.01.2022", "%d.%m.%Y", tz).unwrap(),
            utc("2022-01-30T23:00:00Z")
        );
        assert_eq!(
            dt("1643633940", "%s", tz).unwrap(),
            utc("2022-01-31T12:59:00Z")
        );
        assert_eq!(
            dt("2022-01-31T12:59:00+05:30", "%Y-%m-%dT%H:%M:%S%:z", tz).unwrap(),
            utc("2022-01-31T07:29:00Z")
        );
        assert_eq!(
            dt("Jan 31 2022 01:59:00 PM", "%b %d %Y %I:%M:%S %p", Tz::UTC).unwrap(),
            utc("2022-01-31T13:59:00Z")
        );
        let e = dt("2022-01-31", "%d.%m.%Y", tz).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`2022-01-31` does not match the date-time format `%d.%m.%Y`"
        );
    }

    #[test]
    fn bad_formats() {
        for f in [
            "",
            "DD.MM.YYYY",
            "YYYY-MM-DD HH:MM",
            "%H:%M",
            "%Q",
            "whatever",
        ] {
            let e = ValueDateTimeFormat::parse(f).unwrap_err();
            assert!(matches!(e, ValueError::BadFormat { .. }), "{f}");
            assert!(e.to_string().contains("is not a date-time format"), "{e}");
        }
        let e = ValueDateTimeFormat::parse("%H:%M").unwrap_err();
        assert!(
            e.to_string().contains("does not describe a whole date"),
            "{e}"
        );
    }

    #[test]
    fn format_keeps_text_and_serde_round_trips() {
        let f = ValueDateTimeFormat::parse(" DD/MM/YYYY hh:mm:ss ").unwrap();
        assert_eq!(f.as_str(), "DD/MM/YYYY hh:mm:ss");
        assert_eq!(f.to_string(), "DD/MM/YYYY hh:mm:ss");
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, "\"DD/MM/YYYY hh:mm:ss\"");
        let back: ValueDateTimeFormat = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
        let s: ValueDateTimeFormat = serde_json::from_str("\"%d.%m.%Y\"").unwrap();
        assert!(matches!(s, ValueDateTimeFormat::Strftime { .. }));
        assert!(serde_json::from_str::<ValueDateTimeFormat>("\"nope\"").is_err());
    }

    #[test]
    fn daylight_saving_edges() {
        let berlin = Tz::Europe__Berlin;
        // 2022-10-30 02:30 happens twice in Berlin; the earlier (CEST, +02:00) wins.
        assert_eq!(
            dt("2022-10-30 02:30:00", "YYYY-MM-DD hh:mm:ss", berlin).unwrap(),
            utc("2022-10-30T00:30:00Z")
        );
        // 2022-03-27 02:30 never happens in Berlin.
        let e = dt("2022-03-27 02:30:00", "YYYY-MM-DD hh:mm:ss", berlin).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`2022-03-27 02:30:00` does not exist in the time zone Europe/Berlin (the clocks skip it when daylight saving time starts)"
        );
        let e = dt("2022-03-27T02:30", "iso8601", berlin).unwrap_err();
        assert!(matches!(e, ValueError::NonexistentLocalTime { .. }));
    }
}
