//! An import as the configs table holds it.

use super::import::{ImportConfig, ImportStatus};

/// An import as stored: the operator's config plus the state the service keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRecord {
    pub config: ImportConfig,
    pub status: ImportStatus,
    pub next_run_at: Option<chrono::DateTime<chrono::Utc>>,
    pub status_reason: Option<String>,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_run_id: Option<String>,
    pub last_run_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The newest file key listed, for listing with `StartAfter`.
    pub newest_key: Option<String>,
    /// Where the sweep of the folder's older names goes on (None: from the start). See
    /// [`crate::discover`]'s listing.
    pub sweep_key: Option<String>,
    /// When the last run started by hand began (one per [`crate::discover::MANUAL_RUN_GAP`]).
    pub last_manual_run_at: Option<chrono::DateTime<chrono::Utc>>,
}
