//! The configs table: one item per import, plus one lock item per duplicate key.
//!
//! Item: `id`, `status`, `next_run_at` (only while the import has a next run, so the
//! sparse `due-index` holds just what can become due), `config` (the document as a
//! native map), `duplicate_key`, `status_reason`, `created_at`, `updated_at`,
//! `last_run_id`, `last_run_at`, `newest_key`, `sweep_key`.
//!
//! Lock item: `id = "lock#<duplicate key>"`, `owner = <import id>`. Writing a config
//! and its lock in one transaction is what makes duplicate refusal atomic.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::dynamo::{aws_err, build_err, conditional};
use super::item::{self, Item, get_s};
use crate::clock::{from_key, to_key};
use crate::model::config::{ConfigRecord, ImportConfig, ImportStatus};
use crate::ports::{Configs, StoreError};
use crate::stack::DUE_INDEX;

/// What `put` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Updated,
}

#[derive(Debug, Clone)]
pub struct ConfigStore {
    ddb: Client,
    table: String,
}

fn lock_id(duplicate_key: &str) -> String {
    format!("lock#{duplicate_key}")
}

impl ConfigStore {
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self {
            ddb,
            table: table.into(),
        }
    }

    /// Creates or replaces an import's config, keeping its run state. Refuses, atomically,
    /// a config whose duplicate key another active import holds.
    pub async fn put(
        &self,
        config: &ImportConfig,
        now: DateTime<Utc>,
    ) -> Result<PutOutcome, StoreError> {
        let existing = self.get(&config.id).await?;
        let key = config.duplicate_key();
        let active = config.status == ImportStatus::Active;
        let next_run = if active {
            config.schedule.first_run(now, config.timezone)
        } else {
            None
        };
        let doc = serde_json::to_value(config).map_err(|e| StoreError::Corrupt {
            id: config.id.clone(),
            reason: e.to_string(),
        })?;
        let mut set = vec![
            "#status = :status",
            "config = :config",
            "duplicate_key = :dkey",
            "updated_at = :now",
            "created_at = if_not_exists(created_at, :now)",
        ];
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("id", item::s(&config.id))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", item::s(config.status.as_str()))
            .expression_attribute_values(":config", item::from_json(&doc))
            .expression_attribute_values(":dkey", item::s(&key))
            .expression_attribute_values(":now", item::s(to_key(now)));
        let remove = match next_run {
            Some(t) => {
                set.push("next_run_at = :next");
                update = update.expression_attribute_values(":next", item::s(to_key(t)));
                " REMOVE status_reason"
            }
            None => " REMOVE next_run_at, status_reason",
        };
        let update = update
            .update_expression(format!("SET {}{remove}", set.join(", ")))
            .build()
            .map_err(build_err)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if active {
            items.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .item("id", item::s(lock_id(&key)))
                            .item("owner", item::s(&config.id))
                            .condition_expression("attribute_not_exists(id) OR #owner = :owner")
                            .expression_attribute_names("#owner", "owner")
                            .expression_attribute_values(":owner", item::s(&config.id))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build(),
            );
        }
        // A config that changed folder (or stopped being active) gives up its old lock.
        if let Some(old) = &existing {
            let old_key = old.config.duplicate_key();
            if old.status == ImportStatus::Active && (old_key != key || !active) {
                items.push(self.release_lock(&old_key, &config.id)?);
            }
        }
        match self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(if existing.is_some() {
                PutOutcome::Updated
            } else {
                PutOutcome::Created
            }),
            Err(e) => {
                let cancelled = e
                    .as_service_error()
                    .is_some_and(|s| s.is_transaction_canceled_exception());
                if cancelled
                    && let Some(other) = self.lock_owner(&key).await?
                    && other != config.id
                {
                    return Err(StoreError::Duplicate {
                        id: config.id.clone(),
                        other,
                    });
                }
                Err(aws_err("TransactWriteItems")(e))
            }
        }
    }

    fn release_lock(&self, key: &str, owner: &str) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&self.table)
                    .key("id", item::s(lock_id(key)))
                    .condition_expression("attribute_not_exists(id) OR #owner = :owner")
                    .expression_attribute_names("#owner", "owner")
                    .expression_attribute_values(":owner", item::s(owner))
                    .build()
                    .map_err(build_err)?,
            )
            .build())
    }

    async fn write_lock(
        &self,
        key: &str,
        id: &str,
        replacing: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut req = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("id", item::s(lock_id(key)))
            .item("owner", item::s(id))
            .item("updated_at", item::s(to_key(now)))
            .expression_attribute_names("#owner", "owner");
        req = match replacing {
            Some(old) => req
                .condition_expression("#owner = :old")
                .expression_attribute_values(":old", item::s(old)),
            None => req
                .condition_expression("attribute_not_exists(id) OR #owner = :id")
                .expression_attribute_values(":id", item::s(id)),
        };
        // Someone else wrote it meanwhile; the caller reads the owner again.
        conditional(req.send().await, "PutItem").map(|_| ())
    }

    async fn lock_owner(&self, key: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("id", item::s(lock_id(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws_err("GetItem"))?;
        Ok(out
            .item()
            .and_then(|i| get_s(i, "owner"))
            .map(str::to_string))
    }

    /// Archives an import: it never runs again, and its folder is free for another.
    pub async fn archive(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.finish(id, ImportStatus::Archived, None, now).await
    }

    /// Every import (any status), by id: a scan of the table's import items (an
    /// operator's listing; the table holds one item per import and lock).
    pub async fn all(&self) -> Result<Vec<ConfigRecord>, StoreError> {
        let pages: Vec<_> = self
            .ddb
            .scan()
            .table_name(&self.table)
            .filter_expression("attribute_exists(config)")
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut records = Vec::new();
        for i in pages {
            let i = i.map_err(aws_err("Scan"))?;
            let id = get_s(&i, "id").unwrap_or_default().to_string();
            records.push(record_from_item(&id, &i)?);
        }
        records.sort_by(|a, b| a.config.id.cmp(&b.config.id));
        Ok(records)
    }

    /// Ids of every active import.
    pub async fn active(&self) -> Result<Vec<String>, StoreError> {
        self.query_active(None).await
    }

    async fn query_active(&self, until: Option<DateTime<Utc>>) -> Result<Vec<String>, StoreError> {
        let mut req = self
            .ddb
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", item::s(ImportStatus::Active.as_str()));
        req = match until {
            Some(t) => req
                .key_condition_expression("#status = :active AND next_run_at <= :now")
                .expression_attribute_values(":now", item::s(to_key(t))),
            None => req.key_condition_expression("#status = :active"),
        };
        let pages: Vec<_> = req
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut ids = Vec::new();
        for i in pages {
            let i = i.map_err(aws_err("Query"))?;
            if let Some(id) = get_s(&i, "id") {
                ids.push(id.to_string());
            }
        }
        Ok(ids)
    }
}

fn record_from_item(id: &str, i: &Item) -> Result<ConfigRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        id: id.to_string(),
        reason,
    };
    let doc = i
        .get("config")
        .map(item::to_json)
        .ok_or_else(|| corrupt("the item has no `config`".into()))?;
    let config: ImportConfig = serde_json::from_value(doc).map_err(|e| corrupt(e.to_string()))?;
    let status = match get_s(i, "status") {
        Some(s) => serde_json::from_value(serde_json::Value::String(s.into()))
            .map_err(|e| corrupt(e.to_string()))?,
        None => config.status,
    };
    let time = |k: &str| get_s(i, k).and_then(from_key);
    Ok(ConfigRecord {
        status,
        next_run_at: time("next_run_at"),
        status_reason: get_s(i, "status_reason").map(str::to_string),
        created_at: time("created_at"),
        updated_at: time("updated_at"),
        last_run_id: get_s(i, "last_run_id").map(str::to_string),
        last_run_at: time("last_run_at"),
        newest_key: get_s(i, "newest_key").map(str::to_string),
        sweep_key: get_s(i, "sweep_key").map(str::to_string),
        last_manual_run_at: time("last_manual_run_at"),
        config,
    })
}

