#!/usr/bin/env bash
# Archives one generated data set (about 2 GiB: large semi-compressible files,
# incompressible media, ~100 000 small files) with lifeboat's writer reading
# the folder directly (gzip default and fast levels, zstd, none) and with the
# tools users compare it with: `tar -czf`, `tar -c | pigz`, `tar -c | zstd -T0`,
# plus the raw read (`tar -c | cat`; GNU tar writing to /dev/null skips reading
# the files). Prints seconds, throughput, CPU time, peak RSS and output size,
# with ratios against `tar -czf` and `tar | pigz -6`. lifeboat's rows include
# what a real run does besides: SHA-256 of the output, fsync, rename. One run
# each, after a raw read has put the data set in the page cache; about 3 min
# on 2 cores. Rows with "age" or "gpg" encrypt (Debian's age and gpg for the
# pipelines).
#
#   BENCH_SIZE_MIB   size of the data set (default 2048)
#   BENCH_DATA       where it is generated once (default /tmp/lifeboat-bench-data)
#   BENCH_OUT        where archives are written, one at a time (default /tmp/lifeboat-bench-out)
#   BENCH_ONLY       a regular expression: run only the rows whose names match
#   LIFEBOAT_BUILD_DIR  build folder (default build/); only archive_bench is built
set -euo pipefail
source "$(dirname "$0")/lib.sh"

size_mib=${BENCH_SIZE_MIB:-2048}
data=${BENCH_DATA:-/tmp/lifeboat-bench-data}
out=${BENCH_OUT:-/tmp/lifeboat-bench-out}
only=${BENCH_ONLY:-.}

for tool in pigz zstd /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool is missing (hack/setup.sh installs it)"
done

if [[ ! -f "$LIFEBOAT_BUILD_DIR/build.ninja" ]]; then
  cmake -S "$LIFEBOAT_ROOT" -B "$LIFEBOAT_BUILD_DIR" -G Ninja >/dev/null
fi
cmake --build "$LIFEBOAT_BUILD_DIR" --target archive_bench >&2
bench=$LIFEBOAT_BUILD_DIR/bench/archive_bench

if [[ ! -f "$data/.complete-$size_mib" ]]; then
  log "generating $size_mib MiB in $data (once)"
  rm -rf "$data"
  "$bench" generate "$data/data" "$size_mib" >&2
  touch "$data/.complete-$size_mib"
fi
rm -rf "$out"
mkdir -p "$out"
trap 'rm -rf "$out"' EXIT

# The same bytes every tool archives: the tar stream's size.
tar_bytes=$(tar -C "$data" -cf - data | wc -c)

