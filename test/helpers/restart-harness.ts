/**
 * Restarts the real daemon over and over while workloads keep fetching, as systemd does with
 * `systemctl restart` — with or without a socket unit holding the Workload API socket.
 *
 * With `activated`, Debian's systemd-socket-activate (from the systemd package) binds the socket
 * and passes it as fd 3 with LISTEN_FDS/LISTEN_FDNAMES, exactly as a .socket unit does. It execs
 * one command, so that command is a bash loop that starts the agent again each time it exits:
 * the listening socket stays open in the loop across restarts, which is what systemd's socket
 * unit does for the service. Each agent runs in a subshell that sets LISTEN_PID to its own pid
 * ($BASHPID) and execs node, so LISTEN_PID names the agent as systemd's would.
 * Without `activated` the same loop runs the agent alone, binding its socket itself (the baseline).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_MAIN, PARENT_ID, REPO, TD } from './agent-process.js';

export const SOCKET_ACTIVATE = '/usr/bin/systemd-socket-activate';
const READY = /Starting (Workload and SDS APIs|Workload API)/;

export interface ClientStats {
  attempts: number;
  ok: number;
  refused: Record<string, number>;
  failed: Record<string, number>;
  lastOk: boolean;
}

/** What test/helpers/watch-loop.mjs counted: watches opened, updates received, and how each watch ended. */
export interface WatchStats {
  watches: number;
  updates: number;
  ends: Record<string, number>;
}

export interface RestartResult {
  clients: ClientStats[];
  /** One per watcher (`watchers`), which keep a FetchX509SVID watch open across the restarts. */
  watches: WatchStats[];
  refused: number;
  /** Every failure by what the client saw (fetch-loop.mjs's reasons), and the same sorted into kinds. */
  failed: Record<string, number>;
  /** The connection reset (ECONNRESET, EPIPE): the agent closed it with the request unread or unanswered. */
  resets: number;
  /** The call ended with gRPC UNAVAILABLE (14) before its answer. */
  unavailable: number;
  /** Anything else: a stream closed without an answer, a timeout, another status. */
  otherFailures: number;
  withoutSvid: number;
  /** From SIGTERM to the next agent's "Starting Workload API", per restart. */
  downtimeMs: number[];
  logs: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A directory with agent.conf (embedded authority, one entry for this uid) and the socket's directory. */
export async function prepareAgentDir(): Promise<{ dir: string; sock: string; conf: string; spiffeId: string }> {
  const dir = await mkdtemp('/tmp/spiffe-agent-restarts-');
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'public'), { mode: 0o755 });
  await mkdir(join(dir, 'data'), { mode: 0o700 });
  const sock = join(dir, 'public', 'api.sock');
  const uid = process.getuid!();
  const spiffeId = `spiffe://${TD}/restarts`;
  await writeFile(join(dir, 'entries.json'), JSON.stringify({ entries: [{ spiffe_id: spiffeId, parent_id: PARENT_ID, selectors: [{ type: 'unix', value: `uid:${uid}` }] }] }));
  const conf = join(dir, 'agent.conf');
  await writeFile(
    conf,
    `agent {\n  trust_domain = "${TD}"\n  data_dir = "${dir}/data"\n  socket_path = "${sock}"\n  shutdown_grace_period = "2s"\n}\n` +
      `embedded_authority {\n  entries_file = "${dir}/entries.json"\n}\nplugins {\n  WorkloadAttestor "unix" {\n    plugin_data {}\n  }\n}\n`,
  );
  return { dir, sock, conf, spiffeId };
}

