/**
 * The real HostProbe. systeminformation runs in a child Node process, never in the agent:
 * - its system() calls execSync (cat of /sys/.../dmi, ls /dev/disk/by-id, dmesg) and loading the
 *   package takes ~70 ms, which would stall the event loop beside node attestation and the
 *   Workload API (measured ~55 ms of blocked loop on a 2-CPU host);
 * - a worker thread would not do: a worker stuck in execSync holds the process on exit (Node
 *   joins it), so a hanging dmesg would hang `validate` and shutdown; a child is killed outright.
 * Only system() and chassis() are asked: osInfo() runs `hostname -f` synchronously, which waits
 * on DNS, and none of its fields says where the node runs.
 *
 * The child prints one JSON line per answer as it arrives, so an answer that hangs costs only
 * itself. It runs in its own process group with PATH alone for environment (no NODE_OPTIONS from
 * the agent's), and close() kills the whole group (dmidecode, dmesg included). Its priority is left
 * alone: setpriority(2) is in systemd's @resources set, which the shipped unit's SystemCallFilter
 * denies by killing the caller (SIGSYS), so renicing would kill the agent under systemd.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { INPUT_LIMITS, readBoundedFile } from '../../storage/bounded-file.js';
import type { ChassisAnswer, HostProbe, PathState, SystemAnswer } from './facts.js';

// CommonJS, passed with -e so it runs the same from src (tests) and dist; argv[1] is systeminformation's path.
const CHILD = `'use strict';
const si = require(process.argv[1]);
const put = (k, v) => process.stdout.write(JSON.stringify({ k, v }) + '\\n');
const ask = (k, f) => Promise.resolve().then(f).then((v) => put(k, v), (e) => put(k, { error: String((e && e.message) || e) }));
Promise.all([ask('chassis', () => si.chassis()), ask('system', () => si.system())]).then(() => process.exit(0));
`;

const MAX_OUTPUT = 64 * 1024;
const SYS_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface HostProbeOptions {
  /** The agent's environment: only PATH is passed on to the child. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where /sys/hypervisor/uuid is looked up (tests point it elsewhere). */
  readonly sysRoot?: string;
  /** The module the child loads; systeminformation unless a test hands in a stand-in that hangs or fails. */
  readonly modulePath?: string;
}

export function createHostProbe(o: HostProbeOptions = {}): HostProbe {
  let child: ChildProcess | undefined;
  let answers: Map<string, Promise<unknown>> | undefined;
  let closed = false;
  const start = (): Map<string, Promise<unknown>> => {
    if (answers) return answers;
    const waiting = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
    answers = new Map(
      ['system', 'chassis'].map((k) => [k, new Promise((resolve, reject) => waiting.set(k, { resolve, reject }))]),
    );
    for (const p of answers.values()) p.catch(() => undefined);
    const failAll = (why: string): void => {
      for (const w of waiting.values()) w.reject(new Error(why));
      waiting.clear();
    };
    if (closed) {
      failAll('the probe was closed');
      return answers;
    }
    let siPath: string;
    try {
      siPath = o.modulePath ?? createRequire(import.meta.url).resolve('systeminformation');
    } catch (err) {
      failAll(`systeminformation is not installed: ${(err as Error).message}`);
      return answers;
    }
    const c = spawn(process.execPath, ['--max-old-space-size=64', '-e', CHILD, siPath], {
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
      env: { PATH: o.env?.PATH ?? SYS_PATH },
    });
    child = c;
    c.unref();
    c.once('error', (err) => failAll(`cannot start the systeminformation probe: ${err.message}`));
    c.once('close', (code, signal) => failAll(`the systeminformation probe exited (${signal ?? code}) before answering`));
    let buf = '';
    c.stdout?.setEncoding('utf8');
    c.stdout?.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_OUTPUT) {
        failAll('the systeminformation probe printed too much');
        kill();
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        settle(line);
      }
    });
    const settle = (line: string): void => {
      let msg: { k?: unknown; v?: unknown };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      const w = typeof msg.k === 'string' ? waiting.get(msg.k) : undefined;
      if (!w) return;
      waiting.delete(msg.k as string);
      const v = msg.v as { error?: unknown } | null;
      if (v !== null && typeof v === 'object' && typeof v.error === 'string') w.reject(new Error(v.error));
      else w.resolve(v);
    };
    return answers;
  };
  const kill = (): void => {
    closed = true;
    const c = child;
    if (!c || c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  return {
    system: () => start().get('system')!.then(asSystem),
    chassis: () => start().get('chassis')!.then(asChassis),
    hypervisorUuid: async () => {
      const path = `${o.sysRoot ?? '/sys'}/hypervisor/uuid`;
      try {
        return (await readBoundedFile(path, { maxBytes: INPUT_LIMITS.token, what: 'hypervisor uuid' })).trim();
      } catch {
        return undefined;
      }
    },
    access: (path, mode) => pathState(path, mode),
    close: kill,
  };
}

/** Whether this process can use the path: exists, and read (and write, for a device) is allowed. */
export async function pathState(path: string, mode: 'r' | 'rw'): Promise<PathState> {
  try {
    await stat(path);
  } catch {
    return 'absent';
  }
  try {
    await access(path, mode === 'rw' ? constants.R_OK | constants.W_OK : constants.R_OK);
    return 'usable';
  } catch {
    return 'denied';
  }
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function asSystem(v: unknown): SystemAnswer {
  const o = (v ?? {}) as Record<string, unknown>;
  return {
    manufacturer: str(o.manufacturer),
    model: str(o.model),
    version: str(o.version),
    uuid: str(o.uuid),
    virtual: o.virtual === true,
    ...(typeof o.virtualHost === 'string' && o.virtualHost !== '' ? { virtualHost: o.virtualHost } : {}),
  };
}

function asChassis(v: unknown): ChassisAnswer {
  const o = (v ?? {}) as Record<string, unknown>;
  return { manufacturer: str(o.manufacturer), assetTag: str(o.assetTag) };
}
