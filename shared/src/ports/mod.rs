//! The domain's ports: what the services (discovery, processor, preview) need from the
//! world, as traits the domain owns. `aws/` implements them with the AWS SDK; the
//! in-memory fakes in `fakes` implement them for tests, with fault injection.
//!
//! Every port returns a typed error that says whether trying again can help
//! ([`crate::Classify`]); behaviour is chosen by variant, never by message text.

mod alerts;
mod ledger;
mod mailer;
mod queue;
mod reports;
mod segments;
mod source;
mod store;
mod writer;

pub use alerts::AlertSink;
pub use ledger::{
    FileLedger, KnownFile, Ledger, LedgerReads, ReplayStart, RunLedger, StartOutcome,
};
pub use mailer::Mailer;
pub use queue::{FileMessage, Queue};
pub use reports::{Bounded, ReportError, Reports, find_report, report_key, staging_key};
pub use segments::Segments;
pub use source::{
    ListedFile, Listing, MSG_CHECK_FOLDER, MSG_INVALID_ACCESS_KEY, ObjectBody, ObjectSource,
    SECRET_TAG, Secrets, SourceCleanup, SourceError, SourceFolder, check_secret_tag, secret_allows,
    sort_listed,
};
pub use store::{Configs, StoreError};
pub use writer::{DiscardWriter, RejectedRow, RowSink, RowWriter};
