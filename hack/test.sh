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
  # The local control plane keeps an audit log of the operator's requests: the comparison
  # with the chart's grants (test/integration/zz-least-privilege.test.ts) must run, not skip.
  export PLACEMENT_LEAST_PRIVILEGE=required
fi

echo "== unit and integration tests"
# Integration files share one control plane, started by the global setup. Node runs the
# files sorted by path, one at a time; test/integration/zz-least-privilege.test.ts sorts
# after the other integration files and judges the audit log they produced.
exec $node --test --test-reporter=spec --test-concurrency=1 \
  --test-global-setup=test/global-setup.ts \
  'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'
