#!/usr/bin/env bash
# Builds the descheduler harness of bench/peers (sigs.k8s.io/descheduler, pinned in its
# go.mod and go.sum, fetched from the Go module proxy) into
#   ${PLACEMENT_CACHE:-~/.cache/placement-operator}/tools/descheduler-peer-<version>/descheduler-peer
# and prints that path on stdout. A cached binary whose stamp (the harness's sources and the
# Go version) matches is reused. Only `npm run bench` builds it.
#
# Usage: hack/tools/build-descheduler-peer.sh
set -euo pipefail
# shellcheck source=go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"

peers="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../bench/peers" && pwd)"
DESCHEDULER_VERSION="$(awk '$1 == "sigs.k8s.io/descheduler" { print $2 }' "$peers/go.mod")"
sources="$(cat "$peers/go.mod" "$peers/go.sum" "$peers"/*.go | sha256sum | cut -c1-16)"

dir="$(go_tool_build descheduler-peer "$DESCHEDULER_VERSION" \
  "descheduler-peer $DESCHEDULER_VERSION $sources $(go_version)" \
  go -C "$peers" install -p 2 -trimpath -ldflags '-s -w' .)"
echo "$dir/descheduler-peer"
