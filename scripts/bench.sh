#!/usr/bin/env bash
# `make bench`: throughput and memory of the import path, printed as a table.
#   BENCH_SIZES="10 100 1000"   file sizes in MB for the in-process path
#   BENCH_E2E_ROWS=100000       rows per events / auxiliary file against moto
#   BENCH_USER_ROWS=10000       rows per users file (the reload case upserts one a row: slow in moto)
#   BENCH_OLD_FILES=10000       old files in the discovery folder (100000: nearly 2 h in moto)
#   BENCH_SCALE_OLD_FILES=1000000  old files in the in-memory discovery folder
#   BENCH_HOSTILE_MB=1000       plaintext size of each hostile input (an endless line, ...)
#   BENCH_MODEL_EVENT_ROWS=1000000, BENCH_MODEL_USER_ROWS=100000, BENCH_MODEL_BUDGET=20,
#   BENCH_MODEL_WORKERS=8       the modelled-DynamoDB cases (rows, seconds an invocation,
#                               parallel workers for the chunked cases)
#   BENCH_SIZES="" BENCH_MOTO=0 only the hostile and modelled cases
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sizes="${BENCH_SIZES-10 100 1000}"
cargo build --release --locked -p s3imports-bench
bin="$root/target/release/s3imports-bench"
work="$(mktemp -d "${TMPDIR:-/tmp}/s3imports-bench.XXXXXX")"
export GNUPGHOME="$work/gnupg"
cleanup() { gpgconf --kill gpg-agent 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -m 700 "$GNUPGHOME"
results="$work/results.jsonl"
pass="bench-passphrase"
g() { gpg --batch --quiet --yes --pinentry-mode loopback --passphrase "$pass" --trust-model always "$@"; }
for who in importer signer; do
  g --quick-gen-key "$who <$who@bench.example>" ed25519 sign never 2>/dev/null
  fpr="$(gpg --batch --with-colons --list-keys "$who@bench.example" | awk -F: '/^fpr/ {print $10; exit}')"
  g --quick-add-key "$fpr" cv25519 encr never 2>/dev/null
done
g --armor --export-secret-keys importer@bench.example >"$work/key.asc"
g --armor --export signer@bench.example >"$work/signer.asc"

record() { python3 -c 'import json,sys; d=json.loads(sys.argv[2]); d.update(json.loads(sys.argv[1])); print(json.dumps(d))' "$1" "$2" >>"$results"; }

for mb in $sizes; do
  echo "== ${mb} MB" >&2
  plain="$work/plain-$mb.csv"
  "$bin" gen --mb "$mb" --out "$plain" >/dev/null
  g --cipher-algo AES256 --compress-algo zlib -r importer@bench.example -o "$plain.pgp" --encrypt "$plain"
  g --cipher-algo AES256 --compress-algo zlib -r importer@bench.example -u signer@bench.example -o "$plain.signed.pgp" --sign --encrypt "$plain"
  pb=$(stat -c %s "$plain")
  record "{\"case\": \"plain CSV\", \"mb\": $mb}" "$("$bin" pipeline --file "$plain")"
  # The same, also building each row's whole DynamoDB item as the sink does before it
  # sends (on the writer's side in the Lambda, so not part of the reading core's path).
  record "{\"case\": \"plain CSV + DynamoDB items\", \"mb\": $mb}" "$("$bin" pipeline --file "$plain" --items)"
  record "{\"case\": \"PGP (AES-256, zlib)\", \"mb\": $mb}" \
    "$("$bin" pipeline --file "$plain.pgp" --key "$work/key.asc" --passphrase "$pass" --plain-bytes "$pb")"
  record "{\"case\": \"PGP signed + encrypted\", \"mb\": $mb}" \
    "$("$bin" pipeline --file "$plain.signed.pgp" --key "$work/key.asc" --passphrase "$pass" --signer "$work/signer.asc" --plain-bytes "$pb")"
  record "{\"case\": \"decryption stage alone\", \"mb\": $mb}" \
    "$("$bin" decrypt --file "$plain.pgp" --key "$work/key.asc" --passphrase "$pass")"
  start=$(date +%s.%N)
  g --decrypt "$plain.pgp" >/dev/null 2>&1
  secs=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)")
  bytes=$(stat -c %s "$plain.pgp")
  record "{\"case\": \"gpg --decrypt (reference)\", \"mb\": $mb}" \
    "{\"bytes_in\": $bytes, \"secs\": $secs, \"mb_per_s\": $(python3 -c "print($bytes/1e6/$secs)")}"
  rm -f "$plain" "$plain.pgp" "$plain.signed.pgp"
