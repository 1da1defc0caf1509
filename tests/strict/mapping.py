"""What an AWS request is, and what IAM authorizes for it: the (action, resource,
condition context) pairs AWS checks, by service and operation.

Service authorization references (actions, resources, condition keys):
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonses.html
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html
"""

from __future__ import annotations

import base64
import email.parser
import email.utils
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from . import cfn
from .policy import Access

ACCOUNT, REGION, PARTITION = cfn.ACCOUNT, cfn.REGION, cfn.PARTITION


@dataclass
class Call:
    service: str  # dynamodb, sqs, s3, sesv2, ses, sns, secretsmanager, sts, or the scope's
    protocol: str  # dynamodb, sqs-json, query, s3, rest-json, json11
    operation: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    accesses: list[Access] = field(default_factory=list)
    unsupported: str = ""
    # S3
    bucket: str = ""
    key: str = ""
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- who and which service

_CRED = re.compile(r"Credential=([^,\s]+)")


def credential_scope(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """(access key id, region, service) from SigV4's Authorization header or a presigned
    URL's X-Amz-Credential; None when the request is not signed."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    cred = None
    m = _CRED.search(auth)
    if m:
        cred = m.group(1)
    else:
        for k, v in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
            if k == "X-Amz-Credential":
                cred = v
                break
    if not cred:
        # SigV2 (S3 only): `Authorization: AWS AKID:signature` or a presigned
        # `?AWSAccessKeyId=`.
        m2 = re.match(r"^AWS ([^:\s]+):", auth)
        if m2:
            return m2.group(1), "", "s3"
        for k, v in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
            if k == "AWSAccessKeyId":
                return v, "", "s3"
        return None
    parts = cred.split("/")
    if len(parts) == 5:  # AKID/date/region/service/aws4_request
        return parts[0], parts[2], parts[3]
    if len(parts) == 4:  # SigV4a: AKID/date/service/aws4_request
        return parts[0], "*", parts[2]
    return parts[0], "", ""


# ---------------------------------------------------------------- helpers


def _json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        v = json.loads(body)
        return v if isinstance(v, dict) else {}
    except ValueError:
        return {}


def nest(flat: list[tuple[str, str]]) -> dict[str, Any]:
    """The query protocol's `A.B.1.C=v` pairs as nested maps and lists."""
    root: dict[str, Any] = {}
    for k, v in flat:
        cur = root
        parts = k.split(".")
        for i, p in enumerate(parts):
            if i == len(parts) - 1:
                cur[p] = v
            else:
                nxt = cur.get(p)
                if not isinstance(nxt, dict):
                    nxt = {}
                    cur[p] = nxt
                cur = nxt

    def listify(x: Any) -> Any:
        if isinstance(x, dict):
            x = {k: listify(v) for k, v in x.items()}
            if x and all(k.isdigit() for k in x):
                return [x[k] for k in sorted(x, key=int)]
        return x

    return listify(root)


def members(x: Any) -> list:
    """A query list (`X.member.N` or `X.N`) as a list."""
    if x is None:
        return []
    if isinstance(x, dict):
        for k in ("member", "entry"):
            if k in x:
                return members(x[k])
        return [x]
    return x if isinstance(x, list) else [x]


def table_name(v: str) -> str:
    return v.split(":table/", 1)[1].split("/")[0] if ":table/" in v else v


def table_arn(v: str) -> str:
    return v if v.startswith("arn:") else cfn.table_arn(v)


def queue_from_url(url: str) -> tuple[str, str]:
    """(account, name) of a queue URL (`https://sqs.../123456789012/name` or moto's)."""
    path = re.sub(r"^[a-z]+://[^/]+", "", url or "").strip("/")
    segs = [s for s in path.split("/") if s]
    name = segs[-1] if segs else ""
    account = segs[-2] if len(segs) >= 2 and segs[-2].isdigit() else ACCOUNT
    return account, name


def address_of(text: str) -> str:
    return email.utils.parseaddr(text or "")[1] or (text or "").strip()


def ses_identities(address: str) -> list[str]:
    """The identities SES authorizes a send from `address` against: the address, or
    the domain that verifies it."""
    base = f"arn:{PARTITION}:ses:{REGION}:{ACCOUNT}:identity/"
    out = [base + address]
    if "@" in address:
        out.append(base + address.split("@", 1)[1])
    return out


GLOBAL_CONTEXT = {
    "aws:RequestedRegion": REGION,
    "aws:PrincipalAccount": ACCOUNT,
    "aws:SecureTransport": "true",  # Lambda reaches AWS over TLS
}


def _access(action: str, resource: str | list[str], **context: Any) -> Access:
    ctx = dict(GLOBAL_CONTEXT)
    ctx.update({k: v for k, v in context.items() if v is not None})
    return Access(action, resource if isinstance(resource, list) else [resource], ctx)


# ---------------------------------------------------------------- DynamoDB

def partiql_access(statement: str) -> Access | None:
    s = statement.strip()
    verb = s.split(None, 1)[0].upper() if s else ""
    m = re.search(r"\b(?:FROM|INTO)\s+\"?([A-Za-z0-9_.-]+)\"?(?:\.\"([A-Za-z0-9_.-]+)\")?", s, re.IGNORECASE)
    if verb == "UPDATE":
        m = re.match(r"\s*UPDATE\s+\"?([A-Za-z0-9_.-]+)\"?", s, re.IGNORECASE)
    if not m:
        return None
    table = m.group(1)
    index = m.group(2) if m.lastindex and m.lastindex >= 2 else None
    action = {"SELECT": "PartiQLSelect", "INSERT": "PartiQLInsert", "UPDATE": "PartiQLUpdate", "DELETE": "PartiQLDelete"}.get(verb)
    if not action:
        return None
    res = cfn.table_arn(table) + (f"/index/{index}" if index else "")
    return _access(f"dynamodb:{action}", res)


def dynamodb_call(environ: dict[str, Any], body: bytes) -> Call:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    op = target.split(".", 1)[1] if "." in target else target
    p = _json(body)
    call = Call("dynamodb", "dynamodb", op, environ.get("REQUEST_METHOD", "POST"), p)
    acc = call.accesses
    single = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "DescribeTable", "ConditionCheckItem",
              "DescribeTimeToLive", "UpdateTimeToLive", "DescribeContinuousBackups", "UpdateTable",
              "DeleteTable", "CreateTable", "DescribeKinesisStreamingDestination"}
    if op in ("Query", "Scan"):
        res = table_arn(p.get("TableName", ""))
        if p.get("IndexName"):
            res += f"/index/{p['IndexName']}"
        acc.append(_access(f"dynamodb:{op}", res, **{"dynamodb:Select": p.get("Select")}))
    elif op in single:
        acc.append(_access(f"dynamodb:{op}", table_arn(p.get("TableName", "")),
                           **{"dynamodb:ReturnValues": p.get("ReturnValues")}))
    elif op in ("BatchGetItem", "BatchWriteItem"):
        for t in (p.get("RequestItems") or {}):
            acc.append(_access(f"dynamodb:{op}", table_arn(t)))
    elif op == "TransactWriteItems":
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
        for item in p.get("TransactItems") or []:
            for k, a in kinds.items():
                if k in item:
                    acc.append(_access(f"dynamodb:{a}", table_arn(item[k].get("TableName", ""))))
    elif op == "TransactGetItems":
        for item in p.get("TransactItems") or []:
            if "Get" in item:
                acc.append(_access("dynamodb:GetItem", table_arn(item["Get"].get("TableName", ""))))
    elif op in ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"):
        statements = [p.get("Statement", "")] if op == "ExecuteStatement" else [
            s.get("Statement", "") for s in (p.get("Statements") or p.get("TransactStatements") or [])]
        for s in statements:
            a = partiql_access(s)
            if a is None:
                call.unsupported = f"PartiQL statement the strict layer cannot read: {s[:80]!r}"
                break
            acc.append(a)
    elif op in ("ListTables", "DescribeLimits", "DescribeEndpoints", "ListBackups", "ListGlobalTables"):
        acc.append(_access(f"dynamodb:{op}", "*"))
    elif op in ("TagResource", "UntagResource", "ListTagsOfResource"):
        acc.append(_access(f"dynamodb:{op}", p.get("ResourceArn", "*")))
    else:
        call.unsupported = f"DynamoDB {op} is not mapped to IAM actions by the strict layer"
    return call


