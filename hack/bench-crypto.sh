#!/usr/bin/env bash
# Encrypts and decrypts one file of random bytes (default 1 GiB) with
# lifeboat's age library (bench/crypto_bench, X25519 recipient), with Debian's
# `age -r` / `age -d`, and with `openssl enc -chacha20` (raw cipher, no
# framing or MAC: the ceiling). Prints seconds, MiB/s, CPU seconds and peak
# RSS per row; also checks that every decryption gives the input back. One
# run each from the page cache; decryptions write to /dev/null; about a
# minute on 2 cores.
#
#   BENCH_SIZE_MIB   size of the input (default 1024)
#   BENCH_DIR        where the files go (default /tmp/lifeboat-bench-crypto, removed after)
#   LIFEBOAT_BUILD_DIR  build folder (default build/); only crypto_bench is built
set -euo pipefail
source "$(dirname "$0")/lib.sh"

size_mib=${BENCH_SIZE_MIB:-1024}
dir=${BENCH_DIR:-/tmp/lifeboat-bench-crypto}

for tool in age age-keygen openssl /usr/bin/time cmp; do
  command -v "$tool" >/dev/null || die "$tool is missing (hack/setup.sh installs it)"
done
if [[ ! -f "$LIFEBOAT_BUILD_DIR/build.ninja" ]]; then
  cmake -S "$LIFEBOAT_ROOT" -B "$LIFEBOAT_BUILD_DIR" -G Ninja >/dev/null
fi
cmake --build "$LIFEBOAT_BUILD_DIR" --target crypto_bench >&2
bench=$LIFEBOAT_BUILD_DIR/bench/crypto_bench

rm -rf "$dir"
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
log "generating $size_mib MiB of random bytes"
openssl enc -chacha20 -nosalt -pass pass:lifeboat-bench -in /dev/zero 2>/dev/null |
  head -c $((size_mib << 20)) >"$dir/plain" || true
age-keygen -o "$dir/key.txt" 2>/dev/null
recipient=$(age-keygen -y "$dir/key.txt")
cat "$dir/plain" >/dev/null  # into the page cache

rows=()
# measure NAME COMMAND...: one run; seconds, CPU seconds, peak RSS (KiB).
measure() {
  local name=$1 timing
  shift
  timing=$(mktemp)
  sync  # the previous row's output is not written back during this one
  /usr/bin/time -o "$timing" -f '%e %U %S %M' "$@" 2>"$dir/stderr" ||
    { cat "$dir/stderr" >&2; die "$name failed"; }
  local secs user sys rss
  read -r secs user sys rss < <(tail -1 "$timing")
  rm -f "$timing"
  rows+=("$name|$secs|$(awk "BEGIN{print $user + $sys}")|$rss")
  log "$name: $secs s"
}

# Decryptions write to /dev/null, so the rows compare the work, not the page
# cache's write-back; each is checked against the input afterwards, untimed.
check() { # NAME COMMAND...: the command's output must be the input
  local name=$1
  shift
  "$@" | cmp -s - "$dir/plain" || die "$name: the decryption differs from the input"
}
measure "lifeboat encrypt" "$bench" encrypt "$recipient" "$dir/plain" "$dir/lb.age"
measure "lifeboat decrypt" "$bench" decrypt "$dir/key.txt" "$dir/lb.age" /dev/null
check "lifeboat decrypt" "$bench" decrypt "$dir/key.txt" "$dir/lb.age" /dev/stdout
measure "age -r" age -r "$recipient" -o "$dir/age.age" "$dir/plain"
measure "age -d" age -d -i "$dir/key.txt" -o /dev/null "$dir/age.age"
check "age -d" age -d -i "$dir/key.txt" "$dir/age.age"
# Across implementations (not timed against each other).
measure "lifeboat decrypt (age's file)" "$bench" decrypt "$dir/key.txt" "$dir/age.age" /dev/null
check "lifeboat decrypt (age's file)" "$bench" decrypt "$dir/key.txt" "$dir/age.age" /dev/stdout
measure "age -d (lifeboat's file)" age -d -i "$dir/key.txt" -o /dev/null "$dir/lb.age"
check "age -d (lifeboat's file)" age -d -i "$dir/key.txt" "$dir/lb.age"
rm -f "$dir/age.age" "$dir/lb.age"
key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
iv=00000000000000000000000000000000
measure "openssl enc -chacha20" openssl enc -chacha20 -K "$key" -iv "$iv" -in "$dir/plain" \
  -out "$dir/ossl.enc"
measure "openssl enc -d -chacha20" openssl enc -d -chacha20 -K "$key" -iv "$iv" \
  -in "$dir/ossl.enc" -out /dev/null
check "openssl enc -d -chacha20" openssl enc -d -chacha20 -K "$key" -iv "$iv" -in "$dir/ossl.enc"

printf '\n%s MiB, %s CPUs\n' "$size_mib" "$(nproc)"
printf '%-30s %8s %8s %8s %9s\n' tool seconds 'MiB/s' 'CPU s' 'RSS MiB'
for r in "${rows[@]}"; do
  IFS='|' read -r name secs cpu rss <<<"$r"
  awk -v n="$name" -v s="$secs" -v c="$cpu" -v m="$rss" -v mib="$size_mib" \
    'BEGIN{printf "%-30s %8.2f %8.0f %8.2f %9.1f\n", n, s, mib / s, c, m / 1024}'
done
