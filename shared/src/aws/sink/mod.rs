//! Writes rows to their DynamoDB table: puts in `BatchWriteItem`s of at most 25
//! items (which moto does not enforce and we must) with unprocessed items retried with
//! backoff; users inserted 25 to a PartiQL batch where they are new ([`insert`]) and
//! upserted as `UpdateItem`s with bounded concurrency where they are not. Throttling
//! and transient errors are retried by the SDK's own (adaptive) retry; a row counts as
//! ingested only once DynamoDB took it.

mod insert;
mod order;
mod throttle;

pub use insert::{INSERT_CONCURRENCY, MAX_STATEMENT_CHARS, STATEMENT_LIMIT};
pub use order::{ORDER_FILE, ORDER_ROW, ORDER_VERSION, row_attribute};
pub use throttle::THROTTLE_PATIENCE;
use throttle::{GiveUp, is_stack_fault, is_throttling, still_throttled};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, ReturnValue, WriteRequest};
use futures::StreamExt;

use super::backoff;
use super::dynamo::{aws_err, build_err};
use super::item::{Item, attribute};
use super::segments::member_item;
use super::{classify_sdk, describe_sdk};
use crate::error::{ErrorClass, ServiceError};
use crate::metrics::Counters;
use crate::model::config::ImportKind;
use crate::model::segment::Membership;
use crate::ports::{RejectedRow, RowSink, RowWriter, StoreError};
use crate::rows::sink::{Attributes, FileAttributes, Rows, Write, coalesce};
use crate::stack::Stack;

/// DynamoDB's limit on items per `BatchWriteItem`.
pub const BATCH_LIMIT: usize = 25;
/// `BatchWriteItem`s in flight at once per call: one DynamoDB request takes
/// milliseconds, so one at a time would cap a file at a few thousand rows a second.
const PUT_CONCURRENCY: usize = 4;
/// Upserts in flight at once per call.
const UPDATE_CONCURRENCY: usize = 16;
/// Tries at merging an older row into an item that keeps changing under it.
const MAX_TRIES: u32 = 8;

/// Opens sinks on the stack's destination tables, all counting their requests in one
/// counter (for metrics and benchmarks).
#[derive(Debug, Clone)]
pub struct DynamoWriter {
    ddb: Client,
    stack: Stack,
    requests: Arc<AtomicU64>,
    counters: Counters,
}

impl DynamoWriter {
    pub fn new(ddb: Client, stack: &Stack) -> Self {
        Self {
            ddb,
            stack: stack.clone(),
            requests: Arc::new(AtomicU64::new(0)),
            counters: Counters::default(),
        }
    }

    /// Counts throttled rounds of its sinks' batches with `counters`.
    pub fn with_counters(mut self, counters: Counters) -> Self {
        self.counters = counters;
        self
    }

    /// DynamoDB write requests made for rows over the process's life.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl RowWriter for DynamoWriter {
    fn sink(&self, kind: &ImportKind, file: FileAttributes) -> Box<dyn RowSink> {
        let table = match kind {
            ImportKind::RegisteredUsers {} => &self.stack.users_table,
            ImportKind::AnonymousUsers { .. } => &self.stack.anonymous_users_table,
            ImportKind::Events { .. } => &self.stack.events_table,
            ImportKind::Auxiliary { .. } => &self.stack.auxiliary_table,
        };
        Box::new(
            DynamoSink::counting(self.ddb.clone(), table, file, self.requests.clone())
                .with_segments(&self.stack.segments_table)
                .with_counters(self.counters.clone()),
        )
    }
}

#[derive(Debug, Clone)]
pub struct DynamoSink {
    ddb: Client,
    table: String,
    file: FileAttributes,
    requests: Arc<AtomicU64>,
    /// Where the members of the file's segment go (when it names one).
    segments_table: Option<String>,
    /// Counts the rounds of items DynamoDB left unprocessed (throttled inside an
    /// accepted request), for the `DynamoDBThrottles` metric.
    counters: Counters,
    /// Users this sink inserted and found already there.
    seen: Arc<insert::Seen>,
}