# ---------------------------------------------------------------- SQS

_SQS_BATCH_KEYS = ("SendMessageBatchRequestEntry", "DeleteMessageBatchRequestEntry", "ChangeMessageVisibilityBatchRequestEntry")


def _sqs_query_params(flat: list[tuple[str, str]]) -> dict[str, Any]:
    n = nest(flat)

    def attrs(x: Any) -> dict[str, Any]:
        out = {}
        for a in members(x):
            if isinstance(a, dict) and "Name" in a:
                out[a["Name"]] = a.get("Value") or {}
        return out

    for k in _SQS_BATCH_KEYS:
        if k in n:
            entries = []
            for e in members(n.pop(k)):
                if isinstance(e, dict):
                    if "MessageAttribute" in e:
                        e["MessageAttributes"] = attrs(e.pop("MessageAttribute"))
                    entries.append(e)
            n["Entries"] = entries
    if "MessageAttribute" in n:
        n["MessageAttributes"] = attrs(n.pop("MessageAttribute"))
    if "MessageSystemAttribute" in n:
        n["MessageSystemAttributes"] = attrs(n.pop("MessageSystemAttribute"))
    return n


def sqs_call(environ: dict[str, Any], body: bytes) -> Call:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("AmazonSQS."):
        op, p, protocol = target.split(".", 1)[1], _json(body), "sqs-json"
    else:
        flat = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        flat += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        p = _sqs_query_params(flat)
        op, protocol = p.get("Action", ""), "query"
        if not p.get("QueueUrl"):
            path = environ.get("PATH_INFO", "")
            if path.strip("/"):
                p["QueueUrl"] = path  # the query protocol may name the queue by path
    call = Call("sqs", protocol, op, environ.get("REQUEST_METHOD", "POST"), p)
    if p.get("QueueUrl"):
        account, name = queue_from_url(p["QueueUrl"])
    else:
        account, name = p.get("QueueOwnerAWSAccountId") or ACCOUNT, p.get("QueueName", "")
    arn = cfn.queue_arn(name, account) if name else "*"
    actions = {
        "SendMessage": "SendMessage", "SendMessageBatch": "SendMessage",
        "ReceiveMessage": "ReceiveMessage",
        "DeleteMessage": "DeleteMessage", "DeleteMessageBatch": "DeleteMessage",
        "ChangeMessageVisibility": "ChangeMessageVisibility", "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
        "GetQueueUrl": "GetQueueUrl", "GetQueueAttributes": "GetQueueAttributes",
        "SetQueueAttributes": "SetQueueAttributes", "PurgeQueue": "PurgeQueue",
        "CreateQueue": "CreateQueue", "DeleteQueue": "DeleteQueue",
        "ListQueueTags": "ListQueueTags", "TagQueue": "TagQueue", "UntagQueue": "UntagQueue",
        "ListDeadLetterSourceQueues": "ListDeadLetterSourceQueues",
    }
    if op in actions:
        call.accesses.append(_access(f"sqs:{actions[op]}", arn))
    elif op == "ListQueues":
        call.accesses.append(_access("sqs:ListQueues", "*"))
    else:
        call.unsupported = f"SQS {op} is not mapped to IAM actions by the strict layer"
    return call


