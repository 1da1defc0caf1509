use super::*;
use crate::model::pages::*;
use crate::model::status::*;
use chrono::TimeZone;

#[test]
fn statuses_read_as_moengage_says_them() {
    assert_eq!(
        FileStatus::PartiallySucceeded.to_string(),
        "Partial Success"
    );
    assert_eq!(RunStatus::Succeeded.to_string(), "Successful");
    assert_eq!(FileStatus::parse("queued"), Some(FileStatus::Queued));
    assert_eq!(
        RunStatus::parse("no_new_files"),
        Some(RunStatus::NoNewFiles)
    );
}

#[test]
fn outcomes_from_counts() {
    assert_eq!(FileStatus::from_counts(10, 0), FileStatus::Succeeded);
    assert_eq!(
        FileStatus::from_counts(8, 2),
        FileStatus::PartiallySucceeded
    );
    assert_eq!(FileStatus::from_counts(0, 2), FileStatus::Failed);
    assert_eq!(FileOutcome::failed("bad key").status(), FileStatus::Failed);
    let stopped_early = FileOutcome {
        rows_total: 10,
        rows_ingested: 10,
        reason: Some("the file stopped being readable after row 11".into()),
        ..FileOutcome::default()
    };
    assert_eq!(stopped_early.status(), FileStatus::PartiallySucceeded);
    assert_eq!(RunStatus::from_files(2, 0, 0), RunStatus::Succeeded);
    assert_eq!(
        RunStatus::from_files(1, 0, 1),
        RunStatus::PartiallySucceeded
    );
    assert_eq!(RunStatus::from_files(0, 0, 3), RunStatus::Failed);
    assert_eq!(
        RunStatus::from_files(0, 1, 0),
        RunStatus::PartiallySucceeded
    );
}

#[test]
fn page_limits_take_defaults_and_refuse_out_of_range() {
    assert_eq!(RUNS_LIMIT.parse(None), Ok(20));
    assert_eq!(RUNS_LIMIT.parse(Some("50")), Ok(50));
    for bad in ["0", "51", "-1", "ten", ""] {
        let err = RUNS_LIMIT.parse(Some(bad)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`limit` must be a whole number from 1 to 50"
        );
    }
    assert_eq!(RUN_FILES_LIMIT.parse(Some("0")), Ok(0));
    assert!(FILES_LIMIT.check(1001).is_err());
}

#[test]
fn cursors_round_trip_and_refuse_anything_else() {
    let runs = RunsCursor {
        after_run: "20261127T090000Z-0a1b2c3d".into(),
    };
    assert_eq!(RunsCursor::decode(&runs.encode()), Ok(runs.clone()));
    let files = FilesCursor {
        run: "20261127T090000Z-0a1b2c3d".into(),
        offset: 100,
    };
    let text = files.encode();
    assert!(text.chars().all(|c| c.is_ascii_hexdigit()), "{text}");
    assert_eq!(
        FilesCursor::decode(&text, "20261127T090000Z-0a1b2c3d"),
        Ok(files)
    );
    // Another run's cursor, a files cursor for runs, junk, and a crafted key.
    assert!(FilesCursor::decode(&text, "20261128T090000Z-0a1b2c3d").is_err());
    assert!(RunsCursor::decode(&text).is_err());
    for junk in ["", "zz", "abc", "7b7d", &"ab".repeat(300)] {
        assert_eq!(
            RunsCursor::decode(junk),
            Err(PageError::Cursor { name: "cursor" }),
            "{junk}"
        );
    }
    let crafted = encode_cursor(&serde_json::json!({"after_run": "x#FILE#y"}));
    assert!(RunsCursor::decode(&crafted).is_err());
}

#[test]
fn run_ids_sort_by_time() {
    let a = new_run_id(Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap());
    let b = new_run_id(Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap());
    assert!(a < b);
    assert!(a.starts_with("20260101T090000Z-"));
}
