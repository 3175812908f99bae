#!/usr/bin/env bash
# The test command: installs what the tests drive when missing (redis-server, promtool/amtool/
# prometheus, chromium + playwright-core), then runs unit and integration tests (each test starts
# its own redis-server on a free port).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
exec cargo test --all-targets --no-fail-fast "$@"
