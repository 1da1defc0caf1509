//! `discovery-scale`: a run's list requests for 10 new files among a million old ones,
//! and a whole pass of the sweep over the older names, over the in-memory ports with
//! S3's page of 1,000 keys and a modelled latency a request (moto cannot hold such a
//! folder). Beside it, what listing the whole folder costs, as discovery did before.

use std::time::Duration;

use anyhow::Context;
use s3imports::ports::ObjectSource as _;
use s3imports_tests::fakes::folder::{BODY, BUCKET, IMPORT, imported_folder, old};
use serde_json::json;

pub async fn at_scale(files: u64, latency_ms: u64) -> anyhow::Result<()> {
    let latency = Duration::from_millis(latency_ms);
    let w = imported_folder(files, latency).await?;
    for i in 0..10 {
        w.source.put(BUCKET, &old(files + 100 + i), BODY);
    }
    let record = w.configs.record(IMPORT).context("the import")?;
    let whole = w
        .source
        .connect(&record.config.source, IMPORT)
        .await?
        .list(&record.config.file_pattern(), None)
        .await?;
    let before = w.source.list_time();

    let run = || async {
        w.advance(chrono::Duration::minutes(5));
        let start = w.source.list_time();
        let report = w.tick().await.context("crashed")??;
        let t = report.imports.into_iter().next().context("no run")?;
        anyhow::ensure!(t.reason.is_none(), "run failed: {:?}", t.reason);
        anyhow::Ok((t, w.source.list_time() - start))
    };
    let (first, first_time) = run().await?;
    // The rest of the sweep's pass: how many runs, and the most any run listed.
    let (mut runs, mut most, mut slowest) = (1u64, first.list_requests, first_time);
    while w.configs.record(IMPORT).and_then(|r| r.sweep_key).is_some() {
        let (t, time) = run().await?;
        runs += 1;
        most = most.max(t.list_requests);
        slowest = slowest.max(time);
    }
    println!(
        "{}",
        json!({
            "scale_old_files": files, "list_latency_ms": latency_ms,
            "new_files_found": first.files.len(), "list_requests": first.list_requests,
            "list_secs": first_time.as_secs_f64(),
            "whole_folder_requests": whole.requests,
            "whole_folder_secs": before.as_secs_f64(),
            "pass_runs": runs, "pass_most_requests": most, "pass_slowest_list_secs": slowest.as_secs_f64(),
        })
    );
    Ok(())
}