results=()
# measure NAME OUTPUT-FILE COMMAND...: one run (the data set is in the page
# cache after generation and the raw read); records seconds, CPU seconds,
# peak RSS (KiB) and output bytes.
measure() {
  local name=$1 file=$2
  shift 2
  [[ $name =~ $only ]] || return 0
  local timing
  timing=$(mktemp)
  sync
  /usr/bin/time -o "$timing" -f '%e %U %S %M' "$@" 2>"$out/stderr" >/dev/null ||
    { cat "$out/stderr" >&2; die "$name failed"; }
  local secs user sys rss size=0 held
  read -r secs user sys rss < <(tail -1 "$timing")
  rm -f "$timing"
  [[ -n "$file" && -f "$file" ]] && size=$(stat -c %s "$file")
  # Workloads are held while the data is read: for the other tools that is
  # the whole run; lifeboat reports when its reading ended.
  held=$secs
  if [[ -s "$out/held" ]]; then
    held=$(cat "$out/held")
    rm -f "$out/held"
  fi
  results+=("$name $secs $held $(awk "BEGIN{print $user + $sys}") $rss $size")
  log "$name: $secs s, peak RSS $((rss / 1024)) MiB, $((size / 1048576)) MiB"
  rm -f "$out"/*.tar* "$out"/*.gz "$out"/*.zst "$out"/*.gpg
}

measure "tar | cat (raw read)" "" sh -c "tar -C '$data' -cf - data | cat >/dev/null"
measure "tar -czf" "$out/gnu.tar.gz" tar -C "$data" -czf "$out/gnu.tar.gz" data
measure "tar | pigz -6" "$out/pigz6.tar.gz" sh -c "tar -C '$data' -cf - data | pigz -6 > '$out/pigz6.tar.gz'"
measure "tar | pigz -1" "$out/pigz1.tar.gz" sh -c "tar -C '$data' -cf - data | pigz -1 > '$out/pigz1.tar.gz'"
measure "tar | zstd -T0 -3" "$out/z.tar.zst" sh -c "tar -C '$data' -cf - data | zstd -q -T0 -3 > '$out/z.tar.zst'"
BENCH_HELD_FILE="$out/held" measure "lifeboat gzip (4)" "$out/lb.tar.gz" "$bench" write "$data/data" "$out/lb.tar.gz" gzip
BENCH_HELD_FILE="$out/held" measure "lifeboat gzip 6" "$out/lb6.tar.gz" "$bench" write "$data/data" "$out/lb6.tar.gz" gzip 6
BENCH_HELD_FILE="$out/held" measure "lifeboat gzip 1" "$out/lb1.tar.gz" "$bench" write "$data/data" "$out/lb1.tar.gz" gzip 1
BENCH_HELD_FILE="$out/held" BENCH_SPOOL=$((4 << 30)) \
  measure "lifeboat gzip (4) spool" "$out/lbs.tar.gz" "$bench" write "$data/data" "$out/lbs.tar.gz" gzip
BENCH_HELD_FILE="$out/held" BENCH_SPOOL=$((4 << 30)) \
  measure "lifeboat zstd (3) spool" "$out/lbs.tar.zst" "$bench" write "$data/data" "$out/lbs.tar.zst" zstd
BENCH_HELD_FILE="$out/held" measure "lifeboat zstd (3)" "$out/lb.tar.zst" "$bench" write "$data/data" "$out/lb.tar.zst" zstd
BENCH_HELD_FILE="$out/held" measure "lifeboat none" "$out/lb.tar" "$bench" write "$data/data" "$out/lb.tar" none
# Encryption (age): lifeboat through a backup run's own archive steps, with
# and without age, beside the pipeline a user would write.
age_key="$out/age-key.txt"
if command -v age >/dev/null; then
  age-keygen -o "$age_key" 2>/dev/null
  recipient=$(age-keygen -y "$age_key")
  BENCH_HELD_FILE="$out/held" measure "lifeboat zstd run" "$out/r.tar.zst" "$bench" run "$data/data" "$out/r.tar.zst" zstd
  BENCH_HELD_FILE="$out/held" BENCH_AGE_RECIPIENT=$recipient \
    measure "lifeboat zstd age" "$out/r.tar.zst.age" "$bench" run "$data/data" "$out/r.tar.zst.age" zstd
  BENCH_HELD_FILE="$out/held" BENCH_AGE_RECIPIENT=$recipient \
    measure "lifeboat gzip age" "$out/r.tar.gz.age" "$bench" run "$data/data" "$out/r.tar.gz.age" gzip
  measure "tar | zstd -3 | age" "$out/z.tar.zst.age" sh -c "tar -C '$data' -cf - data | zstd -q -T0 -3 | age -r $recipient > '$out/z.tar.zst.age'"
  measure "tar | pigz -6 | age" "$out/p.tar.gz.age" sh -c "tar -C '$data' -cf - data | pigz -6 | age -r $recipient > '$out/p.tar.gz.age'"
fi
# Encryption (OpenPGP): lifeboat's run through gpg (no compression inside the
# message, the tar is compressed already) beside `tar | zstd | gpg -e` with
# gpg's own compression off likewise. A key made in a private home.
if command -v gpg >/dev/null; then
  gpg_home="$out/gnupg"
  mkdir -m 0700 "$gpg_home"
  gpg_cmd=(gpg --homedir "$gpg_home" --batch --yes --pinentry-mode loopback --passphrase '')
  "${gpg_cmd[@]}" --quick-gen-key bench@example.test future-default default never 2>/dev/null
  "${gpg_cmd[@]}" --armor --export bench@example.test >"$out/bench.asc"
  BENCH_HELD_FILE="$out/held" BENCH_GPG_PUBLIC_KEY_FILE="$out/bench.asc" \
    measure "lifeboat zstd gpg" "$out/r.tar.zst.gpg" "$bench" run "$data/data" "$out/r.tar.zst.gpg" zstd
  measure "tar | zstd -3 | gpg -e" "$out/z.tar.zst.gpg" sh -c "tar -C '$data' -cf - data | zstd -q -T0 -3 | gpg --homedir '$gpg_home' --batch --trust-model always --compress-algo none -r bench@example.test -e > '$out/z.tar.zst.gpg'"
  gpgconf --homedir "$gpg_home" --kill all
fi

mib=$(awk "BEGIN{print $tar_bytes / 1048576}")
ref_secs="" ref_size="" pigz_secs=""
for r in "${results[@]}"; do
  case "$r" in
    "tar -czf "*) ref_secs=$(awk '{print $(NF-4)}' <<<"$r") ref_size=$(awk '{print $NF}' <<<"$r") ;;
    "tar | pigz -6 "*) pigz_secs=$(awk '{print $(NF-4)}' <<<"$r") ;;
  esac
done

printf '\n%s MiB of tar (%s), %s CPUs\n' "$(printf '%.0f' "$mib")" "$data" "$(nproc)"
printf '%-24s %8s %8s %8s %8s %9s %10s %9s %9s %9s\n' tool seconds 'held s' 'MiB/s' 'CPU s' \
  'RSS MiB' 'out MiB' 'size/gz' 'x tar-cz' 'x pigz-6'
for r in "${results[@]}"; do
  # The name has spaces; the last five fields are the numbers.
  awk -v mib="$mib" -v ref_s="${ref_secs:-0}" -v ref_z="${ref_size:-0}" -v pigz_s="${pigz_secs:-0}" '{
    n = NF; size = $n; rss = $(n-1); cpu = $(n-2); held = $(n-3); secs = $(n-4);
    name = $1; for (i = 2; i <= n - 5; i++) name = name " " $i;
    ratio = (size > 0 && ref_z > 0) ? sprintf("%.3f", size / ref_z) : "-";
    vs_tar = ref_s > 0 ? sprintf("%.2fx", ref_s / secs) : "-";
    vs_pigz = pigz_s > 0 ? sprintf("%.2fx", pigz_s / secs) : "-";
    out = size > 0 ? sprintf("%.0f", size / 1048576) : "-";
    printf "%-24s %8.2f %8.2f %8.0f %8.1f %9.1f %10s %9s %9s %9s\n", name, secs, held, mib / secs, cpu,
           rss / 1024, out, ratio, vs_tar, vs_pigz;
  }' <<<"$r"
done
