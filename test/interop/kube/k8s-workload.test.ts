/**
 * The k8s workload attestor against the real kubelet v1.34.4 (scripts/kube.sh), spire-agent v1.13.3
 * and spiffe-agent side by side, both on the host as root, attested by the real spire-server v1.13.3
 * with join tokens. The workloads are real pod processes: go-spiffe's client (test/interop/go-client,
 * static) runs inside a busybox container, either as the container's own command or started in the
 * running container with `ctr tasks exec` (what `kubectl exec` asks containerd for; kubectl exec
 * itself cannot reach this kubelet, see scripts/kube-node.sh). One hostPath directory holds the
 * client and both agents' socket directories.
 *
 * What is compared: the k8s selectors each agent derives for the same process (spire-agent's debug
 * log "PID attested to have selectors", spiffe-agent's audit record), string for string, and the
 * SPIFFE ID each serves it. Kubelet modes: secure port with a service-account token, with a client
 * certificate, and the read-only port (through a counting proxy, one per agent, so the /pods
 * requests each agent makes are counted).
 */
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GO_CLIENT_BUILT, JSON_LOGS, agentConfFor, jsonLogs, run, startAgent, startSpireServer, waitFor, type AgentHandle, type AgentKind, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { planKube, startKube, type KubeCluster } from '../../helpers/kube/cluster.js';
import { Cleanup, KINDS, TD, plan } from '../server/fixture.js';

const kube = planKube();
const skip = plan.skip || kube.skip;
const NS = 'wl';
const SA = 'workload';
const API_AUDIENCE = 'https://kubernetes.default.svc.cluster.local';
type Mode = 'token' | 'cert' | 'ro';

let bins: SpireBinaries;
let cluster: KubeCluster;
let server: SpireServer;
let base: string;
const cleanup = new Cleanup();

