#!/usr/bin/env bash
# `make bench`: throughput and memory of the import path, printed as a table.
#   BENCH_SIZES="10 100 1000"   file sizes in MB for the in-process path
#   BENCH_E2E_ROWS=100000       rows per events / auxiliary file against moto
#   BENCH_USER_ROWS=10000       rows per users file (one UpdateItem a row: slow in moto)
#   BENCH_OLD_FILES=10000       old files in the discovery folder (100000: nearly 2 h in moto)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sizes="${BENCH_SIZES:-10 100 1000}"
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

echo "== against moto" >&2
"$bin" e2e --rows "${BENCH_E2E_ROWS:-100000}" --user-rows "${BENCH_USER_ROWS:-10000}" >>"$results"
"$bin" discovery --old "${BENCH_OLD_FILES:-10000}" >>"$results"

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
print(f"\n{'import kind (moto)':<28}{'rows':>8}{'rows/s':>12}{'DynamoDB req / 1,000 rows':>28}")
for r in rows:
    if "kind" in r:
        print(f"{r['kind']:<28}{r['rows']:>8}{r['rows_per_s']:>12,.0f}{r['requests_per_1000_rows']:>28.1f}")
for r in rows:
    if "old_files" in r:
        print(f"\ndiscovery: {r['new_files_found']} new files among {r['old_files']:,} old ones: "
              f"{r['list_requests']} list request(s), {r['secs']:.2f} s")
PY
