//! s3imports: the domain library behind the discovery, processor and preview
//! Lambdas and the `s3imports` CLI.
//!
//! Hexagonal: the domain modules (`config`, `naming`, `schedule`, `values`, `reader`,
//! `mapping`, `pgp`, `sink`, `ledger`, `notify`) know nothing of AWS; the services
//! (`discovery`, `processor`, `preview`, and `delivery` for one queue message) work
//! through the traits in [`ports`] only; [`aws`] implements those ports with the AWS
//! SDK and is the only module that names an SDK type. `aws::wiring` builds the
//! services on their AWS adapters for each `main`; the tests crate's fakes build them
//! on in-memory ones.

pub mod alerts;
pub mod aws;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod discovery;
pub mod dry_run;
pub mod error;
pub mod fingerprint;
pub mod keygen;
pub mod ledger;
pub mod limits;
pub mod mapping;
pub mod mapping_spec;
pub mod metrics;
pub mod naming;
pub mod notify;
pub mod pgp;
pub mod ports;
pub mod post_process;
pub mod preview;
pub mod processor;
pub mod reader;
pub mod report;
pub mod schedule;
pub mod segment;
pub mod sink;
pub mod sniff;
pub mod stack;
pub mod telemetry;
#[cfg(test)]
mod test_support;
pub mod values;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Classify, ErrorClass};
