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
    let weekly = s(serde_json::json!({"type": "weekly", "days": ["mon", "Thu"], "time": "08:00"}));
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
        "daily at 09:30 Asia/Kolkata"
    );
}

fn json(sched: &Schedule) -> String {
    serde_json::to_string(sched).unwrap()
}

#[test]
fn serde_shapes() {
    let cases = [
        r#"{"type":"once"}"#,
        r#"{"type":"once","at":"2026-12-01T10:00:00"}"#,
        r#"{"type":"hourly","minute":15}"#,
        r#"{"type":"daily","time":"09:30"}"#,
        r#"{"type":"weekly","days":["mon","thu"],"time":"09:30"}"#,
        r#"{"type":"monthly","days":[1,15,31],"time":"09:30"}"#,
        r#"{"type":"every","minutes":30}"#,
        r#"{"type":"every","hours":6}"#,
        r#"{"type":"cron","expression":"*/15 9-17 * * mon-fri"}"#,
    ];
    for text in cases {
        let sched: Schedule = serde_json::from_str(text).unwrap();
        assert_eq!(json(&sched), text);
        assert!(
            sched.validate().is_empty(),
            "{text}: {:?}",
            sched.validate()
        );
    }
    assert_eq!(
        s(serde_json::json!({"type": "hourly"})),
        Schedule::Hourly { minute: 0 }
    );
    // `at` is also read without seconds or with a space.
    let want = Schedule::Once {
        at: NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(10, 0, 0),
    };
    for at in [
        "2026-12-01T10:00",
        "2026-12-01 10:00:00",
        " 2026-12-01T10:00:00.000 ",
    ] {
        assert_eq!(
            s(serde_json::json!({"type": "once", "at": at})),
            want,
            "{at}"
        );
    }
    assert_eq!(
        s(serde_json::json!({"type": "once", "at": null})),
        Schedule::Once { at: None }
    );
    let e =
        serde_json::from_value::<Schedule>(serde_json::json!({"type": "once", "at": "tomorrow"}))
            .unwrap_err();
    assert!(
        e.to_string()
            .contains("`tomorrow` is not a local date-time"),
        "{e}"
    );
    for bad in [
        serde_json::json!({"type": "yearly"}),
        serde_json::json!({"type": "daily"}),
        serde_json::json!({"type": "daily", "time": "09:30", "tz": "UTC"}),
        serde_json::json!({"type": "monthly", "days": [-1], "time": "09:30"}),
    ] {
        assert!(
            serde_json::from_value::<Schedule>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn once_in_local_time_and_dst() {
    let now = utc("2027-01-01T00:00:00Z");
    let at = |t: &str| s(serde_json::json!({"type": "once", "at": t}));
    // In the spring-forward gap: the end of the gap, 03:00 EDT.
    assert_eq!(
        at("2027-03-14T02:30:00").first_run(now, New_York),
        Some(utc("2027-03-14T07:00:00Z"))
    );
    // Twice on the fall-back day: the earlier, 01:30 EDT.
    assert_eq!(
        at("2027-11-07T01:30:00").first_run(now, New_York),
        Some(utc("2027-11-07T05:30:00Z"))
    );
    assert_eq!(
        at("2027-06-01T09:00:00").first_run(now, London),
        Some(utc("2027-06-01T08:00:00Z"))
    );
    // Exactly now runs now; a second later would have been in the past.
    assert_eq!(at("2027-01-01T00:00:00").first_run(now, Tz::UTC), Some(now));
    assert_eq!(at("2027-06-01T09:00:00").next_run_after(now, London), None);
}

#[test]
fn hourly_in_offset_zones_and_dst() {
    // Kolkata is +05:30: minute 15 local is minute 45 UTC.
    let hourly = s(serde_json::json!({"type": "hourly", "minute": 15}));
    assert_eq!(
        runs(&hourly, "2026-11-28T10:00:00Z", Kolkata, 2),
        ["2026-11-28T10:45:00Z", "2026-11-28T11:45:00Z"]
    );
    // New York falls back at 02:00 EDT: 01:30 happens twice and runs once.
    let half = s(serde_json::json!({"type": "hourly", "minute": 30}));
    assert_eq!(
        runs(&half, "2027-11-07T04:00:00Z", New_York, 3),
        [
            "2027-11-07T04:30:00Z",
            "2027-11-07T05:30:00Z",
            "2027-11-07T07:30:00Z"
        ]
    );
    assert_eq!(
        hourly.first_run(utc("2026-11-28T10:45:00Z"), Kolkata),
        Some(utc("2026-11-28T10:45:00Z"))
    );
    assert_eq!(
        hourly.first_run(utc("2026-11-28T10:45:00.001Z"), Kolkata),
        Some(utc("2026-11-28T11:45:00Z"))
    );
}

#[test]
fn daily_and_weekly_across_days_and_dst() {
    let midnight = s(serde_json::json!({"type": "daily", "time": "00:00"}));
    assert_eq!(
        runs(&midnight, "2027-12-31T00:00:00Z", Tz::UTC, 2),
        ["2028-01-01T00:00:00Z", "2028-01-02T00:00:00Z"]
    );
    // London springs forward on 2027-03-28 at 01:00 GMT (to 02:00 BST).
    let early = s(serde_json::json!({"type": "daily", "time": "01:30"}));
    assert_eq!(
        runs(&early, "2027-03-27T12:00:00Z", London, 2),
        ["2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"]
    );
    // And falls back on 2027-10-31 at 02:00 BST (to 01:00 GMT): the earlier 01:30.
    assert_eq!(
        runs(&early, "2027-10-30T12:00:00Z", London, 2),
        ["2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"]
    );
    // 02:00 Monday in Kolkata is Sunday evening UTC. Full names and any case.
    let weekly =
        s(serde_json::json!({"type": "weekly", "days": ["MONDAY", "sun"], "time": "02:00"}));
    assert_eq!(
        runs(&weekly, "2026-11-28T00:00:00Z", Kolkata, 3),
        [
            "2026-11-28T20:30:00Z",
            "2026-11-29T20:30:00Z",
            "2026-12-05T20:30:00Z"
        ]
    );
}

#[test]
fn monthly_month_ends_fire_once() {
    let last = s(serde_json::json!({"type": "monthly", "days": [31], "time": "12:00"}));
    assert_eq!(
        runs(&last, "2027-01-01T00:00:00Z", Tz::UTC, 4),
        [
            "2027-01-31T12:00:00Z",
            "2027-02-28T12:00:00Z",
            "2027-03-31T12:00:00Z",
            "2027-04-30T12:00:00Z"
        ]
    );
    // 29, 30 and 31 all fall on 28 February: one run, not three.
    let late = s(serde_json::json!({"type": "monthly", "days": [29, 30, 31], "time": "12:00"}));
    assert_eq!(
        runs(&late, "2027-02-01T00:00:00Z", Tz::UTC, 4),
        [
            "2027-02-28T12:00:00Z",
            "2027-03-29T12:00:00Z",
            "2027-03-30T12:00:00Z",
            "2027-03-31T12:00:00Z"
        ]
    );
    // Leap year: 29 February is both the 29th and, for 30 and 31, the last day: once.
    assert_eq!(
        runs(&late, "2028-02-01T00:00:00Z", Tz::UTC, 2),
        ["2028-02-29T12:00:00Z", "2028-03-29T12:00:00Z"]
    );
    // The 1st at 00:00 in Kolkata is the previous month's last day in UTC.
    let first = s(serde_json::json!({"type": "monthly", "days": [1], "time": "00:00"}));
    assert_eq!(
        runs(&first, "2027-01-15T00:00:00Z", Kolkata, 2),
        ["2027-01-31T18:30:00Z", "2027-02-28T18:30:00Z"]
    );
}

#[test]
fn every_alignment() {
    // 30 minutes across New York's spring-forward gap: 02:00 and 02:30 do not
    // exist, so one run at 03:00 EDT, then on.
    let half = s(serde_json::json!({"type": "every", "minutes": 30}));
    assert_eq!(
        runs(&half, "2027-03-14T06:00:00Z", New_York, 3),
        [
            "2027-03-14T06:30:00Z",
            "2027-03-14T07:00:00Z",
            "2027-03-14T07:30:00Z"
        ]
    );
    // 90 minutes divides a day: local 00:00, 01:30, 03:00, ... in Kolkata.
    let ninety = s(serde_json::json!({"type": "every", "minutes": 90}));
    assert_eq!(
        runs(&ninety, "2026-11-28T00:00:00Z", Kolkata, 2),
        ["2026-11-28T00:30:00Z", "2026-11-28T02:00:00Z"]
    );
    // 7 minutes and 25 hours do not: multiples since the Unix epoch.
    let seven = s(serde_json::json!({"type": "every", "minutes": 7}));
    assert_eq!(
        runs(&seven, "2026-11-28T10:00:00Z", Kolkata, 2),
        ["2026-11-28T10:06:00Z", "2026-11-28T10:13:00Z"]
    );
    assert_eq!(
        seven.first_run(utc("2026-11-28T10:06:00Z"), Tz::UTC),
        Some(utc("2026-11-28T10:06:00Z"))
    );
    let long = s(serde_json::json!({"type": "every", "hours": 25}));
    assert_eq!(
        runs(&long, "2026-11-28T10:00:00Z", New_York, 2),
        ["2026-11-29T11:00:00Z", "2026-11-30T12:00:00Z"]
    );
    // 24 hours is daily at local midnight.
    let day = s(serde_json::json!({"type": "every", "hours": 24}));
    assert_eq!(
        runs(&day, "2027-06-01T12:00:00Z", London, 2),
        ["2027-06-01T23:00:00Z", "2027-06-02T23:00:00Z"]
    );
    let one = s(serde_json::json!({"type": "every", "minutes": 1}));
    assert_eq!(
        runs(&one, "2026-11-28T10:00:30Z", Tz::UTC, 2),
        ["2026-11-28T10:01:00Z", "2026-11-28T10:02:00Z"]
    );
}

#[test]
fn cron_fields() {
    let cases: [(&str, &str, Tz, &[&str]); 10] = [
        // Friday 17:50 in Kolkata: next is Monday 09:00 local.
        (
            "*/15 9-17 * * mon-fri",
            "2026-11-27T12:20:00Z",
            Kolkata,
            &["2026-11-30T03:30:00Z", "2026-11-30T03:45:00Z"],
        ),
        // A stepped range, and a value with a step (from it to the end).
        (
            "10-30/10 0 * * *",
            "2027-01-01T00:15:00Z",
            Tz::UTC,
            &[
                "2027-01-01T00:20:00Z",
                "2027-01-01T00:30:00Z",
                "2027-01-02T00:10:00Z",
            ],
        ),
        (
            "5/20 0 * * *",
            "2027-01-01T00:00:00Z",
            Tz::UTC,
            &[
                "2027-01-01T00:05:00Z",
                "2027-01-01T00:25:00Z",
                "2027-01-01T00:45:00Z",
            ],
        ),
        // Lists of values and ranges.
        (
            "0 8,12-13 * * *",
            "2027-01-01T00:00:00Z",
            Tz::UTC,
            &[
                "2027-01-01T08:00:00Z",
                "2027-01-01T12:00:00Z",
                "2027-01-01T13:00:00Z",
            ],
        ),
        // Names in any case; months stepped.
        (
            "0 6 1 */3 *",
            "2027-01-02T00:00:00Z",
            Tz::UTC,
            &["2027-04-01T06:00:00Z", "2027-07-01T06:00:00Z"],
        ),
        (
            "0 9 * Feb SAT-sun",
            "2027-01-30T00:00:00Z",
            Tz::UTC,
            &["2027-02-06T09:00:00Z", "2027-02-07T09:00:00Z"],
        ),
        // Both restricted: the 13th or a Friday.
        (
            "0 0 13 * fri",
            "2027-09-01T00:00:00Z",
            Tz::UTC,
            &[
                "2027-09-03T00:00:00Z",
                "2027-09-10T00:00:00Z",
                "2027-09-13T00:00:00Z",
                "2027-09-17T00:00:00Z",
            ],
        ),
        // A day-of-month starting with `*` does not restrict (Vixie cron): both
        // must match, so Mondays that fall on the 1st, 11th, 21st or 31st.
        (
            "0 0 */10 * mon",
            "2027-01-01T00:00:00Z",
            Tz::UTC,
            &["2027-01-11T00:00:00Z", "2027-02-01T00:00:00Z"],
        ),
        // Leap day: years apart, past a century that is not a leap year.
        (
            "0 0 29 2 *",
            "2096-03-01T00:00:00Z",
            Tz::UTC,
            &["2104-02-29T00:00:00Z"],
        ),
        // Every hour on New York's fall-back day: 01:00 runs once.
        (
            "0 * * * *",
            "2027-11-07T03:30:00Z",
            New_York,
            &[
                "2027-11-07T04:00:00Z",
                "2027-11-07T05:00:00Z",
                "2027-11-07T07:00:00Z",
            ],
        ),
    ];
    for (expression, from, tz, want) in cases {
        let c = s(serde_json::json!({"type": "cron", "expression": expression}));
        assert!(c.validate().is_empty(), "{expression}: {:?}", c.validate());
        assert_eq!(runs(&c, from, tz, want.len()), want, "{expression}");
    }
    // 0, 7 and `sun` are all Sunday.
    for dow in ["0", "7", "sun", "SUN", "6-7", "0,7"] {
        let c = s(serde_json::json!({"type": "cron", "expression": format!("0 0 * * {dow}")}));
        assert!(
            runs(&c, "2027-01-01T00:00:00Z", Tz::UTC, 2)
                .contains(&"2027-01-03T00:00:00Z".to_string()),
            "{dow}"
        );
    }
    // The spring-forward gap: 02:30 runs at 03:00 EDT.
    let c = s(serde_json::json!({"type": "cron", "expression": "30 2 * * *"}));
    assert_eq!(
        runs(&c, "2027-03-13T12:00:00Z", New_York, 2),
        ["2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"]
    );
}

#[test]
fn cron_errors_name_the_field() {
    let cases = [
        ("60 * * * *", "cron minute field: 60 is outside 0-59"),
        ("* 24 * * *", "cron hour field: 24 is outside 0-23"),
        ("* * 0 * *", "cron day-of-month field: 0 is outside 1-31"),
        ("* * * 13 *", "cron month field: 13 is outside 1-12"),
        ("* * * * 8", "cron day-of-week field: 8 is outside 0-7"),
        (
            "* * * * funday",
            "cron day-of-week field: `funday` is not a number or name",
        ),
        ("*/0 * * * *", "cron minute field: bad step `0`"),
        (
            "5-1 * * * *",
            "cron minute field: range `5-1` runs backwards",
        ),
        ("1,,2 * * * *", "cron minute field: `` is not a number"),
        (
            "* * * jan-foo *",
            "cron month field: `foo` is not a number or name",
        ),
        ("* * * * * *", "has 6 fields"),
        ("", "has 0 fields"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
    ];
    for (expression, needle) in cases {
        let problems = s(serde_json::json!({"type": "cron", "expression": expression})).validate();
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{expression}: {problems:?}"
        );
    }
    // A huge step is allowed and just means "only the first value".
    let c = s(serde_json::json!({"type": "cron", "expression": "1/4294967295 0 * * *"}));
    assert!(c.validate().is_empty());
    assert_eq!(
        runs(&c, "2027-01-01T00:00:00Z", Tz::UTC, 1),
        ["2027-01-01T00:01:00Z"]
    );
}

#[test]
fn invalid_schedules_never_run_and_never_panic() {
    let bad = [
        serde_json::json!({"type": "hourly", "minute": u32::MAX}),
        serde_json::json!({"type": "daily", "time": "24:00"}),
        serde_json::json!({"type": "daily", "time": "09:60"}),
        serde_json::json!({"type": "daily", "time": ""}),
        serde_json::json!({"type": "weekly", "days": ["mon"], "time": "9h"}),
        serde_json::json!({"type": "weekly", "days": [], "time": "09:00"}),
        serde_json::json!({"type": "monthly", "days": [], "time": "09:00"}),
        serde_json::json!({"type": "monthly", "days": [u32::MAX], "time": "09:00"}),
        serde_json::json!({"type": "every"}),
        serde_json::json!({"type": "every", "hours": 0}),
        serde_json::json!({"type": "every", "hours": u32::MAX}),
        serde_json::json!({"type": "every", "minutes": 366 * 1440 + 1}),
        serde_json::json!({"type": "cron", "expression": "0 0 30 2 *"}),
    ];
    let now = utc("2027-01-01T00:00:00Z");
    for v in bad {
        let sched = s(v.clone());
        assert!(!sched.validate().is_empty(), "{v}");
        assert_eq!(sched.first_run(now, New_York), None, "{v}");
        assert_eq!(sched.next_run_after(now, New_York), None, "{v}");
        let _ = sched.describe(New_York);
    }
    let problems = s(serde_json::json!({"type": "every", "hours": u32::MAX})).validate();
    assert_eq!(
        problems,
        ["the interval must be at most 527040 minutes (8784 hours, a year)"]
    );
    let problems =
        s(serde_json::json!({"type": "weekly", "days": ["mon", "funday"], "time": "25:00"}))
            .validate();
    assert_eq!(
        problems,
        [
            "`25:00` is not a time of day (use HH:MM, e.g. 09:30)",
            "`funday` is not a day of the week (use mon, tue, wed, thu, fri, sat, sun)"
        ]
    );
    // The longest interval is fine.
    let year = s(serde_json::json!({"type": "every", "hours": 8784}));
    assert!(year.validate().is_empty());
    assert!(year.next_run_after(now, Tz::UTC).is_some());
}

#[test]
fn descriptions() {
    let cases = [
        (
            serde_json::json!({"type": "once"}),
            "once, as soon as possible",
        ),
        (
            serde_json::json!({"type": "once", "at": "2026-12-01T10:00:00"}),
            "once at 2026-12-01 10:00 Asia/Kolkata",
        ),
        (
            serde_json::json!({"type": "hourly", "minute": 5}),
            "hourly at minute 05 Asia/Kolkata",
        ),
        (
            serde_json::json!({"type": "weekly", "days": ["mon", "THU"], "time": "09:30"}),
            "weekly on Mon, Thu at 09:30 Asia/Kolkata",
        ),
        (
            serde_json::json!({"type": "monthly", "days": [1, 15, 31], "time": "09:30"}),
            "monthly on days 1, 15, 31 at 09:30 Asia/Kolkata",
        ),
        (
            serde_json::json!({"type": "monthly", "days": [31], "time": "09:30"}),
            "monthly on day 31 at 09:30 Asia/Kolkata",
        ),
        (
            serde_json::json!({"type": "every", "minutes": 30}),
            "every 30 minutes from midnight Asia/Kolkata",
        ),
        (
            serde_json::json!({"type": "every", "hours": 1}),
            "every 1 hour from midnight Asia/Kolkata",
        ),
        (
            serde_json::json!({"type": "every", "minutes": 7}),
            "every 7 minutes",
        ),
        (
            serde_json::json!({"type": "cron", "expression": "0 9 * * 1-5"}),
            "cron `0 9 * * 1-5` Asia/Kolkata",
        ),
    ];
    for (v, want) in cases {
        assert_eq!(s(v).describe(Kolkata), want);
    }
    assert!(!s(serde_json::json!({"type": "daily", "time": "09:30"})).is_one_time());
}
