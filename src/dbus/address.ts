/**
 * D-Bus server addresses ("unix:path=/run/dbus/system_bus_socket;unix:abstract=foo"): the
 * transports a system bus uses. Values are %-escaped per the specification.
 */
import { DBusError } from './errors.js';

export interface SocketTarget {
  /** A filesystem path, or "\0name" for a Linux abstract socket (what net.connect expects). */
  readonly path: string;
  /** The address entry as written, for messages. */
  readonly display: string;
}

export const DEFAULT_SYSTEM_BUS_ADDRESS = 'unix:path=/var/run/dbus/system_bus_socket';

/** The connectable entries of an address, in the order to try them. */
export function parseAddress(address: string): SocketTarget[] {
  const out: SocketTarget[] = [];
  const skipped: string[] = [];
  for (const entry of address.split(';').filter((e) => e !== '')) {
    const colon = entry.indexOf(':');
    if (colon <= 0) throw invalid(address, `entry "${entry}" has no transport`);
    const transport = entry.slice(0, colon);
    const params = new Map<string, string>();
    for (const kv of entry.slice(colon + 1).split(',').filter((p) => p !== '')) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw invalid(address, `"${kv}" is not key=value`);
      params.set(kv.slice(0, eq), unescape(address, kv.slice(eq + 1)));
    }
    if (transport !== 'unix') {
      skipped.push(transport);
      continue;
    }
    const path = params.get('path');
    const abstract = params.get('abstract');
    if (path !== undefined) out.push({ path, display: entry });
    else if (abstract !== undefined) out.push({ path: `\0${abstract}`, display: entry });
    else skipped.push(`${transport} without path= or abstract=`);
  }
  if (out.length === 0) {
    const why = skipped.length > 0 ? `only unsupported transports (${skipped.join(', ')})` : 'no entries';
    throw invalid(address, `${why}; use unix:path=<socket>`);
  }
  return out;
}

function unescape(address: string, v: string): string {
  try {
    return decodeURIComponent(v);
  } catch (cause) {
    throw new DBusError('dbus_address_invalid', `dbus: bad %-escape in address "${address}"`, { cause });
  }
}

function invalid(address: string, why: string): DBusError {
  return new DBusError('dbus_address_invalid', `dbus: invalid bus address "${address}": ${why}`);
}
