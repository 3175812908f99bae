#!/usr/bin/env bash
# What each Redis topology costs: `ops-worker bench` against a single Redis, a Sentinel-managed
# master with one replica (found through one Sentinel, as the Link does), and a 3-master Redis
# Cluster (the queue's slot on one of them). Every server is private, started here on free ports
# with no persistence; ROUNDS rounds, alternating; prints a table.
#
#   TASKS=20000 CONCURRENCY=50 ROUNDS=2 bench/topologies.sh
#
# OPS_WORKER_BIN picks the binary (default target/release/ops-worker, built when missing).
set -euo pipefail

source "$(dirname "$0")/common.sh"

# Single.
redis single
single=$port

# Sentinel: master, replica, one Sentinel (quorum 1).
redis master
master=$port
redis replica --replicaof 127.0.0.1 "$master"
sentinel=$(free_port)
printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor bench 127.0.0.1 %s 1\n' \
  "$sentinel" "$work" "$master" >"$work/sentinel.conf"
redis-sentinel "$work/sentinel.conf" --logfile "$work/sentinel.log" &
pids+=($!)
for _ in $(seq 400); do
  replica_online "$master" &&
    redis-cli -p "$sentinel" SENTINEL get-master-addr-by-name bench 2>/dev/null | grep -q "$master" && break
  sleep 0.05
done
redis-cli -p "$sentinel" SENTINEL get-master-addr-by-name bench | grep -q "$master" || { echo "the Sentinel does not know the master" >&2; exit 1; }

# Cluster: three masters, no replicas.
nodes=()
for n in 1 2 3; do
  redis "node$n" --cluster-enabled yes --cluster-config-file nodes.conf
  nodes+=("127.0.0.1:$port")
done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$work/create.log"
for _ in $(seq 400); do
  ok=0
  for node in "${nodes[@]}"; do
    redis-cli -p "${node#*:}" CLUSTER INFO | grep -q '^cluster_state:ok' && ok=$((ok + 1))
  done
  [[ $ok == 3 ]] && break
  sleep 0.05
done
[[ $ok == 3 ]] || { echo "the cluster did not settle" >&2; exit 1; }
cluster_nodes=$(IFS=,; echo "${nodes[*]}")

# bench TOPOLOGY ENV...: one run, its JSON line tagged with the topology.
bench() {
  local topology=$1
  shift
  env "$@" WORKER_CONCURRENCY="$concurrency" "$bin" bench --tasks "$tasks" --json |
    jq -c ". + {topology: \"$topology\"}" >>"$results"
}
results=$work/results.jsonl
for round in $(seq "$rounds"); do
  echo "round $round/$rounds" >&2
  bench single REDIS_URL="redis://127.0.0.1:$single"
  bench sentinel REDIS_URL=redis://127.0.0.1:1 REDIS_SENTINELS="127.0.0.1:$sentinel" REDIS_SENTINEL_MASTER=bench
  bench cluster REDIS_URL="redis://${nodes[0]}" REDIS_CLUSTER_NODES="$cluster_nodes"
done
echo "$tasks noop tasks, concurrency $concurrency, all servers on 127.0.0.1, $(nproc) cores"
jq -rs '["topology", "enqueue/s", "drain/s", "Redis CPU us/task (queue master)", "round trips/task"],
  (.[] | [.topology, (.enqueue_per_sec | floor), (.drain_per_sec | floor),
          ((.redis_cpu_us_per_task * 10 | floor) / 10), ((.redis_round_trips_per_task * 100 | floor) / 100)])
  | map(tostring) | join("\t")' "$results" | column -t -s $'\t'
