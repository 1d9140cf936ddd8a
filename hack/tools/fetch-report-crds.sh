#!/usr/bin/env bash
# Fetches the pinned report CRDs from their upstream modules' published files, through the
# Go module proxy, into
#   ${PLACEMENT_CACHE:-~/.cache/placement-operator}/tools/report-crds-<versions>/
# and prints that directory on stdout:
#   - OpenReports (openreports.io/v1alpha1 Report, ClusterReport): github.com/openreports/reports-api,
#     config/crd/;
#   - wgpolicyk8s.io/v1alpha2 PolicyReport, ClusterPolicyReport: the policy working group's own
#     module is not served by the proxy; Kyverno's module publishes the same CRDs
#     (config/crds/policyreport/).
# Nothing is retyped and nothing is committed: the tests install these files into their
# control plane. A cached copy whose stamp matches is reused.
#
# Usage: hack/tools/fetch-report-crds.sh
set -euo pipefail
# shellcheck source=go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"

OPENREPORTS_MODULE=github.com/openreports/reports-api
OPENREPORTS_VERSION=v0.2.1
OPENREPORTS_SUM=h1:g9KS3yle9Y1elmww4TK9EkD1rl6inIaiIJPX6e+u680=
KYVERNO_MODULE=github.com/kyverno/kyverno
KYVERNO_VERSION=v1.19.1
KYVERNO_SUM=h1:/MkgFii3/VlQfKR1JpC9tVwNNVNQTt2S4U6qCsafsTU=

# module version sum -> the module's directory in the module cache, its checksum checked
module_dir() {
  local info dir sum
  info="$(GOFLAGS=-mod=mod go mod download -json "$1@$2")"
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$info")"
  sum="$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$info")"
  if [[ "$sum" != "$3" ]]; then
    echo "report-crds: $1@$2 has sum $sum, pinned $3" >&2
    return 1
  fi
  echo "$dir"
}

fetch() {
  local openreports kyverno
  openreports="$(module_dir "$OPENREPORTS_MODULE" "$OPENREPORTS_VERSION" "$OPENREPORTS_SUM")"
  kyverno="$(module_dir "$KYVERNO_MODULE" "$KYVERNO_VERSION" "$KYVERNO_SUM")"
  cp "$openreports"/config/crd/openreports.io_{reports,clusterreports}.yaml "$GOBIN/"
  cp "$kyverno"/config/crds/policyreport/wgpolicyk8s.io_{policyreports,clusterpolicyreports}.yaml "$GOBIN/"
  chmod 0644 "$GOBIN"/*.yaml
}

go_tool_build report-crds "$OPENREPORTS_VERSION-$KYVERNO_VERSION" \
  "$OPENREPORTS_MODULE $OPENREPORTS_VERSION $OPENREPORTS_SUM $KYVERNO_MODULE $KYVERNO_VERSION $KYVERNO_SUM" fetch
