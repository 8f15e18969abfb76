#!/usr/bin/env bash
# Restores the data set of hack/bench-archive.sh (about 2 GiB: large
# semi-compressible files, incompressible media, ~100 000 small files) from
# archives lifeboat wrote (gzip default level, zstd), with `lifeboat restore
# --into-directory` (the direct path: pass 1 reads and checks the whole
# archive and its SHA-256, pass 2 unpacks) beside `tar -xzf` and
# `tar -x --zstd` of the same archives, which only unpack. Prints seconds,
# MiB/s of tar data, CPU time, peak RSS and the ratio against tar. One run
# each, archives in the page cache; about 3 min on 2 cores.
#
#   BENCH_SIZE_MIB   size of the data set (default 2048)
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

log "writing the archives with lifeboat"
# archive_bench stores the folder under "data/", as a backup stores a volume.
"$bench" write "$data/data" "$out/archives/lb.tar.gz" gzip >/dev/null
"$bench" write "$data/data" "$out/archives/lb.tar.zst" zstd >/dev/null
tar_bytes=$(tar -C "$data" -cf - data | wc -c)
cat "$out/archives"/* >/dev/null # into the page cache

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

measure "tar -xzf" tar -C "$out/x" -xzf "$out/archives/lb.tar.gz"
measure "lifeboat restore gzip" "$lifeboat" restore --archive "$out/archives/lb.tar.gz" \
  --volume data=v --into-directory "$out/x"
measure "tar -x --zstd" tar -C "$out/x" --zstd -xf "$out/archives/lb.tar.zst"
measure "lifeboat restore zstd" "$lifeboat" restore --archive "$out/archives/lb.tar.zst" \
  --volume data=v --into-directory "$out/x"
measure "lifeboat verify zstd" "$lifeboat" restore --archive "$out/archives/lb.tar.zst" \
  --volume data=v --into-directory "$out/x" --dry-run

mib=$(awk "BEGIN{print $tar_bytes / 1048576}")
printf '\n%s MiB of tar (%s), %s CPUs\n' "$(printf '%.0f' "$mib")" "$data" "$(nproc)"
printf '%-24s %8s %8s %8s %9s %9s\n' tool seconds 'MiB/s' 'CPU s' 'RSS MiB' 'x tar'
ref=""
for r in "${results[@]}"; do
  case "$r" in
    "tar -xzf "* | "tar -x --zstd "*) ref=$(awk '{print $(NF-2)}' <<<"$r") ;;
  esac
  # The name has spaces; the last three fields are the numbers. Each lifeboat
  # row is compared with the tar row above it (same archive).
  awk -v mib="$mib" -v ref="$ref" '{
    n = NF; rss = $n; cpu = $(n-1); secs = $(n-2);
    name = $1; for (i = 2; i <= n - 3; i++) name = name " " $i;
    ratio = ref > 0 ? sprintf("%.2fx", secs / ref) : "-";
    printf "%-24s %8.2f %8.0f %8.1f %9.1f %9s\n", name, secs, mib / secs, cpu, rss / 1024, ratio;
  }' <<<"$r"
done
