/**
 * Interop harness: runs the real spiffe-agent daemon (compiled JS) on a temp dir and real SPIFFE
 * clients (go-spiffe, py-spiffe; built by test/interop/setup.sh) as distinct Unix uids, because
 * workload attestation takes the caller's identity from the kernel (SO_PEERCRED), never from input.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const AGENT_MAIN = path.join(REPO, 'dist/src/cli/main.js');
const CACHE = path.join(REPO, 'test/interop/.cache');
export const GO_CLIENT_BUILT = path.join(CACHE, 'bin/go-client');
export const SDS_CLIENT_BUILT = path.join(CACHE, 'bin/sds-client');
export const VENV_PYTHON = path.join(CACHE, 'venv/bin/python');
export const PY_FETCH = path.join(REPO, 'test/interop/py/fetch.py');

export const TD = 'example.org';
export const PARENT_ID = `spiffe://${TD}/spire/agent/local`;
/** Test users made by setup.sh; each runs with gid == uid and no supplementary groups. */
export const UID_A = 1001;
export const UID_B = 1002;
export const UID_NONE = 1003;

export interface Entry {
  spiffe_id: string;
  parent_id: string;
  selectors: { type: string; value: string }[];
  hint?: string;
  x509_svid_ttl?: number;
  jwt_svid_ttl?: number;
}

export function uidEntry(spiffeId: string, uid: number): Entry {
  return { spiffe_id: spiffeId, parent_id: PARENT_ID, selectors: [{ type: 'unix', value: `uid:${uid}` }] };
}

/** Fails with one message naming every missing prerequisite, so a run says what to do. */
export function assertPrerequisites(needs: { python?: boolean; sds?: boolean } = {}): void {
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push('Linux (workload attestation reads SO_PEERCRED and /proc)');
  if (process.getuid?.() !== 0) missing.push('root (clients are spawned as uids 1001-1003)');
  if (!existsSync(AGENT_MAIN)) missing.push(`${path.relative(REPO, AGENT_MAIN)} (run: npm run build)`);
  if (!existsSync(GO_CLIENT_BUILT)) missing.push('go-client (run: bash test/interop/setup.sh)');
  if (needs.sds && !existsSync(SDS_CLIENT_BUILT)) missing.push('sds-client (run: bash test/interop/setup.sh)');
  if (needs.python && !existsSync(VENV_PYTHON)) missing.push('py-spiffe venv (run: bash test/interop/setup.sh)');
  if (missing.length > 0) throw new Error(`interop prerequisites missing: ${missing.join('; ')}`);
}

export interface AgentOptions {
  entries: Entry[];
  x509SvidTtl?: string;
  jwtSvidTtl?: string;
}

export class AgentUnderTest {
  private constructor(
    readonly dir: string,
    readonly socketPath: string,
    readonly entriesPath: string,
    readonly goClient: string,
    private readonly proc: ChildProcess,
    private readonly logLines: string[],
    private readonly logFile: WriteStream,
  ) {}

  get endpoint(): string {
    return `unix://${this.socketPath}`;
  }

