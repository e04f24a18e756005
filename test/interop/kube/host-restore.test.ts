/**
 * scripts/kube.sh leaves the host as it found it: a snapshot of what it may change (processes of
 * the cluster, mounts, links, addresses, routes, iptables, the sysctls the kubelet and CNI set,
 * cgroups, the host directories the kubelet creates; scripts/kube-host-snapshot.sh) taken before
 * `up` equals the one taken after `down`, with a pod run in between (its netns, veth, mounts and
 * cgroups made). Also: `up` on a running cluster keeps it, `down` twice is harmless.
 *
 * Needs its own cluster: with KUBE_ENV_FILE (a cluster started outside the test) it cannot prove
 * anything and says so.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KUBE_SCRIPT, planKube, startKube } from '../../helpers/kube/cluster.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const kube = planKube();
const reused = process.env.KUBE_ENV_FILE !== undefined;
if (reused) console.warn('SKIPPED: KUBE_ENV_FILE names a running cluster; host-restore needs to start and stop its own');

function snapshot(): string {
  const r = spawnSync('bash', [join(REPO, 'scripts/kube-host-snapshot.sh')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kube-host-snapshot.sh: ${r.stderr}`);
  return r.stdout;
}

/** The lines only in one snapshot, for a readable failure. */
function diff(a: string, b: string): string[] {
  const A = new Set(a.split('\n'));
  const B = new Set(b.split('\n'));
  return [...[...A].filter((l) => !B.has(l)).map((l) => `- ${l}`), ...[...B].filter((l) => !A.has(l)).map((l) => `+ ${l}`)];
}

describe.skipIf(kube.skip || reused)('scripts/kube.sh up/down', () => {
  it('down leaves processes, mounts, links, iptables, sysctls, cgroups and host dirs as they were before up', async () => {
    kube.require();
    const before = snapshot();
    const t0 = Date.now();
    const cluster = await startKube();
    const upMs = Date.now() - t0;
    let during = '';
    try {
      await cluster.ensureServiceAccount('host-restore', 'probe');
      await cluster.createPod({ name: 'probe', namespace: 'host-restore', serviceAccount: 'probe' });
      during = snapshot();
      // A second up finds the cluster running and keeps it.
      const again = spawnSync('bash', [KUBE_SCRIPT, 'up', cluster.env.KUBE_STATE_DIR], { encoding: 'utf8' });
      expect(again.status, again.stderr).toBe(0);
      expect(again.stdout).toContain(`KUBECONFIG=${cluster.env.KUBECONFIG}`);
    } finally {
      const t1 = Date.now();
      await cluster.down();
      console.info(`kube.sh: up ${upMs} ms, down ${Date.now() - t1} ms`);
    }
    const after = snapshot();
    // The snapshot sees the cluster while it runs (else an equal before/after would prove nothing).
    expect(diff(before, during).length, 'the snapshot did not see the running cluster').toBeGreaterThan(5);
    expect(diff(before, after)).toEqual([]);
    const twice = spawnSync('bash', [KUBE_SCRIPT, 'down', cluster.env.KUBE_STATE_DIR], { encoding: 'utf8' });
    expect(twice.status, twice.stderr).toBe(0);
    expect(diff(before, snapshot())).toEqual([]);
  }, 600_000);
});