done

# Each kind's items sized as DynamoDB bills them (write units a row), for the cost of
# 1 M rows printed at the end (scripts/cost.py, prices in bench/prices.json).
if [ -n "$sizes" ]; then
  echo "== item sizes" >&2
  "$bin" gen --mb 10 --out "$work/units.csv" >/dev/null
  for kind in events registered_users anonymous_users auxiliary; do
    record "{\"units_kind\": \"$kind\"}" "$("$bin" pipeline --file "$work/units.csv" --units --kind "$kind")"
  done
  rm -f "$work/units.csv"
fi

# Hostile inputs (issue: memory bounded by row size): peak RSS must stay flat (under
# 100 MB) whatever a row holds. Each is written as it streams, never held whole.
echo "== hostile inputs" >&2
hmb="${BENCH_HOSTILE_MB:-1000}"
python3 - "$work" "$hmb" <<'PY'
import gzip, sys
work, mb = sys.argv[1], int(sys.argv[2])
header = b"customer_id,purchased_at,order_id,amount,email,city,items\n"
chunk = b"a" * (1 << 20)
# One line that never ends, gzipped (a few MB on disk, `mb` MB of plaintext).
with gzip.open(f"{work}/endless-line.csv.gz", "wb", compresslevel=1) as f:
    f.write(header)
    for _ in range(mb):
        f.write(chunk)
# The same line as plain text, for the PGP case.
with open(f"{work}/endless-line.csv", "wb") as f:
    f.write(header)
    for _ in range(mb):
        f.write(chunk)
# Rows of just over 1 MiB each.
with gzip.open(f"{work}/mib-rows.csv.gz", "wb", compresslevel=1) as f:
    f.write(header)
    for i in range(mb):
        f.write(b"u%d,2026-11-01 00:00:00,o,1," % i + b"x" * ((1 << 20) + 16) + b",c,[a]\n")
