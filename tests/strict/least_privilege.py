"""Least privilege, from what the tests did: every grant of template.yaml's functions
and of docs/operator-policy.json's CLI groups, with the tests whose requests it
allowed (the strict layer's usage files, `S3IMPORTS_STRICT_USAGE`).

    .venv/bin/python tests/strict/least_privilege.py [--usage DIR] [--out FILE] [--check]

`--usage` defaults to `target/strict-usage`. `--check` exits 1 listing every granted
(statement, action) no request used, unless it is justified:
- in template.yaml, by a comment line inside the function's `Policies` block,
      # Unused by tests: <action> — <why>
  (`—`, `--` or ` - ` between action and reason); it justifies that action in the first
  statement that starts below the comment (or the block's last statement when none
  follows);
- in docs/operator-policy.json, by the statement's `"UnusedByTests": {"<action>": "<why>"}`.
Grants a group takes with `{"Include": "<Function>"}` are the function's, and are
checked there (requests of the group count as uses of them, marked `via cli-<group>`);
with `{"Include": "group:<name>"}`, another group's, checked in that group.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "strict"  # noqa: A001

from strict import cfn  # noqa: E402
from strict.policy import as_list, glob_match, label_of  # noqa: E402
from strict.registry import ROLES, function_statements, load_operator_policy  # noqa: E402

FUNCTION_ROLES = {v: k for k, v in ROLES.items()}
_JUSTIFY = re.compile(r"^\s*#\s*Unused by tests:\s*([A-Za-z0-9*:_-]+)\s*(?:—|–|--| - )\s*(.+?)\s*$")


@dataclass
class Grant:
    policy: str  # DiscoveryFunction | operator:<group>
    index: int
    label: str
    actions: list[str]
    resources: list[str]
    justified: dict[str, str] = field(default_factory=dict)  # action (lower) -> why
    line: int = -1


def template_grants(template_path: Path) -> list[Grant]:
    template = cfn.load_template(template_path)
    lines = template_path.read_text(encoding="utf-8").splitlines()
    grants = []
    for logical in ROLES.values():
        statements = function_statements(template, logical)
        fn_grants = []
        for rs in statements:
            fn_grants.append(Grant(
                policy=logical,
                index=rs.index,
                label=label_of(rs.raw),
                actions=[str(a) for a in as_list(rs.raw.get("Action"))],
                resources=[str(cfn.render(r)) for r in as_list(rs.raw.get("Resource"))],
                line=rs.line,
            ))
        for line_no, action, why in policy_comments(lines, logical):
            after = [g for g in fn_grants if g.line > line_no]
            target = min(after, key=lambda g: g.line) if after else (fn_grants[-1] if fn_grants else None)
            if target is not None:
                target.justified[action.lower()] = why
        grants.extend(fn_grants)
    return grants


def policy_comments(lines: list[str], logical: str) -> list[tuple[int, str, str]]:
    """`# Unused by tests:` comments inside `logical`'s Policies block: (line, action, why)."""
    start = next((i for i, l in enumerate(lines) if re.match(rf"^  {re.escape(logical)}:\s*(#.*)?$", l)), None)
    if start is None:
        return []
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^ {0,2}\S", lines[i]) and not lines[i].lstrip().startswith("#")), len(lines))
    pol = next((i for i in range(start, end) if re.match(r"^\s+Policies:\s*$", lines[i])), None)
    if pol is None:
        return []
    indent = len(lines[pol]) - len(lines[pol].lstrip())
    out = []
    for i in range(pol + 1, end):
        text = lines[i]
        stripped = text.strip()
        if stripped and not stripped.startswith("#") and len(text) - len(text.lstrip()) <= indent:
            break
        m = _JUSTIFY.match(text)
        if m:
            out.append((i, m.group(1), m.group(2)))
    return out