# ---------------------------------------------------------------- S3


def s3_bucket_account(bucket: str) -> str:
    """The bucket owner's account (moto's record of it), for `s3:ResourceAccount`; a
    bucket moto does not know is taken as this account's (moto then answers NoSuchBucket)."""
    try:
        from moto.s3.models import s3_backends

        entry = s3_backends.bucket_accounts.get(bucket)
        if entry:
            return entry[1]
    except Exception:  # noqa: BLE001 - outside the moto server (unit tests)
        pass
    return ACCOUNT


def _s3_path(environ: dict[str, Any]) -> tuple[str, str]:
    raw = environ.get("PATH_INFO", "")
    try:
        path = raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        path = raw
    host = environ.get("HTTP_HOST", "").split(":")[0]
    m = re.match(r"^(?P<b>.+?)\.(?:s3[.-][a-z0-9.-]*amazonaws\.com|s3\.amazonaws\.com|localhost)$", host)
    if m and not re.match(r"^\d+\.\d+\.\d+\.\d+$", host):
        return m.group("b"), path.lstrip("/")
    path = path.lstrip("/")
    if "/" in path:
        b, k = path.split("/", 1)
        return b, k
    return path, ""


_S3_BUCKET_SUB = {
    # subresource: (GET action, PUT action, DELETE action)
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "notification": ("GetBucketNotification", "PutBucketNotification", None),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "publicAccessBlock": ("GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock", "PutBucketPublicAccessBlock"),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls", "PutBucketOwnershipControls"),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "location": ("GetBucketLocation", None, None),
    "uploads": ("ListBucketMultipartUploads", None, None),
    "versions": ("ListBucketVersions", None, None),
    "object-lock": ("GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", None),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "accelerate": ("GetAccelerateConfiguration", "PutAccelerateConfiguration", None),
    "requestPayment": ("GetBucketRequestPayment", "PutBucketRequestPayment", None),
}