impl DynamoSink {
    /// A sink for one file's writes to `table`; `file` is what every row shares.
    pub fn new(ddb: Client, table: impl Into<String>, file: FileAttributes) -> Self {
        Self::counting(ddb, table, file, Arc::new(AtomicU64::new(0)))
    }

    /// A sink that adds its requests to a shared counter.
    pub fn counting(
        ddb: Client,
        table: impl Into<String>,
        file: FileAttributes,
        requests: Arc<AtomicU64>,
    ) -> Self {
        Self {
            ddb,
            table: table.into(),
            file,
            requests,
            segments_table: None,
            counters: Counters::default(),
            seen: Arc::default(),
        }
    }

    /// Counts throttled rounds with `counters` (the process's metrics counters).
    pub fn with_counters(mut self, counters: Counters) -> Self {
        self.counters = counters;
        self
    }

    /// Writes the members of the file's segment (if it names one) to `table`.
    pub fn with_segments(mut self, table: &str) -> Self {
        self.segments_table = Some(table.to_string());
        self
    }

    /// DynamoDB requests made so far (for benchmarks).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Puts `items` in `BatchWriteItem`s of 25, a few at once.
    async fn put_all(
        &self,
        table: &str,
        items: Vec<(Rows, Item)>,
        give_up: GiveUp,
    ) -> Result<Vec<RejectedRow>, StoreError> {
        let mut chunks = Vec::with_capacity(items.len().div_ceil(BATCH_LIMIT));
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            chunks.push(items.by_ref().take(BATCH_LIMIT).collect::<Vec<_>>());
        }
        let written = futures::stream::iter(chunks)
            .map(|chunk| async move { self.put_batch(table, chunk, give_up).await })
            .buffer_unordered(PUT_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut rejected = Vec::new();
        for r in written {
            rejected.extend(r?);
        }
        Ok(rejected)
    }

    async fn put_batch(
        &self,
        table: &str,
        chunk: Vec<(Rows, Item)>,
        give_up: GiveUp,
    ) -> Result<Vec<RejectedRow>, StoreError> {
        let mut pending: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
        for (_, item) in &chunk {
            pending.push(
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build(),
            );
        }
        let mut rounds = throttle::Rounds::new("BatchWriteItem", give_up, &self.counters);
        while !pending.is_empty() {
            let before = pending.len();
            self.requests.fetch_add(1, Ordering::Relaxed);
            let res = self
                .ddb
                .batch_write_item()
                .request_items(table, pending.clone())
                .send()
                .await;
            match res {
                Ok(out) => {
                    pending = out
                        .unprocessed_items()
                        .and_then(|u| u.get(table))
                        .cloned()
                        .unwrap_or_default();
                }
                // The table's fault, not the rows': the stack's own failure.
                Err(e) if is_stack_fault(&e) => return Err(aws_err("BatchWriteItem")(e)),
                Err(e) if classify_sdk(&e) == ErrorClass::Permanent => {
                    // One bad item fails the whole batch: find it by writing one by one.
                    return self.put_each(table, chunk).await;
                }
                // Throttled whole (the SDK's attempts spent): wait it out here.
                Err(e) if is_throttling(&e) => {}
                Err(e) => return Err(aws_err("BatchWriteItem")(e)),
            }
            // Unprocessed items are throttled ones (or in a transaction's way).
            rounds.next(before, pending.len(), true, "items").await?;
        }
        Ok(Vec::new())
    }

