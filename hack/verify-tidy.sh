#!/usr/bin/env bash
# Runs clang-tidy with the repository's baseline over our sources, using the
# build's compile_commands.json. Slow (minutes): run before a large change lands.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$LIFEBOAT_ROOT"
"$LIFEBOAT_ROOT/hack/build.sh" >&2
git ls-files -- 'api/*.cpp' 'reconcilers/*.cpp' 'controller/*.cpp' |
  xargs -r -P "$(nproc)" -n 4 clang-tidy -p "$LIFEBOAT_BUILD_DIR" --quiet
