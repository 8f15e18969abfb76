#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang and
# -fsanitize=fuzzer,address,undefined into their own build folder, then runs
# each on its checked-in corpus (tests/fuzz/corpus/<target>/) for a bounded
# time. Fails on any crash, sanitizer report, leak, timeout or out-of-memory;
# the input that did it is left as <work>/<target>/crash-* (or leak-, timeout-,
# oom-) and named in the output.
#   hack/fuzz.sh [seconds-per-target] [target...]   default: 30 s, every target
# Environment: LIFEBOAT_FUZZ_SEED (default 0: a new random seed each run; CI
# gives 1, so that what CI tries is the same sequence of inputs every time, a
# prefix of what a longer run with that seed tried: a finding is then the
# commit's, reproducible, never a roll of the dice at landing time; exploring
# with random seeds for longer is a developer's run),
# LIFEBOAT_FUZZ_BUILD_DIR (default <checkout>/build-fuzz),
# LIFEBOAT_FUZZ_WORK_DIR (new inputs found; default a temporary folder, removed
# unless a target failed).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

seconds=${1:-30}
seed=${LIFEBOAT_FUZZ_SEED:-0}
[[ "$seed" =~ ^[0-9]+$ ]] || die "LIFEBOAT_FUZZ_SEED must be a number, not '$seed'"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || die "seconds per target must be a positive number, not '$seconds'"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(decode_fuzz engine_decode_fuzz checksum_file_fuzz entry_check_fuzz age_decrypt_fuzz)

# clang only here: the normal build and tests need GCC alone.
"$LIFEBOAT_ROOT/hack/setup.sh" --fuzz

build_dir=${LIFEBOAT_FUZZ_BUILD_DIR:-$LIFEBOAT_ROOT/build-fuzz}
if [[ ! -f "$build_dir/build.ninja" ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  CXX=clang++ cmake -S "$LIFEBOAT_ROOT" -B "$build_dir" -G Ninja "${launcher[@]}" \
    -DLIFEBOAT_FUZZ=ON -DLIFEBOAT_TEST=OFF >/dev/null
fi
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$LIFEBOAT_ROOT}
cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]}"

work=${LIFEBOAT_FUZZ_WORK_DIR:-}
keep_work=1
if [[ -z "$work" ]]; then
  work=$(mktemp -d /tmp/lifeboat-fuzz.XXXXXX)
  keep_work=0
fi

failed=()
for target in "${targets[@]}"; do
  corpus="$LIFEBOAT_ROOT/tests/fuzz/corpus/$target"
  [[ -d "$corpus" ]] || die "no corpus for $target at $corpus"
  mkdir -p "$work/$target/new"
  log "$target: ${seconds} s on $corpus, seed $seed"
  # New inputs go to the first folder, so the checked-in corpus is only read.
  # -timeout: one input taking longer than 10 s is a hang, and a failure.
  set +e
  (cd "$work/$target" && "$build_dir/tests/fuzz/$target" -max_total_time="$seconds" \
    -seed="$seed" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    "$work/$target/new" "$corpus" >"$work/$target/log" 2>&1)
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target/log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$target/log")
  if [[ $rc -ne 0 ]]; then
    failed+=("$target")
    log "$target: FAILED (exit $rc); the last lines of its log ($work/$target/log):"
    tail -n 40 "$work/$target/log" >&2
    ls "$work/$target"/crash-* "$work/$target"/leak-* "$work/$target"/timeout-* \
      "$work/$target"/oom-* 2>/dev/null | sed 's/^/  input: /' >&2 || true
  else
    log "$target: ok, ${execs:-?} executions, ${rate:-?}/s"
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  die "fuzz targets failed: ${failed[*]} (inputs and logs kept in $work)"
fi
[[ $keep_work -eq 1 ]] || rm -rf "$work"
log "all ${#targets[@]} targets ran ${seconds} s without a finding"