# A stray quote, then valid rows to the end: one endless quoted field.
with gzip.open(f"{work}/stray-quote.csv.gz", "wb", compresslevel=1) as f:
    f.write(header + b'"')
    row = b"u1,2026-11-01 00:00:00,o-1,1.5,user1@example.com,City 1,[a|b]\n"
    for _ in range(mb * (1 << 20) // len(row)):
        f.write(row)
# Every row bad (two fields): the failed-rows report reaches its cap.
with gzip.open(f"{work}/bad-rows.csv.gz", "wb", compresslevel=1) as f:
    f.write(header)
    row = b"u1," + b"b" * 200 + b"\n"
    for _ in range(mb * (1 << 20) // len(row)):
        f.write(row)
PY
g --compress-algo zlib -r importer@bench.example -o "$work/endless-line.csv.pgp" --encrypt "$work/endless-line.csv"
for case in endless-line.csv.gz endless-line.csv.pgp mib-rows.csv.gz stray-quote.csv.gz bad-rows.csv.gz; do
  args=(--file "$work/$case" --hostile --plain-bytes $((hmb << 20)))
  [[ "$case" == *.pgp ]] && args+=(--key "$work/key.asc" --passphrase "$pass")
  record "{\"case\": \"hostile: $case\", \"mb\": $hmb}" "$("$bin" pipeline "${args[@]}")"
done
rm -f "$work"/endless-line.csv* "$work"/mib-rows.csv.gz "$work"/stray-quote.csv.gz "$work"/bad-rows.csv.gz

# DynamoDB simulated by modelled latency (bench/src/model.rs): rows/s per worker through
# checkpoints and continuations, each invocation given BENCH_MODEL_BUDGET seconds.
echo "== modelled DynamoDB" >&2
budget="${BENCH_MODEL_BUDGET:-20}"
workers="${BENCH_MODEL_WORKERS:-8}"
erows="${BENCH_MODEL_EVENT_ROWS:-1000000}"
urows="${BENCH_MODEL_USER_ROWS:-100000}"
# One worker; then the same file cut into about `workers` chunks (rows of ~80 bytes).
for spec in "events $erows" "users $urows"; do
  set -- $spec
  "$bin" model --kind "$1" --rows "$2" --budget-secs "$budget" >>"$results"
  chunk_mb=$(( ($2 * 80 / workers + (1 << 20) - 1) >> 20 ))
  "$bin" model --kind "$1" --rows "$2" --budget-secs "$budget" --workers "$workers" --chunk-mb "$chunk_mb" >>"$results"
done
# The same users file when every user is already there (each upserted alone).
"$bin" model --kind users-upserts --rows "$urows" --budget-secs "$budget" >>"$results"

# Discovery at a scale moto cannot hold: the in-memory ports, S3's page of 1,000 keys
# and a modelled 150 ms a list request (bench/src/sweep.rs).
echo "== discovery at scale" >&2
"$bin" discovery-scale --old "${BENCH_SCALE_OLD_FILES:-1000000}" >>"$results"

if [ "${BENCH_MOTO:-1}" = 1 ]; then
  echo "== against moto" >&2
  "$bin" e2e --rows "${BENCH_E2E_ROWS:-100000}" --user-rows "${BENCH_USER_ROWS:-10000}" >>"$results"
  "$bin" discovery --old "${BENCH_OLD_FILES:-10000}" >>"$results"
fi

python3 - "$results" <<'PY'
import json, os, platform, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"\nmachine: {cpu}, {os.cpu_count()} cores; one core used by the in-process path\n")
print(f"{'case':<30}{'size':>8}{'MB/s':>10}{'rows/s':>12}{'peak RSS':>11}")
for r in rows:
    if "case" in r:
        rps = f"{r['rows_per_s']:,.0f}" if "rows_per_s" in r else "-"
        rss = f"{r['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in r else "-"
        print(f"{r['case']:<30}{str(r['mb']) + ' MB':>8}{r['mb_per_s']:>10.1f}{rps:>12}{rss:>11}")
for r in rows:
    if r.get("case", "").startswith("hostile"):
        print(f"  {r['case']}: {r['rows']:,} rows, {r['rows_failed']:,} failed, report {r['report_bytes'] / 1e6:.1f} MB; "
              f"{(r.get('reason') or '')[:110]}")
print(f"\n{'import kind (moto)':<28}{'rows':>8}{'rows/s':>12}{'DynamoDB req / 1,000 rows':>28}")
for r in rows:
    if "kind" in r:
        print(f"{r['kind']:<28}{r['rows']:>8}{r['rows_per_s']:>12,.0f}{r['requests_per_1000_rows']:>28.1f}")
print(f"\n{'modelled DynamoDB':<20}{'rows':>10}{'workers':>9}{'chunks':>8}{'rows/s':>10}{'invocations':>13}{'throttled':>11}{'large file':>22}")
for r in rows:
    if "model" in r:
        large = f"{r['large_rows'] / 1e6:.0f}M rows: {r['large_minutes']:.1f} min"
        print(f"{r['model']:<20}{r['rows']:>10,}{r['workers']:>9}{r['chunks']:>8}{r['rows_per_s']:>10,.0f}{r['invocations']:>13}{r['throttled']:>11}{large:>22}")
for r in rows:
    if "scale_old_files" in r:
        print(f"\ndiscovery (in memory, {r['list_latency_ms']} ms a list request): {r['new_files_found']} new files among "
              f"{r['scale_old_files']:,} old ones: {r['list_requests']} list requests, {r['list_secs']:.2f} s of listing "
              f"(the whole folder: {r['whole_folder_requests']:,}, {r['whole_folder_secs']:.0f} s); a sweep's pass: "
              f"{r['pass_runs']:,} runs of at most {r['pass_most_requests']} requests, {r['pass_slowest_list_secs']:.2f} s")
for r in rows:
    if "old_files" in r:
        print(f"\ndiscovery: {r['new_files_found']} new files among {r['old_files']:,} old ones: "
              f"{r['list_requests']} list request(s), {r['secs']:.2f} s")
PY
python3 scripts/cost.py "$results" bench/prices.json template.yaml
python3 scripts/capacity.py "$results" template.yaml
