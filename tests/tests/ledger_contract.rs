//! The ledger contract: the same scenarios run on the in-memory fake (the ledger of
//! the fault tests) and on the DynamoDB adapter against moto. Each scenario asserts
//! what the ports promise and writes what it saw to a transcript; the two transcripts
//! must match line for line, so a fault test cannot pass on a fake that drifted from
//! the real ledger.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use s3imports::codec::reader::{Position, Split};
use s3imports::model::checkpoint::Checkpoint;
use s3imports::model::ledger::{FileOutcome, FileRecord, chunk_key, new_run_id};
use s3imports::model::pages::{FilesCursor, RunsCursor};
use s3imports::ports::{Ledger, StartOutcome};
use s3imports_tests::TestEnv;
use s3imports_tests::fakes::{FakeLedger, Faults};

const BUCKET: &str = "contract-bucket";

/// What a scenario saw, one line per observation.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    fn saw(&mut self, what: &str, value: impl std::fmt::Debug) {
        self.0.push(format!("{what}: {value:?}"));
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
}

fn queued(id: &str, run: &str, key: &str) -> FileRecord {
    FileRecord::queued(id, run, BUCKET, key, 100, "\"e1\"", t0())
}

fn outcome(total: u64, failed: u64) -> FileOutcome {
    FileOutcome {
        rows_total: total,
        rows_ingested: total - failed,
        rows_failed: failed,
        bytes: 100,
        ..FileOutcome::default()
    }
}

/// A run claims its files once: a second claim of a key changes nothing, discovery
/// sees what it claimed, and the run lists its files in order.
async fn claims(l: &dyn Ledger, id: &str, t: &mut Transcript) {
    let now = t0();
    let run = new_run_id(now);
    l.create_run(id, &run, None, now).await.unwrap();
    let keys = ["in/a.csv".to_string(), "in/b.csv".to_string()];
    for key in &keys {
        assert!(l.claim_file(&queued(id, &run, key), now).await.unwrap());
    }
    // A claim sent again is still its run's (the first try may have taken effect);
    // another run's claim of the key changes nothing.
    let again = l
        .claim_file(&queued(id, &run, &keys[0]), now)
        .await
        .unwrap();
    assert!(again, "a claim sent again is its run's");
    let other_run = new_run_id(now + Duration::seconds(1));
    let other = l
        .claim_file(&queued(id, &other_run, &keys[0]), now)
        .await
        .unwrap();
    assert!(!other, "a key is claimed by one run");
    let known = l
        .known_files(id, &[keys[0].clone(), "in/never.csv".into()])
        .await
        .unwrap();
    assert_eq!(known.len(), 1);
    let k = &known[&keys[0]];
    t.saw(
        "known",
        (k.run_id == run, k.status, k.attempts, &k.etag, k.waiting()),
    );
    l.set_run_files(id, &run, &keys, now).await.unwrap();
    let files = l.run_files(id, &run).await.unwrap();
    t.saw(
        "run files",
        files.iter().map(|f| (&f.key, f.status)).collect::<Vec<_>>(),
    );
    let r = l.run(id, &run).await.unwrap().unwrap();
    t.saw("run", (r.status, r.files_total, r.files_done, r.rows_total));
}

/// A lease: one worker holds a file; another is told it is busy until the lease ends,
/// then takes over from the holder's checkpoint.
async fn leases(l: &dyn Ledger, id: &str, t: &mut Transcript) {
    let now = t0();
    let run = new_run_id(now);
    let key = "in/lease.csv";
    l.create_run(id, &run, None, now).await.unwrap();
    assert!(l.claim_file(&queued(id, &run, key), now).await.unwrap());
    let until = now + Duration::seconds(60);
    let first = l
        .start_file(id, key, Some(&run), "w1", until, now)
        .await
        .unwrap();
    assert!(
        matches!(first, StartOutcome::Started { attempt: 1, .. }),
        "{first:?}"
    );
    t.saw("w1 starts", &first);
    let later = now + Duration::seconds(10);
    let busy = l
        .start_file(
            id,
            key,
            Some(&run),
            "w2",
            later + Duration::seconds(60),
            later,
        )
        .await
        .unwrap();
    t.saw("w2 while w1 holds it", &busy);
    assert!(matches!(busy, StartOutcome::Busy(_)), "{busy:?}");
    t.saw(
        "w1 heartbeat",
        l.heartbeat(id, key, "w1", until).await.unwrap(),
    );
    t.saw(
        "w2 heartbeat",
        l.heartbeat(id, key, "w2", until).await.unwrap(),
    );
    let cp = Checkpoint {
        position: Position {
            offset: 40,
            row: 3,
            ..Position::default()
        },
        rows_total: 2,
        rows_ingested: 2,
        bytes: 40,
        ..Checkpoint::default()
    };
    t.saw(
        "w1 checkpoint",
        l.checkpoint(id, key, "w1", &cp, until).await.unwrap(),
    );
    t.saw(
        "w2 checkpoint",
        l.checkpoint(id, key, "w2", &cp, until).await.unwrap(),
    );
    let expired = until + Duration::seconds(1);
    let second = l
        .start_file(
            id,
            key,
            Some(&run),
            "w2",
            expired + Duration::seconds(60),
            expired,
        )
        .await
        .unwrap();
    t.saw("w2 after the lease", &second);
    match &second {
        StartOutcome::Started { checkpoint, .. } => assert_eq!(checkpoint.as_ref(), Some(&cp)),
        other => panic!("w2 should take over: {other:?}"),
    }
    l.release_lease(id, key, "w2", "a stack failure")
        .await
        .unwrap();
    let f = l.file(id, key).await.unwrap().unwrap();
    t.saw("released", (f.status, f.attempts, f.last_error.as_deref()));
}

