//! The segments table: one partition per segment holding its members, and one
//! partition (`#segments`) holding every segment's own item (name, description,
//! status, the imports that feed it, times and member count), so listing segments
//! never reads members.
//!
//! Members are written by the users sink, batched beside the user updates
//! ([`member_item`]); this store reads them and keeps the segments' items.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, Select};
use chrono::{DateTime, Utc};

use super::dynamo::aws_err;
use super::item::{self, Item, get_n, get_s};
use crate::clock::{from_key, to_key};
use crate::model::pages::{PageError, decode_cursor_within, encode_cursor};
use crate::model::segment::{
    Member, MemberKind, MembersPage, Membership, Segment, SegmentRef, SegmentStatus,
};
use crate::ports::Segments;
use crate::ports::StoreError;

/// The partition of the segments' own items (no segment name starts with `#`).
const SEGMENTS_PK: &str = "#segments";
const PK: &str = "segment";
const SK: &str = "member";
/// A member cursor holds a member key, which can be as long as a user id.
const MAX_MEMBERS_CURSOR: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersCursor {
    segment: String,
    after: String,
}

/// DynamoDB's limit on a sort key.
const MAX_SORT_KEY_BYTES: usize = 1024;

/// A member's sort key: the kind's prefix and the id; an id too long for a sort key
/// (a user table's key may be 2,048 bytes) by its SHA-256 instead. The id itself is
/// always on the item.
pub fn member_key(kind: MemberKind, id: &str) -> String {
    let key = format!("{}{id}", kind.prefix());
    if key.len() <= MAX_SORT_KEY_BYTES {
        return key;
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}~sha256:{hex}", kind.prefix())
}

/// A member's item, as the users sink writes it (a put: idempotent).
pub fn member_item(m: &Membership, id: &str, first_added: Option<&str>) -> Item {
    let at = to_key(m.at);
    Item::from([
        (PK.to_string(), item::s(&m.segment)),
        (SK.to_string(), item::s(member_key(m.kind, id))),
        ("id".to_string(), item::s(id)),
        ("kind".to_string(), item::s(m.kind.as_str())),
        (
            "first_added".to_string(),
            item::s(first_added.unwrap_or(&at)),
        ),
        ("last_added".to_string(), item::s(at)),
        ("import_id".to_string(), item::s(&m.import_id)),
        ("run_id".to_string(), item::s(&m.run_id)),
    ])
}

fn segment_from_item(i: &Item) -> Segment {
    let time = |k: &str| get_s(i, k).and_then(from_key);
    let mut imports = i
        .get("imports")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    imports.sort();
    Segment {
        name: get_s(i, SK).unwrap_or_default().to_string(),
        description: get_s(i, "description").map(str::to_string),
        status: get_s(i, "status")
            .and_then(SegmentStatus::parse)
            .unwrap_or_default(),
        imports,
        created_at: time("created_at"),
        updated_at: time("updated_at"),
        member_count: get_n(i, "member_count").unwrap_or(0),
        counted_at: time("counted_at"),
    }
}

fn member_from_item(i: &Item) -> Option<Member> {
    let (kind, id) = MemberKind::of_key(get_s(i, SK)?)?;
    let time = |k: &str| get_s(i, k).and_then(from_key);
    Some(Member {
        id: get_s(i, "id").unwrap_or(id).to_string(),
        kind,
        first_added: time("first_added"),
        last_added: time("last_added"),
        import_id: get_s(i, "import_id").unwrap_or_default().to_string(),
        run_id: get_s(i, "run_id").unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_key_always_fits_a_sort_key() {
        assert_eq!(member_key(MemberKind::Registered, "u1"), "u#u1");
        let long = "x".repeat(2000);
        let key = member_key(MemberKind::Anonymous, &long);
        assert!(key.len() <= MAX_SORT_KEY_BYTES && key.starts_with("a#~sha256:"));
        assert_eq!(key, member_key(MemberKind::Anonymous, &long));
    }
}

#[derive(Debug, Clone)]
pub struct SegmentStore {
    ddb: Client,
    table: String,
}

impl SegmentStore {
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self {
            ddb,
            table: table.into(),
        }
    }

    /// An update of a segment's own item that creates it (active) if it is new.
    fn upsert(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, item::s(SEGMENTS_PK))
            .key(SK, item::s(name))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", item::s(to_key(now)))
            .expression_attribute_values(":active", item::s(SegmentStatus::Active.as_str()))
            .return_values(ReturnValue::AllNew)
    }

    /// A query of one partition: a segment's members, or [`SEGMENTS_PK`].
    fn partition(
        &self,
        pk: &str,
        start: Option<Item>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", item::s(pk))
            .set_exclusive_start_key(start)
    }

    async fn count(&self, name: &str) -> Result<u64, StoreError> {
        let mut total = 0u64;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .partition(name, start)
                .select(Select::Count)
                .send()
                .await
                .map_err(aws_err("Query"))?;
            total += u64::try_from(out.count()).unwrap_or(0);
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(total);
            }
        }
    }
}

