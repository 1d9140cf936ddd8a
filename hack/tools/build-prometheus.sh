#!/usr/bin/env bash
# Builds the pinned Prometheus server and promtool from the Go module proxy (never a
# release tarball) into
#   ${PLACEMENT_CACHE:-~/.cache/placement-operator}/tools/prometheus-<version>/{prometheus,promtool}
# and prints that directory on stdout. Idempotent: a current cached build costs nothing.
#
# Tags as upstream's .promu.yml, less `builtinassets`: the web UI is not embedded (the
# tests use only the HTTP API), so no UI build is needed. `remove_all_sd` leaves out the
# service discovery plugins (cloud providers, Kubernetes, Consul, ...): the tests scrape
# static targets, and the plugins' dependencies were most of a cold build.
#
# Usage: hack/tools/build-prometheus.sh
set -euo pipefail
# shellcheck source=go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"

# Prometheus 3.x is published as Go module versions v0.3XX.Y (release v3.16.0 here).
PROMETHEUS_RELEASE=3.16.0
PROMETHEUS_MODULE_VERSION=v0.316.0

ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE"
ldflags+=" -X github.com/prometheus/common/version.Branch=HEAD"
ldflags+=" -X github.com/prometheus/common/version.BuildUser=placement-operator"
tags=netgo,remove_all_sd

go_tool_build prometheus "v$PROMETHEUS_RELEASE" "prometheus $PROMETHEUS_MODULE_VERSION $(go_version) $tags $ldflags" \
  go install -p 2 -trimpath -tags "$tags" -ldflags "$ldflags" \
  "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_MODULE_VERSION" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
