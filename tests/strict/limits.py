"""AWS's documented request limits, refused as AWS refuses them. Each check cites the
page that documents the limit."""

from __future__ import annotations

import base64
import decimal
import json
import re
from typing import Any

from . import cfn
from .errors import Failure
from .mapping import Call, _raw_headers, members, queue_from_url, table_name

ACCOUNT, REGION = cfn.ACCOUNT, cfn.REGION

# ---------------------------------------------------------------- DynamoDB
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
MAX_ITEM_BYTES = 400 * 1024  # "The maximum item size in DynamoDB is 400 KB"
MAX_HASH_KEY_BYTES = 2048
MAX_RANGE_KEY_BYTES = 1024
MAX_EXPRESSION_BYTES = 4096  # "The maximum length of any expression string is 4 KB"
MAX_SUBSTITUTION_BYTES = 2 * 1024 * 1024  # ExpressionAttributeNames + Values
MAX_BATCH_WRITE = 25
MAX_BATCH_WRITE_BYTES = 16 * 1024 * 1024
MAX_BATCH_GET = 100
MAX_TRANSACT_ITEMS = 100
MAX_TRANSACT_BYTES = 4 * 1024 * 1024
# PartiQL: 25 statements a BatchExecuteStatement, 8,192 characters a statement.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.multiplestatements.batching.html
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchStatementRequest.html
MAX_BATCH_STATEMENTS = 25
MAX_STATEMENT_CHARS = 8192
# Numbers: 38 significant digits; 1E-130 .. 9.9999999999999999999999999999999999999E+125.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number
_CTX = decimal.Context(prec=60)
NUM_MAX = decimal.Decimal("9.9999999999999999999999999999999999999E+125")
NUM_MIN = decimal.Decimal("1E-130")



def _once(seen: set, key: Any, message: str) -> None:
    """One request may name an item once: a second naming is refused with `message`."""
    if key is None:
        return
    if key in seen:
        raise validation(message)
    seen.add(key)

def validation(msg: str) -> Failure:
    return Failure(400, "ValidationException", msg)


def _digits(n: str) -> tuple[int, decimal.Decimal | None]:
    try:
        d = decimal.Decimal(n.strip())
    except (decimal.InvalidOperation, ValueError):
        return 0, None
    if not d.is_finite():
        return 0, None
    sign, digits, exp = d.as_tuple()
    s = "".join(map(str, digits)).strip("0")
    return len(s), d


def check_number(n: str) -> None:
    sig, d = _digits(n)
    if d is None:
        return  # moto answers malformed numbers itself
    if sig > 38:
        raise validation("Attempting to store more than 38 significant digits in a Number")
    if d != 0:
        mag = d.copy_abs()
        if mag > NUM_MAX:
            raise validation("Number overflow. Attempting to store a number with magnitude larger than supported range")
        if mag < NUM_MIN:
            raise validation("Number underflow. Attempting to store a number with magnitude smaller than supported range")


def number_size(n: str) -> int:
    """ "Numbers are variable length, with up to 38 significant digits. Leading and
    trailing zeroes are trimmed. The size of a number is approximately (number of UTF-8
    encoded bytes of attribute name) + (1 byte per two significant digits) + (1 byte)."
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html"""
    sig, _ = _digits(n)
    return (max(sig, 1) + 1) // 2 + 1


def _binary_len(v: Any) -> int:
    if isinstance(v, (bytes, bytearray)):
        return len(v)
    try:
        return len(base64.b64decode(v or "", validate=False))
    except ValueError:
        return len(v or "")


