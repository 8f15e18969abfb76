#!/usr/bin/env bash
# Streams a volume (1 GiB by default, BENCH_SIZE_MIB) out of a created,
# never-started container three ways, in one run, on the same data:
#   lifeboat's engine client (bench/engine_archive_bench), `docker cp`, and curl
# over the unix socket; each to /dev/null. Prints throughput and peak RSS of
# each, and ratios against docker cp. Best of BENCH_RUNS (default 3) runs each.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

size_mib=${BENCH_SIZE_MIB:-1024}
runs=${BENCH_RUNS:-3}

"$LIFEBOAT_ROOT/hack/build.sh" >&2
"$LIFEBOAT_ROOT/hack/swarm-up.sh"
load_engine_env
socket=${DOCKER_HOST#unix://}

volume=lifeboat-bench-${size_mib}m
container=""
cleanup() { [[ -n "$container" ]] && docker rm -f "$container" >/dev/null 2>&1 || true; }
trap cleanup EXIT

if [[ -z "$(docker volume ls -q -f name="^${volume}$")" ]]; then
  log "filling volume $volume with $size_mib MiB (random data, 16 files)"
  docker volume create "$volume" >/dev/null
  docker run --rm --network none -v "$volume:/data" "$LIFEBOAT_TEST_IMAGE" sh -c \
    "for i in \$(seq 1 16); do dd if=/dev/urandom of=/data/blob\$i bs=1M count=$((size_mib / 16)) 2>/dev/null; done"
fi
container=$(docker create --network none -v "$volume:/data:ro" "$LIFEBOAT_TEST_IMAGE" true)

# Runs "$@" $runs times; prints "<best seconds> <peak RSS KiB of that run>".
measure() {
  local best="" best_rss=""
  for _ in $(seq 1 "$runs"); do
    local out timing
    timing=$(mktemp)
    /usr/bin/time -o "$timing" -f '%e %M' "$@" >/dev/null
    out=$(tail -1 "$timing")
    rm -f "$timing"
    local secs=${out% *} rss=${out#* }
    if [[ -z "$best" ]] || awk "BEGIN{exit !($secs < $best)}"; then
      best=$secs best_rss=$rss
    fi
  done
  echo "$best $best_rss"
}

bytes=$(curl -s --unix-socket "$socket" "http://docker/v1.41/containers/$container/archive?path=/data" | wc -c)
read -r ours_s ours_rss < <(measure "$LIFEBOAT_BUILD_DIR/bench/engine_archive_bench" "$container" /data)
read -r cp_s cp_rss < <(measure docker cp "$container:/data" -)
read -r curl_s curl_rss < <(measure curl -s --unix-socket "$socket" -o /dev/null \
  "http://docker/v1.41/containers/$container/archive?path=/data")

mib=$(awk "BEGIN{print $bytes/1048576}")
printf '\nstreaming %s MiB of tar out of a never-started container (best of %s)\n' "$mib" "$runs"
printf '%-22s %10s %12s %14s %16s\n' tool seconds 'MiB/s' 'peak RSS MiB' 'speed vs cp'
row() {
  awk -v n="$1" -v s="$2" -v r="$3" -v cp="$cp_s" -v mib="$mib" \
    'BEGIN{printf "%-22s %10.2f %12.0f %14.1f %15.2fx\n", n, s, mib/s, r/1024, cp/s}'
}
row "lifeboat client" "$ours_s" "$ours_rss"
row "docker cp" "$cp_s" "$cp_rss"
row "curl --unix-socket" "$curl_s" "$curl_rss"
