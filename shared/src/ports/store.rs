//! The configs table, and the error of every table port. Every state change is
//! conditional, so a repeated or concurrent request changes nothing twice.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Classify, ErrorClass, ServiceError};
use crate::model::config::{ConfigRecord, ImportConfig, ImportStatus};

/// A failure of the configs or ledger tables (or the queue).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "import `{id}` duplicates active import `{other}` (same type, sub-type, bucket and folder)"
    )]
    Duplicate { id: String, other: String },
    #[error("no import `{0}`")]
    NotFound(String),
    #[error("no segment `{0}`: imports create their segment when their config is put")]
    NoSegment(String),
    #[error(transparent)]
    Page(#[from] crate::model::pages::PageError),
    #[error("the stored config of import `{id}` cannot be read: {reason}")]
    Corrupt { id: String, reason: String },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Service(e) => e.class,
            _ => ErrorClass::Permanent,
        }
    }
}

/// The configs table, as the services use it.
#[async_trait]
pub trait Configs: Send + Sync {
    async fn get(&self, id: &str) -> Result<Option<ConfigRecord>, StoreError>;

    /// The import, or [`StoreError::NotFound`].
    async fn require(&self, id: &str) -> Result<ConfigRecord, StoreError> {
        self.get(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// Ids of active imports whose next run is at or before `now`.
    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError>;

    /// Takes the import's duplicate lock; returns the other import that holds it.
    async fn take_lock(
        &self,
        config: &ImportConfig,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;

    /// Moves an import out of `active` (completed, invalid, archived).
    async fn finish(
        &self,
        id: &str,
        status: ImportStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Claims the run due at `due_at`, moving the next run on to `next`; false when
    /// another tick won.
    async fn claim_run(
        &self,
        id: &str,
        due_at: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Claims a run started by hand: only while the import is active and its last
    /// run by hand began at or before `not_after` (the rate limit, kept by the
    /// condition so two requests at once cannot both win). The schedule's next run
    /// stays where it is. False when refused.
    async fn claim_manual_run(
        &self,
        id: &str,
        run_id: &str,
        not_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Remembers the newest key listed, only moving forward.
    async fn set_newest_key(&self, id: &str, key: &str) -> Result<(), StoreError>;

    /// Remembers where the sweep of older names goes on (None: the pass is complete).
    async fn set_sweep_key(&self, id: &str, key: Option<&str>) -> Result<(), StoreError>;
}