    async fn put_each(
        &self,
        table: &str,
        chunk: Vec<(Rows, Item)>,
    ) -> Result<Vec<RejectedRow>, StoreError> {
        let mut rejected = Vec::new();
        for (rows, item) in chunk {
            self.requests.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self
                .ddb
                .put_item()
                .table_name(table)
                .set_item(Some(item))
                .send()
                .await
            {
                if classify_sdk(&e) == ErrorClass::Retryable || is_stack_fault(&e) {
                    return Err(aws_err("PutItem")(e));
                }
                let reason = format!("DynamoDB refused the row: {}", describe_sdk(&e));
                rejected.extend(rows.all().map(|row| RejectedRow {
                    row,
                    reason: reason.clone(),
                }));
            }
        }
        Ok(rejected)
    }

    /// `SET #a0 = :v0, ...` over the row's attributes and the file's. For a file
    /// written out of order, also its id, `row` and each attribute's row, on the
    /// condition that the item holds no later row of the same file (else
    /// [`Self::update_older`] sets what no later row set). A row too wide for one
    /// expression is written by several updates of the same item, each under
    /// DynamoDB's 4 KB expression limit; the first sets the segment's first-added time.
    fn update_requests(
        &self,
        key: String,
        pairs: Vec<(String, AttributeValue)>,
        row: u64,
    ) -> Vec<UpdateRequest> {
        let key = HashMap::from([(self.file.key.clone(), AttributeValue::S(key))]);
        let mut parts = Vec::with_capacity(1);
        self.split_into(&key, pairs, row, true, &mut parts);
        parts
    }

    fn split_into(
        &self,
        key: &Item,
        mut pairs: Vec<(String, AttributeValue)>,
        row: u64,
        first: bool,
        out: &mut Vec<UpdateRequest>,
    ) {
        let u = self.update_request(key.clone(), pairs.clone(), row, first);
        if u.fits() || pairs.len() <= 1 {
            out.push(u);
            return;
        }
        let second = pairs.split_off(pairs.len() / 2);
        self.split_into(key, pairs, row, first, out);
        self.split_into(key, second, row, false, out);
    }

    fn update_request(
        &self,
        key: Item,
        pairs: Vec<(String, AttributeValue)>,
        row: u64,
        first: bool,
    ) -> UpdateRequest {
        let u = match &self.file.ordered {
            None => UpdateRequest::set(key, pairs, None, row, Vec::new()),
            Some(file) => {
                let mut u = UpdateRequest::set(key, pairs.clone(), Some((file, true)), row, pairs);
                u.condition =
                    Some("attribute_not_exists(#src) OR #src <> :src OR #srow <= :row".into());
                u
            }
        };
        match &self.file.segment {
            Some(m) if first => u.with_first_added(m),
            _ => u,
        }
    }

