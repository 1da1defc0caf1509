//! In-memory fakes of every port the services use, with fault injection: fail the Nth
//! call of an operation, throttle a percentage of all calls, delay calls, and "crash"
//! (stop the worker where it stands) before or after a named call. They model the
//! conditional writes of the real tables exactly where recovery depends on them
//! (leases, once-only outcomes, the run's one email); features are proven against moto
//! elsewhere, recovery here.

mod faults;
pub mod folder;
mod ledger;
mod stores;
mod world;

pub use faults::{Crash, Faults};
pub use ledger::FakeLedger;
pub use stores::{
    FakeAlerts, FakeConfigs, FakeMailer, FakeQueue, FakeReports, FakeSecrets, FakeSegments,
    FakeSource, FakeWriter, LIST_PAGE,
};
pub use world::{Drive, FakeWorld};