/** A counting HTTP proxy in front of the kubelet's read-only port. */
class CountingProxy {
  requests = 0;
  private constructor(private readonly srv: http.Server) {}
  static async start(target: number): Promise<CountingProxy> {
    const srv = http.createServer();
    const proxy = new CountingProxy(srv);
    srv.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      proxy.requests++;
      const up = http.get({ host: '127.0.0.1', port: target, path: req.url, headers: { accept: req.headers.accept ?? '*/*' } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return proxy;
  }
  get port(): number {
    return (this.srv.address() as AddressInfo).port;
  }
  close(): Promise<void> {
    this.srv.closeAllConnections();
    return new Promise((r) => this.srv.close(() => r()));
  }
}

const proxies = new Map<AgentKind, CountingProxy>();
const agents = new Map<string, AgentHandle>();
const agentDirName = (mode: Mode, kind: AgentKind) => `${mode}-${kind}`;
const socketIn = (mode: Mode, kind: AgentKind) => `/w/${agentDirName(mode, kind)}/public/api.sock`;
const servedId = (mode: Mode, kind: AgentKind) => `spiffe://${TD}/k8s/${mode}/${kind}`;

function attestorConf(mode: Mode, kind: AgentKind): string {
  const e = cluster.env;
  const lines =
    mode === 'ro'
      ? [`kubelet_read_only_port = ${proxies.get(kind)!.port}`]
      : [
          `kubelet_secure_port = ${e.KUBE_KUBELET_PORT}`,
          `kubelet_ca_path = "${e.KUBE_CA_CERT}"`,
          // The node's name does not resolve here; the kubelet's certificate names 127.0.0.1.
          'node_name = "127.0.0.1"',
          ...(mode === 'token' ? [`token_path = "${join(base, 'kubelet-token')}"`] : [`certificate_path = "${e.KUBE_KUBELET_CLIENT_CERT}"`, `private_key_path = "${e.KUBE_KUBELET_CLIENT_KEY}"`]),
        ];
  return `    WorkloadAttestor "k8s" {\n        plugin_data {\n${lines.map((l) => `            ${l}`).join('\n')}\n        }\n    }`;
}

async function startModeAgents(mode: Mode): Promise<void> {
  await Promise.all(
    KINDS.map(async (kind) => {
      const dir = join(base, agentDirName(mode, kind));
      await mkdir(dir, { mode: 0o755 });
      const token = await server.generateToken();
      // Both agents log JSON; spiffe-agent's audit records show the k8s values (redacted by default).
      const agentExtra = kind === 'spiffe-agent' ? `${JSON_LOGS}\n    log_selectors = ["unix:uid", "k8s"]` : JSON_LOGS;
      const conf = await agentConfFor(server, { dir, joinToken: token, agentExtra, pluginsExtra: attestorConf(mode, kind) });
      const agent = cleanup.add(await startAgent(kind, bins, conf));
      agents.set(`${mode}/${kind}`, agent);
      await server.createEntries([{ spiffe_id: servedId(mode, kind), parent_id: server.agentIdForToken(token), selectors: [{ type: 'k8s', value: `ns:${NS}` }] }]);
    }),
  );
}

async function stopModeAgents(mode: Mode): Promise<void> {
  for (const kind of KINDS) await agents.get(`${mode}/${kind}`)?.stop();
}

function podManifest(name: string, o: { command?: string[]; init?: string[]; restartPolicy?: string; labels?: Record<string, string> } = {}): Record<string, unknown> {
  const c = (n: string, command: string[]) => ({ name: n, image: cluster.env.KUBE_BUSYBOX_IMAGE, imagePullPolicy: 'Never', command, volumeMounts: [{ name: 'w', mountPath: '/w' }] });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: o.labels ?? { app: name } },
    spec: {
      nodeName: cluster.env.KUBE_NODE_NAME,
      serviceAccountName: SA,
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 1,
      restartPolicy: o.restartPolicy ?? 'Always',
      volumes: [{ name: 'w', hostPath: { path: base, type: 'Directory' } }],
      ...(o.init ? { initContainers: [c('init', o.init)] } : {}),
      containers: [c('main', o.command ?? ['/bin/sleep', '3600'])],
    },
  };
}

/** Shell that fetches from each mode's agents in turn and writes the client's JSON to /w/out. */
function fetchScript(mode: Mode, tag: string): string {
  return KINDS.map((k) => `env SPIFFE_ENDPOINT_SOCKET=unix://${socketIn(mode, k)} /w/bin/go-client fetch -timeout 60s > /w/out/${tag}-${k}.json 2>&1`).join('; ');
}

async function waitRunning(name: string, timeoutMs = 120_000): Promise<void> {
  await cluster.kubectl(['-n', NS, 'wait', '--for=condition=Ready', `pod/${name}`, `--timeout=${Math.round(timeoutMs / 1000)}s`]);
}

