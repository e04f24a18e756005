/**
 * End to end: `kubectl apply -k` of deploy/kubernetes (through an overlay that only fills in what a
 * user edits: the server address, trust domain, cluster name and the kubelet's port on this test
 * node) on the real single-node cluster of scripts/kube.sh, with the image of scripts/image.sh
 * imported into the cluster's containerd, next to the real spire-server v1.13.3 on loopback with
 * k8s_psat. The DaemonSet's pod attests the node with its projected token; a workload pod that
 * mounts the socket directory gets, through go-spiffe, the identity its namespace and service
 * account are registered for; a pod in another namespace gets none. A rolling update of the
 * DaemonSet to a new image tag keeps a watching workload's SVID valid throughout, and its go-spiffe
 * stream reconnects by itself; deleting the workload pod ends its stream on the agent.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planKube, startKube, type KubeCluster } from '../../helpers/kube/cluster.js';
import { startSpireServer, waitFor, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { GO_CLIENT_BUILT, REPO } from '../harness.js';
import { Cleanup, TD, plan } from '../server/fixture.js';

const sh = promisify(execFile);
const kube = planKube();
const skip = plan.skip || kube.skip;
const CLUSTER = 'spiffe-agent-e2e';
const SOCKETS = '/run/spire/agent-sockets'; // the DaemonSet's hostPath, made by the kubelet on this host
const WORKLOAD_ID = `spiffe://${TD}/ns/demo/sa/demo`;
// The agent's Prometheus port for this test only (the overlay adds the block): the pods share the
// host's network, so the test reads open streams from the agent as an operator's scraper would.
const METRICS_PORT = 19_988;

let bins: SpireBinaries;
let cluster: KubeCluster;
let server: SpireServer;
let dir = '';
let hostDirsExisted: [string, boolean][] = [];
let image = '';
const cleanup = new Cleanup();

/** The base agent.conf with the values a user edits replaced, and the test node's kubelet port. */
async function overlayConf(kubeletPort: string): Promise<string> {
  const base = await readFile(path.join(REPO, 'deploy/kubernetes/agent.conf'), 'utf8');
  const swaps: [RegExp, string][] = [
    [/server_address\s*=\s*"[^"]*"/, `server_address = "${server.address}"`],
    [/server_port\s*=\s*"[^"]*"/, `server_port = "${server.port}"`],
    [/trust_domain\s*=\s*"[^"]*"/, `trust_domain = "${TD}"`],
    [/cluster\s*=\s*"[^"]*"/, `cluster = "${CLUSTER}"`],
    [/kubelet_secure_port\s*=\s*\d+/, `kubelet_secure_port = ${kubeletPort}`],
  ];
  let text = base;
  for (const [re, to] of swaps) {
    expect(re.test(text), `deploy/kubernetes/agent.conf has ${re}`).toBe(true);
    text = text.replace(re, to);
  }
  return `${text}\ntelemetry {\n    Prometheus {\n        host = "127.0.0.1"\n        port = ${METRICS_PORT}\n    }\n}\n`;
}

/** The agent's open streams, from its Prometheus endpoint. */
async function openStreams(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)).text();
  const m = /^\S*open_streams(?:\{[^}]*\})? (\d+)$/m.exec(text);
  if (!m) throw new Error(`no open_streams gauge in the agent's metrics:\n${text.slice(0, 400)}`);
  return Number(m[1]);
}

interface WatchLine {
  t: number;
  started?: boolean;
  update?: boolean;
  error?: string;
  code?: string;
  svids?: { id: string; notAfter: string; verified: boolean }[];
}

/** The JSON lines a pod's container printed, from the kubelet's log files on this host (CRI format). */
function podLines(ns: string, name: string, container: string): WatchLine[] {
  const root = path.join(cluster.env.KUBE_STATE_DIR, 'logs/pods');
  const dirs = readdirSync(root).filter((d) => d.startsWith(`${ns}_${name}_`));
  const lines: WatchLine[] = [];
  for (const d of dirs) {
    const cdir = path.join(root, d, container);
    if (!existsSync(cdir)) continue;
    for (const f of readdirSync(cdir).sort()) {
      for (const raw of readFileSync(path.join(cdir, f), 'utf8').split('\n')) {
        // "<time> stdout F <line>"
        const m = /^\S+ stdout [FP] (\{.*\})$/.exec(raw);
        if (m) lines.push(JSON.parse(m[1]!) as WatchLine);
      }
    }
  }
  return lines;
}