def av_size(av: Any) -> int:
    """An AttributeValue's size under DynamoDB's rules (same page): strings and binary by
    length, numbers as above, null and booleans 1 byte, lists and maps 3 bytes plus 1
    byte per element (maps add their keys), sets the sum of their elements."""
    if not isinstance(av, dict) or len(av) != 1:
        return 0
    (t, v), = av.items()
    if t == "S":
        return len(v.encode("utf-8"))
    if t == "N":
        return number_size(v)
    if t == "B":
        return _binary_len(v)
    if t in ("BOOL", "NULL"):
        return 1
    if t == "SS":
        return sum(len(s.encode("utf-8")) for s in v)
    if t == "NS":
        return sum(number_size(s) for s in v)
    if t == "BS":
        return sum(_binary_len(s) for s in v)
    if t == "L":
        return 3 + sum(av_size(e) + 1 for e in v)
    if t == "M":
        return 3 + sum(len(k.encode("utf-8")) + av_size(e) + 1 for k, e in v.items())
    return 0


def item_size(item: dict[str, Any]) -> int:
    return sum(len(k.encode("utf-8")) + av_size(v) for k, v in (item or {}).items())


def check_numbers(av: Any) -> None:
    if not isinstance(av, dict) or len(av) != 1:
        return
    (t, v), = av.items()
    if t == "N":
        check_number(v)
    elif t == "NS":
        for n in v:
            check_number(n)
    elif t == "L":
        for e in v:
            check_numbers(e)
    elif t == "M":
        for e in v.values():
            check_numbers(e)


def check_item_values(values: dict[str, Any] | None) -> None:
    for v in (values or {}).values():
        check_numbers(v)


# -- moto's view of a table (key schema, items)


def moto_table(name: str) -> Any:
    try:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[ACCOUNT][REGION].tables.get(table_name(name))
    except Exception:  # noqa: BLE001
        return None


def key_schema(name: str) -> tuple[str, str | None] | None:
    t = moto_table(name)
    if t is None:
        return None
    return t.hash_key_attr, t.range_key_attr


def key_of(name: str, item: dict[str, Any]) -> tuple | None:
    """A hashable identity of an item (table and key attributes)."""
    ks = key_schema(name)
    if ks is None:
        return None
    h, r = ks
    hv = item.get(h)
    rv = item.get(r) if r else None
    return (table_name(name), json.dumps(hv, sort_keys=True), json.dumps(rv, sort_keys=True) if r else None)


def check_key_sizes(name: str, item: dict[str, Any]) -> None:
    """Partition key values up to 2048 bytes, sort keys up to 1024 bytes."""
    ks = key_schema(name)
    if ks is None:
        return
    h, r = ks
    if h in item and av_size(item[h]) > MAX_HASH_KEY_BYTES:
        raise validation("One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes")
    if r and r in item and av_size(item[r]) > MAX_RANGE_KEY_BYTES:
        raise validation("One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes")


def check_put_item(name: str, item: dict[str, Any]) -> None:
    check_item_values(item)
    check_key_sizes(name, item)
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise validation(f"Item size has exceeded the maximum allowed size [strict: {size} bytes by DynamoDB's rules, limit {MAX_ITEM_BYTES}]")


_EXPRESSIONS = ("UpdateExpression", "ConditionExpression", "KeyConditionExpression", "FilterExpression", "ProjectionExpression")
_NAME_TOKEN = re.compile(r"#[A-Za-z0-9_]+")
_VALUE_TOKEN = re.compile(r":[A-Za-z0-9_]+")