  /** Writes agent.conf + entries.json into a fresh 0755 dir under /tmp and waits for the socket. */
  static async start(opts: AgentOptions): Promise<AgentUnderTest> {
    const dir = await mkdtemp('/tmp/spiffe-interop-');
    await chmod(dir, 0o755); // the test uids must reach the socket and the copied client
    const socketPath = path.join(dir, 'api.sock');
    const entriesPath = path.join(dir, 'entries.json');
    const confPath = path.join(dir, 'agent.conf');
    await mkdir(path.join(dir, 'data'), { mode: 0o700 });
    await writeFile(entriesPath, JSON.stringify({ entries: opts.entries }, null, 2));
    await writeFile(
      confPath,
      `agent {
  trust_domain = "${TD}"
  data_dir = "${dir}/data"
  socket_path = "${socketPath}"
  log_level = "DEBUG"
}
embedded_authority {
  entries_file = "${entriesPath}"
  default_x509_svid_ttl = "${opts.x509SvidTtl ?? '20s'}"
  default_jwt_svid_ttl = "${opts.jwtSvidTtl ?? '5m'}"
  ca_ttl = "24h"
}
plugins {
  WorkloadAttestor "unix" { plugin_data { discover_workload_path = true } }
}
`,
    );
    // A copy inside the 0755 dir keeps the client executable by the test uids wherever the repo lives.
    const goClient = path.join(dir, 'go-client');
    await copyFile(GO_CLIENT_BUILT, goClient);
    await chmod(goClient, 0o755);

    const logLines: string[] = [];
    const logFile = createWriteStream(path.join(dir, 'agent.log'));
    const proc = spawn(process.execPath, [AGENT_MAIN, 'run', '-config', confPath], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onData = (chunk: Buffer) => {
      logFile.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) if (line) logLines.push(line);
      if (logLines.length > 2000) logLines.splice(0, logLines.length - 2000);
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    const agent = new AgentUnderTest(dir, socketPath, entriesPath, goClient, proc, logLines, logFile);
    await agent.waitForSocket(20_000);
    return agent;
  }

  private async waitForSocket(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(
          `agent exited (code ${this.proc.exitCode}, signal ${this.proc.signalCode}) before its socket appeared:\n${this.logTail()}`,
        );
      }
      const st = await stat(this.socketPath).catch(() => undefined);
      if (st?.isSocket()) return;
      await sleep(100);
    }
    throw new Error(`agent socket ${this.socketPath} did not appear within ${timeoutMs} ms:\n${this.logTail()}`);
  }

  /** Replaces entries.json atomically; the agent picks edits up live. */
  async writeEntries(entries: Entry[]): Promise<void> {
    const tmp = `${this.entriesPath}.tmp`;
    await writeFile(tmp, JSON.stringify({ entries }, null, 2));
    await rename(tmp, this.entriesPath);
  }

  logTail(n = 40): string {
    return this.logLines.slice(-n).join('\n');
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    this.logFile.end();
    // Keep the dir (logs, conf) when asked, for post-mortems.
    if (!process.env.INTEROP_KEEP_TMP) await rm(this.dir, { recursive: true, force: true });
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, undefined when it is not JSON. */
  json: any;
}

export interface Running {
  proc: ChildProcess;
  /** Resolves with the first stderr line matching re (rejects if the process exits first). */
  waitForStderr(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  result: Promise<RunResult>;
}

/** Spawns cmd as uid (gid = uid) with only SPIFFE_ENDPOINT_SOCKET telling it where the agent is. */
export function spawnAs(uid: number, agent: AgentUnderTest, cmd: string, args: string[], timeoutMs: number): Running {
  const proc = spawn(cmd, args, {
    uid,
    gid: uid,
    cwd: agent.dir,
    env: { SPIFFE_ENDPOINT_SOCKET: agent.endpoint, PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/nonexistent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const stderrWaiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  proc.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
    for (const w of [...stderrWaiters]) {
      const m = stderr.match(w.re);
      if (m) {
        stderrWaiters.splice(stderrWaiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const result = new Promise<RunResult>((resolve, reject) => {
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`spawn ${cmd} as uid ${uid}: ${err.message}`));
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      let json: any;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code, signal, stdout, stderr, json });
    });
  });
  return {
    proc,
    result,
    waitForStderr(re, ms) {
      const existing = stderr.match(re);
      if (existing) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no stderr line matching ${re} within ${ms} ms:\n${stderr}`)), ms);
        const waiter = {
          re,
          resolve: (m: RegExpMatchArray) => {
            clearTimeout(t);
            resolve(m);
          },
        };
        stderrWaiters.push(waiter);
        result.then(
          (r) => {
            clearTimeout(t);
            reject(new Error(`process exited (code ${r.code}) before a stderr line matching ${re}:\n${r.stderr}`));
          },
          reject,
        );
      });
    },
  };
}

export function runAs(uid: number, agent: AgentUnderTest, cmd: string, args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return spawnAs(uid, agent, cmd, args, timeoutMs).result;
}

/** A readable failure message: what the client said plus what the agent logged around it. */
export function explain(r: RunResult, agent: AgentUnderTest): string {
  return `exit=${r.code} signal=${r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}\nagent log tail:\n${agent.logTail()}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
