"""CloudFormation: template.yaml loaded with its short-form tags, and the intrinsics a
function's `Policies` use resolved for one test stack.

Only what IAM statements need is resolved: `Ref`, `Fn::GetAtt` (`.Arn`, `.QueueName`,
`.TopicName`), `Fn::Sub` (both forms), `Fn::Select`, `Fn::Split`, `Fn::Join`, `Fn::If`
with the template's `Conditions` (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`,
`Condition`), `AWS::NoValue` and the pseudo parameters.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"

NOVALUE = object()  # AWS::NoValue: dropped from the list or map that holds it


def repo_root() -> Path:
    """The workspace root: this package lives in `<repo>/tests/strict/`."""
    return Path(__file__).resolve().parent.parent.parent


def template_path() -> Path:
    env = os.environ.get("S3IMPORTS_TEMPLATE")
    return Path(env) if env else repo_root() / "template.yaml"


def operator_policy_path() -> Path:
    env = os.environ.get("S3IMPORTS_OPERATOR_POLICY")
    return Path(env) if env else repo_root() / "docs" / "operator-policy.json"


# ---------------------------------------------------------------- loading


class Node(dict):
    """A mapping that remembers the template line it starts on (0-based)."""

    line: int = -1


class CfnLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: CfnLoader, node: yaml.MappingNode) -> Node:
    loader.flatten_mapping(node)
    out = Node()
    out.line = node.start_mark.line
    for k, v in node.value:
        out[loader.construct_object(k, deep=True)] = loader.construct_object(v, deep=True)
    return out


CfnLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_FN = {
    "Ref": "Ref",
    "Condition": "Condition",
}


def _tag_constructor(name: str):
    full = _FN.get(name, f"Fn::{name}")

    def construct(loader: CfnLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = _construct_mapping(loader, node)
        out = Node({full: value})
        out.line = node.start_mark.line
        return out

    return construct


for _name in [
    "Ref", "Condition", "GetAtt", "Sub", "Select", "Split", "Join", "If", "Equals",
    "Not", "And", "Or", "FindInMap", "Base64", "GetAZs", "ImportValue", "Cidr",
    "Length", "ToJsonString", "Transform",
]:
    CfnLoader.add_constructor(f"!{_name}", _tag_constructor(_name))


def load_template(path: Path | None = None) -> dict[str, Any]:
    with open(path or template_path(), encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 (a SafeLoader subclass)


# ---------------------------------------------------------------- names of a test stack

# Stack::with_prefix's names (shared/src/stack.rs): used when a registration omits one.
DEFAULT_NAMES = {
    "ConfigsTable": "configs",
    "LedgerTable": "ledger",
    "UsersTable": "users",
    "AnonymousUsersTable": "anonymous-users",
    "EventsTable": "events",
    "AuxiliaryTable": "auxiliary",
    "SegmentsTable": "segments",
    "FilesQueue": "files",
    "FilesDeadLetterQueue": "files-dlq",
    "ReportsBucket": "reports",
    "AlertsTopic": "alerts",
    "AlarmTopic": "alarms",
}


def table_arn(name: str) -> str:
    return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def queue_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:sqs:{REGION}:{account}:{name}"


def bucket_arn(name: str) -> str:
    return f"arn:{PARTITION}:s3:::{name}"


def topic_arn(name: str) -> str:
    return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{name}"


class Context:
    """Parameter values, resource names and conditions of one test stack."""

    def __init__(
        self,
        template: dict[str, Any],
        prefix: str,
        parameters: dict[str, Any] | None = None,
        resources: dict[str, str] | None = None,
    ):
        self.template = template
        self.prefix = prefix
        self.params: dict[str, Any] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            value = (parameters or {}).get(name, spec.get("Default"))
            if value is None and name == "SenderEmail":
                value = "s3imports@example.com"  # Stack::with_prefix's sender
            if value is None:
                continue
            if spec.get("Type") == "CommaDelimitedList":
                if isinstance(value, list):
                    value = [str(v).strip() for v in value]
                else:
                    value = [v.strip() for v in str(value).split(",")]
                value = [v for v in value if v]
            else:
                value = str(value)
            self.params[name] = value
        for name, value in (parameters or {}).items():
            self.params.setdefault(name, value)
        self.resources = dict(resources or {})
        self._conditions: dict[str, bool] = {}

    # -- resources
    def _type(self, logical: str) -> str:
        return ((self.template.get("Resources") or {}).get(logical) or {}).get("Type", "")

    def _name(self, logical: str) -> str:
        given = self.resources.get(logical)
        if given:
            return given
        suffix = DEFAULT_NAMES.get(logical, logical)
        if self._type(logical) == "AWS::SNS::Topic":
            return topic_arn(f"{self.prefix}-{suffix}")
        return f"{self.prefix}-{suffix}"

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Partition": PARTITION,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": self.prefix,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{self.prefix}/0",
        }
        if name == "AWS::NoValue":
            return NOVALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in (self.template.get("Resources") or {}) or name in self.resources:
            kind = self._type(name)
            value = self._name(name)
            if kind == "AWS::SQS::Queue":
                return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{value}"
            return value
        raise KeyError(f"!Ref {name}: no such parameter or resource")

    def get_att(self, logical: str, attr: str) -> str:
        kind = self._type(logical)
        name = self._name(logical)
        if kind == "AWS::DynamoDB::Table" and attr == "Arn":
            return name if name.startswith("arn:") else table_arn(name)
        if kind == "AWS::SQS::Queue":
            if attr == "Arn":
                return queue_arn(name)
            if attr == "QueueName":
                return name
            if attr == "QueueUrl":
                return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if kind == "AWS::S3::Bucket" and attr == "Arn":
            return bucket_arn(name)
        if kind == "AWS::SNS::Topic":
            arn = name if name.startswith("arn:") else topic_arn(name)
            if attr == "TopicArn":
                return arn
            if attr == "TopicName":
                return arn.rsplit(":", 1)[-1]
        if attr == "Arn":
            if kind == "AWS::IAM::Role" or logical.endswith("Role"):
                return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"
            if kind == "AWS::Serverless::Function":
                return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"
        return f"{name}.{attr}"

    # -- conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = (self.template.get("Conditions") or {}).get(name)
            if spec is None:
                raise KeyError(f"no condition {name}")
            self._conditions[name] = bool(self.resolve(spec))
        return self._conditions[name]

    # -- intrinsics
    def sub(self, text: str, variables: dict[str, Any] | None = None) -> Any:
        variables = variables or {}

        def one(m: re.Match) -> str:
            inner = m.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                value = variables[inner]
            elif "." in inner and not inner.startswith("AWS::"):
                logical, attr = inner.split(".", 1)
                value = self.get_att(logical, attr)
            else:
                value = self.ref(inner)
            if isinstance(value, list):
                return ",".join(value)
            return str(value)

        return re.sub(r"\$\{([^}]*)\}", one, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.resolve(v) for v in node]
            return [v for v in out if v is not NOVALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(parts[0], parts[1])
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    variables = {k: self.resolve(v) for k, v in (arg[1] or {}).items()}
                    return self.sub(arg[0], variables)
                return self.sub(arg)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(v) for v in self.resolve(items))
            if key == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(v) for v in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if key == "Condition":
                return self.condition(arg)
        out = Node()
        out.line = getattr(node, "line", -1)
        for k, v in node.items():
            r = self.resolve(v)
            if r is not NOVALUE:
                out[k] = r
        return out


# ---------------------------------------------------------------- rendering (for labels)


def render(node: Any) -> Any:
    """An unresolved expression as a stable string (`${LedgerTable.Arn}`), the same for
    every test stack: how usage and the least-privilege table name resources."""
    if isinstance(node, list):
        return [render(v) for v in node]
    if not isinstance(node, dict) or len(node) != 1:
        return node
    (key, arg), = node.items()
    if key == "Ref":
        return "${" + str(arg) + "}"
    if key == "Fn::GetAtt":
        parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
        return "${" + ".".join(parts) + "}"
    if key == "Fn::Sub":
        if isinstance(arg, list):
            text = arg[0]
            for var, value in (arg[1] or {}).items():
                text = text.replace("${" + var + "}", str(render(value)))
            return text
        return arg
    if key == "Fn::Select":
        index, items = arg
        if isinstance(items, dict) and "Fn::Split" in items:
            sep, text = items["Fn::Split"]
            if sep == "@" and str(index) == "1":
                return "${" + str(render(text)).strip("${}") + ":domain}"
            return f"{render(text)}.split({sep!r})[{index}]"
        return f"{render(items)}[{index}]"
    if key == "Fn::Split":
        sep, text = arg
        return f"split({render(text)!s}, {sep!r})"
    if key == "Fn::If":
        return render(arg[1])
    return str(node)
