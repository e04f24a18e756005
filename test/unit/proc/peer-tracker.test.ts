import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, chmodSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadLibc } from '../../../src/proc/libc.js';
import { PeerTracker } from '../../../src/proc/peer-tracker.js';
import { ProcReader } from '../../../src/proc/proc-reader.js';
import { connectAs, waitExit } from '../../helpers/processes.js';
import { runCompiledAs, setprivArgv } from '../../helpers/privileges.js';

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

  it('without a pidfd (kernel < 5.3), refuses a caller whose start time changed (the pid now belongs to another process)', async () => {
    const { socket, child } = await acceptOne({});
    const real = new ProcReader();
    let calls = 0;
    const shifting = Object.assign(Object.create(real) as ProcReader, {
      startTime: async (pid: number) => (await real.startTime(pid)) + BigInt(calls++ === 0 ? 0 : 1),
    });
    const noPidfd = { ...libc, pidfdOpen: () => -1 };
    const caller = await new PeerTracker(noPidfd, shifting).track(socket);
    await expect(caller.checkAlive()).rejects.toThrow(/pid reused/);
    expect(calls).toBe(2);
    caller.close();
    // With a pidfd that has not exited, the pid cannot have been reused: the start time is read
    // neither at accept nor at the check.
    calls = 0;
    const pinned = await new PeerTracker(libc, shifting).track(socket);
    expect(pinned.startTime).toBeUndefined();
    await pinned.checkAlive();
    expect(calls).toBe(0);
    pinned.close();
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
    // A zombie once its other threads are gone too: until then the kernel still counts the thread
    // group as exiting, and its pidfd (what checkAlive asks first) does not report it yet.
    while (!/\) Z /.test(readFileSync(`/proc/${caller.pid}/stat`, 'utf8')) || readdirSync(`/proc/${caller.pid}/task`).length > 1) {
      if (Date.now() > deadline) throw new Error('the caller never became a zombie');
      await new Promise((r) => setTimeout(r, 50));
    }
    await expect(caller.checkAlive()).rejects.toMatchObject({ code: 'caller_gone', message: expect.stringMatching(/process exited/) });
    caller.close();
    socket.destroy();
    holder.kill('SIGKILL');
  });
});

/**
 * The real tracker (compiled: run `npm run build` first) in a child process that runs as the
 * agent would outside root: its own uid, no CAP_KILL, optionally one capability and a /proc
 * mounted with hidepid (in a private mount namespace, so nothing outside the child sees it).
 */
class Checker {
  private readonly events: Record<string, unknown>[] = [];
  private waiters: (() => void)[] = [];
  readonly socketPath: string;
  private readonly child: ChildProcess;

