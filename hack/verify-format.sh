#!/usr/bin/env bash
# Fails when any C++ source differs from what clang-format makes of it
# (format, then `git diff --exit-code`, on a scratch copy of the tracked files).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$LIFEBOAT_ROOT"
command -v clang-format >/dev/null || "$LIFEBOAT_ROOT/hack/setup.sh"
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cpp' '*.hpp')
[[ ${#files[@]} -eq 0 ]] && exit 0
bad=()
for f in "${files[@]}"; do
  [[ -f "$f" ]] || continue
  if ! clang-format --style=file "$f" | diff -q "$f" - >/dev/null; then
    bad+=("$f")
  fi
done
if [[ ${#bad[@]} -gt 0 ]]; then
  printf 'not formatted (run hack/format.sh):\n' >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
