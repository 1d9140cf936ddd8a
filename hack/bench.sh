#!/usr/bin/env bash
# `npm run bench`: the engine benchmark (5,000 nodes / 150,000 pods), the continuous-audit
# pass benchmark (same cluster), the rollout simulation and `kubectl-placement plan` (1,000
# Deployments / 10,000 pods;
# BENCH_ROLLOUT=0 skips it), then the operator at scale on the local control plane
# (500 KWOK nodes / 10,000 pods, then a policy over 1,000 Deployments applied and deleted at
# rollout budgets 5 and 50: 40-60 minutes). Arguments go to the engine
# bench; BENCH_AUDIT=0 skips the audit-pass run and BENCH_AUDIT_ARGS passes flags to it;
# BENCH_OPERATOR=0 skips the operator run and BENCH_OPERATOR_ARGS passes flags to it
# (e.g. "--nodes 100 --pods 2000"). Before the operator, the audit CLI end to end at 200/4,000,
# 1,000/30,000 and 5,000/150,000 with the descheduler beside it (bench/cli.bench.ts, which
# builds the descheduler harness of bench/peers once); BENCH_CLI=0 skips it, BENCH_CLI_ARGS
# passes flags to it (e.g. "--peer-sizes none": the descheduler takes minutes at 150,000 pods).
# BENCH_ENVELOPE=1 adds, last, the operator at the envelope (bench/envelope.bench.ts: 5,000 KWOK
# nodes / 150,000 bound pods on its own control plane, an hour or more and, projected,
# 8-10 GiB: kube-apiserver alone took 2.4 GiB at 50,000 pods); opt-in for its
# length. BENCH_ENVELOPE_ARGS passes flags to it (e.g. "--nodes 500 --pods 15000").
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/node --expose-gc bench/engine.bench.ts "$@"
if [ "${BENCH_AUDIT:-1}" != 0 ]; then
  # shellcheck disable=SC2086 # word splitting of the flags is intended
  bash hack/node bench/audit-pass.bench.ts ${BENCH_AUDIT_ARGS:-}
fi
if [ "${BENCH_ROLLOUT:-1}" != 0 ]; then
  bash hack/node bench/rollout-sim.bench.ts
fi
if [ "${BENCH_CLI:-1}" != 0 ]; then
  # shellcheck disable=SC2086 # word splitting of the flags is intended
  bash hack/node bench/cli.bench.ts ${BENCH_CLI_ARGS:-}
fi
if [ "${BENCH_OPERATOR:-1}" != 0 ]; then
  # shellcheck disable=SC2086 # word splitting of the flags is intended
  bash hack/node bench/operator.bench.ts ${BENCH_OPERATOR_ARGS:-}
fi
if [ "${BENCH_ENVELOPE:-0}" != 0 ]; then
  # shellcheck disable=SC2086 # word splitting of the flags is intended
  bash hack/node --expose-gc bench/envelope.bench.ts ${BENCH_ENVELOPE_ARGS:-}
fi
