//! Helpers shared by the unit tests.

/// A repeatable stream of pseudo-random numbers for the property tests.
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// A partial run of one file: `total` rows read, `failed` of them failed.
pub fn run(total: u64, failed: u64) -> crate::model::ledger::RunRecord {
    crate::model::ledger::RunRecord {
        import_id: "i".into(),
        run_id: "r".into(),
        status: crate::model::status::RunStatus::PartiallySucceeded,
        started_at: None,
        finished_at: None,
        files_total: 1,
        files_done: 1,
        files_succeeded: 0,
        files_partial: 1,
        files_failed: 0,
        rows_total: total,
        rows_ingested: total - failed,
        rows_failed: failed,
        reason: None,
        notified: false,
        notify_until: None,
        manual: None,
        keys_used: Vec::new(),
        replay: None,
        changed_files: Vec::new(),
        alerts: None,
    }
}
