//! `s3imports local provision`: the stack's resources in a local AWS (moto).

use std::process::ExitCode;

use super::{Output, clients};
use anyhow::bail;
use s3imports::aws::provision::provision as provision_stack;
use s3imports::stack::Stack;
use serde_json::json;

pub async fn provision(out: &Output, stack: &Stack) -> anyhow::Result<ExitCode> {
    let clients = clients().await;
    if clients.sdk.endpoint_url().is_none() {
        bail!(
            "`local provision` is for a local emulator: set AWS_ENDPOINT_URL (in AWS, `sam deploy` creates the stack)"
        );
    }
    provision_stack(&clients, stack).await?;
    out.emit(json!({"provisioned": stack.configs_table}), || {
        format!(
            "stack provisioned: tables {}-*, queue {}, bucket {}\n",
            stack.configs_table.trim_end_matches("-configs"),
            stack.queue_name,
            stack.reports_bucket
        )
    });
    Ok(ExitCode::SUCCESS)
}