/// A file's outcome is recorded once and added to its run; the run closes once and
/// its email is claimed once.
async fn finish(l: &dyn Ledger, id: &str, t: &mut Transcript) {
    let now = t0();
    let run = new_run_id(now);
    let key = "in/finish.csv";
    l.create_run(id, &run, None, now).await.unwrap();
    assert!(l.claim_file(&queued(id, &run, key), now).await.unwrap());
    l.set_run_files(id, &run, &[key.to_string()], now)
        .await
        .unwrap();
    let until = now + Duration::seconds(60);
    l.start_file(id, key, Some(&run), "w1", until, now)
        .await
        .unwrap();
    let done = outcome(10, 2);
    let other = l
        .finish_file(id, &run, key, Some("w2"), &done, now)
        .await
        .unwrap();
    t.saw("finish by a worker without the lease", other.is_some());
    let r = l
        .finish_file(id, &run, key, Some("w1"), &done, now)
        .await
        .unwrap();
    let r = r.expect("the holder records the outcome");
    t.saw(
        "run after the file",
        (r.status, r.files_done, r.rows_total, r.rows_failed),
    );
    let twice = l
        .finish_file(id, &run, key, Some("w1"), &done, now)
        .await
        .unwrap();
    assert!(twice.is_none(), "an outcome is recorded once");
    let f = l.file(id, key).await.unwrap().unwrap();
    t.saw(
        "file",
        (f.status, f.rows_total, f.rows_ingested, f.rows_failed),
    );
    let closed = l.close_run(&r, "w1", until, now).await.unwrap();
    t.saw("close by w1", closed);
    t.saw(
        "close by w2",
        l.close_run(&r, "w2", until, now).await.unwrap(),
    );
    l.release_notification(id, &run, "w1").await.unwrap();
    t.saw(
        "close again once released",
        l.close_run(&r, "w2", until, now).await.unwrap(),
    );
    l.mark_notified(id, &run).await.unwrap();
    let r = l.run(id, &run).await.unwrap().unwrap();
    t.saw("run at the end", (r.status, r.notified));
}

/// A large file split into chunks: each chunk's outcome counts once, and one worker
/// closes the file.
async fn split(l: &dyn Ledger, id: &str, t: &mut Transcript) {
    let now = t0();
    let run = new_run_id(now);
    let key = "in/big.csv";
    l.create_run(id, &run, None, now).await.unwrap();
    assert!(l.claim_file(&queued(id, &run, key), now).await.unwrap());
    let until = now + Duration::seconds(60);
    l.start_file(id, key, Some(&run), "w1", until, now)
        .await
        .unwrap();
    let split = Split {
        starts: vec![
            Position::default(),
            Position {
                offset: 50,
                row: 5,
                ..Position::default()
            },
        ],
        end: 100,
        ..Split::default()
    };
    let chunks: Vec<FileRecord> = (0..2)
        .map(|i| FileRecord::queued(id, &run, BUCKET, &chunk_key(key, i), 50, "\"e1\"", now))
        .collect();
    t.saw(
        "split by w2",
        l.split_file(id, key, "w2", &split, &chunks, now)
            .await
            .unwrap(),
    );
    t.saw(
        "split by w1",
        l.split_file(id, key, "w1", &split, &chunks, now)
            .await
            .unwrap(),
    );
    for i in 0..2 {
        let done = l
            .finish_chunk(id, key, i, None, &outcome(5, i as u64), now)
            .await
            .unwrap();
        t.saw(&format!("chunk {i} done"), done);
        let again = l
            .finish_chunk(id, key, i, None, &outcome(5, 0), now)
            .await
            .unwrap();
        t.saw(&format!("chunk {i} again"), again);
    }
    t.saw(
        "close by w1",
        l.claim_close(id, key, "w1", until, now).await.unwrap(),
    );
    t.saw(
        "close by w2",
        l.claim_close(id, key, "w2", until, now).await.unwrap(),
    );
    let f = l.file(id, key).await.unwrap().unwrap();
    t.saw("file", (f.status, f.rows_total, f.rows_failed));
}

