#!/usr/bin/env python3
"""The cost of importing 1 M rows in AWS, per import kind, plain and PGP: printed by
`make bench` from its own measurements (results.jsonl), the stack's template (the
processor's memory and timeout) and one price table (bench/prices.json) that an
operator edits to their region and date.

What each figure is made of (docs/performance.md, "What a million rows costs"):
- Lambda: the processor's billed seconds are the longer of reading (the in-process
  pipeline's rows/s, plain or PGP) and writing (the modelled DynamoDB's rows/s for one
  worker, users or events), at ProcessorMemoryMB; one request an invocation of
  ProcessorTimeoutSeconds less the 60 s margin; plus discovery's run (256 MB, ~1 s).
- DynamoDB: each row's write units by the size of its item (`pipeline --units`, as
  DynamoDB sizes items), plus the ledger's writes (LEDGER_WRITES an invocation).
- S3: a GET an invocation, discovery's three list requests; a PGP file's staged
  plaintext (a PUT, a GET, an hour of storage) when it is split into chunks.
- SQS: send, receive and delete a message, and two more requests an invocation
  (visibility, the continuation's message). SES: one email a run. Secrets Manager:
  a PGP key read an invocation.

usage: cost.py RESULTS PRICES TEMPLATE
"""

import json
import math
import re
import sys

ROWS = 1_000_000
# Ledger writes of one invocation: the file's start, checkpoint and outcome, the run's
# counters (an estimate: each is one small item's write).
LEDGER_WRITES = 20
KINDS = ["events", "registered_users", "anonymous_users", "auxiliary"]
PIPELINE = {"plain": "plain CSV", "PGP": "PGP (AES-256, zlib)"}
# MoEngage's published rates for S3 imports.
MOENGAGE = {"users": 600_000, "events": 5_000_000}


def template_default(template, name):
    m = re.search(rf"^  {name}:\n(?:    .*\n)*?    Default: (\d+)", template, re.M)
    if not m:
        sys.exit(f"{sys.argv[0]}: no default for {name} in template.yaml")
    return int(m.group(1))


def main(results_path, prices_path, template_path):
    rows = [json.loads(line) for line in open(results_path)]
    prices = json.load(open(prices_path))
    template = open(template_path).read()
    memory_gb = template_default(template, "ProcessorMemoryMB") / 1024
    budget = template_default(template, "ProcessorTimeoutSeconds") - 60

    units = {r["units_kind"]: r for r in rows if "units_kind" in r}
    # The largest file's figure of each pipeline case (the steadiest).
    read = {}
    for wrapping, case in PIPELINE.items():
        measured = [r for r in rows if r.get("case") == case]
        if measured:
            read[wrapping] = max(measured, key=lambda r: r["mb"])["rows_per_s"]
    write = {r["model"]: r["rows_per_s"] for r in rows if "model" in r and r["workers"] == 1}
    if not units or not read or not write:
        print("\ncost of 1 M rows: needs the pipeline, units and model cases (BENCH_SIZES not empty)")
        return

    p = prices
    print(f"\ncost of 1 M rows in {p['region']} (prices of {p['as_of']}, bench/prices.json; "
          f"processor {memory_gb:g} GB, one worker, no failed rows)")
    print(f"{'kind':<18}{'file':>6}{'Lambda s':>10}{'write units':>13}{'Lambda':>9}{'DynamoDB':>10}"
          f"{'S3':>9}{'SQS':>9}{'SES':>8}{'Secrets':>9}{'total':>9}")
    for kind in KINDS:
        if kind not in units:
            continue
        u = units[kind]
        model = "users" if kind.endswith("users") else "events"
        for wrapping in PIPELINE:
            if wrapping not in read or model not in write:
                continue
            secs = max(ROWS / read[wrapping], ROWS / write[model])
            invocations = math.ceil(secs / budget)
            gb_s = secs * memory_gb + 0.25  # discovery: 256 MB for about a second
            wru = ROWS * u["write_units_per_row"] + LEDGER_WRITES * invocations
            plain_gb = ROWS * u["plain_bytes"] / u["rows"] / 1e9
            staged = wrapping == "PGP"
            lam = gb_s * p["lambda_arm64_per_gb_second"] + (invocations + 1) * p["lambda_per_million_requests"] / 1e6
            ddb = wru * p["dynamodb_on_demand_per_million_write_units"] / 1e6
            s3 = ((invocations + staged) * p["s3_per_1000_get"]
                  + (3 + staged) * p["s3_per_1000_put_copy_list"]) / 1000
            s3 += staged * plain_gb * p["s3_standard_per_gb_month"] / 730
            sqs = (3 + 2 * invocations) * p["sqs_standard_per_million_requests"] / 1e6
            ses = p["ses_per_1000_emails"] / 1000
            secrets = (invocations if wrapping == "PGP" else 0) * p["secretsmanager_per_10000_api_calls"] / 10000
            total = lam + ddb + s3 + sqs + ses + secrets
            print(f"{kind:<18}{wrapping:>6}{secs:>10,.0f}{wru:>13,.0f}{lam:>9.4f}{ddb:>10.4f}"
                  f"{s3:>9.5f}{sqs:>9.6f}{ses:>8.4f}{secrets:>9.6f}{total:>9.4f}")
    print("rows an hour, one worker (modelled DynamoDB) against MoEngage's published rates:")
    for model, rate in MOENGAGE.items():
        if model in write:
            print(f"  {model:<7}{write[model] * 3600:>14,.0f} rows/h   MoEngage {rate:>10,} rows/h")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
