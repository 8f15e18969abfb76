#!/usr/bin/env bash
# Brings up a Docker engine in Swarm mode for lifeboat, idempotently:
#  - reuses an engine that already answers (at $DOCKER_HOST, or the one this
#    script started before), otherwise starts dockerd with its own data root,
#    exec root, pidfile and socket under $LIFEBOAT_ENGINE_DIR;
#  - makes it a single-node swarm manager on 127.0.0.1 if it is not one;
#  - imports the busybox test image ($LIFEBOAT_TEST_IMAGE) if missing.
# Writes $LIFEBOAT_ENGINE_DIR/env (DOCKER_HOST=...) for the other scripts and tests.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$LIFEBOAT_ROOT/hack/setup.sh"

mkdir -p "$LIFEBOAT_ENGINE_DIR"
own_socket="unix://$LIFEBOAT_ENGINE_DIR/docker.sock"

if [[ -n "${DOCKER_HOST:-}" ]] && engine_reachable; then
  log "reusing the engine at $DOCKER_HOST"
elif DOCKER_HOST=$own_socket engine_reachable; then
  export DOCKER_HOST=$own_socket
  log "reusing the engine started earlier at $DOCKER_HOST"
elif [[ -z "${DOCKER_HOST:-}" ]] && [[ -S /var/run/docker.sock ]] && engine_reachable; then
  export DOCKER_HOST=unix:///var/run/docker.sock
  log "reusing the engine at $DOCKER_HOST"
else
  export DOCKER_HOST=$own_socket
  log "starting dockerd at $DOCKER_HOST"
  mkdir -p "$LIFEBOAT_ENGINE_DIR"/{data,exec}
  # No container networking is needed: no bridge, no iptables, nothing routed.
  (close_inherited_fds; exec nohup dockerd \
    --data-root "$LIFEBOAT_ENGINE_DIR/data" \
    --exec-root "$LIFEBOAT_ENGINE_DIR/exec" \
    --pidfile "$LIFEBOAT_ENGINE_DIR/dockerd.pid" \
    -H "$DOCKER_HOST" \
    --bridge=none --iptables=false --ip-masq=false \
    >"$LIFEBOAT_ENGINE_DIR/dockerd.log" 2>&1) &
  echo "$!" >"$LIFEBOAT_ENGINE_DIR/owned"
  for _ in $(seq 1 300); do
    engine_reachable && break
    kill -0 "$(cat "$LIFEBOAT_ENGINE_DIR/owned")" 2>/dev/null ||
      { tail -20 "$LIFEBOAT_ENGINE_DIR/dockerd.log" >&2; die "dockerd exited"; }
    sleep 0.1
  done
  engine_reachable || { tail -20 "$LIFEBOAT_ENGINE_DIR/dockerd.log" >&2; die "dockerd did not answer in 30s"; }
fi
echo "export DOCKER_HOST=$DOCKER_HOST" >"$LIFEBOAT_ENGINE_DIR/env"

state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [[ "$state" != "active" ]]; then
  log "initialising a single-node swarm on 127.0.0.1"
  # Overlay subnets come from a range of our own, so nothing lands in other ranges.
  # LIFEBOAT_SWARM_PORT lets several engines (one per worktree) run side by side.
  port=${LIFEBOAT_SWARM_PORT:-2377}
  docker swarm init --advertise-addr "127.0.0.1:$port" --listen-addr "127.0.0.1:$port" \
    --data-path-port "$((port + 2412))" \
    --default-addr-pool 10.231.64.0/18 --default-addr-pool-mask-length 24 >/dev/null
fi
[[ $(docker info --format '{{.Swarm.ControlAvailable}}') == "true" ]] ||
  die "the engine at $DOCKER_HOST is in a swarm but is not a manager"

if ! docker image inspect "$LIFEBOAT_TEST_IMAGE" >/dev/null 2>&1; then
  log "importing $LIFEBOAT_TEST_IMAGE from busybox-static"
  import_test_image
fi

log "engine $(docker version --format '{{.Server.Version}}') in swarm mode at $DOCKER_HOST"