async function containerId(pod: string, container = 'main'): Promise<string> {
  const p = await cluster.getJson<{ status: { containerStatuses?: { name: string; containerID?: string }[] } }>(['-n', NS, 'pod', pod]);
  const id = p.status.containerStatuses?.find((s) => s.name === container)?.containerID ?? '';
  return id.replace(/^containerd:\/\//, '');
}

/** Async: the counting proxies live in this process, so blocking it would stall the kubelet reads. */
async function ctr(args: string[], timeoutMs = 90_000): Promise<string> {
  const r = await run('ctr', ['--address', cluster.env.KUBE_CONTAINERD_SOCKET, '-n', 'k8s.io', ...args], { timeoutMs });
  if (r.code !== 0 && !r.stdout.trim().startsWith('{')) throw new Error(`ctr ${args.slice(0, 2).join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

type FetchOut = { ok?: boolean; error?: string; x509Svids?: { spiffeId: string }[] };

/** go-client fetch started inside the running container (as `kubectl exec` would), against one agent. */
async function execFetch(cid: string, mode: Mode, kind: AgentKind): Promise<FetchOut> {
  const out = await ctr(['tasks', 'exec', '--exec-id', `fetch-${process.hrtime.bigint()}`, cid, '/bin/env', `SPIFFE_ENDPOINT_SOCKET=unix://${socketIn(mode, kind)}`, '/w/bin/go-client', 'fetch', '-timeout', '60s']);
  return JSON.parse(out) as FetchOut;
}

async function readOut(tag: string, kind: AgentKind): Promise<FetchOut> {
  const path = join(base, 'out', `${tag}-${kind}.json`);
  const text = await waitFor(`${path}`, async () => (await readFile(path, 'utf8').catch(() => '')).trim() || undefined, { timeoutMs: 120_000, intervalMs: 250 });
  return JSON.parse(text) as FetchOut;
}

/** The k8s selectors the agent logged for a process of this pod and container, sorted; the last such record. */
function loggedSelectors(agent: AgentHandle, podUid: string, container: string): string[] | undefined {
  let last: string[] | undefined;
  for (const r of jsonLogs(agent)) {
    const msg = String(r['msg']);
    if (msg !== 'PID attested to have selectors' && msg !== 'Workload API decision') continue;
    const raw = (r['selectors'] ?? []) as (string | { type: string; value: string })[];
    const sel = raw.map((s) => (typeof s === 'string' ? s : `${s.type}:${s.value}`)).filter((s) => s.startsWith('k8s:'));
    if (sel.includes(`k8s:pod-uid:${podUid}`) && sel.includes(`k8s:container-name:${container}`)) last = sel.sort();
  }
  return last;
}

async function podUid(name: string): Promise<string> {
  return (await cluster.getJson<{ metadata: { uid: string } }>(['-n', NS, 'pod', name])).metadata.uid;
}

/** Both agents' selectors for (pod, container) in this mode: equal, and naming the pod. */
async function compareSelectors(mode: Mode, pod: string, container: string, label: string): Promise<string[]> {
  const uid = await podUid(pod);
  const seen: Partial<Record<AgentKind, string[]>> = {};
  for (const kind of KINDS) {
    const agent = agents.get(`${mode}/${kind}`)!;
    seen[kind] = await waitFor(`${kind}: selectors for ${pod}/${container}`, async () => loggedSelectors(agent, uid, container), { timeoutMs: 30_000, describe: () => agent.logTail() });
  }
  console.info(`k8s ${label} (${mode}): ${KINDS.map((k) => `${k}=${seen[k]!.length}`).join(' ')} selectors: ${seen[KINDS[0]!]!.join(' ')}`);
  if (seen['spire-agent'] && seen['spiffe-agent']) expect(seen['spiffe-agent'], label).toEqual(seen['spire-agent']);
  for (const s of Object.values(seen)) expect(s).toEqual(expect.arrayContaining([`k8s:ns:${NS}`, `k8s:sa:${SA}`, `k8s:pod-name:${pod}`, `k8s:container-name:${container}`]));
  return seen[KINDS[0]!]!;
}

async function rssKb(pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

beforeAll(async () => {
  if (skip) return;
  bins = plan.require();
  kube.require();
  // Removed after the cluster is down: its pods mount this directory.
  base = await mkdtemp('/tmp/spire-it-k8swl-');
  cleanup.defer(() => rm(base, { recursive: true, force: true }));
  const t0 = Date.now();
  cluster = await startKube();
  cleanup.defer(() => cluster.down());
  console.info(`k8s workload: cluster up in ${Date.now() - t0} ms`);
  await chmod(base, 0o755);
  await mkdir(join(base, 'bin'), { mode: 0o755 });
  await mkdir(join(base, 'out'), { mode: 0o777 });
  await copyFile(GO_CLIENT_BUILT, join(base, 'bin/go-client'));
  await chmod(join(base, 'bin/go-client'), 0o755);
  await cluster.ensureServiceAccount(NS, SA);
  // The kubelet authorizes /pods with the apiserver (Webhook): the test's client certificate user and
  // the service account whose token the agents present may read the node's pods, nothing more.
  await cluster.apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'spiffe-agent-kubelet-reader' }, rules: [{ apiGroups: [''], resources: ['nodes/proxy', 'nodes/pods'], verbs: ['get', 'list'] }] });
  await cluster.apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'spiffe-agent-kubelet-reader' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'spiffe-agent-kubelet-reader' },
    subjects: [
      { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'spiffe-agent-kubelet-client' },
      { kind: 'ServiceAccount', name: SA, namespace: NS },
    ],
  });
  await writeFile(join(base, 'kubelet-token'), await cluster.token({ namespace: NS, serviceAccount: SA, audience: API_AUDIENCE }), { mode: 0o600 });
  for (const kind of KINDS) proxies.set(kind, cleanup.add(await CountingProxy.start(Number(cluster.env.KUBE_KUBELET_READONLY_PORT))));
  server = cleanup.add(await startSpireServer({ bins }));
  await cluster.apply(podManifest('basic'));
  await waitRunning('basic');
}, 600_000);
afterAll(() => cleanup.run(), 300_000);

