//! Schedules: when an import runs, in its timezone, DST-correct.
//!
//! A local time that does not exist (the spring-forward gap) runs at the first instant
//! after the gap; a local time that happens twice (fall back) runs once, at the
//! earlier instant.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Which local dates a schedule runs on.
type DayFilter = Box<dyn Fn(NaiveDate) -> bool>;

/// How far ahead a schedule is searched before it is taken to never fire again: 29
/// years covers every (date, weekday) pairing, so a rare cron day (29 February on a
/// Monday) is still found.
const SEARCH_DAYS: i64 = 366 * 29;

/// The longest `every` interval: a year, in minutes. Longer is surely a mistake, and
/// the cap keeps the arithmetic far from overflow.
const MAX_EVERY_MINUTES: u32 = 366 * 1440;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Once: as soon as possible, or at a local time.
    Once {
        #[serde(default, skip_serializing_if = "Option::is_none", with = "local_time")]
        at: Option<NaiveDateTime>,
    },
    Hourly {
        #[serde(default)]
        minute: u32,
    },
    Daily {
        time: String,
    },
    Weekly {
        days: Vec<String>,
        time: String,
    },
    Monthly {
        days: Vec<u32>,
        time: String,
    },
    /// Every N minutes or N hours (exactly one).
    Every {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minutes: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hours: Option<u32>,
    },
    /// A 5-field cron expression: minute hour day-of-month month day-of-week.
    Cron {
        expression: String,
    },
}

fn parse_time(s: &str) -> Result<(u32, u32), String> {
    let t = NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| format!("`{s}` is not a time of day (use HH:MM, e.g. 09:30)"))?;
    Ok((t.hour(), t.minute()))
}

fn parse_weekday(s: &str) -> Result<Weekday, String> {
    s.trim().parse::<Weekday>().map_err(|_| {
        format!("`{s}` is not a day of the week (use mon, tue, wed, thu, fri, sat, sun)")
    })
}

/// A parsed cron expression: the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn cron_field(
    text: &str,
    name: &str,
    min: u32,
    max: u32,
    names: &[&str],
    names_from: u32,
) -> Result<(u64, bool), String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + names_from);
        }
        let v: u32 = s.parse().map_err(|_| {
            format!(
                "cron {name} field: `{s}` is not a number{}",
                if names.is_empty() { "" } else { " or name" }
            )
        })?;
        if v < min || v > max {
            return Err(format!("cron {name} field: {v} is outside {min}-{max}"));
        }
        Ok(v)
    };
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("cron {name} field: bad step `{s}`"))?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (lo, hi) = (value(a)?, value(b)?);
            // Day-of-week ranges may end on Sunday as 0 (`sat-sun`, `5-0`): it is 7 too.
            let sunday_end = max == 7 && hi == 0 && lo > 0;
            (lo, if sunday_end { 7 } else { hi })
        } else {
            let v = value(range)?;
            (v, if item.contains('/') { max } else { v })
        };
        if lo > hi {
            return Err(format!("cron {name} field: range `{range}` runs backwards"));
        }
        // `step_by` cannot overflow however large the step.
        for v in (lo..=hi).step_by(usize::try_from(step).unwrap_or(usize::MAX)) {
            bits |= 1 << v;
        }
    }
    // As in Vixie cron: a field starting with `*` (`*`, `*/2`) does not restrict the
    // day, which decides whether day-of-month and day-of-week combine by "or".
    Ok((bits, !text.starts_with('*')))
}

impl Cron {
    fn parse(expr: &str) -> Result<Self, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "cron expression `{expr}` has {} fields; use 5: minute hour day-of-month month day-of-week",
                fields.len()
            ));
        }
        let (minutes, _) = cron_field(fields[0], "minute", 0, 59, &[], 0)?;
        let (hours, _) = cron_field(fields[1], "hour", 0, 23, &[], 0)?;
        let (days, days_restricted) = cron_field(fields[2], "day-of-month", 1, 31, &[], 0)?;
        let (months, _) = cron_field(fields[3], "month", 1, 12, &MONTH_NAMES, 1)?;
        let (mut weekdays, weekdays_restricted) =
            cron_field(fields[4], "day-of-week", 0, 7, &DAY_NAMES, 0)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1; // 7 is Sunday too
        }
        Ok(Self {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: (weekdays & 0x7f) as u8,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        // Both restricted: either may match (the classic cron rule). Otherwise both
        // must, and a `*` field has every bit set; `*/10` has only some.
        if self.days_restricted && self.weekdays_restricted {
            dom || dow
        } else {
            dom && dow
        }
    }

    fn times(&self) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for h in 0..24 {
            if self.hours & (1 << h) == 0 {
                continue;
            }
            for m in 0..60 {
                if self.minutes & (1 << m) != 0 {
                    out.push((h, m));
                }
            }
        }
        out
    }
}

