import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConnectionGuard, ListenQueuePump, RefusalLog, checkFdHeadroom, listenBacklog } from '../../../src/endpoints/accept-guard.js';
import { loadLibc } from '../../../src/proc/libc.js';
import { FdExhaustedError, PeerError } from '../../../src/proc/errors.js';
import type { Logger } from '../../../src/telemetry/logger.js';
import { FakeClock } from '../../helpers/fake-clock.js';

function recordingLog() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at =
    (level: string) =>
    (obj: Record<string, unknown> | string, msg?: string): void => {
      lines.push({ level, obj: typeof obj === 'string' ? {} : obj, msg: msg ?? String(obj) });
    };
  const log: Logger = { child: () => log, trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { log, lines };
}

describe('ConnectionGuard', () => {
  it('releases everything it owns, newest first, when the connection closes', async () => {
    const socket = new Socket();
    const guard = new ConnectionGuard(socket);
    const order: string[] = [];
    guard.own(() => order.push('pidfd'));
    guard.own(() => order.push('socketpair'));
    socket.destroy();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['socketpair', 'pidfd']);
    expect(guard.closed).toBe(true);
  });

  it('releases at once what is handed over after the connection is gone', async () => {
    const socket = new Socket();
    const guard = new ConnectionGuard(socket);
    socket.destroy();
    await new Promise((r) => setImmediate(r));
    let released = 0;
    guard.own(() => released++);
    expect(released).toBe(1);
  });

  it('keeps releasing when one release throws', () => {
    const guard = new ConnectionGuard(new Socket());
    let released = 0;
    guard.own(() => released++);
    guard.own(() => {
      throw new Error('EBADF');
    });
    guard.release();
    guard.release();
    expect(released).toBe(1);
  });
});

describe('RefusalLog', () => {
  it('logs running out of fds once per interval, then a summary with the count', () => {
    const { log, lines } = recordingLog();
    const clock = new FakeClock();
    const r = new RefusalLog(log, clock, 60_000);
    for (let i = 0; i < 500; i++) r.refused(new FdExhaustedError('endpoints: socketpair', 24));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', msg: expect.stringMatching(/out of file descriptors/) });
    clock.advance(60_000);
    r.refused(new FdExhaustedError('endpoints: socketpair', 24));
    expect(lines).toHaveLength(2);
    expect(lines[1]!.obj.count).toBe(499);
  });

  it('treats accept(2) EMFILE like any other fd exhaustion and a vanished caller as debug', () => {
    const { log, lines } = recordingLog();
    const r = new RefusalLog(log, new FakeClock());
    r.refused(Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }));
    r.refused(new PeerError('caller_gone', 'peertracker: caller pid 7 exited before it could be tracked'));
    r.refused(new PeerError('caller_gone', 'peertracker: caller pid 8 exited before it could be tracked'));
    expect(lines.map((l) => l.level)).toEqual(['error', 'debug']);
  });
});

describe('fd headroom and backlog', () => {
  it('refuses a connection whose fd leaves less than the reserve', () => {
    const fake = (fd: number) => ({ _handle: { fd } }) as unknown as Socket;
    expect(() => checkFdHeadroom(fake(900), 1024)).not.toThrow();
    expect(() => checkFdHeadroom(fake(1000), 1024)).toThrow(expect.objectContaining({ code: 'fd_exhausted' }));
  });

  it('listens with the kernel maximum backlog', () => {
    expect(listenBacklog('/nonexistent/somaxconn')).toBe(4096);
    expect(listenBacklog()).toBeGreaterThan(511);
  });
});

describe('ListenQueuePump', () => {
  /**
   * A real listening socket whose queue is filled by a child process while this thread is
   * blocked in execFileSync, so libuv has had no chance to accept: what the pump takes is
   * exactly what the kernel queued.
   */
  async function queued(n: number) {
    const dir = mkdtempSync(join(tmpdir(), 'pump-'));
    const path = join(dir, 's.sock');
    const viaLibuv: Socket[] = [];
    const server = createServer({ pauseOnConnect: true }, (s) => viaLibuv.push(s));
    await new Promise<void>((r) => server.listen({ path, backlog: 64 }, r));
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const child = `const net = require('node:net'); let open = 0;
      for (let i = 0; i < ${n}; i++) { const c = net.connect(${JSON.stringify(path)}, () => { c.write('hello ' + i); if (++open === ${n}) setTimeout(() => process.exit(0), 50); }); }`;
    const pid = (): void => void execFileSync(process.execPath, ['-e', child], { timeout: 20_000 });
    return { path, fd, server, viaLibuv, fill: pid, done: () => new Promise<void>((r) => server.close(() => (rmSync(dir, { recursive: true, force: true }), r()))) };
  }

  it('takes every queued connection before libuv does, paused: nothing is read until the caller is identified', async () => {
    const q = await queued(5);
    const taken: Socket[] = [];
    const pump = new ListenQueuePump(q.fd, loadLibc(), (s) => taken.push(s), (err) => { throw err; });
    q.fill();
    expect(pump.drain()).toBe(5);
    expect(pump.taken).toBe(5);
    expect(pump.drain()).toBe(0); // the queue is empty: one failed accept4, nothing else
    // Identity still comes from the kernel, on the pumped socket's fd (the client has exited since).
    const creds = taken.map((s) => loadLibc().peerCred((s as unknown as { _handle: { fd: number } })._handle.fd));
    expect(creds.every((c) => c.uid === process.getuid!() && c.pid > 0 && c.pid !== process.pid)).toBe(true);
    let early = 0;
    for (const s of taken) s.on('data', () => early++);
    await new Promise((r) => setTimeout(r, 50));
    expect(early).toBe(0);
    const got = await Promise.all(taken.map((s) => new Promise<string>((r) => { let b = ''; s.setEncoding('utf8').on('data', (d) => (b += d)).on('end', () => r(b)); s.resume(); })));
    expect(got.sort()).toEqual(['hello 0', 'hello 1', 'hello 2', 'hello 3', 'hello 4']);
    expect(q.viaLibuv).toHaveLength(0);
    await q.done();
  });

  it('pumps at most once per interval through maybe(), never after stop(), and takes at most `max` per pump', async () => {
    const q = await queued(6);
    let now = 0;
    const taken: Socket[] = [];
    const pump = new ListenQueuePump(q.fd, loadLibc(), (s) => taken.push(s), (err) => { throw err; }, () => now, 1, 4);
    q.fill();
    expect(pump.maybe()).toBe(4);
    expect(pump.maybe()).toBe(0); // within the interval
    now += 1;
    expect(pump.maybe()).toBe(2);
    pump.stop();
    q.fill();
    now += 5;
    expect(pump.maybe()).toBe(0);
    expect(pump.drain()).toBe(0);
    for (const s of taken) s.destroy();
    await new Promise((r) => setTimeout(r, 20)); // libuv accepts what the stopped pump left
    for (const s of q.viaLibuv) s.destroy();
    expect(q.viaLibuv).toHaveLength(6);
    await q.done();
  });

  it('reports accept4 failures (fd exhaustion) to the refusal path and keeps going later', () => {
    const errors: unknown[] = [];
    let fail = true;
    const sys = { accept: () => { if (fail) throw new FdExhaustedError('endpoints: accept', 24); return -1; }, close: () => {} };
    const pump = new ListenQueuePump(99, sys, () => {}, (err) => errors.push(err));
    expect(pump.drain()).toBe(0);
    expect(errors[0]).toBeInstanceOf(FdExhaustedError);
    fail = false;
    expect(pump.drain()).toBe(0);
    expect(errors).toHaveLength(1);
  });
});
