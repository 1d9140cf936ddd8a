// src/kube implements the ports the controller and the audit own (src/controller/ports.ts,
// src/api/cluster.ts). This file fails to type-check (npm run typecheck) if they drift apart.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { EventRecorder, Source, Workload } from '../../../src/api/cluster.ts';
import type { PolicyStatusWriter, WorkloadWriter } from '../../../src/controller/ports.ts';
import type { KubeEventRecorder } from '../../../src/kube/events.ts';
import type { Informer } from '../../../src/kube/informer.ts';
import type { KubePolicyStatusWriter, KubeWorkloadWriter } from '../../../src/kube/writers.ts';

void test('src/kube implements the ports the controller and the audit own', () => {
  const implementations: [
    (w: KubeWorkloadWriter) => WorkloadWriter,
    (w: KubePolicyStatusWriter) => PolicyStatusWriter,
    (r: KubeEventRecorder) => EventRecorder,
    (i: Informer<Workload>) => Source<Workload>,
  ] = [(w) => w, (w) => w, (r) => r, (i) => i];
  assert.equal(implementations.length, 4);
});
