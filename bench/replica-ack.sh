#!/usr/bin/env bash
# What REDIS_MIN_REPLICAS_ACK costs: a private master and one replica (both started here on free
# ports, no persistence), then `ops-worker bench` against the master with REDIS_MIN_REPLICAS_ACK=0
# and =1, alternating, ROUNDS times; prints a table.
#
#   TASKS=20000 CONCURRENCY=50 ROUNDS=2 bench/replica-ack.sh
#
# OPS_WORKER_BIN picks the binary (default target/release/ops-worker, built when missing).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
tasks=${TASKS:-20000}
concurrency=${CONCURRENCY:-50}
rounds=${ROUNDS:-2}
bin=${OPS_WORKER_BIN:-$root/target/release/ops-worker}
for n in "$tasks" "$concurrency" "$rounds"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "TASKS, CONCURRENCY and ROUNDS must be positive integers" >&2; exit 2; }
done
[[ -x $bin ]] || (cd "$root" && cargo build --release)

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
master=$(free_port)
replica=$(free_port)
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for role in master replica; do
  mkdir -p "$work/$role"
  port=${!role}
  args=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/$role" --logfile "$work/$role/redis.log")
  [[ $role == replica ]] && args+=(--replicaof 127.0.0.1 "$master")
  redis-server "${args[@]}" &
  pids+=($!)
done
# The first full sync waits for repl-diskless-sync-delay (5 s by default): wait until it is online.
for _ in $(seq 400); do
  redis-cli -p "$master" INFO replication 2>/dev/null | grep -q '^slave0:.*state=online' && break
  sleep 0.05
done
redis-cli -p "$master" INFO replication | grep -q '^slave0:.*state=online' || { echo "the replica did not sync" >&2; exit 1; }

results=$work/results.jsonl
for round in $(seq "$rounds"); do
  for ack in 0 1; do
    echo "round $round/$rounds: REDIS_MIN_REPLICAS_ACK=$ack" >&2
    REDIS_URL=redis://127.0.0.1:$master WORKER_CONCURRENCY=$concurrency REDIS_MIN_REPLICAS_ACK=$ack \
      "$bin" bench --tasks "$tasks" --json | jq -c ". + {ack: $ack}" >>"$results"
    redis-cli -p "$master" FLUSHALL >/dev/null
  done
done
echo "$tasks noop tasks, concurrency $concurrency, master + 1 replica on 127.0.0.1, $(nproc) cores"
jq -rs '["REDIS_MIN_REPLICAS_ACK", "enqueue/s", "drain/s", "Redis CPU us/task (master)", "round trips/task"],
  (.[] | [.ack, (.enqueue_per_sec | floor), (.drain_per_sec | floor),
          ((.redis_cpu_us_per_task * 10 | floor) / 10), ((.redis_round_trips_per_task * 100 | floor) / 100)])
  | map(tostring) | join("\t")' "$results" | column -t -s $'\t'
