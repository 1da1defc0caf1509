#!/usr/bin/env python3
"""A large file at DynamoDB's pace: the time of a 5 M-row users file and a 50 M-row
events file when the table, not the code, sets the pace. Printed by `make bench` from
its own measurements (results.jsonl) and the template's defaults.

The code's pace is measured: rows/s of one worker through the real processor against
the modelled DynamoDB (bench/src/model.rs), and each kind's write units a row from
its items' sizes (`pipeline --units`). A large file is cut into chunks of ChunkMB,
each written by its own worker, so the code asks for `chunks x rows/s`. What the
table gives it, second by second (each assumption from AWS's pages):

- a new on-demand table serves 4,000 write units/s at once, and up to double its
  previous peak; more than that takes 30 minutes a doubling
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html);
- a table pre-warmed by the stack (`DestinationWarmWriteUnits`, at most 40,000, the
  default per-table quota) serves that at once
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput.html);
- provisioned capacity serves what it is set to (10,000 here, an example);
- one partition key takes at most 1,000 write units/s until DynamoDB splits it for
  heat: every member of a segment shares the segment's key, and every event of a user
  the user's (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html);
- an item costs a write unit per KB begun (measured per kind), `BatchWriteItem`
  takes 25 items and a transaction 100
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html).

It also sets the model's DynamoDB requests per 1,000 rows beside moto's for the same
kind of file (the e2e case), so the model's request counts are checked against the
real writer's.

usage: capacity.py RESULTS TEMPLATE
"""

import json
import math
import sys

from cost import template_default

ON_DEMAND_START = 4_000
DOUBLING_SECS = 30 * 60
WARM = 40_000
PROVISIONED = 10_000
PARTITION = 1_000
LARGE = {"users": 5_000_000, "events": 50_000_000}
MODES = ["new on-demand", "pre-warmed 40,000", "provisioned 10,000"]


def minutes(rows, wcu_per_row, demand_rows_s, mode, hot_cap_rows_s=None):
    """Minutes to write `rows` asking `demand_rows_s`, the table giving what `mode`
    allows each second (and a hot partition at most `hot_cap_rows_s`)."""
    done, t, cap = 0.0, 0, ON_DEMAND_START
    saturated_since = 0
    while done < rows:
        if mode == MODES[0]:
            allowed = cap
        elif mode == MODES[1]:
            allowed = WARM
        else:
            allowed = PROVISIONED
        rate = min(demand_rows_s, allowed / wcu_per_row)
        if hot_cap_rows_s is not None:
            rate = min(rate, hot_cap_rows_s)
        done += rate
        t += 1
        # On demand: a peak held for 30 minutes doubles what the table serves.
        if mode == MODES[0] and rate * wcu_per_row >= cap * 0.99:
            if t - saturated_since >= DOUBLING_SECS:
                cap *= 2
                saturated_since = t
        else:
            saturated_since = t
        if t > 48 * 3600:
            return float("inf")
    return t / 60


def main(results_path, template_path):
    rows = [json.loads(line) for line in open(results_path)]
    template = open(template_path).read()
    chunk_bytes = template_default(template, "ChunkMB") << 20
    units = {r["units_kind"]: r for r in rows if "units_kind" in r}
    model = {r["model"]: r for r in rows if "model" in r and r["workers"] == 1}
    if not units or not model:
        print("\nlarge files at DynamoDB's pace: needs the units and model cases")
        return
    print("\nlarge files at DynamoDB's pace (scripts/capacity.py): one chunk of ChunkMB a worker")
    print(f"{'kind':<38}{'rows/s a worker':>16}{'item B':>8}{'WCU a row':>10}{'chunks':>8}"
          + "".join(f"{m:>20}" for m in MODES))
    cases = [
        ("events", "events", "events", None),
        ("registered_users", "users", "users", None),
        ("registered users in a segment", "users", "users", PARTITION),
        ("anonymous_users", "users", "users", None),
        ("auxiliary", "events", "events", None),
    ]
    for name, kind, m, hot in cases:
        u = units.get(name if name in units else "registered_users")
        if m not in model or u is None:
            continue
        per_worker = model[m]["rows_per_s"]
        wcu = u["write_units_per_row"]
        large = LARGE[kind]
        chunks = max(1, math.ceil(large * u["plain_bytes"] / u["rows"] / chunk_bytes))
        demand = per_worker * chunks
        # A segment's members: one write unit each on the segment's one partition key.
        times = [minutes(large, wcu, demand, mode, hot) for mode in MODES]
        label = f"{name} ({large // 1_000_000} M)"
        print(f"{label:<38}{per_worker:>16,.0f}{u['item_bytes_per_row']:>8.0f}{wcu:>10.2f}{chunks:>8}"
              + "".join(f"{t:>16.1f} min" for t in times))

    moto = {r["kind"]: r for r in rows if "kind" in r}
    pairs = [("events", "events"), ("users", "registered_users")]
    lines = []
    for m, kind in pairs:
        if m in model and kind in moto:
            r = model[m]
            base = (r["requests"] - r["throttled"]) * 1000 / r["rows"]
            lines.append(f"  {kind:<18} model {base:>8.1f}   moto {moto[kind]['requests_per_1000_rows']:>8.1f}")
    if lines:
        print("DynamoDB requests per 1,000 rows, the model's (throttled retries left out) against moto's:")
        print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
