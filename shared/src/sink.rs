//! Where mapped rows go: one write per row, shaped for its destination table.
//!
//! - registered and anonymous users: an upsert of only the mapped attributes (the
//!   rest of the user's item is kept), one `UpdateItem` each;
//! - events: a `Put` keyed by user id and an event key derived from the file and row,
//!   so reprocessing a file never duplicates an event;
//! - auxiliary data: a `Put` with `expires_at` for DynamoDB TTL.
//!
//! Puts go ten-to-a-hundred rows at a time through `BatchWriteItem` (25 items per
//! request, which moto does not enforce and we must).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::config::{ImportConfig, ImportKind};
use crate::mapping::MappedRow;
use crate::values::Value;

/// Attributes the service writes itself; mapped attributes never overwrite them.
pub const RESERVED: &[&str] = &[
    "user_id",
    "anonymous_id",
    "event_key",
    "event_name",
    "event_time",
    "dataset",
    "record_key",
    "expires_at",
    "s3i_import_id",
    "s3i_file",
    "s3i_row",
    "s3i_updated_at",
];

/// One row's write.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Upsert: set these attributes on the item with this key, keep the rest.
    Update {
        key: HashMap<String, AttributeValue>,
        set: Vec<(String, AttributeValue)>,
    },
    /// Whole item, idempotent by its key.
    Put(HashMap<String, AttributeValue>),
}

impl Write {
    pub fn is_put(&self) -> bool {
        matches!(self, Self::Put(_))
    }
}

/// A typed value as a DynamoDB attribute.
pub fn attribute(value: &Value) -> AttributeValue {
    match value {
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Integer(i) => AttributeValue::N(i.to_string()),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::Boolean(b) => AttributeValue::Bool(*b),
        Value::DateTime(_) => AttributeValue::S(value.to_display_string()),
        Value::List(items) => {
            AttributeValue::L(items.iter().cloned().map(AttributeValue::S).collect())
        }
    }
}

/// Builds writes for one file's rows.
#[derive(Debug, Clone)]
pub struct WriteBuilder {
    kind: ImportKind,
    import_id: String,
    /// Hash of import and file (bucket key + ETag), so the same file reprocessed gives the
    /// same event keys; computed once per file.
    file_digest: String,
    file_key: String,
    now: String,
    expires_at: Option<i64>,
}

impl WriteBuilder {
    pub fn new(config: &ImportConfig, file_key: &str, etag: &str, now: DateTime<Utc>) -> Self {
        let expires_at = match &config.kind {
            ImportKind::Auxiliary { retention_days, .. } => {
                Some((now + chrono::Duration::days(i64::from(*retention_days))).timestamp())
            }
            _ => None,
        };
        Self {
            kind: config.kind.clone(),
            import_id: config.id.clone(),
            file_digest: digest(&[config.id.as_bytes(), file_key.as_bytes(), etag.as_bytes()]),
            file_key: file_key.to_string(),
            now: crate::clock::to_key(now),
            expires_at,
        }
    }

    pub fn build(&self, row: &MappedRow) -> Write {
        let attrs = row
            .attributes
            .iter()
            .filter(|(name, _)| !RESERVED.contains(&&**name))
            .map(|(name, v)| (name.to_string(), attribute(v)));
        let provenance = [
            (
                "s3i_import_id".to_string(),
                AttributeValue::S(self.import_id.clone()),
            ),
            (
                "s3i_updated_at".to_string(),
                AttributeValue::S(self.now.clone()),
            ),
        ];
        match &self.kind {
            ImportKind::RegisteredUsers => Write::Update {
                key: HashMap::from([("user_id".into(), AttributeValue::S(row.key.clone()))]),
                set: attrs.chain(provenance).collect(),
            },
            ImportKind::AnonymousUsers { .. } => Write::Update {
                key: HashMap::from([("anonymous_id".into(), AttributeValue::S(row.key.clone()))]),
                set: attrs.chain(provenance).collect(),
            },
            ImportKind::Events { event_name, .. } => {
                let time = row
                    .event_time
                    .map(|t| Value::DateTime(t).to_display_string())
                    .unwrap_or_default();
                // Sized once: growing a map row after row is a hot-path cost.
                let mut item = HashMap::with_capacity(row.attributes.len() + 8);
                item.extend(attrs.chain(provenance));
                item.insert("user_id".into(), AttributeValue::S(row.key.clone()));
                item.insert(
                    "event_key".into(),
                    AttributeValue::S(format!("{time}#{event_name}#{}", self.row_id(row.row))),
                );
                item.insert("event_name".into(), AttributeValue::S(event_name.clone()));
                item.insert("event_time".into(), AttributeValue::S(time));
                item.insert("s3i_file".into(), AttributeValue::S(self.file_key.clone()));
                item.insert("s3i_row".into(), AttributeValue::N(row.row.to_string()));
                Write::Put(item)
            }
            ImportKind::Auxiliary { dataset, .. } => {
                // Sized once: growing a map row after row is a hot-path cost.
                let mut item = HashMap::with_capacity(row.attributes.len() + 8);
                item.extend(attrs.chain(provenance));
                item.insert("dataset".into(), AttributeValue::S(dataset.clone()));
                item.insert("record_key".into(), AttributeValue::S(row.key.clone()));
                if let Some(t) = self.expires_at {
                    item.insert("expires_at".into(), AttributeValue::N(t.to_string()));
                }
                Write::Put(item)
            }
        }
    }

    /// A short stable id for (file, row): the file's digest (computed once) and the row
    /// number, so the same file and row always give the same id.
    fn row_id(&self, row: u64) -> String {
        format!("{}-{row}", self.file_digest)
    }
}

/// The first 10 bytes of the SHA-256 of the parts (each followed by a NUL), in hex.
fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0]);
    }
    h.finalize()[..10]
        .iter()
        .fold(String::with_capacity(20), |mut s, b| {
            use std::fmt::Write;
            let _ = write!(s, "{b:02x}");
            s
        })
}
