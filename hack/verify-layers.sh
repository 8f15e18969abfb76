#!/usr/bin/env bash
# Fails when the pure layers reach outside themselves. `api/` (the objects
# and their decoding) and `reconcilers/` (observe -> plan, no I/O) are what
# unit tests drive with a fake swarm and an injected time, so they:
#   - include nothing of `controller/` (api/ not even `reconcilers/`), and
#     link no controller library;
#   - read no clock and never sleep: "now" is always a parameter;
#   - do no engine, network or file I/O of their own.
# Cheap (a few greps); CI runs it before the build.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$LIFEBOAT_ROOT"

failures=0
# Prints each `file:line: text` that matches, under a heading saying which rule
# it breaks.
refuse() { # rule, extended regexp, files...
  local rule=$1 pattern=$2
  shift 2
  local hits
  hits=$(grep -nE "$pattern" "$@" /dev/null || true)
  if [[ -n "$hits" ]]; then
    printf '%s:\n%s\n' "$rule" "$hits" | sed '2,$s/^/  /' >&2
    failures=$((failures + 1))
  fi
}

mapfile -t api < <(git ls-files -- 'api/*.cpp' 'api/*.hpp')
mapfile -t reconcilers < <(git ls-files -- 'reconcilers/*.cpp' 'reconcilers/*.hpp')
[[ ${#api[@]} -gt 0 && ${#reconcilers[@]} -gt 0 ]] || die "no sources under api/ or reconcilers/"
pure=("${api[@]}" "${reconcilers[@]}")

refuse "api/ includes only api/" '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(controller|reconcilers)/' "${api[@]}"
refuse "reconcilers/ includes only api/ and reconcilers/" \
  '^[[:space:]]*#[[:space:]]*include[[:space:]]*"controller/' "${reconcilers[@]}"
refuse "api/ and reconcilers/ read no clock (take the time as a parameter)" \
  '(_clock|clock_type)::now[[:space:]]*\(|\b(std::)?time[[:space:]]*\([[:space:]]*(nullptr|NULL|0)?[[:space:]]*\)|\b(gettimeofday|clock_gettime|localtime|gmtime)[[:space:]]*\(' \
  "${pure[@]}"
refuse "api/ and reconcilers/ never sleep or wait" \
  '\bsleep_(for|until)\b|\b(u|nano)?sleep[[:space:]]*\(|condition_variable' "${pure[@]}"
refuse "api/ and reconcilers/ do no engine, network or file I/O" \
  '#[[:space:]]*include[[:space:]]*<(boost/(asio|beast)|curl/|fstream|filesystem|unistd\.h|fcntl\.h|sys/socket\.h)' \
  "${pure[@]}"
refuse "api/ and reconcilers/ link no controller library" \
  'lifeboat(::|_)(controller|engine|archive|quiesce|destinations|metrics|runtime|backup|restore)\b' \
  api/CMakeLists.txt reconcilers/CMakeLists.txt

if ((failures > 0)); then
  die "$failures layering rule(s) broken (see docs/ARCHITECTURE.md, layout)"
fi
log "layers ok: ${#api[@]} api/ and ${#reconcilers[@]} reconcilers/ files"
