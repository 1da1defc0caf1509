//! Discovery over a folder too large for moto: a million old files, over the
//! in-memory ports, with S3's page of 1,000 keys and a modelled latency a list request.
//! A run lists what is new in one request and sweeps the older names two pages a run,
//! so its cost stays the same however large the folder; the sweep still finds, within
//! one pass, an imported name whose object changed and a name that arrived late.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use s3imports::discover::SWEEP_PAGES;
use s3imports::discover::report::ImportTick;
use s3imports_tests::fakes::folder::{BODY, BUCKET, IMPORT, imported_folder, name, old};
use s3imports_tests::fakes::{FakeWorld, LIST_PAGE};

const OLD: u64 = 1_000_000;
/// A modelled `ListObjectsV2` of 1,000 keys.
const LATENCY: Duration = Duration::from_millis(150);
/// Discovery's timeout in template.yaml.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// The next run: the clock moved to when it is due, the tick's report of it.
async fn run(w: &FakeWorld) -> ImportTick {
    w.advance(chrono::Duration::minutes(5));
    let before = w.source.list_time();
    let mut report = w.tick().await.unwrap().unwrap();
    assert_eq!(report.imports.len(), 1, "{report:?}");
    let t = report.imports.remove(0);
    assert!(t.reason.is_none(), "{t:?}");
    // However large the folder: one request for what is new, the sweep's two.
    assert!(t.list_requests <= 1 + SWEEP_PAGES, "{t:?}");
    let time = w.source.list_time() - before;
    assert_eq!(time, LATENCY * t.list_requests);
    assert!(time < DISCOVERY_TIMEOUT / 100, "{time:?}");
    t
}

#[tokio::test]
async fn ten_new_among_a_million_old_in_three_requests_and_the_sweep_finds_the_rest() {
    // The run that imported them all left the newest key at the last one.
    let w = imported_folder(OLD, LATENCY).await.unwrap();

    for i in 0..10 {
        w.source.put(BUCKET, &old(OLD + 100 + i), BODY);
    }
    let first = run(&w).await;
    let new: Vec<String> = (0..10).map(|i| old(OLD + 100 + i)).collect();
    assert_eq!(first.files, new);
    assert_eq!(first.list_requests, 3);
    assert!(first.changed.is_empty());
    let cursor = w.configs.record(IMPORT).unwrap().sweep_key;
    assert_eq!(
        cursor,
        Some(old(2 * LIST_PAGE as u64 - 1)),
        "two pages swept"
    );
    w.drive(100).await;

    // Under old names, far into the folder: an imported file replaced by another
    // object, and a file that arrived late (named between two old ones).
    let changed = old(OLD - 50);
    w.source.put(BUCKET, &changed, b"ID\nu1\nu2\n".as_slice());
    let late = name(OLD + 1);
    w.source.put(BUCKET, &late, BODY);

    // One pass over the older names, two pages a run, ends with the cursor cleared.
    let pages = (OLD as usize + 1).div_ceil(LIST_PAGE);
    let most = pages.div_ceil(SWEEP_PAGES as usize) + 1;
    let (mut runs, mut found_changed, mut found_late) = (1, 0, 0);
    while w.configs.record(IMPORT).unwrap().sweep_key.is_some() {
        assert!(runs < most, "a pass took more than {most} runs");
        let t = run(&w).await;
        runs += 1;
        found_changed += t.changed.iter().filter(|c| c.key == changed).count();
        found_late += t.files.iter().filter(|k| **k == late).count();
        assert!(
            t.files.iter().all(|k| *k == late),
            "only the late file is new: {t:?}"
        );
        if !t.files.is_empty() {
            w.drive(10).await;
        }
    }
    assert_eq!(found_changed, 1, "the changed object is reported once");
    assert_eq!(found_late, 1, "the late file is claimed once");

    // The next pass starts again from the first name; nothing is reported twice.
    let t = run(&w).await;
    assert_eq!(t.list_requests, 3);
    assert!(t.changed.is_empty() && t.files.is_empty(), "{t:?}");
}
