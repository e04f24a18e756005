/**
 * Runs the real compiled daemon on a temporary directory and socket, and real
 * client processes (our own CLI) under chosen uids, so tests see exactly what a
 * workload would: identity comes from the kernel, not from anything the test passes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setprivArgv, type Privileges } from './privileges.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const AGENT_MAIN = join(REPO, 'dist/src/cli/main.js');
export const TD = 'example.org';
export const PARENT_ID = `spiffe://${TD}/spire/agent/local`;

export interface EntryJson {
  spiffe_id: string;
  parent_id?: string;
  selectors: { type: string; value: string }[];
  [k: string]: unknown;
}

export function uidEntry(path: string, uid: number, extra: Record<string, unknown> = {}): EntryJson {
  return { spiffe_id: `spiffe://${TD}${path}`, parent_id: PARENT_ID, selectors: [{ type: 'unix', value: `uid:${uid}` }], ...extra };
}

export interface AgentStartOptions {
  entries: EntryJson[];
  /** Extra lines inside agent { }. */
  agent?: string;
  /** Extra lines inside embedded_authority { }. */
  embedded?: string;
  unixPluginData?: string;
  /** Extra top-level blocks (e.g. health_checks { ... }). */
  topLevel?: string;
  /** Reuse a directory (restart scenarios). */
  dir?: string;
  /** Extra environment for the daemon (e.g. libfaketime's LD_PRELOAD). */
  env?: Record<string, string>;
  /** Workload API socket; `<dir>/public/api.sock` unless set. */
  socketPath?: string;
  /** The daemon's umask (set by a shell before it execs node); the inherited one unless set. */
  umask?: number;
  /** The daemon's open-file limit (soft and hard, set with prlimit before node starts). */
  nofile?: number;
  /**
   * Start the executable as users and the systemd unit do (its sh preamble starts node with the
   * agent's flags), not `node main.js`: for tests that measure memory.
   */
  bin?: boolean;
  /**
   * Runs the daemon as systemd/spiffe-agent.service would rather than as root: under these ids
   * and capabilities (setpriv, no-new-privs), with `nofile` as its open-file limit, data_dir
   * 0700 and the socket's directory 0755 owned by it (StateDirectory=, RuntimeDirectory=).
   */
  runAs?: Privileges & { nofile?: number };
}

export class AgentProcess {
  readonly logs: string[] = [];
  private exited: Promise<void>;