  constructor(o: { uid: number; caps?: string[]; hidepid?: 'invisible' | 'noaccess' }) {
    const dir = mkdtempSync(join(tmpdir(), 'peer-check-'));
    chownSync(dir, o.uid, o.uid);
    chmodSync(dir, 0o755);
    this.socketPath = join(dir, 's.sock');
    const script = join(dirname(fileURLToPath(import.meta.url)), '../../helpers/peer-check.mjs');
    const argv = [...setprivArgv({ uid: o.uid, gid: o.uid, caps: o.caps ?? [] }), process.execPath, script, this.socketPath];
    const cmd = o.hidepid
      ? ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `mount -t proc -o hidepid=${o.hidepid} proc /proc && exec "$@"`, 'sh', ...argv]
      : argv;
    this.child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '';
    this.child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        this.events.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
        buf = buf.slice(i + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Waits for (and consumes) the first event that matches. */
  async next(match: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((e) => Object.entries(match).every(([k, v]) => e[k] === v));
      if (i >= 0) return this.events.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no event ${JSON.stringify(match)}; unconsumed: ${JSON.stringify(this.events)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }

  /** One round of checkAlive() on every tracked caller: pid → its result. */
  async check(): Promise<Map<number, Record<string, unknown>>> {
    this.child.stdin!.write('check\n');
    await this.next({ event: 'checked' });
    const out = new Map<number, Record<string, unknown>>();
    for (let i = this.events.findIndex((e) => e.event === 'check'); i >= 0; i = this.events.findIndex((e) => e.event === 'check')) {
      const e = this.events.splice(i, 1)[0]!;
      out.set(e.pid as number, e);
    }
    return out;
  }

  async caller(ids: { uid?: number; gid?: number }): Promise<ChildProcess> {
    const child = connectAs(this.socketPath, ids);
    await this.next({ event: 'tracked', pid: child.pid });
    return child;
  }

  stop(): void {
    this.child.stdin!.end();
  }
}

describe('a tracker running as a non-root uid without CAP_KILL answers as root would', () => {
  const AGENT_UID = 4300;
  const children: ChildProcess[] = [];
  let checker: Checker | undefined;
  afterEach(() => {
    checker?.stop();
    checker = undefined;
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });

  async function start(o: ConstructorParameters<typeof Checker>[0]): Promise<Checker> {
    checker = new Checker(o);
    await checker.next({ event: 'listening' });
    return checker;
  }

  it('keeps callers of other uids, root included, alive until they exit (pidfd_send_signal said EPERM: "exited")', async () => {
    const c = await start({ uid: AGENT_UID });
    const other = await c.caller({ uid: 4242, gid: 4343 });
    const root = await c.caller({});
    children.push(other, root);
    let r = await c.check();
    expect(r.get(other.pid!)).toMatchObject({ ok: true });
    expect(r.get(root.pid!)).toMatchObject({ ok: true });
    other.kill('SIGKILL');
    await waitExit(other);
    r = await c.check();
    expect(r.get(other.pid!)).toMatchObject({ code: 'caller_gone', message: expect.stringMatching(/process exited/) });
    expect(r.get(root.pid!)).toMatchObject({ ok: true });
  });

  it.each(['invisible', 'noaccess'] as const)(
    'says which privilege is missing when /proc is mounted hidepid=%s, and still sees the caller exit',
    async (hidepid) => {
      const c = await start({ uid: AGENT_UID, hidepid });
      const other = await c.caller({ uid: 4242, gid: 4343 });
      const own = await c.caller({ uid: AGENT_UID, gid: AGENT_UID });
      children.push(other, own);
      let r = await c.check();
      if (hidepid === 'invisible') {
        expect(r.get(other.pid!)).toMatchObject({ code: 'proc_denied', message: expect.stringMatching(/hidepid.*CAP_SYS_PTRACE/) });
        expect(r.get(other.pid!)!.message).not.toMatch(/exited/);
      } else {
        // noaccess shows /proc/<pid> itself, with its owner: with the live pidfd that is all the check
        // needs. What the agent may not read (status, exe) is said by workload attestation instead.
        expect(r.get(other.pid!)).toMatchObject({ ok: true });
      }
      expect(r.get(own.pid!)).toMatchObject({ ok: true });
      other.kill('SIGKILL');
      await waitExit(other);
      r = await c.check();
      expect(r.get(other.pid!)).toMatchObject({ code: 'caller_gone', message: expect.stringMatching(/process exited/) });
    },
  );

  it('sees through hidepid with CAP_SYS_PTRACE, as the systemd unit grants it', async () => {
    const c = await start({ uid: AGENT_UID, hidepid: 'invisible', caps: ['sys_ptrace'] });
    const other = await c.caller({ uid: 4242, gid: 4343 });
    children.push(other);
    expect((await c.check()).get(other.pid!)).toMatchObject({ ok: true });
  });

  it('says the agent is out of file descriptors, not that the caller exited, when it cannot open /proc', async () => {
    // The child connects to itself, so its caller is alive for sure, then uses up its descriptors.
    const r = await runCompiledAs(
      { uid: AGENT_UID, gid: AGENT_UID, caps: [] },
      `const fs = await import('node:fs'); const net = await import('node:net');
       const { loadLibc } = await load('proc/libc.js');
       const { PeerTracker } = await load('proc/peer-tracker.js');
       const { ProcReader } = await load('proc/proc-reader.js');
       const path = fs.mkdtempSync('/tmp/peer-fds-') + '/s.sock';
       const accepted = new Promise((r) => net.createServer(r).listen(path, () => net.connect(path)));
       const socket = await accepted;
       // Without a pidfd (kernel < 5.3) the start time must be read again, which needs a descriptor;
       // with one, the check opens nothing (a stat of /proc/<pid> only).
       const caller = await new PeerTracker({ ...loadLibc(), pidfdOpen: () => -1 }, new ProcReader()).track(socket);
       const pinned = await new PeerTracker(loadLibc(), new ProcReader()).track(socket);
       await caller.checkAlive();
       const held = [];
       try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch {}
       const res = {};
       try { await caller.checkAlive(); res.ok = true; } catch (e) { res.code = e.code; res.message = e.message; }
       try { await pinned.checkAlive(); res.pinned = 'ok'; } catch (e) { res.pinned = e.code; }
       out(res);
       process.exit(0);`,
    );
    expect(r).toMatchObject({ code: 'fd_exhausted', message: expect.stringMatching(/out of file descriptors/), pinned: 'ok' });
  });
});
