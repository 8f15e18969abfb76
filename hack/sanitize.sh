#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer and UndefinedBehaviorSanitizer
# (GCC, -fno-sanitize-recover: the first report fails its test) into a build
# folder of their own, then runs `ctest -L unit` there. Any heap misuse, leak,
# overflow, misaligned or out-of-range operation a unit test reaches fails it.
# The engine tests (e2e) are not run here: their time is the engine's, and
# the fuzz targets (hack/fuzz.sh) cover the decoders with the same sanitizers.
#   hack/sanitize.sh [ctest arguments...]     e.g. hack/sanitize.sh -R archive
# Environment: LIFEBOAT_SANITIZE_BUILD_DIR (default <checkout>/build-asan).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$LIFEBOAT_ROOT/hack/setup.sh"
build_dir=${LIFEBOAT_SANITIZE_BUILD_DIR:-$LIFEBOAT_ROOT/build-asan}
if [[ ! -f "$build_dir/build.ninja" ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$LIFEBOAT_ROOT" -B "$build_dir" -G Ninja "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLIFEBOAT_SANITIZE=address,undefined >/dev/null
fi
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$LIFEBOAT_ROOT}
cmake --build "$build_dir" -j "$(nproc)" --target lifeboat_unit_tests lifeboat

# Leaks are errors; a report names the stack. UBSan stops at the first
# finding (built with -fno-sanitize-recover=all) and prints where.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log "unit tests under address,undefined sanitizers ($build_dir)"
ctest --test-dir "$build_dir" -L unit -j "$(nproc)" --output-on-failure "$@"
