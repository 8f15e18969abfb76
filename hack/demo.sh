#!/usr/bin/env bash
# lifeboat's main job on a fresh machine, end to end on a local default:
#  1. installs what is missing, builds, brings up a local engine in Swarm mode;
#  2. builds lifeboat's image and deploys the controller (manifests/stack.yml);
#  3. deploys a demo stack: a labelled service writing to a volume, and its
#     backup schedule (@every 30s) as a config (manifests/examples/demo-stack.yml);
#  4. waits for the first archive to land in ./demo-archive/demo, verifies its
#     checksum, and shows `lifeboat get`, the archive and the metrics.
# Everything keeps running; `hack/demo.sh down` removes the stacks.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

export LIFEBOAT_ARCHIVE_DIR=${LIFEBOAT_ARCHIVE_DIR:-$LIFEBOAT_ROOT/demo-archive}
export LIFEBOAT_METRICS_PORT=${LIFEBOAT_METRICS_PORT:-9090}
lifeboat="$LIFEBOAT_BUILD_DIR/controller/lifeboat"

if [[ "${1:-}" == "down" ]]; then
  load_engine_env
  docker stack rm demo lifeboat >/dev/null 2>&1 || true
  log "stacks removed; archives stay in $LIFEBOAT_ARCHIVE_DIR; hack/swarm-down.sh stops the engine"
  exit 0
fi

"$LIFEBOAT_ROOT/hack/setup.sh"
"$LIFEBOAT_ROOT/hack/build.sh"
"$LIFEBOAT_ROOT/hack/swarm-up.sh"
load_engine_env
"$LIFEBOAT_ROOT/hack/image.sh"

export LIFEBOAT_ENGINE_SOCKET=${DOCKER_HOST#unix://}
mkdir -p "$LIFEBOAT_ARCHIVE_DIR"
log "deploying the controller (stack lifeboat) and the demo application (stack demo)"
docker stack deploy --resolve-image never -c "$LIFEBOAT_ROOT/manifests/stack.yml" lifeboat >/dev/null
(cd "$LIFEBOAT_ROOT/manifests/examples" &&
  docker stack deploy --resolve-image never -c demo-stack.yml demo >/dev/null)

log "waiting for the first backup to land in $LIFEBOAT_ARCHIVE_DIR/demo (schedule @every 30s)"
archive=""
for _ in $(seq 1 120); do
  archive=$(ls -t "$LIFEBOAT_ARCHIVE_DIR/demo"/demo-*.tar.gz 2>/dev/null | head -1 || true)
  [[ -n "$archive" ]] && break
  sleep 1
done
[[ -n "$archive" ]] || {
  docker service logs lifeboat_controller 2>&1 | tail -20 >&2
  die "no archive after 120 s"
}

echo
echo "== lifeboat get schedules"
"$lifeboat" get schedules
echo
echo "== lifeboat get backups"
"$lifeboat" get backups
echo
echo "== the archive"
ls -l "$LIFEBOAT_ARCHIVE_DIR/demo"
(cd "$LIFEBOAT_ARCHIVE_DIR/demo" && sha256sum -c "$(basename "$archive").sha256")
tar -tzvf "$archive" | head -5
echo
echo "== metrics (http://127.0.0.1:$LIFEBOAT_METRICS_PORT/metrics)"
curl -s "http://127.0.0.1:$LIFEBOAT_METRICS_PORT/metrics" |
  grep -E '^lifeboat_(backups_total|backup_last_success|schedule_next_run|workloads_held|leader)' || true
echo
log "running: a backup every 30 s into $LIFEBOAT_ARCHIVE_DIR/demo; stop with hack/demo.sh down"
