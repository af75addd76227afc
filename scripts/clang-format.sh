#!/usr/bin/env bash
# clang-format over native/: --check fails on unformatted files, --fix rewrites them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode=${1:---check}
command -v clang-format > /dev/null || { echo "clang-format not found: apt-get install clang-format (npm run setup)" >&2; exit 1; }
mapfile -t files < <(git ls-files --cached --others --exclude-standard 'native/*.cc' 'native/*.h' 2> /dev/null || find native -name '*.cc' -o -name '*.h')
[[ ${#files[@]} -eq 0 ]] && exit 0
if [[ $mode == --fix ]]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run --Werror "${files[@]}"
fi
