/**
 * The package as an operator installs it (README "systemd"): `npm pack`, then `npm install -g`
 * into a prefix of its own (a temporary one here, /usr/local on a host), and the installed
 * `spiffe-agent` works from there: its version, `validate` on the shipped systemd config, `run` on
 * the shipped embedded-authority config, and the shipped units pass `systemd-analyze verify` with
 * ExecStart= pointing at the installed executable. Production dependencies come from the npm
 * registry (or npm's cache), as on a host.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, collect } from '../helpers/agent-process.js';
import { requireTool } from '../helpers/require-tool.js';

const run = promisify(execFile);
const ANALYZE = '/usr/bin/systemd-analyze';
const skip = requireTool('systemd-analyze', existsSync(ANALYZE), 'apt-get install systemd (it ships systemd-analyze)');
const version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

describe.skipIf(skip)('npm pack, then npm install -g', () => {
  let dir = '';
  let bin = '';
  let pkg = '';

  beforeAll(async () => {
    dir = await mkdtemp('/tmp/spiffe-agent-install-');
    await chmod(dir, 0o755);
    // dist/ is built by `npm test` before any test runs; prepack would rebuild it under the other tests' feet.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO, maxBuffer: 64 << 20 });
    const tgz = join(dir, (JSON.parse(stdout) as { filename: string }[])[0]!.filename);
    await run('npm', ['install', '-g', '--prefix', join(dir, 'prefix'), '--no-audit', '--no-fund', '--prefer-offline', tgz], { cwd: dir, maxBuffer: 64 << 20 });
    bin = join(dir, 'prefix', 'bin', 'spiffe-agent');
    pkg = join(dir, 'prefix', 'lib', 'node_modules', 'spiffe-agent');
  }, 240_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('installs production dependencies only, and the files the agent reads', async () => {
    for (const f of ['dist/src/cli/main.js', 'proto/spiffe/workload/workload.proto', 'systemd/spiffe-agent.service', 'systemd/spiffe-agent.socket', 'systemd/agent.conf', 'conf/agent/agent.conf']) {
      expect(existsSync(join(pkg, f)), f).toBe(true);
    }
    expect(existsSync(join(pkg, 'node_modules', 'vitest'))).toBe(false);
    expect(existsSync(join(pkg, 'node_modules', 'typescript'))).toBe(false);
    expect(existsSync(join(pkg, 'test'))).toBe(false);
  });

  it('spiffe-agent --version', async () => {
    // On stderr, as spire-agent prints it (mitchellh/cli).
    const { stdout, stderr } = await run(bin, ['--version']);
    expect((stderr + stdout).trim()).toBe(version);
  });

  it('validate accepts the shipped systemd/agent.conf', async () => {
    const { stdout } = await run(bin, ['validate', '-config', join(pkg, 'systemd', 'agent.conf')]);
    expect(stdout).toContain('configuration file is valid');
  });

  it('run serves the Workload API on the shipped embedded-authority config', async () => {
    const sock = join(dir, 'run', 'api.sock');
    // conf/agent/agent.conf names its entries file relative to the package, as `npm start` runs it.
    const agent = spawn(bin, ['run', '-config', 'conf/agent/agent.conf', '-socketPath', sock, '-dataDir', join(dir, 'data')], { cwd: pkg, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = collect(agent, 60_000);
    try {
      let health = { code: 1 as number | null, stdout: '', stderr: '' };
      for (let i = 0; i < 100 && health.code !== 0; i++) {
        await new Promise((r) => setTimeout(r, 200));
        health = await run(bin, ['healthcheck', '-socketPath', sock]).then((r) => ({ code: 0, ...r }), (e: { code: number; stdout: string; stderr: string }) => e);
      }
      expect(health.stdout).toContain('Agent is healthy');
    } finally {
      agent.kill('SIGTERM');
    }
    const r = await out;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Starting Workload and SDS APIs');
  }, 60_000);

  it('systemd-analyze verify passes on the installed units, with the TPM drop-in', async () => {
    const units = join(dir, 'units');
    await mkdir(units);
    const service = (await readFile(join(pkg, 'systemd', 'spiffe-agent.service'), 'utf8')).replaceAll('/usr/local/bin/spiffe-agent', bin);
    expect(service).toContain(`ExecStart=${bin} run `);
    await writeFile(join(units, 'spiffe-agent.service'), service);
    await writeFile(join(units, 'spiffe-agent.socket'), await readFile(join(pkg, 'systemd', 'spiffe-agent.socket'), 'utf8'));
    // The TPM drop-in, where the README installs it: verify reads drop-ins next to the units it is given.
    await mkdir(join(units, 'spiffe-agent.service.d'));
    const dropIn = await readFile(join(pkg, 'systemd', 'tpm.conf'), 'utf8');
    expect(dropIn).toMatch(/^DeviceAllow=\/dev\/tpmrm0 rw$/m);
    await writeFile(join(units, 'spiffe-agent.service.d', 'tpm.conf'), dropIn);
    const r = await run(ANALYZE, ['verify', '--man=no', join(units, 'spiffe-agent.socket'), join(units, 'spiffe-agent.service')]).then(
      (x) => ({ code: 0, ...x }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(r.stderr + r.stdout).toBe('');
    expect(r.code).toBe(0);
  });
});
