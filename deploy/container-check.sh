#!/usr/bin/env bash
# Build the scpd image and check it for real, alone and in the compose stack
# (`make container-check`; not part of `make test`: it needs a container engine).
#
# Engine: Docker when a Docker daemon answers, else rootful podman (run as root).
#   Compose: `docker compose` / `docker-compose`, or `podman-compose`.
# Environment:
#   PYTHON_IMAGE        base image of the build (default: the Dockerfile's python:3.11-slim-bookworm)
#   PROMETHEUS_IMAGE    Prometheus image of the stack (default: compose's prom/prometheus)
#   BUILD_OPTS          extra build options (e.g. "--network host -v /etc/ssl/certs:/etc/ssl/certs:ro")
#   KEEP=1              leave the stack and volumes in place afterwards
#
# Checks: the image is healthy, runs as uid 10001 with a mode-0600 config owned
# by it and a bind-mounted data directory, closes ledgers, stops on SIGTERM with
# exit code 0 within 10 s, keeps its ledger across a restart; the compose stack
# comes up with 4/4 Prometheus targets and every rule loaded, every node closes
# ledgers, and Prometheus keeps its data across `down` / `up`.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=scpd:latest
NAME=scpd-check
PROJECT=scpdcheck
WORK=$(mktemp -d)

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }

if docker info >/dev/null 2>&1; then
    ENGINE=docker
    if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
    BUILD=(docker build)
elif command -v podman >/dev/null; then
    [ "$(id -u)" = 0 ] || fail "podman must run as root here (rootful)"
    ENGINE=podman
    COMPOSE=(podman-compose)
    BUILD=(podman build --format docker) # the docker format keeps HEALTHCHECK
else
    fail "no container engine: neither a Docker daemon nor podman"
fi
say "engine: $ENGINE, compose: ${COMPOSE[*]}"

