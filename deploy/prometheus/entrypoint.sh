#!/bin/sh
# Entrypoint of the ops-worker-prometheus Render service (image: deploy/prometheus/Dockerfile).
#
# 1. Renders the scrape and alerting targets into the configuration. Prometheus does not expand
#    environment variables in scrape configs, so every line of the template that ends in
#    `# render: NAME` gets the value computed for NAME below (see prometheus/prometheus.yml).
# 2. Execs Prometheus with the rendered file (so SIGTERM from Render reaches it directly).
#
# Environment (set by render.yaml):
#   POOL_HOST              internal hostname of ops-worker-pool (fromService property `host`)
#   API_HOST               internal hostname of ops-worker-api (fromService property `host`)
#   ALERTMANAGER_HOSTPORT  host:port of ops-worker-alertmanager (fromService property `hostport`)
#   POOL_METRICS_PORT      port of the pool's /metrics (default 8080)
#   API_METRICS_PORT       port of the API's /metrics (default 8080)
#   POOL_DISCOVERY, API_DISCOVERY   discovery hostnames; default <host>-discovery, Render's
#                          naming of the name that resolves to every instance of a service
# Paths and flags (defaults are the image's; the test suite points them at a scratch directory):
#   PROMETHEUS_CONFIG_DIR  holds prometheus.template.yml and rules/ (default /etc/prometheus);
#                          the rendered prometheus.yml is written next to them
#   PROMETHEUS_BIN (/bin/prometheus), PROMETHEUS_LISTEN (:9090),
#   PROMETHEUS_STORAGE (/prometheus, the service's disk), PROMETHEUS_RETENTION (15d)
set -eu

fail() {
    echo "prometheus entrypoint: $*" >&2
    exit 1
}

# A value must be a hostname, host:port or port: nothing sed or YAML would read specially.
check_value() {
    case "$2" in
        '' | *[!A-Za-z0-9.:-]*) fail "$1='$2' is not a hostname, host:port or port" ;;
    esac
}

dir=${PROMETHEUS_CONFIG_DIR:-/etc/prometheus}
template="$dir/prometheus.template.yml"
config="$dir/prometheus.yml"
[ -r "$template" ] || fail "missing template $template"

[ -n "${POOL_HOST:-}" ] || [ -n "${POOL_DISCOVERY:-}" ] || fail "POOL_HOST is not set"
[ -n "${API_HOST:-}" ] || [ -n "${API_DISCOVERY:-}" ] || fail "API_HOST is not set"
[ -n "${ALERTMANAGER_HOSTPORT:-}" ] || fail "ALERTMANAGER_HOSTPORT is not set"

POOL_DISCOVERY=${POOL_DISCOVERY:-$POOL_HOST-discovery}
API_DISCOVERY=${API_DISCOVERY:-$API_HOST-discovery}
POOL_METRICS_PORT=${POOL_METRICS_PORT:-8080}
API_METRICS_PORT=${API_METRICS_PORT:-8080}

rendered=$(cat "$template")
for name in POOL_DISCOVERY POOL_METRICS_PORT API_DISCOVERY API_METRICS_PORT ALERTMANAGER_HOSTPORT; do
    eval "value=\${$name}"
    check_value "$name" "$value"
    marker="# render: $name"
    printf '%s\n' "$rendered" | grep -q " $marker\$" || fail "$template has no line ending in '$marker'"
    # Replace the value after the line's last "- " or ": " (a list item or a key's value).
    rendered=$(printf '%s\n' "$rendered" |
        sed "s|^\([^#]*[-:] \)[^ #]*\( *$marker\)\$|\1$value\2|")
    printf '%s\n' "$rendered" | grep -q "[-:] $value *$marker\$" || fail "could not render $name"
done
printf '%s\n' "$rendered" >"$config.tmp"
mv "$config.tmp" "$config"
echo "prometheus entrypoint: scraping $POOL_DISCOVERY:$POOL_METRICS_PORT and $API_DISCOVERY:$API_METRICS_PORT, alerting $ALERTMANAGER_HOSTPORT" >&2

exec "${PROMETHEUS_BIN:-/bin/prometheus}" \
    --config.file="$config" \
    --storage.tsdb.path="${PROMETHEUS_STORAGE:-/prometheus}" \
    --storage.tsdb.retention.time="${PROMETHEUS_RETENTION:-15d}" \
    --web.listen-address="${PROMETHEUS_LISTEN:-:9090}" \
    "$@"
