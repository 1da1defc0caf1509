//! A whole stack in memory: discovery and processors over the fakes, on a clock the
//! driver moves, delivering queue messages the way SQS and the Lambda event source do.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use s3imports::discover::Discovery;
use s3imports::discover::report::TickReport;
use s3imports::metrics::{Captured, Metrics};
use s3imports::process::Processor;
use s3imports::process::RecordOutcome;
use s3imports::process::settings::ProcessorSettings;
use s3imports::{Clock, FixedClock};

use super::{
    FakeAlerts, FakeConfigs, FakeLedger, FakeMailer, FakeQueue, FakeReports, FakeSecrets,
    FakeSegments, FakeSource, FakeWriter, Faults,
};

pub struct FakeWorld {
    pub clock: Arc<FixedClock>,
    pub faults: Arc<Faults>,
    pub configs: Arc<FakeConfigs>,
    pub ledger: Arc<FakeLedger>,
    pub source: Arc<FakeSource>,
    pub secrets: Arc<FakeSecrets>,
    pub writer: Arc<FakeWriter>,
    pub reports: Arc<FakeReports>,
    pub mailer: Arc<FakeMailer>,
    pub alerts: Arc<FakeAlerts>,
    pub queue: Arc<FakeQueue>,
    pub segments: Arc<FakeSegments>,
    /// The EMF lines the services wrote.
    pub emf: Arc<Captured>,
    pub discovery: Discovery,
    pub processor: Processor,
    pub max_receives: u32,
    /// Each delivery's time to its deadline, as a Lambda invocation has; None: no limit.
    pub invocation_budget: Option<Duration>,
    /// Keeps the spool directory alive.
    _spool: tempfile::TempDir,
}

/// What delivering the queue until it was empty took.
#[derive(Debug, Default)]
pub struct Drive {
    pub deliveries: u32,
    /// Deliveries whose worker crashed (the message came back after its visibility).
    pub crashes: u32,
    /// Deliveries handed back for a retry.
    pub retries: u32,
    pub outcomes: Vec<RecordOutcome>,
}