def s3_call(environ: dict[str, Any], body_reader) -> Call:
    method = environ.get("REQUEST_METHOD", "GET")
    bucket, key = _s3_path(environ)
    q = {k: v for k, v in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
         # x-id: the Rust SDK names the operation in the query (`?x-id=GetObject`).
         if not k.startswith("X-Amz-") and k not in ("AWSAccessKeyId", "Signature", "Expires", "x-id")}
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = environ["CONTENT_LENGTH"]
    call = Call("s3", "s3", "", method, {}, bucket=bucket, key=key, query=q, headers=headers)
    acc = call.accesses
    account = s3_bucket_account(bucket) if bucket else ACCOUNT
    ctx = {"s3:ResourceAccount": account}
    obj = cfn.bucket_arn(bucket) + "/" + key
    barn = cfn.bucket_arn(bucket)

    def add(action: str, resource: str, **extra: Any) -> None:
        acc.append(_access(f"s3:{action}", resource, **{**ctx, **extra}))

    if not bucket:
        call.operation = "ListBuckets"
        add("ListAllMyBuckets", "*")
        return call
    if not key:
        sub = next((s for s in q if s in _S3_BUCKET_SUB), None)
        if method in ("GET", "HEAD") and sub is None:
            call.operation = "HeadBucket" if method == "HEAD" else "ListObjects"
            add("ListBucket", barn, **{"s3:prefix": q.get("prefix"), "s3:delimiter": q.get("delimiter")})
        elif method == "PUT" and not q:
            call.operation = "CreateBucket"
            add("CreateBucket", barn)
        elif method == "DELETE" and not q:
            call.operation = "DeleteBucket"
            add("DeleteBucket", barn)
        elif method == "POST" and "delete" in q:
            call.operation = "DeleteObjects"
            body = body_reader()
            keys = re.findall(rb"<Key>(.*?)</Key>", body or b"", re.DOTALL)
            from xml.sax.saxutils import unescape

            for k in keys:
                add("DeleteObject", cfn.bucket_arn(bucket) + "/" + unescape(k.decode("utf-8")))
        elif sub is not None:
            get, put, delete = _S3_BUCKET_SUB[sub]
            action = {"GET": get, "HEAD": get, "PUT": put, "DELETE": delete}.get(method)
            if action:
                call.operation = action
                add(action, barn)
            else:
                call.unsupported = f"S3 {method} ?{sub} on a bucket is not mapped by the strict layer"
        else:
            call.unsupported = f"S3 {method} on a bucket with {sorted(q)} is not mapped by the strict layer"
        return call
    # objects
    version = q.get("versionId")
    if method in ("GET", "HEAD"):
        if "tagging" in q:
            call.operation = "GetObjectTagging"
            add("GetObjectVersionTagging" if version else "GetObjectTagging", obj)
        elif "uploadId" in q:
            call.operation = "ListParts"
            add("ListMultipartUploadParts", obj)
        elif "acl" in q:
            call.operation = "GetObjectAcl"
            add("GetObjectVersionAcl" if version else "GetObjectAcl", obj)
        elif "attributes" in q:
            call.operation = "GetObjectAttributes"
            add("GetObjectVersionAttributes" if version else "GetObjectAttributes", obj)
        elif "retention" in q or "legal-hold" in q:
            call.operation = "GetObjectRetention"
            add("GetObjectRetention" if "retention" in q else "GetObjectLegalHold", obj)
        else:
            call.operation = "HeadObject" if method == "HEAD" else "GetObject"
            add("GetObjectVersion" if version else "GetObject", obj)
    elif method == "PUT":
        copy_source = headers.get("x-amz-copy-source")
        if "tagging" in q:
            call.operation = "PutObjectTagging"
            add("PutObjectVersionTagging" if version else "PutObjectTagging", obj)
        elif "acl" in q:
            call.operation = "PutObjectAcl"
            add("PutObjectAcl", obj)
        elif "partNumber" in q and "uploadId" in q:
            call.operation = "UploadPartCopy" if copy_source else "UploadPart"
            add("PutObject", obj)
            if copy_source:
                sb, sk, sv = parse_copy_source(copy_source)
                acc.append(_access("s3:GetObjectVersion" if sv else "s3:GetObject", cfn.bucket_arn(sb) + "/" + sk,
                                   **{"s3:ResourceAccount": s3_bucket_account(sb)}))
        elif copy_source:
            call.operation = "CopyObject"
            sb, sk, sv = parse_copy_source(copy_source)
            call.params["CopySource"] = {"Bucket": sb, "Key": sk, "VersionId": sv}
            add("PutObject", obj)
            src_ctx = {"s3:ResourceAccount": s3_bucket_account(sb)}
            acc.append(_access("s3:GetObjectVersion" if sv else "s3:GetObject", cfn.bucket_arn(sb) + "/" + sk, **src_ctx))
            directive = headers.get("x-amz-tagging-directive", "COPY").upper()
            # CopyObject copies the source's tags unless told to REPLACE them; reading
            # them needs s3:GetObjectTagging on the source (when it has any), writing tags
            # needs s3:PutObjectTagging on the target.
            # https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html
            # https://docs.aws.amazon.com/AmazonS3/latest/userguide/tagging-managing.html
            if directive == "COPY" and source_has_tags(sb, sk):
                acc.append(_access("s3:GetObjectVersionTagging" if sv else "s3:GetObjectTagging",
                                   cfn.bucket_arn(sb) + "/" + sk, **src_ctx))
            if directive == "REPLACE" and headers.get("x-amz-tagging"):
                add("PutObjectTagging", obj)
        else:
            call.operation = "PutObject"
            add("PutObject", obj)
            if headers.get("x-amz-tagging"):
                add("PutObjectTagging", obj)
    elif method == "POST":
        if "uploads" in q:
            call.operation = "CreateMultipartUpload"
            add("PutObject", obj)
            if headers.get("x-amz-tagging"):
                add("PutObjectTagging", obj)
        elif "uploadId" in q:
            call.operation = "CompleteMultipartUpload"
            add("PutObject", obj)
        elif "restore" in q:
            call.operation = "RestoreObject"
            add("RestoreObject", obj)
        else:
            call.unsupported = f"S3 POST on an object with {sorted(q)} is not mapped by the strict layer"
    elif method == "DELETE":
        if "tagging" in q:
            call.operation = "DeleteObjectTagging"
            add("DeleteObjectVersionTagging" if version else "DeleteObjectTagging", obj)
        elif "uploadId" in q:
            call.operation = "AbortMultipartUpload"
            add("AbortMultipartUpload", obj)
        else:
            call.operation = "DeleteObject"
            add("DeleteObjectVersion" if version else "DeleteObject", obj)
    else:
        call.unsupported = f"S3 {method} is not mapped by the strict layer"
    return call


