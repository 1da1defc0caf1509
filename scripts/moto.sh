#!/usr/bin/env bash
# Starts or stops a local moto server (the AWS emulator) on a free loopback port.
#   scripts/moto.sh start   -> prints the endpoint URL; state in .moto/
#   scripts/moto.sh stop
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state="$root/.moto"
# moto behind the strict layer (tests/strict, docs/testing.md): every request is held
# to its role's policy in template.yaml and to AWS's limits. S3IMPORTS_MOTO_SERVER
# names another server (plain moto_server, say) instead.
py="$root/.venv/bin/python"
if [ -n "${S3IMPORTS_MOTO_SERVER:-}" ]; then
  bin="$S3IMPORTS_MOTO_SERVER"; args=()
else
  bin="$py"; args=("$root/tests/strict/server.py")
fi

case "${1:-}" in
start)
  [ -x "$bin" ] || { echo "$bin not found: run 'make venv'" >&2; exit 1; }
  mkdir -p "$state"
  if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
    cat "$state/endpoint"; exit 0
  fi
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  nohup "$bin" "${args[@]}" -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
  echo $! >"$state/pid"
  endpoint="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do
    if curl -fsS "$endpoint/moto-api/" >/dev/null 2>&1; then
      echo "$endpoint" >"$state/endpoint"; echo "$endpoint"; exit 0
    fi
    kill -0 "$(cat "$state/pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "moto_server did not start; see $state/moto.log" >&2
  tail -20 "$state/moto.log" >&2 || true
  exit 1
  ;;
stop)
  if [ -f "$state/pid" ]; then
    kill "$(cat "$state/pid")" 2>/dev/null || true
    rm -f "$state/pid" "$state/endpoint"
  fi
  ;;
*)
  echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