impl FakeWorld {
    /// A world whose processor gives up after `max_receives` deliveries (SQS's
    /// `maxReceiveCount`); `seed` drives the throttling.
    pub fn new(seed: u64, max_receives: u32) -> Self {
        let start: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap_or_default();
        let clock = Arc::new(FixedClock::new(start));
        let faults = Arc::new(Faults::new(seed));
        let configs = Arc::new(FakeConfigs::new(faults.clone()));
        let ledger = Arc::new(FakeLedger::new(faults.clone()));
        let source = Arc::new(FakeSource::new(faults.clone()));
        let secrets = Arc::new(FakeSecrets::new(faults.clone()));
        let writer = Arc::new(FakeWriter::new(faults.clone()));
        let reports = Arc::new(FakeReports::new(faults.clone()));
        let mailer = Arc::new(FakeMailer::new(faults.clone()));
        let alerts = Arc::new(FakeAlerts::new(faults.clone()));
        let queue = Arc::new(FakeQueue::new(faults.clone(), clock.clone(), max_receives));
        let segments = Arc::new(FakeSegments::new(faults.clone()));
        let emf = Arc::new(Captured::default());
        let metrics = Metrics::new("s3imports", "fake", false, emf.clone());
        let spool = tempfile::tempdir().unwrap_or_else(|e| panic!("spool: {e}"));
        let processor = Processor {
            configs: configs.clone(),
            ledger: ledger.clone(),
            sources: source.clone(),
            secrets: secrets.clone(),
            writer: writer.clone(),
            reports: reports.clone(),
            mailer: mailer.clone(),
            queue: queue.clone(),
            segments: segments.clone(),
            metrics: metrics.clone(),
            alerts: s3imports::notify::alerts::Alerting {
                sink: alerts.clone(),
                topic_arn: Some("arn:aws:sns:us-east-1:123456789012:fake-alerts".into()),
                reports_bucket: "fake-reports".into(),
            },
            settings: ProcessorSettings {
                worker_id: "worker-1".into(),
                spool_dir: spool.path().to_path_buf(),
                max_attempts: max_receives,
                ..ProcessorSettings::default()
            },
        };
        let discovery = Discovery {
            configs: configs.clone(),
            ledger: ledger.clone(),
            queue: queue.clone(),
            sources: source.clone(),
            mailer: mailer.clone(),
            metrics: metrics.clone(),
        };
        Self {
            clock,
            faults,
            configs,
            ledger,
            source,
            secrets,
            writer,
            reports,
            mailer,
            alerts,
            queue,
            segments,
            emf,
            discovery,
            processor,
            max_receives,
            invocation_budget: None,
            _spool: spool,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock on.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
    }

    /// One discovery tick; None when it crashed.
    pub async fn tick(&self) -> Option<Result<TickReport, s3imports::discover::report::TickError>> {
        tokio::select! {
            biased;
            r = self.discovery.tick(self.clock.as_ref()) => Some(r),
            () = self.faults.crashed() => None,
        }
    }

    /// Delivers the queue's messages to `processor` until the queue is empty (or
    /// `max_deliveries`), moving the clock to the next visible message when none is.
    /// A crashed delivery is dropped where it stood; its message comes back when its
    /// visibility runs out, as SQS would deliver it again.
    pub async fn drive_with(&self, processor: &Processor, max_deliveries: u32) -> Drive {
        let mut drive = Drive::default();
        while drive.deliveries < max_deliveries {
            let messages = self.queue.receive(10);
            if messages.is_empty() {
                match self.queue.next_visible() {
                    Some(t) => {
                        if t > self.now() {
                            self.clock.set(t);
                        }
                        continue;
                    }
                    None => break,
                }
            }
            for mut m in messages {
                drive.deliveries += 1;
                m.deadline = self
                    .invocation_budget
                    .map(|b| tokio::time::Instant::now() + b);
                let handled = s3imports::process::handle(
                    processor,
                    self.clock.as_ref(),
                    self.max_receives,
                    &m,
                );
                tokio::select! {
                    biased;
                    outcome = handled => {
                        if matches!(outcome, RecordOutcome::Retry(_)) {
                            drive.retries += 1;
                        } else if let Some(r) = &m.receipt {
                            self.queue.delete(r);
                        }
                        drive.outcomes.push(outcome);
                    }
                    () = self.faults.crashed() => drive.crashes += 1,
                }
            }
        }
        drive
    }

    pub async fn drive(&self, max_deliveries: u32) -> Drive {
        self.drive_with(&self.processor, max_deliveries).await
    }

    /// `workers` processors taking one message at a time from the queue at once, as
    /// that many Lambda instances would (a split file's chunks run in parallel), until
    /// the queue is empty. No crashes are injected here; returns the deliveries.
    pub async fn drive_parallel(&self, workers: u32) -> u32 {
        let busy = std::sync::atomic::AtomicU32::new(0);
        let busy = &busy;
        let one = |i: u32| async move {
            let p = self.worker(&format!("worker-{i}"), self.processor.settings.lease);
            let mut deliveries = 0;
            loop {
                busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(mut m) = self.queue.receive(1).pop() else {
                    let others = busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) - 1;
                    if self.queue.is_empty() {
                        return deliveries;
                    }
                    // Nobody is working: the rest waits for its visibility (a retry's
                    // backoff), so move the clock to it; else look again shortly.
                    match self.queue.next_visible() {
                        Some(t) if others == 0 && t > self.now() => self.clock.set(t),
                        _ => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                    continue;
                };
                deliveries += 1;
                m.deadline = self
                    .invocation_budget
                    .map(|b| tokio::time::Instant::now() + b);
                let outcome =
                    s3imports::process::handle(&p, self.clock.as_ref(), self.max_receives, &m)
                        .await;
                if !matches!(outcome, RecordOutcome::Retry(_))
                    && let Some(r) = &m.receipt
                {
                    self.queue.delete(r);
                }
                busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        };
        futures::future::join_all((0..workers).map(one))
            .await
            .into_iter()
            .sum()
    }

    /// A second processor, as another Lambda instance, with its own worker id and lease.
    pub fn worker(&self, id: &str, lease: Duration) -> Processor {
        let mut p = self.processor.clone();
        p.settings.worker_id = id.into();
        p.settings.lease = lease;
        p
    }
}
