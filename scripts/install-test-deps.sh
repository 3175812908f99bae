#!/usr/bin/env bash
# Install what the tests drive, when missing (Debian packages; the npm package for the browser
# test; schemathesis from PyPI, in a venv under target/, for the security test's API fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
# redis-cli: the cluster tests create their cluster with `redis-cli --cluster create`.
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
# The security test's API fuzzer runs in a Python venv (needs python3 with venv and ensurepip).
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3 python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's packages start their daemons; the tests run their own.
  pkill -x prometheus 2>/dev/null || true
  pkill -x redis-sentinel 2>/dev/null || true
  pkill -x prometheus-alertmanager 2>/dev/null || true
fi
# The dashboard's browser test drives Debian's Chromium with playwright-core (no browser download).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
# The API fuzzer of tests/security.rs: schemathesis, pinned, in its own venv (the system Python
# stays untouched). Nothing to do when the pinned version is already there.
schemathesis_version=4.32.5
venv=target/schemathesis-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$schemathesis_version"; then
  echo "installing schemathesis $schemathesis_version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi
