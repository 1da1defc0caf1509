//! s3imports: the domain library behind the discovery, processor and preview
//! Lambdas and the `s3imports` CLI.
//!
//! The tree is the flow, lowest layer first (docs/architecture.md draws it):
//!
//! - [`error`], [`clock`], [`stack`], [`telemetry`], [`metrics`]: what every layer uses.
//! - [`codec`]: bytes to rows (PGP, gzip sniffing, CSV and JSON readers, fingerprints,
//!   limits); leaves that know nothing of imports.
//! - [`model`]: the import's data: its config, ledger records and pages, checkpoints,
//!   segments, file naming, schedules, the mapping spec and typed values.
//! - [`rows`]: a row's way from the reader to a write: mapping, the write it becomes,
//!   the failed-rows report.
//! - [`ports`]: what the services need from the world, as small traits by role.
//! - [`notify`]: a run's outcome told: email, alerts, post-processing of the source file.
//! - [`discover`] finds files and claims them; [`process`] imports one file.
//! - [`operate`]: the operator's use cases: preview, dry run, history, key generation.
//! - [`aws`]: the ports on the AWS SDK, the only module that names an SDK type.

pub mod aws;
pub mod clock;
pub mod codec;
pub mod discover;
pub mod error;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod operate;
pub mod ports;
pub mod process;
pub mod rows;
pub mod stack;
pub mod telemetry;
#[cfg(test)]
mod test_support;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Classify, ErrorClass};
