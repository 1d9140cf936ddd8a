// The watch side of kubeListWatch: client-node's Watch sends no User-Agent of its own, so
// watchConfig adds the operator's to each request, beside the kubeconfig's credentials. The
// API server's audit log then names the operator for its watches as for its other requests
// (test/integration/zz-least-privilege.test.ts counts on it).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';

import { USER_AGENT } from '../../../src/kube/client.ts';
import { watchConfig } from '../../../src/kube/list-watch.ts';

void test('watchConfig: the operator User-Agent, and the kubeconfig credentials still', async () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: false }],
    users: [{ name: 'u', token: 'token-of-the-operator' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const config = watchConfig(kc);
  const request = new RequestContext('https://127.0.0.1:6443/api/v1/pods', HttpMethod.GET);
  await config.applySecurityAuthentication(request);
  assert.equal(request.getHeaders()['User-Agent'], USER_AGENT);
  assert.equal(request.getHeaders()['Authorization'], 'Bearer token-of-the-operator');
  assert.equal(config.getCurrentCluster()?.server, 'https://127.0.0.1:6443');
});
