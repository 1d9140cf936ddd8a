#!/usr/bin/env bash
# Builds the pinned helm CLI from the Go module proxy (never a release tarball) into
#   ${PLACEMENT_CACHE:-~/.cache/placement-operator}/tools/helm-<version>/helm
# and prints that path on stdout. Idempotent: a cached binary whose stamp matches is
# reused, so a warm run costs nothing. test/unit/chart.test.ts runs this when the binary
# is missing.
#
# Usage: hack/tools/build-helm.sh
set -euo pipefail

HELM_VERSION=v3.22.0
# helm v3.22.0's go.mod requires k8s.io/client-go v0.37.0. Upstream's Makefile passes the
# matching Kubernetes version in -ldflags; without it `helm template` and `helm lint`
# assume Kubernetes v1.20.0 and refuse charts with a newer kubeVersion.
HELM_K8S_MINOR=37

cache="${PLACEMENT_CACHE:-$HOME/.cache/placement-operator}"
dir="$cache/tools/helm-$HELM_VERSION"
bin="$dir/helm"

ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
done
# What the binary was built from; a change to the flags or the Go version rebuilds it.
stamp="helm $HELM_VERSION $(go env GOVERSION 2>/dev/null || echo no-go) $ldflags"

if [[ -x "$bin" && -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$stamp" ]]; then
  echo "$bin"
  exit 0
fi
if [[ -x "$bin" ]] && ! command -v go >/dev/null; then
  echo "build-helm.sh: no Go to check $bin against its stamp; using it as it is" >&2
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build-helm.sh: needs Go to build helm $HELM_VERSION" >&2; exit 1; }
# One build at a time per cache (see hack/control-plane/build.sh); a build that finished
# while this one waited is taken as it is.
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9
if [[ -x "$bin" && -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$stamp" ]]; then
  echo "$bin"
  exit 0
fi
echo ">> building helm $HELM_VERSION into $dir (first run only; a few minutes)" >&2
# Installed into a scratch directory first and renamed, so an interrupted build never
# leaves a half-written binary that the check above would trust.
partial="$dir/.partial"
rm -rf "$partial"
mkdir -p "$partial"
GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$partial" \
  go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
mv -f "$partial/helm" "$bin"
rmdir "$partial"
echo "$stamp" > "$dir/.stamp"
echo "$bin"
