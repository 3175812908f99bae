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
# The dead man's switch URL (the `heartbeat` receiver, which gets the always-firing Watchdog) is
# optional: HEARTBEAT_URL, or else a Secret File heartbeat_url, replaces the placeholder on the
# line marked `# render: HEARTBEAT_URL` of the rendered configuration (mode 600; Alertmanager
# shows webhook URLs as <secret>). Without one the placeholder stays and a warning is logged.
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

heartbeat=${HEARTBEAT_URL:-}
if [ -z "$heartbeat" ] && [ -s "$secret_files/heartbeat_url" ]; then
    heartbeat=$(cat "$secret_files/heartbeat_url")
fi
case "$heartbeat" in
    '') echo "alertmanager entrypoint: no HEARTBEAT_URL or Secret File heartbeat_url: the Watchdog reaches no dead man's switch" >&2 ;;
    http://* | https://*)
        case "$heartbeat" in *[!A-Za-z0-9._~:/?#@=%+,\;\&-]*) fail "the heartbeat URL holds a character outside A-Z a-z 0-9 . _ ~ : / ? # @ = % + , ; & -" ;; esac
        echo "alertmanager entrypoint: heartbeat URL set" >&2
        ;;
    *) fail "the heartbeat URL is not an http(s) URL" ;;
esac

config="$home/alertmanager.rendered.yml"
sed "s|/etc/alertmanager/|$home/|g" "$home/alertmanager.yml" >"$config.tmp"
if [ -n "$heartbeat" ]; then
    marker='# render: HEARTBEAT_URL'
    grep -q "url: [^ ]* $marker\$" "$config.tmp" || fail "alertmanager.yml has no line ending in '$marker'"
    # `|` cannot occur in the URL (checked above); escape sed's `&` and `\`.
    value=$(printf '%s' "$heartbeat" | sed 's/[&\\]/\\&/g')
    sed "s|url: [^ ]* $marker\$|url: $value $marker|" "$config.tmp" >"$config.tmp2"
    mv "$config.tmp2" "$config.tmp"
fi
mv "$config.tmp" "$config"

# --cluster.listen-address= turns gossip off: one instance, and only one port for Render to
# detect (9093, the one Prometheus sends alerts to).
exec "${ALERTMANAGER_BIN:-/bin/alertmanager}" \
    --config.file="$config" \
    --storage.path="${ALERTMANAGER_STORAGE:-/alertmanager}" \
    --web.listen-address="${ALERTMANAGER_LISTEN:-:9093}" \
    --cluster.listen-address= \
    "$@"