/** Runs go-client x509 in a busybox pod that mounts the socket directory; returns its JSON. */
async function fetchFromPod(ns: string, name: string, sa: string, tries: number): Promise<Record<string, unknown>> {
  await cluster.ensureServiceAccount(ns, sa);
  // busybox's image has no /tmp: the last answer is kept in a shell variable. It comes back as the
  // container's termination message: `kubectl logs` needs node addresses this test node lacks.
  const script = `for i in $(seq ${tries}); do out=$(/go-client x509 -timeout 5s 2>/dev/null) && break; sleep 2; done; echo "$out" >/dev/termination-log`;
  await cluster.apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: {
      serviceAccountName: sa,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{
        name: 'main', image: cluster.env.KUBE_BUSYBOX_IMAGE, imagePullPolicy: 'Never', command: ['/bin/sh', '-c', script],
        env: [{ name: 'SPIFFE_ENDPOINT_SOCKET', value: `unix://${SOCKETS}/spire-agent.sock` }],
        volumeMounts: [{ name: 'sockets', mountPath: SOCKETS, readOnly: true }, { name: 'go-client', mountPath: '/go-client', readOnly: true }],
      }],
      volumes: [{ name: 'sockets', hostPath: { path: SOCKETS, type: 'Directory' } }, { name: 'go-client', hostPath: { path: GO_CLIENT_BUILT, type: 'File' } }],
    },
  });
  await waitFor(`pod ${ns}/${name} to finish`, async () => {
    const phase = (await cluster.getJson(['-n', ns, 'pod', name]))['status']?.['phase'] as string | undefined;
    return phase === 'Succeeded' || phase === 'Failed' ? phase : undefined;
  }, { timeoutMs: tries * 8_000 + 60_000, intervalMs: 1_000 });
  const st = (await cluster.getJson(['-n', ns, 'pod', name]))['status']['containerStatuses'][0]['state']['terminated'];
  return JSON.parse(String(st?.['message'] ?? '')) as Record<string, unknown>;
}

beforeAll(async () => {
  if (skip) return;
  bins = plan.require();
  kube.require();
  const archive = process.env['SPIFFE_AGENT_IMAGE'] ?? (await sh('bash', [path.join(REPO, 'scripts/image.sh')], { timeout: 900_000 })).stdout.trim().split('\n').pop()!;
  hostDirsExisted = [SOCKETS, path.dirname(SOCKETS)].map((d) => [d, existsSync(d)]);
  cluster = await startKube();
  cleanup.defer(() => cluster.down());
  cleanup.defer(async () => {
    // The hostPath the kubelet made for the DaemonSet: leave the host as it was.
    for (const [d, existed] of hostDirsExisted) if (!existed) await rm(d, { recursive: true, force: true });
  });
  const { stdout } = await sh('ctr', ['--address', cluster.env.KUBE_CONTAINERD_SOCKET, '-n', 'k8s.io', 'images', 'import', archive], { timeout: 300_000 });
  image = /localhost\/spiffe-agent:[^\s]+/.exec(stdout)?.[0] ?? (await sh('bash', [path.join(REPO, 'scripts/image.sh'), '--tag'])).stdout.trim();
  server = cleanup.add(
    await startSpireServer({
      bins,
      pluginsExtra: `    NodeAttestor "k8s_psat" {
        plugin_data {
            clusters = {
                "${CLUSTER}" = {
                    service_account_allow_list = ["spire:spire-agent"]
                    kube_config_file = "${cluster.env.KUBECONFIG}"
                }
            }
        }
    }\n`,
    }),
  );
  dir = await mkdtemp('/tmp/spiffe-agent-daemonset-');
  cleanup.defer(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'agent.conf'), await overlayConf(cluster.env.KUBE_KUBELET_PORT));
  await writeFile(
    path.join(dir, 'kustomization.yaml'),
    [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'resources:',
      `  - ${path.relative(dir, path.join(REPO, 'deploy/kubernetes'))}`,
      'configMapGenerator:',
      '  - name: spire-agent',
      '    behavior: replace',
      '    files: [agent.conf]',
      'images:',
      '  - name: localhost/spiffe-agent',
      `    newTag: "${image.split(':')[1]}"`,
      '',
    ].join('\n'),
  );
  await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'spire' } });
  await cluster.kubectl(['-n', 'spire', 'create', 'configmap', 'spire-bundle', `--from-file=bundle.crt=${server.bundlePath}`]);
  await cluster.kubectl(['apply', '-k', dir]);
}, 900_000);

afterAll(() => cleanup.run(), 300_000);

