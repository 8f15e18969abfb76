#!/usr/bin/env bash
# Backs one generated folder up twice into a restic repository with lifeboat's
# library (bench/restic_bench) and with Debian's `restic backup`: a first run,
# then an incremental one after editing one large file in the middle and
# rewriting a few small ones. Prints seconds, MiB/s (of the folder's size),
# bytes read, bytes added, repository size and peak RSS per row, and checks
# every repository with `restic check --read-data`. Then restores the latest
# snapshot of each: lifeboat's library (verifying every blob, then writing),
# `restic restore`, and `tar -x` of a tar of the same folder for scale.
#
#   BENCH_SIZE_MIB   size of the large file (default 256); plus ~70 MiB of small files
#   BENCH_FILES      number of small files (default 2000)
#   BENCH_DIR        where everything goes (default /tmp/lifeboat-bench-restic, removed after)
#   LIFEBOAT_BUILD_DIR  build folder (default build/); only restic_bench is built
set -euo pipefail
source "$(dirname "$0")/lib.sh"

size_mib=${BENCH_SIZE_MIB:-256}
files=${BENCH_FILES:-2000}
dir=${BENCH_DIR:-/tmp/lifeboat-bench-restic}

for tool in restic openssl python3 /usr/bin/time du; do
  command -v "$tool" >/dev/null || die "$tool is missing (hack/setup.sh installs it)"
done
if [[ ! -f "$LIFEBOAT_BUILD_DIR/build.ninja" ]]; then
  cmake -S "$LIFEBOAT_ROOT" -B "$LIFEBOAT_BUILD_DIR" -G Ninja >/dev/null
fi
cmake --build "$LIFEBOAT_BUILD_DIR" --target restic_bench -j 2 >&2
bench=$LIFEBOAT_BUILD_DIR/bench/restic_bench

rm -rf "$dir"
mkdir -p "$dir/vol/small"
trap 'chmod -R u+w "$dir" 2>/dev/null; rm -rf "$dir"' EXIT
export RESTIC_PASSWORD=lifeboat-bench RESTIC_CACHE_DIR=$dir/cache

