import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadLibc } from '../../../src/proc/libc.js';
import { PeerTracker } from '../../../src/proc/peer-tracker.js';
import { ProcReader } from '../../../src/proc/proc-reader.js';
import { connectAs, waitExit } from '../../helpers/processes.js';

const libc = loadLibc();
let server: Server | undefined;

afterEach(() => server?.close());

async function acceptOne(ids: { uid?: number; gid?: number }): Promise<{ socket: Socket; child: ReturnType<typeof connectAs> }> {
  const path = join(mkdtempSync(join(tmpdir(), 'peer-')), 's.sock');
  const accepted = new Promise<Socket>((resolve) => {
    server = createServer(resolve);
    server.listen(path);
  });
  await new Promise((r) => server!.once('listening', r));
  const { chmodSync } = await import('node:fs');
  chmodSync(join(path, '..'), 0o755);
  chmodSync(path, 0o777);
  const child = connectAs(path, ids);
  return { socket: await accepted, child };
}

describe('peer tracking', () => {
  it('learns pid, uid and gid of a real process under another uid from the kernel', async () => {
    const { socket, child } = await acceptOne({ uid: 4242, gid: 4343 });
    const caller = await new PeerTracker(libc, new ProcReader()).track(socket);
    expect(caller).toMatchObject({ pid: child.pid, uid: 4242, gid: 4343 });
    await caller.checkAlive();
    child.kill('SIGKILL');
    await waitExit(child);
    await expect(caller.checkAlive()).rejects.toMatchObject({ code: 'caller_gone' });
    caller.close();
    socket.destroy();
  });

  it('refuses a caller whose start time changed (the pid now belongs to another process)', async () => {
    const { socket, child } = await acceptOne({});
    const real = new ProcReader();
    let calls = 0;
    const shifting = Object.assign(Object.create(real) as ProcReader, {
      startTime: async (pid: number) => (await real.startTime(pid)) + BigInt(calls++ === 0 ? 0 : 1),
    });
    const caller = await new PeerTracker(libc, shifting).track(socket);
    await expect(caller.checkAlive()).rejects.toThrow(/pid reused/);
    child.kill('SIGKILL');
    caller.close();
    socket.destroy();
  });

  it('fails closed once the connection is closed', async () => {
    const { socket, child } = await acceptOne({});
    const caller = await new PeerTracker(libc, new ProcReader()).track(socket);
    // Held for the life of the connection: methods shared on a prototype, not closures per caller.
    expect(Object.hasOwn(caller, 'checkAlive') || Object.hasOwn(caller, 'close')).toBe(false);
    caller.close();
    caller.close();
    await expect(caller.checkAlive()).rejects.toThrow(/connection closed/);
    child.kill('SIGKILL');
    socket.destroy();
  });

  it('counts an exited but unreaped caller (a zombie) as gone, though its pid still takes signals', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'peer-')), 's.sock');
    const accepted = new Promise<Socket>((resolve) => {
      server = createServer(resolve);
      server.listen(path);
    });
    await new Promise((r) => server!.once('listening', r));
    // The connecting process's parent exec's `sleep`, which never reaps it: after the
    // connecting process exits it stays a zombie.
    const code = `require('net').connect(${JSON.stringify(path)},()=>setTimeout(()=>process.exit(0),300))`;
    const holder = spawn('sh', ['-c', `"${process.execPath}" -e "${code.replace(/"/g, '\\"')}" & exec sleep 30`], { stdio: 'ignore' });
    const socket = await accepted;
    const caller = await new PeerTracker(libc, new ProcReader()).track(socket);
    await caller.checkAlive();
    const deadline = Date.now() + 10_000;
    while (!/\) Z /.test(readFileSync(`/proc/${caller.pid}/stat`, 'utf8'))) {
      if (Date.now() > deadline) throw new Error('the caller never became a zombie');
      await new Promise((r) => setTimeout(r, 50));
    }
    await expect(caller.checkAlive()).rejects.toMatchObject({ code: 'caller_gone', message: expect.stringMatching(/process exited/) });
    caller.close();
    socket.destroy();
    holder.kill('SIGKILL');
  });
});
