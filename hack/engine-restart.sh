#!/usr/bin/env bash
# Restarts the engine that swarm-up.sh started (for the engine-restart tests):
# stops dockerd by its PID (SIGTERM, or SIGKILL with --kill) and starts it
# again on the same roots, so the swarm, its services and configs come back.
# Exits 3, touching nothing, when the engine is not one swarm-up.sh started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

signal=TERM
[[ "${1:-}" == "--kill" ]] && signal=KILL
owned="$LIFEBOAT_ENGINE_DIR/owned"
[[ -f "$owned" ]] || { log "the engine is not ours to restart"; exit 3; }
pid=$(cat "$owned")
kill -0 "$pid" 2>/dev/null || { log "dockerd ($pid) is not running"; exit 3; }
kill -s "$signal" "$pid"
for _ in $(seq 1 300); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$pid" 2>/dev/null && die "dockerd did not stop in 30s"
rm -f "$LIFEBOAT_ENGINE_DIR/dockerd.pid"
unset DOCKER_HOST
"$(dirname "$0")/swarm-up.sh"
