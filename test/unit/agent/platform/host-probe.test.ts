/**
 * The real probe: systeminformation in a child process. On this machine it answers; stand-in
 * modules (FAKE, test/fixtures/platform/) that hang, throw or exit show that the agent's side
 * gets an answer or an error and that close() leaves no process behind.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createHostProbe, pathState } from '../../../../src/agent/platform/host-probe.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../fixtures/platform');
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

/** Processes running the stand-in's marked sleep. */
function markedSleeps(): string[] {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => /^\d+ sleep 314\.159$/.test(l.trim()));
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}

describe('host probe (systeminformation in a child process)', () => {
  it("answers with systeminformation's own system() and chassis() on this machine", async () => {
    const probe = createHostProbe({ env: process.env });
    cleanup.push(async () => probe.close());
    const [system, chassis] = await Promise.all([probe.system(), probe.chassis()]);
    expect(system).toEqual(expect.objectContaining({ manufacturer: expect.any(String), model: expect.any(String), virtual: expect.any(Boolean) }));
    expect(system.model).not.toBe('');
    expect(chassis).toEqual({ manufacturer: expect.any(String), assetTag: expect.any(String) });
  });

  it('close() kills a child stuck in execSync, and its grandchild', async () => {
    expect(markedSleeps()).toEqual([]);
    const probe = createHostProbe({ modulePath: join(FIXTURES, 'si-hangs.cjs') });
    cleanup.push(async () => probe.close());
    const system = probe.system();
    const chassis = probe.chassis();
    expect(await until(() => markedSleeps().length === 1, 10_000)).toBe(true);
    probe.close();
    await expect(system).rejects.toThrow(/the systeminformation probe exited \(SIGKILL\) before answering/);
    await expect(chassis).rejects.toThrow(/exited/);
    expect(await until(() => markedSleeps().length === 0, 5_000)).toBe(true);
  });

  it('a call that throws in the child is an error for that call only', async () => {
    const probe = createHostProbe({ modulePath: join(FIXTURES, 'si-fails.cjs') });
    cleanup.push(async () => probe.close());
    await expect(probe.system()).rejects.toThrow('stand-in failure');
    expect(await probe.chassis()).toEqual({ manufacturer: 'Stand-in', assetTag: 'tag-1' });
  });

  it('a child that dies before answering fails every call', async () => {
    const probe = createHostProbe({ modulePath: join(FIXTURES, 'si-exits.cjs') });
    await expect(probe.system()).rejects.toThrow('the systeminformation probe exited (3) before answering');
    await expect(probe.chassis()).rejects.toThrow('exited (3)');
  });

  it('a probe closed before it is asked starts no process', async () => {
    const probe = createHostProbe({ modulePath: join(FIXTURES, 'si-hangs.cjs') });
    probe.close();
    await expect(probe.system()).rejects.toThrow('the probe was closed');
    expect(markedSleeps()).toEqual([]);
  });

  it('reads /sys/hypervisor/uuid, and says nothing when there is none', async () => {
    const root = await mkdtemp(join(tmpdir(), 'platform-sys-'));
    cleanup.push(() => rm(root, { recursive: true, force: true }));
    expect(await createHostProbe({ sysRoot: root }).hypervisorUuid()).toBeUndefined();
    await mkdir(join(root, 'hypervisor'));
    await writeFile(join(root, 'hypervisor/uuid'), 'ec2f8e4a-5e3b-2d2c-4f7e-0a1b2c3d4e5f\n');
    expect(await createHostProbe({ sysRoot: root }).hypervisorUuid()).toBe('ec2f8e4a-5e3b-2d2c-4f7e-0a1b2c3d4e5f');
  });

  it('path states: a readable file is usable, a missing one absent', async () => {
    const root = await mkdtemp(join(tmpdir(), 'platform-paths-'));
    cleanup.push(() => rm(root, { recursive: true, force: true }));
    await writeFile(join(root, 'token'), 'x');
    expect(await pathState(join(root, 'token'), 'r')).toBe('usable');
    expect(await pathState(join(root, 'token'), 'rw')).toBe('usable');
    expect(await pathState(join(root, 'missing'), 'r')).toBe('absent');
  });
});
