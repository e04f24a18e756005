import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionGuard, RefusalLog, checkFdHeadroom, listenBacklog } from '../../../src/endpoints/accept-guard.js';
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
