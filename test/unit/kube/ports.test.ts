// src/kube restates the shapes of src/controller/ports.ts (the layer rule keeps it from
// importing them). This file fails to type-check (npm run typecheck) if they drift apart.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type * as ports from '../../../src/controller/ports.ts';
import type { KubeEventRecorder } from '../../../src/kube/events.ts';
import type { Informer } from '../../../src/kube/informer.ts';
import type * as kube from '../../../src/kube/types.ts';
import type { KubePolicyStatusWriter, KubeWorkloadWriter } from '../../../src/kube/writers.ts';
import { workloadKey as kubeWorkloadKey } from '../../../src/kube/transforms.ts';
import { workloadKey } from '../../../src/controller/ports.ts';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same = <A, B>(value: Same<A, B>): Same<A, B> => value;

void test('src/kube implements the ports the controller owns', () => {
  same<kube.Workload, ports.Workload>(true);
  same<kube.WriteResult, ports.WriteResult>(true);
  same<kube.WatchEvent<string>, ports.WatchEvent<string>>(true);
  same<kube.AffinityWrite, ports.AffinityWrite>(true);
  same<kube.EventTarget, ports.EventTarget>(true);
  const implementations: [
    (w: KubeWorkloadWriter) => ports.WorkloadWriter,
    (w: KubePolicyStatusWriter) => ports.PolicyStatusWriter,
    (r: KubeEventRecorder) => ports.EventRecorder,
    (i: Informer<ports.Workload>) => ports.Store<ports.Workload>,
  ] = [(w) => w, (w) => w, (r) => r, (i) => i];
  assert.equal(implementations.length, 4);
  const w = { kind: 'CronJob', namespace: 'ns', name: 'n' } as const;
  assert.equal(kubeWorkloadKey(w), workloadKey(w));
});
