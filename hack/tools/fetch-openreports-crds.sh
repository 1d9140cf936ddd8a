#!/usr/bin/env bash
# Fetches the pinned OpenReports CRDs (openreports.io/v1alpha1 Report and ClusterReport)
# from the upstream module's published files, through the Go module proxy, into
#   ${PLACEMENT_CACHE:-~/.cache/placement-operator}/tools/openreports-crds-<version>/
# and prints that directory on stdout. Nothing is retyped and nothing is committed: the
# tests install these files into their control plane. A cached copy whose stamp matches is
# reused.
#
# Usage: hack/tools/fetch-openreports-crds.sh
set -euo pipefail
# shellcheck source=go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"

OPENREPORTS_MODULE=github.com/openreports/reports-api
OPENREPORTS_VERSION=v0.2.1
# The module's checksum (go.sum's h1: line) as the proxy served it when pinned.
OPENREPORTS_SUM=h1:g9KS3yle9Y1elmww4TK9EkD1rl6inIaiIJPX6e+u680=

fetch() {
  local info src sum
  info="$(GOFLAGS=-mod=mod go mod download -json "$OPENREPORTS_MODULE@$OPENREPORTS_VERSION")"
  src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$info")"
  sum="$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$info")"
  if [[ "$sum" != "$OPENREPORTS_SUM" ]]; then
    echo "openreports-crds: $OPENREPORTS_MODULE@$OPENREPORTS_VERSION has sum $sum, pinned $OPENREPORTS_SUM" >&2
    return 1
  fi
  cp "$src/config/crd/openreports.io_reports.yaml" "$src/config/crd/openreports.io_clusterreports.yaml" "$GOBIN/"
  chmod 0644 "$GOBIN"/*.yaml
}

go_tool_build openreports-crds "$OPENREPORTS_VERSION" \
  "$OPENREPORTS_MODULE $OPENREPORTS_VERSION $OPENREPORTS_SUM" fetch
