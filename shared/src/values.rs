//! Typed values: parsing a cell's text as the attribute type the mapping asks for.
//!
//! This runs once per mapped cell, so the common paths (integers, numbers, booleans,
//! ISO and MoEngage date-times) are hand-rolled byte parsers that allocate nothing
//! beyond the value they return.

use std::fmt;
use std::num::IntErrorKind;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat,
    TimeZone, Utc,
};
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

/// Appends `n` as std's `Display` writes it: the shortest digits that read back as
/// `n`, never an exponent (`1e16` is `10000000000000000`). The digits are ryu's,
/// several times faster to find, and every number cell goes through here; on an exact
/// tie ryu rounds the last digit to even where std rounds up, and both read back as `n`.
pub fn push_number(out: &mut String, n: f64) {
    if !n.is_finite() {
        out.push_str(&n.to_string());
        return;
    }
    if push_short_decimal(out, n) {
        return;
    }
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(n);
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    // The digits without the point, and where the point goes.
    let mut digits = [0u8; 40];
    let mut len = 0;
    let mut point = None;
    for &b in mantissa.as_bytes() {
        if b == b'.' {
            point = Some(len);
        } else if len < digits.len() {
            digits[len] = b;
            len += 1;
        }
    }
    let mut point = point.unwrap_or(len) as i32 + exponent;
    let mut digits = &digits[..len];
    while let [b'0', rest @ ..] = digits {
        digits = rest;
        point -= 1;
    }
    while let [rest @ .., b'0'] = digits {
        digits = rest;
    }
    if negative {
        out.push('-');
    }
    // ryu writes ASCII digits only.
    fn ascii(d: &[u8]) -> &str {
        std::str::from_utf8(d).unwrap_or_default()
    }
    if digits.is_empty() {
        out.push('0');
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        out.push_str(ascii(digits));
    } else if point as usize >= digits.len() {
        out.push_str(ascii(digits));
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        let (int, frac) = digits.split_at(point as usize);
        out.push_str(ascii(int));
        out.push('.');
        out.push_str(ascii(frac));
    }
}

/// The common case of [`push_number`] (amounts, counts: up to 6 decimals, under 2^50 as
/// an integer of the last decimal), without finding digits at all: `n` is `m / 10^k`
/// for the fewest decimals `k`. It reads back as `n` because parsing rounds the same
/// exact fraction the same way; it is the shortest because, below 2^50, steps of
/// 10^-k are wider than the gap between doubles, so no shorter text also rounds to `n`.
fn push_short_decimal(out: &mut String, n: f64) -> bool {
    const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
    const LIMIT: f64 = (1u64 << 50) as f64;
    for (k, scale) in POW10.iter().enumerate() {
        let m = (n * scale).round();
        if m.abs() >= LIMIT {
            return false;
        }
        if m / scale != n {
            continue;
        }
        // |m| < 2^50: exact as an integer.
        let m = m as i64;
        if m == 0 {
            out.push_str(if n.is_sign_negative() { "-0" } else { "0" });
            return true;
        }
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(m.unsigned_abs());
        if m < 0 {
            out.push('-');
        }
        if k == 0 {
            out.push_str(digits);
        } else if digits.len() > k {
            let (int, frac) = digits.split_at(digits.len() - k);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', k - digits.len()));
            out.push_str(digits);
        }
        return true;
    }
    false
}

/// Appends `t` as UTC ISO-8601 (`2022-01-31T12:59:00Z`), with fractional seconds only
/// when they are not zero, as 3, 6 or 9 digits: the text of chrono's
/// `to_rfc3339_opts(AutoSi, true)`, written by hand because it runs for every event
/// row and chrono's formatter costs more than the rest of the row.
pub fn push_datetime(out: &mut String, t: &DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    let nanos = t.nanosecond();
    let year = t.year();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // Years chrono signs, and leap seconds: rare, so chrono's own formatter.
        out.push_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        return;
    }
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year.unsigned_abs());
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    let digits = match nanos {
        0 => 0,
        n if n % 1_000_000 == 0 => 3,
        n if n % 1_000 == 0 => 6,
        _ => 9,
    };
    let end = if digits == 0 {
        19
    } else {
        put(20, 9, nanos);
        20 + digits
    };
    b[end] = b'Z';
    // Every byte written is ASCII.
    out.push_str(std::str::from_utf8(&b[..=end]).unwrap_or_default());
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
enum Parsed2 {
    /// A wall-clock time in the caller's time zone.
    Local(NaiveDateTime),
    /// An absolute instant (the text carried an offset or was a timestamp).
    Absolute(DateTime<Utc>),
}

impl Parsed2 {
    fn resolve(self, raw: &str, tz: Tz) -> Result<DateTime<Utc>, ValueError> {
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
fn parse_iso(raw: &str) -> Option<Parsed2> {
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
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err(ValueError::NotNumber { raw: s.to_string() }),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::xorshift;

    #[test]
    fn push_number_matches_display() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let fixed = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            12.5,
            0.1,
            1e16,
            1e15,
            1.5e-7,
            1e-5,
            123456.789,
            9007199254740993.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            1e21,
            1e22,
            0.000123,
            100.0,
            4.35,
        ];
        let randoms: Vec<f64> = (0..200_000)
            .map(|i| {
                let bits = next();
                if i % 2 == 0 {
                    f64::from_bits(bits)
                } else {
                    // Everyday money-like values.
                    (bits % 100_000_000) as f64 / 100.0
                }
            })
            .collect();
        // Up to 6 decimals (the fast path): exactly std's text, ties or not.
        for i in 0..200_000 {
            let n = ((next() % 10_000_000_000) as f64 - 5e9) / 10f64.powi(i % 7);
            let mut s = String::new();
            push_number(&mut s, n);
            assert_eq!(s, n.to_string(), "{n:e}");
        }
        for n in fixed.into_iter().chain(randoms).filter(|n| n.is_finite()) {
            let mut s = String::new();
            push_number(&mut s, n);
            let std = n.to_string();
            // Same text as std's, except that an exact tie may round the other way in
            // the last digit (ryu rounds half to even): it still reads back as `n`.
            if s != std {
                assert_eq!(s.len(), std.len(), "{n:e}: {s} vs {std}");
                assert_eq!(s[..s.len() - 1], std[..std.len() - 1], "{n:e}");
            }
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), n.to_bits(), "{n:e}");
        }
    }

    #[test]
    fn push_datetime_matches_chrono() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let fixed = [
            0,
            1_000_000,
            123_000_000,
            1_000,
            123_456_000,
            1,
            999_999_999,
        ];
        for i in 0..20_000 {
            let secs = (next() % 400_000_000_000) as i64 - 100_000_000_000;
            let nanos = if i < fixed.len() * 100 {
                fixed[i % fixed.len()]
            } else {
                (next() % 1_000_000_000) as u32
            };
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            let mut s = String::new();
            push_datetime(&mut s, &t);
            assert_eq!(
                s,
                t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                "{secs} {nanos}"
            );
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        let mut s = String::new();
        push_datetime(&mut s, &leap);
        assert_eq!(s, "2016-12-31T23:59:60.500Z");
    }

    fn opts() -> ValueOptions<'static> {
        ValueOptions::default()
    }

    fn parse(raw: &str, ty: AttrType) -> Result<Option<Value>, ValueError> {
        parse_value(raw, ty, &opts())
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

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

    #[test]
    fn errors_are_permanent() {
        let e = parse("x", AttrType::Integer).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Permanent);
    }
}
