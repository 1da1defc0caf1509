//! When DynamoDB's answer is pacing, when it is the stack's fault, and how long a
//! batch of rows waits out throttling: shared by the sink's puts, upserts and inserts.

use crate::error::{ErrorClass, ServiceError};
use crate::metrics::Counters;
use crate::ports::StoreError;

/// How long one batch of rows waits out throttling before it gives up (the file's
/// message then comes back and resumes). Throttling is DynamoDB pacing a first big load
/// (a new on-demand table starts at 4,000 writes/s, a partition takes about 1,000): it
/// slows a file down rather than fail it, but a batch must end well inside the margin
/// the processor keeps before its deadline to checkpoint (`deadline_margin`, 60 s).
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html
pub const THROTTLE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// When a batch stops waiting out throttling.
pub(super) type GiveUp = std::time::Instant;

/// The error of a batch that waited out throttling for [`THROTTLE_PATIENCE`].
pub(super) fn still_throttled(operation: &'static str, what: String) -> StoreError {
    StoreError::Service(ServiceError::new(
        "DynamoDB",
        operation,
        ErrorClass::Retryable,
        format!(
            "{what} still throttled after {}s of throttling",
            THROTTLE_PATIENCE.as_secs()
        ),
    ))
}

/// Whether the service answered with one of `codes`.
fn code_in<E, R>(e: &aws_smithy_runtime_api::client::result::SdkError<E, R>, codes: &[&str]) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| codes.contains(&c))
}

/// DynamoDB's throttling: pacing, never the request's fault.
pub(super) fn is_throttling<E, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    code_in(e, crate::aws::counters::THROTTLING)
}

/// A refusal that is the table's or the role's, never the row's: the stack's own
/// failure (a missing grant, a deleted table), which must not fail rows one by one.
pub(super) fn is_stack_fault<E, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    code_in(
        e,
        &[
            "AccessDeniedException",
            "ResourceNotFoundException",
            "UnrecognizedClientException",
        ],
    )
}

/// A batch's retries of what DynamoDB left pending: the tries since it last made
/// progress, each round waited out with backoff until [`THROTTLE_PATIENCE`] is spent.
pub(super) struct Rounds<'a> {
    tries: u32,
    give_up: GiveUp,
    counters: &'a Counters,
    operation: &'static str,
}

impl<'a> Rounds<'a> {
    pub(super) fn new(operation: &'static str, give_up: GiveUp, counters: &'a Counters) -> Self {
        Self {
            tries: 0,
            give_up,
            counters,
            operation,
        }
    }

    /// After a round that left `pending` of `before` (`what` names them): waits before
    /// the next one, counting a throttled round, or gives up past the patience.
    pub(super) async fn next(
        &mut self,
        before: usize,
        pending: usize,
        throttled: bool,
        what: &str,
    ) -> Result<(), StoreError> {
        if pending < before {
            self.tries = 0;
        }
        if pending == 0 {
            return Ok(());
        }
        self.tries += 1;
        if throttled {
            self.counters.throttled();
        }
        if std::time::Instant::now() >= self.give_up {
            return Err(still_throttled(self.operation, format!("{pending} {what}")));
        }
        crate::aws::backoff(self.tries).await;
        Ok(())
    }
}
