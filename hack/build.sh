#!/usr/bin/env bash
# Configures (once) and builds lifeboat with Ninja into $LIFEBOAT_BUILD_DIR.
# Extra arguments go to the first `cmake` configure, e.g. -DLIFEBOAT_SANITIZE=address,undefined.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [[ ! -f "$LIFEBOAT_BUILD_DIR/build.ninja" ]]; then
  launcher=()
  # ccache, where installed, lets several checkouts share compiled objects.
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$LIFEBOAT_ROOT" -B "$LIFEBOAT_BUILD_DIR" -G Ninja "${launcher[@]}" "$@" >/dev/null
fi
# Paths relative to the checkout, so a second checkout hits the same cache entries.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$LIFEBOAT_ROOT}
# With -g the compiling directory is hashed too unless told not to; without
# this, worktrees never share an object (7 hits in 393 seen).
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
cmake --build "$LIFEBOAT_BUILD_DIR" -j "$(nproc)"
