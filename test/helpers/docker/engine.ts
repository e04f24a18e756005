/**
 * The real, private Docker engine of scripts/docker.sh (dockerd 20.10 from Debian's docker.io, with a
 * containerd of its own), for interop tests. A test file calls planDocker() at its top level (skipped
 * with a notice outside CI when dockerd cannot run here; failed in CI, as requireTool does), then
 * startDocker() in beforeAll and engine.down() in afterAll. Each start gets its own state directory,
 * so a test never shares (or stops) an engine someone else started.
 *
 * There is no registry: the only image is busybox, imported from a tarball by `docker.sh up`.
 * Containers run with `--network none` (the engine has no bridge and touches no iptables).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inCI } from '../ci.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const DOCKER_SCRIPT = join(REPO, 'scripts/docker.sh');

export interface DockerPlan {
  readonly skip: boolean;
  readonly reason: string | undefined;
  /** Throws the reason; call it first in beforeAll. */
  require(): void;
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Whether this machine can run the private engine: Linux, root, dockerd, containerd, runc, busybox. */
export function planDocker(): DockerPlan {
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push('Linux');
  if (process.getuid?.() !== 0) missing.push('root (dockerd needs it)');
  for (const c of ['dockerd', 'containerd', 'runc']) if (!has(c)) missing.push(`${c} (run: bash scripts/docker.sh deps)`);
  if (spawnSync('dpkg', ['-s', 'busybox-static'], { stdio: 'ignore' }).status !== 0) missing.push('busybox-static (run: bash scripts/docker.sh deps)');
  const reason = missing.length ? `Docker engine prerequisites missing: ${missing.join('; ')}` : undefined;
  if (reason && !inCI()) console.warn(`SKIPPED (not in CI; CI=true makes this a failure): ${reason}`);
  return {
    skip: reason !== undefined && !inCI(),
    reason,
    require() {
      if (reason) throw new Error(reason);
    },
  };
}

export interface DockerEnv {
  readonly DOCKERD_STATE_DIR: string;
  readonly DOCKER_HOST: string;
  readonly DOCKER_SOCKET: string;
  readonly DOCKER_CLI: string;
  readonly DOCKER_BUSYBOX_IMAGE: string;
}

/** Runs a command to its end, with its exit code and output (killed after timeoutMs). */
function runCaptured(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done, fail) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    p.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', fail);
    p.once('close', (code) => {
      clearTimeout(t);
      done({ code, out, err });
    });
  });
}

function runScript(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return runCaptured('bash', [DOCKER_SCRIPT, ...args], timeoutMs);
}

export function parseDockerEnv(text: string): DockerEnv {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  for (const k of ['DOCKERD_STATE_DIR', 'DOCKER_HOST', 'DOCKER_SOCKET', 'DOCKER_CLI', 'DOCKER_BUSYBOX_IMAGE']) {
    if (!env[k]) throw new Error(`scripts/docker.sh up printed no ${k}`);
  }
  return env as unknown as DockerEnv;
}

export class DockerEngine {
  constructor(readonly env: DockerEnv) {}

  /** The docker CLI against this engine; rejects with stderr on a non-zero exit. */
  async docker(args: string[], timeoutMs = 60_000): Promise<string> {
    const r = await runCaptured(this.env.DOCKER_CLI, ['-H', this.env.DOCKER_HOST, ...args], timeoutMs);
    if (r.code === 0) return r.out;
    throw Object.assign(new Error(`docker ${args.slice(0, 2).join(' ')}: exit ${r.code}: ${r.err.trim()}`), { stdout: r.out });
  }

  /** `docker exec` that returns stdout whatever the exit code (the go-client prints JSON on failure too). */
  async exec(container: string, argv: string[], timeoutMs = 90_000): Promise<string> {
    try {
      return await this.docker(['exec', container, ...argv], timeoutMs);
    } catch (e) {
      const out = (e as { stdout?: string }).stdout ?? '';
      if (out.trim()) return out;
      throw e;
    }
  }

  async down(): Promise<void> {
    const r = await runScript(['down', this.env.DOCKERD_STATE_DIR], 120_000);
    if (r.code !== 0) throw new Error(`scripts/docker.sh down failed (exit ${r.code}):\n${r.err}`);
  }
}

/** Starts a private engine under a fresh state directory; on failure, undoes what was started. */
export async function startDocker(): Promise<DockerEngine> {
  const dir = mkdtempSync('/tmp/spiffe-agent-dockerd-');
  const r = await runScript(['up', dir], 120_000);
  if (r.code !== 0) {
    await runScript(['down', dir], 120_000);
    throw new Error(`scripts/docker.sh up failed (exit ${r.code}):\n${r.err}`);
  }
  return new DockerEngine(parseDockerEnv(r.out));
}
