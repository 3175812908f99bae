#!/usr/bin/env bash
# Idle enqueue-to-start latency: `ops-worker run` with WORKER_CONCURRENCY consumers waiting on an
# empty private queue, then TASKS noop tasks submitted one at a time (`ops-worker enqueue`), 20 ms
# apart. For each task, its record's `ready_ms` (Redis clock, written by the enqueue script)
# against its `started_at` (Redis clock, written by the claim): the time from being ready to being
# claimed, with millisecond resolution (the client's own round trip for the enqueue is not in it).
#
#   bench/idle-latency.sh                 # TASKS=200 CONCURRENCY=50
set -euo pipefail

default_tasks=200 default_rounds=1 source "$(dirname "$0")/common.sh"

redis idle
export REDIS_URL="redis://127.0.0.1:$port" QUEUE_NAME=idle-latency
# `run` requires these; noop tasks never use them.
export VERCEL_TOKEN=unused-by-noop-tasks JWT_SECRET=idle-latency-bench-secret-0123456789
WORKER_CONCURRENCY=$concurrency PORT=0 "$bin" run >"$work/run.log" 2>&1 &
pids+=("$!")
for _ in $(seq 200); do
  [[ $(redis-cli -p "$port" ZCARD "ops:{$QUEUE_NAME}:instances") -gt 0 ]] && break
  sleep 0.05
done

ids=()
for _ in $(seq "$tasks"); do
  ids+=("$("$bin" enqueue --type noop | tail -1)")
  sleep 0.02
done
for _ in $(seq 200); do
  done_n=$(redis-cli -p "$port" HGET "ops:{$QUEUE_NAME}:counters" completed_total)
  [[ ${done_n:-0} -ge $tasks ]] && break
  sleep 0.05
done

for id in "${ids[@]}"; do
  redis-cli -p "$port" --raw HMGET "ops:{$QUEUE_NAME}:task:$id" ready_ms started_at | paste -sd' '
done | python3 -c '
import sys, datetime
lat = []
for line in sys.stdin:
    parts = line.split()
    if len(parts) != 2:
        continue
    ready = int(parts[0])
    started = datetime.datetime.fromisoformat(parts[1].replace("Z", "+00:00")).timestamp() * 1000
    lat.append(started - ready)
lat.sort()
if not lat:
    sys.exit("no task was started")
q = lambda p: lat[min(len(lat) - 1, round((len(lat) - 1) * p))]
print(f"{len(lat)} tasks, ready -> started (ms): p50 {q(0.5):.0f}  p99 {q(0.99):.0f}  max {lat[-1]:.0f}")
'