cleanup() {
    "$ENGINE" rm -f "$NAME" >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" != 1 ]; then
        "${COMPOSE[@]}" -p "$PROJECT" down -v >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Inside a container: GET a path of the node's admin API (on its loopback) and print one JSON field.
api_field() { # container path python-expression-on-j
    "$ENGINE" exec "$1" python -c "import json, urllib.request as u; j = json.load(u.urlopen('http://127.0.0.1:11626$2', timeout=5)); print($3)"
}

healthy() {
    if [ "$ENGINE" = podman ]; then
        podman healthcheck run "$1" >/dev/null 2>&1 # podman runs health checks through systemd timers: run it here
    else
        [ "$(docker inspect --format '{{.State.Health.Status}}' "$1")" = healthy ]
    fi
}

wait_until() { # seconds description command...
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@"; do
        [ $SECONDS -lt $deadline ] || fail "timed out waiting for $what"
        sleep 1
    done
}

slot_at_least() { [ "$(api_field "$1" /info "j['ledger']['slot']" 2>/dev/null || echo 0)" -ge "$2" ]; }

# ----- the image ------------------------------------------------------------
say "build $IMAGE"
build_args=()
[ -n "${PYTHON_IMAGE:-}" ] && build_args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")
# shellcheck disable=SC2086 # BUILD_OPTS is a list of options
"${BUILD[@]}" ${BUILD_OPTS:-} "${build_args[@]}" -t "$IMAGE" .
[ "$("$ENGINE" image inspect --format '{{.Config.User}}' "$IMAGE")" = scpd ] || fail "the image does not run as scpd"
if [ "$ENGINE" = podman ]; then health_field='{{json .HealthCheck}}'; else health_field='{{json .Config.Healthcheck}}'; fi
"$ENGINE" image inspect --format "$health_field" "$IMAGE" | grep -q SCPD_HEALTH_URL || fail "no HEALTHCHECK in the image"
ok "built; user scpd; health check kept"

say "one validator: config 0600 owned by 10001, bind-mounted data directory"
.venv/bin/scpd localnet-config --nodes 1 --docker --dir "$WORK/etc" >/dev/null
install -d -o 10001 -g 10001 -m 0700 "$WORK/data"
chown 10001:10001 "$WORK/etc/node1.toml"
chmod 0600 "$WORK/etc/node1.toml"
"$ENGINE" run -d --name "$NAME" \
    -v "$WORK/etc/node1.toml:/etc/scpd/scpd.toml:ro" -v "$WORK/data:/var/lib/scpd" "$IMAGE" >/dev/null
wait_until 60 "the health check to pass" healthy "$NAME"
ok "healthy"
[ "$("$ENGINE" exec "$NAME" id -u)" = 10001 ] || fail "not running as uid 10001"
[ "$("$ENGINE" exec "$NAME" id -g)" = 10001 ] || fail "not running as gid 10001"
ok "runs as 10001:10001"
wait_until 60 "ledgers to close" slot_at_least "$NAME" 3
ok "closing ledgers"

start=$SECONDS
"$ENGINE" stop -t 10 "$NAME" >/dev/null
took=$((SECONDS - start))
code=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "exit code $code on SIGTERM"
[ "$took" -lt 10 ] || fail "took ${took} s to stop"
ok "SIGTERM: exit 0 in ${took} s"
before=$(ls -l "$WORK/data" | wc -l)
[ "$before" -gt 1 ] || fail "no ledger in the bind-mounted data directory"
"$ENGINE" start "$NAME" >/dev/null
wait_until 60 "the restarted node to answer" healthy "$NAME"
slot=$(api_field "$NAME" /info "j['ledger']['slot']")
[ "$slot" -ge 3 ] || fail "the ledger was not kept across the restart (slot $slot)"
ok "ledger kept across a restart (slot $slot)"
"$ENGINE" rm -f "$NAME" >/dev/null

# ----- the compose stack ------------------------------------------------------
say "compose stack: 4 validators + Prometheus"
services=(configs node1 node2 node3 node4 prometheus)
"${COMPOSE[@]}" -p "$PROJECT" up -d "${services[@]}"

prom() { # path python-expression-on-data
    python3 -c "import json, sys, urllib.request as u; d = json.load(u.urlopen('http://127.0.0.1:9090/api/v1/$1', timeout=5))['data']; print($2)"
}
targets_up() { [ "$(prom targets "sum(t['health'] == 'up' for t in d['activeTargets'])" 2>/dev/null || echo 0)" = 4 ]; }
wait_until 120 "4/4 Prometheus targets up" targets_up
ok "4/4 targets up"
rules=$(prom rules "sum(len(g['rules']) for g in d['groups'])")
expected=$(grep -c -- '- alert:' deploy/alerts.yml)
[ "$rules" = "$expected" ] || fail "$rules rules loaded, $expected in deploy/alerts.yml"
ok "$rules alert rules loaded"

slots() { prom "query?query=scpd_ledger_latest_slot" "' '.join(sorted(r['metric']['instance'] + '=' + r['value'][1] for r in d['result']))"; }
first=$(slots)
all_moved() {
    python3 - "$first" "$(slots)" <<'EOF'
import sys
before = dict(p.split("=") for p in sys.argv[1].split())
after = dict(p.split("=") for p in sys.argv[2].split())
sys.exit(0 if len(after) == 4 and all(float(after[k]) > float(before.get(k, -1)) for k in after) else 1)
EOF
}
wait_until 120 "every node to close ledgers" all_moved
ok "every node closing ledgers: $(slots)"
for n in node1 node2 node3 node4; do
    [ "$("$ENGINE" exec "${PROJECT}_${n}_1" id -u 2>/dev/null || "$ENGINE" exec "${PROJECT}-${n}-1" id -u)" = 10001 ] ||
        fail "$n is not running as 10001"
done
ok "every validator runs as 10001"

say "Prometheus keeps its data across down / up"
"${COMPOSE[@]}" -p "$PROJECT" down
"${COMPOSE[@]}" -p "$PROJECT" up -d "${services[@]}"
wait_until 120 "4/4 Prometheus targets up again" targets_up
old=$(prom "query?query=min_over_time(scpd_ledger_latest_slot[30m])" "min(float(r['value'][1]) for r in d['result'])")
python3 -c "import sys; sys.exit(0 if float('$old') < float('${first##*=}') + 1 else 1)" ||
    fail "Prometheus lost its data (oldest slot $old)"
ok "Prometheus data kept (oldest sample: slot $old)"

say "all container checks passed"
