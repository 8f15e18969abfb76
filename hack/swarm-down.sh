#!/usr/bin/env bash
# Tears down what swarm-up.sh started: leaves the swarm, stops dockerd by its
# PID and removes its folder. An engine it merely reused is left alone.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

owned="$LIFEBOAT_ENGINE_DIR/owned"
if [[ ! -f "$owned" ]]; then
  log "no engine started by swarm-up.sh; nothing to stop"
  rm -f "$LIFEBOAT_ENGINE_DIR/env"
  exit 0
fi
pid=$(cat "$owned")
export DOCKER_HOST="unix://$LIFEBOAT_ENGINE_DIR/docker.sock"
if kill -0 "$pid" 2>/dev/null; then
  timeout 30 docker swarm leave --force >/dev/null 2>&1 || true
  kill "$pid"
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && { log "dockerd did not stop in 30s; killing it"; kill -9 "$pid"; }
fi
# Whatever dockerd left mounted under its roots must go before the folder does.
mounts=$(grep -o " $LIFEBOAT_ENGINE_DIR/[^ ]*" /proc/mounts || true)
for m in $(sort -r <<<"$mounts"); do
  umount -l "$m" 2>/dev/null || true
done
rm -rf "$LIFEBOAT_ENGINE_DIR"
log "engine stopped and $LIFEBOAT_ENGINE_DIR removed"
