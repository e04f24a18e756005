/**
 * The systemd attestor against a REAL dbus-daemon on a private socket, with a FAKE systemd1
 * Manager on it (test/helpers/fake-systemd-bus.ts: systemd cannot run as PID 1 here).
 * Needs dbus-daemon (Debian package `dbus`); skipped with a message when it is missing, failed in CI.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PluginConfig } from '../../../../src/config/types.js';
import { SystemdAttestor, createSystemdAttestor, parseSystemdConfig, SystemdAttestorError } from '../../../../src/attestation/workload/systemd/index.js';
import type { Logger } from '../../../../src/telemetry/logger.js';
import { FakeSystemd, PrivateBus, findDbusDaemon } from '../../../helpers/fake-systemd-bus.js';
import { sleeper, waitExit } from '../../../helpers/processes.js';
import { requireTool } from '../../../helpers/require-tool.js';

const daemon = findDbusDaemon();
const noDbus = requireTool('dbus-daemon', daemon !== undefined, 'the systemd attestor tests run a private bus; apt-get install -y dbus');

function plugin(data: Record<string, unknown>): PluginConfig {
  return { type: 'WorkloadAttestor', name: 'systemd', enabled: true, data, dataFile: undefined, path: 'plugins.WorkloadAttestor.systemd' };
}

interface LogLine { level: string; obj: unknown; msg: string | undefined }
function captureLogger(lines: LogLine[] = []): Logger & { lines: LogLine[] } {
  const at = (level: string) => (obj: Record<string, unknown> | string, msg?: string) => void lines.push({ level, obj, msg });
  const log = { lines, child: () => log, trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return log;
}

const NGINX = { id: 'nginx.service', fragmentPath: '/lib/systemd/system/nginx.service' };
const never = (): AbortSignal => new AbortController().signal;

async function rejection(p: Promise<unknown>): Promise<SystemdAttestorError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(SystemdAttestorError);
  return err as SystemdAttestorError;
}

describe.skipIf(noDbus)('systemd workload attestor on a real dbus-daemon', () => {
  let bus: PrivateBus;
  let fake: FakeSystemd;
  let child: ChildProcess;
  let pid: number;
  const attestors: SystemdAttestor[] = [];

  function attestor(opts: { timeoutMs?: number } = {}, log = captureLogger()): SystemdAttestor {
    const a = new SystemdAttestor(parseSystemdConfig(plugin({ system_bus_address: bus.address }), {}), { log, ...opts });
    attestors.push(a);
    return a;
  }

  beforeAll(async () => {
    bus = await PrivateBus.start(daemon!);
    child = sleeper();
    pid = child.pid!;
  });

  beforeEach(async () => {
    fake = await FakeSystemd.start(bus.address);
    fake.setUnit(pid, NGINX);
  });

  afterEach(async () => {
    for (const a of attestors.splice(0)) await a.close();
    await fake.stop();
  });

  afterAll(async () => {
    child.kill();
    await waitExit(child);
    await bus.stop();
  });

  it('returns id and fragment_path for a process in a unit', async () => {
    const a = createSystemdAttestor(plugin({ system_bus_address: bus.address }), { log: captureLogger(), env: {} });
    expect(a.name).toBe('systemd');
    expect(await a.attest(pid, never())).toEqual(['id:nginx.service', 'fragment_path:/lib/systemd/system/nginx.service']);
    await a.close!();
  });

  it('reads the bus address from DBUS_SYSTEM_BUS_ADDRESS when plugin_data has none', async () => {
    const a = createSystemdAttestor(plugin({}), { log: captureLogger(), env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address } });
    expect(await a.attest(pid, never())).toEqual(['id:nginx.service', 'fragment_path:/lib/systemd/system/nginx.service']);
    await a.close!();
  });

  it('emits fragment_path even when it is empty, as spire-agent does (transient units)', async () => {
    fake.setUnit(pid, { id: 'session-3.scope', fragmentPath: '' });
    expect(await attestor().attest(pid, never())).toEqual(['id:session-3.scope', 'fragment_path:']);
  });

  it.each([
    { name: 'an unknown pid', setup: () => undefined, target: (): number => 999_999, dbusErrorName: 'org.freedesktop.systemd1.NoUnitForPID',
      message: /^systemd: failed to get unit of pid 999999: org\.freedesktop\.systemd1\.NoUnitForPID: PID 999999 does not belong to any loaded unit\.$/ },
    { name: 'systemd not on the bus', setup: () => fake.stop(), target: (): number => pid, dbusErrorName: 'org.freedesktop.DBus.Error.ServiceUnknown',
      message: /^systemd: failed to get unit of pid \d+: org\.freedesktop\.DBus\.Error\.ServiceUnknown: / },
  ])('turns the D-Bus error for $name into a typed attestation error', async ({ setup, target, dbusErrorName, message }) => {
    await setup();
    const err = await rejection(attestor().attest(target(), never()));
    expect({ code: err.code, dbusErrorName: err.dbusErrorName }).toEqual({ code: 'systemd_lookup_failed', dbusErrorName });
    expect(err.message).toMatch(message);
  });

  it('rejects a property that is not a string', async () => {
    fake.setUnit(pid, { ...NGINX, idSignature: 'u' });
    const err = await rejection(attestor().attest(pid, never()));
    expect(err.code).toBe('systemd_bad_reply');
    expect(err.message).toMatch(/^systemd: pid \d+: property Id of \/org\/freedesktop\/systemd1\/unit\/nginx_2eservice is not a string \(type "u"\)$/);
  });

  it.each([0, -1, 1.5, 2 ** 32])('refuses pid %s without asking the bus', async (bad) => {
    const err = await rejection(attestor().attest(bad, never()));
    expect(err.code).toBe('systemd_invalid_pid');
    expect(fake.callers).toEqual([]);
  });

  it('fails clearly when the bus is not reachable', async () => {
    const a = new SystemdAttestor(parseSystemdConfig(plugin({ system_bus_address: 'unix:path=/nonexistent/bus' }), {}), { log: captureLogger() });
    attestors.push(a);
    const err = await rejection(a.attest(pid, never()));
    expect(err.code).toBe('systemd_bus_unavailable');
    expect(err.message).toMatch(/^systemd: cannot connect to the system D-Bus at unix:path=\/nonexistent\/bus \(.*ENOENT.*\); check that dbus is running/);
  });

  it('times out a call systemd does not answer, and keeps working afterwards', async () => {
    // The reply is held until after the timeout: the attestor cannot have waited for it.
    const held = fake.hold(pid);
    const a = attestor({ timeoutMs: 150 });
    const err = await rejection(a.attest(pid, never()));
    expect(err.code).toBe('systemd_timeout');
    expect(err.message).toMatch(/^systemd: pid \d+: no reply to org\.freedesktop\.systemd1\.Manager\.GetUnitByPID .* within 150 ms/);
    held.release();
    await held.sent; // the late reply is on its way, ahead of the next call's: it must be ignored
    expect(await a.attest(pid, never())).toEqual(['id:nginx.service', 'fragment_path:/lib/systemd/system/nginx.service']);
    expect(a.connectionsOpened).toBe(1);
  });

  it('honours the AbortSignal', async () => {
    // The reply is held until the call has been aborted: the attestor cannot have waited for it.
    const held = fake.hold(pid);
    const a = attestor();
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error('caller went away')), 50);
    const err = await rejection(a.attest(pid, ctl.signal));
    expect(err.code).toBe('systemd_aborted');
    held.release();
    const pre = new AbortController();
    pre.abort();
    expect((await rejection(a.attest(pid, pre.signal))).code).toBe('systemd_aborted');
  });

  it('reconnects after the bus restarts', async () => {
    const log = captureLogger();
    const a = attestor({}, log);
    const want = ['id:nginx.service', 'fragment_path:/lib/systemd/system/nginx.service'];
    expect(await a.attest(pid, never())).toEqual(want);

    await bus.down();
    expect((await rejection(a.attest(pid, never()))).code).toBe('systemd_bus_unavailable');
    await bus.up();
    fake = await FakeSystemd.start(bus.address);
    fake.setUnit(pid, NGINX);
    expect(await a.attest(pid, never())).toEqual(want);
    expect(a.connectionsOpened).toBe(2);
    expect(log.lines.some((l) => l.level === 'warn' && /connection lost/.test(l.msg ?? ''))).toBe(true);

    // Restart again with no failed attempt in between: the first call after it must already succeed.
    await fake.stop();
    await bus.down();
    await bus.up();
    fake = await FakeSystemd.start(bus.address);
    fake.setUnit(pid, NGINX);
    expect(await a.attest(pid, never())).toEqual(want);
    expect(a.connectionsOpened).toBe(3);
  });

  it('shares one connection between 50 concurrent attestations', async () => {
    const a = attestor();
    const results = await Promise.all(Array.from({ length: 50 }, () => a.attest(pid, never())));
    expect(new Set(results.map((r) => r.join('|')))).toEqual(new Set(['id:nginx.service|fragment_path:/lib/systemd/system/nginx.service']));
    expect(a.connectionsOpened).toBe(1);
    // Seen from systemd's side: every call came from the same bus connection.
    expect(fake.callers).toHaveLength(50);
    expect(new Set(fake.callers).size).toBe(1);
  });

  it('refuses to attest after close() and closes its connection', async () => {
    const a = attestor();
    await a.attest(pid, never());
    await a.close();
    expect((await rejection(a.attest(pid, never()))).code).toBe('systemd_closed');
    expect(a.connectionsOpened).toBe(1);
  });

  it('measures attest() latency over 1,000 calls', async () => {
    const a = attestor();
    await a.attest(pid, never()); // connection set up outside the measurement
    const ms: number[] = [];
    for (let i = 0; i < 1_000; i++) {
      const t = performance.now();
      await a.attest(pid, never());
      ms.push(performance.now() - t);
    }
    ms.sort((x, y) => x - y);
    const p50 = ms[499]!;
    const p99 = ms[989]!;
    console.log(`systemd attest() over 1000 calls: p50=${p50.toFixed(3)} ms p99=${p99.toFixed(3)} ms max=${ms[999]!.toFixed(3)} ms`);
    // Timing is reported, not asserted (bench/ judges performance); 1,000 calls reuse one connection.
    expect(a.connectionsOpened).toBe(1);
  });
});
