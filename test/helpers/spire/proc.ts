/** Child-process plumbing shared by the SPIRE server and both agents: log capture, stop, polling. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import net from 'node:net';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns a value other than undefined (or throws something other than
 * "not yet"), every `intervalMs`, for at most `timeoutMs`. The error names `what` and the last
 * observation, so a timeout says what was seen instead of just "timed out".
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  opts: { timeoutMs?: number; intervalMs?: number; describe?: () => string } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const seen = last instanceof Error ? last.message : last !== undefined ? String(last) : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen ? `; last: ${seen}` : ''}${opts.describe ? `\n${opts.describe()}` : ''}`);
    }
    await sleep(opts.intervalMs ?? 250);
  }
}

/** A free TCP port on 127.0.0.1 (bound then released; the caller binds it next). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A long-running child with its output kept in memory (last N lines) and in a log file. */
export class Daemon {
  readonly lines: string[] = [];
  proc: ChildProcess;
  private exitedP: Promise<void>;
  private log: WriteStream;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    logPath: string,
    opts: SpawnOptions = {},
  ) {
    this.log = createWriteStream(logPath, { flags: 'a' });
    this.proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    const onData = (c: Buffer): void => {
      this.log.write(c);
      for (const l of c.toString('utf8').split('\n')) if (l) this.lines.push(l);
      if (this.lines.length > 5000) this.lines.splice(0, this.lines.length - 5000);
    };
    this.proc.stdout!.on('data', onData);
    this.proc.stderr!.on('data', onData);
    this.exitedP = new Promise((r) => this.proc.once('exit', () => r()));
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  exitInfo(): string {
    return `exit code ${this.proc.exitCode}, signal ${this.proc.signalCode}`;
  }

  tail(n = 40): string {
    return this.lines.slice(-n).join('\n');
  }

  /** Lines since index `from` that match re. */
  grep(re: RegExp, from = 0): string[] {
    return this.lines.slice(from).filter((l) => re.test(l));
  }

  exited(): Promise<void> {
    return this.exitedP;
  }

  /** SIGTERM (or the given signal), SIGKILL after graceMs. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    if (this.alive()) {
      this.proc.kill(signal);
      const t = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
      await this.exitedP;
      clearTimeout(t);
    }
    await new Promise<void>((r) => this.log.end(() => r()));
  }
}

export interface CmdResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: SpawnOptions & { timeoutMs?: number; input?: string } = {}): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    p.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    if (opts.input !== undefined) p.stdin!.end(opts.input);
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.once('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
