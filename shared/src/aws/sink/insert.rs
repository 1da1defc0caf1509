//! New users 25 to a request: each user row's whole item as a PartiQL `INSERT` in a
//! `BatchExecuteStatement`. An `INSERT` takes only a free key (else `DuplicateItem`)
//! and never overwrites what another row, chunk, retry or import wrote, so every user
//! already in the table goes the upsert's way, alone (`UpdateItem` with the file's
//! order conditions and the segment's first-added time), and the later row still wins
//! attribute by attribute. A first load, where nearly every user is new, costs one
//! request per 25 rows instead of one a row (docs/performance.md says why not
//! transactions or PartiQL `UPDATE`s).
//! https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.insert.html
//! https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.multiplestatements.batching.html

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, BatchStatementErrorCodeEnum, BatchStatementRequest};
use futures::StreamExt;

use super::order::{ORDER_FILE, ORDER_ROW, ORDER_VERSION, row_attribute};
use super::throttle::{GiveUp, Rounds, is_stack_fault, is_throttling};
use crate::aws::classify_sdk;
use crate::aws::dynamo::aws_err;
use crate::aws::item::Item;
use crate::aws::segments::member_item;
use crate::error::{ErrorClass, ServiceError};
use crate::metrics::Counters;
use crate::ports::StoreError;
use crate::rows::sink::{FileAttributes, Rows};

/// Statements a `BatchExecuteStatement` takes.
pub const STATEMENT_LIMIT: usize = 25;
/// The longest statement DynamoDB takes: a row whose names make a longer one is
/// upserted instead.
/// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchStatementRequest.html
pub const MAX_STATEMENT_CHARS: usize = 8192;
/// Batches in flight at once per call: a call of 400 rows (users are written a call
/// at a time) is two rounds of 8 requests.
pub const INSERT_CONCURRENCY: usize = 8;
/// Calls a sink upserts without trying inserts after a call whose users were mostly
/// there already (a daily file of changes to known users): such a file pays one call's
/// refused inserts (16 requests, a write unit each) per 33 calls, about 1 request and
/// 3% more write units per 1,000 rows, and a first load that met users written before a
/// crash goes back to inserts within 33 calls.
const SKIP_CALLS: u64 = 32;

/// One user row's write: its key and attributes (the row's and the file's).
pub(super) struct UserWrite {
    pub rows: Rows,
    pub key: String,
    pub pairs: Vec<(String, AttributeValue)>,
}

/// What the inserts came to: the members of the users inserted (with a segment), and
/// the rows to upsert (their users were there, or DynamoDB refused the insert).
pub(super) struct Inserted {
    pub members: Vec<(Rows, Item)>,
    pub upsert: Vec<UserWrite>,
}

/// What a sink inserts with: its table, file and client, and its counters.
pub(super) struct Inserter<'a> {
    pub ddb: &'a Client,
    pub table: &'a str,
    pub file: &'a FileAttributes,
    /// DynamoDB requests, for metrics and benchmarks.
    pub requests: &'a AtomicU64,
    /// Rounds of statements throttled, for the `DynamoDBThrottles` metric.
    pub counters: &'a Counters,
    pub seen: &'a Seen,
}

/// Whether inserting first still pays for a sink: the calls left to upsert without
/// trying (see [`SKIP_CALLS`]).
#[derive(Debug, Default)]
pub(super) struct Seen {
    skip: AtomicU64,
}

