/**
 * Per-uid shares of connections and open calls (src/endpoints/uid-share.ts), and the listener
 * refusing one uid's connection past its share while another uid is served. The listener runs on
 * a real Unix socket with real grpc-js clients; the peer tracker is FAKE (it hands out callers of
 * chosen uids: a test cannot connect as several uids without root, the integration suite does).
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UidShare, UID_STREAM_SHARE, uidShareFor, uidSharePressureFor } from '../../../src/endpoints/uid-share.js';
import { loadProto } from '../../../src/endpoints/proto.js';
import { buildGrpcServer } from '../../../src/endpoints/server.js';
import { UdsListener } from '../../../src/endpoints/uds-listener.js';
import { FakeCaller, listenerFixture } from '../../helpers/request-path.js';

describe('uidShareFor (pinned)', () => {
  it.each([
    [65_536, 2047], // the systemd unit's LimitNOFILE
    [20_000, 624],
    [1_024, 31],
    [1_000_000_000, 4096],
    [100, 16],
    [0, 16],
  ])('open-file limit %i: %i connections per uid', (limit, share) => {
    expect(uidShareFor(limit)).toBe(share);
  });

  it.each([
    [65_536, 8188],
    [1_024, 124],
  ])('open-file limit %i: the shares apply from %i connections open together', (limit, pressure) => {
    expect(uidSharePressureFor(limit)).toBe(pressure);
  });

  it('open calls per uid: 4,096', () => {
    expect(UID_STREAM_SHARE).toBe(4096);
  });
});

describe('UidShare', () => {
  it('applies the share only once all uids together hold the pressure mark', () => {
    const s = new UidShare(
      () => 2,
      () => 4,
    );
    const a = [s.tryTake(7), s.tryTake(7), s.tryTake(7)];
    expect(a.every((r) => r !== null)).toBe(true);
    s.tryTake(8);
    // 4 held together: uid 7 is past its share of 2, uid 8 is not.
    expect(s.tryTake(7)).toBeNull();
    expect(s.tryTake(8)).not.toBeNull();
    a[0]!();
    a[1]!();
    // 3 held together: under the mark again.
    expect(s.tryTake(7)).not.toBeNull();
  });

  it('counts per uid up to the share, and a release (once) makes room again', () => {
    const s = new UidShare(() => 2);
    const a = s.tryTake(7)!;
    const b = s.tryTake(7)!;
    expect(s.tryTake(7)).toBeNull();
    expect(s.tryTake(8)).not.toBeNull();
    a();
    a();
    expect(s.count(7)).toBe(1);
    expect(s.tryTake(7)).not.toBeNull();
    b();
    expect(s.count(7)).toBe(1);
  });
});

type Client = grpc.Client & { FetchJWTSVID: (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void };
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('UdsListener with a connection share of 2 per uid, applying from 2 connections', () => {
  it("refuses a uid's third connection and logs it, serves another uid, and makes room when one closes", async () => {
    const { log, attestation, handler, at } = listenerFixture();
    const server = buildGrpcServer({ workload: handler }, () => 'SERVING');
    const path = join(mkdtempSync(join(tmpdir(), 'uid-share-')), 'public', 'api.sock');
    // The next connection is of this uid.
    let uid = 1000;
    let pid = 100;
    const listener = new UdsListener(path, server, { track: async () => new FakeCaller(pid++, uid) }, log, 0o777, undefined, { uidShare: () => 2, uidSharePressure: () => 2 });
    at.listener = listener;
    await listener.listen();
    cleanups.push(() => listener.close(100));
    for (let p = 100; p < 110; p++) attestation.byPid.set(p, [{ type: 'unix', value: 'uid:1000' }]);
    const wl = loadProto('spiffe/workload/workload.proto') as unknown as { SpiffeWorkloadAPI: new (addr: string, creds: grpc.ChannelCredentials, opts: grpc.ChannelOptions) => Client };
    const md = new grpc.Metadata();
    md.set('workload.spiffe.io', 'true');
    const client = () => {
      // A pool of its own: grpc-js would otherwise share one connection between the clients.
      const c = new wl.SpiffeWorkloadAPI(`unix://${path}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
      cleanups.push(() => c.close());
      const fetch = () => new Promise<grpc.ServiceError | null>((r) => c.FetchJWTSVID({ audience: ['db'] }, md, (err) => r(err)));
      return { c, fetch };
    };
    const a = client();
    const b = client();
    expect(await a.fetch()).toBeNull();
    expect(await b.fetch()).toBeNull();
    const c = client();
    expect((await c.fetch())?.code).toBe(grpc.status.UNAVAILABLE);
    expect(log.lines.some((l) => l.msg === 'Refusing connections: one user holds its share of connections' && String(l.fields.error).includes('uid 1000 already holds 2 connections'))).toBe(true);
    uid = 2000;
    expect(await client().fetch()).toBeNull();
    uid = 1000;
    a.c.close();
    await expect.poll(() => listener.connectionCount).toBe(2);
    expect(await client().fetch()).toBeNull();
  });
});
