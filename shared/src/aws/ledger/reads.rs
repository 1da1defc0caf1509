//! What every role reads of the ledger, and the history's pages.

use std::collections::HashMap;

use async_trait::async_trait;

use super::LedgerStore;
use super::items::{file_from_item, file_sk, listed_keys, run_from_item, run_sk};
use crate::aws::dynamo::aws_err;
use crate::aws::item::{self, Item, get_s};
use crate::model::ledger::{FileRecord, RunRecord};
use crate::model::pages::{FilesCursor, FilesPage, RunEntry, RunsCursor, RunsPage};
use crate::ports::LedgerReads;
use crate::ports::StoreError;

#[async_trait]
impl LedgerReads for LedgerStore {
    async fn files_page(
        &self,
        import_id: &str,
        run_id: &str,
        cursor: Option<&FilesCursor>,
        limit: usize,
    ) -> Result<Option<FilesPage>, StoreError> {
        let Some(item) = self.raw(import_id, &run_sk(run_id)).await? else {
            return Ok(None);
        };
        let keys = listed_keys(&item);
        let from = cursor.map_or(0, |c| c.offset).min(keys.len());
        let to = from.saturating_add(limit).min(keys.len());
        let files = self
            .files(import_id, &keys[from..to])
            .await?
            .iter()
            .filter_map(|f| f.as_of(run_id))
            .collect();
        Ok(Some(FilesPage {
            run: run_from_item(import_id, &item),
            files,
            files_listed: keys.len(),
            next_cursor: (to < keys.len()).then(|| {
                FilesCursor {
                    run: run_id.to_string(),
                    offset: to,
                }
                .encode()
            }),
        }))
    }

    async fn runs_page(
        &self,
        import_id: &str,
        cursor: Option<&RunsCursor>,
        limit: usize,
        files_per_run: usize,
    ) -> Result<RunsPage, StoreError> {
        // One more than asked: whether it exists says if there is a next page.
        let want = limit + 1;
        let mut items: Vec<Item> = Vec::with_capacity(want);
        let mut start = cursor.map(|c| {
            HashMap::from([
                ("pk".to_string(), item::s(import_id)),
                ("sk".to_string(), item::s(run_sk(&c.after_run))),
            ])
        });
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :run)")
                .expression_attribute_values(":pk", item::s(import_id))
                .expression_attribute_values(":run", item::s("RUN#"))
                .scan_index_forward(false)
                .limit(i32::try_from(want - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(aws_err("Query"))?;
            start = out.last_evaluated_key;
            items.extend(out.items.unwrap_or_default());
            if items.len() >= want || start.is_none() {
                break;
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let listed: Vec<Vec<String>> = items.iter().map(listed_keys).collect();
        // A replayed file is in more than one run: read once (BatchGetItem refuses a
        // key twice), shown as each run left it.
        let mut shown: Vec<String> = listed
            .iter()
            .flat_map(|keys| keys.iter().take(files_per_run).cloned())
            .collect();
        shown.sort();
        shown.dedup();
        let by_key: HashMap<String, FileRecord> = self
            .files(import_id, &shown)
            .await?
            .into_iter()
            .map(|f| (f.key.clone(), f))
            .collect();
        let runs: Vec<RunEntry> = items
            .iter()
            .zip(listed)
            .map(|(item, keys)| {
                let run = run_from_item(import_id, item);
                let files = keys
                    .iter()
                    .take(files_per_run)
                    .filter_map(|k| by_key.get(k)?.as_of(&run.run_id))
                    .collect();
                let next_files_cursor = (keys.len() > files_per_run).then(|| {
                    FilesCursor {
                        run: run.run_id.clone(),
                        offset: files_per_run,
                    }
                    .encode()
                });
                RunEntry {
                    run,
                    files,
                    files_listed: keys.len(),
                    next_files_cursor,
                }
            })
            .collect();
        let next_cursor = if more {
            runs.last().map(|r| {
                RunsCursor {
                    after_run: r.run.run_id.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(RunsPage { runs, next_cursor })
    }

    async fn file(&self, import_id: &str, key: &str) -> Result<Option<FileRecord>, StoreError> {
        Ok(self
            .raw(import_id, &file_sk(key))
            .await?
            .map(|i| file_from_item(import_id, &i)))
    }

    async fn run(&self, import_id: &str, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self
            .raw(import_id, &run_sk(run_id))
            .await?
            .map(|i| run_from_item(import_id, &i)))
    }

    async fn run_files(
        &self,
        import_id: &str,
        run_id: &str,
    ) -> Result<Vec<FileRecord>, StoreError> {
        let Some(run) = self.raw(import_id, &run_sk(run_id)).await? else {
            return Ok(Vec::new());
        };
        Ok(self
            .files(import_id, &listed_keys(&run))
            .await?
            .iter()
            .filter_map(|f| f.as_of(run_id))
            .collect())
    }

    async fn dry_run_config(
        &self,
        partition: &str,
        run_id: &str,
    ) -> Result<Option<crate::model::config::ImportConfig>, StoreError> {
        let Some(run) = self.raw(partition, &run_sk(run_id)).await? else {
            return Ok(None);
        };
        get_s(&run, "dry_run_config")
            .map(|c| {
                serde_json::from_str(c).map_err(|e| StoreError::Corrupt {
                    id: partition.to_string(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }
}
