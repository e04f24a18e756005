/**
 * A FAKE systemd1 Manager on a REAL private dbus-daemon. systemd cannot run as PID 1 in this
 * environment, so this stands in for it: it owns the name org.freedesktop.systemd1 and implements
 * only what the systemd attestor asks for, following systemd's D-Bus API documentation
 * (org.freedesktop.systemd1(5)): Manager.GetUnitByPID(u) → o, and Properties.Get(ss) → v for the
 * Unit interface's Id and FragmentPath. Unknown pids get org.freedesktop.systemd1.NoUnitForPID,
 * as systemd answers. The bus itself is the real dbus-daemon (Debian package `dbus`), started
 * here on a temporary socket with a policy that allows everything.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DBusConnection } from '../../src/dbus/connection.js';
import { DBusRemoteError } from '../../src/dbus/errors.js';
import type { Message } from '../../src/dbus/message.js';
import { serveMethods } from './dbus-service.js';

/** The dbus-daemon binary, or undefined when the `dbus` package is not installed. */
export function findDbusDaemon(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v dbus-daemon'], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path ? path : undefined;
}

const CONFIG = (socket: string): string => `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`;

/** A real dbus-daemon on a socket in a temporary directory; restartable on the same address. */
export class PrivateBus {
  private child: ChildProcess | undefined;

  private constructor(
    private readonly dir: string,
    private readonly daemon: string,
    readonly socketPath: string,
  ) {}

  get address(): string {
    return `unix:path=${this.socketPath}`;
  }

  static async start(daemon: string): Promise<PrivateBus> {
    const dir = await mkdtemp(join(tmpdir(), 'spiffe-dbus-'));
    const bus = new PrivateBus(dir, daemon, join(dir, 'system_bus_socket'));
    await writeFile(join(dir, 'bus.conf'), CONFIG(bus.socketPath));
    await bus.up();
    return bus;
  }

  /** Starts the daemon and resolves once it prints its address (it is then accepting). */
  async up(): Promise<void> {
    const child = spawn(this.daemon, [`--config-file=${join(this.dir, 'bus.conf')}`, '--nofork', '--print-address=1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`dbus-daemon exited with ${code}: ${err}`)));
    });
  }

  /** Stops the daemon (SIGTERM) and waits for it; clients see their connections close. */
  async down(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    await rm(this.socketPath, { force: true });
  }

  async stop(): Promise<void> {
    await this.down();
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface FakeUnit {
  readonly id: string;
  readonly fragmentPath: string;
  /** Answer Properties.Get for Id with this D-Bus type instead of "s" (to test bad replies). */
  readonly idSignature?: 's' | 'u';
}

/** systemd's object-path label escaping: anything but [A-Za-z0-9] (and a leading digit) → _xx. */
export function unitObjectPath(id: string): string {
  let out = '';
  for (let i = 0; i < id.length; i++) {
    const c = id[i]!;
    out += /[A-Za-z]/.test(c) || (/[0-9]/.test(c) && i > 0) ? c : `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  }
  return `/org/freedesktop/systemd1/unit/${out}`;
}

const NAME = 'org.freedesktop.systemd1';
const BUS = { destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus' } as const;

export class FakeSystemd {
  /** The unique bus name of every GetUnitByPID caller, in order. */
  readonly callers: string[] = [];
  /** Pids whose GetUnitByPID reply waits until the test releases it (see hold()). */
  private readonly held = new Map<number, Promise<void>>();
  private replied: (() => void)[] = [];
  private readonly units = new Map<number, FakeUnit>();

  private constructor(private readonly conn: DBusConnection) {}

  static async start(address: string): Promise<FakeSystemd> {
    const conn = await DBusConnection.open(address, { uid: process.getuid?.() ?? 0, timeoutMs: 5_000 });
    const fake = new FakeSystemd(conn);
    serveMethods(conn, (m) => fake.handle(m));
    // DBUS_NAME_FLAG_DO_NOT_QUEUE = 4; reply 1 = primary owner.
    const [r] = await conn.call({ ...BUS, member: 'RequestName', signature: 'su', body: [NAME, 4] }, { timeoutMs: 5_000 });
    if (r !== 1) throw new Error(`fake systemd: could not own ${NAME} (RequestName returned ${String(r)})`);
    return fake;
  }

  setUnit(pid: number, unit: FakeUnit): void {
    this.units.set(pid, unit);
  }

  /**
   * Holds every GetUnitByPID reply for `pid` until the returned function is called. Its promise
   * resolves once a held reply has been sent, so a test can wait for that event, not for a time.
   */
  hold(pid: number): { release(): void; sent: Promise<void> } {
    let release!: () => void;
    this.held.set(pid, new Promise<void>((r) => (release = r)));
    const sent = new Promise<void>((r) => this.replied.push(r));
    return {
      release: () => {
        this.held.delete(pid);
        release();
      },
      sent,
    };
  }

  async stop(): Promise<void> {
    await this.conn.close();
  }

  private async handle(m: Message): Promise<{ signature: string; body: unknown[] }> {
    if (m.path === '/org/freedesktop/systemd1' && m.interface === 'org.freedesktop.systemd1.Manager' && m.member === 'GetUnitByPID') {
      if (m.signature !== 'u') throw new DBusRemoteError('org.freedesktop.DBus.Error.InvalidArgs', `Invalid arguments '${m.signature}' to call GetUnitByPID(), expecting 'u'.`);
      const pid = m.body[0] as number;
      this.callers.push(m.sender ?? '');
      const hold = this.held.get(pid);
      if (hold) {
        await hold;
        // serveMethods sends the reply when this returns; the callbacks run after it is queued.
        setImmediate(() => this.replied.splice(0).forEach((r) => r()));
      }
      const unit = this.units.get(pid);
      if (!unit) throw new DBusRemoteError('org.freedesktop.systemd1.NoUnitForPID', `PID ${pid} does not belong to any loaded unit.`);
      return { signature: 'o', body: [unitObjectPath(unit.id)] };
    }
    if (m.interface === 'org.freedesktop.DBus.Properties' && m.member === 'Get' && m.signature === 'ss') {
      const unit = [...this.units.values()].find((u) => unitObjectPath(u.id) === m.path);
      if (!unit) throw new DBusRemoteError('org.freedesktop.DBus.Error.UnknownObject', `Unknown object '${m.path ?? ''}'.`);
      const [iface, prop] = m.body as [string, string];
      if (iface === 'org.freedesktop.systemd1.Unit' && prop === 'Id') {
        return { signature: 'v', body: [unit.idSignature === 'u' ? { signature: 'u', value: 7 } : { signature: 's', value: unit.id }] };
      }
      if (iface === 'org.freedesktop.systemd1.Unit' && prop === 'FragmentPath') return { signature: 'v', body: [{ signature: 's', value: unit.fragmentPath }] };
      throw new DBusRemoteError('org.freedesktop.DBus.Error.UnknownProperty', `Unknown property ${iface}.${prop}`);
    }
    throw new DBusRemoteError('org.freedesktop.DBus.Error.UnknownMethod', `Unknown method ${m.interface ?? ''}.${m.member ?? ''}`);
  }
}
