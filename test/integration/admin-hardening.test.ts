/**
 * The admin socket is never reachable by others, even briefly, and its Logger API cannot
 * switch the audit log off. The real daemon runs as root with umask 000 (the worst an
 * operator's shell can hand it) while an attacker process under uid 65534 polls for the
 * admin socket as fast as it can; a symlink must not sneak the admin socket into the public
 * socket's directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentProcess, REPO, TD, cli, collect, sleep, uidEntry } from '../helpers/agent-process.js';
import { waitExit } from '../helpers/processes.js';

const ATTACKER = { uid: 65534, gid: 65534 };
const OPERATOR = { uid: 1431, gid: 0 };
const WORKLOAD = { uid: 1432, gid: 1432 };
const CLIENT = join(REPO, 'test/helpers/admin-client.mjs');

/**
 * Polls `path` in a tight loop as the attacker: every mode it sees on the socket, and
 * whether a connect() ever got through. net.connect makes the connect(2) call at once (only
 * its outcome arrives later), so attempts happen inside the synchronous loop, while the
 * window is open; the event loop runs between rounds to collect the outcomes.
 */
function adminPoller(path: string): ChildProcess {
  const code = `
    const fs = require('node:fs'), net = require('node:net');
    const path = ${JSON.stringify(path)};
    const modes = new Set();
    let connected = 0;
    process.on('SIGTERM', () => { console.log(JSON.stringify({ modes: [...modes].sort(), connected })); process.exit(0); });
    console.log('polling');
    const round = () => {
      for (let i = 0; i < 500; i++) {
        let st;
        try { st = fs.lstatSync(path); } catch { continue; }
        modes.add('0o' + (st.mode & 0o777).toString(8));
        if (i % 25 === 0) {
          const s = net.connect(path);
          s.on('connect', () => { connected++; s.destroy(); });
          s.on('error', () => {});
        }
      }
      setImmediate(round);
    };
    round();`;
  return spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'], ...ATTACKER });
}

describe('admin socket hardening', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const tempDir = async (): Promise<string> => {
    const d = await mkdtemp('/tmp/spiffe-agent-it-');
    dirs.push(d);
    return d;
  };

  it('never lets another user connect to the admin socket while it is being created, even under umask 000', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = await tempDir();
      const adminSocket = join(dir, 'admin', 'admin.sock');
      await mkdir(join(dir, 'admin'), { recursive: true, mode: 0o755 });
      const poller = adminPoller(adminSocket);
      let out = '';
      poller.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      while (!out.includes('polling')) await sleep(20);
      const agent = await AgentProcess.start({ dir, entries: [], umask: 0o000, agent: `admin_socket_path = "${adminSocket}"` });
      await sleep(200);
      poller.kill('SIGTERM');
      await waitExit(poller);
      await agent.stop();
      const seen = JSON.parse(out.split('\n').find((l) => l.startsWith('{')) ?? '{}') as { modes?: string[]; connected?: number };
      expect(seen).toEqual({ modes: ['0o770'], connected: 0 });
    }
  }, 90_000);

  it('refuses an admin socket whose directory is a symlink into the public socket directory', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'public'), { mode: 0o755 });
    await symlink(join(dir, 'public'), join(dir, 'looks-private'));
    await expect(AgentProcess.start({ dir, entries: [], agent: `admin_socket_path = "${dir}/looks-private/admin.sock"` })).rejects.toThrow(
      /looks-private\/admin\.sock \(through symlinks, it resolves to .*\/public\) is in or under .*admin socket cannot be in the same directory/,
    );
  });

  it('keeps writing audit records after the Logger API sets the level to ERROR or FATAL', async () => {
    const dir = await tempDir();
    const adminSocket = join(dir, 'admin', 'admin.sock');
    const agent = await AgentProcess.start({
      dir,
      entries: [uidEntry('/operator', OPERATOR.uid), uidEntry('/workload', WORKLOAD.uid)],
      agent: `admin_socket_path = "${adminSocket}"\nauthorized_delegates = ["spiffe://${TD}/operator"]`,
    });
    try {
      for (const level of ['ERROR', 'FATAL']) {
        const child = spawn(process.execPath, [CLIENT, adminSocket, 'Logger', 'SetLogLevel', JSON.stringify({ new_level: level })], { stdio: ['ignore', 'pipe', 'pipe'], ...OPERATOR });
        const set = await collect(child, 15_000);
        expect(set.stdout).toContain(`"current_level":"${level}"`);
        const mark = agent.logs.length;
        const fetched = await cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath], WORKLOAD);
        expect(fetched.code).toBe(0);
        await agent.logged((l) => l.includes('msg="Workload API decision"') && l.includes('decision=granted') && l.includes(`uid=${WORKLOAD.uid}`), 30_000, `the audit record at ${level}`, mark);
        // The change itself is on record too, whatever the level it set.
        expect(agent.logs.some((l) => l.includes('Log level changed through the Logger API') && l.includes(`to=${level.toLowerCase()}`))).toBe(true);
      }
    } finally {
      await agent.stop();
    }
  });
});
