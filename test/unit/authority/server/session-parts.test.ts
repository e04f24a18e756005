import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentStorage } from '../../../../src/authority/server/agent-storage.js';
import { chainsToAny, isSVIDExpired, loggableAgentId, shouldRotateAgentSVID } from '../../../../src/authority/server/agent-svid.js';
import { BootstrapTrust, parseTrustBundle } from '../../../../src/authority/server/bootstrap.js';
import { serverVerdict } from '../../../../src/authority/server/server-errors.js';
import { decodeBundleX509, permissionDeniedReasons } from '../../../../src/authority/server/wire.js';
import { pemEncodeCertificates } from '../../../../src/svid/der.js';
import { TestCA } from '../../../helpers/test-ca.js';
import { FakeClock } from '../../../helpers/fake-clock.js';

/** spire-agent's trustbundlesources use values as stored in agent-data.json (UseBootstrap, UseRebootstrap), pinned. */
const USE_BOOTSTRAP = 1;
const USE_REBOOTSTRAP = 2;

const log = { child: () => log, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as never;

/** Hand-encoded protobuf helpers: tag, varint, length-delimited. */
const varint = (n: number) => {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
};
const ld = (no: number, b: Uint8Array) => Buffer.concat([varint((no << 3) | 2), varint(b.length), b]);
const vi = (no: number, v: number) => Buffer.concat([varint(no << 3), varint(v)]);

describe('wire decoding', () => {
  it('reads types.Bundle X.509 authorities and their tainted flag, skipping other fields', () => {
    const a = Buffer.from([1, 2, 3]);
    const b = Buffer.from([4, 5]);
    const msg = Buffer.concat([ld(1, Buffer.from('example.org')), ld(2, Buffer.concat([ld(1, a)])), ld(2, Buffer.concat([ld(1, b), vi(2, 1)])), vi(5, 7)]);
    expect(decodeBundleX509(msg)).toEqual({ trustDomain: 'example.org', x509: [{ der: new Uint8Array(a), tainted: false }, { der: new Uint8Array(b), tainted: true }] });
  });

  it('finds PermissionDeniedDetails reasons in a google.rpc.Status and maps them to spire-agent verdicts', () => {
    const any = (reason: number) => ld(3, Buffer.concat([ld(1, Buffer.from('type.googleapis.com/spire.api.types.PermissionDeniedDetails')), ld(2, vi(1, reason))]));
    const status = Buffer.concat([vi(1, 7), ld(2, Buffer.from('denied')), any(4)]);
    expect(permissionDeniedReasons(status)).toEqual(['AGENT_BANNED']);
    const err = (reason: number, code = grpc.status.PERMISSION_DENIED) => {
      const md = new grpc.Metadata();
      md.set('grpc-status-details-bin', Buffer.concat([vi(1, code), any(reason)]));
      return Object.assign(new Error('x'), { code, metadata: md });
    };
    expect(serverVerdict(err(4))).toBe('shutdown');
    for (const r of [1, 2, 3, 5]) expect(serverVerdict(err(r))).toBe('reattest');
    expect(serverVerdict(err(0))).toBeUndefined();
    expect(serverVerdict(err(4, grpc.status.UNAVAILABLE))).toBeUndefined();
    expect(serverVerdict(new Error('plain'))).toBeUndefined();
  });
});

describe('agent SVID rules', () => {
  it('expires 1 s early, as spire-agent judges a stored SVID', () => {
    expect(isSVIDExpired(10_000, 8_999)).toBe(false);
    expect(isSVIDExpired(10_000, 9_000)).toBe(true);
  });

  it('rotates at half-life ±10 % jitter, or availability_target when the lifetime leaves > 12 h beyond it', () => {
    const h = 3600_000;
    expect(shouldRotateAgentSVID(0.44 * h, 0, h, 0, () => 0.5)).toBe(false);
    expect(shouldRotateAgentSVID(0.56 * h, 0, h, 0, () => 0.5)).toBe(true);
    expect(shouldRotateAgentSVID(0.46 * h, 0, h, 0, () => 0)).toBe(false);
    expect(shouldRotateAgentSVID(0.46 * h, 0, h, 0, () => 0.999)).toBe(true);
    // 48 h SVID, 24 h target: rotates once 24 h (+ up to 10 min) remain, before half-life.
    expect(shouldRotateAgentSVID(23.9 * h, 0, 48 * h, 24 * h, () => 0)).toBe(false);
    expect(shouldRotateAgentSVID(24.1 * h, 0, 48 * h, 24 * h, () => 0)).toBe(true);
    // 30 h SVID, 24 h target: only 6 h grace, falls back to half-life.
    expect(shouldRotateAgentSVID(7 * h, 0, 30 * h, 24 * h, () => 0.5)).toBe(false);
  });

  it('finds an SVID chained to a tainted authority, directly or through an intermediate', async () => {
    const root = await TestCA.create('example.org');
    const other = await TestCA.create('example.org');
    const inter = await root.createIntermediate();
    const direct = await root.createX509SVID('spiffe://example.org/spire/agent/a');
    const viaInter = await inter.createX509SVID('spiffe://example.org/spire/agent/b');
    expect(chainsToAny(direct.chain, [root.der()])).toBe(true);
    expect(chainsToAny(viaInter.chain, [root.der()])).toBe(true);
    expect(chainsToAny(direct.chain, [other.der()])).toBe(false);
  });

  it('never logs a join token inside an agent ID', () => {
    const shown = loggableAgentId('spiffe://example.org/spire/agent/join_token/8d7e1c2a-secret');
    expect(shown).not.toContain('secret');
    expect(shown).toMatch(/^spiffe:\/\/example\.org\/spire\/agent\/join_token\/<token sha256:[0-9a-f]{8}>$/);
    expect(loggableAgentId('spiffe://example.org/spire/agent/x509pop/abc')).toBe('spiffe://example.org/spire/agent/x509pop/abc');
  });
});

describe('bootstrap trust', () => {
  let dir: string;
  let http: Server | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bootstrap-'));
  });
  afterEach(async () => {
    http?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const opts = (o: Record<string, unknown>) => ({
    trustDomain: 'example.org',
    trustBundlePath: undefined,
    trustBundleUrl: undefined,
    trustBundleUnixSocket: undefined,
    trustBundleFormat: 'pem' as const,
    insecureBootstrap: false,
    serverAddress: '127.0.0.1',
    serverPort: 8081,
    ...o,
  });

  it('trust_bundle_spiffe_workload_api: asks the fetch for the trust domain, counts the attempt, stores the bundle on success', async () => {
    const ca = await TestCA.create('example.org');
    const storage = await AgentStorage.open(dir);
    const asked: string[] = [];
    const bt = new BootstrapTrust({
      options: opts({ trustBundleSpiffeWorkloadApi: 'unix:///run/parent/api.sock' }),
      storage,
      clock: new FakeClock(5_000) as never,
      log,
      workloadApiBundle: async (address, td) => {
        asked.push(`${address} ${td}`);
        return [ca.der()];
      },
    });
    bt.init();
    const b = await bt.fetch();
    expect(asked).toEqual(['unix:///run/parent/api.sock example.org']);
    expect(b.certs.map((c) => Buffer.from(c).toString('hex'))).toEqual([Buffer.from(ca.der()).toString('hex')]);
    expect((await AgentStorage.open(dir)).bootstrapState().connectionAttempts).toBe(1);
    await bt.succeeded();
    expect((await AgentStorage.open(dir)).bundle().map((c) => Buffer.from(c).toString('hex'))).toEqual([Buffer.from(ca.der()).toString('hex')]);
  });

  it('trust_bundle_spiffe_workload_api: a failed fetch is a bootstrap_bundle error naming what to check', async () => {
    const storage = await AgentStorage.open(dir);
    const bt = new BootstrapTrust({
      options: opts({ trustBundleSpiffeWorkloadApi: 'unix:///nowhere.sock' }),
      storage,
      clock: new FakeClock(5_000) as never,
      log,
      workloadApiBundle: () => Promise.reject(new Error('unable to fetch trust bundle from SPIFFE Workload API unix:///nowhere.sock: connect ENOENT')),
    });
    bt.init();
    await expect(bt.fetch()).rejects.toMatchObject({
      code: 'bootstrap_bundle',
      message: expect.stringMatching(/^bootstrap: unable to fetch trust bundle from SPIFFE Workload API unix:\/\/\/nowhere\.sock: connect ENOENT; check trust_bundle_spiffe_workload_api/),
    });
  });

  it('reads a PEM bundle from trust_bundle_path and counts the attempt in agent-data.json', async () => {
    const ca = await TestCA.create('example.org');
    await writeFile(join(dir, 'b.pem'), pemEncodeCertificates([ca.der()]));
    const storage = await AgentStorage.open(dir);
    const bt = new BootstrapTrust({ options: opts({ trustBundlePath: join(dir, 'b.pem') }), storage, clock: new FakeClock(5_000) as never, log });
    bt.init();
    expect(bt.isBootstrap).toBe(true);
    const b = await bt.fetch();
    expect(b.certs.map((c) => Buffer.from(c).toString('hex'))).toEqual([Buffer.from(ca.der()).toString('hex')]);
    expect((await AgentStorage.open(dir)).bootstrapState()).toEqual({ use: USE_BOOTSTRAP, startTime: 5_000, connectionAttempts: 1 });
    await bt.succeeded();
    expect((await AgentStorage.open(dir)).bootstrapState()).toEqual({ use: USE_REBOOTSTRAP, startTime: 0, connectionAttempts: 0 });
  });

  it('counts the time since the (re)bootstrap started from after the start is stored, so a slow write never makes it negative', async () => {
    const storage = await AgentStorage.open(dir);
    const clock = new FakeClock(10_000);
    const store = storage.storeBootstrapState.bind(storage);
    // The write takes 700 ms of wall time; an elapsed time read before it would come out at -700.
    storage.storeBootstrapState = async (st) => {
      await store(st);
      clock.jump(700);
    };
    const bt = new BootstrapTrust({ options: opts({}), storage, clock: clock as never, log });
    bt.init();
    expect(await bt.sinceStartMs()).toBe(700);
    clock.jump(300);
    expect(await bt.sinceStartMs()).toBe(1_000);
  });

  it('reads a SPIFFE bundle (trust_bundle_format = "spiffe") over http on trust_bundle_unix_socket with the spire-* parameters', async () => {
    const ca = await TestCA.create('example.org');
    const jwk = new X509Certificate(ca.der()).publicKey.export({ format: 'jwk' });
    const body = JSON.stringify({ keys: [{ use: 'x509-svid', ...jwk, x5c: [Buffer.from(ca.der()).toString('base64')] }] });
    let query: URLSearchParams | undefined;
    const sock = join(dir, 'tb.sock');
    http = createServer((req, res) => {
      query = new URL(req.url ?? '/', 'http://x').searchParams;
      res.end(body);
    });
    await new Promise<void>((r) => http!.listen(sock, r));
    const storage = await AgentStorage.open(dir);
    const bt = new BootstrapTrust({
      options: opts({ trustBundleUrl: 'http://localhost/bundle?x=1', trustBundleUnixSocket: sock, trustBundleFormat: 'spiffe' }),
      storage,
      clock: new FakeClock(Date.UTC(2026, 0, 1)) as never,
      log,
    });
    bt.init();
    const got = await bt.fetch();
    expect(query?.get('x')).toBe('1');
    expect(query?.get('spire-attest-mode')).toBe('bootstrap');
    expect(query?.get('spire-connection-attempts')).toBe('1');
    expect(query?.get('spire-attest-start-time')).toBe('2026-01-01T00:00:00Z');
    expect(query?.get('spire-server-address')).toBe('127.0.0.1');
    expect(query?.get('spire-server-port')).toBe('8081');
    expect(query?.get('spiffe-trust-domain')).toBe('example.org');
    expect(Buffer.from(got.certs[0]!).equals(Buffer.from(ca.der()))).toBe(true);
  });

  it('says which source and format failed', async () => {
    await expect(parseTrustBundle(Buffer.from('nothing'), 'pem', 'example.org', 'trust_bundle_path /x')).rejects.toThrow(/no certificates found in trust bundle trust_bundle_path \/x/);
    await expect(parseTrustBundle(Buffer.from('{'), 'spiffe', 'example.org', 'trust_bundle_path /x')).rejects.toThrow(/not a valid SPIFFE bundle/);
  });
});
