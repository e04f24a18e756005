/**
 * systemd's daemon protocol: passed descriptors read from the kernel (real sockets), and sd_notify
 * datagrams received by a real AF_UNIX datagram socket (bound here through koffi, as systemd's is).
 */
import koffi from 'koffi';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSdCalls, passedFds } from '../../../src/proc/sd-daemon.js';
import { SdNotifier, watchdogIntervalMs } from '../../../src/proc/sd-notifier.js';
import { SocketActivation } from '../../../src/endpoints/socket-activation.js';
import type { SdCalls, SocketFacts } from '../../../src/proc/sd-daemon.js';
import type { Logger } from '../../../src/telemetry/logger.js';

const dir = mkdtempSync('/tmp/sd-daemon-test-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fdOf = (s: Server): number => (s as unknown as { _handle: { fd: number } })._handle.fd;
const listening = (path: string): Promise<Server> => new Promise((r) => { const s = createServer(); s.listen(path, () => r(s)); });

describe('passedFds', () => {
  it.each([
    [{}, 100, []],
    [{ LISTEN_FDS: '1', LISTEN_PID: '100' }, 100, [{ fd: 3, name: 'unknown' }]],
    [{ LISTEN_FDS: '2', LISTEN_PID: '100', LISTEN_FDNAMES: 'a:b' }, 100, [{ fd: 3, name: 'a' }, { fd: 4, name: 'b' }]],
    [{ LISTEN_FDS: '1', LISTEN_PID: '99' }, 100, []],
  ])('%j for pid %d gives %j', (env, pid, want) => {
    expect(passedFds(env, pid)).toEqual(want);
  });
  it('refuses a count that is not a number and names that do not match the count', () => {
    expect(() => passedFds({ LISTEN_FDS: 'x' }, 1)).toThrow(/LISTEN_FDS="x"/);
    expect(() => passedFds({ LISTEN_FDS: '2', LISTEN_FDNAMES: 'a' }, 1)).toThrow(/names 1 descriptors but LISTEN_FDS=2/);
  });
});

describe('describe() reads what a descriptor is from the kernel', () => {
  it('a listening Unix socket, with its path', async () => {
    const path = join(dir, 'l.sock');
    const s = await listening(path);
    try {
      expect(loadSdCalls().describe(fdOf(s))).toEqual({ isSocket: true, family: 1, stream: true, listening: true, path });
    } finally {
      s.close();
    }
  });
  it('a connected socket is not listening; a file is not a socket', async () => {
    const path = join(dir, 'c.sock');
    const s = await listening(path);
    const c = connect(path);
    await new Promise((r) => c.once('connect', r));
    try {
      const fd = (c as unknown as { _handle: { fd: number } })._handle.fd;
      expect(loadSdCalls().describe(fd)).toMatchObject({ isSocket: true, family: 1, listening: false });
      const f = openSync(join(dir, 'file'), 'w');
      expect(loadSdCalls().describe(f)).toEqual({ isSocket: false });
      closeSync(f);
    } finally {
      c.destroy();
      s.close();
    }
  });
});

describe('SocketActivation', () => {
  const fake = (facts: SocketFacts): (() => SdCalls) => () => ({ describe: () => facts, setCloexec: () => undefined, notify: () => undefined });
  const env = { LISTEN_FDS: '1', LISTEN_PID: '7', LISTEN_FDNAMES: 'workload-api' };
  it.each([
    [{ isSocket: false }, /fd 3 \(name "workload-api"\), which is not a socket/],
    [{ isSocket: true, family: 2, stream: true, listening: true }, /not a Unix socket/],
    [{ isSocket: true, family: 1, stream: false, listening: true, path: '/x' }, /not a stream socket/],
    [{ isSocket: true, family: 1, stream: true, listening: false, path: '/x' }, /not listening/],
    [{ isSocket: true, family: 1, stream: true, listening: true, path: '@abs' }, /abstract name @abs/],
  ])('refuses %j', (facts, message) => {
    expect(() => SocketActivation.fromEnv(env, 7, fake(facts))).toThrow(message);
  });
  it('hands the socket to the listener bound to its path, and refuses one no socket claims', () => {
    const ok = { isSocket: true, family: 1, stream: true, listening: true, path: '/run/spire-agent/public/api.sock' };
    const a = SocketActivation.fromEnv(env, 7, fake(ok))!;
    expect(a.take('/elsewhere.sock')).toBeUndefined();
    expect(() => a.checkAllClaimed(['/elsewhere.sock'])).toThrow(/fd 3 "workload-api" bound to \/run\/spire-agent\/public\/api.sock, which no configured socket uses/);
    expect(a.take('/run/spire-agent/public/api.sock')).toEqual({ fd: 3, name: 'workload-api', path: ok.path });
    expect(() => a.checkAllClaimed([])).not.toThrow();
    expect(SocketActivation.fromEnv({}, 7, fake(ok))).toBeUndefined();
  });
});

describe('sd_notify', () => {
  const lib = koffi.load('libc.so.6');
  const socket = lib.func('int socket(int, int, int)');
  const bind = lib.func('int bind(int, const void *, uint32_t)');
  const recv = lib.func('long recv(int, _Out_ uint8_t *buf, unsigned long, int)');
  const close = lib.func('int close(int)');
  const MSG_DONTWAIT = 0x40;

  /** A datagram socket where systemd's NOTIFY_SOCKET would be. */
  function receiver(path: string): { read(): string[]; close(): void } {
    const fd = socket(1, 2, 0) as number;
    const addr = Buffer.alloc(2 + Buffer.byteLength(path) + 1);
    addr.writeUInt16LE(1, 0);
    addr.write(path, 2);
    expect(bind(fd, addr, addr.length)).toBe(0);
    return {
      read() {
        const out: string[] = [];
        for (;;) {
          const buf = Buffer.alloc(4096);
          const n = Number(recv(fd, buf, buf.length, MSG_DONTWAIT));
          if (n < 0) return out;
          out.push(buf.subarray(0, n).toString());
        }
      },
      close: () => void close(fd),
    };
  }
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, m: string) => warnings.push(m) } as unknown as Logger;

  it('sends READY=1, WATCHDOG=1 at half WATCHDOG_USEC, then STOPPING=1', async () => {
    const path = join(dir, 'notify');
    const r = receiver(path);
    try {
      const n = new SdNotifier({ env: { NOTIFY_SOCKET: path, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid) }, pid: process.pid, log, calls: loadSdCalls });
      n.ready('serving');
      await new Promise((res) => setTimeout(res, 250));
      n.stopping();
      const got = r.read();
      expect(got[0]).toBe(`READY=1\nSTATUS=serving\nMAINPID=${process.pid}`);
      expect(got.filter((m) => m === 'WATCHDOG=1').length).toBeGreaterThanOrEqual(1);
      expect(got.at(-1)).toBe('STOPPING=1\nSTATUS=Shutting down');
      expect(warnings).toEqual([]);
    } finally {
      r.close();
    }
  });

  it('does nothing without NOTIFY_SOCKET, and warns once when the socket is not there', () => {
    let loaded = false;
    new SdNotifier({ env: {}, pid: 1, log, calls: () => ((loaded = true), loadSdCalls()) }).ready('x');
    expect(loaded).toBe(false);
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: join(dir, 'missing') }, pid: 1, log, calls: loadSdCalls });
    n.ready('x');
    n.stopping();
    expect(warnings).toEqual(['Could not notify systemd (sd_notify); with Type=notify the unit will not count as started']);
  });

  it('watchdog interval: half of WATCHDOG_USEC, none for another pid or none set', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '60000000' }, 5)).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '6' }, 5)).toBeUndefined();
    expect(watchdogIntervalMs({}, 5)).toBeUndefined();
  });
});
