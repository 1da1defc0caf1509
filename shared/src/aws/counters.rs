//! Counts a DynamoDB client's calls, attempts and throttled answers into
//! [`Counters`], for the `DynamoDBThrottles` and `DynamoDBRetries` metrics: the SDK
//! retries throttling itself, so only an interceptor sees it.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

use crate::metrics::Counters;

/// DynamoDB's throttling error codes (the JSON protocol's `__type` ends with one).
pub(crate) const THROTTLING: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

#[derive(Debug, Clone)]
pub struct CountingInterceptor(pub Counters);

impl Intercept for CountingInterceptor {
    fn name(&self) -> &'static str {
        "CountingInterceptor"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.call();
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempt();
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(response) = context.response() else {
            return Ok(());
        };
        if response.status().as_u16() != 400 {
            return Ok(());
        }
        let named = |text: &str| THROTTLING.iter().any(|code| text.contains(code));
        let header = response
            .headers()
            .get("x-amzn-errortype")
            .is_some_and(named);
        let body = response
            .body()
            .bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
            .is_some_and(named);
        if header || body {
            self.0.throttled();
        }
        Ok(())
    }
}
