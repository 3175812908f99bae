#!/usr/bin/env bash
# What REDIS_MIN_REPLICAS_ACK costs: a private master and one replica (both started here on free
# ports, no persistence), then `ops-worker bench` against the master with REDIS_MIN_REPLICAS_ACK=0
# and =1, alternating, ROUNDS times; prints a table.
#
#   TASKS=20000 CONCURRENCY=50 ROUNDS=2 bench/replica-ack.sh
#
# OPS_WORKER_BIN picks the binary (default target/release/ops-worker, built when missing).
set -euo pipefail

source "$(dirname "$0")/common.sh"

redis master
master=$port
redis replica --replicaof 127.0.0.1 "$master"
for _ in $(seq 400); do
  replica_online "$master" && break
  sleep 0.05
done
replica_online "$master" || { echo "the replica did not sync" >&2; exit 1; }

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
