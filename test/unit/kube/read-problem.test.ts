// What a failed read of a named file (the kubeconfig, the service account token) is called
// in the one-line start-up error. The subprocess cases in startup.test.ts cover the files a
// test can make; a file root cannot read is not among them, so the names are checked here.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { readProblem } from '../../../src/kube/client.ts';

const errno = (code: string, message: string): Error =>
  Object.assign(new Error(`${code}: ${message}`), { code });

void describe('readProblem', () => {
  const cases: readonly { name: string; error: unknown; want: string }[] = [
    {
      name: 'missing file',
      error: errno('ENOENT', 'no such file or directory'),
      want: 'no such file',
    },
    {
      name: 'no read permission',
      error: errno('EACCES', 'permission denied'),
      want: 'permission denied',
    },
    {
      name: 'operation not permitted',
      error: errno('EPERM', 'operation not permitted'),
      want: 'permission denied',
    },
    {
      name: 'a directory',
      error: errno('EISDIR', 'illegal operation on a directory'),
      want: 'is a directory, not a file',
    },
    {
      name: 'anything else: its first line',
      error: new Error('disk on fire\nstack...'),
      want: 'disk on fire',
    },
    { name: 'not an Error', error: 'plain text', want: 'plain text' },
  ];
  for (const c of cases)
    void test(c.name, () => {
      assert.equal(readProblem(c.error), c.want);
    });
});
