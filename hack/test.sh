#!/usr/bin/env bash
# The whole test suite, as the README gives it (`npm test`) and CI runs it:
# static checks, unit tests, then integration tests on a real control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
node="bash hack/node"

$node --version >/dev/null # brings Node 24 first if the machine's node is older

# The tools the tests drive, brought here so that `npm ci && npm test` on a fresh machine
# needs nothing installed first: Debian's openssl (cluster certificates), and pinned Go
# builds cached under ~/.cache/placement-operator (helm, Prometheus and promtool, Argo CD's
# Lua runtime). Without root to install a package, it stops at once with the command.
bring_tools() {
  local missing=() go_bin
  command -v openssl >/dev/null || missing+=(openssl)
  command -v flock >/dev/null || missing+=(util-linux)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "npm test: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    echo "== installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  go_bin="$(command -v go || echo /usr/local/go/bin/go)"
  if [ ! -x "$go_bin" ]; then
    echo "npm test: needs Go $(sed -n 's/^go //p' hack/control-plane/k8s/go.mod) or newer (https://go.dev/dl), to build the pinned tools" >&2
    exit 1
  fi
  echo "== pinned tools (built once from the Go module proxy, then cached)"
  bash hack/tools/build-helm.sh >/dev/null
  bash hack/tools/build-prometheus.sh >/dev/null
  bash hack/tools/build-argocd-lua.sh >/dev/null
}
bring_tools
echo "== static checks (tsc, eslint, prettier)"
npm run -s typecheck
npm run -s lint

if [ -z "${KUBECONFIG_TEST:-}" ]; then
  echo "== control-plane binaries"
  bash hack/control-plane/build.sh
  # The local control plane keeps an audit log of the operator's requests: the comparison
  # with the chart's grants (test/integration/zz-least-privilege.test.ts) must run, not skip.
  export PLACEMENT_LEAST_PRIVILEGE=required
fi

echo "== container image (hack/image/build.sh: podman, local base images)"
image_env="$(bash hack/image/build.sh)"
# shellcheck disable=SC2086 # two NAME=value words for test/integration/image/
export $image_env

echo "== unit and integration tests"
# Integration files share one control plane, started by the global setup. Node runs the
# files sorted by path, one at a time; test/integration/zz-least-privilege.test.ts sorts
# after the other integration files and judges the audit log they produced.
exec $node --test --test-reporter=spec --test-concurrency=1 \
  --test-global-setup=test/global-setup.ts \
  'test/unit/**/*.test.ts' 'test/tools/**/*.test.ts' 'test/integration/**/*.test.ts'
