#!/usr/bin/env bash
# Restores two parts of the data set of hack/bench-archive.sh from archives
# lifeboat wrote (gzip default level, zstd, none): "small", its ~100 000
# small files (0-10 KiB, 100 per folder), and "big", its four large
# semi-compressible files (15% of the set each: 307 MiB at the default size,
# 400 MiB with BENCH_SIZE_MIB=2731). Each archive is restored with `lifeboat
# restore --into-directory` (the direct path: pass 1 reads and checks the
# whole archive and its SHA-256, pass 2 unpacks) right after `tar -xzf`,
# `tar -x --zstd` or `tar -xf` of the same archive, which only unpacks.
# Prints seconds, MiB/s of tar data, CPU time, peak RSS and the ratio against
# tar. One run each, archives in the page cache; about 4 min on 2 cores.
#
#   BENCH_SIZE_MIB   size of the data set (default 2048)
#   BENCH_SETS       which parts (default "small big")
#   BENCH_KINDS      which compressions (default "gzip zstd none")
#   BENCH_DATA       where it is generated once (default /tmp/lifeboat-bench-data)
#   BENCH_OUT        archives and extraction folder (default /tmp/lifeboat-bench-restore)
#   LIFEBOAT_BUILD_DIR  build folder (default build/); archive_bench and lifeboat are built
set -euo pipefail
source "$(dirname "$0")/lib.sh"

size_mib=${BENCH_SIZE_MIB:-2048}
data=${BENCH_DATA:-/tmp/lifeboat-bench-data}
out=${BENCH_OUT:-/tmp/lifeboat-bench-restore}

for tool in zstd /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool is missing (hack/setup.sh installs it)"
done
if [[ ! -f "$LIFEBOAT_BUILD_DIR/build.ninja" ]]; then
  cmake -S "$LIFEBOAT_ROOT" -B "$LIFEBOAT_BUILD_DIR" -G Ninja >/dev/null
fi
cmake --build "$LIFEBOAT_BUILD_DIR" --target archive_bench lifeboat >&2
bench=$LIFEBOAT_BUILD_DIR/bench/archive_bench
lifeboat=$LIFEBOAT_BUILD_DIR/controller/lifeboat

if [[ ! -f "$data/.complete-$size_mib" ]]; then
  log "generating $size_mib MiB in $data (once)"
  rm -rf "$data"
  "$bench" generate "$data/data" "$size_mib" >&2
  touch "$data/.complete-$size_mib"
fi
rm -rf "$out"
mkdir -p "$out/archives"
trap 'rm -rf "$out"' EXIT

results=()
# measure NAME COMMAND...: one run into an empty folder, flushed to disk
# before the next (sync is not timed).
measure() {
  local name=$1
  shift
  rm -rf "$out/x"
  mkdir -p "$out/x"
  sync
  local timing
  timing=$(mktemp)
  /usr/bin/time -o "$timing" -f '%e %U %S %M' "$@" 2>"$out/stderr" >"$out/stdout" ||
    { cat "$out/stderr" "$out/stdout" >&2; die "$name failed"; }
  local secs user sys rss
  read -r secs user sys rss < <(tail -1 "$timing")
  rm -f "$timing"
  results+=("$name $secs $(awk "BEGIN{print $user + $sys}") $rss")
  log "$name: $secs s, peak RSS $((rss / 1024)) MiB $(grep -o '(verify.*)' "$out/stdout" || true)"
  rm -rf "$out/x"
}

declare -A tar_flags=([gzip]=-xzf [zstd]="--zstd -xf" [none]=-xf)
declare -A suffix=([gzip]=.tar.gz [zstd]=.tar.zst [none]=.tar)
declare -A mib_of=()
for set in ${BENCH_SETS:-small big}; do
  mib_of[$set]=$(tar -C "$data/data" -cf - "$set" | wc -c | awk '{print $1 / 1048576}')
  for kind in ${BENCH_KINDS:-gzip zstd none}; do
    archive=$out/archives/$set${suffix[$kind]}
    log "writing $archive with lifeboat"
    "$bench" write "$data/data/$set" "$archive" "$kind" >/dev/null
    cat "$archive" >/dev/null # into the page cache
    # shellcheck disable=SC2086  # the flags are words
    measure "$set tar ${tar_flags[$kind]}" tar -C "$out/x" ${tar_flags[$kind]} "$archive"
    measure "$set lifeboat $kind" "$lifeboat" restore --archive "$archive" \
      --volume data=v --into-directory "$out/x"
    rm -f "$archive"
  done
done

printf '\n%s, %s CPUs\n' "$data" "$(nproc)"
printf '%-28s %8s %8s %8s %9s %9s\n' run seconds 'MiB/s' 'CPU s' 'RSS MiB' 'x tar'
ref=""
for r in "${results[@]}"; do
  set=${r%% *}
  case "$r" in
    *" tar "*) ref=$(awk '{print $(NF-2)}' <<<"$r") ;;
  esac
  # The name has spaces; the last three fields are the numbers. Each lifeboat
  # row is compared with the tar row above it (same archive).
  awk -v mib="${mib_of[$set]}" -v ref="$ref" '{
    n = NF; rss = $n; cpu = $(n-1); secs = $(n-2);
    name = $1; for (i = 2; i <= n - 3; i++) name = name " " $i;
    ratio = (ref > 0 && name !~ / tar /) ? sprintf("%.2fx", secs / ref) : "-";
    printf "%-28s %8.2f %8.0f %8.1f %9.1f %9s\n", name, secs, mib / secs, cpu, rss / 1024, ratio;
  }' <<<"$r"
done