def check_expressions(p: dict[str, Any]) -> None:
    """Each expression at most 4 KB; every substitution defined and used.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-expression-parameters
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ExpressionAttributeNames.html"""
    texts = []
    for name in _EXPRESSIONS:
        text = p.get(name)
        if text is None:
            continue
        size = len(text.encode("utf-8"))
        if size > MAX_EXPRESSION_BYTES:
            raise validation(f"Invalid {name}: Expression size has exceeded the maximum allowed size; expression size: {size}")
        texts.append(text)
    names = p.get("ExpressionAttributeNames") or {}
    values = p.get("ExpressionAttributeValues") or {}
    check_item_values(values)
    if names or values:
        subst = sum(len(k.encode()) + len(str(v).encode()) for k, v in names.items()) + sum(
            len(k.encode()) + av_size(v) for k, v in values.items())
        if subst > MAX_SUBSTITUTION_BYTES:
            raise validation("ExpressionAttributeNames and ExpressionAttributeValues exceed the 2 MB limit")
    joined = " ".join(texts)
    used_names = set(_NAME_TOKEN.findall(joined))
    used_values = set(_VALUE_TOKEN.findall(joined))
    for n in sorted(used_names):
        if n not in names:
            raise validation(f"Invalid {_first_with(p, n)}: An expression attribute name used in the document path is not defined; attribute name: {n}")
    for v in sorted(used_values):
        if v not in values:
            raise validation(f"Invalid {_first_with(p, v)}: An expression attribute value used in expression is not defined; attribute value: {v}")
    unused_n = sorted(set(names) - used_names)
    if unused_n:
        raise validation("Value provided in ExpressionAttributeNames unused in expressions: keys: {" + ", ".join(unused_n) + "}")
    unused_v = sorted(set(values) - used_values)
    if unused_v:
        raise validation("Value provided in ExpressionAttributeValues unused in expressions: keys: {" + ", ".join(unused_v) + "}")


def _first_with(p: dict[str, Any], token: str) -> str:
    for name in _EXPRESSIONS:
        if token in (p.get(name) or ""):
            return name
    return "Expression"


_INSERT = re.compile(r"\s*INSERT\s+INTO\s+\"((?:[^\"]|\"\")+)\"\s+VALUE\s+\{(.*)\}\s*$", re.IGNORECASE | re.DOTALL)
_INSERT_PAIR = re.compile(r"\s*'((?:[^']|'')*)'\s*:\s*\?\s*(,|$)", re.DOTALL)


def partiql_insert(statement: str, parameters: list[Any]) -> tuple[str, dict[str, Any]]:
    """The table and item of `INSERT INTO "t" VALUE {'a': ?, ...}`, its values all
    parameters (the one shape of INSERT the strict layer emulates: moto's own PartiQL
    replaces an existing item and takes no parameters)."""
    m = _INSERT.match(statement)
    if not m:
        raise validation(f"Statement wasn't well formed [strict: reads only INSERT INTO \"t\" VALUE {{'a': ?, ...}}: {statement[:80]!r}]")
    table = m.group(1).replace('""', '"')
    body, at, names = m.group(2), 0, []
    while at < len(body.rstrip()):
        pair = _INSERT_PAIR.match(body, at)
        if not pair:
            raise validation(f"Statement wasn't well formed [strict: VALUE must pair each quoted name with ?, at {body[at:at + 40]!r}]")
        names.append(pair.group(1).replace("''", "'"))
        at = pair.end()
    if len(names) != len(parameters):
        raise validation(f"Number of parameters in request and statement don't match [strict: {len(names)} ? and {len(parameters)} parameters]")
    item: dict[str, Any] = {}
    for name, value in zip(names, parameters):
        if name in item:
            raise validation(f"Duplicate attribute name in the VALUE map: {name}")
        item[name] = value
    return table, item


def check_batch_statements(p: dict[str, Any]) -> None:
    statements = p.get("Statements") or []
    if len(statements) > MAX_BATCH_STATEMENTS:
        raise validation(
            "1 validation error detected: Value at 'statements' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_BATCH_STATEMENTS} [strict: {len(statements)} statements]")
    for i, s in enumerate(statements, 1):
        n = len(s.get("Statement") or "")
        if n > MAX_STATEMENT_CHARS:
            raise validation(
                f"1 validation error detected: Value at 'statements.{i}.member.statement' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_STATEMENT_CHARS} [strict: {n} characters]")