export async function restartUnderLoad(o: {
  activated: boolean;
  restarts: number;
  clients: number;
  servingMs: number;
  watchers?: number;
  /** Called once the first agent serves, before the first restart: a test starts its own clients here (SPIFFE_ENDPOINT_SOCKET=unix://`sock`). */
  started?: (sock: string) => Promise<void>;
}): Promise<RestartResult> {
  const { dir, sock, spiffeId } = await prepareAgentDir();
  const pidFile = join(dir, 'agent.pid');
  const loop =
    `while [ ! -e "${dir}/stop" ]; do ( echo $BASHPID > "${pidFile}.tmp" && mv "${pidFile}.tmp" "${pidFile}"; ` +
    `${o.activated ? 'export LISTEN_PID=$BASHPID; ' : ''}exec "${process.execPath}" "${AGENT_MAIN}" run -config "${dir}/agent.conf" ); done`;
  const argv = o.activated ? [SOCKET_ACTIVATE, '-l', sock, '--fdname=workload-api', 'bash', '-c', loop] : ['bash', '-c', loop];
  const harness = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const logs: string[] = [];
  const onData = (c: Buffer): void => void logs.push(...c.toString('utf8').split('\n').filter(Boolean));
  harness.stdout!.on('data', onData);
  harness.stderr!.on('data', onData);
  const readyCount = (): number => logs.filter((l) => READY.test(l)).length;
  const clients: ChildProcess[] = [];
  try {
    if (o.activated) {
      // systemd-socket-activate binds with its own umask and execs on the first connection, so the
      // mode a .socket unit gives (SocketMode=0777) is set here, before any client connects.
      await waitFor(async () => (await stat(sock).catch(() => undefined))?.isSocket() === true, 10_000, 'the activation socket', logs);
      await chmod(sock, 0o777);
    } else {
      await waitFor(async () => readyCount() >= 1, 20_000, 'the first agent', logs);
    }
    for (let i = 0; i < o.clients; i++) {
      clients.push(spawn(process.execPath, [join(REPO, 'test/helpers/fetch-loop.mjs'), sock, spiffeId], { stdio: ['ignore', 'pipe', 'inherit'] }));
    }
    for (let i = 0; i < (o.watchers ?? 0); i++) {
      clients.push(spawn(process.execPath, [join(REPO, 'test/helpers/watch-loop.mjs'), sock, spiffeId], { stdio: ['ignore', 'pipe', 'inherit'] }));
    }
    await waitFor(async () => readyCount() >= 1, 20_000, 'the first agent', logs);
    await o.started?.(sock);
    const downtimeMs: number[] = [];
    for (let r = 1; r <= o.restarts; r++) {
      await sleep(o.servingMs);
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      const t0 = Date.now();
      process.kill(pid, 'SIGTERM');
      await waitFor(async () => readyCount() >= r + 1, 30_000, `agent number ${r + 1}`, logs);
      downtimeMs.push(Date.now() - t0);
    }
    await sleep(o.servingMs);
    const outputs = clients.map((c) => collectLine(c));
    for (const c of clients) c.kill('SIGTERM');
    const lines = await Promise.all(outputs);
    const stats = lines.slice(0, o.clients).map((s) => JSON.parse(s) as ClientStats);
    const watches = lines.slice(o.clients).map((s) => JSON.parse(s) as WatchStats);
    const failed: Record<string, number> = {};
    for (const s of stats) for (const [k, n] of Object.entries(s.failed)) failed[k] = (failed[k] ?? 0) + n;
    return {
      clients: stats,
      watches,
      refused: stats.reduce((n, s) => n + Object.values(s.refused).reduce((a, b) => a + b, 0), 0),
      failed,
      ...failureKinds(failed),
      withoutSvid: stats.filter((s) => !s.lastOk || s.ok === 0).length,
      downtimeMs,
      logs,
    };
  } finally {
    for (const c of clients) if (c.exitCode === null) c.kill('SIGKILL');
    await writeFile(join(dir, 'stop'), '');
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '0')).trim());
    if (pid > 0) process.kill(pid, 'SIGTERM');
    const exited = new Promise((r) => harness.once('exit', r));
    if (harness.exitCode === null && !(await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]))) {
      process.kill(-harness.pid!, 'SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/** `failed` (reason → count) sorted into the kinds a restart can cut a call with. */
export function failureKinds(failed: Record<string, number>): Pick<RestartResult, 'resets' | 'unavailable' | 'otherFailures'> {
  const kinds = { resets: 0, unavailable: 0, otherFailures: 0 };
  for (const [reason, n] of Object.entries(failed)) {
    if (/ECONNRESET|EPIPE/.test(reason)) kinds.resets += n;
    else if (/^grpc-status 14\b/.test(reason)) kinds.unavailable += n;
    else kinds.otherFailures += n;
  }
  return kinds;
}

function collectLine(c: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.once('exit', (code) => (out.trim() ? resolve(out.trim()) : reject(new Error(`fetch-loop exited ${code} without its counts`))));
  });
}

async function waitFor(pred: () => Promise<boolean>, timeoutMs: number, what: string, logs: string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms; last lines:\n${logs.slice(-20).join('\n')}`);
    await sleep(50);
  }
}