#[async_trait]
impl Configs for ConfigStore {
    async fn get(&self, id: &str) -> Result<Option<ConfigRecord>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("id", item::s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws_err("GetItem"))?;
        out.item().map(|i| record_from_item(id, i)).transpose()
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.query_active(Some(now)).await
    }

    async fn take_lock(
        &self,
        config: &ImportConfig,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let key = config.duplicate_key();
        for _ in 0..2 {
            match self.lock_owner(&key).await? {
                Some(owner) if owner == config.id => return Ok(None),
                Some(owner) => {
                    let live = self.get(&owner).await?.is_some_and(|r| {
                        r.status == ImportStatus::Active && r.config.duplicate_key() == key
                    });
                    if live {
                        return Ok(Some(owner));
                    }
                    // A stale lock (its owner was deleted or moved): take it over.
                    self.write_lock(&key, &config.id, Some(&owner), now).await?;
                }
                None => self.write_lock(&key, &config.id, None, now).await?,
            }
        }
        Ok(self.lock_owner(&key).await?.filter(|o| *o != config.id))
    }

    async fn finish(
        &self,
        id: &str,
        status: ImportStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let record = self.require(id).await?;
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("id", item::s(id))
            .condition_expression("attribute_exists(id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", item::s(status.as_str()))
            .expression_attribute_values(":now", item::s(to_key(now)));
        update = match reason {
            Some(r) => update
                .update_expression(
                    "SET #status = :status, config.#status = :status, updated_at = :now, status_reason = :reason REMOVE next_run_at",
                )
                .expression_attribute_values(":reason", item::s(r)),
            None => update.update_expression(
                "SET #status = :status, config.#status = :status, updated_at = :now REMOVE next_run_at, status_reason",
            ),
        };
        let mut items = vec![
            TransactWriteItem::builder()
                .update(update.build().map_err(build_err)?)
                .build(),
        ];
        // Only a lock this import holds is released (a duplicate never held one).
        let key = record.config.duplicate_key();
        if record.status == ImportStatus::Active
            && self.lock_owner(&key).await?.as_deref() == Some(id)
        {
            items.push(self.release_lock(&key, id)?);
        }
        self.ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(aws_err("TransactWriteItems"))?;
        Ok(())
    }

    async fn claim_run(
        &self,
        id: &str,
        due_at: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("id", item::s(id))
            .condition_expression("#status = :active AND next_run_at = :due")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", item::s(ImportStatus::Active.as_str()))
            .expression_attribute_values(":due", item::s(to_key(due_at)))
            .expression_attribute_values(":run", item::s(run_id))
            .expression_attribute_values(":now", item::s(to_key(now)))
            .return_values(ReturnValue::None);
        req = match next {
            Some(t) => req
                .update_expression(
                    "SET next_run_at = :next, last_run_id = :run, last_run_at = :now",
                )
                .expression_attribute_values(":next", item::s(to_key(t))),
            // A one-time import leaves the due index once claimed; `complete` follows.
            None => req
                .update_expression("SET last_run_id = :run, last_run_at = :now REMOVE next_run_at"),
        };
        conditional(req.send().await, "UpdateItem")
    }

    async fn claim_manual_run(
        &self,
        id: &str,
        run_id: &str,
        not_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let res = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("id", item::s(id))
            .condition_expression(
                "#status = :active AND (attribute_not_exists(last_manual_run_at) OR last_manual_run_at <= :not_after)",
            )
            .update_expression(
                "SET last_manual_run_at = :now, last_run_id = :run, last_run_at = :now",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", item::s(ImportStatus::Active.as_str()))
            .expression_attribute_values(":not_after", item::s(to_key(not_after)))
            .expression_attribute_values(":run", item::s(run_id))
            .expression_attribute_values(":now", item::s(to_key(now)))
            .send()
            .await;
        conditional(res, "UpdateItem")
    }

    async fn set_newest_key(&self, id: &str, key: &str) -> Result<(), StoreError> {
        let res = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("id", item::s(id))
            .update_expression("SET newest_key = :k")
            .condition_expression(
                "attribute_exists(id) AND (attribute_not_exists(newest_key) OR newest_key < :k)",
            )
            .expression_attribute_values(":k", item::s(key))
            .send()
            .await;
        conditional(res, "UpdateItem").map(|_| ())
    }

    async fn set_sweep_key(&self, id: &str, key: Option<&str>) -> Result<(), StoreError> {
        let update = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("id", item::s(id))
            .condition_expression("attribute_exists(id)");
        let update = match key {
            Some(key) => update
                .update_expression("SET sweep_key = :k")
                .expression_attribute_values(":k", item::s(key)),
            None => update.update_expression("REMOVE sweep_key"),
        };
        // The import was deleted meanwhile: nothing to sweep.
        conditional(update.send().await, "UpdateItem").map(|_| ())
    }
}