/// Content seen before names the file that first imported it, until it is forgotten.
async fn content(l: &dyn Ledger, id: &str, t: &mut Transcript) {
    let now = t0();
    let run = new_run_id(now);
    let sha = "ab".repeat(32);
    let first = l
        .remember_content(id, &sha, "in/one.csv", &run, now)
        .await
        .unwrap();
    t.saw("first", first);
    let second = l
        .remember_content(id, &sha, "in/two.csv", &run, now)
        .await
        .unwrap();
    t.saw("second", second.map(|d| d.key));
    l.forget_content(id, &sha, "in/one.csv").await.unwrap();
    let after = l
        .remember_content(id, &sha, "in/three.csv", &run, now)
        .await
        .unwrap();
    t.saw("after forgetting", after.map(|d| d.key));
}

/// Four runs claim one key at once: exactly one wins.
async fn concurrent_claims(l: Arc<dyn Ledger>, id: &str, t: &mut Transcript) {
    let now = t0();
    let claims = (0..4).map(|i| {
        let run = new_run_id(now + Duration::seconds(i));
        let (l, file) = (l.clone(), queued(id, &run, "in/race.csv"));
        tokio::spawn(async move { l.claim_file(&file, now).await.unwrap() })
    });
    let won = futures::future::join_all(claims)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(won, 1);
    t.saw("claims won", won);
}

/// The history's pages: runs newest first with their first files, and one run's
/// files page by page.
async fn pages(l: &dyn Ledger, id: &str, t: &mut Transcript) {
    let now = t0();
    for i in 0..3 {
        let run = new_run_id(now + Duration::minutes(i));
        l.create_run(id, &run, None, now).await.unwrap();
        let keys: Vec<String> = (0..3).map(|f| format!("in/r{i}_{f}.csv")).collect();
        for key in &keys {
            assert!(l.claim_file(&queued(id, &run, key), now).await.unwrap());
        }
        l.set_run_files(id, &run, &keys, now).await.unwrap();
    }
    let first = l.runs_page(id, None, 2, 1).await.unwrap();
    let shown = |p: &s3imports::model::pages::RunsPage| {
        p.runs
            .iter()
            .map(|e| {
                let files: Vec<String> = e.files.iter().map(|f| f.key.clone()).collect();
                (e.files_listed, files, e.next_files_cursor.is_some())
            })
            .collect::<Vec<_>>()
    };
    t.saw("runs page 1", shown(&first));
    let cursor = RunsCursor::decode(first.next_cursor.as_deref().unwrap()).unwrap();
    let second = l.runs_page(id, Some(&cursor), 2, 1).await.unwrap();
    t.saw(
        "runs page 2",
        (shown(&second), second.next_cursor.is_some()),
    );
    let run = &first.runs[0].run.run_id;
    let files = l.files_page(id, run, None, 2).await.unwrap().unwrap();
    t.saw(
        "files page 1",
        files.files.iter().map(|f| &f.key).collect::<Vec<_>>(),
    );
    let cursor = FilesCursor::decode(files.next_cursor.as_deref().unwrap(), run).unwrap();
    let rest = l
        .files_page(id, run, Some(&cursor), 2)
        .await
        .unwrap()
        .unwrap();
    t.saw(
        "files page 2",
        (
            rest.files.iter().map(|f| &f.key).collect::<Vec<_>>(),
            rest.next_cursor,
        ),
    );
    t.saw(
        "no such run",
        l.files_page(id, &new_run_id(now - Duration::days(1)), None, 2)
            .await
            .unwrap()
            .is_none(),
    );
}

async fn transcript(l: Arc<dyn Ledger>) -> Vec<String> {
    let mut t = Transcript::default();
    claims(l.as_ref(), "c-claims", &mut t).await;
    leases(l.as_ref(), "c-leases", &mut t).await;
    finish(l.as_ref(), "c-finish", &mut t).await;
    split(l.as_ref(), "c-split", &mut t).await;
    content(l.as_ref(), "c-content", &mut t).await;
    pages(l.as_ref(), "c-pages", &mut t).await;
    concurrent_claims(l, "c-race", &mut t).await;
    t.0
}

#[tokio::test]
async fn the_fake_ledger_behaves_as_the_dynamodb_ledger() {
    let env = TestEnv::new().await;
    let real = transcript(Arc::new(env.ledger())).await;
    let fake = transcript(Arc::new(FakeLedger::new(Arc::new(Faults::new(1))))).await;
    eprintln!("what both ledgers did:\n{}", real.join("\n"));
    for (i, (r, f)) in real.iter().zip(&fake).enumerate() {
        assert_eq!(
            f, r,
            "observation {i}: the fake says {f}, DynamoDB says {r}"
        );
    }
    assert_eq!(fake.len(), real.len());
    assert!(real.len() >= 25, "every scenario ran: {real:#?}");
}