def check_dynamodb(call: Call) -> None:
    p, op = call.params, call.operation
    if op in ("PutItem",):
        check_put_item(p.get("TableName", ""), p.get("Item") or {})
        check_expressions(p)
    elif op in ("GetItem", "DeleteItem", "UpdateItem"):
        check_item_values(p.get("Key"))
        check_key_sizes(p.get("TableName", ""), p.get("Key") or {})
        check_expressions(p)
    elif op in ("Query", "Scan"):
        check_expressions(p)
        check_item_values(p.get("ExclusiveStartKey"))
    elif op == "BatchWriteItem":
        requests = [(t, r) for t, rs in (p.get("RequestItems") or {}).items() for r in rs]
        if len(requests) > MAX_BATCH_WRITE:
            # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html
            raise validation(f"Too many items requested for the BatchWriteItem call [strict: {len(requests)} requests, at most {MAX_BATCH_WRITE}]")
        total = 0
        seen = set()
        for t, r in requests:
            if "PutRequest" in r:
                item = (r["PutRequest"] or {}).get("Item") or {}
                check_put_item(t, item)
                total += item_size(item)
            else:
                item = (r.get("DeleteRequest") or {}).get("Key") or {}
                check_item_values(item)
                check_key_sizes(t, item)
                total += item_size(item)
            _once(seen, key_of(t, item), "Provided list of item keys contains duplicates")
        if total > MAX_BATCH_WRITE_BYTES:
            raise validation(f"Item size to update has exceeded the maximum allowed size [strict: BatchWriteItem of {total} bytes, at most 16 MB]")
    elif op == "BatchExecuteStatement":
        check_batch_statements(p)
    elif op == "BatchGetItem":
        n = sum(len((v or {}).get("Keys") or []) for v in (p.get("RequestItems") or {}).values())
        if n > MAX_BATCH_GET:
            # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
            raise validation(f"Too many items requested for the BatchGetItem call [strict: {n} keys, at most {MAX_BATCH_GET}]")
        for t, v in (p.get("RequestItems") or {}).items():
            seen = set()
            for key in (v or {}).get("Keys") or []:
                check_item_values(key)
                _once(seen, key_of(t, key), "Provided list of item keys contains duplicates")
            if (v or {}).get("ProjectionExpression") and len(v["ProjectionExpression"].encode()) > MAX_EXPRESSION_BYTES:
                raise validation("Invalid ProjectionExpression: Expression size has exceeded the maximum allowed size")
    elif op in ("TransactWriteItems", "TransactGetItems"):
        items = p.get("TransactItems") or []
        if len(items) > MAX_TRANSACT_ITEMS:
            # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
            raise validation(
                f"1 validation error detected: Value at 'transactItems' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_TRANSACT_ITEMS} [strict: {len(items)} actions]")
        seen = set()
        total = 0
        for it in items:
            (kind, action), = it.items() if len(it) == 1 else (next(iter(it.items())),)
            t = action.get("TableName", "")
            key = action.get("Item") if kind == "Put" else action.get("Key")
            key = key or {}
            if kind == "Put":
                check_put_item(t, key)
            else:
                check_item_values(key)
                check_key_sizes(t, key)
            check_expressions(action)
            total += item_size(key) + sum(av_size(v) for v in (action.get("ExpressionAttributeValues") or {}).values())
            _once(seen, key_of(t, key), "Transaction request cannot include multiple operations on one item")
        if total > MAX_TRANSACT_BYTES:
            raise validation(f"Transaction request size exceeds the maximum allowed size of 4 MB [strict: {total} bytes]")


# ---------------------------------------------------------------- SQS
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
# A message's body and attributes count together against the queue's
# MaximumMessageSize; a batch's messages together against the same payload limit.
# Since August 2025 AWS accepts up to 1 MiB (1,048,576 bytes), and that is the default
# of a queue created since; a queue created before keeps 256 KiB (262,144 bytes), the
# limit for a decade. The strict layer holds messages and batches to 262,144 bytes (or
# the queue's own MaximumMessageSize when lower), so the code works on either;
# S3IMPORTS_STRICT_SQS_MAX_BYTES raises it.
import os as _os

DEFAULT_MAX_MESSAGE = int(_os.environ.get("S3IMPORTS_STRICT_SQS_MAX_BYTES", "262144"))
MAX_BATCH_PAYLOAD = DEFAULT_MAX_MESSAGE
MAX_BATCH_ENTRIES = 10
MAX_DELAY = 900
MAX_VISIBILITY = 43_200  # 12 hours
MAX_ATTRIBUTES = 10