describe.skipIf(skip)('deploy/kubernetes on a real cluster with the real spire-server', () => {
  it('the DaemonSet rolls out and its agent attests the node with k8s_psat', async () => {
    const nodeUid = await cluster.nodeUid();
    const agentId = `spiffe://${TD}/spire/agent/k8s_psat/${CLUSTER}/${nodeUid}`;
    // `kubectl logs` needs node addresses this test node lacks; the pods' events say what went wrong.
    const logs = () => cluster.kubectl(['-n', 'spire', 'describe', 'pods']).catch((e: Error) => e.message);
    try {
      await cluster.kubectl(['-n', 'spire', 'rollout', 'status', 'ds/spire-agent', '--timeout=240s']);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await logs()}`);
    }
    const me = await waitFor(`${agentId} in the server's agent list`, async () => (await server.listAgents()).find((a) => a.id === agentId), {
      timeoutMs: 60_000,
    });
    expect(me.attestationType).toBe('k8s_psat');
    await server.createEntries([
      { spiffe_id: WORKLOAD_ID, parent_id: agentId, selectors: [{ type: 'k8s', value: 'ns:demo' }, { type: 'k8s', value: 'sa:demo' }] },
    ]);
    const pod = (await cluster.getJson(['-n', 'spire', 'pods', '-l', 'app.kubernetes.io/name=spire-agent']))['items'][0];
    expect(pod['spec']['containers'][0]['securityContext']['capabilities']).toEqual({ drop: ['ALL'] });
    expect(pod['status']['containerStatuses'][0]['ready'], await logs()).toBe(true);
  }, 400_000);

  it('a workload pod (ns demo, sa demo) gets its X.509-SVID through go-spiffe; a pod in another namespace none', async () => {
    const ok = await fetchFromPod('demo', 'workload', 'demo', 30);
    expect(ok['ok'], JSON.stringify(ok)).toBe(true);
    expect((ok['svids'] as { id: string }[]).map((s) => s.id)).toEqual([WORKLOAD_ID]);
    const refused = await fetchFromPod('other', 'workload', 'demo', 1);
    expect(refused['ok']).toBe(false);
    expect(refused['code']).toBe('PermissionDenied');
  }, 400_000);

  it('a rolling update to a new image tag keeps a watching workload\'s SVID valid; its go-spiffe stream reconnects by itself', async () => {
    await cluster.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'watcher', namespace: 'demo' },
      spec: {
        serviceAccountName: 'demo',
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 5,
        containers: [{
          name: 'main', image: cluster.env.KUBE_BUSYBOX_IMAGE, imagePullPolicy: 'Never', command: ['/go-client', 'watch', '-duration', '900s'],
          env: [{ name: 'SPIFFE_ENDPOINT_SOCKET', value: `unix://${SOCKETS}/spire-agent.sock` }],
          volumeMounts: [{ name: 'sockets', mountPath: SOCKETS, readOnly: true }, { name: 'go-client', mountPath: '/go-client', readOnly: true }],
        }],
        volumes: [{ name: 'sockets', hostPath: { path: SOCKETS, type: 'Directory' } }, { name: 'go-client', hostPath: { path: GO_CLIENT_BUILT, type: 'File' } }],
      },
    });
    const updates = () => podLines('demo', 'watcher', 'main').filter((l) => l.update);
    await waitFor('the watcher\'s first X.509 update', async () => (updates().length > 0 ? true : undefined), { timeoutMs: 120_000, intervalMs: 1_000 });
    expect(await openStreams()).toBeGreaterThanOrEqual(1);
    const before = updates().length;
    const oldPods = (await cluster.getJson(['-n', 'spire', 'pods', '-l', 'app.kubernetes.io/name=spire-agent']))['items'].map((p: { metadata: { uid: string } }) => p.metadata.uid);

    // A new tag of the same image, as an upgrade would bring; the DaemonSet replaces its pod.
    const next = `${image}-rollout`;
    await sh('ctr', ['--address', cluster.env.KUBE_CONTAINERD_SOCKET, '-n', 'k8s.io', 'images', 'tag', '--force', image, next]);
    await cluster.kubectl(['-n', 'spire', 'set', 'image', 'ds/spire-agent', `spire-agent=${next}`, `fsgroupfix=${next}`]);
    await cluster.kubectl(['-n', 'spire', 'rollout', 'status', 'ds/spire-agent', '--timeout=240s']);
    const pods = (await cluster.getJson(['-n', 'spire', 'pods', '-l', 'app.kubernetes.io/name=spire-agent']))['items'];
    expect(pods.map((p: { metadata: { uid: string } }) => p.metadata.uid)).not.toEqual(oldPods);
    expect(pods[0]['spec']['containers'][0]['image']).toBe(next);

    // The stream broke with the old agent and came back to the new one with no help.
    await waitFor('an update from the new agent on the same stream', async () => (updates().length > before ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 1_000,
    });
    const lines = podLines('demo', 'watcher', 'main');
    expect(lines.filter((l) => l.started)).toHaveLength(1); // one process, one watch: no restart
    expect(lines.filter((l) => l.code === 'PermissionDenied'), JSON.stringify(lines)).toEqual([]);
    const seenAt = Date.now();
    for (const u of updates()) {
      expect(u.svids?.map((s) => s.id)).toEqual([WORKLOAD_ID]);
      for (const svid of u.svids ?? []) {
        expect(svid.verified).toBe(true);
        // Valid when it was served and still valid now: the workload never held an expired SVID.
        expect(Date.parse(svid.notAfter)).toBeGreaterThan(seenAt);
      }
    }
    expect((await cluster.getJson(['-n', 'demo', 'pod', 'watcher']))['status']['phase']).toBe('Running');
  }, 400_000);

  it('deleting the workload pod ends its stream on the agent', async () => {
    await waitFor('the watcher\'s stream on the new agent', async () => ((await openStreams()) >= 1 ? true : undefined), { timeoutMs: 60_000, intervalMs: 1_000 });
    const open = await openStreams();
    await cluster.kubectl(['-n', 'demo', 'delete', 'pod', 'watcher', '--wait=true', '--timeout=120s']);
    await waitFor('the agent to drop the deleted pod\'s stream', async () => ((await openStreams()) === open - 1 ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 1_000,
    });
  }, 300_000);
});
