/**
 * `healthcheck`: exit 0 and "Agent is healthy." when the agent answers on its socket.
 * -shallow only dials the socket. The full check asks grpc.health.v1 Check on the same
 * socket, as spire-agent does, and needs SERVING: the agent reports that only once its
 * Workload API is up, and the caller needs no registration entry.
 */
import * as grpc from '@grpc/grpc-js';
import { connect, type Socket } from 'node:net';
import type { Command, FlagSpec } from '../flags.js';
import { parseAddress, type WorkloadAddress } from '../../sdk/index.js';
import { loadProto } from '../../endpoints/proto.js';
import { DEFAULT_SOCKET_PATH, errorText, parseCommandFlags, resolveSocket } from './api-common.js';

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

interface HealthClient extends grpc.Client {
  Check(req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
}

async function deepCheck(addr: WorkloadAddress): Promise<void> {
  const pkg = loadProto('grpc/health/v1/health.proto') as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  const target = addr.kind === 'unix' ? `unix://${addr.path}` : `${addr.host}:${addr.port}`;
  const client = new pkg.grpc.health.v1.Health(target, grpc.credentials.createInsecure()) as unknown as HealthClient;
  try {
    const res = await new Promise<{ status: string } | undefined>((resolve, reject) =>
      client.Check({ service: '' }, { deadline: Date.now() + CHECK_TIMEOUT_MS }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    if (res?.status !== 'SERVING') throw new Error(`agent reports ${res?.status ?? 'no status'}`);
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
      else await deepCheck(addr);
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
