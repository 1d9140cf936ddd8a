#!/usr/bin/env bash
# Checks the container image without a Docker engine: runs the Dockerfile's build stages
# (npm ci, npm run build, npm ci --omit=dev) in a temporary copy of the repository and
# asserts what the runtime stage would hold: dist/main.js and the compiled code, the
# production node_modules (no typescript, eslint or other devDependencies), package.json
# and crds/; no src/, test/ or tooling. Then starts `node dist/main.js --help` from those
# files alone. The stage logic is in hack/image/simulate.ts.
#
# Usage: hack/image/check.sh            (KEEP=1 keeps the temporary directory)
# Needs the npm registry (npm ci, twice) and Node 24 (through hack/node).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/placement-image-check.XXXXXX")"
if [[ "${KEEP:-}" == "1" ]]; then
  echo ">> keeping $work" >&2
else
  trap 'rm -rf "$work"' EXIT
fi

# The build context: the repository's files as git sees them (tracked and untracked, not
# ignored: no node_modules, dist or local state), minus what .dockerignore leaves out.
context="$work/context"
mkdir -p "$context"
ignored=()
if [[ -f "$root/.dockerignore" ]]; then
  while IFS= read -r line; do
    line="${line%%#*}"; line="${line// /}"
    [[ -n "$line" ]] && ignored+=("$line")
  done < "$root/.dockerignore"
fi
is_ignored() { # <relative path>: matches a .dockerignore pattern on its first component or whole path
  local path="$1" first="${1%%/*}" pattern
  for pattern in "${ignored[@]}"; do
    # shellcheck disable=SC2053 # glob match on purpose
    if [[ "$first" == $pattern || "$path" == $pattern ]]; then return 0; fi
  done
  return 1
}
count=0
while IFS= read -r -d '' file; do
  [[ -e "$root/$file" ]] || continue # deleted but still tracked
  if is_ignored "$file"; then continue; fi
  mkdir -p "$context/$(dirname "$file")"
  cp -p "$root/$file" "$context/$file"
  count=$((count + 1))
done < <(git -C "$root" ls-files -z --cached --others --exclude-standard)
echo ">> build context: $count files" >&2

bash "$root/hack/node" "$root/hack/image/simulate.ts" "$context" "$work"
