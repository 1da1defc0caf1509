//! Where mapped rows go: one write per row, shaped for its destination table.
//!
//! - registered and anonymous users: an upsert of only the mapped attributes (the
//!   rest of the user's item is kept): an `INSERT` where the user is new, else an
//!   `UpdateItem` (`aws::sink`);
//! - events: a `Put` keyed by user id and an event key derived from the file and row,
//!   so reprocessing a file never duplicates an event;
//! - auxiliary data: a `Put` with `expires_at` for DynamoDB TTL.
//!
//! Writes carry typed values; the writer adapter encodes them for its table.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::model::config::{ImportConfig, ImportKind};
use crate::model::values::{Value, push_datetime};
use crate::rows::mapping::{ColumnMapping, MappedRow};

/// A row's own attributes, each named by its index in [`FileAttributes::names`] (rows
/// of a file share a few names, so they carry a number, not a copy or a reference
/// count). The attributes every row shares are in [`FileAttributes::common`], added when
/// the request is built.
pub type Attributes = Vec<(u32, Value)>;

/// One row's write.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Upsert: set these attributes on the item whose key attribute
    /// ([`FileAttributes::key`]) is `key`, keep the rest.
    Update { key: String, set: Attributes },
    /// Whole item, idempotent by its key.
    Put(Attributes),
}

/// What every write of one file shares: attribute names, the key attribute of upserts,
/// and the attributes that are the same on every row (provenance, event name, dataset,
/// TTL).
#[derive(Debug, Clone, PartialEq)]
pub struct FileAttributes {
    pub key: String,
    pub names: Vec<String>,
    pub common: Vec<(String, Value)>,
    /// The attribute that names a put's item when two rows can name the same one
    /// (auxiliary data's record key); None when each row's item is its own (events).
    pub put_key: Option<u32>,
    /// Set when rows of this file are written out of order (its chunks at once): an
    /// update carries this file id and its row, and is refused where the item holds a
    /// later row of the same file, so the later row still wins.
    pub ordered: Option<String>,
    /// The segment the file's users join (user imports that name one).
    pub segment: Option<crate::model::segment::Membership>,
}

/// The rows behind one write: the last, and the earlier ones merged into it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    pub last: u64,
    pub earlier: Vec<u64>,
}

