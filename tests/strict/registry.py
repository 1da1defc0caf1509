"""Test stacks registered with the strict layer, their resolved policies, and what
their requests did: violations, usage, contention counters."""

from __future__ import annotations

import copy
import json
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cfn
from .policy import Statement, as_list, compile_statement

ROLES = {
    "discovery": "DiscoveryFunction",
    "processor": "ProcessorFunction",
    "preview": "PreviewFunction",
}

CONTENTION_DEFAULTS = {
    # On-demand tables: a partition serves up to 1,000 WCU and 3,000 RCU a second;
    # a new on-demand table starts with room for 4,000 write units a second.
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html
    "partition_write_units_per_second": 1000.0,
    "partition_read_units_per_second": 3000.0,
    "table_write_units_per_second": 4000.0,
    "transaction_hold_ms": 0.0,
}


# ---------------------------------------------------------------- policy sources


@dataclass
class RawStatement:
    index: int
    raw: dict[str, Any]
    conditions: list[tuple[str, bool]]  # (condition name, required value) from !If
    line: int = -1


def function_statements(template: dict[str, Any], logical: str) -> list[RawStatement]:
    """A function's `Policies` statements in template order, numbered the same way for
    every stack (statements under an `!If` keep their number whatever the condition)."""
    res = (template.get("Resources") or {}).get(logical)
    if res is None:
        raise KeyError(f"template.yaml has no resource {logical}")
    policies = (res.get("Properties") or {}).get("Policies") or []
    out: list[RawStatement] = []

    def walk(node: Any, conds: list[tuple[str, bool]]) -> None:
        if isinstance(node, list):
            for n in node:
                walk(n, conds)
            return
        if not isinstance(node, dict):
            return  # a managed policy's name: not modelled (none in the template)
        if "Fn::If" in node and len(node) == 1:
            name, yes, no = node["Fn::If"]
            walk(yes, conds + [(name, True)])
            walk(no, conds + [(name, False)])
            return
        if node.get("Ref") == "AWS::NoValue":
            return
        if "Statement" in node:
            for st in as_list(node["Statement"]):
                if isinstance(st, dict) and "Fn::If" in st and len(st) == 1:
                    name, yes, no = st["Fn::If"]
                    for branch, value in ((yes, True), (no, False)):
                        if isinstance(branch, dict) and branch.get("Ref") != "AWS::NoValue":
                            out.append(RawStatement(len(out), branch, conds + [(name, value)], getattr(branch, "line", -1)))
                    continue
                out.append(RawStatement(len(out), st, list(conds), getattr(st, "line", -1)))

    walk(policies, [])
    return out


def load_operator_policy(path: Path | None = None) -> dict[str, Any]:
    p = path or cfn.operator_policy_path()
    if not p.exists():
        return {"Groups": {}}
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def _sub_deep(ctx: cfn.Context, node: Any) -> Any:
    if isinstance(node, str):
        whole = node.strip()
        if whole.startswith("${") and whole.endswith("}") and whole.count("${") == 1:
            name = whole[2:-1]
            if name in ctx.params and isinstance(ctx.params[name], list):
                return list(ctx.params[name])
        return ctx.sub(node)
    if isinstance(node, list):
        out = []
        for v in node:
            r = _sub_deep(ctx, v)
            out.extend(r) if isinstance(r, list) and isinstance(v, str) else out.append(r)
        return out
    if isinstance(node, dict):
        return {k: _sub_deep(ctx, v) for k, v in node.items()}
    return node


# ---------------------------------------------------------------- a registered stack


