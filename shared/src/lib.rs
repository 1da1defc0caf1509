//! s3imports: the domain library behind the discovery, processor and preview
//! Lambdas and the `s3imports` CLI.
//!
//! Pure domain modules (`config`, `naming`, `schedule`, `values`, `reader`,
//! `mapping`, `pgp`, `sink`, `ledger`, `notify`) know nothing of AWS; adapters live
//! under [`aws`], and the services that join them are `discovery`, `processor` and
//! `preview`.

pub mod aws;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod discovery;
pub mod error;
pub mod ledger;
pub mod limits;
pub mod mapping;
pub mod mapping_spec;
pub mod naming;
pub mod notify;
pub mod pgp;
pub mod preview;
pub mod processor;
pub mod reader;
pub mod report;
pub mod schedule;
pub mod sink;
pub mod sniff;
pub mod stack;
pub mod telemetry;
#[cfg(test)]
mod test_support;
pub mod values;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Classify, ErrorClass};
