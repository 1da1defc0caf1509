"""Shared by the strict layer's tests: one real server (tests/strict/server.py in a
subprocess on a free loopback port) for the whole run, boto3 clients as any principal,
and a test stack provisioned with the harness's own key."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
from botocore.config import Config

SERVER = Path(__file__).resolve().parent / "server.py"
_lock = threading.Lock()
_servers: dict[tuple, "Server"] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.usage_dir = tempfile.mkdtemp(prefix="strict-usage-")
        self.log = tempfile.NamedTemporaryFile(prefix="strict-server-", suffix=".log", delete=False)
        full_env = dict(os.environ)
        full_env.update({"S3IMPORTS_STRICT_USAGE": self.usage_dir, **(env or {})})
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            env=full_env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the strict server exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.endpoint + "/_strict/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the strict server did not start within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if not self.log.closed:
            self.log.close()
            if os.environ.get("STRICT_KEEP_LOGS") is None:
                os.unlink(self.log.name)
        shutil.rmtree(self.usage_dir, ignore_errors=True)

    # -- control API
    def call(self, method: str, path: str, doc: object | None = None) -> tuple[int, object]:
        data = json.dumps(doc).encode() if doc is not None else None
        req = urllib.request.Request(self.endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def client(self, service: str, key: str = "testing", **config: object):
        cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"}, **config)
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key="testing", config=cfg)

    def violations(self, prefix: str) -> list[dict]:
        return self.call("GET", f"/_strict/violations?prefix={prefix}")[1]  # type: ignore[return-value]

    def take_violations(self, prefix: str) -> list[dict]:
        found = self.violations(prefix)
        self.call("DELETE", f"/_strict/violations?prefix={prefix}")
        return found


def server(**env: str) -> Server:
    """The run's shared server (one per distinct environment)."""
    key = tuple(sorted(env.items()))
    with _lock:
        if key not in _servers:
            _servers[key] = Server(env)
        return _servers[key]


def new_prefix() -> str:
    return "t" + uuid.uuid4().hex[:10]


def parameters(prefix: str) -> dict[str, str]:
    return {
        "SenderEmail": "s3imports@example.com",
        "SourceBucketPattern": f"{prefix}-src*",  # not the stack's own reports bucket
        "SecretsPrefix": f"{prefix}/",
        "AlertTopicPattern": f"{prefix}-*",
        "AllowSourcePostProcessing": "true",
        "AssumableRolePattern": "arn:aws:iam::*:role/s3imports-*",
        "CustomerAccountIds": "111122223333,123456789012",
    }


def resources(prefix: str) -> dict[str, str]:
    return {
        "ConfigsTable": f"{prefix}-configs",
        "LedgerTable": f"{prefix}-ledger",
        "UsersTable": f"{prefix}-users",
        "AnonymousUsersTable": f"{prefix}-anonymous-users",
        "EventsTable": f"{prefix}-events",
        "AuxiliaryTable": f"{prefix}-auxiliary",
        "SegmentsTable": f"{prefix}-segments",
        "FilesQueue": f"{prefix}-files",
        "FilesDeadLetterQueue": f"{prefix}-files-dlq",
        "ReportsBucket": f"{prefix}-reports",
        "AlertsTopic": f"arn:aws:sns:us-east-1:123456789012:{prefix}-alerts",
    }


TABLES = {
    "configs": ("id", None),
    "ledger": ("pk", "sk"),
    "users": ("user_id", None),
    "events": ("user_id", "event_key"),
    "segments": ("segment", "member"),
}


class Stack:
    """A registered, provisioned test stack."""

    def __init__(self, srv: Server, test: str, tables: tuple[str, ...] = tuple(TABLES), **registration: object) -> None:
        self.srv = srv
        self.prefix = new_prefix()
        body = {"prefix": self.prefix, "test": test, "parameters": parameters(self.prefix),
                "resources": resources(self.prefix), **registration}
        status, answer = srv.call("POST", "/_strict/stack", body)
        assert status == 200, answer
        ddb = srv.client("dynamodb")
        for t in tables:
            h, r = TABLES[t]
            keys = [{"AttributeName": h, "KeyType": "HASH"}] + ([{"AttributeName": r, "KeyType": "RANGE"}] if r else [])
            attrs = [{"AttributeName": h, "AttributeType": "S"}] + ([{"AttributeName": r, "AttributeType": "S"}] if r else [])
            ddb.create_table(TableName=self.name(t), KeySchema=keys, AttributeDefinitions=attrs, BillingMode="PAY_PER_REQUEST")

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def key(self, role: str) -> str:
        return f"{role}.{self.prefix}"

    def client(self, service: str, role: str = "testing", **config: object):
        return self.srv.client(service, "testing" if role == "testing" else self.key(role), **config)

    def violations(self) -> list[dict]:
        return self.srv.violations(self.prefix)

    def take_violations(self) -> list[dict]:
        return self.srv.take_violations(self.prefix)

    def stats(self) -> dict:
        return self.srv.call("GET", f"/_strict/stats?prefix={self.prefix}")[1]  # type: ignore[return-value]

    def contention(self, **settings: float) -> None:
        status, answer = self.srv.call("POST", "/_strict/contention", {"prefix": self.prefix, **settings})
        assert status == 200, answer
