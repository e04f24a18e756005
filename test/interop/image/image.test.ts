/**
 * The agent image (scripts/image.sh) in a real container runtime: Debian's podman with runc, on a
 * private storage root in a temp dir, so nothing is left in the machine's podman storage. The agent
 * container runs as the DaemonSet runs it (uid 1000, no capabilities, read-only root, the host's pid
 * namespace, the socket directory bind-mounted from the host); go-spiffe (go-client, static) runs in
 * a second container of the same image that shares only the socket directory.
 *
 * The archive comes from SPIFFE_AGENT_IMAGE (set by .ci/run, which builds it in the background) or
 * from running scripts/image.sh here (cached; about 3 min cold).
 */
import { execFile, spawnSync } from 'node:child_process';
import { chown, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTool } from '../../helpers/require-tool.js';
import { GO_CLIENT_BUILT, REPO } from '../harness.js';

const run = promisify(execFile);
const has = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const AGENT_UID = 1000; // the image's USER and the embedded default entry's unix:uid
const skip =
  requireTool('root', process.getuid?.() === 0, 'podman runs rootful here; run the interop suite as root') ||
  requireTool('podman', has('podman'), 'apt-get install podman') ||
  requireTool('runc', has('runc'), 'apt-get install runc (crun refuses hybrid cgroup hierarchies)') ||
  requireTool('mmdebstrap', process.env['SPIFFE_AGENT_IMAGE'] !== undefined || has('mmdebstrap'), 'apt-get install mmdebstrap (scripts/image.sh)');

let dir = '';
let image = '';
/** podman with every piece of state under `dir`; runc and cgroupfs because the machines here have a hybrid cgroup layout. */
function podman(args: string[], timeout = 120_000): Promise<{ stdout: string; stderr: string }> {
  const global = ['--root', `${dir}/root`, '--runroot', `${dir}/run`, '--tmpdir', `${dir}/tmp`, '--events-backend', 'none',
    '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--storage-driver', 'overlay'];
  return run('podman', [...global, ...args], { timeout, maxBuffer: 16 << 20 });
}
// Root here lacks CAP_SYS_RESOURCE, so podman's default RLIMIT_NOFILE of 1048576 cannot be set.
const LIMITS = ['--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096', '--network', 'none'];
/** What deploy/kubernetes/daemonset.yaml asks of the runtime, in podman's words. */
const LIKE_THE_DAEMONSET = ['--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--pid', 'host'];

async function fetchAs(uid: number): Promise<{ code: number; out: Record<string, unknown> }> {
  const args = ['run', '--rm', ...LIMITS, '--read-only', '--cap-drop', 'ALL', '--user', `${uid}:${uid}`,
    '-v', `${GO_CLIENT_BUILT}:/go-client:ro`, '-v', `${dir}/sockets:/sockets`,
    '-e', 'SPIFFE_ENDPOINT_SOCKET=unix:///sockets/api.sock', '--entrypoint', '/go-client', image, 'x509', '-timeout', '5s'];
  try {
    const { stdout } = await podman(args);
    return { code: 0, out: JSON.parse(stdout) as Record<string, unknown> };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    try {
      return { code: e.code ?? -1, out: JSON.parse(e.stdout ?? '') as Record<string, unknown> };
    } catch {
      throw new Error(`go-client container failed without JSON: ${e.stderr ?? String(err)}`);
    }
  }
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  if (skip) return;
  const archive = process.env['SPIFFE_AGENT_IMAGE'] ?? (await run('bash', [path.join(REPO, 'scripts/image.sh')], { timeout: 900_000, maxBuffer: 16 << 20 })).stdout.trim().split('\n').pop()!;
  dir = await mkdtemp(path.join(os.tmpdir(), 'spiffe-agent-image-'));
  await mkdir(`${dir}/sockets`);
  await mkdir(`${dir}/data`);
  await chown(`${dir}/sockets`, AGENT_UID, AGENT_UID); // as the DaemonSet's init container does
  await chown(`${dir}/data`, AGENT_UID, AGENT_UID);
  const { stdout } = await podman(['load', '-i', archive], 300_000);
  image = /Loaded image(?:\(s\))?: (\S+)/.exec(stdout)?.[1] ?? '';
  expect(image, stdout).toMatch(/^localhost\/spiffe-agent:\d+\.\d+\.\d+-[0-9a-f]{12}$/);
}, 900_000);

afterAll(async () => {
  if (dir === '') return;
  await podman(['rm', '-af', '-t', '2']).catch(() => undefined);
  await podman(['rmi', '-af']).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(skip)('the agent image (scripts/image.sh) under podman', () => {
  it('`spiffe-agent --version` prints package.json\'s version, under Node 24 from the image', async () => {
    const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    // On stderr, as spire-agent prints it (mitchellh/cli).
    const v = await podman(['run', '--rm', ...LIMITS, image, '--version']);
    expect((v.stderr + v.stdout).trim()).toBe(pkg.version);
    expect((await podman(['run', '--rm', ...LIMITS, '--entrypoint', 'node', image, '--version'])).stdout).toMatch(/^v24\./);
    expect(image.split(':')[1]).toMatch(new RegExp(`^${pkg.version.replace(/\./g, '\\.')}-`));
  });

  it('`spiffe-agent validate` accepts the embedded default config shipped in the image', async () => {
    const { stdout } = await podman(['run', '--rm', ...LIMITS, image, 'validate']);
    expect(stdout).toContain('configuration file is valid');
  });

  it('runs as uid 1000 with no capabilities; a go-spiffe workload in another container gets its X.509-SVID, another uid none', async () => {
    await podman(['run', '-d', '--name', 'agent', ...LIMITS, ...LIKE_THE_DAEMONSET,
      '-v', `${dir}/data:/opt/spiffe-agent/.data`, '-v', `${dir}/sockets:/tmp/spire-agent/public`, image, 'run']);
    const pid = Number((await podman(['inspect', '-f', '{{.State.Pid}}', 'agent'])).stdout.trim());
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\t1000\t1000\t1000\t1000$/m);
    expect(status).toMatch(/^CapEff:\t0000000000000000$/m);
    expect(status).toMatch(/^NoNewPrivs:\t1$/m);

    // The entry in conf/entries.example.json: unix:uid:1000 -> spiffe://example.org/workload.
    const ok = await until('an SVID for uid 1000', 30_000, async () => {
      const r = await fetchAs(AGENT_UID);
      return r.code === 0 ? r : undefined;
    });
    const svids = ok.out['svids'] as { id: string; verified: boolean }[];
    expect(svids.map((s) => s.id)).toEqual(['spiffe://example.org/workload']);
    expect(svids[0]!.verified).toBe(true);

    // uid 1001 has no entry. The embedded default also turns on discover_workload_path, whose
    // /proc/<pid>/exe read of another user's process is what a capability-less agent cannot do.
    const refused = await fetchAs(1001);
    expect(refused.code, JSON.stringify(refused.out)).not.toBe(0);
    expect(String(refused.out['error'])).toMatch(/CAP_SYS_PTRACE|PermissionDenied|no identity/i);
    const logs = await podman(['logs', 'agent']);
    expect(logs.stdout + logs.stderr).toContain('Starting Workload and SDS APIs');
  });
});
