#!/usr/bin/env bash
# The whole import, end to end, against a local moto server: no AWS account needed.
# Starts moto, provisions the stack, makes the users import's PGP key pair with
# `s3imports keys generate` (the private key goes straight to Secrets Manager), has
# "the customer" (GnuPG) encrypt a users file (with bad rows) to its public key, uploads
# it and a gzipped events file, puts two import configs, runs `s3imports tick` for the
# users (after a dry run of its file), starts the events import by hand with
# `s3imports run`, replays its file, shows the results and the users' segment, and
# stops moto. With --console (`make console`), it then serves the web console on the
# demo's stack until Ctrl-C.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bin="$root/target/debug/s3imports"
py="$root/.venv/bin/python"
[ -x "$bin" ] || { echo "build first: cargo build -p s3imports-cli (make demo does)" >&2; exit 1; }

work="$(mktemp -d)"
cleanup() { scripts/moto.sh stop; rm -rf "$work"; }
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting the local AWS emulator (moto)"
endpoint="$(scripts/moto.sh start)"
echo "moto at $endpoint"
# The demo's own set-up and read-back (demo.py) run as the emulator's harness key,
# unchecked; every s3imports command runs as an operator holding only its command
# group of docs/operator-policy.json (see s3i below), which the emulator checks.
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=demo AWS_EC2_METADATA_DISABLED=true \
  S3IMPORTS_PREFIX=demo
# The stack as deployed with these parameters: the customer's bucket is acme-exports.
curl -fsS -o /dev/null -X POST "$endpoint/_strict/stack" -H 'Content-Type: application/json' \
  -d '{"prefix": "demo", "test": "make demo", "parameters": {"SourceBucketPattern": "acme-exports", "SenderEmail": "s3imports@example.com"}}'

# s3imports as an operator holding the command's group of the operator policy.
s3i() {
  local cmd="" a group
  for a in "$@"; do case "$a" in -*) ;; *) cmd="$a"; break ;; esac; done
  case "$cmd" in
    config) group=config ;; runs|report|status) group=history ;; run|replay) group=run ;;
    dry-run) group=dry-run ;; keys) group=keys ;; segments) group=segments ;;
    tick) group=tick ;; local) group=local ;; console) group=console ;; *) group=other ;;
  esac
  AWS_ACCESS_KEY_ID="cli-$group.$S3IMPORTS_PREFIX" "$bin" "$@"
}

step "Provisioning the stack (tables, queue, reports bucket)"
s3i local provision

step "Making the users import's PGP key pair (s3imports keys generate)"
# The private key and a random passphrase go to Secrets Manager, bound to demo-users;
# the public key is what the customer encrypts to.
s3i --json keys generate --name demo-users --import demo-users --passphrase >"$work/key.json"
"$py" -c 'import json,sys; k=json.load(open(sys.argv[1])); print(k["public_key"]); print("fingerprint", k["fingerprint"], "; secret", k["secret"], file=sys.stderr); print(json.dumps(k["encryption"]), file=sys.stderr)' \
  "$work/key.json" >"$work/public.asc"

step "The customer encrypts a users file to that public key (GnuPG)"
export GNUPGHOME="$work/gnupg"; mkdir -m 700 "$GNUPGHOME"
trap 'gpgconf --kill gpg-agent 2>/dev/null || true; cleanup' EXIT
gpg --batch --quiet --import "$work/public.asc"
fpr="$(gpg --batch --with-colons --list-keys | awk -F: '/^fpr/ {print $10; exit}')"
gpg --batch --quiet --trust-model always --recipient "$fpr" \
  --output "$work/registered_user_data_20261127.csv.pgp" \
  --encrypt demo/data/registered_user_data_20261127.csv
gzip -c "demo/data/Purchase Summary_20261127.csv" >"$work/Purchase Summary_20261127.csv.gz"

"$py" scripts/demo.py setup "$work"

step "Validating the users config, then a dry run of its whole newest file"
s3i config validate demo/users.json --key "moengage/users/registered_user_data_20261127.csv.pgp"
# Decrypt, verify, parse, map and validate every row, as the import will; only the
# failed-rows report is written (the config is not even put yet).
s3i dry-run demo/users.json

step "Putting the two import configs"
s3i config put demo/users.json
s3i config put demo/events.json

step "Running a tick: discovery, then every queued file through the processor"
# The users import is due (it runs once); the purchases import runs daily at 09:00.
s3i tick

step "Starting the purchases import now, by hand (its schedule stays as it is)"
s3i run demo-purchases --process
echo "-- and again at once: refused, one run by hand per 5 minutes"
s3i run demo-purchases || echo "(exit $?)"

step "Replaying the purchases file under its own name (events keep their ids)"
s3i replay demo-purchases "moengage/events/Purchase Summary_20261127.csv.gz" \
  --reason "demo: resend after checking the amounts" --process

step "Run history (which key opened each PGP file; who started a run by hand; the replay)"
s3i runs demo-users
s3i runs demo-purchases

step "Every import at a glance"
s3i status

step "The users' segment: every imported user joined it"
s3i segments show "Demo customers"
s3i segments members "Demo customers" --limit 3

"$py" scripts/demo.py show

step "AWS's rules: every request above was allowed by its role and within AWS's limits"
refused="$(curl -fsS "$endpoint/_strict/violations?prefix=demo")"
if [ "$refused" != "[]" ]; then
  echo "$refused" | "$py" -m json.tool
  echo "AWS would refuse the requests above (docs/testing.md)" >&2
  exit 1
fi
echo "none refused (IAM as template.yaml and docs/operator-policy.json grant it; AWS's limits)"

if [ "${1:-}" = "--console" ]; then
  step "The web console on this demo's stack (Ctrl-C stops it and the emulator)"
  s3i console
else
  step "The same imports in the web console"
  echo "make console    (this demo again, then s3imports console on its stack: open the address it prints)"
  echo "On your own stack: s3imports console (docs/console.md)"
fi
