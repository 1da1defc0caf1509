//! The discovery Lambda's handler: one EventBridge tick runs discovery once.

use lambda_runtime::{Error, LambdaEvent};
use s3imports::Clock;
use s3imports::discovery::{Discovery, TickReport};

/// Runs one tick. The event's content does not matter (a schedule's event or `{}`).
pub async fn handler(
    discovery: &Discovery,
    clock: &dyn Clock,
    _event: LambdaEvent<serde_json::Value>,
) -> Result<TickReport, Error> {
    Ok(discovery.tick(clock).await?)
}
