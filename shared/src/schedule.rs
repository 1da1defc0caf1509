//! Schedules: when an import runs, in its timezone, DST-correct.
//!
//! A local time that does not exist (the spring-forward gap) runs at the first instant
//! after the gap; a local time that happens twice (fall back) runs once, at the
//! earlier instant.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Which local dates a schedule runs on.
type DayFilter = Box<dyn Fn(NaiveDate) -> bool>;

/// How far ahead a schedule is searched before it is taken to never fire again.
const SEARCH_DAYS: i64 = 366 * 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Once: as soon as possible, or at a local time.
    Once {
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
    Ok((t.hour_(), t.minute_()))
}

trait HourMinute {
    fn hour_(&self) -> u32;
    fn minute_(&self) -> u32;
}

impl HourMinute for NaiveTime {
    fn hour_(&self) -> u32 {
        chrono::Timelike::hour(self)
    }
    fn minute_(&self) -> u32 {
        chrono::Timelike::minute(self)
    }
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
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if item.contains('/') { max } else { v })
        };
        if lo > hi {
            return Err(format!("cron {name} field: range `{range}` runs backwards"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, text != "*"))
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
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
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

/// A local time as a UTC instant: the earlier of two; past a gap, its end.
fn resolve(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let mut t = local;
    for _ in 0..(3 * 60) {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(x) => return Some(x.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => return Some(a.min(b).with_timezone(&Utc)),
            LocalResult::None => t += Duration::minutes(1),
        }
    }
    None
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
                (Some(0), _) | (_, Some(0)) => p.push("the interval must be at least 1".into()),
                (Some(_), Some(_)) | (None, None) => {
                    p.push("give either `minutes` or `hours`".into())
                }
                _ => {}
            },
            Self::Cron { expression } => {
                if let Err(e) = Cron::parse(expression) {
                    p.push(e);
                }
            }
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
        if let Self::Every { minutes, hours } = self {
            let n = i64::from(minutes.or(hours.map(|h| h * 60)).filter(|n| *n > 0)?);
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
                let n = minutes.or(hours.map(|h| h * 60))?;
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

    /// In words, e.g. "daily at 09:30 (Asia/Kolkata)".
    pub fn describe(&self, tz: Tz) -> String {
        let what = match self {
            Self::Once { at: None } => "once, as soon as possible".to_string(),
            Self::Once { at: Some(at) } => format!("once at {}", at.format("%Y-%m-%d %H:%M")),
            Self::Hourly { minute } => format!("hourly at minute {minute}"),
            Self::Daily { time } => format!("daily at {time}"),
            Self::Weekly { days, time } => format!("weekly on {} at {time}", days.join(", ")),
            Self::Monthly { days, time } => format!(
                "monthly on day {} at {time}",
                days.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Every {
                minutes: Some(m), ..
            } => format!("every {m} minutes"),
            Self::Every { hours: Some(h), .. } => format!("every {h} hours"),
            Self::Every { .. } => "every ? (invalid)".to_string(),
            Self::Cron { expression } => format!("cron `{expression}`"),
        };
        format!("{what} ({tz})")
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
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Asia::Kolkata, Europe::London};

    fn s(v: serde_json::Value) -> Schedule {
        serde_json::from_value(v).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The next `n` runs after `from`.
    fn runs(sched: &Schedule, from: &str, tz: Tz, n: usize) -> Vec<String> {
        let mut t = utc(from);
        let mut out = Vec::new();
        for _ in 0..n {
            t = sched.next_run_after(t, tz).unwrap();
            out.push(t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        out
    }

    #[test]
    fn once_runs_asap_or_at_its_time() {
        let now = utc("2026-11-28T10:00:00Z");
        let asap = s(serde_json::json!({"type": "once"}));
        assert_eq!(asap.first_run(now, Tz::UTC), Some(now));
        assert_eq!(asap.next_run_after(now, Tz::UTC), None);
        assert!(asap.is_one_time());
        let later = s(serde_json::json!({"type": "once", "at": "2026-12-01T10:00:00"}));
        assert_eq!(
            later.first_run(now, Kolkata),
            Some(utc("2026-12-01T04:30:00Z"))
        );
        let past = s(serde_json::json!({"type": "once", "at": "2020-01-01T00:00:00"}));
        assert_eq!(past.first_run(now, Tz::UTC), Some(now));
    }

    #[test]
    fn hourly_daily_weekly_monthly() {
        let hourly = s(serde_json::json!({"type": "hourly", "minute": 15}));
        assert_eq!(
            runs(&hourly, "2026-11-28T10:15:00Z", Tz::UTC, 2),
            ["2026-11-28T11:15:00Z", "2026-11-28T12:15:00Z"]
        );
        let daily = s(serde_json::json!({"type": "daily", "time": "09:30"}));
        assert_eq!(
            runs(&daily, "2026-11-28T10:00:00Z", Kolkata, 2),
            ["2026-11-29T04:00:00Z", "2026-11-30T04:00:00Z"]
        );
        assert_eq!(
            daily.first_run(utc("2026-11-28T04:00:00Z"), Kolkata),
            Some(utc("2026-11-28T04:00:00Z")),
            "at or after"
        );
        let weekly =
            s(serde_json::json!({"type": "weekly", "days": ["mon", "Thu"], "time": "08:00"}));
        // 2026-11-28 is a Saturday.
        assert_eq!(
            runs(&weekly, "2026-11-28T00:00:00Z", Tz::UTC, 3),
            [
                "2026-11-30T08:00:00Z",
                "2026-12-03T08:00:00Z",
                "2026-12-07T08:00:00Z"
            ]
        );
        let monthly = s(serde_json::json!({"type": "monthly", "days": [15, 31], "time": "06:00"}));
        assert_eq!(
            runs(&monthly, "2027-01-20T00:00:00Z", Tz::UTC, 4),
            [
                "2027-01-31T06:00:00Z",
                "2027-02-15T06:00:00Z",
                "2027-02-28T06:00:00Z",
                "2027-03-15T06:00:00Z"
            ]
        );
        // Leap year: the 29th of February is the month's last day.
        assert_eq!(
            runs(&monthly, "2028-02-16T00:00:00Z", Tz::UTC, 1),
            ["2028-02-29T06:00:00Z"]
        );
    }

    #[test]
    fn every_n_minutes_and_hours() {
        let quarter = s(serde_json::json!({"type": "every", "minutes": 15}));
        assert_eq!(
            runs(&quarter, "2026-11-28T10:07:00Z", Tz::UTC, 2),
            ["2026-11-28T10:15:00Z", "2026-11-28T10:30:00Z"]
        );
        // Aligned to local midnight in the timezone (Kolkata is +05:30).
        let six = s(serde_json::json!({"type": "every", "hours": 6}));
        assert_eq!(
            runs(&six, "2026-11-28T00:00:00Z", Kolkata, 2),
            ["2026-11-28T00:30:00Z", "2026-11-28T06:30:00Z"]
        );
        // 7 minutes does not divide a day: multiples since the Unix epoch.
        let seven = s(serde_json::json!({"type": "every", "minutes": 7}));
        let next = seven
            .next_run_after(utc("2026-11-28T10:00:00Z"), Tz::UTC)
            .unwrap();
        assert_eq!(next.timestamp() % 420, 0);
        assert!(next > utc("2026-11-28T10:00:00Z") && next <= utc("2026-11-28T10:07:00Z"));
    }

    #[test]
    fn cron_expressions() {
        let c = s(serde_json::json!({"type": "cron", "expression": "*/20 9-10 * * mon-fri"}));
        assert_eq!(
            runs(&c, "2026-11-27T10:30:00Z", Tz::UTC, 3),
            [
                "2026-11-27T10:40:00Z",
                "2026-11-30T09:00:00Z",
                "2026-11-30T09:20:00Z"
            ]
        );
        let names = s(serde_json::json!({"type": "cron", "expression": "0 12 1 jan,JUL *"}));
        assert_eq!(
            runs(&names, "2026-11-28T00:00:00Z", Tz::UTC, 2),
            ["2027-01-01T12:00:00Z", "2027-07-01T12:00:00Z"]
        );
        // Day-of-month and day-of-week both restricted: either matches. 0 and 7 are Sunday.
        let either = s(serde_json::json!({"type": "cron", "expression": "0 0 1 * 7"}));
        assert_eq!(
            runs(&either, "2026-11-28T00:00:00Z", Tz::UTC, 3),
            [
                "2026-11-29T00:00:00Z",
                "2026-12-01T00:00:00Z",
                "2026-12-06T00:00:00Z"
            ]
        );
        let list = s(serde_json::json!({"type": "cron", "expression": "5,35 0 * * 0"}));
        assert_eq!(
            runs(&list, "2026-11-28T00:00:00Z", Tz::UTC, 2),
            ["2026-11-29T00:05:00Z", "2026-11-29T00:35:00Z"]
        );
        let never = s(serde_json::json!({"type": "cron", "expression": "0 0 30 2 *"}));
        assert_eq!(
            never.next_run_after(utc("2026-01-01T00:00:00Z"), Tz::UTC),
            None
        );
    }

    #[test]
    fn dst_gaps_and_overlaps() {
        // New York springs forward on 2027-03-14 at 02:00 (to 03:00).
        let daily = s(serde_json::json!({"type": "daily", "time": "02:30"}));
        assert_eq!(
            runs(&daily, "2027-03-13T12:00:00Z", New_York, 2),
            // 03:00 EDT (the end of the gap), then 02:30 EDT.
            ["2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"]
        );
        // It falls back on 2027-11-07 at 02:00 (to 01:00): 01:30 happens twice, runs once.
        let early = s(serde_json::json!({"type": "daily", "time": "01:30"}));
        assert_eq!(
            runs(&early, "2027-11-06T12:00:00Z", New_York, 2),
            ["2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"]
        );
        // London: 09:00 local is 09:00 UTC in winter and 08:00 UTC in summer.
        let nine = s(serde_json::json!({"type": "daily", "time": "09:00"}));
        assert_eq!(
            runs(&nine, "2027-03-27T10:00:00Z", London, 1),
            ["2027-03-28T08:00:00Z"]
        );
        assert_eq!(
            runs(&nine, "2027-01-10T10:00:00Z", London, 1),
            ["2027-01-11T09:00:00Z"]
        );
        let hourly = s(serde_json::json!({"type": "hourly", "minute": 30}));
        let times = runs(&hourly, "2027-03-14T05:00:00Z", New_York, 3);
        // 00:30 EST, then 01:30 EST, then the gap's 02:30 becomes 03:00 EDT.
        assert_eq!(
            times,
            [
                "2027-03-14T05:30:00Z",
                "2027-03-14T06:30:00Z",
                "2027-03-14T07:00:00Z"
            ]
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let bad = [
            (
                serde_json::json!({"type": "hourly", "minute": 60}),
                "minute 60",
            ),
            (
                serde_json::json!({"type": "daily", "time": "25:00"}),
                "`25:00` is not a time",
            ),
            (
                serde_json::json!({"type": "weekly", "days": [], "time": "09:00"}),
                "at least one day",
            ),
            (
                serde_json::json!({"type": "weekly", "days": ["funday"], "time": "09:00"}),
                "`funday`",
            ),
            (
                serde_json::json!({"type": "monthly", "days": [0, 32], "time": "09:00"}),
                "day 0",
            ),
            (
                serde_json::json!({"type": "every", "minutes": 0}),
                "at least 1",
            ),
            (
                serde_json::json!({"type": "every", "minutes": 5, "hours": 1}),
                "either",
            ),
            (
                serde_json::json!({"type": "cron", "expression": "* * *"}),
                "3 fields",
            ),
            (
                serde_json::json!({"type": "cron", "expression": "61 * * * *"}),
                "minute field",
            ),
            (
                serde_json::json!({"type": "cron", "expression": "* * * foo *"}),
                "month field",
            ),
        ];
        for (v, needle) in bad {
            let problems = s(v.clone()).validate();
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{v}: {problems:?}"
            );
        }
        assert!(
            s(serde_json::json!({"type": "cron", "expression": "0 9 * * 1-5"}))
                .validate()
                .is_empty()
        );
        assert_eq!(
            s(serde_json::json!({"type": "daily", "time": "09:30"})).describe(Kolkata),
            "daily at 09:30 (Asia/Kolkata)"
        );
    }
}
