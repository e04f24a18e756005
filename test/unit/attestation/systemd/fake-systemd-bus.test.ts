/**
 * Checks the FAKE systemd1 Manager with an independent client (dbus-send, from Debian's dbus
 * packages), so the attestor tests do not rest only on our own D-Bus code talking to itself.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeSystemd, PrivateBus, findDbusDaemon } from '../../../helpers/fake-systemd-bus.js';
import { requireTool } from '../../../helpers/require-tool.js';

const run = promisify(execFile);
const daemon = findDbusDaemon();
const hasDbusSend = spawnSync('sh', ['-c', 'command -v dbus-send']).status === 0;
const missing = requireTool('dbus-daemon and dbus-send', daemon !== undefined && hasDbusSend, 'the fake systemd bus is checked with them; apt-get install -y dbus');

describe.skipIf(missing)('fake systemd1 Manager seen by dbus-send', () => {
  let bus: PrivateBus;
  let fake: FakeSystemd;
  const send = (...args: string[]) =>
    run('dbus-send', [`--bus=${bus.address}`, '--print-reply', '--dest=org.freedesktop.systemd1', ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    bus = await PrivateBus.start(daemon!);
    fake = await FakeSystemd.start(bus.address);
    fake.setUnit(4242, { id: 'nginx.service', fragmentPath: '/lib/systemd/system/nginx.service' });
  });
  afterAll(async () => {
    await fake.stop();
    await bus.stop();
  });

  it('answers GetUnitByPID with the unit object path', async () => {
    const { stdout } = await send('/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager.GetUnitByPID', 'uint32:4242');
    expect(stdout).toMatch(/object path "\/org\/freedesktop\/systemd1\/unit\/nginx_2eservice"/);
  });

  it('answers Properties.Get with string variants', async () => {
    const { stdout } = await send('/org/freedesktop/systemd1/unit/nginx_2eservice', 'org.freedesktop.DBus.Properties.Get', 'string:org.freedesktop.systemd1.Unit', 'string:FragmentPath');
    expect(stdout).toMatch(/variant\s+string "\/lib\/systemd\/system\/nginx.service"/);
  });

  it('answers an unknown pid with NoUnitForPID', async () => {
    const err = await send('/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager.GetUnitByPID', 'uint32:1').catch((e: { stderr: string }) => e);
    expect((err as { stderr: string }).stderr).toMatch(/org\.freedesktop\.systemd1\.NoUnitForPID: PID 1 does not belong to any loaded unit/);
  });
});
