//! The discovery Lambda's handler: one EventBridge tick runs discovery once.

use lambda_runtime::{Error, LambdaEvent};
use s3imports::Clock;
use s3imports::discover::Discovery;
use s3imports::discover::report::TickReport;
use tracing::Instrument as _;

/// Runs one tick. The event's content does not matter (a schedule's event or `{}`).
pub async fn handler(
    discovery: &Discovery,
    clock: &dyn Clock,
    event: LambdaEvent<serde_json::Value>,
) -> Result<TickReport, Error> {
    // The request id on every line of the invocation (locally too, where no runtime
    // span gives it).
    let span = tracing::error_span!("invocation", request_id = %event.context.request_id);
    let report = discovery.tick(clock).instrument(span).await?;
    Ok(report.bounded(s3imports::discover::report::MAX_REPORT_BYTES))
}
