/**
 * deploy/kubernetes as `kubectl apply -k` sees it: rendered by kubectl's own kustomize, turned into
 * JSON by `kubectl annotate --local -o json` (offline; it only adds an annotation), then checked for
 * what makes the agent work on a node, against the agent.conf the ConfigMap carries, which must
 * pass the project's own `spiffe-agent validate`.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_ATTESTORS } from '../../../src/attestation/node/catalog.js';
import { run as validate } from '../../../src/cli/commands/validate.js';
import { loadConfig } from '../../../src/config/load.js';
import type { AgentConfig } from '../../../src/config/types.js';
import { requireTool } from '../../helpers/require-tool.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const KUBECTL = process.env['KUBECTL'] ?? 'kubectl';
const skip = requireTool('kubectl', spawnSync(KUBECTL, ['version', '--client'], { stdio: 'ignore' }).status === 0, 'kubectl (v1.32 at /usr/bin/kubectl; it carries kustomize)');

type Obj = Record<string, any>; // Kubernetes objects as parsed JSON; the assertions check their shape
let objects: Obj[] = [];
let ds: Obj;
let pod: Obj;
let agent: Obj;
let conf = '';
let config: AgentConfig;
let dir = '';
const SA_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount'; // automounted by the kubelet, not in the manifest

const find = (kind: string, name?: string): Obj => {
  const o = objects.find((x) => x['kind'] === kind && (name === undefined || x['metadata']['name'] === name));
  if (o === undefined) throw new Error(`rendered output has no ${kind} ${name ?? ''}: ${objects.map((x) => `${x['kind']}/${x['metadata']['name']}`).join(', ')}`);
  return o;
};
const volume = (name: string): Obj => (pod['volumes'] as Obj[]).find((v) => v['name'] === name) ?? {};
const mountOf = (file: string): Obj | undefined =>
  (agent['volumeMounts'] as Obj[]).filter((m) => file === m['mountPath'] || file.startsWith(`${m['mountPath']}/`)).sort((a, b) => b['mountPath'].length - a['mountPath'].length)[0];

beforeAll(async () => {
  if (skip) return;
  const sh = promisify(execFile);
  const yaml = (await sh(KUBECTL, ['kustomize', path.join(REPO, 'deploy/kubernetes')], { maxBuffer: 8 << 20 })).stdout;
  const json = await new Promise<string>((resolve, reject) => {
    const p = execFile(KUBECTL, ['annotate', '--local', '-f', '-', '-o', 'json', 'spiffe-agent.test/rendered=1'], { env: { ...process.env, KUBECONFIG: '/dev/null' }, maxBuffer: 8 << 20 }, (err, out) =>
      err ? reject(err) : resolve(out),
    );
    p.stdin!.end(yaml);
  });
  // One pretty-printed object per document: each starts with "{" in column 0.
  objects = json.split(/\n(?=\{)/).map((t) => JSON.parse(t) as Obj);
  ds = find('DaemonSet', 'spire-agent');
  pod = ds['spec']['template']['spec'];
  agent = (pod['containers'] as Obj[]).find((c) => c['name'] === 'spire-agent')!;
  const cmName = volume('spire-config')['configMap']['name'] as string;
  conf = find('ConfigMap', cmName)['data']['agent.conf'] as string;
  dir = await mkdtemp(path.join(tmpdir(), 'deploy-kubernetes-'));
  await writeFile(path.join(dir, 'agent.conf'), conf);
  config = await loadConfig(path.join(dir, 'agent.conf'), { expandEnv: false, env: {} });
});

afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe.skipIf(skip)('deploy/kubernetes (kubectl kustomize)', () => {
  it('renders the namespace, service account, RBAC, ConfigMap and DaemonSet, all in namespace spire', () => {
    expect(find('Namespace', 'spire')).toBeDefined();
    expect(find('ServiceAccount', 'spire-agent')['metadata']['namespace']).toBe('spire');
    expect(find('ClusterRole', 'spire-agent')['rules']).toEqual([{ apiGroups: [''], resources: ['pods', 'nodes', 'nodes/proxy'], verbs: ['get'] }]);
    expect(find('ClusterRoleBinding', 'spire-agent')['subjects']).toEqual([{ kind: 'ServiceAccount', name: 'spire-agent', namespace: 'spire' }]);
    expect(pod['serviceAccountName']).toBe('spire-agent');
    for (const o of objects.filter((x) => !['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(x['kind']))) {
      expect(o['metadata']['namespace'], `${o['kind']}/${o['metadata']['name']}`).toBe('spire');
    }
  });

  it('DaemonSet: hostPID, rolling update, the image\'s default args, the socket directory from the host', () => {
    expect(pod['hostPID']).toBe(true);
    expect(ds['spec']['updateStrategy']).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
    expect(agent['image']).toMatch(/^localhost\/spiffe-agent:/);
    expect(agent['args']).toEqual(['run', '-config', '/run/spire/config/agent.conf']);
    expect(mountOf('/run/spire/config/agent.conf')?.['name']).toBe('spire-config');
    expect(volume('spire-agent-socket-dir')['hostPath']).toEqual({ path: '/run/spire/agent-sockets', type: 'DirectoryOrCreate' });
    const socketMount = mountOf(config.agent.socketPath)!;
    expect(socketMount['name']).toBe('spire-agent-socket-dir');
    expect(socketMount['mountPath']).toBe(path.dirname(config.agent.socketPath));
    expect(socketMount['readOnly']).toBeFalsy();
  });

  it('k8s_psat reads the projected token with audience spire-server at /var/run/secrets/tokens/spire-agent', () => {
    const psat = config.plugins.find((p) => p.type === 'NodeAttestor')!;
    expect(psat.name).toBe('k8s_psat');
    expect(psat.data['token_path']).toBe('/var/run/secrets/tokens/spire-agent');
    const m = mountOf('/var/run/secrets/tokens/spire-agent')!;
    const sources = volume(m['name'])['projected']['sources'] as Obj[];
    expect(sources).toEqual([{ serviceAccountToken: { path: 'spire-agent', expirationSeconds: 7200, audience: 'spire-server' } }]);
    expect(m['mountPath']).toBe('/var/run/secrets/tokens');
    expect(config.mode).toBe('server');
    expect(config.mode === 'server' && mountOf(config.server.trustBundlePath!)?.['name']).toBe('spire-bundle');
    expect(volume('spire-bundle')['configMap']).toEqual({ name: 'spire-bundle' });
  });

  it('/live and /ready probes hit the health listener the ConfigMap configures', () => {
    const hc = config.healthChecks;
    expect(hc.listenerEnabled).toBe(true);
    expect(agent['ports']).toEqual([{ name: 'healthz', containerPort: hc.bindPort }]);
    expect(agent['livenessProbe']['httpGet']).toEqual({ path: hc.livePath, port: 'healthz' });
    expect(agent['readinessProbe']['httpGet']).toEqual({ path: hc.readyPath, port: 'healthz' });
    expect([hc.livePath, hc.readyPath]).toEqual(['/live', '/ready']);
  });

  it('runs non-root with a read-only root, no capabilities; only the init container gets CHOWN, as root', () => {
    expect(pod['securityContext']).toMatchObject({ runAsUser: 1000, runAsNonRoot: true });
    expect(agent['securityContext']).toEqual({
      allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] },
    });
    const init = pod['initContainers'] as Obj[];
    expect(init.map((c) => c['name'])).toEqual(['fsgroupfix']);
    expect(init[0]!['securityContext']['capabilities']).toEqual({ drop: ['ALL'], add: ['CHOWN'] });
    // Everything the agent writes or reads from outside the image lies under a mount.
    for (const p of [config.agent.dataDir, config.agent.socketPath]) expect(mountOf(p), p).toBeDefined();
    expect(mountOf(config.agent.dataDir)?.['readOnly']).toBeFalsy();
  });

  it('sets resource requests and limits for CPU and memory', () => {
    for (const k of ['requests', 'limits']) {
      expect(Object.keys(agent['resources'][k] ?? {}).sort(), k).toEqual(['cpu', 'memory']);
    }
  });

  it('the ConfigMap\'s agent.conf passes `spiffe-agent validate` with the files the pod mounts in place', async () => {
    // Re-root every path the pod provides (its volume mounts and the automounted service-account
    // token) into a temp dir holding stand-ins, so validate reads them as the agent would in the pod.
    const roots = [...(agent['volumeMounts'] as Obj[]).map((m) => m['mountPath'] as string), SA_MOUNT].sort((a, b) => b.length - a.length);
    let text = conf;
    for (const r of roots) text = text.split(`"${r}/`).join(`"${dir}/root${r}/`).split(`"${r}"`).join(`"${dir}/root${r}"`);
    for (const f of ['/var/run/secrets/tokens/spire-agent', `${SA_MOUNT}/token`]) {
      await mkdir(path.dirname(`${dir}/root${f}`), { recursive: true });
      await writeFile(`${dir}/root${f}`, 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n'); // a token-shaped stand-in
    }
    const file = path.join(dir, 'agent.rerooted.conf');
    await writeFile(file, text);
    let err = '';
    const stderr = new PassThrough().on('data', (d: Buffer) => (err += d.toString()));
    const code = await validate([`-config=${file}`], { stdout: new PassThrough(), stderr, env: {}, signal: new AbortController().signal });
    if (NODE_ATTESTORS.names.includes('k8s_psat')) {
      expect(err).toBe('');
      expect(code).toBe(0);
    } else {
      // Until k8s_psat (issue 17, branch wt-kube) is merged, that block is the only problem allowed.
      expect(err).toMatch(/unknown NodeAttestor "k8s_psat"/);
      expect(err).toMatch(/1 problem found/);
    }
    expect(await readFile(path.join(REPO, 'deploy/kubernetes/agent.conf'), 'utf8')).toBe(conf);
  });
});