def sqs_failure(code: str, msg: str) -> Failure:
    return Failure(400, code, msg)


def queue_max_size(url_or_name: str, by_url: bool) -> int:
    try:
        from moto.sqs.models import sqs_backends

        account, name = queue_from_url(url_or_name) if by_url else (ACCOUNT, url_or_name)
        q = sqs_backends[account][REGION].queues.get(name)
        if q is not None and getattr(q, "maximum_message_size", None):
            return min(int(q.maximum_message_size), DEFAULT_MAX_MESSAGE)
    except Exception:  # noqa: BLE001
        pass
    return DEFAULT_MAX_MESSAGE


def message_size(body: str, attributes: dict[str, Any] | None) -> int:
    size = len((body or "").encode("utf-8"))
    for name, a in (attributes or {}).items():
        a = a or {}
        size += len(name.encode()) + len(str(a.get("DataType", "")).encode())
        if a.get("StringValue") is not None:
            size += len(str(a["StringValue"]).encode("utf-8"))
        if a.get("BinaryValue") is not None:
            v = a["BinaryValue"]
            size += len(v) if isinstance(v, (bytes, bytearray)) else len(base64.b64decode(v or ""))
    return size


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _check_delay(v: Any) -> None:
    d = _int(v)
    if d is not None and not 0 <= d <= MAX_DELAY:
        raise sqs_failure("InvalidParameterValue", f"Value {d} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= {MAX_DELAY}.")


def _check_visibility(v: Any) -> None:
    d = _int(v)
    if d is not None and not 0 <= d <= MAX_VISIBILITY:
        raise sqs_failure("InvalidParameterValue", f"Value {d} for parameter VisibilityTimeout is invalid. Reason: VisibilityTimeout must be an integer between 0 and {MAX_VISIBILITY}.")


