#!/usr/bin/env bash
# Builds the pinned helm CLI from the Go module proxy (never a release tarball) into
#   ${PLACEMENT_CACHE:-~/.cache/placement-operator}/tools/helm-<version>/helm
# and prints that path on stdout. Idempotent: a cached binary whose stamp matches is
# reused, so a warm run costs nothing. test/tools/chart.test.ts runs this when the binary
# is missing.
#
# Usage: hack/tools/build-helm.sh
set -euo pipefail
# shellcheck source=go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"

HELM_VERSION=v3.22.0
# helm v3.22.0's go.mod requires k8s.io/client-go v0.37.0. Upstream's Makefile passes the
# matching Kubernetes version in -ldflags; without it `helm template` and `helm lint`
# assume Kubernetes v1.20.0 and refuse charts with a newer kubeVersion.
HELM_K8S_MINOR=37

ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
done

dir="$(go_tool_build helm "$HELM_VERSION" "helm $HELM_VERSION $(go_version) $ldflags" \
  go install -p 2 -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")"
echo "$dir/helm"
