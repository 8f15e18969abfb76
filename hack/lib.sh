# Shared by the hack/ scripts: paths, logging, and the engine's environment.
# shellcheck shell=bash

LIFEBOAT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything a local engine owns lives under one folder, so `down` removes it all.
# Kept short: containerd's socket paths under the exec root have a length limit.
LIFEBOAT_ENGINE_DIR=${LIFEBOAT_ENGINE_DIR:-/tmp/lifeboat-engine}
LIFEBOAT_BUILD_DIR=${LIFEBOAT_BUILD_DIR:-$LIFEBOAT_ROOT/build}
LIFEBOAT_TEST_IMAGE=${LIFEBOAT_TEST_IMAGE:-lifeboat-test/busybox:latest}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Loads DOCKER_HOST written by swarm-up.sh, unless the caller already chose one.
load_engine_env() {
  if [[ -z "${DOCKER_HOST:-}" && -f "$LIFEBOAT_ENGINE_DIR/env" ]]; then
    # shellcheck disable=SC1091
    source "$LIFEBOAT_ENGINE_DIR/env"
  fi
  export DOCKER_HOST
}

# True when the engine at $DOCKER_HOST (or the default socket) answers.
engine_reachable() {
  timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}