def _check_message(body: str, attrs: dict[str, Any] | None, limit: int) -> int:
    if attrs and len(attrs) > MAX_ATTRIBUTES:
        raise sqs_failure("InvalidParameterValue", f"Number of message attributes [{len(attrs)}] exceeds the allowed maximum [{MAX_ATTRIBUTES}].")
    size = message_size(body, attrs)
    if size > limit:
        raise sqs_failure("InvalidParameterValue", f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes. [strict: body and attributes are {size} bytes]")
    return size


def check_sqs(call: Call) -> None:
    p, op = call.params, call.operation
    url = p.get("QueueUrl", "")
    if op == "SendMessage":
        _check_delay(p.get("DelaySeconds"))
        _check_message(p.get("MessageBody", ""), p.get("MessageAttributes"), queue_max_size(url, True))
    elif op in ("SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch"):
        entries = p.get("Entries") or []
        if not entries:
            raise sqs_failure("EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry in the request.")
        if len(entries) > MAX_BATCH_ENTRIES:
            raise sqs_failure("TooManyEntriesInBatchRequest", f"Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {len(entries)}.")
        ids = [e.get("Id") for e in entries]
        if len(set(ids)) != len(ids):
            raise sqs_failure("BatchEntryIdsNotDistinct", "Id must be distinct among the batch entries.")
        if op == "SendMessageBatch":
            limit = queue_max_size(url, True)
            total = 0
            for e in entries:
                _check_delay(e.get("DelaySeconds"))
                total += _check_message(e.get("MessageBody", ""), e.get("MessageAttributes"), limit)
            if total > MAX_BATCH_PAYLOAD:
                raise sqs_failure("BatchRequestTooLong", f"Batch requests cannot be longer than {MAX_BATCH_PAYLOAD} bytes. You have sent {total} bytes.")
        elif op == "ChangeMessageVisibilityBatch":
            for e in entries:
                _check_visibility(e.get("VisibilityTimeout"))
    elif op == "ChangeMessageVisibility":
        _check_visibility(p.get("VisibilityTimeout"))
    elif op == "ReceiveMessage":
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
        n = _int(p.get("MaxNumberOfMessages"))
        if n is not None and not 1 <= n <= 10:
            raise sqs_failure("InvalidParameterValue", f"Value {n} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.")
        w = _int(p.get("WaitTimeSeconds"))
        if w is not None and not 0 <= w <= 20:
            raise sqs_failure("InvalidParameterValue", f"Value {w} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.")
        _check_visibility(p.get("VisibilityTimeout"))


# ---------------------------------------------------------------- SES
# "The message may not include more than 50 recipients, across the To:, CC: and BCC:
# fields." https://docs.aws.amazon.com/ses/latest/dg/quotas.html
# https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html
MAX_RECIPIENTS = 50
MAX_MESSAGE_BYTES = 40 * 1024 * 1024  # after base64 encoding


def _raw_recipients(data: str) -> int:
    h = _raw_headers(data)
    if h is None:
        return 0
    import email.utils

    return len(email.utils.getaddresses(h.get_all("To", []) + h.get_all("Cc", []) + h.get_all("Bcc", [])))


def check_ses(call: Call) -> None:
    p = call.params
    if call.service == "sesv2" and call.operation == "SendEmail":
        d = p.get("Destination") or {}
        n = sum(len(d.get(k) or []) for k in ("ToAddresses", "CcAddresses", "BccAddresses"))
        raw = ((p.get("Content") or {}).get("Raw") or {}).get("Data")
        if not d and raw:
            n = _raw_recipients(raw)
        if n > MAX_RECIPIENTS:
            raise Failure(400, "BadRequestException", f"Recipient count exceeds {MAX_RECIPIENTS}. [strict: {n} recipients]")
        if raw and len(raw) > MAX_MESSAGE_BYTES:
            raise Failure(400, "MessageRejected", f"Message too long: {len(raw)} bytes after base64 encoding; SES accepts at most 40 MB.")
    elif call.service == "ses" and call.operation in ("SendEmail", "SendRawEmail", "SendTemplatedEmail"):
        d = p.get("Destination") or {}
        n = sum(len(members(d.get(k))) for k in ("ToAddresses", "CcAddresses", "BccAddresses"))
        if call.operation == "SendRawEmail":
            n = len(members(p.get("Destinations"))) or _raw_recipients(((p.get("RawMessage") or {}).get("Data")) or "")
        if n > MAX_RECIPIENTS:
            raise Failure(400, "InvalidParameterValue", f"Recipient count exceeds {MAX_RECIPIENTS}. [strict: {n} recipients]")


# ---------------------------------------------------------------- SNS
# https://docs.aws.amazon.com/sns/latest/api/API_Publish.html: Subject "must be ASCII
# text that begins with a letter, number, or punctuation mark; must not include line
# breaks or control characters; and must be less than 100 characters long"; a message
# (with its attributes) at most 256 KB (262,144 bytes).
MAX_SNS_BYTES = 262_144


def check_sns(call: Call) -> None:
    if call.operation != "Publish":
        return
    p = call.params
    subject = p.get("Subject")
    if subject is not None:
        bad = (
            len(subject) >= 100
            or not subject
            or any(ord(c) < 32 or ord(c) == 127 for c in subject)
            or not subject.isascii()
            or subject[0].isspace()
        )
        if bad:
            raise Failure(400, "InvalidParameter", "Invalid parameter: Subject")
    size = len((p.get("Message") or "").encode("utf-8"))
    for a in members((p.get("MessageAttributes") or {})):
        if isinstance(a, dict):
            v = a.get("Value") or {}
            size += len(str(a.get("Name", "")).encode()) + len(str(v.get("DataType", "")).encode())
            size += len(str(v.get("StringValue") or v.get("BinaryValue") or "").encode())
    if size > MAX_SNS_BYTES:
        raise Failure(400, "InvalidParameter", f"Invalid parameter: Message too long [strict: {size} bytes, at most {MAX_SNS_BYTES}]")


# ---------------------------------------------------------------- S3
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html (keys up to 1,024 bytes)
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html ("You can store
#   individual objects of up to 5 TB ... you can create a copy of your object up to 5 GB
#   in size in a single atomic action using this API")
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html (one PUT: 5 GB)
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html (parts 1..10,000, 5 GB each)
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingMetadata.html (user metadata 2 KB)
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-tagging.html (10 tags)
MAX_KEY_BYTES = 1024
MAX_COPY_BYTES = 5 * 1024 ** 3
MAX_PUT_BYTES = 5 * 1024 ** 3
MAX_PARTS = 10_000
MAX_METADATA_BYTES = 2048
MAX_OBJECT_TAGS = 10


def object_size(bucket: str, key: str, overrides: dict[tuple[str, str], int]) -> int | None:
    if (bucket, key) in overrides:
        return overrides[(bucket, key)]
    try:
        from moto.s3.models import s3_backends

        entry = s3_backends.bucket_accounts.get(bucket)
        if not entry:
            return None
        b = s3_backends[entry[1]][entry[0]].buckets.get(bucket)
        k = b.keys.get(key) if b else None
        return int(k.size) if k is not None and hasattr(k, "size") else None
    except Exception:  # noqa: BLE001
        return None


def check_s3(call: Call, overrides: dict[tuple[str, str], int], read_body) -> None:
    op, h = call.operation, call.headers
    if op in ("PutObject", "CopyObject", "CreateMultipartUpload") and len(call.key.encode("utf-8")) > MAX_KEY_BYTES:
        raise Failure(400, "KeyTooLongError", "Your key is too long", {"MaxSizeAllowed": MAX_KEY_BYTES, "Size": len(call.key.encode("utf-8"))})
    if op in ("PutObject", "CopyObject", "CreateMultipartUpload"):
        meta = sum(len(k[len("x-amz-meta-"):].encode()) + len(v.encode()) for k, v in h.items() if k.startswith("x-amz-meta-"))
        if meta > MAX_METADATA_BYTES:
            raise Failure(400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.", {"MaxSizeAllowed": MAX_METADATA_BYTES, "Size": meta})
    if op in ("PutObject", "UploadPart"):
        size = _int(h.get("x-amz-decoded-content-length") or h.get("content-length"))
        if size is not None and size > MAX_PUT_BYTES:
            raise Failure(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", {"ProposedSize": size, "MaxSizeAllowed": MAX_PUT_BYTES})
    if op in ("UploadPart", "UploadPartCopy"):
        n = _int(call.query.get("partNumber"))
        if n is not None and not 1 <= n <= MAX_PARTS:
            raise Failure(400, "InvalidArgument", f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive")
    if op == "CopyObject":
        src = call.params.get("CopySource") or {}
        size = object_size(src.get("Bucket", ""), src.get("Key", ""), overrides)
        if size is not None and size > MAX_COPY_BYTES:
            raise Failure(400, "InvalidRequest", f"The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_BYTES}")
    if op == "PutObjectTagging":
        body = read_body() or b""
        n = len(re.findall(rb"<Tag>", body))
        if n > MAX_OBJECT_TAGS:
            raise Failure(400, "BadRequest", "Object tags cannot be greater than 10")
    if op in ("PutObject", "CreateMultipartUpload", "CopyObject") and h.get("x-amz-tagging"):
        n = len([t for t in h["x-amz-tagging"].split("&") if t])
        if n > MAX_OBJECT_TAGS:
            raise Failure(400, "BadRequest", "Object tags cannot be greater than 10")


def check(call: Call, overrides: dict[tuple[str, str], int], read_body) -> None:
    if call.service == "dynamodb":
        check_dynamodb(call)
    elif call.service == "sqs":
        check_sqs(call)
    elif call.service in ("ses", "sesv2"):
        check_ses(call)
    elif call.service == "sns":
        check_sns(call)
    elif call.service == "s3":
        check_s3(call, overrides, read_body)
