/**
 * The real single-node Kubernetes of scripts/kube.sh, for interop tests. A test file calls
 * planKube() at its top level (skipped with a notice outside CI when the cluster cannot run here;
 * failed in CI, as requireTool does), then startKube() in beforeAll and cluster.down() in afterAll.
 * startKube() brings the cluster up with `kube.sh up` (10-30 s warm) unless one is already running
 * for the session: KUBE_ENV_FILE names the env file of a cluster started outside the test (by CI or
 * a developer), which is then reused and left running.
 *
 * Pods use images imported from tarballs (no registry here), so imagePullPolicy is always Never.
 * Tokens for k8s_psat come from the TokenRequest API, bound to a pod, as the kubelet mints them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inCI } from '../ci.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const KUBE_SCRIPT = join(REPO, 'scripts/kube.sh');

export interface KubePlan {
  /** true: skip the file (the cluster cannot run here, outside CI). */
  readonly skip: boolean;
  readonly reason: string | undefined;
  /** Throws the reason; call it first in beforeAll. */
  require(): void;
}

function buildLogTail(): string {
  const log = process.env.KUBE_BUILD_LOG;
  if (!log || !existsSync(log)) return '';
  return `; last lines of ${log}:\n${readFileSync(log, 'utf8').split('\n').slice(-15).join('\n')}`;
}

/** Whether this machine can run the cluster: root, Linux, and kube.sh's build done (CI waits for it). */
export function planKube(): KubePlan {
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push('Linux');
  if (process.getuid?.() !== 0) missing.push('root (the kubelet, containerd and the CNI bridge need it)');
  if (!process.env.KUBE_ENV_FILE) {
    const r = spawnSync('bash', [KUBE_SCRIPT, 'built'], { encoding: 'utf8' });
    if (r.status !== 0) missing.push(`Kubernetes is not built (run: bash scripts/kube.sh build, about 10 min cold)${buildLogTail()}`);
  }
  const reason = missing.length ? `Kubernetes interop prerequisites missing: ${missing.join('; ')}` : undefined;
  const required = inCI() || process.env.KUBE_REQUIRED === '1';
  if (reason && !required) console.warn(`SKIPPED (not in CI; CI=true or KUBE_REQUIRED=1 makes this a failure): ${reason}`);
  return {
    skip: reason !== undefined && !required,
    reason,
    require() {
      if (reason) throw new Error(reason);
    },
  };
}

export interface KubeEnv {
  readonly KUBE_STATE_DIR: string;
  readonly KUBE_BIN_DIR: string;
  readonly KUBECONFIG: string;
  readonly KUBE_APISERVER_URL: string;
  readonly KUBE_CA_CERT: string;
  readonly KUBE_ADMIN_CERT: string;
  readonly KUBE_ADMIN_KEY: string;
  readonly KUBE_KUBELET_CLIENT_CERT: string;
  readonly KUBE_KUBELET_CLIENT_KEY: string;
  readonly KUBE_SA_SIGNING_KEY: string;
  readonly KUBE_NODE_NAME: string;
  /** The node's InternalIP (the host's own address: the kubelet refuses a loopback one). */
  readonly KUBE_NODE_IP: string;
  readonly KUBE_KUBELET_PORT: string;
  readonly KUBE_KUBELET_READONLY_PORT: string;
  readonly KUBE_CONTAINERD_SOCKET: string;
  readonly KUBE_BUSYBOX_IMAGE: string;
}

export function parseEnv(text: string): KubeEnv {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  for (const k of ['KUBECONFIG', 'KUBE_BIN_DIR', 'KUBE_NODE_NAME', 'KUBE_SA_SIGNING_KEY']) {
    if (!env[k]) throw new Error(`kube.sh env: ${k} missing in:\n${text}`);
  }
  return env as unknown as KubeEnv;
}

function runScript(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res, rej) => {
    const p = spawn('bash', [KUBE_SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', rej);
    p.on('close', (code) => {
      clearTimeout(t);
      res({ code, out, err });
    });
  });
}

export interface PodSpec {
  name: string;
  namespace: string;
  serviceAccount?: string;
  labels?: Record<string, string>;
  /** The container's command; default: sleep for an hour. */
  command?: string[];
  /** Extra fields merged into the pod's spec. */
  spec?: Record<string, unknown>;
}

export interface TokenOptions {
  namespace: string;
  serviceAccount: string;
  audience: string;
  /** Bind the token to this pod (name and uid), as the kubelet's projected tokens are. */
  pod?: { name: string; uid: string };
  /** At least 600 (the apiserver's minimum). */
  expirationSeconds?: number;
}

