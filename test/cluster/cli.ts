// Starts the local test cluster by hand and keeps it up until Ctrl-C:
//
//   hack/node test/cluster/cli.ts up --nodes 3 [--zones zone-a,zone-b] [--region r]
//                                    [--name local] [--keep-dir]
//
// Then, in another shell: export KUBECONFIG=<printed path>; kubectl get nodes
// (the pinned kubectl is printed too). Builds the binaries first if needed.
import { parseArgs } from 'node:util';

import { formatMiB, startLocalCluster, type LocalClusterOptions } from './local-cluster.ts';
import { ensureBinaries } from './select.ts';

const USAGE =
  'usage: cli.ts up [--nodes N] [--zones a,b,c] [--region R] [--name NAME] [--keep-dir]';

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      nodes: { type: 'string', default: '3' },
      zones: { type: 'string' },
      region: { type: 'string' },
      name: { type: 'string' },
      'keep-dir': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals[0] !== 'up' || positionals.length !== 1) {
    console.error(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 0)
    throw new Error(`--nodes: not a count: ${values.nodes}`);

  const options: LocalClusterOptions = {
    nodes,
    keepDir: values['keep-dir'],
    binDir: await ensureBinaries(),
  };
  if (values.zones !== undefined) options.zones = values.zones.split(',');
  if (values.region !== undefined) options.region = values.region;
  if (values.name !== undefined) options.name = values.name;

  const cluster = await startLocalCluster(options);
  console.log(`export KUBECONFIG=${cluster.kubeconfigPath}`);
  console.log(`kubectl: ${cluster.kubectlPath}`);
  console.log(`server:  ${cluster.server}`);
  console.log(`nodes:   ${cluster.nodeNames.join(' ')}`);
  console.log(`logs:    ${cluster.workDir}/logs`);
  console.log(`memory:  ${formatMiB(cluster.rssBytes())} RSS. Ctrl-C to stop.`);

  // Component processes are unref'd, so something must keep Node.js running.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(keepAlive);
  console.error('stopping...');
  await cluster.stop();
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
