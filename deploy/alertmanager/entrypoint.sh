#!/bin/sh
# Entrypoint of the ops-worker-alertmanager Render service (image: deploy/alertmanager/Dockerfile).
#
# prometheus/alertmanager.yml holds no secret: it reads the Slack webhook URL and the PagerDuty
# routing key from files under /etc/alertmanager/secrets/. This script puts them there, then
# execs Alertmanager (so SIGTERM from Render reaches it directly). For each secret, in order:
#   1. the environment variable (render.yaml declares both `sync: false`, so Render asks for them
#      when the Blueprint is first applied), written to the file with mode 600;
#   2. otherwise a Render Secret File of the same name as the file (Render mounts secret files at
#      /etc/secrets/<filename>), linked to.
# A missing secret stops the service: an Alertmanager that cannot notify anyone must not look
# healthy.
#
#   SLACK_WEBHOOK_URL      -> secrets/slack_webhook_url      (or Secret File slack_webhook_url)
#   PAGERDUTY_ROUTING_KEY  -> secrets/pagerduty_routing_key  (or Secret File pagerduty_routing_key)
#
# Paths and flags (defaults are the image's; the test suite points them at a scratch directory):
#   ALERTMANAGER_HOME (/etc/alertmanager): holds alertmanager.yml; secrets/ and the rendered
#     alertmanager.rendered.yml (alertmanager.yml with /etc/alertmanager/ replaced by
#     $ALERTMANAGER_HOME/, i.e. identical on Render) are written there
#   SECRET_FILES_DIR (/etc/secrets), ALERTMANAGER_BIN (/bin/alertmanager),
#   ALERTMANAGER_LISTEN (:9093), ALERTMANAGER_STORAGE (/alertmanager, the service's disk)
set -eu

fail() {
    echo "alertmanager entrypoint: $*" >&2
    exit 1
}

home=${ALERTMANAGER_HOME:-/etc/alertmanager}
secret_files=${SECRET_FILES_DIR:-/etc/secrets}
secrets="$home/secrets"
[ -r "$home/alertmanager.yml" ] || fail "missing $home/alertmanager.yml"
case "$home" in *'|'* | *'&'* | *'\'*) fail "ALERTMANAGER_HOME='$home' contains | & or \\" ;; esac

umask 077
mkdir -p "$secrets"
for pair in SLACK_WEBHOOK_URL:slack_webhook_url PAGERDUTY_ROUTING_KEY:pagerduty_routing_key; do
    var=${pair%%:*}
    file=${pair#*:}
    eval "value=\${$var:-}"
    rm -f "$secrets/$file"
    if [ -n "$value" ]; then
        printf '%s' "$value" >"$secrets/$file"
        echo "alertmanager entrypoint: $file from \$$var" >&2
    elif [ -s "$secret_files/$file" ]; then
        ln -s "$secret_files/$file" "$secrets/$file"
        echo "alertmanager entrypoint: $file from Secret File $secret_files/$file" >&2
    else
        fail "no $file: set $var, or add a Secret File named $file"
    fi
done

config="$home/alertmanager.rendered.yml"
sed "s|/etc/alertmanager/|$home/|g" "$home/alertmanager.yml" >"$config.tmp"
mv "$config.tmp" "$config"

# --cluster.listen-address= turns gossip off: one instance, and only one port for Render to
# detect (9093, the one Prometheus sends alerts to).
exec "${ALERTMANAGER_BIN:-/bin/alertmanager}" \
    --config.file="$config" \
    --storage.path="${ALERTMANAGER_STORAGE:-/alertmanager}" \
    --web.listen-address="${ALERTMANAGER_LISTEN:-:9093}" \
    --cluster.listen-address= \
    "$@"
