/**
 * Running agent code under the privileges it has in production rather than the test's root:
 * a uid and gid of its own, no supplementary groups, exactly the given capabilities
 * (inheritable, ambient and, when there are any, the whole bounding set), and no-new-privs.
 * Uses util-linux's setpriv, as `systemd-run -p AmbientCapabilities=...` would set them.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Not imported from agent-process.ts, which imports this file.
const DIST = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'dist/src');

export interface Privileges {
  readonly uid: number;
  readonly gid: number;
  /** Capability names as setpriv spells them (`sys_ptrace`); none: a plain user. */
  readonly caps: readonly string[];
}

/** The settings of systemd/spiffe-agent.service that decide what the daemon may do, read from the shipped file. */
export interface UnitSettings {
  /** AmbientCapabilities=, as setpriv spells them; CapabilityBoundingSet= must name the same. */
  readonly caps: readonly string[];
  readonly boundingCaps: readonly string[];
  readonly umask: number;
  readonly nofile: number;
  readonly noNewPrivileges: boolean;
  readonly dynamicUser: boolean;
}

export function unitSettings(): UnitSettings {
  const text = readFileSync(join(DIST, '../../systemd/spiffe-agent.service'), 'utf8');
  const get = (key: string): string => {
    const m = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
    if (!m) throw new Error(`systemd/spiffe-agent.service has no ${key}=`);
    return m[1]!.trim();
  };
  const caps = (key: string): string[] => get(key).split(/\s+/).map((c) => c.replace(/^CAP_/, '').toLowerCase()).sort();
  return {
    caps: caps('AmbientCapabilities'),
    boundingCaps: caps('CapabilityBoundingSet'),
    umask: Number.parseInt(get('UMask'), 8),
    nofile: Number(get('LimitNOFILE')),
    noNewPrivileges: get('NoNewPrivileges') === 'yes',
    dynamicUser: get('DynamicUser') === 'yes',
  };
}

/** The setpriv command line (to prefix a command with) that drops root to `p`. */
export function setprivArgv(p: Privileges): string[] {
  // The bounding set is only narrowed when there are capabilities to keep: a plain user's
  // is the full set, and without capabilities it cannot matter under no-new-privs.
  const caps = p.caps.map((c) => `+${c}`).join(',');
  return [
    'setpriv',
    `--reuid=${p.uid}`,
    `--regid=${p.gid}`,
    '--clear-groups',
    ...(caps ? [`--bounding-set=-all,${caps}`, `--inh-caps=${caps}`, `--ambient-caps=${caps}`] : ['--inh-caps=-all']),
    '--no-new-privs',
  ];
}

/**
 * Runs an ES module body under `p` with the compiled daemon (run `npm run build` first):
 * `load('proc/proc-reader.js')` imports from dist/src, and `out(value)` is what this returns.
 */
export function runCompiledAs(p: Privileges, body: string, timeoutMs = 15_000): Promise<unknown> {
  const prelude =
    `import { pathToFileURL } from 'node:url';` +
    `const load = (m) => import(pathToFileURL(${JSON.stringify(DIST)} + '/' + m).href);` +
    `const out = (v) => process.stdout.write(JSON.stringify(v));`;
  const argv = [...setprivArgv(p), process.execPath, '--input-type=module', '-e', `${prelude}\n${body}`];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      if (code !== 0 || !stdout) reject(new Error(`compiled code under uid ${p.uid} exited with ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}
