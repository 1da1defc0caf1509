//! Where a run's summary goes besides its email: SNS topics and webhooks.

use async_trait::async_trait;

use crate::error::ServiceError;

/// Where run summaries go.
#[async_trait]
pub trait AlertSink: Send + Sync {
    async fn publish(&self, topic_arn: &str, subject: &str, body: &str)
    -> Result<(), ServiceError>;

    /// POSTs `body` with `headers`; Ok when the receiver answered 2xx.
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(), ServiceError>;
}