log "generating $size_mib MiB + $files small files"
random() { # BYTES SEED
  openssl enc -chacha20 -nosalt -pass "pass:$2" -in /dev/zero 2>/dev/null | head -c "$1" || true
}
random $((size_mib << 20)) large >"$dir/vol/large.bin"
python3 - "$dir/vol/small" "$files" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(17)
for i in range(n):
    sub = os.path.join(root, f"d{i % 50:02d}")
    os.makedirs(sub, exist_ok=True)
    size = rng.randint(1024, 64 * 1024)
    # Half random bytes, half text: compression has something to do.
    if i % 2:
        data = rng.randbytes(size)
    else:
        data = (f"row {i} " * (size // 6 + 1)).encode()[:size]
    with open(os.path.join(sub, f"f{i:05d}"), "wb") as f:
        f.write(data)
PY
total_mib=$(du -sm --apparent-size "$dir/vol" | cut -f1)
cat -- "$dir"/vol/large.bin >/dev/null

rows=()
# measure NAME REPO COMMAND...: one run; seconds, peak RSS (KiB), its output kept in $dir/out.
measure() {
  local name=$1 repo=$2 timing
  shift 2
  timing=$(mktemp)
  sync
  /usr/bin/time -o "$timing" -f '%e %M' "$@" >"$dir/out" 2>"$dir/stderr" ||
    { cat "$dir/stderr" >&2; die "$name failed"; }
  local secs rss
  read -r secs rss < <(tail -1 "$timing")
  rm -f "$timing"
  local read added
  if [[ $name == lifeboat* ]]; then
    read=$(grep -o 'bytes_read [0-9]*' "$dir/out" | cut -d' ' -f2)
    added=$(grep -o 'pack_bytes [0-9]*' "$dir/out" | cut -d' ' -f2)
  else
    read=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o=json.loads(l)
    if o.get("message_type")=="summary":
        print(o["total_bytes_processed"], o["data_added"])' "$dir/out")
    added=${read#* }
    read=${read% *}
  fi
  rows+=("$name|$secs|$rss|$read|$added|$(du -sb "$repo" | cut -f1)")
  log "$name: $secs s"
}

edit() {
  python3 - "$dir/vol" <<'PY'
import os, sys
root = sys.argv[1]
with open(os.path.join(root, "large.bin"), "r+b") as f:
    f.seek(os.path.getsize(f.name) // 2)
    f.write(b"lifeboat edit in the middle")
for i in range(0, 10):
    p = os.path.join(root, "small", f"d{i % 50:02d}", f"f{i:05d}")
    with open(p, "ab") as f:
        f.write(b"appended\n")
PY
}

"$bench" init "$dir/lb-repo"
restic init -q --repository-version 2 -r "$dir/restic-repo"
measure "lifeboat first" "$dir/lb-repo" "$bench" backup "$dir/lb-repo" "$dir/vol" vol
measure "restic first" "$dir/restic-repo" restic -r "$dir/restic-repo" backup --json "$dir/vol"
edit
measure "lifeboat incremental" "$dir/lb-repo" "$bench" backup "$dir/lb-repo" "$dir/vol" vol
measure "restic incremental" "$dir/restic-repo" restic -r "$dir/restic-repo" backup --json "$dir/vol"
for repo in lb-repo restic-repo; do
  restic -q -r "$dir/$repo" --no-cache check --read-data >/dev/null || die "restic check of $repo failed"
done

# Restores, each into an empty folder: page cache dropped first where allowed.
restore_rows=()
measure_restore() { # NAME COMMAND...
  local name=$1 timing secs rss
  shift
  timing=$(mktemp)
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -o "$timing" -f '%e %M' "$@" >"$dir/out" 2>"$dir/stderr" ||
    { cat "$dir/stderr" >&2; die "$name failed"; }
  read -r secs rss < <(tail -1 "$timing")
  rm -f "$timing"
  restore_rows+=("$name|$secs|$rss")
  log "$name: $secs s"
}
tar -cf "$dir/vol.tar" -C "$dir" vol
mkdir -p "$dir/out-lb" "$dir/out-restic" "$dir/out-tar"
measure_restore "lifeboat restore" "$bench" restore "$dir/lb-repo" vol "$dir/out-lb"
measure_restore "restic restore" restic -r "$dir/restic-repo" restore latest --target "$dir/out-restic"
measure_restore "tar -x" tar -xf "$dir/vol.tar" -C "$dir/out-tar"
diff -r "$dir/vol" "$dir/out-lb" >/dev/null || die "lifeboat's restore differs from the folder"
diff -r "$dir/vol" "$dir/out-restic$dir/vol" >/dev/null || die "restic's restore differs from the folder"

printf '\n%s MiB in %s files (one of %s MiB), %s CPUs; restic %s\n' "$total_mib" $((files + 1)) \
  "$size_mib" "$(nproc)" "$(restic version | cut -d' ' -f2)"
printf '%-22s %8s %8s %10s %10s %10s %8s\n' run seconds 'MiB/s' 'read MiB' 'added MiB' 'repo MiB' 'RSS MiB'
for r in "${rows[@]}"; do
  IFS='|' read -r name secs rss read added repo <<<"$r"
  awk -v n="$name" -v s="$secs" -v m="$rss" -v r="$read" -v a="$added" -v p="$repo" -v t="$total_mib" \
    'BEGIN{printf "%-22s %8.2f %8.0f %10.1f %10.1f %10.1f %8.1f\n", n, s, t / (s > 0 ? s : 0.01), r / 1048576, a / 1048576, p / 1048576, m / 1024}'
done
echo "(read: lifeboat's count of bytes read; restic's total_bytes_processed, which counts"
echo " unchanged files too. added: lifeboat's pack bytes written; restic's data_added.)"
printf '\n%-22s %8s %8s %8s %10s\n' restore seconds 'MiB/s' 'RSS MiB' 'vs tar -x'
tar_secs=${restore_rows[2]#*|}
tar_secs=${tar_secs%|*}
for r in "${restore_rows[@]}"; do
  IFS='|' read -r name secs rss <<<"$r"
  awk -v n="$name" -v s="$secs" -v m="$rss" -v t="$total_mib" -v x="$tar_secs" \
    'BEGIN{printf "%-22s %8.2f %8.0f %8.1f %9.2fx\n", n, s, t / (s > 0 ? s : 0.01), m / 1024, s / (x > 0 ? x : 0.01)}'
done
echo "(lifeboat's restore reads every blob twice: verifying all first, then writing.)"
