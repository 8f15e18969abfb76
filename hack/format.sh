#!/usr/bin/env bash
# Formats every C++ source in place with the repository's .clang-format.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$LIFEBOAT_ROOT"
git ls-files --cached --others --exclude-standard -- '*.cpp' '*.hpp' | xargs -r clang-format -i --style=file