export class KubeCluster {
  private constructor(
    readonly env: KubeEnv,
    /** false when the cluster was started outside this process (KUBE_ENV_FILE): down() leaves it. */
    private readonly owned: boolean,
  ) {}

  static async start(): Promise<KubeCluster> {
    const reuse = process.env.KUBE_ENV_FILE;
    if (reuse) return new KubeCluster(parseEnv(readFileSync(reuse, 'utf8')), false);
    const args = ['up', ...(process.env.KUBE_STATE_DIR ? [process.env.KUBE_STATE_DIR] : [])];
    const r = await runScript(args, 6 * 60_000);
    if (r.code !== 0) throw new Error(`scripts/kube.sh up failed (exit ${r.code}):\n${r.err.split('\n').slice(-40).join('\n')}`);
    return new KubeCluster(parseEnv(r.out), true);
  }

  async down(): Promise<void> {
    if (!this.owned) return;
    const r = await runScript(['down', this.env.KUBE_STATE_DIR], 3 * 60_000);
    if (r.code !== 0) throw new Error(`scripts/kube.sh down failed (exit ${r.code}):\n${r.err}`);
  }

  /** Runs kubectl against the cluster; rejects with its stderr on failure. */
  kubectl(args: string[], input?: string): Promise<string> {
    return new Promise((res, rej) => {
      const p = spawn(join(this.env.KUBE_BIN_DIR, 'kubectl'), ['--kubeconfig', this.env.KUBECONFIG, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('error', rej);
      p.on('close', (code) => (code === 0 ? res(out) : rej(new Error(`kubectl ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
      p.stdin.end(input ?? '');
    });
  }

  async apply(obj: Record<string, unknown>): Promise<void> {
    await this.kubectl(['apply', '-f', '-'], JSON.stringify(obj));
  }

  async getJson<T = Record<string, any>>(args: string[]): Promise<T> {
    return JSON.parse(await this.kubectl(['get', ...args, '-o', 'json'])) as T;
  }

  /** Namespace and service account, idempotent. */
  async ensureServiceAccount(namespace: string, name: string): Promise<void> {
    await this.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    await this.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
  }

  /** Creates a busybox pod on the node and waits until it runs; returns its uid. */
  async createPod(p: PodSpec, timeoutMs = 120_000): Promise<string> {
    await this.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: p.namespace, labels: p.labels ?? {} },
      spec: {
        serviceAccountName: p.serviceAccount ?? 'default',
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'main', image: this.env.KUBE_BUSYBOX_IMAGE, imagePullPolicy: 'Never', command: p.command ?? ['/bin/sleep', '3600'] }],
        ...p.spec,
      },
    });
    await this.kubectl(['-n', p.namespace, 'wait', '--for=condition=Ready', `pod/${p.name}`, `--timeout=${Math.round(timeoutMs / 1000)}s`]);
    return (await this.getJson<{ metadata: { uid: string } }>(['-n', p.namespace, 'pod', p.name])).metadata.uid;
  }

  async deletePod(namespace: string, name: string): Promise<void> {
    await this.kubectl(['-n', namespace, 'delete', 'pod', name, '--ignore-not-found', '--grace-period=1', '--wait=true']);
  }

  async nodeUid(): Promise<string> {
    return (await this.getJson<{ metadata: { uid: string } }>(['node', this.env.KUBE_NODE_NAME])).metadata.uid;
  }

  /** A service-account token from the TokenRequest API (kubectl create token). */
  async token(o: TokenOptions): Promise<string> {
    const args = ['-n', o.namespace, 'create', 'token', o.serviceAccount, '--audience', o.audience, '--duration', `${o.expirationSeconds ?? 3600}s`];
    if (o.pod) args.push('--bound-object-kind', 'Pod', '--bound-object-name', o.pod.name, '--bound-object-uid', o.pod.uid);
    return (await this.kubectl(args)).trim();
  }

  /**
   * `token` with some claims changed and signed again with the cluster's own service-account key,
   * as the apiserver signs. Only for what TokenRequest will not mint: a token already expired (its
   * minimum lifetime is 10 minutes). The apiserver verifies it like any token it issued.
   */
  resign(token: string, claims: Record<string, unknown>): string {
    const [h, p] = token.split('.');
    const payload = { ...(JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as Record<string, unknown>), ...claims };
    const input = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    const key = createPrivateKey(readFileSync(this.env.KUBE_SA_SIGNING_KEY));
    return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
  }
}

export function startKube(): Promise<KubeCluster> {
  return KubeCluster.start();
}
