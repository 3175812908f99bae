#!/usr/bin/env bash
# Demo of the core engine on a fresh machine: starts a private redis-server (unless REDIS_URL is
# set), runs `ops-worker run`, submits sample tasks of every priority (including one that fails and
# is retried, and one delayed task), shows them drain, then stops the worker with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 && [ -z "${REDIS_URL:-}" ]; then
  echo "redis-server is not installed: apt-get install -y redis-server (or set REDIS_URL)" >&2
  exit 1
fi

cargo build --release --quiet
BIN=target/release/ops-worker
WORK=$(mktemp -d)
cleanup() {
  [ -n "${WORKER_PID:-}" ] && kill -TERM "$WORKER_PID" 2>/dev/null && wait "$WORKER_PID" 2>/dev/null || true
  [ -n "${REDIS_PID:-}" ] && kill "$REDIS_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${REDIS_URL:-}" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
    --logfile "$WORK/redis.log" &
  REDIS_PID=$!
  export REDIS_URL="redis://127.0.0.1:$port"
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  echo "started a private redis-server at $REDIS_URL"
fi
export QUEUE_NAME="demo-$$" LOG_FORMAT=pretty WORKER_CONCURRENCY=4 PORT="${PORT:-8080}"
# The engine demo runs noop tasks only; `run` still insists on a Vercel token.
export VERCEL_TOKEN="${VERCEL_TOKEN:-demo-token}"

"$BIN" run >"$WORK/worker.log" 2>&1 &
WORKER_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
echo "worker running; health: $(curl -s "http://127.0.0.1:$PORT/health")"

"$BIN" enqueue --type noop --priority P3 --count 3 --payload '{"sleep_ms":300}'
"$BIN" enqueue --type noop --priority P2 --count 5 --payload '{"sleep_ms":200}'
"$BIN" enqueue --type noop --priority P1 --count 2 --payload '{"sleep_ms":100}'
"$BIN" enqueue --type noop --priority P0 --payload '{"sleep_ms":50}'
"$BIN" enqueue --type noop --priority P1 --payload '{"fail":true}' --max-retries 1
"$BIN" enqueue --type noop --priority P2 --run-at "$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)"

for _ in $(seq 60); do
  s=$("$BIN" stats --json)
  done_n=$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(s["completed_total"]+s["failed"])' "$s")
  [ "$done_n" -ge 13 ] && break
  sleep 0.5
done
echo
"$BIN" stats
echo
echo "last worker log lines:"
tail -n 5 "$WORK/worker.log"
