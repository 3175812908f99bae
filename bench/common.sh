# Shared by the scripts in bench/ (sourced, not run): their settings, the binary, and private
# redis-servers on free ports that are stopped (and their files removed) when the script exits.
#
# Settings: TASKS (default $default_tasks or 20000), CONCURRENCY (50), ROUNDS ($default_rounds or
# 2), OPS_WORKER_BIN (target/release/ops-worker, built when missing), REDIS_SERVER (redis-server).

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
tasks=${TASKS:-${default_tasks:-20000}}
concurrency=${CONCURRENCY:-50}
rounds=${ROUNDS:-${default_rounds:-2}}
bin=${OPS_WORKER_BIN:-$root/target/release/ops-worker}
redis_server=${REDIS_SERVER:-redis-server}
for n in "$tasks" "$concurrency" "$rounds"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "TASKS, CONCURRENCY and ROUNDS must be positive integers" >&2; exit 2; }
done
[[ -x $bin ]] || (cd "$root" && cargo build --release)

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

# redis NAME [ARGS...]: a private redis-server in $work/NAME on a free port (no persistence), left
# in $port once it answers PING. A port another process took between free_port and the bind is
# retried on a fresh one.
redis() {
  local name=$1
  shift
  mkdir -p "$work/$name"
  for _attempt in 1 2 3 4 5; do
    port=$(free_port)
    (cd "$work/$name" && exec "$redis_server" --port "$port" --bind 127.0.0.1 --save "" \
      --appendonly no --dir "$work/$name" --logfile "$work/$name/redis.log" "$@") &
    local pid=$!
    for _ in $(seq 200); do
      kill -0 "$pid" 2>/dev/null || break
      if redis-cli -p "$port" PING >/dev/null 2>&1; then
        pids+=("$pid")
        return
      fi
      sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
  done
  echo "redis $name did not start (see $work/$name/redis.log)" >&2
  exit 1
}

# replica_online MASTER_PORT: true once the master's first replica finished its first sync (which
# waits repl-diskless-sync-delay, 5 s by default).
replica_online() { redis-cli -p "$1" INFO replication 2>/dev/null | grep -q '^slave0:.*state=online'; }
