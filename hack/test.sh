#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, brings up a local engine in
# Swarm mode (hack/swarm-up.sh), runs CTest (unit and e2e), and stops the engine
# again if this script started it.
#   hack/test.sh            all tests
#   hack/test.sh -L unit    only the fast, engine-free tests (no engine started)
# Other arguments go to ctest.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$LIFEBOAT_ROOT/hack/setup.sh"
"$LIFEBOAT_ROOT/hack/build.sh"

needs_engine=1
for arg in "$@"; do
  [[ "$arg" == "unit" ]] && needs_engine=0
done

if [[ $needs_engine -eq 1 ]]; then
  started_here=0
  [[ -f "$LIFEBOAT_ENGINE_DIR/owned" ]] || started_here=1
  "$LIFEBOAT_ROOT/hack/swarm-up.sh"
  if [[ $started_here -eq 1 && -f "$LIFEBOAT_ENGINE_DIR/owned" ]]; then
    trap '"$LIFEBOAT_ROOT/hack/swarm-down.sh"' EXIT
  fi
  load_engine_env
  # The controller's e2e test deploys lifeboat's own image.
  "$LIFEBOAT_ROOT/hack/image.sh"
fi

ctest --test-dir "$LIFEBOAT_BUILD_DIR" --output-on-failure -j "$(nproc)" "$@"