/// `SET` parts that make a new segment's item whole.
const NEW_SEGMENT: &str = "created_at = if_not_exists(created_at, :now), #status = if_not_exists(#status, :active), updated_at = :now";

#[async_trait]
impl Segments for SegmentStore {
    async fn ensure(
        &self,
        segment: &SegmentRef,
        import_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Segment, StoreError> {
        let mut req = self
            .upsert(&segment.name, now)
            .expression_attribute_values(":zero", item::n(0))
            .expression_attribute_values(":import", AttributeValue::Ss(vec![import_id.into()]));
        let mut set = format!("{NEW_SEGMENT}, member_count = if_not_exists(member_count, :zero)");
        if let Some(d) = &segment.description {
            set.push_str(", description = :d");
            req = req.expression_attribute_values(":d", item::s(d));
        }
        let out = req
            .update_expression(format!("SET {set} ADD imports :import"))
            .send()
            .await
            .map_err(aws_err("UpdateItem"))?;
        Ok(segment_from_item(&out.attributes.unwrap_or_default()))
    }

    async fn recount(
        &self,
        name: &str,
        import_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Segment, StoreError> {
        let count = self.count(name).await?;
        let out = self
            .upsert(name, now)
            .update_expression(format!(
                "SET {NEW_SEGMENT}, member_count = :count, counted_at = :now ADD imports :import"
            ))
            .expression_attribute_values(":count", item::n(count))
            .expression_attribute_values(":import", AttributeValue::Ss(vec![import_id.into()]))
            .send()
            .await
            .map_err(aws_err("UpdateItem"))?;
        Ok(segment_from_item(&out.attributes.unwrap_or_default()))
    }

    async fn get(&self, name: &str) -> Result<Option<Segment>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(PK, item::s(SEGMENTS_PK))
            .key(SK, item::s(name))
            .send()
            .await
            .map_err(aws_err("GetItem"))?;
        Ok(out.item.as_ref().map(segment_from_item))
    }

    async fn list(&self) -> Result<Vec<Segment>, StoreError> {
        let mut segments = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .partition(SEGMENTS_PK, start)
                .send()
                .await
                .map_err(aws_err("Query"))?;
            segments.extend(out.items().iter().map(segment_from_item));
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(segments);
            }
        }
    }

    async fn members(
        &self,
        name: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<MembersPage, StoreError> {
        let after = match cursor {
            None => None,
            Some(text) => {
                let c: MembersCursor = decode_cursor_within(text, "cursor", MAX_MEMBERS_CURSOR)?;
                if c.segment != name {
                    return Err(PageError::Cursor { name: "cursor" }.into());
                }
                Some(Item::from([
                    (PK.to_string(), item::s(name)),
                    (SK.to_string(), item::s(c.after)),
                ]))
            }
        };
        let mut members = Vec::with_capacity(limit);
        let mut start = after;
        // Query's Limit counts items read, so a page may take more than one request.
        loop {
            let want = i32::try_from(limit - members.len()).unwrap_or(i32::MAX);
            let out = self
                .partition(name, start)
                .limit(want)
                .send()
                .await
                .map_err(aws_err("Query"))?;
            members.extend(out.items().iter().filter_map(member_from_item));
            start = out.last_evaluated_key;
            if start.is_none() || members.len() >= limit {
                break;
            }
        }
        let next_cursor = match (&start, members.last()) {
            (Some(_), Some(last)) => Some(encode_cursor(&MembersCursor {
                segment: name.to_string(),
                after: member_key(last.kind, &last.id),
            })),
            _ => None,
        };
        Ok(MembersPage {
            members,
            next_cursor,
        })
    }

    async fn set_status(
        &self,
        name: &str,
        status: SegmentStatus,
        now: DateTime<Utc>,
    ) -> Result<Segment, StoreError> {
        let res = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(PK, item::s(SEGMENTS_PK))
            .key(SK, item::s(name))
            .condition_expression("attribute_exists(#sk)")
            .update_expression("SET #status = :status, updated_at = :now")
            .expression_attribute_names("#sk", SK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", item::s(status.as_str()))
            .expression_attribute_values(":now", item::s(to_key(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match res {
            Ok(out) => Ok(segment_from_item(&out.attributes.unwrap_or_default())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::NoSegment(name.to_string()))
            }
            Err(e) => Err(aws_err("UpdateItem")(e)),
        }
    }
}
