//! The segments table, as the services and the CLI use it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::segment::{MembersPage, Segment, SegmentRef, SegmentStatus};

/// The segments table, as the services and the CLI use it.
#[async_trait]
pub trait Segments: Send + Sync {
    /// Creates the segment (active) if it is new, records that `import_id` feeds it,
    /// and sets the description when one is given.
    async fn ensure(
        &self,
        segment: &SegmentRef,
        import_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Segment, StoreError>;

    /// Counts the segment's members and records the count (and that `import_id`
    /// feeds it), after a run of that import added to it.
    async fn recount(
        &self,
        name: &str,
        import_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Segment, StoreError>;

    async fn get(&self, name: &str) -> Result<Option<Segment>, StoreError>;

    /// Every segment, by name.
    async fn list(&self) -> Result<Vec<Segment>, StoreError>;

    async fn members(
        &self,
        name: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<MembersPage, StoreError>;

    /// Archives or unarchives a segment (NotFound when there is none).
    async fn set_status(
        &self,
        name: &str,
        status: SegmentStatus,
        now: DateTime<Utc>,
    ) -> Result<Segment, StoreError>;
}
