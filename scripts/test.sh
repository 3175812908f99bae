#!/usr/bin/env bash
# The test command: unit tests and every integration test (each test starts its own redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --all-targets --no-fail-fast "$@"
