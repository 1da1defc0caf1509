"""IAM identity-policy evaluation, as far as the stack's policies need it.

Allow statements only (the template has no Deny); `Action` and `Resource` with `*` and
`?` wildcards (actions case-insensitive; an ARN's first five segments never match
across a colon, the resource part may); condition operators `StringEquals`,
`StringNotEquals`, `StringEqualsIgnoreCase`, `StringLike`, `StringNotLike`, `ArnEquals`,
`ArnLike`, `ArnNotEquals`, `ArnNotLike`, `Null`, `Bool`, `Numeric*`, each with
`...IfExists` and the `ForAnyValue:`/`ForAllValues:` set qualifiers. Every key of a
statement's condition must hold; a value list in the policy means any of them.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).match(value) is not None


def arn_match(pattern: str, value: str) -> bool:
    """IAM's ARN matching: segment by segment for `arn:partition:service:region:account`,
    then the resource part (where wildcards may span `/` and `:`)."""
    if pattern == "*":
        return True
    p = pattern.split(":", 5)
    v = value.split(":", 5)
    if len(p) != 6 or len(v) != 6:
        return glob_match(pattern, value)
    return all(glob_match(a, b) for a, b in zip(p, v))


def as_list(x: Any) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


@dataclass
class Access:
    """One (action, resource) pair a request needs, with its condition context.
    `resources` holds alternatives: any one allowed is enough (SES checks the address
    identity or its domain's)."""

    action: str
    resources: list[str]
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def resource(self) -> str:
        return self.resources[0] if self.resources else "*"


@dataclass
class Statement:
    policy: str  # "ProcessorFunction" or "operator:tick"
    index: int  # position in that policy (stable across stacks)
    label: str
    actions: list[str]
    resources: list[str]
    condition: dict[str, dict[str, list[str]]]
    patterns: list[str]  # the unresolved resources (`${LedgerTable.Arn}`), for usage

    def grants_action(self, action: str) -> bool:
        return any(glob_match(a, action, ignore_case=True) for a in self.actions)

    def resource_index(self, resource: str) -> int | None:
        for i, r in enumerate(self.resources):
            if arn_match(r, resource):
                return i
        return None

    def pattern_for(self, i: int) -> str:
        if 0 <= i < len(self.patterns):
            return self.patterns[i]
        return self.patterns[0] if self.patterns else (self.resources[i] if i < len(self.resources) else "*")


def _ctx_get(context: dict[str, Any], key: str) -> Any:
    lower = key.lower()
    for k, v in context.items():
        if k.lower() == lower:
            return v
    return None


def _str_op(base: str, policy_value: str, actual: str) -> bool:
    if base in ("StringEquals", "StringNotEquals"):
        return policy_value == actual
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return policy_value.lower() == actual.lower()
    if base in ("StringLike", "StringNotLike"):
        return glob_match(policy_value, actual)
    if base in ("ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike"):
        return arn_match(policy_value, actual)
    if base.startswith("Numeric"):
        try:
            a, p = float(actual), float(policy_value)
        except ValueError:
            return False
        return {
            "NumericEquals": a == p, "NumericNotEquals": a == p,
            "NumericLessThan": a < p, "NumericLessThanEquals": a <= p,
            "NumericGreaterThan": a > p, "NumericGreaterThanEquals": a >= p,
        }.get(base, False)
    if base == "Bool":
        return policy_value.lower() == actual.lower()
    raise ValueError(f"condition operator {base} is not supported by the strict layer")


def condition_holds(operator: str, key: str, values: list[str], context: dict[str, Any]) -> tuple[bool, str]:
    """Whether one condition key holds; the reason when it does not."""
    qualifier = ""
    op = operator
    if ":" in op:
        qualifier, op = op.split(":", 1)
    if_exists = op.endswith("IfExists")
    base = op[: -len("IfExists")] if if_exists else op
    actual = _ctx_get(context, key)
    values = [str(v) for v in as_list(values)]
    if base == "Null":
        want_absent = any(v.lower() == "true" for v in values)
        absent = actual is None or actual == [] or actual == ""
        ok = absent == want_absent
        return ok, "" if ok else f"Null {key}={values[0]} but the key is {'absent' if absent else 'present'}"
    negated = ("Not" in base and not base.startswith("Numeric")) or base == "NumericNotEquals"
    if actual is None:
        # A negated operator holds when the key is absent; the others fail unless IfExists.
        ok = if_exists or negated
        return ok, "" if ok else f"{operator} {key} in {values}: the request has no {key}"
    actuals = [str(a) for a in as_list(actual)]
    if isinstance(actual, bool):
        actuals = ["true" if actual else "false"]

    def one(a: str) -> bool:
        hit = any(_str_op(base, p, a) for p in values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        ok = all(one(a) for a in actuals)
    else:  # ForAnyValue, or a single-valued key
        ok = any(one(a) for a in actuals)
    return ok, "" if ok else f"{operator} {key} in {values} but the request has {actuals if len(actuals) != 1 else actuals[0]!r}"


def statement_conditions(st: Statement, context: dict[str, Any]) -> tuple[bool, str]:
    for operator, keys in st.condition.items():
        for key, values in keys.items():
            ok, why = condition_holds(operator, key, values, context)
            if not ok:
                return False, why
    return True, ""


@dataclass
class Decision:
    allowed: bool
    statement: Statement | None = None
    resource: str = ""  # the request's resource that matched
    pattern: str = ""  # the statement's unresolved resource that allowed it
    why: str = ""  # when denied: what is missing


def evaluate(statements: list[Statement], access: Access, who: str) -> Decision:
    action = access.action
    candidates = [s for s in statements if s.grants_action(action)]
    condition_failures: list[str] = []
    for st in candidates:
        for res in access.resources or ["*"]:
            i = st.resource_index(res)
            if i is None:
                continue
            ok, why = statement_conditions(st, access.context)
            if ok:
                return Decision(True, st, res, st.pattern_for(i))
            condition_failures.append(f"statement {st.index} ({st.label}) matches but its condition fails: {why}")
    if condition_failures:
        why = "; ".join(condition_failures)
    elif candidates:
        grants = "; ".join(f"statement {s.index} ({s.label}) on {', '.join(s.resources)}" for s in candidates)
        why = f"no statement of {who}'s policy allows it on this resource (statements granting {action}: {grants})"
    else:
        why = f"no statement of {who}'s policy grants {action} at all"
        on_resource = [
            f"statement {s.index} ({', '.join(s.actions)})"
            for s in statements
            if any(s.resource_index(r) is not None for r in access.resources or ["*"])
        ]
        if on_resource:
            why += f"; statements on this resource grant: {'; '.join(on_resource)}"
    return Decision(False, why=why)


def compile_statement(policy: str, index: int, raw: dict[str, Any], resolved: dict[str, Any], patterns: list[str]) -> Statement:
    actions = [str(a) for a in as_list(resolved.get("Action"))]
    resources = [str(r) for r in as_list(resolved.get("Resource"))]
    condition: dict[str, dict[str, list[str]]] = {}
    for op, keys in (resolved.get("Condition") or {}).items():
        condition[op] = {k: [str(x) for x in as_list(v)] for k, v in (keys or {}).items()}
    return Statement(
        policy=policy,
        index=index,
        label=label_of(raw),
        actions=actions,
        resources=resources,
        condition=condition,
        patterns=patterns,
    )


def label_of(raw: dict[str, Any]) -> str:
    """A short name for a statement: its Sid, or its actions' services and resources."""
    from .cfn import render

    if raw.get("Sid"):
        return str(raw["Sid"])
    actions = [str(a) for a in as_list(raw.get("Action"))]
    verbs = ", ".join(a.split(":", 1)[-1] for a in actions[:4]) + (", ..." if len(actions) > 4 else "")
    service = sorted({a.split(":", 1)[0] for a in actions})
    res = [str(render(r)) for r in as_list(raw.get("Resource"))]
    short = []
    for r in res[:2]:
        m = re.match(r"^\$\{(\w+)\.Arn\}(.*)$", r)
        short.append(m.group(1) + m.group(2) if m else r.replace("arn:${AWS::Partition}:", "").replace(":${AWS::Region}:${AWS::AccountId}", ""))
    more = f" +{len(res) - 2}" if len(res) > 2 else ""
    return f"{'/'.join(service)} {verbs} on {', '.join(short)}{more}"