  private constructor(
    readonly dir: string,
    readonly socketPath: string,
    readonly entriesPath: string,
    readonly proc: ChildProcess,
  ) {
    const onData = (c: Buffer): void => {
      for (const line of c.toString('utf8').split('\n')) if (line) this.logs.push(line);
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    this.exited = new Promise((r) => proc.once('exit', () => r()));
  }

  static async start(o: AgentStartOptions): Promise<AgentProcess> {
    const dir = o.dir ?? (await mkdtemp('/tmp/spiffe-agent-it-'));
    await chmod(dir, 0o755);
    await mkdir(join(dir, 'data'), { recursive: true, mode: 0o700 });
    const socketPath = o.socketPath ?? join(dir, 'public', 'api.sock');
    const entriesPath = join(dir, 'entries.json');
    await writeFile(entriesPath, JSON.stringify({ entries: o.entries }, null, 2));
    const conf = join(dir, 'agent.conf');
    await writeFile(
      conf,
      `agent {
  trust_domain = "${TD}"
  data_dir = "${dir}/data"
  socket_path = "${socketPath}"
  log_level = "DEBUG"
  ${o.agent ?? ''}
}
embedded_authority {
  entries_file = "${entriesPath}"
  ${o.embedded ?? ''}
}
${o.topLevel ?? ''}
plugins {
  WorkloadAttestor "unix" {
    plugin_data {
      ${o.unixPluginData ?? ''}
    }
  }
}
`,
    );
    const run = [...(o.nofile ? ['prlimit', `--nofile=${o.nofile}:${o.nofile}`, '--'] : []), ...(o.bin ? [] : [process.execPath]), AGENT_MAIN, 'run', '-config', conf];
    const argv = o.runAs ? [...(await dropTo(o.runAs, join(dir, 'data'), dirname(socketPath))), ...run] : run;
    const spawnOpts = { stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'], ...(o.env ? { env: { ...process.env, ...o.env } } : {}) };
    const proc =
      o.umask === undefined
        ? spawn(argv[0]!, argv.slice(1), spawnOpts)
        : spawn('/bin/sh', ['-c', `umask ${o.umask.toString(8).padStart(3, '0')} && exec "$@"`, 'sh', ...argv], spawnOpts);
    const agent = new AgentProcess(dir, socketPath, entriesPath, proc);
    await agent.waitReady(20_000);
    return agent;
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`agent exited before it was ready:\n${this.logs.join('\n')}`);
      }
      if (this.logs.some((l) => /Starting (Workload and SDS APIs|Workload API|SDS API)/.test(l)) && (await stat(this.socketPath).catch(() => undefined))?.isSocket()) return;
      await sleep(50);
    }
    throw new Error(`agent not ready within ${timeoutMs} ms:\n${this.logs.join('\n')}`);
  }

  /**
   * Index of the first log line at or after `from` that matches, waiting up to `timeoutMs` for it.
   * A negative check ("nothing was logged") waits for such a later line, never for a fixed time.
   */
  async logged(pred: (line: string) => boolean, timeoutMs: number, what: string, from = 0): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.logs.findIndex((l, k) => k >= from && pred(l));
      if (i >= 0) return i;
      if (Date.now() > deadline) throw new Error(`the agent did not log ${what} within ${timeoutMs} ms; last lines:\n${this.logs.slice(-20).join('\n')}`);
      await sleep(50);
    }
  }

  async writeEntries(entries: EntryJson[]): Promise<void> {
    const tmp = `${this.entriesPath}.tmp`;
    await writeFile(tmp, JSON.stringify({ entries }, null, 2));
    await rename(tmp, this.entriesPath);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', opts: { keepDir?: boolean } = {}): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill(signal);
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(t);
    }
    if (!opts.keepDir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Gives the directories to the daemon's uid, and returns the command prefix that drops to it. */
async function dropTo(p: Privileges & { nofile?: number }, dataDir: string, socketDir: string): Promise<string[]> {
  await chown(dataDir, p.uid, p.gid);
  await chmod(dataDir, 0o700);
  await mkdir(socketDir, { recursive: true });
  await chown(socketDir, p.uid, p.gid);
  await chmod(socketDir, 0o755);
  return [...(p.nofile ? ['prlimit', `--nofile=${p.nofile}:${p.nofile}`] : []), ...setprivArgv(p)];
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `spiffe-agent <args>` as a real process under the given ids. */
export function cli(args: string[], ids: { uid?: number; gid?: number } = {}, timeoutMs = 15_000): Promise<CliResult> {
  return collect(spawnCli(args, ids), timeoutMs);
}

/** Waits for a child to exit (killing it after timeoutMs) and returns what it printed. */
export function collect(child: ChildProcess, timeoutMs = 15_000): Promise<CliResult> {
  return new Promise((resolveP) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolveP({ code, stdout, stderr });
    });
  });
}

export function spawnCli(args: string[], ids: { uid?: number; gid?: number } = {}): ChildProcess {
  return spawn(process.execPath, [AGENT_MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    ...ids,
  });
}

/** Lines of a long-running child's stdout, with a way to wait for a condition on them. */
export class Output {
  text = '';
  private waiters: (() => void)[] = [];

  constructor(child: ChildProcess, stream: 'stdout' | 'stderr' = 'stdout') {
    child[stream]!.on('data', (c: Buffer) => {
      this.text += c.toString();
      for (const w of this.waiters.splice(0)) w();
    });
    child.once('exit', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  async until(pred: (text: string) => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.text)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output so far:\n${this.text}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

export function field(text: string, label: string): string[] {
  return [...text.matchAll(new RegExp(`^${label}:\\s+(.+)$`, 'gm'))].map((m) => m[1]!.trim());
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
