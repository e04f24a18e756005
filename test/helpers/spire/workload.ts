/**
 * Real workloads: go-spiffe v2 (test/interop/go-client) run under test uids against an agent's
 * socket, told where it is only by SPIFFE_ENDPOINT_SOCKET. Polling helpers wait for what a
 * workload receives instead of sleeping (entries take 5-10 s to travel server cache → agent sync).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GO_CLIENT_BUILT } from './binaries.js';
import { run, sleep, waitFor } from './proc.js';

export const UID_A = 1001;
export const UID_B = 1002;
export const UID_NONE = 1003;

export interface Endpoint {
  socketPath: string;
  logTail?(n?: number): string;
}

export interface SvidSummary {
  id: string;
  hint?: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  chainLength: number;
  issuer: string;
  verified: boolean;
  verifyError?: string;
}

export interface X509Result {
  ok: boolean;
  svids: SvidSummary[];
  bundles: Record<string, string[]>;
  jwtBundles?: Record<string, string[]>;
  fetchMs?: number;
  code?: string;
  error?: string;
  step?: string;
}

let clientCopy: Promise<string> | undefined;

/** go-client copied into a 0755 dir so the test uids can execute it wherever the repo lives. */
export function goClient(): Promise<string> {
  clientCopy ??= (async () => {
    const dir = await mkdtemp('/tmp/spire-it-goclient-');
    await chmod(dir, 0o755);
    const p = join(dir, 'go-client');
    await copyFile(GO_CLIENT_BUILT, p);
    await chmod(p, 0o755);
    return p;
  })();
  return clientCopy;
}

/** Removes the copy made by goClient() (call once, in afterAll). */
export async function removeGoClientCopy(): Promise<void> {
  if (!clientCopy) return;
  const p = await clientCopy.catch(() => undefined);
  clientCopy = undefined;
  if (p) await rm(dirname(p), { recursive: true, force: true });
}

function env(ep: Endpoint): NodeJS.ProcessEnv {
  return { SPIFFE_ENDPOINT_SOCKET: `unix://${ep.socketPath}`, PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/nonexistent' };
}

/** Runs one go-client subcommand as uid and parses its JSON (also on failure: {ok:false, code}). */
export async function goClientRun(ep: Endpoint, uid: number, args: string[], timeoutMs = 60_000): Promise<any> {
  const r = await run(await goClient(), args, { uid, gid: uid, env: env(ep), cwd: '/', timeoutMs });
  try {
    return JSON.parse(r.stdout);
  } catch {
    return { ok: false, code: 'NoOutput', error: `exit ${r.code} ${r.signal ?? ''}: ${r.stderr.slice(-2000)}` };
  }
}

export function fetchX509(ep: Endpoint, uid: number, opts: { timeoutS?: number; jwtBundles?: boolean } = {}): Promise<X509Result> {
  const args = ['x509', '-timeout', `${opts.timeoutS ?? 8}s`];
  if (opts.jwtBundles) args.push('-jwt-bundles');
  return goClientRun(ep, uid, args);
}

/** Polls until uid's X.509 context satisfies pred; returns that context. */
export async function waitForX509(
  ep: Endpoint,
  uid: number,
  what: string,
  pred: (r: X509Result) => boolean,
  opts: { timeoutMs?: number; jwtBundles?: boolean } = {},
): Promise<X509Result> {
  let last: X509Result | undefined;
  return waitFor(
    what,
    async () => {
      last = await fetchX509(ep, uid, { timeoutS: 5, jwtBundles: opts.jwtBundles });
      return pred(last) ? last : undefined;
    },
    {
      timeoutMs: opts.timeoutMs ?? 60_000,
      intervalMs: 500,
      describe: () => `last workload view (uid ${uid}): ${JSON.stringify(last)}\n${ep.logTail?.(30) ?? ''}`,
    },
  );
}

/** Waits until uid receives an X.509-SVID with this SPIFFE ID. */
export function waitForSvid(ep: Endpoint, uid: number, spiffeId: string, timeoutMs = 60_000): Promise<X509Result> {
  return waitForX509(ep, uid, `uid ${uid} to receive ${spiffeId}`, (r) => r.ok && r.svids.some((s) => s.id === spiffeId), { timeoutMs });
}

/** Waits until uid no longer receives spiffeId (no SVID at all counts: PermissionDenied). */
export function waitForNoSvid(ep: Endpoint, uid: number, spiffeId: string, timeoutMs = 60_000): Promise<X509Result> {
  return waitForX509(
    ep,
    uid,
    `uid ${uid} to stop receiving ${spiffeId}`,
    (r) => (r.ok && !r.svids.some((s) => s.id === spiffeId)) || r.code === 'PermissionDenied',
    { timeoutMs },
  );
}

export interface WatchLine {
  t: number;
  started?: boolean;
  update?: boolean;
  done?: boolean;
  svids?: SvidSummary[];
  bundles?: Record<string, string[]>;
  error?: string;
  code?: string;
}

/** An open WatchX509Context stream held by a real go-spiffe process under uid. */
export class Watcher {
  readonly lines: WatchLine[] = [];
  private buf = '';
  stderr = '';
  private proc!: ChildProcess;

  private constructor(readonly uid: number) {}

  static async open(ep: Endpoint, uid: number, durationS = 600): Promise<Watcher> {
    const w = new Watcher(uid);
    w.proc = spawn(await goClient(), ['watch', '-duration', `${durationS}s`], { uid, gid: uid, env: env(ep), cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    w.proc.stdout!.on('data', (c: Buffer) => {
      w.buf += c.toString('utf8');
      let i: number;
      while ((i = w.buf.indexOf('\n')) >= 0) {
        const line = w.buf.slice(0, i);
        w.buf = w.buf.slice(i + 1);
        try {
          w.lines.push(JSON.parse(line) as WatchLine);
        } catch {
          /* not JSON: ignore */
        }
      }
    });
    w.proc.stderr!.on('data', (c: Buffer) => (w.stderr = (w.stderr + c.toString('utf8')).slice(-4000)));
    return w;
  }

  updates(): WatchLine[] {
    return this.lines.filter((l) => l.update);
  }

  latest(): WatchLine | undefined {
    return this.updates().at(-1);
  }

  /** Waits for a line (after index `from`) satisfying pred. */
  async until(what: string, pred: (l: WatchLine) => boolean, timeoutMs = 60_000, from = 0): Promise<WatchLine> {
    return waitFor(what, () => this.lines.slice(from).find(pred), {
      timeoutMs,
      intervalMs: 100,
      describe: () => `watch (uid ${this.uid}) lines:\n${this.lines.slice(-8).map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${this.stderr.slice(-800)}`,
    });
  }

  async close(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const done = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
      await done;
      clearTimeout(t);
    }
  }
}

export { sleep };
