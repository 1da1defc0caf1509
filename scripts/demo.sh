#!/usr/bin/env bash
# The whole import, end to end, against a local moto server: no AWS account needed.
# Starts moto, provisions the stack, makes a PGP key pair and Secrets Manager secrets,
# uploads an encrypted users file (with bad rows) and a gzipped events file, puts two
# import configs, runs `s3imports tick`, shows the results, and stops moto.
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

step "Making a PGP key pair (GnuPG) and storing the private key in Secrets Manager"
export GNUPGHOME="$work/gnupg"; mkdir -m 700 "$GNUPGHOME"
trap 'gpgconf --kill gpg-agent 2>/dev/null || true; cleanup' EXIT
passphrase="demo-passphrase-$RANDOM"
gpg_batch() { gpg --batch --quiet --pinentry-mode loopback --passphrase "$passphrase" "$@"; }
gpg_batch --quick-gen-key 'Acme Exports <exports@acme.example>' rsa3072 sign never 2>/dev/null
fpr="$(gpg --batch --with-colons --list-keys exports@acme.example | awk -F: '/^fpr/ {print $10; exit}')"
gpg_batch --quick-add-key "$fpr" rsa3072 encr never 2>/dev/null
gpg_batch --armor --export-secret-keys exports@acme.example >"$work/private.asc"
gpg --batch --quiet --trust-model always --recipient exports@acme.example \
  --output "$work/registered_user_data_20261127.csv.pgp" \
  --encrypt demo/data/registered_user_data_20261127.csv
gzip -c "demo/data/Purchase Summary_20261127.csv" >"$work/Purchase Summary_20261127.csv.gz"

"$py" scripts/demo.py setup "$work" "$passphrase"

step "Validating and putting the two import configs"
"$bin" config validate demo/users.json --key "moengage/users/registered_user_data_20261127.csv.pgp"
"$bin" config put demo/users.json
"$bin" config put demo/events.json

step "Running a tick: discovery, then every queued file through the processor"
"$bin" tick

step "Run history"
"$bin" runs demo-users
"$bin" runs demo-purchases

"$py" scripts/demo.py show
