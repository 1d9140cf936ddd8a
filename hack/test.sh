#!/usr/bin/env bash
# The whole test suite, as the README gives it (`npm test`) and CI runs it:
# static checks, unit tests, then integration tests on a real control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
node="bash hack/node"

$node --version >/dev/null # brings Node 24 first if the machine's node is older
echo "== static checks (tsc, eslint, prettier)"
npm run -s typecheck
npm run -s lint

if [ -z "${KUBECONFIG_TEST:-}" ]; then
  echo "== control-plane binaries"
  bash hack/control-plane/build.sh
fi

echo "== container image (hack/image/build.sh: podman, local base images)"
image_env="$(bash hack/image/build.sh)"
# shellcheck disable=SC2086 # two NAME=value words for test/integration/image/
export $image_env

echo "== unit and integration tests"
# Integration files share one control plane, started by the global setup.
exec $node --test --test-reporter=spec --test-concurrency=1 \
  --test-global-setup=test/global-setup.ts \
  'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'