class Sources:
    """template.yaml and docs/operator-policy.json, reloaded when they change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._template: dict[str, Any] | None = None
        self._operator: dict[str, Any] | None = None
        self._stamp: tuple = ()

    def get(self) -> tuple[dict[str, Any], dict[str, Any]]:
        tp, op = cfn.template_path(), cfn.operator_policy_path()
        stamp = (tp, tp.stat().st_mtime if tp.exists() else 0, op, op.stat().st_mtime if op.exists() else 0)
        with self._lock:
            if stamp != self._stamp or self._template is None:
                self._template = cfn.load_template(tp)
                self._operator = load_operator_policy(op)
                self._stamp = stamp
            return self._template, self._operator  # type: ignore[return-value]


SOURCES = Sources()


@dataclass
class Stack:
    prefix: str
    test: str
    parameters: dict[str, Any]
    resources: dict[str, str]
    remove: list[dict[str, str]]
    contention: dict[str, float]
    template: dict[str, Any]
    operator: dict[str, Any]
    ctx: cfn.Context = field(init=False)
    _policies: dict[str, list[Statement] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ctx = cfn.Context(self.template, self.prefix, self.parameters, self.resources)

    # -- policies
    def _function(self, logical: str, policy_name: str | None = None) -> list[Statement]:
        out = []
        for rs in function_statements(self.template, logical):
            if not all(self.ctx.condition(c) == want for c, want in rs.conditions):
                continue
            resolved = self.ctx.resolve(rs.raw)
            patterns = [str(cfn.render(r)) for r in as_list(rs.raw.get("Resource"))]
            out.append(compile_statement(policy_name or logical, rs.index, rs.raw, resolved, patterns))
        return out

    def _group(self, group: str) -> list[Statement] | None:
        spec = (self.operator.get("Groups") or {}).get(group)
        if spec is None:
            return None
        out: list[Statement] = []
        for i, raw in enumerate(as_list(spec.get("Statement"))):
            if "Include" in raw:
                included = str(raw["Include"])
                # `group:<name>`: another group's statements, as that group holds them
                # (a use counts for that group's grant); else a function's role.
                if included.startswith("group:"):
                    if included[6:] != group:
                        out.extend(self._group(included[6:]) or [])
                else:
                    out.extend(self._function(included))
                continue
            resolved = _sub_deep(self.ctx, {k: v for k, v in raw.items() if k != "UnusedByTests"})
            patterns = [str(r) for r in as_list(raw.get("Resource"))]
            out.append(compile_statement(f"operator:{group}", i, raw, resolved, patterns))
        return out

    def statements(self, role: str) -> list[Statement] | None:
        """The role's statements with this stack's values, minus `remove`; None for a
        role nobody defined."""
        if role in self._policies:
            return self._policies[role]
        if role in ROLES:
            sts: list[Statement] | None = self._function(ROLES[role])
        elif role.startswith("cli-"):
            sts = self._group(role[4:])
        else:
            sts = None
        if sts is not None:
            removed = {r["action"].lower() for r in self.remove if r.get("role") in (role, "*") and r.get("action")}
            if removed:
                trimmed = []
                for st in sts:
                    st = copy.copy(st)
                    st.actions = [a for a in st.actions if a.lower() not in removed]
                    if st.actions:
                        trimmed.append(st)
                sts = trimmed
        self._policies[role] = sts
        return sts

    def policy_name(self, role: str) -> str:
        return ROLES.get(role) or (f"the operator policy's `{role[4:]}` group" if role.startswith("cli-") else role)


# ---------------------------------------------------------------- shared state


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.stacks: dict[str, Stack] = {}
        self.violations: dict[str, list[dict[str, Any]]] = {}
        self.stats: dict[str, Counter] = {}
        self.object_sizes: dict[tuple[str, str], int] = {}
        self._usage_seen: set[tuple] = set()
        self._usage_by_prefix: dict[str, set[tuple]] = {}
        self._usage_file = None
        self._usage_dir = os.environ.get("S3IMPORTS_STRICT_USAGE") or ""

    # -- stacks
    def register(self, body: dict[str, Any]) -> Stack:
        prefix = str(body.get("prefix") or "").strip()
        if not prefix or "." in prefix or "/" in prefix:
            raise ValueError("`prefix` is required (no `.` or `/`)")
        template, operator = SOURCES.get()
        contention = dict(CONTENTION_DEFAULTS)
        contention.update(_numbers(body.get("contention") or {}))
        remove = [dict(r) for r in as_list(body.get("remove"))]
        for r in remove:
            if not r.get("role") or not r.get("action"):
                raise ValueError("each `remove` entry names a `role` and an `action`")
        stack = Stack(
            prefix=prefix,
            test=str(body.get("test") or ""),
            parameters=dict(body.get("parameters") or {}),
            resources={k: str(v) for k, v in (body.get("resources") or {}).items()},
            remove=remove,
            contention=contention,
            template=template,
            operator=operator,
        )
        # Resolve every policy now, so a template the layer cannot read fails the
        # registration rather than a request.
        for role in ROLES:
            stack.statements(role)
        for group in (operator.get("Groups") or {}):
            stack.statements(f"cli-{group}")
        with self.lock:
            self.stacks[prefix] = stack
        return stack

    def stack(self, prefix: str) -> Stack | None:
        return self.stacks.get(prefix)

    def set_contention(self, prefix: str, values: dict[str, Any]) -> dict[str, float]:
        with self.lock:
            stack = self.stacks.get(prefix)
            if stack is None:
                raise KeyError(prefix)
            stack.contention.update(_numbers(values))
            return dict(stack.contention)

    # -- records
    def count(self, prefix: str, what: str, n: int = 1) -> None:
        with self.lock:
            self.stats.setdefault(prefix, Counter())[what] += n

    def stats_of(self, prefix: str) -> dict[str, int]:
        with self.lock:
            c = self.stats.get(prefix, Counter())
            return {"throttled": c["throttled"], "conflicts": c["conflicts"], "requests": c["requests"]}

    def violation(self, prefix: str, record: dict[str, Any]) -> None:
        stack = self.stacks.get(prefix)
        record = {"prefix": prefix, "test": stack.test if stack else "", "time": time.time(), **record}
        with self.lock:
            self.violations.setdefault(prefix, []).append(record)
            self._write({"violation": record})
        print(f"strict: {record['kind']} violation [{prefix}] {record['message']}", file=sys.stderr, flush=True)

    def violations_of(self, prefix: str | None) -> list[dict[str, Any]]:
        with self.lock:
            if prefix is None:
                return [v for vs in self.violations.values() for v in vs]
            return list(self.violations.get(prefix, []))

    def clear_violations(self, prefix: str | None) -> int:
        with self.lock:
            if prefix is None:
                n = sum(len(v) for v in self.violations.values())
                self.violations.clear()
                return n
            return len(self.violations.pop(prefix, []))

    def usage(self, prefix: str, role: str, st: Statement, action: str, pattern: str) -> None:
        stack = self.stacks.get(prefix)
        test = stack.test if stack else ""
        key = (role, st.policy, st.index, action, pattern, test)
        with self.lock:
            self._usage_by_prefix.setdefault(prefix, set()).add(key)
            if key in self._usage_seen:
                return
            self._usage_seen.add(key)
            self._write({
                "role": role, "policy": st.policy, "statement": st.index, "label": st.label,
                "action": action, "resource": pattern, "test": test,
            })

    def usage_of(self, prefix: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"role": r, "policy": p, "statement": i, "action": a, "resource": res, "test": t}
                for (r, p, i, a, res, t) in sorted(self._usage_by_prefix.get(prefix, ()), key=str)
            ]

    def _write(self, line: dict[str, Any]) -> None:
        if not self._usage_dir:
            return
        if self._usage_file is None:
            Path(self._usage_dir).mkdir(parents=True, exist_ok=True)
            self._usage_file = open(Path(self._usage_dir) / f"usage-{os.getpid()}.jsonl", "a", encoding="utf-8")
        self._usage_file.write(json.dumps(line, sort_keys=True) + "\n")
        self._usage_file.flush()


def _numbers(d: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in d.items():
        if k == "prefix":
            continue
        if k not in CONTENTION_DEFAULTS:
            raise ValueError(f"unknown contention setting `{k}` (known: {', '.join(CONTENTION_DEFAULTS)})")
        out[k] = float(v)
    return out


STATE = State()