    /// A row older than one of its file already on the item: sets the attributes no
    /// later row of the file set, each with its row, while the item's version is the
    /// one read (another writer in between: read again).
    async fn update_older(
        &self,
        u: UpdateRequest,
        file: &str,
        give_up: GiveUp,
    ) -> Result<(), StoreError> {
        let mut tries = 0;
        let mut throttled = 0;
        while tries < MAX_TRIES {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let read = self
                .ddb
                .get_item()
                .table_name(&self.table)
                .set_key(Some(u.key.clone()))
                .consistent_read(true)
                .send()
                .await;
            let item = match read {
                Ok(out) => out.item.unwrap_or_default(),
                Err(e) if is_throttling(&e) && std::time::Instant::now() < give_up => {
                    throttled += 1;
                    self.counters.throttled();
                    backoff(throttled).await;
                    continue;
                }
                Err(e) => return Err(aws_err("GetItem")(e)),
            };
            let same_file =
                item.get(ORDER_FILE).and_then(|v| v.as_s().ok()) == Some(&file.to_string());
            let row_of = |name: &str| {
                item.get(&row_attribute(name))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<u64>().ok())
            };
            let older = if same_file {
                let keep: Vec<(String, AttributeValue)> = u
                    .pairs
                    .iter()
                    .filter(|(name, _)| row_of(name).is_none_or(|r| r < u.row))
                    .cloned()
                    .collect();
                if keep.is_empty() {
                    return Ok(()); // superseded whole, as in a sequential read
                }
                let mut older =
                    UpdateRequest::set(u.key.clone(), keep, Some((file, false)), u.row, Vec::new());
                older.condition = Some(match item.get(ORDER_VERSION) {
                    Some(v) => {
                        older.values.insert(":ver".into(), v.clone());
                        "#ver = :ver".into()
                    }
                    None => "attribute_not_exists(#ver)".into(),
                });
                older
            } else {
                // Another file wrote it since: the row's own update applies again.
                u.clone()
            };
            self.requests.fetch_add(1, Ordering::Relaxed);
            let res = self
                .ddb
                .update_item()
                .table_name(&self.table)
                .set_key(Some(older.key))
                .update_expression(older.expression)
                .set_expression_attribute_names(Some(older.names))
                .set_expression_attribute_values(Some(older.values))
                .set_condition_expression(older.condition)
                .send()
                .await;
            match res {
                Ok(_) => return Ok(()),
                Err(e) if is_condition_failed(&e) => tries += 1,
                Err(e) if is_throttling(&e) && std::time::Instant::now() < give_up => {
                    throttled += 1;
                    self.counters.throttled();
                    backoff(throttled).await;
                }
                Err(e) => return Err(aws_err("UpdateItem")(e)),
            }
        }
        Err(StoreError::Service(ServiceError::new(
            "DynamoDB",
            "UpdateItem",
            ErrorClass::Retryable,
            "an item kept changing while an older row was merged into it",
        )))
    }

    /// One row's upsert (one update, or several for a very wide row); with a segment,
    /// also the member item its user's write makes (None for a row a later row of the
    /// file superseded: that row's write adds it).
    async fn update(
        &self,
        rows: Rows,
        parts: Vec<UpdateRequest>,
        give_up: GiveUp,
    ) -> Result<(Vec<RejectedRow>, Option<(Rows, Item)>), StoreError> {
        let mut member = None;
        let count = parts.len();
        for (i, u) in parts.into_iter().enumerate() {
            let user = u
                .key
                .get(&self.file.key)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            match self.update_part(u, give_up).await? {
                Part::Written(first_added) => {
                    if i == 0
                        && let Some(m) = &self.file.segment
                    {
                        member = Some(member_item(m, &user, first_added.as_deref()));
                    }
                }
                Part::Superseded => {}
                Part::Refused(reason) => {
                    // A wide row's earlier parts are on the item already: say so.
                    let reason = if i == 0 {
                        reason
                    } else {
                        format!(
                            "{reason} (update {} of the row's {count}: the attributes of the {i} before it were written)",
                            i + 1
                        )
                    };
                    let rejected = rows
                        .all()
                        .map(|row| RejectedRow {
                            row,
                            reason: reason.clone(),
                        })
                        .collect();
                    return Ok((rejected, None));
                }
            }
        }
        Ok((Vec::new(), member.map(|m| (rows, m))))
    }

    /// One `UpdateItem` of a row's upsert, waiting out throttling (see
    /// [`THROTTLE_PATIENCE`]).
    async fn update_part(&self, u: UpdateRequest, give_up: GiveUp) -> Result<Part, StoreError> {
        let mut tries = 0;
        loop {
            match self.update_once(u.clone(), give_up).await {
                Err(Throttled(_)) if std::time::Instant::now() < give_up => {
                    tries += 1;
                    self.counters.throttled();
                    backoff(tries).await;
                }
                Err(Throttled(e)) => return Err(e),
                Ok(r) => return r,
            }
        }
    }

    async fn update_once(
        &self,
        u: UpdateRequest,
        give_up: GiveUp,
    ) -> Result<Result<Part, StoreError>, Throttled> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        // Kept only where a refused update is merged (a file written out of order):
        // the common upsert moves its request into the call.
        let merge = self.file.ordered.as_ref().map(|file| (file, u.clone()));
        let res = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(u.key))
            .update_expression(u.expression)
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .set_condition_expression(u.condition)
            // The whole item: `UPDATED_NEW` leaves out an attribute `if_not_exists`
            // kept as it was (moto does; DynamoDB's docs do not say), and the
            // first-added time is that attribute. Returned values cost no capacity.
            .set_return_values(self.file.segment.as_ref().map(|_| ReturnValue::AllNew))
            .send()
            .await;
        match res {
            Ok(out) => {
                let first = self.file.segment.as_ref().and_then(|m| {
                    out.attributes()
                        .and_then(|a| a.get(&m.first_added_attribute()))
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                });
                Ok(Ok(Part::Written(first)))
            }
            // A later row of this file is there already (another chunk wrote it):
            // only what no later row set is this row's to set.
            Err(e) if is_condition_failed(&e) => Ok(match merge {
                Some((file, u)) => self
                    .update_older(u, file, give_up)
                    .await
                    .map(|()| Part::Superseded),
                None => Ok(Part::Superseded),
            }),
            Err(e) if is_throttling(&e) => Err(Throttled(still_throttled(
                "UpdateItem",
                format!("an update of {}", self.table),
            ))),
            Err(e) if is_stack_fault(&e) => Ok(Err(aws_err("UpdateItem")(e))),
            Err(e) if classify_sdk(&e) == ErrorClass::Permanent => Ok(Ok(Part::Refused(format!(
                "DynamoDB refused the row: {}",
                describe_sdk(&e)
            )))),
            Err(e) => Ok(Err(aws_err("UpdateItem")(e))),
        }
    }
}