/// A local time as a UTC instant: of two (fall back), the earlier; in a gap (spring
/// forward), the first instant after it.
fn resolve(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let mut t = local;
    // Gaps are whole minutes and an hour long as a rule; 25 hours also covers a
    // skipped day (Samoa, 30 December 2011).
    for _ in 0..(25 * 60) {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(x) => return Some(x.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => return Some(a.min(b).with_timezone(&Utc)),
            LocalResult::None => t += Duration::minutes(1),
        }
    }
    None
}

/// The interval of an `every` schedule in minutes, when valid.
fn every_minutes(minutes: Option<u32>, hours: Option<u32>) -> Option<u32> {
    let n = match (minutes, hours) {
        (Some(m), None) => m,
        (None, Some(h)) => h.checked_mul(60)?,
        _ => return None,
    };
    (1..=MAX_EVERY_MINUTES).contains(&n).then_some(n)
}

/// `at` of a one-time schedule: `2026-12-01T10:00:00`, also without seconds or with
/// a space for the `T`, since people write times either way.
mod local_time {
    use chrono::NaiveDateTime;
    use serde::{Deserialize, Deserializer, Serializer};

    const FORMATS: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ];

    pub fn parse(s: &str) -> Option<NaiveDateTime> {
        FORMATS
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s.trim(), f).ok())
    }

    pub fn serialize<S: Serializer>(at: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(t) => s.serialize_str(&t.format("%Y-%m-%dT%H:%M:%S").to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => parse(&text).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a local date-time (use YYYY-MM-DDTHH:MM:SS, e.g. 2026-12-01T10:00:00)"
                ))
            }),
        }
    }
}

