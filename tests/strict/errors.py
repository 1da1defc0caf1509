"""AWS error responses in each protocol's shape, so the SDKs parse them as they parse
AWS's own (code, message, HTTP status, retryability)."""

from __future__ import annotations

import json
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

STATUS_TEXT = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}

QUERY_NS = {
    "sqs": "http://queue.amazonaws.com/doc/2012-11-05/",
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "ses": "http://ses.amazonaws.com/doc/2010-12-01/",
}

# DynamoDB's namespaces for the `__type` of its errors.
_DDB_TYPES = {
    "ValidationException": "com.amazon.coral.validate#ValidationException",
    "AccessDeniedException": "com.amazon.coral.service#AccessDeniedException",
    "UnrecognizedClientException": "com.amazon.coral.service#UnrecognizedClientException",
}

# SQS (JSON, awsQueryCompatible): the query code AWS puts in `x-amzn-query-error`.
_SQS_QUERY_CODES = {
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "BatchRequestTooLong": "AWS.SimpleQueueService.BatchRequestTooLong",
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
    "AccessDeniedException": "AccessDenied",
    "InvalidClientTokenId": "InvalidClientTokenId",
}


@dataclass
class Failure(Exception):
    """A refusal as AWS would answer it."""

    status: int
    code: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def request_id() -> str:
    return str(uuid.uuid4())


def render(protocol: str, service: str, f: Failure, method: str = "POST") -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of `f` in `protocol`."""
    rid = request_id()
    status = f"{f.status} {STATUS_TEXT.get(f.status, 'Error')}"
    headers: list[tuple[str, str]] = [("x-amzn-RequestId", rid)]
    if protocol == "dynamodb":
        doc: dict[str, Any] = {"__type": _DDB_TYPES.get(f.code, f"com.amazonaws.dynamodb.v20120810#{f.code}")}
        doc["Message" if f.code == "TransactionCanceledException" else "message"] = f.message
        doc.update(f.extra)
        body = json.dumps(doc).encode()
        headers += [("Content-Type", "application/x-amz-json-1.0"), ("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF))]
    elif protocol == "sqs-json":
        qualified = "com.amazon.coral.service#" + f.code if f.code in ("AccessDeniedException", "InvalidClientTokenId") else "com.amazonaws.sqs#" + f.code
        body = json.dumps({"__type": qualified, "message": f.message, **f.extra}).encode()
        headers += [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-query-error", f"{_SQS_QUERY_CODES.get(f.code, f.code)};Sender"),
        ]
    elif protocol == "json11":  # Secrets Manager
        body = json.dumps({"__type": f.code, "Message": f.message, **f.extra}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1")]
    elif protocol == "rest-json":  # SES v2
        body = json.dumps({"message": f.message, **f.extra}).encode()
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", f.code)]
    elif protocol == "query":
        code = f.code
        if service == "sqs":
            code = _SQS_QUERY_CODES.get(code, code)
            if code == "AccessDenied" or f.code == "AccessDeniedException":
                code = "AccessDenied"
        ns = QUERY_NS.get(service, "")
        body = (
            f'<?xml version="1.0"?><ErrorResponse xmlns="{ns}"><Error><Type>Sender</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(f.message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>"
        ).encode()
        headers += [("Content-Type", "text/xml")]
    elif protocol == "s3":
        extra = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in f.extra.items())
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(f.code)}</Code><Message>{escape(f.message)}</Message>{extra}"
            f"<RequestId>{rid}</RequestId><HostId>strict</HostId></Error>"
        ).encode()
        headers += [("Content-Type", "application/xml"), ("x-amz-request-id", rid)]
        if method == "HEAD":
            headers.append(("x-amz-error-code", f.code))
            body = b""
    else:
        body = json.dumps({"__type": f.code, "message": f.message}).encode()
        headers += [("Content-Type", "application/json")]
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


# ---------------------------------------------------------------- the refusals

def access_denied(protocol: str, service: str, principal_arn: str, action: str, resource: str, why: str) -> Failure:
    """AWS's AccessDenied for an identity policy that does not allow the action
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html),
    with the strict layer's explanation appended."""
    msg = (
        f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action [strict: {why}]"
    )
    if protocol == "dynamodb":
        return Failure(400, "AccessDeniedException", msg)
    if protocol == "sqs-json":
        return Failure(403, "AccessDeniedException", msg)
    if protocol == "json11":
        return Failure(400, "AccessDeniedException", msg)
    if protocol == "rest-json":
        return Failure(403, "AccessDeniedException", msg)
    if protocol == "s3":
        return Failure(403, "AccessDenied", msg)
    if protocol == "query":
        return Failure(403, "AuthorizationError" if service == "sns" else "AccessDenied", msg)
    return Failure(403, "AccessDenied", msg)


def unknown_key(protocol: str, why: str) -> Failure:
    """What AWS answers for an access key it does not know."""
    if protocol == "dynamodb":
        return Failure(400, "UnrecognizedClientException", f"The security token included in the request is invalid. [strict: {why}]")
    if protocol == "s3":
        return Failure(403, "InvalidAccessKeyId", f"The AWS Access Key Id you provided does not exist in our records. [strict: {why}]")
    if protocol == "json11":
        return Failure(400, "UnrecognizedClientException", f"The security token included in the request is invalid. [strict: {why}]")
    if protocol == "rest-json":
        return Failure(403, "UnrecognizedClientException", f"The security token included in the request is invalid. [strict: {why}]")
    return Failure(403, "InvalidClientTokenId", f"The security token included in the request is invalid. [strict: {why}]")