/// A put's whole item: the row's attributes and the file's, as the sink sends it.
pub fn item_of(file: &FileAttributes, attrs: Attributes) -> Item {
    file.named(attrs)
        .map(|(name, v)| (name, attribute(v)))
        .collect()
}

/// The bytes of the item a write leaves in a table that did not hold it (a first load):
/// a put's whole item, an upsert's key and attributes (for the cost of an import).
pub fn write_bytes(file: &FileAttributes, write: Write) -> usize {
    let item = match write {
        Write::Put(attrs) => item_of(file, attrs),
        Write::Update { key, set } => {
            let mut item = item_of(file, set);
            item.insert(file.key.clone(), AttributeValue::S(key));
            item
        }
    };
    super::item::item_bytes(&item)
}

/// A write DynamoDB throttled after the SDK's own attempts.
struct Throttled(StoreError);

/// What one `UpdateItem` of an upsert came to.
enum Part {
    /// Written; with a segment, the user's first-added time as the item holds it.
    Written(Option<String>),
    /// A later row of the file was there: merged attribute by attribute.
    Superseded,
    /// DynamoDB refused it: the reason, for the row's report.
    Refused(String),
}

/// DynamoDB's limit on an expression's length.
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-expression-parameters
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// One upsert's parts; for a file written out of order, also its attributes (to
/// merge an older row) and row.
#[derive(Clone)]
struct UpdateRequest {
    key: Item,
    expression: String,
    names: HashMap<String, String>,
    values: Item,
    condition: Option<String>,
    pairs: Vec<(String, AttributeValue)>,
    row: u64,
}

impl UpdateRequest {
    /// Within DynamoDB's expression limit (the update and its condition each).
    fn fits(&self) -> bool {
        self.expression.len() <= MAX_EXPRESSION_BYTES
            && self
                .condition
                .as_ref()
                .is_none_or(|c| c.len() <= MAX_EXPRESSION_BYTES)
    }

    /// Also sets when the user first joined the file's segment, unless it already
    /// has: the update returns it (`ALL_NEW`), for the member's item.
    fn with_first_added(mut self, m: &Membership) -> Self {
        let rest = self
            .expression
            .strip_prefix("SET ")
            .unwrap_or(&self.expression);
        self.expression = format!("SET #sgf = if_not_exists(#sgf, :sgat), {rest}");
        self.names.insert("#sgf".into(), m.first_added_attribute());
        self.values.insert(
            ":sgat".into(),
            AttributeValue::S(crate::clock::to_key(m.at)),
        );
        self
    }

