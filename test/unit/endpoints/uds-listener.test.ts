/**
 * The listener on a real Unix socket in a temporary directory, without root: the peer tracker is
 * FAKE (it hands out FakeCallers, as the kernel-backed one hands out real ones), everything
 * else is real: grpc-js server and client, the Workload API handler, the socket directory checks.
 * It shows that each connection's caller reaches the handler through `callerOf`, that a
 * connection whose caller cannot be identified is dropped before gRPC sees it, and that
 * closing the connection releases its caller.
 */
import * as grpc from '@grpc/grpc-js';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PeerError } from '../../../src/proc/errors.js';
import { loadProto } from '../../../src/endpoints/proto.js';
import { buildGrpcServer } from '../../../src/endpoints/server.js';
import { UdsListener } from '../../../src/endpoints/uds-listener.js';
import type { ConnectionFront } from '../../../src/endpoints/h2-authority-filter.js';
import { loadLibc } from '../../../src/proc/libc.js';
import { execFileSync } from 'node:child_process';
import { FakeCaller, listenerFixture } from '../../helpers/request-path.js';

type Client = grpc.Client & { FetchJWTSVID: (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(identify: (socket: Socket) => Promise<FakeCaller>, extra: { front?: ConnectionFront; sys?: { accept(fd: number): number; close(fd: number): void } } = {}) {
  const { log, attestation, handler, at } = listenerFixture();
  const server = buildGrpcServer({ workload: handler }, () => 'SERVING');
  const path = join(mkdtempSync(join(tmpdir(), 'uds-listener-')), 'public', 'api.sock');
  const listener = new UdsListener(path, server, { track: identify }, log, 0o777, extra.front, { sys: extra.sys });
  at.listener = listener;
  await listener.listen();
  cleanups.push(() => listener.close(100));
  const wl = loadProto('spiffe/workload/workload.proto') as unknown as { SpiffeWorkloadAPI: new (addr: string, creds: grpc.ChannelCredentials) => Client };
  const client = new wl.SpiffeWorkloadAPI(`unix://${path}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  const md = new grpc.Metadata();
  md.set('workload.spiffe.io', 'true');
  const fetchJWT = () =>
    new Promise<{ err: grpc.ServiceError | null; res: unknown }>((resolve) =>
      client.FetchJWTSVID({ audience: ['db'] }, md, (err, res) => resolve({ err, res })),
    );
  return { listener, attestation, fetchJWT, path, log, client };
}

describe('UdsListener', () => {
  it('hands each connection the caller the tracker identified, and releases it when the connection closes', async () => {
    const caller = new FakeCaller(4242);
    const t = await start(async () => caller);
    t.attestation.byPid.set(4242, [{ type: 'unix', value: 'uid:1000' }]);
    const r = await t.fetchJWT();
    expect(r.err).toBeNull();
    expect(r.res).toMatchObject({ svids: [{ spiffe_id: 'spiffe://example.org/web', svid: 'jwt:spiffe://example.org/web:db' }] });
    expect(t.listener.connectionCount).toBe(1);
    expect(t.log.lines.find((l) => l.fields.audit)?.fields).toMatchObject({ pid: 4242, uid: 1000 });
    t.client.close();
    await expect.poll(() => caller.closed).toBe(true);
    await expect.poll(() => t.listener.connectionCount).toBe(0);
  });

  it('drops a connection whose caller cannot be identified before gRPC sees a byte', async () => {
    const t = await start(async () => {
      throw new PeerError('no_peer_pid', 'peertracker: caller pid is not visible from the agent pid namespace');
    });
    const r = await t.fetchJWT();
    expect(r.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(t.log.lines.some((l) => l.msg === 'Connection refused: caller could not be identified' && l.fields.error === 'peertracker: caller pid is not visible from the agent pid namespace')).toBe(true);
    expect(t.listener.connectionCount).toBe(0);
  });

  it('removes its socket on close', async () => {
    const t = await start(async () => new FakeCaller(1));
    expect(existsSync(t.path)).toBe(true);
    await t.listener.close(100);
    expect(existsSync(t.path)).toBe(false);
  });

  it('takes connections queued while it works from the listen queue itself, and serves them like any other', async () => {
    // The front stands for a connection's set-up work: while it runs, 5 more clients connect and
    // queue in the kernel. The pump right after it takes them, before libuv gets back to the socket.
    let path = '';
    let filled = false;
    const identified: number[] = [];
    const front: ConnectionFront = {
      wrap: (s, serve) => {
        if (!filled) {
          filled = true;
          const child = `const net = require('node:net'); let n = 0;
            for (let i = 0; i < 5; i++) { const c = net.connect(${JSON.stringify('PATH')}, () => { if (++n === 5) setTimeout(() => process.exit(0), 50); }); }`;
          execFileSync(process.execPath, ['-e', child.replace('PATH', path)], { timeout: 20_000 });
        }
        serve(() => s);
      },
    };
    let next = 100;
    const t = await start(async () => {
      identified.push(next);
      return new FakeCaller(next++);
    }, { front, sys: loadLibc() });
    path = t.path;
    t.attestation.byPid.set(100, [{ type: 'unix', value: 'uid:1000' }]);
    const r = await t.fetchJWT();
    expect(r.err).toBeNull();
    expect(t.listener.pumped).toBe(5);
    // Each pumped connection went through identification as well (and was then dropped: its client exited).
    await expect.poll(() => identified.length).toBe(6);
  });
});
