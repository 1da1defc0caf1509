//! DynamoDB's contention as something to wait out, never a failure: a write that met
//! a transaction in progress on its item (`TransactionConflictException`), and a
//! transaction cancelled only because another one held one of its items or a
//! partition was throttled, are tried again by the SDK itself, with its backoff,
//! instead of failing the call (and with it the file, and its message back on the
//! queue to import it all again).
//!
//! The SDK's own classifiers treat neither as retryable: conflicts are a modelled,
//! non-retryable error, and a cancellation carries its reasons in the body.
//! https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling

use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};

/// Cancellation reasons that say nothing about the request itself: it may succeed as
/// it is once the other writer is done (`None` marks the items that were fine).
const CONTENDED: &[&str] = &[
    "None",
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

/// Whether a DynamoDB error body is contention alone: a conflict with a transaction in
/// progress, or a cancellation none of whose reasons is the request's own (a failed
/// condition, a validation error).
pub fn is_contention(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let code = v["__type"].as_str().unwrap_or_default();
    let code = code.rsplit('#').next().unwrap_or(code);
    match code {
        "TransactionConflictException" | "TransactionInProgressException" => true,
        "TransactionCanceledException" => {
            let reasons = v["CancellationReasons"].as_array();
            reasons.is_some_and(|reasons| {
                let codes: Vec<&str> = reasons
                    .iter()
                    .map(|r| r["Code"].as_str().unwrap_or("None"))
                    .collect();
                codes.iter().all(|c| CONTENDED.contains(c)) && codes.iter().any(|c| *c != "None")
            })
        }
        _ => false,
    }
}

/// The DynamoDB client's classifier for contention (see the module's docs).
#[derive(Debug, Clone, Default)]
pub struct ContentionClassifier;

impl ClassifyRetry for ContentionClassifier {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(response) = ctx.response() else {
            return RetryAction::NoActionIndicated;
        };
        if response.status().as_u16() != 400 {
            return RetryAction::NoActionIndicated;
        }
        match response.body().bytes() {
            Some(body) if is_contention(body) => RetryAction::throttling_error(),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "DynamoDB contention"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use super::is_contention;

    #[test]
    fn conflicts_and_contended_cancellations_are_contention() {
        assert!(is_contention(
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"x"}"#
        ));
        assert!(is_contention(
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict"}]}"#
        ));
        assert!(is_contention(
            br#"{"__type":"TransactionCanceledException","CancellationReasons":[{"Code":"ThrottlingError"}]}"#
        ));
    }

    #[test]
    fn a_request_of_its_own_fault_is_not() {
        // A failed condition is an answer, not contention: the caller reads it.
        assert!(!is_contention(
            br#"{"__type":"TransactionCanceledException","CancellationReasons":[{"Code":"ConditionalCheckFailed"},{"Code":"TransactionConflict"}]}"#
        ));
        assert!(!is_contention(
            br#"{"__type":"TransactionCanceledException","CancellationReasons":[{"Code":"None"}]}"#
        ));
        assert!(!is_contention(br#"{"__type":"ValidationException"}"#));
        assert!(!is_contention(b"not json"));
    }
}