impl Inserter<'_> {
    /// Inserts the users of `writes` that are new, 25 to a request, a few requests at
    /// once; the rest come back to be upserted.
    pub(super) async fn insert_new(
        &self,
        writes: Vec<UserWrite>,
        give_up: GiveUp,
    ) -> Result<Inserted, StoreError> {
        let skipping = self
            .seen
            .skip
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if writes.is_empty() || skipping {
            return Ok(Inserted {
                members: Vec::new(),
                upsert: writes,
            });
        }
        let mut upsert = Vec::new();
        let mut statements = Vec::with_capacity(writes.len());
        for w in writes {
            match self.statement(&w) {
                Some(s) => statements.push((w, s)),
                None => upsert.push(w),
            }
        }
        let mut batches = Vec::with_capacity(statements.len().div_ceil(STATEMENT_LIMIT));
        let mut statements = statements.into_iter().peekable();
        while statements.peek().is_some() {
            batches.push(
                statements
                    .by_ref()
                    .take(STATEMENT_LIMIT)
                    .collect::<Vec<_>>(),
            );
        }
        let done = futures::stream::iter(batches)
            .map(|batch| self.insert_batch(batch, give_up))
            .buffer_unordered(INSERT_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut members = Vec::new();
        let (mut sent, mut duplicates) = (0, 0);
        for r in done {
            let (inserted, there, duplicated) = r?;
            sent += inserted.len() + there.len();
            duplicates += duplicated;
            if let Some(m) = &self.file.segment {
                // A new user joins now: what `if_not_exists` sets on a new item.
                members.extend(
                    inserted
                        .into_iter()
                        .map(|w| (w.rows, member_item(m, &w.key, None))),
                );
            }
            upsert.extend(there);
        }
        if duplicates * 2 > sent {
            self.seen.skip.store(SKIP_CALLS, Ordering::Relaxed);
        }
        Ok(Inserted { members, upsert })
    }

    /// The row's `INSERT` and its parameters: the item the row's upsert would make of
    /// a key not yet there (its order attributes, the segment's first-added time).
    /// None when the statement would pass DynamoDB's length limit.
    fn statement(&self, w: &UserWrite) -> Option<BatchStatementRequest> {
        let mut item: Vec<(String, AttributeValue)> = Vec::with_capacity(w.pairs.len() * 2 + 5);
        item.push((self.file.key.clone(), AttributeValue::S(w.key.clone())));
        item.extend(w.pairs.iter().filter(|(n, _)| *n != self.file.key).cloned());
        if let Some(file) = &self.file.ordered {
            let row = AttributeValue::N(w.rows.last.to_string());
            for (name, _) in &w.pairs {
                item.push((row_attribute(name), row.clone()));
            }
            item.push((ORDER_ROW.into(), row));
            item.push((ORDER_FILE.into(), AttributeValue::S(file.clone())));
            item.push((ORDER_VERSION.into(), AttributeValue::N("1".into())));
        }
        if let Some(m) = &self.file.segment {
            item.push((
                m.first_added_attribute(),
                AttributeValue::S(crate::clock::to_key(m.at)),
            ));
        }
        let s = statement_text(self.table, item.iter().map(|(name, _)| name.as_str()));
        // Bytes: never fewer than the characters DynamoDB counts.
        if s.len() > MAX_STATEMENT_CHARS {
            return None;
        }
        BatchStatementRequest::builder()
            .statement(s)
            .set_parameters(Some(item.into_iter().map(|(_, v)| v).collect()))
            .build()
            .ok()
    }

    /// One batch of inserts: the rows inserted, and those whose users were there or
    /// whose insert DynamoDB refused (each then upserted alone), and how many were
    /// there. A statement throttled or in conflict is sent again with the others like
    /// it, never the whole batch.
    async fn insert_batch(
        &self,
        batch: Vec<(UserWrite, BatchStatementRequest)>,
        give_up: GiveUp,
    ) -> Result<(Vec<UserWrite>, Vec<UserWrite>, usize), StoreError> {
        let (mut inserted, mut there, mut duplicates) = (Vec::new(), Vec::new(), 0);
        let mut pending = batch;
        let mut rounds = Rounds::new("BatchExecuteStatement", give_up, self.counters);
        while !pending.is_empty() {
            let before = pending.len();
            let mut throttled = false;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let res = self
                .ddb
                .batch_execute_statement()
                .set_statements(Some(pending.iter().map(|(_, s)| s.clone()).collect()))
                .send()
                .await;
            match res {
                Ok(out) => {
                    let responses = out.responses();
                    let mut again = Vec::new();
                    for (i, (w, s)) in pending.into_iter().enumerate() {
                        let Some(r) = responses.get(i) else {
                            // No answer for it: whether it landed is unknown, and an
                            // upsert is right either way.
                            there.push(w);
                            continue;
                        };
                        match r.error().and_then(|e| e.code()) {
                            None => inserted.push(w),
                            Some(
                                BatchStatementErrorCodeEnum::ProvisionedThroughputExceeded
                                | BatchStatementErrorCodeEnum::ThrottlingError
                                | BatchStatementErrorCodeEnum::RequestLimitExceeded,
                            ) => {
                                throttled = true;
                                again.push((w, s));
                            }
                            Some(
                                BatchStatementErrorCodeEnum::TransactionConflict
                                | BatchStatementErrorCodeEnum::InternalServerError,
                            ) => again.push((w, s)),
                            Some(BatchStatementErrorCodeEnum::DuplicateItem) => {
                                duplicates += 1;
                                there.push(w);
                            }
                            Some(
                                code @ (BatchStatementErrorCodeEnum::AccessDenied
                                | BatchStatementErrorCodeEnum::ResourceNotFound),
                            ) => {
                                // The role's or the table's fault, never the row's.
                                let message = r.error().and_then(|e| e.message()).unwrap_or("");
                                return Err(StoreError::Service(ServiceError::new(
                                    "DynamoDB",
                                    "BatchExecuteStatement",
                                    ErrorClass::Permanent,
                                    format!("{code}: {message}"),
                                )));
                            }
                            // A refused insert: the upsert gives the row its own answer.
                            Some(_) => there.push(w),
                        }
                    }
                    pending = again;
                }
                Err(e) if is_stack_fault(&e) => return Err(aws_err("BatchExecuteStatement")(e)),
                // Throttled whole (the SDK's attempts spent): wait it out here.
                Err(e) if is_throttling(&e) => throttled = true,
                // The request refused whole: each row's upsert answers for it.
                Err(e) if classify_sdk(&e) == ErrorClass::Permanent => {
                    there.extend(pending.into_iter().map(|(w, _)| w));
                    pending = Vec::new();
                }
                Err(e) => return Err(aws_err("BatchExecuteStatement")(e)),
            }
            rounds
                .next(before, pending.len(), throttled, "inserts")
                .await?;
        }
        Ok((inserted, there, duplicates))
    }
}

/// `INSERT INTO "t" VALUE {'a': ?, ...}`: PartiQL quotes a table's name in double
/// quotes and a name in the VALUE map as a string, each quote doubled.
fn statement_text<'a>(table: &str, names: impl Iterator<Item = &'a str>) -> String {
    let mut s = String::with_capacity(64 + table.len());
    s.push_str("INSERT INTO \"");
    s.push_str(&table.replace('"', "\"\""));
    s.push_str("\" VALUE {");
    for (i, name) in names.enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('\'');
        s.push_str(&name.replace('\'', "''"));
        s.push_str("': ?");
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_as_partiql_strings() {
        assert_eq!(
            statement_text("p-users", ["user_id", "it's", "a\"b"].into_iter()),
            "INSERT INTO \"p-users\" VALUE {'user_id': ?, 'it''s': ?, 'a\"b': ?}"
        );
    }
}
