#!/usr/bin/env bash
# The suite run from the container image, not the build tree: the three backends and the gateway
# run as containers of IMAGE (read-only root filesystem, uid 10001, as on Kubernetes), on a
# PostgreSQL and a Redis (with a password) on the host. Then:
#   - every binary in the image finds every library it needs (ldd);
#   - the Python client tests pass against the containers, directly and through the gateway;
#   - a gateway smoke: the image's kp-seed loads the seed data, the Nairobi workshop comes back
#     through the gateway, the second time from the cache;
#   - the prod overlay's backup CronJob script runs in the image against these databases and its
#     dumps restore (pg_restore);
#   - each server's peak RSS after a short load, against the memory limit in the manifests.
# Usage: tests/deploy/suite_from_image.sh IMAGE
set -euo pipefail
IMAGE=${1:?usage: suite_from_image.sh IMAGE}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/kp-image-suite.XXXXXX)
chmod 755 "$WORK"
NAMES=()
log() { printf '==> %s\n' "$*" >&2; }
cleanup() {
  for n in "${NAMES[@]}"; do podman rm -f -t 2 "$n" >/dev/null 2>&1 || true; done
  [ -n "${REDIS_PID:-}" ] && kill "$REDIS_PID" 2>/dev/null || true
  [ -d "$WORK/pg" ] && "$ROOT/scripts/pg" stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log "every binary in $IMAGE finds its libraries"
missing=$(podman run --rm "$IMAGE" sh -c 'for b in /usr/local/bin/kp-* /usr/bin/pg_dump; do ldd "$b" | sed "s|^|$b: |"; done' | grep "not found" || true)
if [ -n "$missing" ]; then echo "$missing" >&2; exit 1; fi
podman run --rm "$IMAGE" sh -c 'test "$(id -u)" = 10001' || { echo "the image does not run as uid 10001" >&2; exit 1; }

log "PostgreSQL and Redis on the host"
PG_URL=$("$ROOT/scripts/pg" start "$WORK/pg")
for db in organisations events participants; do "$ROOT/scripts/pg" createdb "$PG_URL" "kp_$db"; done
REDIS_PORT=$("$ROOT/scripts/free-port")
REDIS_PASSWORD=image-suite-redis-password
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --requirepass "$REDIS_PASSWORD" \
  >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!

declare -A PORT
for s in organisations events participants gateway; do PORT[$s]=$("$ROOT/scripts/free-port"); done
peers=(--organisations_address=127.0.0.1:${PORT[organisations]} --events_address=127.0.0.1:${PORT[events]}
       --participants_address=127.0.0.1:${PORT[participants]})
start() {  # name binary args...: a container of the image, as the manifests run it
  local name=$1; shift
  NAMES+=("$name")
  podman run -d --name "$name" --network host --read-only --tmpfs /tmp --user 10001:10001 \
    -e KP_REDIS_PASSWORD="$REDIS_PASSWORD" "$IMAGE" "$@" >/dev/null
}
for s in organisations events participants; do
  start "kp-image-$s" "kp-$s" --port="${PORT[$s]}" --metrics_port=0 --plaintext --auth=disabled \
    --database="$PG_URL/kp_$s" --redis_address="127.0.0.1:$REDIS_PORT" "${peers[@]}"
done
start kp-image-gateway kp-gateway --port="${PORT[gateway]}" --metrics_port=0 --plaintext --auth=disabled \
  --rate_limit=0 --redis_address="127.0.0.1:$REDIS_PORT" "${peers[@]}"
for s in organisations events participants gateway; do
  if ! "$PY" "$ROOT/tools/kpcall.py" --wait "127.0.0.1:${PORT[$s]}" 30; then
    echo "kp-$s (container) did not become SERVING:" >&2
    podman logs --tail 20 "kp-image-$s" >&2
    exit 1
  fi
done
log "the containers serve; the Python client tests against them"
TARGETS="organisations=127.0.0.1:${PORT[organisations]},events=127.0.0.1:${PORT[events]}"
TARGETS+=",participants=127.0.0.1:${PORT[participants]},gateway=127.0.0.1:${PORT[gateway]}"
KP_TARGETS=$TARGETS KP_PROTO_DIR="$ROOT/proto" "$PY" "$ROOT/tests/clients/python/test_client.py"
KP_TARGETS=$TARGETS KP_VIA_GATEWAY=1 KP_PROTO_DIR="$ROOT/proto" "$PY" "$ROOT/tests/clients/python/test_client.py"

log "gateway smoke: the image's kp-seed, then the Nairobi workshop through the gateway"
podman run --rm --network host --read-only "$IMAGE" kp-seed --data_dir=/usr/share/khartoum-process/seed --plaintext \
  --organisations_address=127.0.0.1:${PORT[organisations]} --events_address=127.0.0.1:${PORT[events]}
for attempt in first second; do
  out=$("$PY" "$ROOT/tools/kpcall.py" -v "127.0.0.1:${PORT[gateway]}" khartoum.gateway.v1.PortalService/GetEventOverview \
        '{"name": "events/2024-nairobi-law-enforcement-partnerships"}' 2>&1)
  grep -q Nairobi <<<"$out" || { echo "no Nairobi workshop through the gateway: $out" >&2; exit 1; }
  cache=$(grep -o 'x-kp-cache: [a-z]*' <<<"$out" | cut -d' ' -f2)
  echo "GetEventOverview ($attempt): the Nairobi workshop, x-kp-cache: $cache"
done
[ "$cache" = hit ] || { echo "the second read was not a cache hit: Redis (with its password) unused?" >&2; exit 1; }

log "the prod overlay's backup CronJob, run in the image against these databases"
SCRIPT=$(kubectl kustomize "$ROOT/deploy/k8s/overlays/prod" | node -e '
  const YAML = require(process.argv[1]);
  const docs = YAML.parseAllDocuments(require("fs").readFileSync(0, "utf8")).map((d) => d.toJSON());
  const job = docs.find((d) => d && d.kind === "CronJob" && d.metadata.name === "kp-backup");
  process.stdout.write(job.spec.jobTemplate.spec.template.spec.containers[0].args[0]);' "$ROOT/node_modules/yaml")
mkdir -m 777 "$WORK/backups"
NAMES+=(kp-image-backup)
podman run --name kp-image-backup --network host --read-only --tmpfs /tmp --user 10001:10001 \
  -v "$WORK/backups:/backups" -e KP_DATABASE_organisations="$PG_URL/kp_organisations" \
  -e KP_DATABASE_events="$PG_URL/kp_events" -e KP_DATABASE_participants="$PG_URL/kp_participants" \
  "$IMAGE" sh -c "$SCRIPT"
for s in organisations events participants; do
  dump=$(ls "$WORK"/backups/"$s"-*.dump)
  "$ROOT/scripts/pg" createdb "$PG_URL" "restored_$s"
  pg_restore --no-owner --exit-on-error --dbname="$PG_URL/restored_$s" "$dump"
done
restored=$(psql -At "$PG_URL/restored_organisations" -c "SELECT COUNT(*) FROM organisations")
[ "$restored" -ge 54 ] || { echo "the restored organisations database holds $restored organisations" >&2; exit 1; }
echo "backup CronJob: three dumps; restored, organisations holds $restored rows"

log "load through the gateway (the image's kp-bench, 64 calls in flight) for peak memory figures"
podman run --rm --network host "$IMAGE" kp-bench run --runs="overview=overview@127.0.0.1:${PORT[gateway]},get=get-event@127.0.0.1:${PORT[gateway]}" \
  --baseline=get --name=events/2024-nairobi-law-enforcement-partnerships --concurrency=64 --duration=3s --warmup=500ms \
  --repeat=1 | tail -n 4
log "peak memory of each server (VmHWM) against the manifests' limit"
limit=$(kubectl kustomize "$ROOT/deploy/k8s/overlays/dev" | node -e '
  const YAML = require(process.argv[1]);
  const docs = YAML.parseAllDocuments(require("fs").readFileSync(0, "utf8")).map((d) => d.toJSON());
  const d = docs.find((o) => o && o.kind === "Deployment" && o.metadata.name === "kp-gateway");
  process.stdout.write(String(parseInt(d.spec.template.spec.containers[0].resources.limits.memory)));' "$ROOT/node_modules/yaml")
for s in organisations events participants gateway; do
  pid=$(podman inspect --format '{{.State.Pid}}' "kp-image-$s")
  hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")
  echo "kp-$s: peak RSS ${hwm} MiB (limit ${limit} MiB)"
  [ "$hwm" -lt "$limit" ] || { echo "kp-$s exceeds the manifests' memory limit" >&2; exit 1; }
done
log "the suite passes from the image $IMAGE"
