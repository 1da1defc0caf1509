//! The scheduled tick: every due import's run started, its new files listed, claimed
//! and queued.

use tracing::{Instrument as _, warn};

use super::Discovery;
use super::report::{
    ImportTick, TickError, TickOutcome, TickReport, duplicate_reason, stack_fault_reason,
};
use crate::Clock;
use crate::model::config::{ConfigRecord, ImportStatus};
use crate::model::ledger::new_run_id;
use crate::ports::StoreError;

impl Discovery {
    /// One tick: every due import, one after another. An import's failure is recorded
    /// on its run and does not stop the others. A failure of the stack's own (its
    /// queue, ledger, configs table) is counted in `DiscoveryFailures` by cause and
    /// mailed to the import's recipients; the tick fails when the configs table cannot
    /// be read or every due import failed for the same such cause, so the function's
    /// `Errors` alarm fires too.
    pub async fn tick(&self, clock: &dyn Clock) -> Result<TickReport, TickError> {
        let now = clock.now();
        let mut report = TickReport::default();
        let due = match self.configs.due(now).await {
            Ok(due) => due,
            Err(e) => {
                self.stack_failure("", &e, clock);
                return Err(TickError::Configs(e));
            }
        };
        for id in due {
            let span = tracing::error_span!("import", import_id = %id);
            match self.run_import(&id, clock).instrument(span).await {
                Ok(Some(t)) => report.imports.push(t),
                Ok(None) => {}
                Err(e) => {
                    warn!(import_id = %id, error = %e, "discovery failed for import: the stack's own failure");
                    let mut t = ImportTick::new(&id, TickOutcome::Failed);
                    t.stack_cause = self.stack_failure(&id, &e, clock);
                    t.reason = Some(match t.stack_cause {
                        Some(_) => stack_fault_reason(&e),
                        None => e.to_string(),
                    });
                    report.imports.push(t);
                }
            }
        }
        let causes: Vec<&str> = report
            .imports
            .iter()
            .map(|t| t.stack_cause.as_deref().unwrap_or_default())
            .collect();
        if let Some(cause) = causes.first().filter(|c| !c.is_empty())
            && causes.iter().all(|c| c == cause)
        {
            return Err(TickError::Stack {
                count: causes.len(),
                cause: (*cause).to_string(),
                first: report.imports[0].reason.clone().unwrap_or_default(),
            });
        }
        Ok(report)
    }

    /// Counts a failure of the stack's own in `DiscoveryFailures`; returns its cause
    /// (None for a failure that is no service's: a corrupt config).
    pub(super) fn stack_failure(
        &self,
        import_id: &str,
        e: &StoreError,
        clock: &dyn Clock,
    ) -> Option<String> {
        let StoreError::Service(s) = e else {
            return None;
        };
        let cause = s.cause();
        self.metrics.emit(
            &crate::metrics::Event::stack_failure(
                crate::metrics::DISCOVERY_FAILURES,
                import_id,
                cause.clone(),
            ),
            clock.now(),
        );
        Some(cause)
    }

    pub(super) async fn run_import(
        &self,
        id: &str,
        clock: &dyn Clock,
    ) -> Result<Option<ImportTick>, StoreError> {
        let now = clock.now();
        let Some(record) = self.configs.get(id).await? else {
            return Ok(None);
        };
        let Some(due_at) = record.next_run_at.filter(|t| *t <= now) else {
            return Ok(None);
        };
        if record.status != ImportStatus::Active {
            return Ok(None);
        }
        let run_id = new_run_id(now);
        self.run_due(&record, due_at, &run_id, clock)
            .await
            .map(Some)
    }

    /// A due import's run, once its config is read.
    pub(super) async fn run_due(
        &self,
        record: &ConfigRecord,
        due_at: chrono::DateTime<chrono::Utc>,
        run_id: &str,
        clock: &dyn Clock,
    ) -> Result<ImportTick, StoreError> {
        let now = clock.now();
        let config = &record.config;
        let id = config.id.as_str();
        let run_id = run_id.to_string();
        if let Some(other) = self.configs.take_lock(config, now).await? {
            let reason = duplicate_reason(&other);
            self.configs
                .finish(id, ImportStatus::Invalid, Some(&reason), now)
                .await?;
            let mut t = ImportTick::new(id, TickOutcome::Duplicate);
            t.reason = Some(reason);
            return Ok(t);
        }
        let next = config.schedule.next_run_after(now, config.timezone);
        if !self
            .configs
            .claim_run(id, due_at, next, &run_id, now)
            .await?
        {
            return Ok(ImportTick::new(id, TickOutcome::ClaimedElsewhere));
        }
        let tick = self.start_run(record, &run_id, None, clock).await?;
        // How late the scheduled run started (the tick's period and its own delay).
        self.metrics.emit(
            &crate::metrics::Event {
                import_id: id,
                properties: vec![("RunId", run_id.clone())],
                outcome: None,
                values: vec![
                    (
                        crate::metrics::RUN_START_DELAY,
                        (now - due_at).num_milliseconds().max(0) as f64 / 1000.0,
                    ),
                    (crate::metrics::FILES_QUEUED, tick.files.len() as f64),
                ],
                cause: None,
            },
            clock.now(),
        );
        if config.schedule.is_one_time()
            && let Err(e) = self
                .configs
                .finish(id, ImportStatus::Completed, None, clock.now())
                .await
        {
            // The run is under way: it is not failed for this. The import stays
            // active, and its next tick finds no new file.
            warn!(import_id = %id, error = %e, "a one-time import could not be marked completed");
            self.stack_failure(id, &e, clock);
        }
        Ok(tick)
    }
}
