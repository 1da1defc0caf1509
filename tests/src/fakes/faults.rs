//! The fault plan every fake consults on each call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use s3imports::error::ServiceError;
use tokio::sync::Notify;

/// Where the worker stops: before the Nth call of an operation is made, or after it
/// took effect (its result never seen). Operations are named `port.method`, e.g.
/// `ledger.finish_file`, `writer.write`, `mailer.send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Crash {
    Before(&'static str, u64),
    After(&'static str, u64),
}

#[derive(Debug, Default)]
struct State {
    seed: u64,
    /// Percent of every call that fails with a throttle.
    throttle_percent: u64,
    fail_nth: Vec<(&'static str, u64)>,
    delays: HashMap<&'static str, Duration>,
    crash: Option<Crash>,
    calls: HashMap<&'static str, u64>,
    throttled: u64,
}

/// A fault plan shared by every fake of one world.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
    crashed: Notify,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        let f = Self::default();
        f.lock().seed = seed.max(1);
        f
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Throttles `percent` of all calls (pseudo-random, repeatable by seed).
    pub fn throttle(&self, percent: u64) {
        self.lock().throttle_percent = percent;
    }

    /// Fails the `nth` call (1-based) of `op` with a throttle.
    pub fn fail_nth(&self, op: &'static str, nth: u64) {
        self.lock().fail_nth.push((op, nth));
    }

    /// Delays every call of `op`.
    pub fn delay(&self, op: &'static str, by: Duration) {
        self.lock().delays.insert(op, by);
    }

    /// Stops the worker at this point (once).
    pub fn crash(&self, at: Crash) {
        self.lock().crash = Some(at);
    }

    /// Calls made so far of `op`.
    pub fn calls(&self, op: &str) -> u64 {
        self.lock().calls.get(op).copied().unwrap_or(0)
    }

    /// Calls made so far of every operation.
    pub fn total_calls(&self) -> u64 {
        self.lock().calls.values().sum()
    }

    pub fn throttled(&self) -> u64 {
        self.lock().throttled
    }

    /// Resolves when a worker has crashed (the driver then drops it).
    pub async fn crashed(&self) {
        self.crashed.notified().await;
    }

    fn next_random(s: &mut State) -> u64 {
        s.seed ^= s.seed << 13;
        s.seed ^= s.seed >> 7;
        s.seed ^= s.seed << 17;
        s.seed
    }

    /// Called by a fake as a call starts: may delay, fail or crash it.
    pub async fn enter(&self, op: &'static str) -> Result<(), ServiceError> {
        let (delay, fail, crash) = {
            let mut s = self.lock();
            let n = {
                let c = s.calls.entry(op).or_insert(0);
                *c += 1;
                *c
            };
            let crash = s.crash.as_ref() == Some(&Crash::Before(op, n));
            if crash {
                s.crash = None;
            }
            let fail = s.fail_nth.contains(&(op, n))
                || (s.throttle_percent > 0 && Self::next_random(&mut s) % 100 < s.throttle_percent);
            if fail && !crash {
                s.throttled += 1;
            }
            (s.delays.get(op).copied(), fail, crash)
        };
        if crash {
            self.stop().await;
        }
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        if fail {
            let (service, operation) = op.split_once('.').unwrap_or((op, op));
            return Err(ServiceError::throttled(service_name(service), operation));
        }
        Ok(())
    }

    /// Called by a fake once a call took effect: may crash before its result is seen.
    pub async fn leave(&self, op: &'static str) {
        let crash = {
            let mut s = self.lock();
            let n = s.calls.get(op).copied().unwrap_or(0);
            let crash = s.crash.as_ref() == Some(&Crash::After(op, n));
            if crash {
                s.crash = None;
            }
            crash
        };
        if crash {
            self.stop().await;
        }
    }

    /// The worker stops here for good: the driver sees the signal and drops it.
    async fn stop(&self) {
        self.crashed.notify_one();
        std::future::pending::<()>().await;
    }
}

fn service_name(port: &str) -> &'static str {
    match port {
        "configs" | "ledger" | "writer" => "DynamoDB",
        "source" | "reports" => "S3",
        "secrets" => "Secrets Manager",
        "mailer" => "SES",
        "queue" => "SQS",
        _ => "fake",
    }
}
