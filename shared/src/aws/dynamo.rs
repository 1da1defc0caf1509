//! DynamoDB's answers, read once for every adapter: a conditional write that lost
//! (someone else got there first), a transaction cancelled by contention (sent again
//! with its idempotency token) or by its first item's condition.

use crate::aws::backoff;
use crate::error::{ErrorClass, ServiceError};
use crate::ports::StoreError;

/// An SDK error as a store error, classed (for `map_err`).
pub(crate) fn aws_err<E, R>(
    operation: &'static str,
) -> impl FnOnce(aws_smithy_runtime_api::client::result::SdkError<E, R>) -> StoreError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + aws_smithy_types::retry::ProvideErrorKind
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: crate::aws::HasStatus + std::fmt::Debug + Send + Sync + 'static,
{
    move |e| StoreError::Service(crate::aws::service_error("DynamoDB", operation, e))
}

/// A request that could not be built (a bug, not a condition to retry).
pub(crate) fn build_err(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Service(
        ServiceError::new(
            "DynamoDB",
            "build request",
            ErrorClass::Permanent,
            e.to_string(),
        )
        .with_source(e),
    )
}

/// Whether a transaction was cancelled because its first item's (the file's) condition
/// failed, rather than for a conflict or throttling.
pub(crate) fn file_condition_failed<R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match e.as_service_error() {
        Some(E::TransactionCanceledException(c)) => c
            .cancellation_reasons()
            .first()
            .and_then(|r| r.code())
            .is_some_and(|code| code == "ConditionalCheckFailed"),
        _ => false,
    }
}

pub(crate) fn is_conditional<R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<impl ConditionalCheck, R>,
) -> bool {
    e.as_service_error()
        .is_some_and(ConditionalCheck::is_conditional)
}

/// The operations whose conditional-check failure means "someone else got there first".
pub(crate) trait ConditionalCheck {
    fn is_conditional(&self) -> bool;
}

impl ConditionalCheck for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn is_conditional(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalCheck for aws_sdk_dynamodb::operation::delete_item::DeleteItemError {
    fn is_conditional(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalCheck for aws_sdk_dynamodb::operation::update_item::UpdateItemError {
    fn is_conditional(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// A conditional write: true when made, false when its condition failed (someone
/// else's write came first; for a held file: the lease is no longer held).
pub(crate) fn conditional<T, E>(
    res: Result<
        T,
        aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
    >,
    operation: &'static str,
) -> Result<bool, StoreError>
where
    E: ConditionalCheck
        + aws_smithy_types::error::metadata::ProvideErrorMetadata
        + aws_smithy_types::retry::ProvideErrorKind
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_conditional(&e) => Ok(false),
        Err(e) => Err(aws_err(operation)(e)),
    }
}

/// A conditional update of a held file: true when made, false when the lease is no
/// longer held.
pub(crate) fn held<R>(
    res: Result<
        R,
        aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
            aws_smithy_runtime_api::http::Response,
        >,
    >,
) -> Result<bool, StoreError> {
    conditional(res, "UpdateItem")
}

/// A transaction's failure other than its first item's condition: a cancellation for
/// another reason (a conflict with a concurrent write, a throttle) is worth a retry.
pub(crate) fn transaction_error(
    e: aws_smithy_runtime_api::client::result::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_smithy_runtime_api::http::Response,
    >,
) -> StoreError {
    let cancelled = e
        .as_service_error()
        .is_some_and(|s| s.is_transaction_canceled_exception());
    let mut e = super::service_error("DynamoDB", "TransactWriteItems", e);
    if cancelled {
        e.class = ErrorClass::Retryable;
    }
    StoreError::Service(e)
}

pub(crate) type TransactBuilder =
    aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder;

pub(crate) type TransactResult = Result<
    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
    aws_smithy_runtime_api::client::result::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_smithy_runtime_api::http::Response,
    >,
>;

/// Rounds a transaction cancelled by contention alone is sent again here, once the
/// SDK's own attempts (which retry it too, see `contention`) are spent: the run and a
/// split file's parent are items every finishing file or chunk writes, so under a
/// burst of them conflicts are normal and must not fail a file.
pub(crate) const CONTENTION_ROUNDS: u32 = 6;

/// Sends a transaction, sending it again while it is cancelled by contention alone.
/// Every round carries one idempotency token: a round after one that timed out but
/// took effect is then answered as a success, not refused by its own conditions.
/// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
pub(crate) async fn transact(tx: TransactBuilder) -> TransactResult {
    let tx = tx.client_request_token(uuid::Uuid::new_v4().to_string());
    let mut rounds = 0;
    loop {
        match tx.clone().send().await {
            Err(e)
                if rounds < CONTENTION_ROUNDS
                    && e.raw_response()
                        .and_then(|r| r.body().bytes())
                        .is_some_and(super::contention::is_contention) =>
            {
                rounds += 1;
                backoff(rounds).await;
            }
            other => return other,
        }
    }
}

/// Sends a transaction whose first item is a file's conditional write: false when that
/// condition failed (the file moved on), an error for any other cancellation.
pub(crate) async fn send_for_file(tx: TransactBuilder) -> Result<bool, StoreError> {
    match transact(tx).await {
        Ok(_) => Ok(true),
        Err(e) if file_condition_failed(&e) => Ok(false),
        Err(e) => Err(transaction_error(e)),
    }
}
