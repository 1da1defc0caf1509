"""DynamoDB contention as DynamoDB produces it: transaction conflicts on items an
in-flight transaction holds, and throttling of a partition (or a table) past its
throughput.

- Conflicts: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling
  A transactional request conflicting with another in-flight transactional request or a
  single-item write on the same item is cancelled (`TransactionCanceledException`,
  reason `TransactionConflict`); a single-item write on an item an in-flight transaction
  holds fails with `TransactionConflictException`.
- Throughput: a partition serves at most 3,000 RCU and 1,000 WCU a second
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html);
  a write unit is 1 KB (rounded up), a read unit 4 KB strongly consistent or 8 KB
  eventually consistent; transactions cost twice
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
  Each bucket holds one second of its rate (burst).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from .errors import Failure
from .limits import item_size, key_of, key_schema, moto_table
from .mapping import table_name

THROTTLE_MESSAGE = (
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API."
)
CONFLICT_MESSAGE = "Transaction is ongoing for the item"


def throttled() -> Failure:
    return Failure(400, "ProvisionedThroughputExceededException", THROTTLE_MESSAGE)


def transaction_conflict() -> Failure:
    return Failure(400, "TransactionConflictException", CONFLICT_MESSAGE)


def cancelled(reasons: list[dict[str, str]]) -> Failure:
    codes = ", ".join(r["Code"] for r in reasons)
    return Failure(
        400,
        "TransactionCanceledException",
        f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
        {"CancellationReasons": reasons},
    )


@dataclass
class Bucket:
    rate: float
    tokens: float
    last: float

    def refill(self, rate: float, now: float) -> None:
        if rate != self.rate:
            self.rate = rate
            self.tokens = min(self.tokens, rate)
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def can(self, cost: float) -> bool:
        # A request larger than one second of the rate passes when the bucket is full;
        # a rate below one unit a second (a test starving a table) never fills it.
        return self.tokens + 1e-9 >= min(cost, max(self.rate, 1.0))


class Contention:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        # (table, hash json, range json) -> (owner id, "tx" | "single", count)
        self.holds: dict[tuple, list] = {}
        self.buckets: dict[tuple, Bucket] = {}

    # ---------------------------------------------------------------- holds

    def new_owner(self) -> int:
        return next(self._ids)

    def hold_transaction(self, owner: int, keys: list[tuple | None], kind: str = "write") -> list[int]:
        """Takes the items for a transaction; returns the indexes that conflict (nothing
        taken then)."""
        with self.lock:
            conflicts = []
            for i, k in enumerate(keys):
                if k is None:
                    continue
                h = self.holds.get(k)
                # A transactional write conflicts with another transaction's write; a
                # transactional read with any write in flight.
                if h and h[0] != owner and (h[1] == "tx" or kind == "read"):
                    conflicts.append(i)
            if conflicts:
                return conflicts
            if kind == "write":
                for k in keys:
                    if k is not None:
                        self.holds[k] = [owner, "tx", 1]
            return []

    def hold_single(self, owner: int, key: tuple | None) -> bool:
        """A single-item write: False when a transaction holds the item."""
        if key is None:
            return True
        with self.lock:
            h = self.holds.get(key)
            if h and h[1] == "tx":
                return False
            if h:
                h[2] += 1
            else:
                self.holds[key] = [owner, "single", 1]
            return True

    def release(self, owner: int, keys: list[tuple | None]) -> None:
        with self.lock:
            for k in keys:
                if k is None:
                    continue
                h = self.holds.get(k)
                if not h:
                    continue
                if h[1] == "single":
                    h[2] -= 1
                    if h[2] <= 0:
                        del self.holds[k]
                elif h[0] == owner:
                    del self.holds[k]

    # ---------------------------------------------------------------- throughput

    def _bucket(self, key: tuple, rate: float, now: float) -> Bucket:
        b = self.buckets.get(key)
        if b is None:
            b = Bucket(rate, rate, now)
            self.buckets[key] = b
        else:
            b.refill(rate, now)
        return b

    def admit_each(self, groups: list[list[tuple[tuple, float, float]]]) -> list[int]:
        """Indexes of the groups whose demands the buckets cannot meet; when there are
        none, every group's demands are taken."""
        now = time.monotonic()
        with self.lock:
            need: dict[tuple, float] = {}
            rates: dict[tuple, float] = {}
            failing = []
            for i, demands in enumerate(groups):
                ok = True
                for k, rate, cost in demands:
                    b = self._bucket(k, rate, now)
                    if not b.can(need.get(k, 0.0) + cost):
                        ok = False
                    need[k] = need.get(k, 0.0) + cost
                    rates[k] = rate
                if not ok:
                    failing.append(i)
            if not failing:
                for k, cost in need.items():
                    self.buckets[k].tokens -= cost
            return failing

    def admit(self, demands: list[tuple[tuple, float, float]]) -> bool:
        """All of `demands` ((bucket key, rate, cost)) or none."""
        now = time.monotonic()
        with self.lock:
            buckets = [(self._bucket(k, rate, now), cost) for k, rate, cost in demands]
            if not all(b.can(cost) for b, cost in buckets):
                return False
            for b, cost in buckets:
                b.tokens -= cost
            return True

    def debit(self, key: tuple, rate: float, cost: float) -> None:
        """Charges what a read turned out to cost (the balance may go below zero: later
        requests wait for it to refill)."""
        now = time.monotonic()
        with self.lock:
            self._bucket(key, rate, now).tokens -= cost


# ---------------------------------------------------------------- costs


def write_units(size: int) -> float:
    return float(max(1, math.ceil(size / 1024)))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2.0


def existing_size(table: str, key: dict[str, Any]) -> int:
    """The stored item's size (DynamoDB's rules), 0 when absent."""
    t = moto_table(table)
    ks = key_schema(table)
    if t is None or ks is None:
        return 0
    try:
        from moto.dynamodb.models.dynamo_type import DynamoType

        h, r = ks
        if h not in key or (r and r not in key):
            return 0
        item = t.get_item(DynamoType(key[h]), DynamoType(key[r]) if r else None)
        return item_size(item.to_json()["Attributes"]) if item is not None else 0
    except Exception:  # noqa: BLE001
        return 0


def partition_of(table: str, item: dict[str, Any]) -> tuple:
    ks = key_schema(table)
    h = ks[0] if ks else ""
    import json

    return (table_name(table), json.dumps(item.get(h), sort_keys=True))


def item_key(table: str, item: dict[str, Any]) -> tuple | None:
    return key_of(table, item)


CONTENTION = Contention()