impl Schedule {
    /// Problems, each a sentence a person can act on.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut time = |t: &str| {
            if let Err(e) = parse_time(t) {
                p.push(e);
            }
        };
        match self {
            Self::Once { .. } => {}
            Self::Hourly { minute } => {
                if *minute > 59 {
                    p.push(format!("minute {minute} is not 0-59"));
                }
            }
            Self::Daily { time: t } => time(t),
            Self::Weekly { days, time: t } => {
                time(t);
                if days.is_empty() {
                    p.push("give at least one day of the week".into());
                }
                p.extend(days.iter().filter_map(|d| parse_weekday(d).err()));
            }
            Self::Monthly { days, time: t } => {
                time(t);
                if days.is_empty() {
                    p.push("give at least one day of the month".into());
                }
                p.extend(
                    days.iter()
                        .filter(|d| !(1..=31).contains(*d))
                        .map(|d| format!("day {d} is not 1-31")),
                );
            }
            Self::Every { minutes, hours } => match (minutes, hours) {
                (Some(_), Some(_)) | (None, None) => {
                    p.push("give either `minutes` or `hours`, not both".into())
                }
                (Some(0), _) | (_, Some(0)) => p.push("the interval must be at least 1".into()),
                _ if every_minutes(*minutes, *hours).is_none() => p.push(format!(
                    "the interval must be at most {MAX_EVERY_MINUTES} minutes ({} hours, a year)",
                    MAX_EVERY_MINUTES / 60
                )),
                _ => {}
            },
            Self::Cron { expression } => match Cron::parse(expression) {
                Err(e) => p.push(e),
                Ok(cron) => {
                    // 28 years from a leap year hold every (date, weekday) pairing.
                    let from = NaiveDate::from_ymd_opt(2000, 1, 1);
                    let fires = from.is_some_and(|from| {
                        from.iter_days().take(366 * 28).any(|d| cron.day_matches(d))
                    });
                    if !fires {
                        p.push(format!(
                            "cron expression `{expression}` never fires: no date has that day and month"
                        ));
                    }
                }
            },
        }
        p
    }

    pub fn is_one_time(&self) -> bool {
        matches!(self, Self::Once { .. })
    }

    /// The first run at or after `from`.
    pub fn first_run(&self, from: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Self::Once { at: None } => Some(from),
            Self::Once { at: Some(at) } => Some(resolve(tz, *at).map_or(from, |t| t.max(from))),
            _ => self.next(from - Duration::nanoseconds(1), tz),
        }
    }

    /// The next run strictly after `after` (None for a one-time schedule).
    pub fn next_run_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Self::Once { .. } => None,
            _ => self.next(after, tz),
        }
    }

    fn next(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // An invalid schedule never runs (config validation reports why), and bailing
        // out here saves searching years for a time that cannot come.
        if !self.validate().is_empty() {
            return None;
        }
        if let Self::Every { minutes, hours } = self {
            let n = i64::from(every_minutes(*minutes, *hours)?);
            if 1440 % n != 0 {
                // Not a divisor of a day: multiples of N minutes since the Unix epoch.
                let step = n * 60;
                let next = (after.timestamp().div_euclid(step) + 1) * step;
                return DateTime::from_timestamp(next, 0);
            }
        }
        let (day_ok, times): (DayFilter, Vec<(u32, u32)>) = match self {
            Self::Once { .. } => return None,
            Self::Hourly { minute } => {
                (Box::new(|_| true), (0..24).map(|h| (h, *minute)).collect())
            }
            Self::Daily { time } => (Box::new(|_| true), vec![parse_time(time).ok()?]),
            Self::Weekly { days, time } => {
                let days: Vec<Weekday> =
                    days.iter().filter_map(|d| parse_weekday(d).ok()).collect();
                (
                    Box::new(move |d: NaiveDate| days.contains(&d.weekday())),
                    vec![parse_time(time).ok()?],
                )
            }
            Self::Monthly { days, time } => {
                let days = days.clone();
                (
                    Box::new(move |d: NaiveDate| {
                        let last = last_day(d);
                        days.iter()
                            .any(|&x| x == d.day() || (x > last && d.day() == last))
                    }),
                    vec![parse_time(time).ok()?],
                )
            }
            Self::Every { minutes, hours } => {
                // A divisor of a day (checked above): multiples of N since local midnight.
                let n = every_minutes(*minutes, *hours)?;
                (
                    Box::new(|_| true),
                    (0..1440 / n).map(|k| (k * n / 60, k * n % 60)).collect(),
                )
            }
            Self::Cron { expression } => {
                let cron = Cron::parse(expression).ok()?;
                let times = cron.times();
                (Box::new(move |d| cron.day_matches(d)), times)
            }
        };
        // Start a day early: a gap or offset can move a local time across midnight UTC.
        let start = after.with_timezone(&tz).date_naive() - Duration::days(1);
        for offset in 0..SEARCH_DAYS {
            let day = start + Duration::days(offset);
            if !day_ok(day) {
                continue;
            }
            for &(h, m) in &times {
                let Some(local) = day.and_hms_opt(h, m, 0) else {
                    continue;
                };
                if let Some(t) = resolve(tz, local)
                    && t > after
                {
                    return Some(t);
                }
            }
        }
        None
    }

    /// In words, with the timezone where it matters, e.g. "daily at 09:30
    /// Asia/Kolkata".
    pub fn describe(&self, tz: Tz) -> String {
        let plural = |n: u32, unit: &str| {
            if n == 1 {
                format!("1 {unit}")
            } else {
                format!("{n} {unit}s")
            }
        };
        match self {
            Self::Once { at: None } => "once, as soon as possible".to_string(),
            Self::Once { at: Some(at) } => {
                format!("once at {} {tz}", at.format("%Y-%m-%d %H:%M"))
            }
            Self::Hourly { minute } => format!("hourly at minute {minute:02} {tz}"),
            Self::Daily { time } => format!("daily at {time} {tz}"),
            Self::Weekly { days, time } => {
                // `Mon` whatever case the config used; unknown names as given.
                let days: Vec<String> = days
                    .iter()
                    .map(|d| parse_weekday(d).map_or_else(|_| d.clone(), |w| w.to_string()))
                    .collect();
                format!("weekly on {} at {time} {tz}", days.join(", "))
            }
            Self::Monthly { days, time } => {
                let days: Vec<String> = days.iter().map(ToString::to_string).collect();
                let which = if days.len() == 1 { "day" } else { "days" };
                format!("monthly on {which} {} at {time} {tz}", days.join(", "))
            }
            Self::Every { minutes, hours } => {
                let what = match (minutes, hours) {
                    (Some(m), None) => plural(*m, "minute"),
                    (None, Some(h)) => plural(*h, "hour"),
                    _ => return "every ? (invalid: give either minutes or hours)".to_string(),
                };
                match every_minutes(*minutes, *hours) {
                    Some(n) if 1440 % n == 0 => format!("every {what} from midnight {tz}"),
                    _ => format!("every {what}"),
                }
            }
            Self::Cron { expression } => format!("cron `{expression}` {tz}"),
        }
    }
}

fn last_day(d: NaiveDate) -> u32 {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|n| n.pred_opt())
        .map_or(28, |n| n.day())
}

#[cfg(test)]
mod tests;
