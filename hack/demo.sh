#!/usr/bin/env bash
# lifeboat's main job on a fresh machine, end to end on a local default.
# Today: installs what is missing, builds, brings up a local engine in Swarm mode
# and shows that lifeboat talks to it (`lifeboat version`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$LIFEBOAT_ROOT/hack/setup.sh"
"$LIFEBOAT_ROOT/hack/build.sh"
"$LIFEBOAT_ROOT/hack/swarm-up.sh"
load_engine_env

"$LIFEBOAT_BUILD_DIR/controller/lifeboat" version
log "the engine keeps running; stop it with hack/swarm-down.sh"