describe.skipIf(skip)('k8s workload attestor against the real kubelet: spire-agent v1.13.3 and spiffe-agent', () => {
  for (const mode of ['token', 'cert', 'ro'] as const) {
    it(`${mode}: a process exec'd in a running container gets the same selectors and its entry from both agents`, async () => {
      await startModeAgents(mode);
      const cid = await containerId('basic');
      for (const kind of KINDS) {
        const t0 = Date.now();
        const r = await waitFor(`${kind} serves the pod's entry`, async () => {
          const x = await execFetch(cid, mode, kind);
          return x.x509Svids?.length ? x : undefined;
        }, { timeoutMs: 60_000, intervalMs: 1000, describe: () => agents.get(`${mode}/${kind}`)!.logTail() });
        console.info(`k8s ${mode}: ${kind} served ${r.x509Svids!.map((s) => s.spiffeId).join(',')} in ${Date.now() - t0} ms`);
        expect(r.x509Svids!.map((s) => s.spiffeId)).toEqual([servedId(mode, kind)]);
      }
      await compareSelectors(mode, 'basic', 'main', 'exec in running container');
      if (mode !== 'ro') await stopModeAgents(mode);
    }, 300_000);
  }

  it('ro: an init container, attested while it runs', async () => {
    await cluster.apply(podManifest('with-init', { init: ['/bin/sh', '-c', fetchScript('ro', 'init')] }));
    for (const kind of KINDS) expect((await readOut('init', kind)).x509Svids?.map((s) => s.spiffeId), kind).toEqual([servedId('ro', kind)]);
    const sel = await compareSelectors('ro', 'with-init', 'init', 'init container');
    expect(sel).toContain('k8s:pod-init-image-count:1');
  }, 300_000);

  it('ro: a container restarted in place (new container id) is attested as the new container', async () => {
    await cluster.apply(podManifest('restarted'));
    await waitRunning('restarted');
    const before = await containerId('restarted');
    await ctr(['tasks', 'kill', '-s', 'SIGKILL', before]);
    const after = await waitFor('a new container id', async () => {
      const id = await containerId('restarted');
      return id && id !== before ? id : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    await waitRunning('restarted');
    for (const kind of KINDS) expect((await execFetch(after, 'ro', kind)).x509Svids?.map((s) => s.spiffeId)).toEqual([servedId('ro', kind)]);
    await compareSelectors('ro', 'restarted', 'main', 'restarted container');
    console.info(`k8s restart: container ${before.slice(0, 12)} -> ${after.slice(0, 12)}`);
  }, 300_000);

  it('ro: 10 pods whose first process asks at once, before the kubelet lists them; kubelet requests counted', async () => {
    for (const p of proxies.values()) p.requests = 0;
    const names = Array.from({ length: 10 }, (_, i) => `burst-${i}`);
    const t0 = Date.now();
    await cluster.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: names.map((n) => podManifest(n, { command: ['/bin/sh', '-c', `${fetchScript('ro', n)}; sleep 3600`] })) }));
    for (const n of names) for (const kind of KINDS) expect((await readOut(n, kind)).x509Svids?.map((s) => s.spiffeId), `${n} ${kind}`).toEqual([servedId('ro', kind)]);
    const ms = Date.now() - t0;
    for (const n of names) await compareSelectors('ro', n, 'main', `burst pod ${n}`);
    const retries = Object.fromEntries(KINDS.map((k) => [k, jsonLogs(agents.get(`ro/${k}`)!).filter((r) => /Container id not found/.test(String(r['msg']))).length]));
    const counts = Object.fromEntries(KINDS.map((k) => [k, proxies.get(k)!.requests]));
    console.info(`k8s burst: 10 pods served by both in ${ms} ms; kubelet /pods requests ${JSON.stringify(counts)}; "container id not found" retries logged ${JSON.stringify(retries)}`);
    // spiffe-agent shares one /pods request among the callers waiting at the same time.
    if (counts['spiffe-agent'] !== undefined) expect(counts['spiffe-agent']).toBeLessThanOrEqual(counts['spire-agent'] ?? Infinity);
    await cluster.kubectl(['-n', NS, 'delete', 'pod', ...names, '--grace-period=1', '--wait=false']);
  }, 400_000);

  it('ro: 50 completed and failed pods do not grow spiffe-agent (spire issue 7161)', async () => {
    const ours = agents.get('ro/spiffe-agent');
    if (!ours) return;
    const pid = ours.daemon.proc.pid!;
    const cid = await containerId('basic');
    await execFetch(cid, 'ro', 'spiffe-agent');
    const before = await rssKb(pid);
    const t0 = Date.now();
    for (let batch = 0; batch < 2; batch++) {
      const names = Array.from({ length: 25 }, (_, i) => `short-${batch}-${i}`);
      await cluster.kubectl(['apply', '-f', '-'], JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: names.map((n, i) => podManifest(n, { restartPolicy: 'Never', command: ['/bin/sh', '-c', `env SPIFFE_ENDPOINT_SOCKET=unix://${socketIn('ro', 'spiffe-agent')} /w/bin/go-client fetch -timeout 30s >/dev/null 2>&1; exit ${i % 2}`] })),
      }));
      await waitFor(`batch ${batch} finished`, async () => {
        const list = await cluster.getJson<{ items: { status: { phase: string } }[] }>(['-n', NS, 'pods', '-l', 'app notin (basic)', '--field-selector', 'status.phase!=Running']);
        const done = list.items.filter((p) => p.status.phase === 'Succeeded' || p.status.phase === 'Failed').length;
        return done >= 25 * (batch + 1) ? true : undefined;
      }, { timeoutMs: 240_000, intervalMs: 2000 });
    }
    const withDone = await rssKb(pid);
    await execFetch(cid, 'ro', 'spiffe-agent');
    const afterList = await rssKb(pid);
    await cluster.kubectl(['-n', NS, 'delete', 'pods', '--field-selector', 'status.phase!=Running', '--grace-period=1']);
    await execFetch(cid, 'ro', 'spiffe-agent');
    const after = await rssKb(pid);
    console.info(`k8s 50 short pods (${Date.now() - t0} ms): spiffe-agent RSS ${before} kB before, ${withDone} kB with 50 completed pods, ${afterList} kB after one more /pods with them, ${after} kB after deleting them`);
    expect(after - before, 'RSS growth (kB)').toBeLessThan(30_000);
  }, 600_000);
});