    /// `SET` of `set`; with `file`, also each attribute's row, the file's id, its
    /// latest row (when this row is the latest) and a version bump (the condition is
    /// the caller's).
    fn set(
        key: Item,
        set: Vec<(String, AttributeValue)>,
        file: Option<(&str, bool)>,
        row: u64,
        pairs: Vec<(String, AttributeValue)>,
    ) -> Self {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut parts = Vec::with_capacity(set.len() * 2 + 1);
        for (i, (name, value)) in set.into_iter().enumerate() {
            parts.push(format!("#a{i} = :v{i}"));
            if file.is_some() {
                parts.push(format!("#r{i} = :row"));
                names.insert(format!("#r{i}"), row_attribute(&name));
            }
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":v{i}"), value);
        }
        if let Some((_, true)) = file {
            parts.push("#srow = :row".into());
            names.insert("#srow".into(), ORDER_ROW.into());
        }
        let mut expression = format!("SET {}", parts.join(", "));
        if let Some((file, _)) = file {
            expression.push_str(", #src = :src ADD #ver :one");
            names.insert("#src".into(), ORDER_FILE.into());
            names.insert("#ver".into(), ORDER_VERSION.into());
            values.insert(":src".into(), AttributeValue::S(file.to_string()));
            values.insert(":row".into(), AttributeValue::N(row.to_string()));
            values.insert(":one".into(), AttributeValue::N("1".into()));
        }
        Self {
            key,
            expression,
            names,
            values,
            condition: None,
            pairs,
            row,
        }
    }
}

fn is_condition_failed<R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<
        aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        R,
    >,
) -> bool {
    e.as_service_error()
        .is_some_and(|s| s.is_conditional_check_failed_exception())
}

#[async_trait]
impl RowSink for DynamoSink {
    async fn write(&self, rows: Vec<(u64, Write)>) -> Result<Vec<RejectedRow>, StoreError> {
        let give_up = std::time::Instant::now() + THROTTLE_PATIENCE;
        let mut puts = Vec::new();
        let mut users = Vec::new();
        for (rows, w) in coalesce(rows, &self.file) {
            match w {
                Write::Put(attrs) => puts.push((rows, item_of(&self.file, attrs))),
                Write::Update { key, set } => users.push(insert::UserWrite {
                    rows,
                    key,
                    pairs: self
                        .file
                        .named(set)
                        .map(|(name, value)| (name, attribute(value)))
                        .collect(),
                }),
            }
        }
        let users = async {
            let inserter = insert::Inserter {
                ddb: &self.ddb,
                table: &self.table,
                file: &self.file,
                requests: &self.requests,
                counters: &self.counters,
                seen: &self.seen,
            };
            let insert::Inserted { members, upsert } = inserter.insert_new(users, give_up).await?;
            let updates = futures::stream::iter(upsert)
                .map(|w| async move {
                    let parts = self.update_requests(w.key, w.pairs, w.rows.last);
                    self.update(w.rows, parts, give_up).await
                })
                .buffer_unordered(UPDATE_CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
            Ok::<_, StoreError>((members, updates))
        };
        let (puts, users) = futures::join!(self.put_all(&self.table, puts, give_up), users);
        let mut rejected = puts?;
        let (mut members, updates) = users?;
        for r in updates {
            let (refused, member) = r?;
            rejected.extend(refused);
            members.extend(member);
        }
        // Members only of users whose update DynamoDB took, batched 25 to a request
        // beside the updates: a row costs no request of its own for its segment. A
        // member item DynamoDB refuses fails its row rather than vanish.
        if let Some(table) = self.segments_table.as_deref() {
            rejected.extend(self.put_all(table, members, give_up).await?);
        }
        Ok(rejected)
    }
}
