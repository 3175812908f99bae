#!/usr/bin/env bash
# Redis work per task as a count of instructions: `ops-worker bench` against a private
# redis-server run under valgrind's callgrind, which counts the instructions Redis executes while
# the bench's enqueue and drain run (instrumentation is switched on for that span only). Unlike
# `INFO cpu`, the count does not depend on what else the machine is doing, so two builds can be
# compared on a busy machine; divide by a quiet run's instructions per µs to get µs.
#
#   bench/instructions.sh                  # TASKS=10000, CONCURRENCY=10, target/release/ops-worker
#   OPS_WORKER_BINS="/tmp/before /tmp/after" ROUNDS=2 bench/instructions.sh
#
# Redis runs about 50x slower under callgrind, so claim batches are always full (64): the count is
# that of a deep backlog. CONCURRENCY defaults to 10 here: with 50 consumers queued behind a Redis
# that slow, a claim can wait past the client's 5 s response timeout, and the recoveries that
# follow (hand-backs, re-claims) would be counted too. Requires valgrind (callgrind_control).
set -euo pipefail

command -v callgrind_control >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 2; }
CONCURRENCY=${CONCURRENCY:-10} default_tasks=10000 default_rounds=1 source "$(dirname "$0")/common.sh"
bins=${OPS_WORKER_BINS:-$bin}

# Start redis-server under callgrind with instrumentation off; leaves $port and $vpid.
start_counted_redis() {
  port=$(free_port)
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.%p" \
    "$(command -v "$redis_server")" --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" >"$work/valgrind.log" 2>&1 &
  vpid=$!
  pids+=("$vpid")
  for _ in $(seq 300); do
    redis-cli -p "$port" PING >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "redis-server under callgrind did not start (see $work/valgrind.log)" >&2
  exit 1
}

# Instructions per task of one bench run of binary $1.
count() {
  local b=$1 url="redis://127.0.0.1:$port"
  # Warm-up: loads the scripts, so the counted run does not include their compilation.
  REDIS_URL=$url WORKER_CONCURRENCY=$concurrency "$b" bench --tasks 200 >/dev/null 2>>"$work/bench.log"
  redis-cli -p "$port" FLUSHALL >/dev/null
  rm -f "$work"/callgrind.*.*
  callgrind_control -z "$vpid" >/dev/null
  callgrind_control -i on "$vpid" >/dev/null
  REDIS_URL=$url WORKER_CONCURRENCY=$concurrency "$b" bench --tasks "$tasks" >/dev/null 2>>"$work/bench.log"
  callgrind_control -i off "$vpid" >/dev/null
  callgrind_control -d "$vpid" >/dev/null
  redis-cli -p "$port" FLUSHALL >/dev/null
  local total
  total=$(cat "$work"/callgrind.*.* | awk '/^totals:/ { s += $2 } END { print s + 0 }')
  echo $((total / tasks))
}

start_counted_redis
echo "$tasks noop tasks, concurrency $concurrency, $("$redis_server" --version | cut -d' ' -f3), under callgrind"
printf '%s\t%s\t%s\n' round binary "Redis instructions per task"
for round in $(seq "$rounds"); do
  for b in $bins; do
    printf '%s\t%s\t%s\n' "$round" "$b" "$(count "$b")"
  done
done
