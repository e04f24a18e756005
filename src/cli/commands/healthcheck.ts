/**
 * `healthcheck`: exit 0 and "Agent is healthy." when the agent answers on its socket.
 * -shallow only dials the socket. The full check opens FetchX509SVID: a SVID or
 * PermissionDenied (the caller has no identity) both prove the agent is serving.
 */
import * as grpc from '@grpc/grpc-js';
import { connect, type Socket } from 'node:net';
import type { Command, FlagSpec } from '../flags.js';
import { WorkloadAPIError, parseAddress, type WorkloadAddress } from '../../sdk/index.js';
import { DEFAULT_SOCKET_PATH, errorText, makeClient, parseCommandFlags, resolveSocket } from './api-common.js';

const CHECK_TIMEOUT_MS = 5_000;

const SPECS: readonly FlagSpec[] = [
  { name: 'socketPath', kind: 'string', usage: 'Path to the SPIRE Agent API socket', default: DEFAULT_SOCKET_PATH },
  { name: 'instance', kind: 'string', usage: 'Instance name to substitute into socket templates (env SPIRE_AGENT_PUBLIC_SOCKET_TEMPLATE).', default: '' },
  { name: 'shallow', kind: 'bool', usage: 'Perform a less stringent health check', default: false },
  { name: 'verbose', kind: 'bool', usage: 'Print verbose information', default: false },
];

function dial(addr: WorkloadAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock: Socket = addr.kind === 'unix' ? connect(addr.path) : connect(addr.port, addr.host);
    sock.setTimeout(CHECK_TIMEOUT_MS, () => sock.destroy(new Error('timed out connecting to the agent socket')));
    sock.once('connect', () => {
      sock.end();
      resolve();
    });
    sock.once('error', reject);
  });
}

async function deepCheck(socket: string): Promise<void> {
  const client = makeClient(socket);
  try {
    await client.fetchRawX509SVID({ timeoutMs: CHECK_TIMEOUT_MS });
  } catch (err) {
    if (err instanceof WorkloadAPIError && err.status === grpc.status.PERMISSION_DENIED) return;
    throw err;
  } finally {
    client.close();
  }
}

export const run: Command = async (args, io) => {
  const parsed = parseCommandFlags('health', args, SPECS, io);
  if (!parsed.values) return parsed.code;
  const v = parsed.values;
  const verbose = v['verbose'] === true;
  try {
    if (verbose) io.stdout.write('Checking agent health...\n');
    const socket = resolveSocket(v, io.env);
    const absolute = socket.includes('://') || socket.startsWith('/') ? socket : `${process.cwd()}/${socket}`;
    const addr = parseAddress(absolute);
    try {
      if (v['shallow'] === true) await dial(addr);
      else await deepCheck(absolute);
    } catch (err) {
      if (verbose) io.stderr.write(`Failed to check health: ${errorText(err)}\n`);
      throw new Error('unable to determine health', { cause: err });
    }
  } catch (err) {
    io.stderr.write(`Agent is unhealthy: ${errorText(err)}\n`);
    return 1;
  }
  io.stdout.write('Agent is healthy.\n');
  return 0;
};
