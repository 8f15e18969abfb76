#!/usr/bin/env bash
# Configures (once) and builds lifeboat with Ninja into $LIFEBOAT_BUILD_DIR.
# Extra arguments go to the first `cmake` configure, e.g. -DLIFEBOAT_SANITIZE=address,undefined.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [[ ! -f "$LIFEBOAT_BUILD_DIR/build.ninja" ]]; then
  cmake -S "$LIFEBOAT_ROOT" -B "$LIFEBOAT_BUILD_DIR" -G Ninja "$@" >/dev/null
fi
cmake --build "$LIFEBOAT_BUILD_DIR" -j "$(nproc)"
