#!/usr/bin/env bash
# Builds hack/tools/argocd-lua (Argo CD's Lua runtime for health checks: gopher-lua and
# gopher-json at the versions Argo CD pins) into
#   ${PLACEMENT_CACHE:-~/.cache/placement-operator}/tools/argocd-lua-<hash>/argocd-lua
# and prints that directory on stdout. Idempotent: a current cached build costs nothing.
#
# Usage: hack/tools/build-argocd-lua.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=go-tool.sh
source "$here/go-tool.sh"

module="$here/argocd-lua"
hash="$(cat "$module/go.mod" "$module/go.sum" "$module/main.go" | sha256sum | cut -c1-16)"

cd "$module"
go_tool_build argocd-lua "$hash" "argocd-lua $hash $(go_version)" \
  env GOFLAGS=-mod=readonly go install -p 2 -trimpath -ldflags "-s -w" .