def parse_copy_source(value: str) -> tuple[str, str, str]:
    v = value
    version = ""
    if "?versionId=" in v:
        v, version = v.split("?versionId=", 1)
    v = unquote(v).lstrip("/")
    if v.startswith("arn:"):  # an access point ARN: not used here
        return v, "", version
    b, _, k = v.partition("/")
    return b, k, version


def source_has_tags(bucket: str, key: str) -> bool:
    try:
        from moto.s3.models import s3_backends

        entry = s3_backends.bucket_accounts.get(bucket)
        if not entry:
            return False
        backend = s3_backends[entry[1]][entry[0]]
        b = backend.buckets.get(bucket)
        k = b.keys.get(key) if b else None
        if k is None or not hasattr(k, "arn"):
            return False
        return bool(backend.tagger.get_tag_dict_for_resource(k.arn))
    except Exception:  # noqa: BLE001
        return False


# ---------------------------------------------------------------- SES


def _raw_headers(data_b64: str) -> email.message.Message | None:
    try:
        raw = base64.b64decode(data_b64 or "")
    except ValueError:
        return None
    return email.parser.BytesHeaderParser().parsebytes(raw)


def sesv2_call(environ: dict[str, Any], body: bytes) -> Call:
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")
    p = _json(body)
    call = Call("sesv2", "rest-json", "", method, p)
    base = f"arn:{PARTITION}:ses:{REGION}:{ACCOUNT}:identity/"
    if path.rstrip("/") == "/v2/email/outbound-emails" and method == "POST":
        call.operation = "SendEmail"
        sender = address_of(p.get("FromEmailAddress", ""))
        raw = ((p.get("Content") or {}).get("Raw") or {}).get("Data")
        if not sender and raw:
            h = _raw_headers(raw)
            sender = address_of(h.get("From", "")) if h is not None else ""
        ctx = {"ses:FromAddress": sender}
        call.accesses.append(_access("ses:SendEmail", ses_identities(sender), **ctx))
    elif path.rstrip("/") == "/v2/email/identities" and method == "POST":
        call.operation = "CreateEmailIdentity"
        call.accesses.append(_access("ses:CreateEmailIdentity", base + p.get("EmailIdentity", "")))
    elif path.startswith("/v2/email/identities/") and method == "GET":
        call.operation = "GetEmailIdentity"
        call.accesses.append(_access("ses:GetEmailIdentity", base + unquote(path.rsplit("/", 1)[-1])))
    elif path.rstrip("/") == "/v2/email/account" and method == "GET":
        call.operation = "GetAccount"
        call.accesses.append(_access("ses:GetAccount", "*"))
    else:
        call.operation = f"{method} {path}"
        call.unsupported = f"SES v2 {method} {path} is not mapped by the strict layer"
    return call


