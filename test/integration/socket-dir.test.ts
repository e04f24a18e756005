/**
 * The socket directory cannot be taken over: the real daemon (as root) against an attacker
 * running as uid 65534 in a sticky, world-writable directory that plays the role of /tmp.
 * The agent must refuse directories another user owns or can write, accept the ones it
 * created itself, and never follow a symlink swapped in for its socket.
 */
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readdir, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, REPO, uidEntry } from '../helpers/agent-process.js';
import { waitExit } from '../helpers/processes.js';

const ATTACKER = { uid: 65534, gid: 65534 };
const ATTACKER_SCRIPT = join(REPO, 'test/helpers/socket-attacker.mjs');
const ENTRIES = [uidEntry('/root', 0)];

describe('socket directory', () => {
  let base: string;
  let shared: string;
  let victim: string;

  beforeAll(async () => {
    base = await mkdtemp('/tmp/spiffe-agent-sockdir-');
    await chmod(base, 0o755);
    // What /tmp is: root-owned, world-writable, sticky.
    shared = join(base, 'tmp');
    await mkdir(shared);
    await chmod(shared, 0o1777);
    await mkdir(join(base, 'secret'), { mode: 0o700 });
    victim = join(base, 'secret', 'victim');
    await writeFile(victim, 'root only\n', { mode: 0o600 });
  });

  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const start = async (socketPath: string, extra: Partial<Parameters<typeof AgentProcess.start>[0]> = {}): Promise<AgentProcess> => {
    const dir = await mkdtemp(join(base, 'agent-'));
    return AgentProcess.start({ dir, socketPath, entries: ENTRIES, ...extra });
  };

  /** Removes a tree the attacker may still be writing into: moved out of its reach first. */
  const evict = async (path: string): Promise<void> => {
    const trash = join(base, `trash-${Math.random().toString(36).slice(2)}`);
    await rename(path, trash).catch(() => undefined);
    await rm(trash, { recursive: true, force: true, maxRetries: 5 });
  };

  /** A root-owned `<path>/public`, moved into place atomically however the attacker races. */
  const placeRootTree = async (path: string): Promise<void> => {
    for (;;) {
      const prep = await mkdtemp(join(base, 'prep-'));
      await chmod(prep, 0o755);
      await mkdir(join(prep, 'public'), { mode: 0o755 });
      await evict(path);
      try {
        await rename(prep, path);
        return;
      } catch {
        await rm(prep, { recursive: true, force: true });
      }
    }
  };

  /** mkdir -p as the attacker, so the directories are really theirs. */
  const mkdirAsAttacker = async (path: string): Promise<void> => {
    const child = spawn(process.execPath, ['-e', `require('fs').mkdirSync(${JSON.stringify(path)}, { recursive: true, mode: 0o755 })`], { stdio: 'ignore', ...ATTACKER });
    await waitExit(child);
    expect(child.exitCode).toBe(0);
  };

  it('starts in a sticky /tmp-like directory when it created the socket directory itself', async () => {
    const sock = join(shared, 'fresh', 'public', 'api.sock');
    const agent = await start(sock);
    try {
      for (const d of [join(shared, 'fresh'), join(shared, 'fresh', 'public')]) {
        const st = await stat(d);
        expect({ uid: st.uid, mode: st.mode & 0o7777 }).toEqual({ uid: 0, mode: 0o755 });
      }
      const st = await lstat(sock);
      expect(st.isSocket()).toBe(true);
      expect({ uid: st.uid, mode: st.mode & 0o777 }).toEqual({ uid: 0, mode: 0o777 });
    } finally {
      await agent.stop();
    }
  });

  it('refuses a socket directory another user created, naming the path, owner and mode', async () => {
    const dir = join(shared, 'taken', 'public');
    await mkdirAsAttacker(dir);
    await expect(start(join(dir, 'api.sock'))).rejects.toThrow(/taken(\/public)? \(owner uid 65534, mode 0755\) is .*belongs to another user.*Remove/);
  });

  it('refuses a parent directory another user owns', async () => {
    const parent = join(shared, 'parent-taken');
    await mkdirAsAttacker(parent);
    await expect(start(join(parent, 'public', 'api.sock'))).rejects.toThrow(/parent-taken \(owner uid 65534, mode 0755\) is a parent of the Workload API socket/);
  });

  it('refuses a socket directory writable by others, even root-owned and sticky', async () => {
    for (const mode of [0o777, 0o1777, 0o775]) {
      const dir = join(shared, `open-${mode.toString(8)}`);
      await mkdir(dir);
      await chmod(dir, mode);
      await expect(start(join(dir, 'api.sock'))).rejects.toThrow(/is the directory of the Workload API socket .* and is writable by users other than its owner/);
    }
  });

  it('refuses a parent writable by others without the sticky bit', async () => {
    const parent = join(base, 'world');
    await mkdir(parent);
    await chmod(parent, 0o777);
    await expect(start(join(parent, 'public', 'api.sock'))).rejects.toThrow(/world \(owner uid 0, mode 0777\) is a parent .* without the sticky bit/);
  });

  it('refuses a symlinked socket directory that leads to another user\'s directory', async () => {
    const theirs = join(shared, 'theirs');
    await mkdirAsAttacker(theirs);
    const link = join(base, 'link');
    await symlink(theirs, link);
    await expect(start(join(link, 'api.sock'))).rejects.toThrow(/theirs \(owner uid 65534/);
  });

  it('is never taken over by an attacker racing it for the directory and the socket', async () => {
    const sock = join(shared, 'spire-agent', 'public', 'api.sock');
    // Its symlinks point at a root-only directory: the agent must not create anything there.
    const attacker = spawn(process.execPath, [ATTACKER_SCRIPT, sock, victim, '120000', join(base, 'secret')], { stdio: ['ignore', 'pipe', 'ignore'], ...ATTACKER });
    let report = '';
    attacker.stdout!.on('data', (c: Buffer) => (report += c.toString()));
    const outcomes: string[] = [];
    try {
      for (let round = 0; round < 4; round++) {
        // Root clears the way; from here the attacker and the agent race for the path.
        await evict(join(shared, 'spire-agent'));
        // Every other round the directories are root's before the agent starts (a fresh boot where
        // root got there first): root moves a prepared tree into place, replacing whatever the
        // attacker made meanwhile. The attacker then races the bind itself.
        if (round % 2 === 1) await placeRootTree(join(shared, 'spire-agent'));
        let agent: AgentProcess | undefined;
        try {
          agent = await start(sock);
        } catch (err) {
          expect((err as Error).message).toMatch(/belongs to another user/);
          outcomes.push('refused');
          continue;
        }
        try {
          const st = await lstat(sock);
          expect(st.isSocket()).toBe(true);
          expect({ uid: st.uid, mode: st.mode & 0o777 }).toEqual({ uid: 0, mode: 0o777 });
          const realDir = await realpath(join(shared, 'spire-agent', 'public'));
          expect((await stat(realDir)).uid).toBe(0);
          expect((await stat(join(shared, 'spire-agent'))).uid).toBe(0);
          outcomes.push('served');
        } finally {
          await agent.stop();
        }
        const v = await stat(victim);
        expect({ uid: v.uid, mode: v.mode & 0o777 }).toEqual({ uid: 0, mode: 0o600 });
      }
    } finally {
      attacker.kill('SIGTERM');
      await waitExit(attacker);
    }
    const v = await stat(victim);
    expect({ uid: v.uid, mode: v.mode & 0o777 }).toEqual({ uid: 0, mode: 0o600 });
    expect(await readdir(join(base, 'secret'))).toEqual(['victim']);
    expect(outcomes).toContain('refused');
    expect(outcomes).toContain('served');
    expect(report).toMatch(/"created":[1-9].*"linked":[1-9]/);
  }, 120_000);
});
