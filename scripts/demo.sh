#!/usr/bin/env bash
# The demo on a fresh machine: build the release binary and run `ops-worker demo` (a private
# redis-server is started when none answers at REDIS_URL; Vercel is simulated in-process).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1 && [ -z "${REDIS_URL:-}" ]; then
  echo "redis-server is not installed: apt-get install -y redis-server (or set REDIS_URL)" >&2
  exit 1
fi
cargo build --release --quiet
exec target/release/ops-worker demo "$@"