def query_params(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    flat = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    flat += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return nest(flat)



def _query_call(service: str, environ: dict[str, Any], body: bytes) -> tuple[dict[str, Any], str, Call]:
    """A query-protocol request: its parameters, its `Action`, and its call."""
    p = query_params(environ, body)
    op = p.get("Action", "")
    return p, op, Call(service, "query", op, environ.get("REQUEST_METHOD", "POST"), p)

def ses_call(environ: dict[str, Any], body: bytes) -> Call:
    p, op, call = _query_call("ses", environ, body)
    if op in ("SendEmail", "SendRawEmail", "SendTemplatedEmail"):
        sender = address_of(p.get("Source", ""))
        if not sender and op == "SendRawEmail":
            h = _raw_headers(((p.get("RawMessage") or {}).get("Data")) or "")
            sender = address_of(h.get("From", "")) if h is not None else ""
        call.accesses.append(_access(f"ses:{op}", ses_identities(sender), **{"ses:FromAddress": sender}))
    elif op in ("VerifyEmailIdentity", "VerifyEmailAddress", "VerifyDomainIdentity", "ListIdentities",
                "GetSendQuota", "GetIdentityVerificationAttributes"):
        call.accesses.append(_access(f"ses:{op}", "*"))
    else:
        call.unsupported = f"SES {op} is not mapped by the strict layer"
    return call


# ---------------------------------------------------------------- SNS, Secrets Manager, STS


def sns_call(environ: dict[str, Any], body: bytes) -> Call:
    p, op, call = _query_call("sns", environ, body)
    if op == "Publish":
        target = p.get("TopicArn") or p.get("TargetArn") or "*"
        call.accesses.append(_access("sns:Publish", target))
    elif op == "CreateTopic":
        call.accesses.append(_access("sns:CreateTopic", cfn.topic_arn(p.get("Name", ""))))
    elif op in ("GetTopicAttributes", "SetTopicAttributes", "Subscribe", "DeleteTopic",
                "ListSubscriptionsByTopic", "PublishBatch"):
        call.accesses.append(_access(f"sns:{'Publish' if op == 'PublishBatch' else op}", p.get("TopicArn", "*")))
    elif op in ("ListTopics", "ListSubscriptions"):
        call.accesses.append(_access(f"sns:{op}", "*"))
    else:
        call.unsupported = f"SNS {op} is not mapped by the strict layer"
    return call


def secret_lookup(secret_id: str) -> Any:
    try:
        from moto.secretsmanager.models import secretsmanager_backends

        return secretsmanager_backends[ACCOUNT][REGION].secrets.get(secret_id)
    except Exception:  # noqa: BLE001
        return None


def secrets_call(environ: dict[str, Any], body: bytes) -> Call:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    op = target.split(".", 1)[1] if "." in target else target
    p = _json(body)
    call = Call("secretsmanager", "json11", op, environ.get("REQUEST_METHOD", "POST"), p)
    base = f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:"

    def request_tags(tags: Any) -> dict[str, Any]:
        ctx: dict[str, Any] = {}
        keys = []
        for t in tags or []:
            if isinstance(t, dict) and "Key" in t:
                ctx[f"aws:RequestTag/{t['Key']}"] = t.get("Value", "")
                keys.append(t["Key"])
        if keys:
            ctx["aws:TagKeys"] = keys
        return ctx

    if op == "CreateSecret":
        name = p.get("Name", "")
        # AWS names a new secret `NAME-` plus six random characters.
        arn = f"{base}{name}-??????"
        ctx = {"secretsmanager:Name": name, **request_tags(p.get("Tags"))}
        call.accesses.append(_access("secretsmanager:CreateSecret", arn, **ctx))
        if p.get("Tags"):
            # Tags given at creation also need TagResource.
            # https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html
            call.accesses.append(_access("secretsmanager:TagResource", arn, **ctx))
        return call
    if op in ("ListSecrets", "GetRandomPassword", "BatchGetSecretValue"):
        call.accesses.append(_access(f"secretsmanager:{op}", "*"))
        return call
    secret_id = p.get("SecretId", "")
    secret = secret_lookup(secret_id) if secret_id else None
    if secret is not None:
        arn = secret.arn
        ctx = {}
        for t in secret.tags or []:
            ctx[f"secretsmanager:ResourceTag/{t['Key']}"] = t.get("Value", "")
            ctx[f"aws:ResourceTag/{t['Key']}"] = t.get("Value", "")
    else:
        arn = secret_id if secret_id.startswith("arn:") else f"{base}{secret_id}"
        ctx = {}
    ctx["secretsmanager:SecretId"] = arn
    if op in ("TagResource",):
        ctx.update(request_tags(p.get("Tags")))
    known = {"GetSecretValue", "DescribeSecret", "PutSecretValue", "UpdateSecret", "DeleteSecret",
             "TagResource", "UntagResource", "ListSecretVersionIds", "RestoreSecret", "RotateSecret",
             "GetResourcePolicy", "PutResourcePolicy", "DeleteResourcePolicy", "UpdateSecretVersionStage",
             "CancelRotateSecret"}
    if op in known:
        call.accesses.append(_access(f"secretsmanager:{op}", arn, **ctx))
    else:
        call.unsupported = f"Secrets Manager {op} is not mapped by the strict layer"
    return call


def sts_call(environ: dict[str, Any], body: bytes) -> Call:
    p, op, call = _query_call("sts", environ, body)
    if op == "AssumeRole":
        role = p.get("RoleArn", "")
        parts = role.split(":")
        ctx: dict[str, Any] = {
            "aws:ResourceAccount": parts[4] if len(parts) > 4 else None,
            "sts:ExternalId": p.get("ExternalId"),
            "sts:RoleSessionName": p.get("RoleSessionName"),
        }
        tags = members(p.get("Tags"))
        for t in tags:
            if isinstance(t, dict) and "Key" in t:
                ctx[f"aws:RequestTag/{t['Key']}"] = t.get("Value", "")
        call.accesses.append(_access("sts:AssumeRole", role or "*", **ctx))
        if tags:
            call.accesses.append(_access("sts:TagSession", role or "*", **ctx))
    elif op == "GetCallerIdentity":
        pass  # needs no permission
    else:
        call.unsupported = f"STS {op} is not mapped by the strict layer"
    return call


# ---------------------------------------------------------------- dispatch


def classify(environ: dict[str, Any], service: str) -> str:
    """The strict layer's name of the request's service (the scope's signing name, with
    SES v2 told apart by its path)."""
    s = (service or "").lower()
    if s in ("ses", "email"):
        return "sesv2" if environ.get("PATH_INFO", "").startswith("/v2/") else "ses"
    return s


def build(environ: dict[str, Any], service: str, read_body) -> Call:
    """`read_body()` reads (once) and returns the request body."""
    svc = classify(environ, service)
    if svc == "s3":
        return s3_call(environ, read_body)
    if svc == "dynamodb":
        return dynamodb_call(environ, read_body())
    if svc == "sqs":
        return sqs_call(environ, read_body())
    if svc == "sesv2":
        return sesv2_call(environ, read_body())
    if svc == "ses":
        return ses_call(environ, read_body())
    if svc == "sns":
        return sns_call(environ, read_body())
    if svc == "secretsmanager":
        return secrets_call(environ, read_body())
    if svc == "sts":
        return sts_call(environ, read_body())
    body = read_body()
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    op = target.split(".", 1)[-1] if target else (query_params(environ, body).get("Action") or environ.get("PATH_INFO", ""))
    protocol = "query" if not target and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded") else "json11"
    return Call(svc or "unknown", protocol, str(op), environ.get("REQUEST_METHOD", ""), {},
                unsupported=f"{svc or 'an unknown service'} ({op}) is not a service the stack's functions use; the strict layer maps no IAM action for it")
