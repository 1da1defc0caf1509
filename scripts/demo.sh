#!/usr/bin/env bash
# The whole import, end to end, against a local moto server: no AWS account needed.
# Starts moto, provisions the stack, makes the users import's PGP key pair with
# `s3imports keys generate` (the private key goes straight to Secrets Manager), has
# "the customer" (GnuPG) encrypt a users file (with bad rows) to its public key, uploads
# it and a gzipped events file, puts two import configs, runs `s3imports tick` for the
# users (after a dry run of its file), starts the events import by hand with
# `s3imports run`, replays its file, shows the results and the users' segment, and
# stops moto.
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
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_EC2_METADATA_DISABLED=true \
  S3IMPORTS_PREFIX=demo

step "Provisioning the stack (tables, queue, reports bucket)"
"$bin" local provision

step "Making the users import's PGP key pair (s3imports keys generate)"
# The private key and a random passphrase go to Secrets Manager, bound to demo-users;
# the public key is what the customer encrypts to.
"$bin" --json keys generate --name demo-users --import demo-users --passphrase >"$work/key.json"
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
"$bin" config validate demo/users.json --key "moengage/users/registered_user_data_20261127.csv.pgp"
# Decrypt, verify, parse, map and validate every row, as the import will; only the
# failed-rows report is written (the config is not even put yet).
"$bin" dry-run demo/users.json

step "Putting the two import configs"
"$bin" config put demo/users.json
"$bin" config put demo/events.json

step "Running a tick: discovery, then every queued file through the processor"
# The users import is due (it runs once); the purchases import runs daily at 09:00.
"$bin" tick

step "Starting the purchases import now, by hand (its schedule stays as it is)"
"$bin" run demo-purchases --process
echo "-- and again at once: refused, one run by hand per 5 minutes"
"$bin" run demo-purchases || echo "(exit $?)"

step "Replaying the purchases file under its own name (events keep their ids)"
"$bin" replay demo-purchases "moengage/events/Purchase Summary_20261127.csv.gz" \
  --reason "demo: resend after checking the amounts" --process

step "Run history (which key opened each PGP file; who started a run by hand; the replay)"
"$bin" runs demo-users
"$bin" runs demo-purchases

step "Every import at a glance"
"$bin" status

step "The users' segment: every imported user joined it"
"$bin" segments show "Demo customers"
"$bin" segments members "Demo customers" --limit 3

"$py" scripts/demo.py show
