#!/usr/bin/env bash
# Copies the CRDs from crds/ (the source of truth) into the Helm chart's crds/ directory,
# which Helm installs before the chart's templates. A copy rather than a symlink: Helm
# follows a symlinked crds/ but warns on every command ("found symbolic link in path"),
# and an OCI-packaged or Argo-rendered chart should not depend on files outside it.
# test/tools/chart.test.ts fails when the copies drift.
#
# Usage: hack/chart-sync-crds.sh           copy (and remove copies whose source is gone)
#        hack/chart-sync-crds.sh --check   only report drift; exit 1 if any
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/crds"
dst="$root/charts/placement-operator/crds"

check=false
if [[ "${1:-}" == "--check" ]]; then check=true; fi

shopt -s nullglob
sources=("$src"/*.yaml)
if [[ ${#sources[@]} -eq 0 ]]; then echo "chart-sync-crds: no CRDs in $src" >&2; exit 1; fi

drift=0
for file in "${sources[@]}"; do
  name="$(basename "$file")"
  if ! cmp -s "$file" "$dst/$name"; then
    drift=1
    if $check; then echo "chart-sync-crds: $dst/$name differs from crds/$name" >&2; fi
  fi
done
for copy in "$dst"/*.yaml; do
  if [[ ! -f "$src/$(basename "$copy")" ]]; then
    drift=1
    if $check; then echo "chart-sync-crds: $copy has no source in crds/" >&2; fi
  fi
done

if $check; then
  if [[ $drift -ne 0 ]]; then echo "run hack/chart-sync-crds.sh" >&2; exit 1; fi
  exit 0
fi

mkdir -p "$dst"
for copy in "$dst"/*.yaml; do
  [[ -f "$src/$(basename "$copy")" ]] || rm -f "$copy"
done
cp "${sources[@]}" "$dst/"
echo "chart-sync-crds: ${#sources[@]} CRD(s) copied to ${dst#"$root"/}"