impl Rows {
    pub fn one(row: u64) -> Self {
        Self {
            last: row,
            earlier: Vec::new(),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = u64> + '_ {
        self.earlier
            .iter()
            .copied()
            .chain(std::iter::once(self.last))
    }
}

/// Merges a batch's writes to the same item, in row order, so that requests sent at
/// the same time never race for one item and the later row wins, as it would one row
/// at a time: a put replaces the earlier put, an upsert's attributes replace the
/// earlier ones of the same name and add to the rest.
pub fn coalesce(rows: Vec<(u64, Write)>, file: &FileAttributes) -> Vec<(Rows, Write)> {
    let mut out: Vec<(Rows, Write)> = Vec::with_capacity(rows.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (row, write) in rows {
        let key = match &write {
            Write::Update { key, .. } => Some(key.clone()),
            Write::Put(attrs) => file.put_key.and_then(|id| {
                attrs
                    .iter()
                    .find(|(n, _)| *n == id)
                    .and_then(|(_, v)| match v {
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
            }),
        };
        match key.as_ref().and_then(|k| seen.get(k)) {
            None => {
                if let Some(key) = key {
                    seen.insert(key, out.len());
                }
                out.push((Rows::one(row), write));
            }
            Some(&at) => {
                let (rows, earlier) = &mut out[at];
                rows.earlier.push(std::mem::replace(&mut rows.last, row));
                match (earlier, write) {
                    (Write::Update { set: old, .. }, Write::Update { set, .. }) => {
                        for (id, v) in set {
                            match old.iter_mut().find(|(n, _)| *n == id) {
                                Some(slot) => slot.1 = v,
                                None => old.push((id, v)),
                            }
                        }
                    }
                    (earlier, write) => *earlier = write,
                }
            }
        }
    }
    out
}

impl FileAttributes {
    fn name(&self, id: u32) -> String {
        self.names.get(id as usize).cloned().unwrap_or_default()
    }

    /// A write's attributes by name, the file's shared ones last: a put's whole item,
    /// or what an upsert sets.
    pub fn named(&self, attrs: Attributes) -> impl Iterator<Item = (String, Value)> + '_ {
        attrs
            .into_iter()
            .map(|(id, v)| (self.name(id), v))
            .chain(self.common.iter().cloned())
    }
}

/// Builds writes for one file's rows.
#[derive(Debug, Clone)]
pub struct WriteBuilder {
    kind: ImportKind,
    /// Hash of import and file (bucket key + ETag), so the same file reprocessed gives the
    /// same event keys; computed once per file.
    file_digest: String,
    file: FileAttributes,
    /// Ids of the names the builder adds itself, after the mapping's.
    user_id: u32,
    event_key: u32,
    event_time: u32,
    record_key: u32,
    row: u32,
}

impl WriteBuilder {
    /// `mappings` is the import's mapping list: a mapped row's slots index it.
    pub fn new(
        config: &ImportConfig,
        mappings: &[ColumnMapping],
        file_key: &str,
        etag: &str,
        now: DateTime<Utc>,
    ) -> Self {
        let s = |v: &str| Value::String(v.to_string());
        let mut common = vec![
            ("s3i_import_id".to_string(), s(&config.id)),
            ("s3i_updated_at".to_string(), s(&crate::clock::to_key(now))),
        ];
        let key = match &config.kind {
            ImportKind::RegisteredUsers {} => "user_id",
            ImportKind::AnonymousUsers { .. } => "anonymous_id",
            ImportKind::Events { event_name, .. } => {
                common.push(("event_name".into(), s(event_name)));
                common.push(("s3i_file".into(), s(file_key)));
                "user_id"
            }
            ImportKind::Auxiliary {
                dataset,
                retention_days,
                ..
            } => {
                let expires = now + chrono::Duration::days(i64::from(*retention_days));
                common.push(("dataset".into(), s(dataset)));
                common.push(("expires_at".into(), Value::Integer(expires.timestamp())));
                "record_key"
            }
        };
        let mut names: Vec<String> = mappings
            .iter()
            .map(|m| m.attribute.clone().unwrap_or_default())
            .collect();
        let mut add = |name: &str| {
            names.push(name.to_string());
            u32::try_from(names.len() - 1).unwrap_or(u32::MAX)
        };
        let (user_id, event_key, event_time, record_key, row) = (
            add("user_id"),
            add("event_key"),
            add("event_time"),
            add("record_key"),
            add("s3i_row"),
        );
        Self {
            kind: config.kind.clone(),
            file_digest: digest(&[config.id.as_bytes(), file_key.as_bytes(), etag.as_bytes()]),
            file: FileAttributes {
                key: key.into(),
                names,
                common,
                put_key: matches!(config.kind, ImportKind::Auxiliary { .. }).then_some(record_key),
                ordered: None,
                segment: None,
            },
            user_id,
            event_key,
            event_time,
            record_key,
            row,
        }
    }

    /// Whether every row writes an item of its own (events, keyed by file and row), so
    /// batches may be written in any order.
    pub fn independent_rows(&self) -> bool {
        matches!(self.kind, ImportKind::Events { .. })
    }

    /// What every write of this file shares; the sink adds it to each request.
    pub fn file_attributes(&self) -> &FileAttributes {
        &self.file
    }

    /// The row's write. Its values move out of `row` (which keeps its buffer for the
    /// next row), so nothing is copied.
    pub fn build(&self, row: &mut MappedRow) -> Write {
        let key = std::mem::take(&mut row.key);
        let mut attrs = Attributes::with_capacity(row.attributes.len() + 4);
        attrs.append(&mut row.attributes);
        match &self.kind {
            ImportKind::RegisteredUsers {} | ImportKind::AnonymousUsers { .. } => {
                Write::Update { key, set: attrs }
            }
            ImportKind::Events { event_name, .. } => {
                let mut time = String::with_capacity(30);
                if let Some(t) = &row.event_time {
                    push_datetime(&mut time, t);
                }
                let mut row_number = itoa::Buffer::new();
                let row_number = row_number.format(row.row);
                // `{time}#{event_name}#{file digest}-{row}`: unique per file and row, so
                // reprocessing a file rewrites the same items.
                let mut event_key = String::with_capacity(
                    time.len() + event_name.len() + self.file_digest.len() + row_number.len() + 3,
                );
                for part in [
                    &*time,
                    "#",
                    event_name,
                    "#",
                    &self.file_digest,
                    "-",
                    row_number,
                ] {
                    event_key.push_str(part);
                }
                attrs.push((
                    self.row,
                    Value::Integer(i64::try_from(row.row).unwrap_or(i64::MAX)),
                ));
                attrs.push((self.user_id, Value::String(key)));
                attrs.push((self.event_key, Value::String(event_key)));
                attrs.push((self.event_time, Value::String(time)));
                Write::Put(attrs)
            }
            ImportKind::Auxiliary { .. } => {
                attrs.push((self.record_key, Value::String(key)));
                Write::Put(attrs)
            }
        }
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::codec::reader::{ReadOptions, Row, open_reader};
    use crate::rows::mapping::CompiledMapping;

    fn config(kind: serde_json::Value) -> ImportConfig {
        let mut columns = vec![
            serde_json::json!({"column": "id", "attribute": "user_id"}),
            serde_json::json!({"column": "amount", "attribute": "amount", "type": "number"}),
            serde_json::json!({"column": "n", "attribute": "n", "type": "integer"}),
            serde_json::json!({"column": "tags", "attribute": "tags", "type": "list"}),
        ];
        if kind["type"] == "events" {
            columns.push(serde_json::json!({"column": "at", "attribute": "event_time"}));
        }
        ImportConfig::from_value(serde_json::json!({
            "id": "imp-1",
            "name": "T",
            "kind": kind,
            "source": {"bucket": "bucket", "folder": "f", "datetime_format": "yyyymmdd"},
            "mapping": {"columns": columns},
            "schedule": {"type": "once"},
        }))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap()
    }

    /// The file's one data row (row 2), mapped, and its write.
    fn write(config: &ImportConfig, key: &str) -> (WriteBuilder, Write) {
        let csv = "id,amount,n,tags,at\nu1,12.50,-3,[a|b],2026-01-31 12:59:00\n";
        let mut reader = open_reader(false, csv.as_bytes(), &ReadOptions::default(), None).unwrap();
        let mappings = config.inline_columns().unwrap();
        let mapping = CompiledMapping::new(config, mappings, reader.columns()).unwrap();
        let mut row = Row::default();
        assert!(reader.read_row(&mut row).unwrap());
        let mut mapped = MappedRow::default();
        mapping.map_row(&row, &mut mapped).unwrap();
        let builder = WriteBuilder::new(config, mappings, key, "etag", now());
        let write = builder.build(&mut mapped);
        assert!(mapped.attributes.is_empty(), "values move out of the row");
        (builder, write)
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn event_item_has_row_and_file_attributes() {
        let config = config(serde_json::json!({"type": "events", "event_name": "Purchase"}));
        let (b, w) = write(&config, "f/p_20260131.csv");
        let Write::Put(attrs) = w else {
            panic!("events are puts")
        };
        let item: HashMap<String, Value> = b.file_attributes().named(attrs).collect();
        let digest = digest(&[b"imp-1", b"f/p_20260131.csv", b"etag"]);
        let expected = HashMap::from([
            ("user_id".to_string(), s("u1")),
            ("amount".into(), Value::Number(12.5)),
            ("n".into(), Value::Integer(-3)),
            ("tags".into(), Value::List(vec!["a".into(), "b".into()])),
            ("event_time".into(), s("2026-01-31T12:59:00Z")),
            (
                "event_key".into(),
                s(&format!("2026-01-31T12:59:00Z#Purchase#{digest}-2")),
            ),
            ("event_name".into(), s("Purchase")),
            ("s3i_row".into(), Value::Integer(2)),
            ("s3i_file".into(), s("f/p_20260131.csv")),
            ("s3i_import_id".into(), s("imp-1")),
            ("s3i_updated_at".into(), s("2026-11-28T10:00:00Z")),
        ]);
        assert_eq!(item, expected);
    }

    #[test]
    fn user_upsert_sets_mapped_and_provenance_only() {
        let config = config(serde_json::json!({"type": "registered_users"}));
        let (b, w) = write(&config, "f/u.csv");
        let Write::Update { key, set } = w else {
            panic!("users are upserts")
        };
        let file = b.file_attributes();
        assert_eq!((file.key.as_str(), key.as_str()), ("user_id", "u1"));
        let names: Vec<String> = file.named(set).map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["amount", "n", "tags", "s3i_import_id", "s3i_updated_at"]
        );
    }

    #[test]
    fn coalesce_lets_the_later_row_win() {
        let users = FileAttributes {
            key: "user_id".into(),
            names: vec!["a".into(), "b".into(), "c".into()],
            common: Vec::new(),
            put_key: None,
            ordered: None,
            segment: None,
        };
        let n = |v: &str| Value::Integer(v.parse().unwrap());
        let update = |key: &str, set: Attributes| Write::Update {
            key: key.into(),
            set,
        };
        let merged = coalesce(
            vec![
                (2, update("u1", vec![(0, n("1")), (1, n("1"))])),
                (3, update("u2", vec![(0, n("9"))])),
                (4, update("u1", vec![(1, n("2")), (2, n("2"))])),
            ],
            &users,
        );
        assert_eq!(
            merged,
            [
                (
                    Rows {
                        last: 4,
                        earlier: vec![2]
                    },
                    update("u1", vec![(0, n("1")), (1, n("2")), (2, n("2"))])
                ),
                (
                    Rows {
                        last: 3,
                        earlier: vec![]
                    },
                    update("u2", vec![(0, n("9"))])
                ),
            ]
        );
        assert_eq!(merged[0].0.all().collect::<Vec<_>>(), [2, 4]);

        let auxiliary = FileAttributes {
            put_key: Some(0),
            ..users.clone()
        };
        let put = |key: &str, v: &str| Write::Put(vec![(0, s(key)), (1, n(v))]);
        let merged = coalesce(
            vec![(2, put("k", "1")), (3, put("j", "1")), (4, put("k", "2"))],
            &auxiliary,
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].1, put("k", "2"));
        assert_eq!(merged[0].0.all().collect::<Vec<_>>(), [2, 4]);

        // Events: every row is its own item.
        let events = FileAttributes {
            put_key: None,
            ..users
        };
        let merged = coalesce(vec![(2, put("k", "1")), (3, put("k", "2"))], &events);
        assert_eq!(merged.len(), 2);
    }

    #[test]
    fn auxiliary_item_expires() {
        let config = config(serde_json::json!({
            "type": "auxiliary", "dataset": "stores", "key_column": "tags", "retention_days": 2
        }));
        let (b, w) = write(&config, "f/a.csv");
        let Write::Put(attrs) = w else {
            panic!("auxiliary rows are puts")
        };
        let item: HashMap<String, Value> = b.file_attributes().named(attrs).collect();
        assert_eq!(item["record_key"], s("[a|b]"));
        assert_eq!(item["dataset"], s("stores"));
        assert_eq!(
            item["expires_at"],
            Value::Integer((now() + chrono::Duration::days(2)).timestamp())
        );
        assert!(!item.contains_key("s3i_row"));
        assert!(
            !item.contains_key("user_id"),
            "only a key, never an attribute"
        );
    }
}
