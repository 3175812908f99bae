#!/usr/bin/env bash
# Drain benchmark, ops-worker against BullMQ, on ONE private redis-server started here on a free
# port (no persistence), with the same task count and concurrency, one after another, ROUNDS times
# (alternating), then a side-by-side table. ops-worker runs with `run`'s defaults except the
# concurrency (WORKER_CONCURRENCY); each system's Redis CPU per task comes from `INFO cpu` before
# and after its run, enqueue included, and the database is flushed between runs.
#
#   bench/run-peers.sh                     # TASKS=50000 CONCURRENCY=50 ROUNDS=1
#   TASKS=5000 CONCURRENCY=50 ROUNDS=3 bench/run-peers.sh
#
# OPS_WORKER_BIN picks the binary (default target/release/ops-worker, built when missing);
# REDIS_SERVER the redis-server to start. Extra arguments go to `ops-worker bench`
# (e.g. `--prefetch 64`). Requires node >= 18 and npm; BullMQ is installed under
# bench/peers/bullmq on first use.
set -euo pipefail

command -v node >/dev/null || { echo "node is required for the BullMQ peer" >&2; exit 2; }
default_tasks=50000 default_rounds=1 source "$(dirname "$0")/common.sh"

# Idempotent: installs what package-lock.json pins, only when it is not there yet.
(cd "$here/peers/bullmq" && { [[ -d node_modules/bullmq ]] || npm ci --no-audit --no-fund --loglevel=error; })

redis peers
url="redis://127.0.0.1:$port"

results=$work/results.jsonl
for round in $(seq "$rounds"); do
  echo "round $round/$rounds: ops-worker" >&2
  REDIS_URL=$url WORKER_CONCURRENCY=$concurrency "$bin" bench --tasks "$tasks" --json "$@" \
    | jq -c --argjson round "$round" '. + {system: "ops-worker", round: $round}' >>"$results"
  redis-cli -p "$port" FLUSHALL >/dev/null
  echo "round $round/$rounds: bullmq" >&2
  (cd "$here/peers/bullmq" && REDIS_URL=$url TASKS=$tasks CONCURRENCY=$concurrency node bench.mjs) \
    | jq -c --argjson round "$round" '. + {round: $round}' >>"$results"
  redis-cli -p "$port" FLUSHALL >/dev/null
done

version=$(redis-cli -p "$port" INFO server | tr -d '\r' | sed -n 's/^redis_version://p')
echo "$tasks noop tasks, concurrency $concurrency, Redis $version on 127.0.0.1:$port, $(nproc) cores"
# "x BullMQ mean": against the mean of BullMQ's runs; "x same round": against BullMQ's run of the
# same round (the two ran minutes apart at most).
jq -rs '
  (map(select(.system == "bullmq") | .drain_per_sec) | add / length) as $bull
  | (map(select(.system == "bullmq") | {key: (.round | tostring), value: .drain_per_sec}) | from_entries) as $by_round
  | ["system", "prefetch", "enqueue/s", "drain/s", "x BullMQ mean", "x same round", "Redis CPU us/task", "(enqueue)", "RSS MiB"],
    (.[] | [.system, (.prefetch // "-"), (.enqueue_per_sec | floor), (.drain_per_sec | floor),
            ((.drain_per_sec / $bull * 100 | floor) / 100),
            ((.drain_per_sec / $by_round[.round | tostring] * 100 | floor) / 100),
            ((.redis_cpu_us_per_task * 10 | floor) / 10),
            ((.redis_cpu_us_per_task_enqueue * 10 | floor) / 10),
            ((.peak_rss_mb * 10 | floor) / 10)])
  | map(tostring) | join("\t")' "$results" | column -t -s $'\t'
