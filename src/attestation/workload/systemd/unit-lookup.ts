/**
 * The two questions we ask systemd, as its D-Bus API documents them (org.freedesktop.systemd1(5)):
 * Manager.GetUnitByPID(u pid) → o unit, then Properties.Get on that unit for Id and FragmentPath.
 */
import type { DBusConnection } from '../../../dbus/connection.js';
import type { Variant } from '../../../dbus/wire.js';
import { SpiffeAgentError } from '../../../errors.js';

const SYSTEMD = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const UNIT = 'org.freedesktop.systemd1.Unit';
const PROPERTIES = 'org.freedesktop.DBus.Properties';

export interface UnitInfo {
  readonly id: string;
  readonly fragmentPath: string;
}

/** Thrown for replies that are well-formed D-Bus but not what systemd's API says they are. */
export class UnexpectedReply extends SpiffeAgentError<'systemd_bad_reply'> {
  constructor(message: string) {
    super('systemd_bad_reply', message);
  }
}

export interface LookupOptions {
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

export async function unitPathForPid(conn: DBusConnection, pid: number, opts: LookupOptions): Promise<string> {
  const [path] = await conn.call(
    { destination: SYSTEMD, path: MANAGER_PATH, interface: MANAGER, member: 'GetUnitByPID', signature: 'u', body: [pid] },
    { ...opts, replySignature: 'o' },
  );
  if (typeof path !== 'string') throw new UnexpectedReply('GetUnitByPID did not return an object path');
  return path;
}

export async function unitStringProperty(conn: DBusConnection, unitPath: string, name: string, opts: LookupOptions): Promise<string> {
  const [v] = await conn.call(
    { destination: SYSTEMD, path: unitPath, interface: PROPERTIES, member: 'Get', signature: 'ss', body: [UNIT, name] },
    { ...opts, replySignature: 'v' },
  );
  const variant = v as Variant | undefined;
  if (variant?.signature !== 's' || typeof variant.value !== 'string') {
    throw new UnexpectedReply(`property ${name} of ${unitPath} is not a string (type "${variant?.signature ?? 'none'}")`);
  }
  return variant.value;
}

export async function unitInfoForPid(conn: DBusConnection, pid: number, opts: LookupOptions): Promise<UnitInfo> {
  const path = await unitPathForPid(conn, pid, opts);
  // Both reads go out together: one round trip of latency instead of two.
  const [id, fragmentPath] = await Promise.all([
    unitStringProperty(conn, path, 'Id', opts),
    unitStringProperty(conn, path, 'FragmentPath', opts),
  ]);
  return { id, fragmentPath };
}
