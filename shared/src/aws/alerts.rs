//! Run summaries out: SNS topics, and HTTPS webhooks (reqwest over rustls).

use async_trait::async_trait;

use crate::error::{ErrorClass, ServiceError};
use crate::ports::AlertSink;

/// How long one webhook attempt may take.
const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Alerts {
    sns: aws_sdk_sns::Client,
    http: reqwest::Client,
}

impl Alerts {
    pub fn new(sns: aws_sdk_sns::Client) -> Self {
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            // A receiver's redirect is not followed: the signed body goes where the
            // config says, or nowhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("s3imports/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self { sns, http }
    }
}

#[async_trait]
impl AlertSink for Alerts {
    async fn publish(
        &self,
        topic_arn: &str,
        subject: &str,
        body: &str,
    ) -> Result<(), ServiceError> {
        self.sns
            .publish()
            .topic_arn(topic_arn)
            .subject(subject)
            .message(body)
            .send()
            .await
            .map_err(|e| super::service_error("SNS", "Publish", e))?;
        Ok(())
    }

    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(), ServiceError> {
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        // The URL stays out of the error (its path and query may carry a token).
        let response = request.send().await.map_err(|e| {
            let e = e.without_url();
            ServiceError::new("webhook", "POST", ErrorClass::Retryable, e.to_string())
                .with_source(e)
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // A receiver that is down or busy may take it later; one that refuses it will
        // refuse it again.
        let class = if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408
        {
            ErrorClass::Retryable
        } else {
            ErrorClass::Permanent
        };
        Err(ServiceError::new(
            "webhook",
            "POST",
            class,
            format!("the receiver answered {status}"),
        ))
    }
}
