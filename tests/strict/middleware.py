"""The WSGI middleware in front of moto: identifies the caller by its access key id,
checks the request against the caller's IAM policy and AWS's limits, emulates DynamoDB
contention, then hands the request to moto (or answers as AWS would refuse it)."""

from __future__ import annotations

import copy
import io
import json
import re
import sys
import threading
import traceback
import zlib
from typing import Any, Callable
from urllib.parse import parse_qsl

from . import limits, mapping
from .contention import (
    CONFLICT_MESSAGE,
    CONTENTION,
    THROTTLE_MESSAGE,
    cancelled,
    existing_size,
    item_key,
    partition_of,
    read_units,
    throttled,
    transaction_conflict,
    write_units,
)
from .errors import Failure, access_denied, render, unknown_key
from .limits import MAX_ITEM_BYTES, item_size, key_schema, moto_table
from .mapping import Call, credential_scope, table_name
from .policy import evaluate
from .registry import ROLES, STATE, Stack

_local = threading.local()
_STRIPES = [threading.Lock() for _ in range(64)]


# ---------------------------------------------------------------- moto hooks


def install_moto_hooks() -> None:
    """Two changes to moto, for requests the strict layer has checked only:
    - moto's own IAM check (on when INITIAL_NO_AUTH_ACTION_COUNT is set) is skipped:
      moto does not know the `<role>.<prefix>` keys, and the strict layer has authorized
      the request against the role's policy already;
    - moto's approximate item-size check (405,000 bytes by its own count) is skipped:
      the strict layer applies DynamoDB's rules instead.
    Requests of the harness (`testing`) and of moto-issued keys keep moto's behaviour."""
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.dynamodb.models import dynamo_type

    original_auth = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if getattr(_local, "checked", False):
            return None
        return original_auth(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate  # type: ignore[method-assign]

    original_set = dynamo_type.LimitedSizeDict.__setitem__

    def setitem(self: dict, key: str, value: Any) -> None:
        if getattr(_local, "checked", False):
            dict.__setitem__(self, key, value)
        else:
            original_set(self, key, value)

    dynamo_type.LimitedSizeDict.__setitem__ = setitem  # type: ignore[method-assign]


def _stripe(table: str, item: dict[str, Any]) -> int:
    ident = item_key(table, item) or (table_name(table), json.dumps(item, sort_keys=True))
    return hash(ident) % len(_STRIPES)


def _items_locks(targets: list[tuple[str, dict[str, Any]]]) -> list[threading.Lock]:
    """The locks that keep an item's snapshot, moto's write and a restore together
    (striped by item identity, always taken in one order)."""
    return [_STRIPES[i] for i in sorted({_stripe(t, k) for t, k in targets})]


def _item_locks(table: str, keys: list[dict[str, Any]]) -> list[threading.Lock]:
    return _items_locks([(table, k) for k in keys])


# ---------------------------------------------------------------- the middleware


class StrictMiddleware:
    def __init__(self, inner: Callable) -> None:
        self.inner = inner

    # -- plumbing
    def _pass(self, environ: dict[str, Any], start_response: Callable, checked: bool = False) -> Any:
        _local.checked = checked
        try:
            return self.inner(environ, start_response)
        finally:
            _local.checked = False

    def _capture(self, environ: dict[str, Any], body: bytes | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
        if body is not None:
            _set_body(environ, body)
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def sr(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, list(headers)
            return chunks.append

        _local.checked = True
        try:
            it = self.inner(environ, sr)
            try:
                for c in it:
                    chunks.append(c)
            finally:
                if hasattr(it, "close"):
                    it.close()
        finally:
            _local.checked = False
        return captured["status"], captured["headers"], b"".join(chunks)

    @staticmethod
    def _respond(start_response: Callable, status: str, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
        start_response(status, headers)
        return [body]

    def _fail(self, start_response: Callable, call: Call | None, f: Failure, protocol: str = "", service: str = "") -> list[bytes]:
        status, headers, body = render(protocol or (call.protocol if call else "json11"),
                                       service or (call.service if call else ""), f,
                                       call.method if call else "POST")
        return self._respond(start_response, status, headers, body)

    # -- entry
    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_strict/"):
            return self.control(environ, start_response)
        if path.startswith("/moto-api") or path == "/favicon.ico" or path.startswith("/latest/"):
            return self._pass(environ, start_response)
        try:
            return self.check(environ, start_response)
        except Failure as f:  # pragma: no cover - check answers its own failures
            return self._fail(start_response, None, f)
        except Exception:  # noqa: BLE001
            # A bug of the strict layer must not pass a request unchecked: refuse it loudly.
            text = traceback.format_exc()
            print(f"strict: internal error\n{text}", file=sys.stderr, flush=True)
            body = json.dumps({"__type": "InternalFailure", "message": f"strict layer error: {text.splitlines()[-1]}"}).encode()
            return self._respond(start_response, "500 Internal Server Error",
                                 [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body)

    def check(self, environ: dict[str, Any], start_response: Callable) -> Any:
        scope = credential_scope(environ)
        read = _body_reader(environ)
        if scope is None:
            call = mapping.build(environ, _guess_service(environ), read)
            why = "the request is not signed (no SigV4 credential)"
            STATE.violation("", {"kind": "principal", "role": "", "operation": call.operation, "action": "",
                                 "resource": "", "message": f"unknown principal: {why}"})
            return self._fail(start_response, call, unknown_key(call.protocol, why))
        akid, _region, service = scope
        if akid == "testing" or akid.startswith(("AKIA", "ASIA")):
            return self._pass(environ, start_response)
        role, _, prefix = akid.partition(".")
        stack = STATE.stack(prefix) if prefix else None
        call = mapping.build(environ, service, read)
        statements = None
        if stack is not None and (role in ROLES or role.startswith("cli-")):
            statements = stack.statements(role)
        if statements is None:
            if stack is None and (role in ROLES or role.startswith("cli-")):
                why = f"no test stack is registered under prefix `{prefix}` (POST /_strict/stack first)"
            elif role.startswith("cli-"):
                why = f"the operator policy has no group `{role[4:]}` ({akid})"
            else:
                why = f"unknown principal `{akid}`: expected testing, <discovery|processor|preview|cli-GROUP>.<prefix> or a key moto issued"
            STATE.violation(prefix, {"kind": "principal", "role": role, "operation": call.operation, "action": "",
                                     "resource": "", "message": why})
            return self._fail(start_response, call, unknown_key(call.protocol, why))
        STATE.count(prefix, "requests")
        return self.checked(stack, role, call, environ, start_response, read)

    # -- a checked role's request
    def checked(self, stack: Stack, role: str, call: Call, environ: dict[str, Any], start_response: Callable, read) -> Any:
        who = stack.policy_name(role)
        principal = _principal_arn(stack.prefix, role)
        if call.unsupported:
            action = f"{call.service}:{call.operation}"
            msg = f"{role} ({who}) made {call.service} {call.operation}: {call.unsupported}"
            STATE.violation(stack.prefix, {"kind": "unsupported", "role": role, "operation": call.operation,
                                           "action": action, "resource": "", "message": msg})
            return self._fail(start_response, call, access_denied(call.protocol, call.service, principal, action, "*", call.unsupported))
        statements = stack.statements(role) or []
        allowed = []
        first_denial = None
        for access in call.accesses:
            d = evaluate(statements, access, who)
            if d.allowed:
                allowed.append((d, access))
                continue
            resource = access.resource if len(access.resources) == 1 else " or ".join(access.resources)
            msg = f"{role} may not {access.action} on {resource} ({call.service} {call.operation}): {d.why}"
            STATE.violation(stack.prefix, {"kind": "iam", "role": role, "operation": call.operation,
                                           "action": access.action, "resource": resource, "message": msg})
            if first_denial is None:
                first_denial = access_denied(call.protocol, call.service, principal, access.action, resource, d.why)
        for d, access in allowed:
            STATE.usage(stack.prefix, role, d.statement, access.action, d.pattern)
        if first_denial is not None:
            return self._fail(start_response, call, first_denial)
        try:
            limits.check(call, STATE.object_sizes, read)
        except Failure as f:
            STATE.violation(stack.prefix, {"kind": "limit", "role": role, "operation": call.operation,
                                           "action": call.accesses[0].action if call.accesses else "",
                                           "resource": call.accesses[0].resource if call.accesses else "",
                                           "message": f"{role} ({who}) {call.service} {call.operation} refused: {f.code}: {f.message}"})
            return self._fail(start_response, call, f)
        if call.service == "dynamodb":
            try:
                return self.dynamodb(stack, call, environ, start_response)
            except Failure as f:
                return self._fail(start_response, call, f)
        return self._pass(environ, start_response, checked=True)

    # ---------------------------------------------------------------- DynamoDB contention

    def dynamodb(self, stack: Stack, call: Call, environ: dict[str, Any], start_response: Callable) -> Any:
        op, p, c = call.operation, call.params, stack.contention
        pw, pr, tw = c["partition_write_units_per_second"], c["partition_read_units_per_second"], c["table_write_units_per_second"]
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            t = p.get("TableName", "")
            key = (p.get("Item") if op == "PutItem" else p.get("Key")) or {}
            size = item_size(key) if op == "PutItem" else existing_size(t, key)
            cost = write_units(size)
            if not CONTENTION.admit([(("w",) + partition_of(t, key), pw, cost), (("tw", table_name(t)), tw, cost)]):
                STATE.count(stack.prefix, "throttled")
                raise throttled()
            owner = CONTENTION.new_owner()
            k = item_key(t, key)
            if not CONTENTION.hold_single(owner, k):
                STATE.count(stack.prefix, "conflicts")
                raise transaction_conflict()
            try:
                if op == "UpdateItem":
                    return self._update_checked(call, environ, start_response)
                return self._pass(environ, start_response, checked=True)
            finally:
                CONTENTION.release(owner, [k])
        if op == "GetItem":
            t = p.get("TableName", "")
            key = p.get("Key") or {}
            cost = read_units(existing_size(t, key), bool(p.get("ConsistentRead")))
            if not CONTENTION.admit([(("r",) + partition_of(t, key), pr, cost)]):
                STATE.count(stack.prefix, "throttled")
                raise throttled()
            return self._pass(environ, start_response, checked=True)
        if op == "Query":
            part = _query_partition(p)
            if part is None:
                return self._pass(environ, start_response, checked=True)
            consistent = bool(p.get("ConsistentRead"))
            first = read_units(0, consistent)
            bucket = ("r",) + part
            if not CONTENTION.admit([(bucket, pr, first)]):
                STATE.count(stack.prefix, "throttled")
                raise throttled()
            status, headers, body = self._capture(environ)
            if status.startswith("200"):
                try:
                    items = json.loads(body).get("Items") or []
                    cost = read_units(sum(item_size(i) for i in items), consistent)
                    if cost > first:
                        CONTENTION.debit(bucket, pr, cost - first)
                except ValueError:
                    pass
            return self._respond(start_response, status, headers, body)
        if op == "BatchWriteItem":
            return self._batch_write(stack, call, environ, start_response, pw, tw)
        if op == "BatchGetItem":
            return self._batch_get(stack, call, environ, start_response, pr)
        if op == "TransactWriteItems":
            return self._transact_write(stack, call, environ, start_response, pw, tw)
        if op == "TransactGetItems":
            return self._transact_get(stack, call, environ, start_response, pr)
        if op == "BatchExecuteStatement" and _inserts(call.params):
            return self._batch_insert(stack, call, environ, start_response, pw, tw)
        return self._pass(environ, start_response, checked=True)

    def _update_checked(self, call: Call, environ: dict[str, Any], start_response: Callable) -> Any:
        """UpdateItem: moto applies it; an item that grew past 400 KB is put back as it was
        and the request refused, as DynamoDB refuses it."""
        t = call.params.get("TableName", "")
        key = call.params.get("Key") or {}
        locks = _item_locks(t, [key])
        for lk in locks:
            lk.acquire()
        try:
            snap = _snapshot(t, key)
            status, headers, body = self._capture(environ)
            if status.startswith("200"):
                size = _stored_size(t, key)
                if size > MAX_ITEM_BYTES:
                    _restore(t, key, snap)
                    f = limits.validation(f"Item size to update has exceeded the maximum allowed size [strict: the updated item is {size} bytes, limit {MAX_ITEM_BYTES}]")
                    stack = STATE.stack(_prefix_of(environ))
                    if stack is not None:
                        STATE.violation(stack.prefix, {"kind": "limit", "role": _role_of(environ), "operation": "UpdateItem",
                                                       "action": "dynamodb:UpdateItem", "resource": mapping.table_arn(t),
                                                       "message": f"{_role_of(environ)} UpdateItem refused: {f.message}"})
                    raise f
        finally:
            for lk in reversed(locks):
                lk.release()
        return self._respond(start_response, status, headers, body)

    def _batch_write(self, stack: Stack, call: Call, environ: dict[str, Any], start_response: Callable, pw: float, tw: float) -> Any:
        p = call.params
        admitted: dict[str, list] = {}
        unprocessed: dict[str, list] = {}
        n_throttled = n_conflicts = n_admitted = 0
        owner = CONTENTION.new_owner()
        held = []
        try:
            for t, requests in (p.get("RequestItems") or {}).items():
                for r in requests:
                    if "PutRequest" in r:
                        item = (r["PutRequest"] or {}).get("Item") or {}
                        size = item_size(item)
                    else:
                        item = (r.get("DeleteRequest") or {}).get("Key") or {}
                        size = existing_size(t, item)
                    cost = write_units(size)
                    k = item_key(t, item)
                    if not CONTENTION.hold_single(owner, k):
                        n_conflicts += 1
                        unprocessed.setdefault(t, []).append(r)
                        continue
                    held.append(k)
                    if CONTENTION.admit([(("w",) + partition_of(t, item), pw, cost), (("tw", table_name(t)), tw, cost)]):
                        admitted.setdefault(t, []).append(r)
                        n_admitted += 1
                    else:
                        n_throttled += 1
                        unprocessed.setdefault(t, []).append(r)
            if n_throttled:
                STATE.count(stack.prefix, "throttled", n_throttled)
            if n_conflicts:
                STATE.count(stack.prefix, "conflicts", n_conflicts)
            if not n_admitted:
                if n_throttled:
                    # "If none of the items can be processed due to insufficient provisioned
                    # throughput on all of the tables in the request, then BatchWriteItem
                    # returns a ProvisionedThroughputExceededException."
                    raise throttled()
                return _json_response(start_response, {"UnprocessedItems": unprocessed}, amz=True)
            if not unprocessed:
                return self._pass(environ, start_response, checked=True)
            def merge(merged: dict) -> None:
                for t, rs in unprocessed.items():
                    merged.setdefault(t, []).extend(rs)

            return self._forward_admitted(environ, start_response, p, admitted, "UnprocessedItems", merge)
        finally:
            CONTENTION.release(owner, held)

    def _batch_get(self, stack: Stack, call: Call, environ: dict[str, Any], start_response: Callable, pr: float) -> Any:
        p = call.params
        admitted: dict[str, dict] = {}
        unprocessed: dict[str, dict] = {}
        n_admitted = n_throttled = 0
        for t, spec in (p.get("RequestItems") or {}).items():
            consistent = bool((spec or {}).get("ConsistentRead"))
            for key in (spec or {}).get("Keys") or []:
                cost = read_units(existing_size(t, key), consistent)
                if CONTENTION.admit([(("r",) + partition_of(t, key), pr, cost)]):
                    admitted.setdefault(t, {**{k: v for k, v in spec.items() if k != "Keys"}, "Keys": []})["Keys"].append(key)
                    n_admitted += 1
                else:
                    unprocessed.setdefault(t, {**{k: v for k, v in spec.items() if k != "Keys"}, "Keys": []})["Keys"].append(key)
                    n_throttled += 1
        if not n_throttled:
            return self._pass(environ, start_response, checked=True)
        STATE.count(stack.prefix, "throttled", n_throttled)
        if not n_admitted:
            raise throttled()
        def merge(merged: dict) -> None:
            for t, spec in unprocessed.items():
                if t in merged:
                    merged[t]["Keys"] = list(merged[t].get("Keys") or []) + spec["Keys"]
                else:
                    merged[t] = spec

        return self._forward_admitted(environ, start_response, p, admitted, "UnprocessedKeys", merge)

    def _forward_admitted(self, environ: dict[str, Any], start_response: Callable, p: dict[str, Any],
                          admitted: dict, field: str, merge: Callable[[dict], None]) -> Any:
        """A batch with only what the buckets admitted goes to moto; what they did not is
        added to moto's own answer under `field` (UnprocessedItems / UnprocessedKeys)."""
        body = dict(p)
        body["RequestItems"] = admitted
        status, headers, out = self._capture(environ, json.dumps(body).encode())
        if not status.startswith("200"):
            return self._respond(start_response, status, headers, out)
        doc = json.loads(out or b"{}")
        merged = doc.get(field) or {}
        merge(merged)
        doc[field] = merged
        return _json_response(start_response, doc, headers)

    def _transact_write(self, stack: Stack, call: Call, environ: dict[str, Any], start_response: Callable, pw: float, tw: float) -> Any:
        items = call.params.get("TransactItems") or []
        targets = []  # (kind, table, key item)
        for it in items:
            kind = next(iter(it))
            a = it[kind] or {}
            t = a.get("TableName", "")
            targets.append((kind, t, (a.get("Item") if kind == "Put" else a.get("Key")) or {}))
        # Throughput: transactional writes cost twice.
        groups = []
        for kind, t, key in targets:
            size = item_size(key) if kind == "Put" else existing_size(t, key)
            cost = 2 * write_units(size)
            groups.append([(("w",) + partition_of(t, key), pw, cost), (("tw", table_name(t)), tw, cost)])
        failing = CONTENTION.admit_each(groups)
        if failing:
            STATE.count(stack.prefix, "throttled")
            raise cancelled([
                {"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html."}
                if i in failing else {"Code": "None"} for i in range(len(targets))
            ])
        owner = CONTENTION.new_owner()
        keys = [item_key(t, key) for _, t, key in targets]
        conflicts = CONTENTION.hold_transaction(owner, keys, "write")
        if conflicts:
            STATE.count(stack.prefix, "conflicts")
            raise cancelled([
                {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"} if i in conflicts else {"Code": "None"}
                for i in range(len(targets))
            ])
        try:
            hold = stack.contention.get("transaction_hold_ms", 0.0)
            if hold > 0:
                threading.Event().wait(hold / 1000.0)
            locks = _items_locks([(t, key) for _, t, key in targets])
            for lk in locks:
                lk.acquire()
            try:
                snaps = [(t, key, _snapshot(t, key)) for _, t, key in targets]
                status, headers, body = self._capture(environ)
                if status.startswith("200"):
                    too_big = [i for i, (kind, t, key) in enumerate(targets) if kind == "Update" and _stored_size(t, key) > MAX_ITEM_BYTES]
                    if too_big:
                        for t, key, snap in snaps:
                            _restore(t, key, snap)
                        STATE.violation(stack.prefix, {"kind": "limit", "role": _role_of(environ), "operation": "TransactWriteItems",
                                                       "action": "dynamodb:UpdateItem", "resource": mapping.table_arn(targets[too_big[0]][1]),
                                                       "message": f"{_role_of(environ)} TransactWriteItems refused: an Update made an item larger than {MAX_ITEM_BYTES} bytes"})
                        raise cancelled([
                            {"Code": "ValidationError", "Message": "Item size to update has exceeded the maximum allowed size"} if i in too_big else {"Code": "None"}
                            for i in range(len(targets))
                        ])
            finally:
                for lk in reversed(locks):
                    lk.release()
            return self._respond(start_response, status, headers, body)
        finally:
            CONTENTION.release(owner, keys)

    def _batch_insert(self, stack: Stack, call: Call, environ: dict[str, Any], start_response: Callable, pw: float, tw: float) -> Any:
        """PartiQL INSERTs in a batch, as DynamoDB runs them: each statement on its own
        (a put only where the key is free, else `DuplicateItem`), throttled or in
        conflict on its own, and answered in the batch's order. moto's own INSERT
        replaces an existing item and takes no parameters, so each statement goes to
        moto as the conditional `PutItem` it amounts to.
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.insert.html
        https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchStatementError.html"""
        responses = []
        for s in call.params.get("Statements") or []:
            try:
                t, item = limits.partiql_insert(s.get("Statement") or "", s.get("Parameters") or [])
                limits.check_put_item(t, item)
            except Failure as f:
                responses.append({"Error": {"Code": "ValidationError", "Message": f.message}})
                continue
            ks = limits.key_schema(t)
            if ks is None:
                responses.append({"TableName": t, "Error": {"Code": "ResourceNotFound", "Message": "Requested resource not found"}})
                continue
            cost = write_units(item_size(item))
            if not CONTENTION.admit([(("w",) + partition_of(t, item), pw, cost), (("tw", table_name(t)), tw, cost)]):
                STATE.count(stack.prefix, "throttled")
                responses.append({"TableName": t, "Error": {"Code": "ProvisionedThroughputExceeded", "Message": THROTTLE_MESSAGE}})
                continue
            owner = CONTENTION.new_owner()
            k = item_key(t, item)
            if not CONTENTION.hold_single(owner, k):
                STATE.count(stack.prefix, "conflicts")
                responses.append({"TableName": t, "Error": {"Code": "TransactionConflict", "Message": CONFLICT_MESSAGE}})
                continue
            try:
                put = {"TableName": t, "Item": item, "ConditionExpression": "attribute_not_exists(#k)",
                       "ExpressionAttributeNames": {"#k": ks[0]}}
                env = dict(environ)
                env["HTTP_X_AMZ_TARGET"] = "DynamoDB_20120810.PutItem"
                status, _headers, body = self._capture(env, json.dumps(put).encode())
            finally:
                CONTENTION.release(owner, [k])
            if status.startswith("200"):
                responses.append({"TableName": t})
                continue
            doc = json.loads(body or b"{}")
            code = str(doc.get("__type", "")).rsplit("#", 1)[-1]
            if code == "ConditionalCheckFailedException":
                responses.append({"TableName": t, "Error": {"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"}})
            else:
                responses.append({"TableName": t, "Error": {"Code": "ValidationError", "Message": doc.get("message") or doc.get("Message") or code}})
        return _json_response(start_response, {"Responses": responses}, amz=True)

    def _transact_get(self, stack: Stack, call: Call, environ: dict[str, Any], start_response: Callable, pr: float) -> Any:
        items = call.params.get("TransactItems") or []
        targets = [((it.get("Get") or {}).get("TableName", ""), (it.get("Get") or {}).get("Key") or {}) for it in items]
        groups = [[(("r",) + partition_of(t, key), pr, 2 * read_units(existing_size(t, key), True))] for t, key in targets]
        failing = CONTENTION.admit_each(groups)
        if failing:
            STATE.count(stack.prefix, "throttled")
            raise cancelled([{"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity of your table or index."}
                             if i in failing else {"Code": "None"} for i in range(len(targets))])
        owner = CONTENTION.new_owner()
        conflicts = CONTENTION.hold_transaction(owner, [item_key(t, key) for t, key in targets], "read")
        if conflicts:
            STATE.count(stack.prefix, "conflicts")
            raise cancelled([{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"} if i in conflicts else {"Code": "None"}
                             for i in range(len(targets))])
        return self._pass(environ, start_response, checked=True)

    # ---------------------------------------------------------------- control API

    def control(self, environ: dict[str, Any], start_response: Callable) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        q = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        prefix = q.get("prefix")
        try:
            body = _body_reader(environ)()
            doc = json.loads(body) if body.strip() else {}
        except ValueError as e:
            return _json_response(start_response, {"error": f"body is not JSON: {e}"}, status="400 Bad Request")
        try:
            if path == "/_strict/stack" and method == "POST":
                stack = STATE.register(doc)
                return _json_response(start_response, {
                    "prefix": stack.prefix,
                    "test": stack.test,
                    "contention": stack.contention,
                    "roles": {r: len(stack.statements(r) or []) for r in list(ROLES) + [f"cli-{g}" for g in (stack.operator.get("Groups") or {})]},
                })
            if path == "/_strict/stack" and method == "DELETE":
                with STATE.lock:
                    gone = STATE.stacks.pop(prefix or "", None)
                return _json_response(start_response, {"removed": gone is not None})
            if path == "/_strict/violations" and method == "GET":
                return _json_response(start_response, STATE.violations_of(prefix))
            if path == "/_strict/violations" and method == "DELETE":
                return _json_response(start_response, {"cleared": STATE.clear_violations(prefix)})
            if path == "/_strict/contention" and method == "POST":
                p = doc.get("prefix") or prefix
                return _json_response(start_response, {"prefix": p, "contention": STATE.set_contention(p, doc)})
            if path == "/_strict/stats" and method == "GET":
                return _json_response(start_response, STATE.stats_of(prefix or ""))
            if path == "/_strict/usage" and method == "GET":
                return _json_response(start_response, STATE.usage_of(prefix or ""))
            if path == "/_strict/object-size" and method == "POST":
                b, k = str(doc["bucket"]), str(doc["key"])
                with STATE.lock:
                    if doc.get("size") is None:
                        STATE.object_sizes.pop((b, k), None)
                    else:
                        STATE.object_sizes[(b, k)] = int(doc["size"])
                return _json_response(start_response, {"bucket": b, "key": k, "size": doc.get("size")})
            if path == "/_strict/health" and method == "GET":
                return _json_response(start_response, {"ok": True, "stacks": len(STATE.stacks)})
        except KeyError as e:
            return _json_response(start_response, {"error": f"unknown {e}"}, status="404 Not Found")
        except (ValueError, TypeError) as e:
            return _json_response(start_response, {"error": str(e)}, status="400 Bad Request")
        return _json_response(start_response, {"error": f"no control endpoint {method} {path}"}, status="404 Not Found")


# ---------------------------------------------------------------- helpers


def _inserts(p: dict[str, Any]) -> bool:
    """A batch of PartiQL INSERTs (the strict layer runs those itself)."""
    statements = p.get("Statements") or []
    return bool(statements) and all((s.get("Statement") or "").lstrip()[:6].upper() == "INSERT" for s in statements)


def _set_body(environ: dict[str, Any], body: bytes) -> None:
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def _body_reader(environ: dict[str, Any]) -> Callable[[], bytes]:
    cache: list[bytes] = []

    def read() -> bytes:
        if not cache:
            stream = environ.get("wsgi.input")
            length = environ.get("CONTENT_LENGTH")
            if stream is None:
                data = b""
            elif length:
                data = stream.read(int(length))
            elif environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
                data = stream.read()
            else:
                data = b""
            cache.append(data or b"")
            _set_body(environ, cache[0])
        return cache[0]

    return read


def _json_response(start_response: Callable, doc: Any, moto_headers: list[tuple[str, str]] | None = None,
                   status: str = "200 OK", amz: bool = False) -> list[bytes]:
    """A JSON answer: DynamoDB's (`amz`, or rewriting moto's, whose other headers it
    keeps) or the control API's."""
    body = json.dumps(doc).encode()
    headers = [(k, v) for k, v in (moto_headers or []) if k.lower() not in ("content-length", "x-amz-crc32", "content-type")]
    amz = amz or moto_headers is not None
    headers += [
        ("Content-Type", "application/x-amz-json-1.0" if amz else "application/json"),
        ("Content-Length", str(len(body))),
    ]
    if amz:
        headers.append(("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF)))
    start_response(status, headers)
    return [body]


def _principal_arn(prefix: str, role: str) -> str:
    if role in ROLES:
        return f"arn:aws:sts::{mapping.ACCOUNT}:assumed-role/{prefix}-{ROLES[role]}Role/{prefix}-{role}"
    return f"arn:aws:sts::{mapping.ACCOUNT}:assumed-role/{prefix}-operator/{role}"


def _access_key(environ: dict[str, Any]) -> str:
    scope = credential_scope(environ)
    return scope[0] if scope else ""


def _role_of(environ: dict[str, Any]) -> str:
    return _access_key(environ).partition(".")[0]


def _prefix_of(environ: dict[str, Any]) -> str:
    return _access_key(environ).partition(".")[2]


def _guess_service(environ: dict[str, Any]) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDB"):
        return "dynamodb"
    if target.startswith("AmazonSQS"):
        return "sqs"
    if target.startswith("secretsmanager"):
        return "secretsmanager"
    if environ.get("PATH_INFO", "").startswith("/v2/email"):
        return "ses"
    return "s3"


def _key_types(t: str, key: dict[str, Any]) -> tuple[Any, Any] | None:
    ks = key_schema(t)
    if ks is None:
        return None
    from moto.dynamodb.models.dynamo_type import DynamoType

    h, r = ks
    if h not in key or (r and r not in key):
        return None
    return DynamoType(key[h]), (DynamoType(key[r]) if r else None)


def _snapshot(t: str, key: dict[str, Any]) -> Any:
    table = moto_table(t)
    kt = _key_types(t, key)
    if table is None or kt is None:
        return None
    item = table.get_item(*kt)
    return ("item", copy.deepcopy(item)) if item is not None else ("absent", None)


def _stored_size(t: str, key: dict[str, Any]) -> int:
    table = moto_table(t)
    kt = _key_types(t, key)
    if table is None or kt is None:
        return 0
    item = table.get_item(*kt)
    return item_size(item.to_json()["Attributes"]) if item is not None else 0


def _restore(t: str, key: dict[str, Any], snap: Any) -> None:
    table = moto_table(t)
    kt = _key_types(t, key)
    if table is None or kt is None or snap is None:
        return
    h, r = kt
    state, item = snap
    if state == "absent":
        try:
            if r is not None:
                table.items[h].pop(r, None)
            else:
                table.items.pop(h, None)
        except KeyError:
            pass
    elif r is not None:
        table.items[h][r] = item
    else:
        table.items[h] = item


_EQ = re.compile(r"(#?[A-Za-z0-9_.-]+)\s*=\s*(:[A-Za-z0-9_]+)")


def _query_partition(p: dict[str, Any]) -> tuple | None:
    """(table or table/index, partition value) a Query reads, from its key condition."""
    t = p.get("TableName", "")
    table = moto_table(t)
    if table is None:
        return None
    idx = p.get("IndexName")
    if idx:
        index = next((i for i in table.indexes + table.global_indexes if i.name == idx), None)
        if index is None:
            return None
        hash_attr = next((k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"), None)
    else:
        hash_attr = table.hash_key_attr
    names = p.get("ExpressionAttributeNames") or {}
    values = p.get("ExpressionAttributeValues") or {}
    for m in _EQ.finditer(p.get("KeyConditionExpression") or ""):
        name = names.get(m.group(1), m.group(1))
        if name == hash_attr and m.group(2) in values:
            return (table_name(t) + (f"/index/{idx}" if idx else ""), json.dumps(values[m.group(2)], sort_keys=True))
    return None