def operator_grants(path: Path) -> list[Grant]:
    doc = load_operator_policy(path)
    grants = []
    for group, spec in (doc.get("Groups") or {}).items():
        for i, st in enumerate(as_list(spec.get("Statement"))):
            if "Include" in st:
                continue
            g = Grant(
                policy=f"operator:{group}",
                index=i,
                label=label_of(st),
                actions=[str(a) for a in as_list(st.get("Action"))],
                resources=[str(r) for r in as_list(st.get("Resource"))],
            )
            g.justified = {k.lower(): v for k, v in (st.get("UnusedByTests") or {}).items()}
            grants.append(g)
    return grants


def read_usage(directory: Path) -> tuple[dict[tuple[str, int], list[dict]], list[dict], int]:
    """Usage lines by (policy, statement), violations, files read."""
    used: dict[tuple[str, int], list[dict]] = defaultdict(list)
    violations = []
    files = sorted(directory.glob("usage-*.jsonl")) if directory.exists() else []
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "violation" in rec:
                violations.append(rec["violation"])
            elif "policy" in rec:
                used[(rec["policy"], int(rec["statement"]))].append(rec)
    return used, violations, len(files)


def users(grant: Grant, action: str, used: dict[tuple[str, int], list[dict]]) -> list[str]:
    out = set()
    own_role = FUNCTION_ROLES.get(grant.policy)
    for rec in used.get((grant.policy, grant.index), []):
        if glob_match(action, rec.get("action", ""), ignore_case=True):
            test = rec.get("test") or "(unnamed test)"
            role = rec.get("role", "")
            out.add(test if role == own_role or grant.policy.startswith("operator:") else f"{test} (via {role})")
    return sorted(out)


def report(grants: list[Grant], used, violations, nfiles: int) -> tuple[str, list[str]]:
    lines = [
        "# Least privilege: each grant and the tests that use it",
        "",
        f"Made by `tests/strict/least_privilege.py` from {nfiles} usage file(s) of the strict layer "
        "(docs/testing.md). A grant no test uses is listed as **unused**, with the template's "
        "justification when it has one.",
        "",
    ]
    if violations:
        kinds = defaultdict(int)
        for v in violations:
            kinds[v.get("kind", "?")] += 1
        lines += [f"Violations recorded in these files: {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))} "
                  "(tests that provoke refusals on purpose record them too).", ""]
    unjustified = []
    by_policy: dict[str, list[Grant]] = defaultdict(list)
    for g in grants:
        by_policy[g.policy].append(g)
    for policy, gs in by_policy.items():
        title = f"`{policy}` (template.yaml)" if not policy.startswith("operator:") else f"CLI group `{policy[9:]}` (docs/operator-policy.json)"
        lines += [f"## {title}", "", "| # | Statement | Action | Resource | Used by |", "|---|---|---|---|---|"]
        for g in gs:
            for action in g.actions:
                who = users(g, action, used)
                if who:
                    shown = ", ".join(f"`{t}`" for t in who[:6]) + (f" (+{len(who) - 6} more)" if len(who) > 6 else "")
                elif action.lower() in g.justified:
                    shown = f"unused — {g.justified[action.lower()]}"
                else:
                    shown = "**unused**"
                    unjustified.append(f"{policy} statement {g.index} ({g.label}): {action} on {', '.join(g.resources)}")
                res = "<br>".join(f"`{r}`" for r in g.resources)
                lines.append(f"| {g.index} | {g.label} | `{action}` | {res} | {shown} |")
        lines.append("")
    return "\n".join(lines), unjustified


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--usage", type=Path, default=cfn.repo_root() / "target" / "strict-usage")
    ap.add_argument("--template", type=Path, default=None)
    ap.add_argument("--operator-policy", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--check", action="store_true", help="exit 1 when a grant is unused and not justified")
    args = ap.parse_args(argv)
    grants = template_grants(args.template or cfn.template_path())
    op = args.operator_policy or cfn.operator_policy_path()
    grants += operator_grants(op)
    used, violations, nfiles = read_usage(args.usage)
    text, unjustified = report(grants, used, violations, nfiles)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    if args.check and unjustified:
        print(f"{len(unjustified)} granted action(s) no test used, without a `# Unused by tests: <action> — <why>` "
              "comment (template.yaml) or `UnusedByTests` entry (docs/operator-policy.json):", file=sys.stderr)
        for u in unjustified:
            print(f"  - {u}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
